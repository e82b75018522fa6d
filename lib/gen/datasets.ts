import { SluiceError } from '../errors.js';
import { bank } from './bank.js';
import { clickstream } from './clickstream.js';
import type { TimestampFormat } from './common.js';
import { deposits } from './deposits.js';
import { nexmark } from './nexmark.js';
import type { Seed } from './random.js';
import type { SessionEventOptions } from './session-events.js';
import { transactions } from './transactions.js';

/** Parameters a caller (the CLI, the sample-data script) can set; each dataset uses those in its `params`. */
export interface GenParams {
  /** Number of records (Infinity: endless). */
  count: number;
  /** PRNG seed. */
  seed: Seed;
  /** Distinct users (clickstream). */
  users?: number;
  /** Distinct customers (transactions). */
  customers?: number;
  /** Distinct accounts (bank). */
  accounts?: number;
  /** Sessions open at once (deposits). */
  sessions?: number;
  /** Event time of the first record, epoch ms (clickstream, transactions, nexmark). */
  startTime?: number;
  /** Mean event-time spacing between consecutive records, ms (clickstream, transactions). */
  meanSpacingMs?: number;
  /** Inactivity gap between a user's sessions, ms (clickstream, transactions). */
  sessionGapMs?: number;
  /** Disorder bound of on-time records, ms (clickstream, transactions). */
  maxOutOfOrdernessMs?: number;
  /** Fraction of records later than the bound (clickstream, transactions). */
  lateFraction?: number;
  /** Smallest delay of a late record beyond the bound, ms. */
  lateByMinMs?: number;
  /** Largest delay of a late record beyond the bound, ms. */
  lateByMaxMs?: number;
  /** Add `late: true|false` to each record (clickstream, transactions). */
  markLate?: boolean;
  /** `iso` or `epoch-ms` timestamps (clickstream, transactions). */
  timestampFormat?: TimestampFormat;
  /** Event-time rate of the Nexmark generator, events/s (its firstEventRate). */
  eventRate?: number;
}

/** A parameter that only some datasets take. */
export type GenParam = Exclude<keyof GenParams, 'count' | 'seed'>;

/** A dataset `sluice gen` can produce. */
export interface Dataset {
  name: string;
  /** One line for `--help`. */
  description: string;
  /** `jsonl` (objects, one JSON document a line) or `txt` (text lines). */
  format: 'jsonl' | 'txt';
  /** The parameters it takes beyond count and seed. */
  params: readonly GenParam[];
  /** The records for `p` (ignores parameters not in `params`). */
  records(p: GenParams): Iterable<unknown>;
}

const EVENT_TIME_PARAMS: readonly GenParam[] = [
  'startTime',
  'meanSpacingMs',
  'sessionGapMs',
  'maxOutOfOrdernessMs',
  'lateFraction',
  'lateByMinMs',
  'lateByMaxMs',
  'markLate',
  'timestampFormat',
];

/** The session-event options (clickstream, transactions) among `p`. */
function sessionEventOptions(p: GenParams): SessionEventOptions {
  return {
    count: p.count,
    seed: p.seed,
    startTime: p.startTime,
    meanSpacingMs: p.meanSpacingMs,
    sessionGapMs: p.sessionGapMs,
    maxOutOfOrdernessMs: p.maxOutOfOrdernessMs,
    lateFraction: p.lateFraction,
    lateByMinMs: p.lateByMinMs,
    lateByMaxMs: p.lateByMaxMs,
    markLate: p.markLate,
    timestampFormat: p.timestampFormat,
  };
}

/** Every dataset, by name. */
export const DATASETS: Readonly<Record<string, Dataset>> = Object.freeze({
  clickstream: {
    name: 'clickstream',
    description: 'web shop clickstream events, JSON (clickstream-sessions, clickstream-metrics)',
    format: 'jsonl',
    params: ['users', ...EVENT_TIME_PARAMS],
    records: (p: GenParams) => clickstream({ ...sessionEventOptions(p), users: p.users }),
  },
  transactions: {
    name: 'transactions',
    description: 'customer transactions {customer_id, amount, timestamp}, JSON (active-session-totals)',
    format: 'jsonl',
    params: ['customers', ...EVENT_TIME_PARAMS],
    records: (p: GenParams) => transactions({ ...sessionEventOptions(p), customers: p.customers }),
  },
  deposits: {
    name: 'deposits',
    description: 'game session lines sessionId,winAmount[,true], text (deposit-sessions)',
    format: 'txt',
    params: ['sessions'],
    records: (p: GenParams) => deposits({ count: p.count, seed: p.seed, concurrentSessions: p.sessions }),
  },
  bank: {
    name: 'bank',
    description: 'bank account operations {account, amount}, JSON (bank-account)',
    format: 'jsonl',
    params: ['accounts'],
    records: (p: GenParams) => bank({ count: p.count, seed: p.seed, accounts: p.accounts }),
  },
  nexmark: {
    name: 'nexmark',
    description: 'Nexmark auction events {type, person|auction|bid}, JSON (the Nexmark benchmark)',
    format: 'jsonl',
    params: ['startTime', 'eventRate'],
    records: (p: GenParams) =>
      nexmark({ count: p.count, seed: p.seed, baseTime: p.startTime, firstEventRate: p.eventRate }),
  },
});

/** The dataset called `name`; an unknown name is a SluiceError listing the accepted ones. */
export function dataset(name: string): Dataset {
  const d = Object.hasOwn(DATASETS, name) ? DATASETS[name] : undefined;
  if (!d) {
    throw new SluiceError(
      'GEN_UNKNOWN_DATASET',
      `unknown dataset '${name}'`,
      `accepted: ${Object.keys(DATASETS).join(', ')}`,
    );
  }
  return d;
}
