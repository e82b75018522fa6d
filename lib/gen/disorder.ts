import { badOption } from './common.js';
import { KeyedHeap } from './heap.js';
import { Random, type Seed } from './random.js';

/**
 * Turns an event-time ordered stream into an arrival order with bounded disorder and a fraction of late
 * events, the two cases a bounded-out-of-orderness watermark must tell apart.
 *
 * Let M be the largest event time among the events that arrived before a given event, and d = M − ts
 * its delay behind them:
 * - an on-time event has d < maxOutOfOrdernessMs (d ≤ 0 when the bound is 0): a watermark of
 *   `max event time − bound` never drops it, whether late means `ts < watermark` or `ts ≤ watermark`;
 * - a late event has d > maxOutOfOrdernessMs, normally by `lateByMs` ∈ [lateByMinMs, lateByMaxMs]: it
 *   is released right after the first event whose time reaches `ts + bound + lateBy`. Late events near
 *   the end of the stream, where no such event comes, arrive last with whatever delay they have: they stay
 *   late when d > bound, count as on-time when d < bound, and get 1 ms earlier (so d = bound + 1) when d
 *   equals the bound exactly.
 *
 * A micro-batch engine advances its watermark once per batch, so whether a late event is dropped
 * there also depends on batch boundaries: pick `lateByMinMs` large against the event time a batch spans.
 */
export interface DisorderOptions {
  /** PRNG seed for the jitter and the choice of late events. */
  seed: Seed;
  /** Bound of the disorder of on-time events, milliseconds (≥ 0; 0 keeps them in event-time order). */
  maxOutOfOrdernessMs: number;
  /** Fraction of events made late, in [0, 1]. */
  lateFraction: number;
  /** Smallest extra delay of a late event beyond the bound, milliseconds (≥ 1). Default 60 000. */
  lateByMinMs?: number;
  /** Largest extra delay of a late event beyond the bound, milliseconds (≥ lateByMinMs). Default 600 000. */
  lateByMaxMs?: number;
}

/** One event in arrival order. */
export interface Arrival<T> {
  item: T;
  /** The event time to emit (equal to the input's, or 1 ms earlier in the end-of-stream case above). */
  ts: number;
  /** True when the event arrives more than the bound behind an earlier event. */
  late: boolean;
}

const DEFAULT_LATE_BY_MIN_MS = 60_000;
const DEFAULT_LATE_BY_MAX_MS = 600_000;

/** Validates disorder options; returns a message naming the first bad one, or undefined. */
export function checkDisorderOptions(o: DisorderOptions): string | undefined {
  if (!Number.isSafeInteger(o.maxOutOfOrdernessMs) || o.maxOutOfOrdernessMs < 0) {
    return `maxOutOfOrdernessMs must be a non-negative integer of milliseconds, got ${o.maxOutOfOrdernessMs}`;
  }
  if (!(o.lateFraction >= 0 && o.lateFraction <= 1))
    return `lateFraction must be between 0 and 1, got ${o.lateFraction}`;
  const min = o.lateByMinMs ?? DEFAULT_LATE_BY_MIN_MS;
  const max = o.lateByMaxMs ?? Math.max(min, DEFAULT_LATE_BY_MAX_MS);
  if (!Number.isSafeInteger(min) || min < 1) return `lateByMinMs must be an integer ≥ 1, got ${min}`;
  if (!Number.isSafeInteger(max) || max < min)
    return `lateByMaxMs must be an integer ≥ lateByMinMs (${min}), got ${max}`;
  return undefined;
}

interface Held<T> {
  item: T;
  ts: number;
}

/**
 * Reorders `items` (whose `tsOf` must not decrease) into arrival order. Memory holds the events of
 * one bound's worth of event time plus the pending late events. Throws SluiceError GEN_BAD_OPTION on bad
 * options and RangeError on decreasing input times (a bug in the caller).
 */
export function* disorder<T>(items: Iterable<T>, tsOf: (item: T) => number, o: DisorderOptions): Generator<Arrival<T>> {
  const bad = checkDisorderOptions(o);
  if (bad) throw badOption(bad);
  const bound = o.maxOutOfOrdernessMs;
  const lateMin = o.lateByMinMs ?? DEFAULT_LATE_BY_MIN_MS;
  const lateMax = o.lateByMaxMs ?? Math.max(lateMin, DEFAULT_LATE_BY_MAX_MS);
  const rng = new Random(o.seed).fork('disorder');
  const onTime = new KeyedHeap<Held<T>>();
  const pendingLate = new KeyedHeap<Held<T>>();
  let maxTs = -Infinity;
  let prevTs = -Infinity;

  function* emit(h: Held<T>): Generator<Arrival<T>> {
    yield { item: h.item, ts: h.ts, late: false };
    if (h.ts > maxTs) maxTs = h.ts;
    while (pendingLate.peekKey() <= maxTs) {
      const l = pendingLate.pop()!;
      yield { item: l.item, ts: l.ts, late: true };
    }
  }

  for (const item of items) {
    const ts = tsOf(item);
    if (!(ts >= prevTs)) throw new RangeError(`disorder needs event times in order: ${ts} came after ${prevTs}`);
    prevTs = ts;
    while (onTime.peekKey() <= ts) yield* emit(onTime.pop()!);
    if (o.lateFraction > 0 && rng.chance(o.lateFraction)) {
      pendingLate.push(ts + bound + rng.intBetween(lateMin, lateMax), { item, ts });
    } else {
      onTime.push(bound > 0 ? ts + rng.int(bound) : ts, { item, ts });
    }
  }
  while (onTime.size > 0) yield* emit(onTime.pop()!);
  while (pendingLate.size > 0) {
    const l = pendingLate.pop()!;
    const d = maxTs - l.ts;
    if (d > bound) {
      yield { item: l.item, ts: l.ts, late: true };
    } else if (d < bound || d <= 0) {
      yield { item: l.item, ts: l.ts, late: false };
      if (l.ts > maxTs) maxTs = l.ts;
    } else {
      yield { item: l.item, ts: l.ts - 1, late: true };
    }
  }
}
