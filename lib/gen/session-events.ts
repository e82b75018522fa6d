import {
  checkTimestampFormat,
  DEFAULT_START_TIME,
  formatTimestamp,
  type TimestampFormat,
  withDefaults,
} from './common.js';
import { type Arrival, disorder } from './disorder.js';
import type { Seed } from './random.js';

/**
 * Options of the generators of per-user sessions in event time with disorder (clickstream, transactions):
 * the activity (activity.ts) that makes the sessions, the disorder (disorder.ts) that makes the arrival order, and how
 * records carry their event time. Each generator has its own defaults for the session shape.
 */
export interface SessionEventOptions {
  /** Number of records (Infinity: endless). Default 10 000. */
  count?: number;
  /** PRNG seed: same seed and options, same records. Default 1. */
  seed?: Seed;
  /** Event time of the first record, epoch ms. Default 2024-01-01T00:00:00Z. */
  startTime?: number;
  /** Mean event-time distance between consecutive records over all users, ms. */
  meanSpacingMs?: number;
  /** Mean number of records in a session. */
  meanSessionEvents?: number;
  /** Mean event-time distance between two records of one session, ms. */
  meanThinkTimeMs?: number;
  /** Inactivity gap separating a user's sessions, ms (the job's session gap). */
  sessionGapMs?: number;
  /** On-time records arrive less than this far behind earlier ones, ms. Default 0 (in order). */
  maxOutOfOrdernessMs?: number;
  /** Fraction of records that arrive later than the bound. Default 0. */
  lateFraction?: number;
  /** Smallest delay of a late record beyond the bound, ms. Default 60 000. */
  lateByMinMs?: number;
  /** Largest delay of a late record beyond the bound, ms. Default 600 000. */
  lateByMaxMs?: number;
  /** `iso` (default) or `epoch-ms`. */
  timestampFormat?: TimestampFormat;
  /** Adds `late: true|false` to every record, so a file says which records are late. Default false. */
  markLate?: boolean;
}

/** The defaults every session-event generator shares; each adds those of the session shape. */
export const SESSION_EVENT_DEFAULTS = {
  count: 10_000,
  seed: 1,
  startTime: DEFAULT_START_TIME,
  maxOutOfOrdernessMs: 0,
  lateFraction: 0,
  lateByMinMs: 60_000,
  lateByMaxMs: 600_000,
  timestampFormat: 'iso' as TimestampFormat,
  markLate: false,
} satisfies Omit<
  Required<SessionEventOptions>,
  'meanSpacingMs' | 'meanSessionEvents' | 'meanThinkTimeMs' | 'sessionGapMs'
>;

/** `options` over `defaults`, with the timestamp format checked. */
export function resolveSessionEventOptions<T extends SessionEventOptions>(
  defaults: Required<T>,
  options: T,
): Required<T> {
  const o = withDefaults<T>(defaults, options);
  // TypeScript does not see that Required<T> keeps the shared fields required
  checkTimestampFormat((o as Required<SessionEventOptions>).timestampFormat);
  return o;
}

/** A generated record whose event time is set when it arrives. */
export interface TimedRecord {
  timestamp: string | number;
  late?: boolean;
}

/**
 * `items` (in event-time order) in arrival order, as `o` sets the disorder, with each item's record given
 * its arrival event time in `o.timestampFormat` and, with `o.markLate`, its late flag.
 */
export function* arrivals<X extends { record: TimedRecord; ts: number }>(
  items: Iterable<X>,
  o: Required<SessionEventOptions>,
): Generator<Arrival<X>> {
  for (const arr of disorder(items, (x) => x.ts, {
    seed: o.seed,
    maxOutOfOrdernessMs: o.maxOutOfOrdernessMs,
    lateFraction: o.lateFraction,
    lateByMinMs: o.lateByMinMs,
    lateByMaxMs: o.lateByMaxMs,
  })) {
    const record = arr.item.record;
    record.timestamp = formatTimestamp(arr.ts, o.timestampFormat);
    if (o.markLate) record.late = arr.late;
    yield arr;
  }
}
