/**
 * Streaming aggregation: `groupBy(keys..., window | session_window | bucket).agg(...)`.
 *
 * Per state partition and batch: rows are assigned to local groups (key, and window when there is one) with
 * one Map lookup per row, each aggregate folds its argument columns into per-group partials with typed-array
 * loops, and each touched group's buffers are merged into the state store once. State per group is the
 * array of aggregate buffers; for session windows, the key's open sessions `[start, end, buffers][]`.
 *
 * Watermark rules (see lib/plan/windows.ts for the window conventions), with W the batch's watermark and
 * L the allowed lateness:
 * - a window with end + L <= W is closed: its state is evicted (append mode emits it then, once);
 * - a row is late when every time window it falls in is closed, or, for session windows, when its event
 *   time is at or before W - L (a session it would touch may already be evicted; on-time rows are after W);
 *   late rows are not aggregated, they are counted in numRowsDroppedByWatermark and handed to the
 *   late-data output with the reason and W;
 * - complete mode keeps every group (its output is the whole result) and so never drops rows.
 * Aggregations without a window ignore the watermark, as Spark's do.
 *
 * Output modes: append emits each window once when it closes; update emits the groups a batch changed;
 * complete emits all groups. A changelog aggregation (`.changelog()`) ignores the output mode and emits a
 * retract stream of the currently open groups: +1 rows for new results, -1 rows for results they replace,
 * for sessions merged away and for windows that close; aggregating its `change`-weighted values downstream
 * gives totals over open windows (the active-session-totals app).
 *
 * Output order is deterministic: touched groups in order of first appearance in the partition's rows,
 * closing windows by end time then key, complete mode by key.
 */
import {
  Data, Field, Int, Int32, Schema, Struct, Table, TimestampMillisecond, Type, Utf8, tableFromIPC, tableToIPC, type RecordBatch,
} from 'apache-arrow';
import { batchFromColumns, batchOf, dataFromValues, emptyBatch, takeRows, utf8Data } from '../../arrow/index.js';
import type { Column } from '../../api/column.js';
import { parseDuration } from '../../api/duration.js';
import { SluiceError } from '../../errors.js';
import type { OutputMode } from '../../sinks/sink.js';
import { hashKey, partitionOf, partitionsOfData } from '../../state/state-partitioner.js';
import type { AggregateFunction } from '../aggregates/aggregate-functions.js';
import { ArgColumn } from '../aggregates/aggregate-functions.js';
import { numbersOf, parseNumber, scalarsOf, valueType } from '../aggregates/column-values.js';
import { evaluate, resultField, type EvalContext } from '../expression-eval.js';
import type { KeyedState, StatefulContext, StatefulOperator } from '../stateful-operator.js';
import { lastWindowStart, windowsPerRow, type Grouping, type SessionWindowGrouping, type TimeWindowGrouping } from '../windows.js';

/** One aggregate of an `agg(...)` call. */
export interface AggregateCall {
  fn: AggregateFunction;
  args: Column[];
  alias?: string;
}

/** What `groupBy(...).agg(...)` describes. */
export interface AggregateDefinition {
  groupings: Grouping[];
  aggregates: AggregateCall[];
  allowedLatenessMs: number;
  changelog: boolean;
  /** An aggregation that is not a changelog runs below this one (it re-emits groups outside append mode). */
  afterAggregation?: boolean;
}

/** Column of a changelog aggregation: +1 for a result that enters, -1 for one that leaves. */
export const CHANGE_COLUMN = 'change';
/** Columns added to rows sent to the late-data output. */
export const LATE_REASON_COLUMN = 'late_reason';
export const LATE_WATERMARK_COLUMN = 'late_watermark';

/**
 * State key of the partition's output schema (Arrow IPC bytes): a batch without input rows may still have
 * to emit (windows closing), and must then know the column types. No group key is a one-element array.
 */
const SCHEMA_KEY = ['\u0000sluice:output-schema'];

const TIMESTAMP = (): TimestampMillisecond => new TimestampMillisecond('UTC');
const windowStruct = (): Struct => new Struct([new Field('start', TIMESTAMP(), true), new Field('end', TIMESTAMP(), true)]);

