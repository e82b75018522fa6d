import { badOption, idOf, isCount, withDefaults } from './common.js';
import { Random, type Seed, WeightedPicker, zipfWeights } from './random.js';

/**
 * Bank-account operations (commands) for the bank-account app: deposits (amount > 0) and withdrawals (amount < 0)
 * on accounts, some of which withdraw more than the balance and must fail with "insufficient funds".
 *
 * The generator keeps the balance by the app's rule (a withdrawal is valid when `balance ≥ −amount`;
 * an invalid one leaves the balance unchanged), so {@link bankEntries} can tell for each operation
 * whether it is valid and what the balance is afterwards: the expected movements and snapshots.
 * A few accounts are busy (Zipf popularity), so operations on one account follow each other closely,
 * the case the original job's author asks about.
 */
export interface BankOperation {
  /** `acct-0042`. */
  account: string;
  /** Integer amount: > 0 deposits, < 0 withdraws. Never 0. */
  amount: number;
}

/** An operation with its expected outcome under the app's validation rule. */
export interface BankEntry {
  operation: BankOperation;
  /** False for a withdrawal larger than the balance ("insufficient funds"). */
  valid: boolean;
  /** Account balance after this operation (unchanged when invalid). */
  balance: number;
}

/** Options of {@link bank}. Every option has a default. */
export interface BankOptions {
  /** Number of operations (Infinity: endless). Default 10 000. */
  count?: number;
  /** PRNG seed. Default 1. */
  seed?: Seed;
  /** Number of accounts. Default 100. */
  accounts?: number;
  /** Fraction of operations that are withdrawals. Default 0.4. */
  withdrawalFraction?: number;
  /** Fraction of withdrawals that ask for more than the balance. Default 0.1. */
  overdraftFraction?: number;
  /** Largest deposit. Default 500. */
  maxDeposit?: number;
}

/** The defaults of {@link BankOptions}. */
export const BANK_DEFAULTS = {
  count: 10_000,
  seed: 1,
  accounts: 100,
  withdrawalFraction: 0.4,
  overdraftFraction: 0.1,
  maxDeposit: 500,
} satisfies Required<BankOptions>;

/** Operations with their expected validity and resulting balance, in stream order. */
export function* bankEntries(options: BankOptions = {}): Generator<BankEntry> {
  const o = withDefaults<BankOptions>(BANK_DEFAULTS, options);
  if (!isCount(o.count)) throw badOption(`count must be a non-negative integer (or Infinity), got ${o.count}`);
  if (!Number.isSafeInteger(o.accounts) || o.accounts < 1)
    throw badOption(`accounts must be a positive integer, got ${o.accounts}`);
  for (const k of ['withdrawalFraction', 'overdraftFraction'] as const) {
    if (!(o[k] >= 0 && o[k] <= 1)) throw badOption(`${k} must be between 0 and 1, got ${o[k]}`);
  }
  if (!Number.isSafeInteger(o.maxDeposit) || o.maxDeposit < 1)
    throw badOption(`maxDeposit must be a positive integer, got ${o.maxDeposit}`);
  const rng = new Random(o.seed).fork('bank');
  const picker = new WeightedPicker(zipfWeights(o.accounts, 0.8).map((w, i) => [i, w] as const));
  const balances = new Float64Array(o.accounts);
  for (let i = 0; i < o.count; i++) {
    const a = picker.pick(rng);
    const balance = balances[a];
    let amount: number;
    let valid = true;
    if (rng.chance(o.withdrawalFraction) && balance > 0) {
      if (rng.chance(o.overdraftFraction)) {
        amount = -(balance + 1 + rng.int(o.maxDeposit));
        valid = false;
      } else {
        amount = -(1 + rng.int(balance));
      }
    } else if (balance === 0 && rng.chance(o.withdrawalFraction * o.overdraftFraction)) {
      amount = -(1 + rng.int(o.maxDeposit));
      valid = false;
    } else {
      amount = 1 + rng.int(o.maxDeposit);
    }
    if (valid) balances[a] = balance + amount;
    yield { operation: { account: idOf('acct', a, o.accounts), amount }, valid, balance: balances[a] };
  }
}

/** Operations in stream order (see {@link BankOptions}). */
export function* bank(options: BankOptions = {}): Generator<BankOperation> {
  for (const e of bankEntries(options)) yield e.operation;
}
