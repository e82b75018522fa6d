/**
 * One state partition's aggregation in one batch (Spark's StateStoreSaveExec): the rows' local groups fold
 * into per-group partials, which merge into the state store's buffers once per group; then the windows the
 * watermark closed are emitted and evicted. Session windows merge instead (session-merge.ts).
 */
import type { RecordBatch, Schema } from 'apache-arrow';
import type { OutputMode } from '../../sinks/output-mode.js';
import type { AggregateFunction, Partial } from '../aggregates/aggregate-functions.js';
import { keysToEvict, type StatefulContext } from '../stateful-operator.js';
import { lastWindowStart, type SessionWindowGrouping, type TimeWindowGrouping, windowsPerRow } from '../windows.js';
import type { AggregateDefinition } from './aggregate-definition.js';
import { type BatchKeys, type LocalKeys, makeKey, splitKey } from './aggregate-keys.js';
import { type AggregateSchemas, isSchemaKey, lateRows, OutputRows } from './aggregate-output.js';
import type { DecodedState } from './decoded-state.js';

/** What a run needs of its operator. */
export interface AggregationShape {
  readonly def: AggregateDefinition;
  /** The window or session grouping, if any. */
  readonly window: TimeWindowGrouping | SessionWindowGrouping | null;
  /** Number of key components (groupings other than the window). */
  readonly componentCount: number;
  readonly schemas: AggregateSchemas;
  /** The key component that is the event-time column itself, or -1 (see AggregateOperator.eventTimeKey). */
  eventTimeKey(eventTimeColumn: string | undefined): number;
}

/** A timestamp for messages; the watermark may be -Infinity. */
export function iso(ms: number): string {
  return Number.isFinite(ms) ? new Date(ms).toISOString() : String(ms);
}

/** One partition's work in one batch: what plain, time-window and session aggregation share. */
export abstract class AggregationRun {
  protected readonly def: AggregateDefinition;
  protected readonly fns: AggregateFunction[];
  /** Per-key state through the decoded cache; `state.state` is the store itself (timeouts, sorted entries). */
  protected readonly state: DecodedState;
  /** The watermark, or -Infinity when the query has none. */
  protected readonly wm: number;
  protected readonly lateness: number;
  /** The key component that is the event-time column (its groups close like windows ending at that time), or -1. */
  protected readonly eventTimeKey: number;
  /** Whether closed windows are evicted and late rows dropped (not in complete mode, unless changelog). */
  protected readonly evicts: boolean;
  protected readonly mode: OutputMode | 'changelog';
  protected readonly rows: OutputRows;
  /** Late row indices per batch, with their reasons. */
  private readonly late = new Map<number, { idx: number[]; reasons: string[] }>();

  constructor(
    protected readonly shape: AggregationShape,
    protected readonly ctx: StatefulContext,
    state: DecodedState,
    output: Schema,
  ) {
    this.def = shape.def;
    this.fns = shape.def.aggregates.map((a) => a.fn);
    this.state = state;
    this.wm = ctx.eventTimeColumn !== undefined ? ctx.watermarkMs : -Infinity;
    this.lateness = shape.def.allowedLatenessMs;
    this.mode = shape.def.changelog ? 'changelog' : ctx.outputMode;
    this.eventTimeKey = shape.eventTimeKey(ctx.eventTimeColumn);
    this.evicts = (shape.window !== null || this.eventTimeKey >= 0) && this.mode !== 'complete';
    this.rows = new OutputRows(shape.def, output);
  }

  /** Aggregates the partition's batches into its state; returns the output rows (late rows go to the context). */
  abstract run(keyed: BatchKeys[], keys: LocalKeys): RecordBatch[];

  protected markLate(b: number, i: number, reason: string, byWatermark: boolean): void {
    let l = this.late.get(b);
    if (!l) {
      l = { idx: [], reasons: [] };
      this.late.set(b, l);
    }
    l.idx.push(i);
    l.reasons.push(reason);
    if (byWatermark) this.ctx.metrics.numRowsDroppedByWatermark++;
  }

  /** Hands the late rows to the late-data output and returns the output rows. */
  protected finish(keyed: BatchKeys[]): RecordBatch[] {
    if (this.ctx.lateOutput) {
      for (const [b, { idx, reasons }] of this.late) {
        const batch = keyed[b].batch;
        this.ctx.late.push(lateRows(batch, this.shape.schemas.bind(batch.schema).late, idx, reasons, this.wm));
        this.ctx.metrics.numLateRows += idx.length;
      }
    }
    return this.rows.batch();
  }