function iso(ms: number): string {
  return Number.isFinite(ms) ? new Date(ms).toISOString() : String(ms);
}

/** A group key as stored: one component as itself, several (or none) as an array. */
function makeKey(components: unknown[]): unknown {
  return components.length === 1 ? components[0] : components;
}

function splitKey(key: unknown, numComponents: number): unknown[] {
  return numComponents === 1 ? [key] : key as unknown[];
}

/** A string identifying a tuple of scalars (strings are length-prefixed, so no two tuples collide). */
function tupleId(values: unknown[]): string {
  let s = '';
  for (const v of values) {
    if (typeof v === 'string') s += `s${v.length}:${v}`;
    else if (v === null || v === undefined) s += 'z';
    else s += `${typeof v === 'number' ? 'n' : 'b'}${String(v)}|`;
  }
  return s;
}

function schemaBytes(schema: Schema): Uint8Array {
  return tableToIPC(new Table(emptyBatch(schema)), 'stream');
}

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** The aggregation bound to one input schema. */
interface Bound {
  output: Schema;
  outputBytes: Uint8Array;
  /** Input fields of the late-data rows (the input's, plus reason and watermark). */
  late: Schema;
}

/** A window/session value as emitted. */
interface WindowValue { start: number; end: number; }

/** Output rows gathered column by column. */
class OutputRows {
  readonly columns: unknown[][];
  length = 0;

  constructor(private readonly op: AggregateOperator, private readonly schema: Schema) {
    this.columns = schema.fields.map(() => []);
  }

  /** One row from aggregate buffers: key components in grouping order (window excluded), the window, change sign. */
  push(components: unknown[], window: WindowValue | null, buffers: unknown[], change?: number): void {
    const cols = this.columns;
    let c = 0;
    let k = 0;
    for (const g of this.op.def.groupings) {
      if (g.kind === 'window' || g.kind === 'session') cols[c++].push(window);
      else cols[c++].push(components[k++]);
    }
    const aggs = this.op.def.aggregates;
    for (let a = 0; a < aggs.length; a++) cols[c++].push(aggs[a].fn.result(buffers[a]));
    if (this.op.def.changelog) cols[c].push(change ?? 1);
    this.length++;
  }

  batch(): RecordBatch[] {
    return this.length === 0 ? [] : [batchFromColumns(this.schema, this.columns, this.length)];
  }
}

/** Evaluated grouping inputs of one batch. */
interface BatchKeys {
  batch: RecordBatch;
  /** Key component values per component (window excluded), one entry per row. */
  components: unknown[][];
  /** Event times (ms) and their validity, when there is a window. */
  times?: { vals: ArrayLike<number>; valid: Uint8Array | null };
  /** Per-row session gaps in ms (NaN where invalid), when the gap is a column. */
  gaps?: Float64Array;
  args: ArgColumn[][];
}

/** The `groupBy(...).agg(...)` operator; see the module comment. */
export class AggregateOperator implements StatefulOperator {
  readonly name: string;
  readonly outputSchema = null;
  readonly usesWatermark: boolean;
  readonly outputModes: readonly OutputMode[] = ['append', 'update', 'complete'];
  /** The window or session grouping, if any. */
  readonly window: TimeWindowGrouping | SessionWindowGrouping | null;
  private readonly numComponents: number;
  private readonly bound = new WeakMap<Schema, Bound>();
  private readonly storedSchemas = new Map<string, Schema>();

  constructor(readonly def: AggregateDefinition) {
    const windows = def.groupings.filter((g): g is TimeWindowGrouping | SessionWindowGrouping => g.kind === 'window' || g.kind === 'session');
    if (windows.length > 1) {
      throw new SluiceError('ANALYSIS', 'groupBy() has more than one window or session_window column',
        'group by one event-time window, plus any plain columns');
    }
    if (def.aggregates.length === 0) throw new SluiceError('ANALYSIS', 'agg() needs at least one aggregate', "e.g. agg(count('*'), sum('amount'))");
    this.window = windows[0] ?? null;
    this.numComponents = def.groupings.length - (this.window ? 1 : 0);
    this.usesWatermark = this.window !== null;
    this.name = this.window?.kind === 'session' ? 'sessionWindowAggregate' : this.window ? 'windowAggregate' : 'aggregate';
  }

