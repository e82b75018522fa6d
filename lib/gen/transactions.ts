import { activity } from './activity.js';
import { cents, idOf } from './common.js';
import { Random } from './random.js';
import {
  arrivals,
  resolveSessionEventOptions,
  SESSION_EVENT_DEFAULTS,
  type SessionEventOptions,
} from './session-events.js';

/**
 * Customer transactions for the active-session-totals app (per-customer session sums and the global sum over active
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
export interface TransactionsOptions extends SessionEventOptions {
  /** Number of distinct customers. Default 500. */
  customers?: number;
}

/** The defaults of {@link TransactionsOptions}. */
export const TRANSACTIONS_DEFAULTS = {
  ...SESSION_EVENT_DEFAULTS,
  customers: 500,
  meanSpacingMs: 1_000,
  meanSessionEvents: 5,
  meanThinkTimeMs: 20_000,
  sessionGapMs: 5 * 60_000,
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
  const o = resolveSessionEventOptions<TransactionsOptions>(TRANSACTIONS_DEFAULTS, options);
  const amountRng = new Random(o.seed).fork('amounts');
  const customerIds = Array.from({ length: o.customers }, (_, c) => idOf('cust', c, o.customers));
  const acts = activity({ ...o, users: o.customers });
  function* inTimeOrder(): Generator<{ record: Transaction; ts: number; session: number }> {
    for (const a of acts) {
      const amount = Math.max(0.01, cents(amountRng.logNormal(Math.log(25), 1)));
      yield { record: { customer_id: customerIds[a.user], amount, timestamp: '' }, ts: a.ts, session: a.session };
    }
  }
  for (const arr of arrivals(inTimeOrder(), o)) {
    yield { transaction: arr.item.record, ts: arr.ts, session: arr.item.session, late: arr.late };
  }
}

/** Transactions in arrival order (see {@link TransactionsOptions}). */
export function* transactions(options: TransactionsOptions = {}): Generator<Transaction> {
  for (const a of transactionArrivals(options)) yield a.transaction;
}