  protected closed(end: number): boolean {
    return this.evicts && end + this.lateness <= this.wm;
  }

  protected timeout(end: number): number {
    return this.evicts ? end + this.lateness : -1;
  }

  /** Folds the rows assigned to local groups into per-aggregate partials: groupsPerBatch[b][slot][row]. */
  protected partials(keyed: BatchKeys[], groupsPerBatch: Int32Array[][], numGroups: number): Partial[] {
    const parts = this.fns.map((f) => f.newPartial(numGroups));
    for (let b = 0; b < keyed.length; b++) {
      const args = keyed[b].args;
      for (const groups of groupsPerBatch[b]) for (let a = 0; a < parts.length; a++) parts[a].update(groups, args[a]);
    }
    return parts;
  }

  /** A new group's buffers: its partials. */
  protected buffersOf(parts: Partial[], g: number): unknown[] {
    const out = new Array<unknown>(parts.length);
    for (let a = 0; a < parts.length; a++) out[a] = parts[a].buffer(g);
    return out;
  }

  /**
   * Merges group g's partials into `older` in place. Older buffers are the state's own (cached or freshly
   * read), changed in place and put back in this batch; results wanted from them come first.
   */
  protected mergePartials(older: unknown[], parts: Partial[], g: number): void {
    for (let a = 0; a < parts.length; a++) older[a] = this.fns[a].merge(older[a], parts[a].buffer(g));
  }

  /** Merges `newer` buffers into `older` in place (two stored sessions that a row bridges). */
  protected mergeBuffers(older: unknown[], newer: unknown[]): void {
    for (let a = 0; a < older.length; a++) older[a] = this.fns[a].merge(older[a], newer[a]);
  }
}

/**
 * This batch's local groups: group g is key `kid[g]` in the window starting at `start[g]` (0 without a
 * window), and `perBatch[b][slot][row]` is the group of each row's slot-th window (-1 for none).
 */
interface LocalGroups {
  kid: number[];
  start: number[];
  perBatch: Int32Array[][];
}

/**
 * Aggregation by key, or by key and time window (tumbling or sliding). A key that includes the event-time
 * column closes, like a window, when the watermark reaches that time.
 */
export class GroupAggregationRun extends AggregationRun {
  private readonly w = this.shape.window as TimeWindowGrouping | null;

  run(keyed: BatchKeys[], keys: LocalKeys): RecordBatch[] {
    const groups = this.assignGroups(keyed, keys);
    const parts = this.partials(keyed, groups.perBatch, groups.kid.length);
    this.state.expectKeys(groups.kid.length);
    this.updateGroups(groups, parts, keys.components);
    if (this.evicts && Number.isFinite(this.wm)) this.evictClosedGroups();
    if (this.mode === 'complete') this.emitAll();
    return this.finish(keyed);
  }

  /** When the group of these key components closes: its event-time component, or null when it has none. */
  private eventTimeOf(components: unknown[]): number | null {
    const t = this.eventTimeKey >= 0 ? components[this.eventTimeKey] : null;
    return typeof t === 'number' ? t : null;
  }