  analyze(info: { outputMode: OutputMode; hasWatermark: boolean; eventTimeColumn?: string }): string | null {
    const w = this.window;
    if (w && info.eventTimeColumn) {
      const t = w.time.expr;
      const name = t.kind === 'col' ? t.name : t.kind === 'alias' && t.child.kind === 'col' ? t.child.name : null;
      if (name !== null && name !== info.eventTimeColumn) {
        return `the ${w.kind === 'session' ? 'session_window' : 'window'} is over '${name}' but the watermark is defined on '${info.eventTimeColumn}'; windows can only be closed by the watermark of their own event-time column`;
      }
    }
    if (this.def.afterAggregation && info.outputMode !== 'append') {
      return `Multiple streaming aggregations are not supported with ${info.outputMode} output mode: the aggregation below ` +
        're-emits every group it changes, so this one would count them again; make the one below a changelog ' +
        "(groupBy(...).changelog().agg(...)) and aggregate value × change here, or use outputMode('append')";
    }
    if (this.def.changelog || info.outputMode !== 'append') return null;
    if (!info.hasWatermark) {
      return 'Append output mode not supported when there are streaming aggregations on streaming Datasets without watermark: ' +
        "add withWatermark('<event time column>', '<delay>') before groupBy, or use outputMode('update')";
    }
    if (!w) {
      return 'Append output mode needs an event-time window in the grouping (window(...) or session_window(...)), ' +
        "because only a window that the watermark has passed is final; use outputMode('update') or 'complete' for other groupings";
    }
    return null;
  }

  private evalCtx(ctx?: StatefulContext): EvalContext {
    return { batchTimestampMs: ctx?.processingTimeMs ?? 0 };
  }

  resolveOutputSchema(input: Schema): Schema {
    return this.bind(input).output;
  }

  /** Binds the aggregation to an input schema: output and late-data schemas (throws ANALYSIS errors). */
  bind(schema: Schema): Bound {
    let b = this.bound.get(schema);
    if (b) return b;
    const fields: Field[] = [];
    for (const g of this.def.groupings) {
      switch (g.kind) {
        case 'key': {
          const f = resultField(g.column, schema);
          fields.push(new Field(f.name, valueType(f.type), true));
          break;
        }
        case 'bucket':
          resultField(g.column, schema);
          fields.push(new Field(g.name, new Int32(), true));
          break;
        default: {
          resultField(g.time, schema);
          if (g.kind === 'session' && g.gap) resultField(g.gap, schema);
          fields.push(new Field(g.name, windowStruct(), true));
        }
      }
    }
    for (const a of this.def.aggregates) {
      const argFields = a.args.map((c) => resultField(c, schema));
      const type = a.fn.resultType(argFields.map((f) => f.type));
      fields.push(new Field(a.alias ?? a.fn.outputName(argFields.map((f) => f.name)), type, true));
    }
    if (this.def.changelog) fields.push(new Field(CHANGE_COLUMN, new Int32(), false));
    const seen = new Set<string>();
    for (const f of fields) {
      if (seen.has(f.name)) {
        throw new SluiceError('ANALYSIS', `the aggregation has two output columns named '${f.name}'`, "name them apart with .alias('...')");
      }
      seen.add(f.name);
    }
    const output = new Schema(fields);
    const late = new Schema([...schema.fields, new Field(LATE_REASON_COLUMN, new Utf8(), false), new Field(LATE_WATERMARK_COLUMN, TIMESTAMP(), true)]);
    b = { output, outputBytes: schemaBytes(output), late };
    this.bound.set(schema, b);
    return b;
  }

  private componentsOf(batch: RecordBatch, ctx?: StatefulContext): unknown[][] {
    const out: unknown[][] = [];
    for (const g of this.def.groupings) {
      if (g.kind === 'key') out.push(scalarsOf(evaluate(g.column, batch, this.evalCtx(ctx))));
      else if (g.kind === 'bucket') out.push(Array.from(partitionsOfData(evaluate(g.column, batch, this.evalCtx(ctx)), g.buckets)));
    }
    return out;
  }

