import { activity } from './activity.js';
import {
  DEFAULT_START_TIME, checkTimestampFormat, cents, formatTimestamp, idOf, withDefaults, type TimestampFormat,
} from './common.js';
import { disorder } from './disorder.js';
import { Random, type Seed } from './random.js';

/**
 * Customer transactions for seed 000 (per-customer session sums and the global sum over active
 * sessions): customers make bursts of transactions separated by more than the session gap.
 */
export interface Transaction {
  /** `cust-0042`. */
  customer_id: string;
  /** Amount in currency units with cents, > 0. */
  amount: number;
  /** ISO-8601 UTC string, or epoch ms with `timestampFormat: 'epoch-ms'`. */
  timestamp: string | number;
  /** Only with `markLate`: whether the transaction arrives later than the out-of-orderness bound. */
  late?: boolean;
}

/** Options of {@link transactions}. Every option has a default. */
export interface TransactionsOptions {
  /** Number of transactions (Infinity: endless). Default 10 000. */
  count?: number;
  /** PRNG seed. Default 1. */
  seed?: Seed;
  /** Number of distinct customers. Default 500. */
  customers?: number;
  /** Event time of the first transaction, epoch ms. Default 2024-01-01T00:00:00Z. */
  startTime?: number;
  /** Mean event-time distance between consecutive transactions over all customers, ms. Default 1 000. */
  meanSpacingMs?: number;
  /** Mean number of transactions in a customer session. Default 5. */
  meanSessionEvents?: number;
  /** Mean event-time distance between two transactions of one session, ms. Default 20 000. */
  meanThinkTimeMs?: number;
  /** Inactivity gap separating a customer's sessions, ms (the app's session timeout). Default 5 minutes. */
  sessionGapMs?: number;
  /** On-time transactions arrive less than this far behind earlier ones, ms. Default 0 (in order). */
  maxOutOfOrdernessMs?: number;
  /** Fraction of transactions that arrive later than the bound. Default 0. */
  lateFraction?: number;
  /** Smallest delay of a late transaction beyond the bound, ms. Default 60 000. */
  lateByMinMs?: number;
  /** Largest delay of a late transaction beyond the bound, ms. Default 600 000. */
  lateByMaxMs?: number;
  /** `iso` (default) or `epoch-ms`. */
  timestampFormat?: TimestampFormat;
  /** Adds `late: true|false` to every transaction. Default false. */
  markLate?: boolean;
}

/** The defaults of {@link TransactionsOptions}. */
export const TRANSACTIONS_DEFAULTS = {
  count: 10_000,
  seed: 1,
  customers: 500,
  startTime: DEFAULT_START_TIME,
  meanSpacingMs: 1_000,
  meanSessionEvents: 5,
  meanThinkTimeMs: 20_000,
  sessionGapMs: 5 * 60_000,
  maxOutOfOrdernessMs: 0,
  lateFraction: 0,
  lateByMinMs: 60_000,
  lateByMaxMs: 600_000,
  timestampFormat: 'iso' as TimestampFormat,
  markLate: false,
} satisfies Required<TransactionsOptions>;

/** A transaction with its event time, session and arrival classification. */
export interface TransactionArrival {
  transaction: Transaction;
  /** Event time, epoch ms. */
  ts: number;
  /** Serial number of the generator's session (over all customers) the transaction belongs to. */
  session: number;
  late: boolean;
}

/** Transactions with event time, session and late flag, in arrival order. */
export function* transactionArrivals(options: TransactionsOptions = {}): Generator<TransactionArrival> {
  const o = withDefaults<TransactionsOptions>(TRANSACTIONS_DEFAULTS, options);
  checkTimestampFormat(o.timestampFormat);
  const amountRng = new Random(o.seed).fork('amounts');
  const customerIds = Array.from({ length: o.customers }, (_, c) => idOf('cust', c, o.customers));
  const acts = activity({
    count: o.count, seed: o.seed, users: o.customers, startTime: o.startTime, meanSpacingMs: o.meanSpacingMs,
    meanSessionEvents: o.meanSessionEvents, meanThinkTimeMs: o.meanThinkTimeMs, sessionGapMs: o.sessionGapMs,
  });
  function* inTimeOrder(): Generator<{ t: Transaction; ts: number; session: number }> {
    for (const a of acts) {
      const amount = Math.max(0.01, cents(amountRng.logNormal(Math.log(25), 1)));
      yield { t: { customer_id: customerIds[a.user], amount, timestamp: '' }, ts: a.ts, session: a.session };
    }
  }
  for (const arr of disorder(inTimeOrder(), (x) => x.ts, {
    seed: o.seed, maxOutOfOrdernessMs: o.maxOutOfOrdernessMs, lateFraction: o.lateFraction,
    lateByMinMs: o.lateByMinMs, lateByMaxMs: o.lateByMaxMs,
  })) {
    const t = arr.item.t;
    t.timestamp = formatTimestamp(arr.ts, o.timestampFormat);
    if (o.markLate) t.late = arr.late;
    yield { transaction: t, ts: arr.ts, session: arr.item.session, late: arr.late };
  }
}

/** Transactions in arrival order (see {@link TransactionsOptions}). */
export function* transactions(options: TransactionsOptions = {}): Generator<Transaction> {
  for (const a of transactionArrivals(options)) yield a.transaction;
}