  /**
   * Assigns each row to its key's group in every window it falls in that is still open (without a window, to
   * its key's group unless the watermark closed it); marks rows with no open group late.
   */
  private assignGroups(keyed: BatchKeys[], keys: LocalKeys): LocalGroups {
    const w = this.w;
    const groupKid: number[] = [];
    const groupStart: number[] = [];
    const winOfKid: Map<number, number>[] = [];
    // Without a window: the group of each key, -1 for a key whose event time the watermark has passed.
    const groupOfKid: number[] = [];
    const groupsPerBatch: Int32Array[][] = [];
    const slots = w ? windowsPerRow(w) : 1;
    keyed.forEach((k, b) => {
      const n = k.batch.numRows;
      const perSlot = Array.from({ length: slots }, () => new Int32Array(n).fill(-1));
      groupsPerBatch.push(perSlot);
      for (let i = 0; i < n; i++) {
        const kid = keys.of(k, i);
        if (!w) {
          if (kid === groupOfKid.length) {
            const t = this.eventTimeOf(keys.components[kid]);
            const open = t === null || !this.closed(t);
            groupOfKid.push(open ? groupKid.length : -1);
            if (open) {
              groupKid.push(kid);
              groupStart.push(0);
            }
          }
          const g = groupOfKid[kid];
          if (g >= 0) perSlot[0][i] = g;
          else {
            const t = this.eventTimeOf(keys.components[kid])!;
            this.markLate(b, i, `behind the watermark: event time ${iso(t)} is at or before the watermark`, true);
          }
          continue;
        }
        if (kid === winOfKid.length) winOfKid.push(new Map());
        const times = k.times!;
        if (times.valid && !times.valid[i]) {
          this.markLate(b, i, 'event time is null', false);
          continue;
        }
        const ts = times.vals[i];
        let start = lastWindowStart(ts, w.slideMs, w.offsetMs);
        let alive = 0;
        let latestEnd = -Infinity;
        for (let s = 0; s < slots; s++, start -= w.slideMs) {
          const end = start + w.sizeMs;
          if (end <= ts) break;
          latestEnd = Math.max(latestEnd, end);
          if (this.closed(end)) continue;
          const wins = winOfKid[kid];
          let g = wins.get(start);
          if (g === undefined) {
            g = groupKid.length;
            wins.set(start, g);
            groupKid.push(kid);
            groupStart.push(start);
          }
          perSlot[s][i] = g;
          alive++;
        }
        if (alive === 0) {
          this.markLate(
            b,
            i,
            `behind the watermark: event time ${iso(ts)}, its last window ended ${iso(latestEnd)}` +
              (this.lateness > 0 ? ` and allowed lateness (${this.lateness} ms) has passed` : ''),
            true,
          );
        }
      }
    });
    return { kid: groupKid, start: groupStart, perBatch: groupsPerBatch };
  }

  /** Merges each group's partials into its stored buffers (or stores them as a new group) and emits what the mode asks for. */
  private updateGroups(groups: LocalGroups, parts: Partial[], kidComponents: unknown[][]): void {
    const w = this.w;
    const { kid: groupKid, start: groupStart } = groups;
    for (let g = 0; g < groupKid.length; g++) {
      const components = kidComponents[groupKid[g]];
      const key = makeKey(w ? [...components, groupStart[g]] : components);
      const old = this.state.get(key) as unknown[] | undefined;
      const window = w ? { start: groupStart[g], end: groupStart[g] + w.sizeMs } : null;
      // Results of the old buffers first: merging may change them in place.
      if (old && this.mode === 'changelog') this.rows.push(components, window, old, -1);
      let buffers: unknown[];
      if (old) {
        this.mergePartials(old, parts, g);
        buffers = old;
      } else buffers = this.buffersOf(parts, g);
      const closesAt = window ? window.end : this.eventTimeOf(components);
      this.state.put(key, buffers, closesAt === null ? -1 : this.timeout(closesAt));
      if (this.mode === 'update' || this.mode === 'changelog') this.rows.push(components, window, buffers, 1);
    }
  }

  /** Emits (append: the result; changelog: its retraction) and evicts the windows and groups the watermark closed. */
  private evictClosedGroups(): void {
    for (const key of keysToEvict(this.ctx, this.wm)) {
      const buffers = this.state.get(key) as unknown[];
      const { components, window } = this.groupOf(key);
      if (this.mode === 'append') this.rows.push(components, window, buffers);
      else if (this.mode === 'changelog') this.rows.push(components, window, buffers, -1);
      this.state.remove(key);
    }
  }

  /** Complete mode: every group, in key order. */
  private emitAll(): void {
    for (const [key, buffers] of this.state.state.sortedEntries()) {
      if (isSchemaKey(key)) continue;
      const { components, window } = this.groupOf(key);
      this.rows.push(components, window, buffers as unknown[]);
    }
  }

  /** The key components and window of a stored group key. */
  private groupOf(key: unknown): { components: unknown[]; window: { start: number; end: number } | null } {
    const w = this.w;
    const parts = splitKey(key, w ? this.shape.componentCount + 1 : this.shape.componentCount);
    if (!w) return { components: parts, window: null };
    const start = parts[parts.length - 1] as number;
    return { components: parts.slice(0, -1), window: { start, end: start + w.sizeMs } };
  }
}