  private timesOf(batch: RecordBatch, ctx?: StatefulContext): { vals: ArrayLike<number>; valid: Uint8Array | null } {
    return numbersOf(evaluate(this.window!.time, batch, this.evalCtx(ctx)));
  }

  /**
   * Partition key of each row: the grouping key without the window, plus the window start for tumbling
   * windows (each row has one), so a global tumbling aggregation still spreads over partitions.
   */
  keysOf(batch: RecordBatch): unknown[] {
    const comps = this.componentsOf(batch);
    const n = batch.numRows;
    const w = this.window;
    const tumbling = w?.kind === 'window' && w.sizeMs === w.slideMs ? w : null;
    const times = tumbling ? this.timesOf(batch) : null;
    if (!tumbling && comps.length === 1) return comps[0];
    const out = new Array<unknown>(n);
    for (let i = 0; i < n; i++) {
      let h = 17;
      for (const c of comps) h = (Math.imul(h, 31) + hashKey(c[i])) | 0;
      if (times) h = (Math.imul(h, 31) + hashKey(lastWindowStart(times.vals[i], tumbling!.slideMs, tumbling!.offsetMs))) | 0;
      out[i] = h;
    }
    return out;
  }

  /**
   * Partitions as keysOf hashes them, computed from the key column's buffers when the key is one utf8,
   * 32-bit integer or double column (no string is decoded); other groupings hash keysOf's values.
   */
  partitionsOf(batch: RecordBatch, numPartitions: number): Int32Array {
    const keys = this.def.groupings.filter((g) => g.kind !== 'window' && g.kind !== 'session');
    const w = this.window;
    const tumbling = w?.kind === 'window' && w.sizeMs === w.slideMs;
    if (!tumbling && keys.length === 1 && keys[0].kind === 'key') {
      const d = evaluate(keys[0].column, batch, this.evalCtx());
      const t = d.type;
      const direct = t.typeId === Type.Utf8 || t.typeId === Type.Float || (t.typeId === Type.Int && (t as Int).bitWidth <= 32);
      if (direct) return partitionsOfData(d, numPartitions);
    }
    const k = this.keysOf(batch);
    const out = new Int32Array(k.length);
    for (let i = 0; i < k.length; i++) out[i] = partitionOf(k[i], numPartitions);
    return out;
  }

  /** The output schema stored in the partition's state, for batches without input rows. */
  private storedSchema(state: KeyedState): Schema | null {
    const bytes = state.get(SCHEMA_KEY) as Uint8Array | undefined;
    if (!bytes) return null;
    const id = Buffer.from(bytes).toString('base64');
    let s = this.storedSchemas.get(id);
    if (!s) this.storedSchemas.set(id, (s = tableFromIPC(bytes).schema));
    return s;
  }

  process(inputs: RecordBatch[], ctx: StatefulContext): RecordBatch[] {
    const batches = inputs.filter((b) => b.numRows > 0);
    let output: Schema | null = null;
    if (batches.length > 0) {
      const b = this.bind(batches[0].schema);
      output = b.output;
      const stored = ctx.state.get(SCHEMA_KEY) as Uint8Array | undefined;
      if (!stored || !bytesEqual(stored, b.outputBytes)) ctx.state.put(SCHEMA_KEY, b.outputBytes);
    } else {
      output = this.storedSchema(ctx.state);
      if (!output) return [];
    }
    const run = new AggregationRun(this, ctx, output);
    const keyed = batches.map((batch) => this.evaluateBatch(batch, ctx));
    return this.window?.kind === 'session' ? run.sessions(keyed) : run.groups(keyed);
  }

