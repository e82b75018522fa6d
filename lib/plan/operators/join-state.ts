/**
 * The buffered rows of both sides of a stream-stream join in one state partition, Spark's
 * SymmetricHashJoinStateManager over sluice's versioned state store: one state row per join key holding
 * that key's buffered rows of each side (so they survive restarts with the checkpoint), and whether each
 * row has found a match yet (for outer and semi joins).
 *
 * Eviction uses the store's timeouts: a key's timeout is the earliest time at which the watermark makes one
 * of its rows useless, so a batch finds the rows to drop with `keysWithTimeoutAtOrBefore(watermark)` instead
 * of scanning the whole state, in an order that is the same in every run.
 */
import { encodeKeyString } from '../../state/value-codec.js';
import type { InputSide, KeyedState } from '../stateful-operator.js';

/** A buffered row: its column values (timestamps as epoch ms) in the side's schema order. */
export type JoinRow = unknown[];

/** What the state holds for one join key. */
export interface JoinEntry {
  left: JoinRow[];
  right: JoinRow[];
  /** Per buffered row, whether it has been joined (kept only for the sides an outer or semi join tracks). */
  leftMatched?: boolean[];
  rightMatched?: boolean[];
}

/**
 * State key of the partition's buffered-row counts per side: the progress reports rows, not keys. No join key
 * is a one-element array (one key column is stored as itself).
 */
const COUNTS_KEY = ['\u0000sluice:join-rows'];

interface Touched {
  key: unknown;
  entry: JoinEntry;
  stored: boolean;
}

/** One batch's view of a partition's join state: entries are decoded once, changed in place, written back at the end. */
export class JoinState {
  private readonly touched = new Map<unknown, Touched>();
  readonly counts: Record<InputSide, number>;
  readonly added: Record<InputSide, number> = { left: 0, right: 0 };
  readonly removed: Record<InputSide, number> = { left: 0, right: 0 };

  constructor(
    private readonly state: KeyedState,
    private readonly tracksMatches: Record<InputSide, boolean>,
    /** The earliest watermark at which a row becomes useless (Infinity: never). */
    private readonly deadlineOf: (side: InputSide, row: JoinRow) => number,
  ) {
    const c = state.get(COUNTS_KEY) as [number, number] | undefined;
    this.counts = { left: c?.[0] ?? 0, right: c?.[1] ?? 0 };
  }

  private static id(key: unknown): unknown {
    return typeof key === 'number' || typeof key === 'string' ? key : encodeKeyString(key);
  }

  /** The key's entry for changing: decoded once per batch and written back by {@link flush}. */
  entry(key: unknown): JoinEntry {
    const id = JoinState.id(key);
    let t = this.touched.get(id);
    if (!t) {
      const stored = this.state.get(key) as JoinEntry | undefined;
      t = { key, entry: stored ?? { left: [], right: [] }, stored: stored !== undefined };
      this.touched.set(id, t);
    }
    return t.entry;
  }

  /** Buffers a row of `side` under `key`. */
  add(key: unknown, side: InputSide, row: JoinRow, matched: boolean): void {
    const e = this.entry(key);
    e[side].push(row);
    if (this.tracksMatches[side]) {
      if (side === 'left') {
        e.leftMatched ??= [];
        e.leftMatched.push(matched);
      } else {
        e.rightMatched ??= [];
        e.rightMatched.push(matched);
      }
    }
    this.counts[side]++;
    this.added[side]++;
  }

  /** Marks buffered row `i` of `side` as joined; returns whether it was not before. */
  markMatched(entry: JoinEntry, side: InputSide, i: number): boolean {
    const m = side === 'left' ? entry.leftMatched : entry.rightMatched;
    if (!m || m[i]) return false;
    m[i] = true;
    return true;
  }

  /** Whether buffered row `i` of `side` has been joined. */
  static matched(entry: JoinEntry, side: InputSide, i: number): boolean {
    return (side === 'left' ? entry.leftMatched : entry.rightMatched)?.[i] ?? false;
  }

  /**
   * Drops the rows the watermark made useless from the keys whose deadline it reached, calling `onEvict` for
   * each (in key order, then side, then arrival order), e.g. to emit an outer join's unmatched rows.
   */
  evict(watermarkMs: number, onEvict: (side: InputSide, row: JoinRow, matched: boolean) => void): void {
    this.flush();
    for (const key of this.state.keysWithTimeoutAtOrBefore(watermarkMs)) {
      const e = this.entry(key);
      for (const side of ['left', 'right'] as const) {
        const rows = e[side];
        const matched = side === 'left' ? e.leftMatched : e.rightMatched;
        let kept = 0;
        for (let i = 0; i < rows.length; i++) {
          if (this.deadlineOf(side, rows[i]) <= watermarkMs) {
            onEvict(side, rows[i], matched?.[i] ?? false);
            this.counts[side]--;
            this.removed[side]++;
            continue;
          }
          rows[kept] = rows[i];
          if (matched) matched[kept] = matched[i];
          kept++;
        }
        rows.length = kept;
        if (matched) matched.length = kept;
      }
    }
    this.flush();
  }

  /** Writes the changed entries back, each with the deadline of its earliest row as timeout. */
  flush(): void {
    for (const { key, entry, stored } of this.touched.values()) {
      if (entry.left.length === 0 && entry.right.length === 0) {
        if (stored) this.state.remove(key);
        continue;
      }
      let deadline = Infinity;
      for (const side of ['left', 'right'] as const)
        for (const row of entry[side]) deadline = Math.min(deadline, this.deadlineOf(side, row));
      const value: JoinEntry = { left: entry.left, right: entry.right };
      if (entry.leftMatched) value.leftMatched = entry.leftMatched;
      if (entry.rightMatched) value.rightMatched = entry.rightMatched;
      this.state.put(key, value, deadline === Infinity ? -1 : Math.max(0, Math.floor(deadline)));
    }
    this.touched.clear();
  }

  /** Writes the changed entries and the row counts; the task runner then commits the store. */
  close(): void {
    this.flush();
    this.state.put(COUNTS_KEY, [this.counts.left, this.counts.right]);
  }

  /** State rows that hold the counts rather than a key's rows. */
  static internalRows(state: KeyedState): number {
    return state.has(COUNTS_KEY) ? 1 : 0;
  }
}
