import type { GroupState } from '../../lib/api/group-state.js';
import { defineApp } from '../../lib/app/app.js';
import { sampleData } from '../../lib/app/sample-data.js';

/** A command: deposit (amount > 0) or withdraw (amount < 0) on an account. */
interface Operation {
  account: string | null;
  amount: number | null;
}

/** An event: what the operation did to the account (amount 0 and an error when it was refused). */
interface Movement {
  account: string | null;
  amount: number;
  error: string | null;
}

/** The snapshot of an account after a batch. */
interface Account {
  account: string;
  balance: number;
}

const INSUFFICIENT_FUNDS = 'insufficient funds';
const MALFORMED = 'malformed operation';

/**
 * Validates one operation against the balance (the original job's rule: valid when `balance >= -amount`) and
 * returns the movement and the new balance. An operation without an amount (a malformed input line kept
 * by the source's PERMISSIVE mode) is refused as malformed and changes nothing.
 */
function applyOperation(
  account: string | null,
  balance: number,
  op: Operation,
): { movement: Movement; balance: number } {
  if (op.amount === null || !Number.isFinite(op.amount) || account === null) {
    return { movement: { account, amount: 0, error: MALFORMED }, balance };
  }
  if (balance >= -op.amount)
    return { movement: { account, amount: op.amount, error: null }, balance: balance + op.amount };
  return { movement: { account, amount: 0, error: INSUFFICIENT_FUNDS }, balance };
}

/** Movements of a batch's operations on one account, each validated against the balance left by the one before. */
function* movements(account: string | null, ops: Operation[], state: GroupState<number>): Generator<Movement> {
  let balance = state.getOption() ?? 0;
  for (const op of ops) {
    const r = applyOperation(account, balance, op);
    balance = r.balance;
    yield r.movement;
  }
  if (account !== null) state.update(balance);
}

/** The balance of one account after a batch's operations. */
function snapshot(account: string | null, ops: Operation[], state: GroupState<number>): Account[] {
  if (account === null) return [];
  let balance = state.getOption() ?? 0;
  for (const op of ops) balance = applyOperation(account, balance, op).balance;
  state.update(balance);
  return [{ account, balance }];
}

/**
 * The Kafka Streams event-sourcing job: operations (commands) on bank accounts are validated against
 * the account balance (the snapshot) and become movements (events); account snapshots are a second output.
 * The balance a command is validated against is the state of its key, updated before the next command of
 * that key is looked at: sequential per account by construction, in every batch, thread and restart.
 */
export default defineApp({
  name: 'bank-account',
  description:
    'Kafka Streams event sourcing: bank operations validated against the balance become movements ("insufficient funds") and account snapshots',
  inputs: {
    operations: {
      describe:
        'JSON lines {account, amount}: amount > 0 deposits, < 0 withdraws (Kafka: JSON values keyed by account)',
      default: sampleData('bank'),
      format: 'json',
      schema: { account: 'string', amount: 'long' },
    },
  },
  outputs: {
    movements: {
      describe:
        'rows {account, amount, error}: one per operation; refused withdrawals have amount 0 and error "insufficient funds"',
      default: 'console:',
      outputMode: 'append',
      key: 'account',
    },
    accounts: {
      describe: 'rows {account, balance}: each account changed by a batch, with its balance after it',
      default: 'console:',
      outputMode: 'update',
      key: 'account',
    },
  },
  build: ({ input }) => {
    const byAccount = input<Operation>('operations').groupByKey((op) => op.account);
    return {
      movements: byAccount.flatMapGroupsWithState(movements, {
        outputMode: 'append',
        schema: { account: 'string', amount: 'long', error: 'string' },
      }),
      accounts: byAccount.flatMapGroupsWithState(snapshot, {
        outputMode: 'update',
        schema: { account: 'string', balance: 'long' },
      }),
    };
  },
});