  private evaluateBatch(batch: RecordBatch, ctx: StatefulContext): BatchKeys {
    const ectx = this.evalCtx(ctx);
    // A column used by several aggregates (the event time, typically) is read and converted once.
    const columns = new Map<Data, ArgColumn>();
    const arg = (c: Column): ArgColumn => {
      const d = evaluate(c, batch, ectx);
      let a = columns.get(d);
      if (!a) columns.set(d, (a = new ArgColumn(d)));
      return a;
    };
    const keys: BatchKeys = {
      batch,
      components: this.componentsOf(batch, ctx),
      args: this.def.aggregates.map((a) => a.args.map(arg)),
    };
    const w = this.window;
    if (w) keys.times = arg(w.time).numbers();
    if (w?.kind === 'session' && w.gap) keys.gaps = gapsOf(evaluate(w.gap, batch, ectx));
    return keys;
  }

  /** Number of key components (groupings other than the window). */
  get componentCount(): number {
    return this.numComponents;
  }
}

/** Per-row session gaps in ms from a column of numbers (ms) or duration strings; NaN where missing or not positive. */
function gapsOf(data: Data): Float64Array {
  const out = new Float64Array(data.length);
  const vals = scalarsOf(data);
  const parsed = new Map<string, number>();
  for (let i = 0; i < vals.length; i++) {
    const v = vals[i];
    let ms = NaN;
    if (typeof v === 'number') ms = v;
    else if (typeof v === 'string') {
      let p = parsed.get(v);
      if (p === undefined) {
        const num = parseNumber(v);
        if (num !== null) p = num;
        else {
          try { p = parseDuration(v, 'session gap'); } catch { p = NaN; }
        }
        parsed.set(v, p);
      }
      ms = p;
    }
    out[i] = ms > 0 ? ms : NaN;
  }
  return out;
}

/** An open session of a key as stored: [start, end, buffers]. */
type StoredSession = [number, number, unknown[]];

/** One partition's work in one batch. */
class AggregationRun {
  private readonly def: AggregateDefinition;
  private readonly fns: AggregateFunction[];
  private readonly state: KeyedState;
  /** The watermark, or -Infinity when the query has none. */
  private readonly wm: number;
  private readonly lateness: number;
  /** Whether closed windows are evicted and late rows dropped (not in complete mode, unless changelog). */
  private readonly evicts: boolean;
  private readonly mode: OutputMode | 'changelog';
  private readonly rows: OutputRows;
  /** Late row indices per batch, with their reasons. */
  private readonly late = new Map<number, { idx: number[]; reasons: string[] }>();

  constructor(private readonly op: AggregateOperator, private readonly ctx: StatefulContext, output: Schema) {
    this.def = op.def;
    this.fns = op.def.aggregates.map((a) => a.fn);
    this.state = ctx.state;
    this.wm = ctx.eventTimeColumn !== undefined ? ctx.watermarkMs : -Infinity;
    this.lateness = op.def.allowedLatenessMs;
    this.mode = op.def.changelog ? 'changelog' : ctx.outputMode;
    this.evicts = op.window !== null && this.mode !== 'complete';
    this.rows = new OutputRows(op, output);
  }

  private markLate(b: number, i: number, reason: string, byWatermark: boolean): void {
    let l = this.late.get(b);
    if (!l) this.late.set(b, (l = { idx: [], reasons: [] }));
    l.idx.push(i);
    l.reasons.push(reason);
    if (byWatermark) this.ctx.metrics.numRowsDroppedByWatermark++;
  }

  private flushLate(keyed: BatchKeys[]): void {
    if (!this.ctx.lateOutput) return;
    for (const [b, { idx, reasons }] of this.late) {
      const batch = keyed[b].batch;
      const late = this.op.bind(batch.schema).late;
      const taken = takeRows(batch, idx);
      const wm = dataFromValues(TIMESTAMP(), reasons.map(() => (Number.isFinite(this.wm) ? this.wm : null)));
      const children = [...taken.data.children, utf8Data(reasons), wm];
      this.ctx.late.push(batchOf(late, children, idx.length));
      this.ctx.metrics.numLateRows += idx.length;
    }
  }

  private closed(end: number): boolean {
    return this.evicts && end + this.lateness <= this.wm;
  }

  private timeout(end: number): number {
    return this.evicts ? end + this.lateness : -1;
  }

  /** Folds the rows assigned to local groups into partial buffers: groupsPerBatch[b][slot][row]. */
  private partials(keyed: BatchKeys[], groupsPerBatch: Int32Array[][], numGroups: number): ((g: number) => unknown[]) {
    const parts = this.fns.map((f) => f.newPartial(numGroups));
    keyed.forEach((k, b) => {
      for (const groups of groupsPerBatch[b]) {
        parts.forEach((p, a) => p.update(groups, k.args[a]));
      }
    });
    return (g) => parts.map((p) => p.buffer(g));
  }

  private mergeBuffers(older: unknown[], newer: unknown[]): unknown[] {
    return older.map((o, a) => this.fns[a].merge(o, newer[a]));
  }

  // ----------------------------------------------------------------------------- plain and time windows

  groups(keyed: BatchKeys[]): RecordBatch[] {
    const w = this.op.window as TimeWindowGrouping | null;
    const kidOf = new Map<unknown, number>();
    const kidComponents: unknown[][] = [];
    const groupKid: number[] = [];
    const groupStart: number[] = [];
    const winOfKid: Map<number, number>[] = [];
    const groupsPerBatch: Int32Array[][] = [];
    const single = this.op.componentCount === 1;
    const slots = w ? windowsPerRow(w) : 1;
    keyed.forEach((k, b) => {
      const n = k.batch.numRows;
      const perSlot = Array.from({ length: slots }, () => new Int32Array(n).fill(-1));
      groupsPerBatch.push(perSlot);
      const comps = k.components;
      const row = new Array<unknown>(comps.length);
      for (let i = 0; i < n; i++) {
        for (let c = 0; c < comps.length; c++) row[c] = comps[c][i];
        const id = single ? row[0] : tupleId(row);
        let kid = kidOf.get(id);
        if (kid === undefined) {
          kid = kidComponents.length;
          kidOf.set(id, kid);
          kidComponents.push(row.slice());
          winOfKid.push(new Map());
          if (!w) { groupKid.push(kid); groupStart.push(0); }
        }
        if (!w) { perSlot[0][i] = kid; continue; }
        const times = k.times!;
        if (times.valid && !times.valid[i]) { this.markLate(b, i, 'event time is null', false); continue; }
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
          this.markLate(b, i, `behind the watermark: event time ${iso(ts)}, its last window ended ${iso(latestEnd)}` +
            (this.lateness > 0 ? ` and allowed lateness (${this.lateness} ms) has passed` : ''), true);
        }
      }
    });
    const partial = this.partials(keyed, groupsPerBatch, groupKid.length);
    const numComponents = this.op.componentCount;
    for (let g = 0; g < groupKid.length; g++) {
      const components = kidComponents[groupKid[g]];
      const key = makeKey(w ? [...components, groupStart[g]] : components);
      const old = this.state.get(key) as unknown[] | undefined;
      const window = w ? { start: groupStart[g], end: groupStart[g] + w.sizeMs } : null;
      // Results of the old buffers first: merging may change them in place.
      if (old && this.mode === 'changelog') this.rows.push(components, window, old, -1);
      const buffers = old ? this.mergeBuffers(old, partial(g)) : partial(g);
      this.state.put(key, buffers, window ? this.timeout(window.end) : -1);
      if (this.mode === 'update' || this.mode === 'changelog') this.rows.push(components, window, buffers, 1);
    }
    if (this.evicts && Number.isFinite(this.wm)) {
      for (const key of this.state.keysWithTimeoutAtOrBefore(this.wm)) {
        const buffers = this.state.get(key) as unknown[];
        const parts = splitKey(key, numComponents + 1);
        const start = parts[parts.length - 1] as number;
        const window = { start, end: start + w!.sizeMs };
        if (this.mode === 'append') this.rows.push(parts.slice(0, -1), window, buffers);
        else if (this.mode === 'changelog') this.rows.push(parts.slice(0, -1), window, buffers, -1);
        this.state.remove(key);
      }
    }
    if (this.mode === 'complete') {
      for (const [key, buffers] of this.state.sortedEntries()) {
        if (isSchemaKey(key)) continue;
        const parts = splitKey(key, w ? numComponents + 1 : numComponents);
        if (w) {
          const start = parts[parts.length - 1] as number;
          this.rows.push(parts.slice(0, -1), { start, end: start + w.sizeMs }, buffers as unknown[]);
        } else this.rows.push(parts, null, buffers as unknown[]);
      }
    }
    this.flushLate(keyed);
    return this.rows.batch();
  }

  // ---------------------------------------------------------------------------------------- sessions

  sessions(keyed: BatchKeys[]): RecordBatch[] {
    const w = this.op.window as SessionWindowGrouping;
    const single = this.op.componentCount === 1;
    // Rows of all batches by one global number: batch b's row i is offsets[b] + i.
    const offsets: number[] = [];
    let total = 0;
    for (const k of keyed) { offsets.push(total); total += k.batch.numRows; }
    const kidOfRow = new Int32Array(total).fill(-1);
    const tsOf = new Float64Array(total);
    const endOf = new Float64Array(total);
    const kidOf = new Map<unknown, number>();
    const kidComponents: unknown[][] = [];
    const kidCount: number[] = [];
    keyed.forEach((k, b) => {
      const n = k.batch.numRows;
      const comps = k.components;
      const row = new Array<unknown>(comps.length);
      const times = k.times!;
      for (let i = 0; i < n; i++) {
        if (times.valid && !times.valid[i]) { this.markLate(b, i, 'event time is null', false); continue; }
        if (k.gaps && Number.isNaN(k.gaps[i])) { this.markLate(b, i, 'session gap is null, not a duration, or not positive', false); continue; }
        // Sessions merge, so a row is judged by its time, not by one window: a row at or before W - L could
        // touch a session already evicted (end + L <= W), and must not start a second copy of it.
        const ts = times.vals[i];
        if (this.evicts && ts <= this.wm - this.lateness) {
          this.markLate(b, i, `behind the watermark: event time ${iso(ts)} is at or before ${iso(this.wm - this.lateness)}` +
            (this.lateness > 0 ? ` (the watermark minus the allowed lateness of ${this.lateness} ms)` : ' (the watermark)'), true);
          continue;
        }
        for (let c = 0; c < comps.length; c++) row[c] = comps[c][i];
        const id = single ? row[0] : tupleId(row);
        let kid = kidOf.get(id);
        if (kid === undefined) {
          kid = kidComponents.length;
          kidOf.set(id, kid);
          kidComponents.push(row.slice());
          kidCount.push(0);
        }
        const g = offsets[b] + i;
        kidOfRow[g] = kid;
        tsOf[g] = ts;
        endOf[g] = ts + (k.gaps ? k.gaps[i] : w.gapMs!);
        kidCount[kid]++;
      }
    });
    // Rows grouped by key (counting sort, arrival order kept), then each key's rows by event time.
    const kidStart = new Int32Array(kidComponents.length + 1);
    for (let kid = 0; kid < kidCount.length; kid++) kidStart[kid + 1] = kidStart[kid] + kidCount[kid];
    const fill = kidStart.slice(0, kidComponents.length);
    const order = new Int32Array(kidStart[kidComponents.length]);
    for (let g = 0; g < total; g++) { const kid = kidOfRow[g]; if (kid >= 0) order[fill[kid]++] = g; }
    const groupOfRow = new Int32Array(total).fill(-1);
    const groupsPerBatch: Int32Array[][] = keyed.map((k, b) => [groupOfRow.subarray(offsets[b], offsets[b] + k.batch.numRows)]);
    /** Per key: its sessions after this batch's rows; sessions with new rows get a local group. */
    const plans: { key: unknown; components: unknown[]; sessions: PlannedSession[] }[] = [];
    let numGroups = 0;
    for (let kid = 0; kid < kidComponents.length; kid++) {
      const components = kidComponents[kid];
      const key = makeKey(components);
      const stored = (this.state.get(key) as StoredSession[] | undefined) ?? [];
      const rows = order.subarray(kidStart[kid], kidStart[kid + 1]);
      let sorted = true;
      for (let j = 1; j < rows.length && sorted; j++) sorted = tsOf[rows[j - 1]] <= tsOf[rows[j]];
      if (!sorted) rows.sort((x, y) => tsOf[x] - tsOf[y] || x - y);
      // Sweep stored sessions (sorted, disjoint) and rows in start order, merging what touches.
      const sessions: PlannedSession[] = [];
      let cur: PlannedSession | null = null;
      let si = 0;
      let ri = 0;
      while (si < stored.length || ri < rows.length) {
        const takeStored = ri >= rows.length || (si < stored.length && stored[si][0] <= tsOf[rows[ri]]);
        const start = takeStored ? stored[si][0] : tsOf[rows[ri]];
        const end = takeStored ? stored[si][1] : endOf[rows[ri]];
        if (!cur || start > cur.end) {
          cur = { start, end, stored: [], group: -1 };
          sessions.push(cur);
        } else if (end > cur.end) cur.end = end;
        if (takeStored) cur.stored.push(stored[si++]);
        else {
          if (cur.group < 0) cur.group = numGroups++;
          groupOfRow[rows[ri++]] = cur.group;
        }
      }
      plans.push({ key, components, sessions });
    }
    const partial = this.partials(keyed, groupsPerBatch, numGroups);
    const touched = new Set<unknown>();
    for (const p of plans) {
      touched.add(p.key);
      const next: StoredSession[] = [];
      for (const s of p.sessions) {
        const olds = s.stored;
        // Retractions first: merging changes the older buffers in place.
        if (s.group >= 0 && this.mode === 'changelog') for (const o of olds) this.rows.push(p.components, { start: o[0], end: o[1] }, o[2], -1);
        let buffers: unknown[] | null = null;
        for (const o of olds) buffers = buffers ? this.mergeBuffers(buffers, o[2]) : o[2];
        if (s.group >= 0) {
          buffers = buffers ? this.mergeBuffers(buffers, partial(s.group)) : partial(s.group);
          if (this.mode === 'update' || this.mode === 'changelog') this.rows.push(p.components, { start: s.start, end: s.end }, buffers, 1);
        }
        next.push([s.start, s.end, buffers!]);
      }
      this.closeSessions(p.key, p.components, next);
    }
    if (this.evicts && Number.isFinite(this.wm)) {
      for (const key of this.state.keysWithTimeoutAtOrBefore(this.wm)) {
        if (touched.has(key)) continue;
        this.closeSessions(key, splitKey(key, this.op.componentCount), this.state.get(key) as StoredSession[]);
      }
    }
    if (this.mode === 'complete') {
      for (const [key, sessions] of this.state.sortedEntries()) {
        if (isSchemaKey(key)) continue;
        for (const s of sessions as StoredSession[]) this.rows.push(splitKey(key, this.op.componentCount), { start: s[0], end: s[1] }, s[2]);
      }
    }
    this.flushLate(keyed);
    return this.rows.batch();
  }

  /** Emits and drops the sessions of a key that the watermark closed; stores the rest. */
  private closeSessions(key: unknown, components: unknown[], sessions: StoredSession[]): void {
    const open: StoredSession[] = [];
    for (const s of sessions) {
      if (this.closed(s[1])) {
        if (this.mode === 'append') this.rows.push(components, { start: s[0], end: s[1] }, s[2]);
        else if (this.mode === 'changelog') this.rows.push(components, { start: s[0], end: s[1] }, s[2], -1);
      } else open.push(s);
    }
    if (open.length === 0) { this.state.remove(key); return; }
    let minEnd = Infinity;
    for (const s of open) minEnd = Math.min(minEnd, s[1]);
    this.state.put(key, open, this.evicts ? minEnd + this.lateness : -1);
  }
}

interface PlannedSession {
  start: number;
  end: number;
  /** The stored sessions it absorbs, in start order. */
  stored: StoredSession[];
  /** Local group of its new rows, or -1 when it has none. */
  group: number;
}

function isSchemaKey(key: unknown): boolean {
  return Array.isArray(key) && key.length === 1 && key[0] === SCHEMA_KEY[0];
}
