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
import type { Expression } from '../expression.js';
import { parseDuration } from '../../util/duration.js';
import { SluiceError } from '../../errors.js';
import type { OutputMode } from '../../sinks/output-mode.js';
import { hashKey, partitionOf, partitionsOfData } from '../../state/state-partitioner.js';
import type { AggregateFunction, Partial } from '../aggregates/aggregate-functions.js';
import { ArgColumn } from '../aggregates/aggregate-functions.js';
import { Utf8Interner, numbersOf, parseNumber, scalarsOf, valueType } from '../aggregates/column-values.js';
import { evaluate, resultField, type EvalContext } from '../expression-eval.js';
import type { KeyedState, StatefulContext, StatefulOperator } from '../stateful-operator.js';
import { DecodedStateCache, type DecodedState } from './decoded-state.js';
import { lastWindowStart, windowsPerRow, type Grouping, type SessionWindowGrouping, type TimeWindowGrouping } from '../windows.js';

/** One aggregate of an `agg(...)` call. */
export interface AggregateCall {
  fn: AggregateFunction;
  args: Expression[];
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

/** The distinct grouping keys (window aside) of a partition's rows in one batch, as local ids in order of first appearance. */
class LocalKeys {
  /** Key components per local id. */
  readonly components: unknown[][] = [];
  private readonly byValue = new Map<unknown, number>();
  private byInterned = new Int32Array(0);
  private nullKid = -1;
  private readonly row: unknown[];

  /** `interner`: set when every batch's key is one utf8 column, whose rows then carry `keyIds`. */
  constructor(private readonly numComponents: number, readonly interner: Utf8Interner | null) {
    this.row = new Array<unknown>(numComponents);
  }

  get size(): number {
    return this.components.length;
  }

  /** The local id of row i's key. */
  of(k: BatchKeys, i: number): number {
    const ids = k.keyIds;
    if (ids !== undefined) {
      const id = ids[i];
      if (id < 0) {
        if (this.nullKid < 0) this.nullKid = this.add([null]);
        return this.nullKid;
      }
      if (id >= this.byInterned.length) {
        const next = new Int32Array(Math.max(64, this.interner!.strings.length * 2)).fill(-1);
        next.set(this.byInterned);
        this.byInterned = next;
      }
      let kid = this.byInterned[id];
      if (kid < 0) this.byInterned[id] = kid = this.add([this.interner!.strings[id]]);
      return kid;
    }
    const comps = k.components!;
    const row = this.row;
    for (let c = 0; c < comps.length; c++) row[c] = comps[c][i];
    const id = this.numComponents === 1 ? row[0] : tupleId(row);
    let kid = this.byValue.get(id);
    if (kid === undefined) {
      kid = this.add(row.slice());
      this.byValue.set(id, kid);
    }
    return kid;
  }

  private add(components: unknown[]): number {
    this.components.push(components);
    return this.components.length - 1;
  }
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
  /** Key component values per component (window excluded), one entry per row; unset when keyIds is. */
  components?: unknown[][];
  /** The one key column when the grouping is one plain key (window aside), for LocalKeys to intern. */
  keyData?: Data;
  /** Per row, the interned id of a utf8 key (see LocalKeys). */
  keyIds?: Int32Array;
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
  /** Group buffers stay decoded between batches (see decoded-state.ts). */
  private readonly decoded = new DecodedStateCache();

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

  internalRows(state: KeyedState): number {
    return state.has(SCHEMA_KEY) ? 1 : 0;
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
    const state = this.decoded.begin(ctx.state, ctx.batchId);
    const run = new AggregationRun(this, ctx, state, output);
    const keyed = batches.map((batch) => this.evaluateBatch(batch, ctx));
    const keys = this.localKeys(keyed, ctx);
    const out = this.window?.kind === 'session' ? run.sessions(keyed, keys) : run.groups(keyed, keys);
    state.done();
    return out;
  }

  private evaluateBatch(batch: RecordBatch, ctx: StatefulContext): BatchKeys {
    const ectx = this.evalCtx(ctx);
    // A column used by several aggregates (the event time, typically) is read and converted once.
    const columns = new Map<Data, ArgColumn>();
    const arg = (c: Expression): ArgColumn => {
      const d = evaluate(c, batch, ectx);
      let a = columns.get(d);
      if (!a) columns.set(d, (a = new ArgColumn(d)));
      return a;
    };
    const keys: BatchKeys = { batch, args: this.def.aggregates.map((a) => a.args.map(arg)) };
    const plain = this.def.groupings.filter((g) => g.kind !== 'window' && g.kind !== 'session');
    if (plain.length === 1 && plain[0].kind === 'key') keys.keyData = evaluate(plain[0].column, batch, ectx);
    const w = this.window;
    if (w) keys.times = arg(w.time).numbers();
    if (w?.kind === 'session' && w.gap) keys.gaps = gapsOf(evaluate(w.gap, batch, ectx));
    return keys;
  }

  /**
   * Local key ids for the rows of one partition's batches: a utf8 key column (the common case: user ids)
   * is interned by its bytes, other keys are read as JS values and looked up in a Map.
   */
  private localKeys(keyed: BatchKeys[], ctx: StatefulContext): LocalKeys {
    const utf8 = keyed.length > 0 && keyed.every((k) => k.keyData?.type.typeId === Type.Utf8);
    const keys = new LocalKeys(this.numComponents, utf8 ? new Utf8Interner() : null);
    for (const k of keyed) {
      if (utf8) k.keyIds = keys.interner!.ids(k.keyData!);
      else k.components = k.keyData ? [scalarsOf(k.keyData)] : this.componentsOf(k.batch, ctx);
    }
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
  /** Per-key state through the decoded cache; `state.state` is the store itself (timeouts, sorted entries). */
  private readonly state: DecodedState;
  /** The watermark, or -Infinity when the query has none. */
  private readonly wm: number;
  private readonly lateness: number;
  /** Whether closed windows are evicted and late rows dropped (not in complete mode, unless changelog). */
  private readonly evicts: boolean;
  private readonly mode: OutputMode | 'changelog';
  private readonly rows: OutputRows;
  /** Late row indices per batch, with their reasons. */
  private readonly late = new Map<number, { idx: number[]; reasons: string[] }>();

  constructor(private readonly op: AggregateOperator, private readonly ctx: StatefulContext, state: DecodedState, output: Schema) {
    this.def = op.def;
    this.fns = op.def.aggregates.map((a) => a.fn);
    this.state = state;
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

  /** Folds the rows assigned to local groups into per-aggregate partials: groupsPerBatch[b][slot][row]. */
  private partials(keyed: BatchKeys[], groupsPerBatch: Int32Array[][], numGroups: number): Partial[] {
    const parts = this.fns.map((f) => f.newPartial(numGroups));
    for (let b = 0; b < keyed.length; b++) {
      const args = keyed[b].args;
      for (const groups of groupsPerBatch[b]) for (let a = 0; a < parts.length; a++) parts[a].update(groups, args[a]);
    }
    return parts;
  }

  /** A new group's buffers: its partials. */
  private buffersOf(parts: Partial[], g: number): unknown[] {
    const out = new Array<unknown>(parts.length);
    for (let a = 0; a < parts.length; a++) out[a] = parts[a].buffer(g);
    return out;
  }

  /**
   * Merges group g's partials into `older` in place. Older buffers are the state's own (cached or freshly
   * read), changed in place and put back in this batch; results wanted from them come first.
   */
  private mergePartials(older: unknown[], parts: Partial[], g: number): void {
    for (let a = 0; a < parts.length; a++) older[a] = this.fns[a].merge(older[a], parts[a].buffer(g));
  }

  /** Merges `newer` buffers into `older` in place (two stored sessions that a row bridges). */
  private mergeBuffers(older: unknown[], newer: unknown[]): void {
    for (let a = 0; a < older.length; a++) older[a] = this.fns[a].merge(older[a], newer[a]);
  }

  // ----------------------------------------------------------------------------- plain and time windows

  groups(keyed: BatchKeys[], keys: LocalKeys): RecordBatch[] {
    const w = this.op.window as TimeWindowGrouping | null;
    const kidComponents = keys.components;
    const groupKid: number[] = [];
    const groupStart: number[] = [];
    const winOfKid: Map<number, number>[] = [];
    const groupsPerBatch: Int32Array[][] = [];
    const slots = w ? windowsPerRow(w) : 1;
    keyed.forEach((k, b) => {
      const n = k.batch.numRows;
      const perSlot = Array.from({ length: slots }, () => new Int32Array(n).fill(-1));
      groupsPerBatch.push(perSlot);
      for (let i = 0; i < n; i++) {
        const kid = keys.of(k, i);
        if (kid === winOfKid.length) {
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
    const parts = this.partials(keyed, groupsPerBatch, groupKid.length);
    const numComponents = this.op.componentCount;
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
      this.state.put(key, buffers, window ? this.timeout(window.end) : -1);
      if (this.mode === 'update' || this.mode === 'changelog') this.rows.push(components, window, buffers, 1);
    }
    if (this.evicts && Number.isFinite(this.wm)) {
      for (const key of this.state.state.keysWithTimeoutAtOrBefore(this.wm)) {
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
      for (const [key, buffers] of this.state.state.sortedEntries()) {
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

  sessions(keyed: BatchKeys[], keys: LocalKeys): RecordBatch[] {
    const w = this.op.window as SessionWindowGrouping;
    // Rows of all batches by one global number: batch b's row i is offsets[b] + i.
    const offsets: number[] = [];
    let total = 0;
    for (const k of keyed) { offsets.push(total); total += k.batch.numRows; }
    const kidOfRow = new Int32Array(total).fill(-1);
    const tsOf = new Float64Array(total);
    const endOf = new Float64Array(total);
    const kidComponents = keys.components;
    const kidCount: number[] = [];
    keyed.forEach((k, b) => {
      const n = k.batch.numRows;
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
        const kid = keys.of(k, i);
        if (kid === kidCount.length) kidCount.push(0);
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
    // Per key, the sessions after this batch's rows, as flat lists (no object per session): plan p of key
    // kid (kidPlans[kid] <= p < kidPlans[kid + 1]) spans [planStart, planEnd], absorbs the key's stored
    // sessions [planFrom, planTo) (sorted and disjoint, so a contiguous run) and its new rows form local
    // group planGroup (-1 when it has none).
    const numKids = kidComponents.length;
    const storedOf = new Array<StoredSession[]>(numKids);
    const kidPlans = new Int32Array(numKids + 1);
    const planStart: number[] = [];
    const planEnd: number[] = [];
    const planGroup: number[] = [];
    const planFrom: number[] = [];
    const planTo: number[] = [];
    let numGroups = 0;
    for (let kid = 0; kid < numKids; kid++) {
      kidPlans[kid] = planStart.length;
      const stored = (this.state.get(makeKey(kidComponents[kid])) as StoredSession[] | undefined) ?? [];
      storedOf[kid] = stored;
      const lo = kidStart[kid];
      const hi = kidStart[kid + 1];
      let sorted = true;
      for (let j = lo + 1; j < hi && sorted; j++) sorted = tsOf[order[j - 1]] <= tsOf[order[j]];
      if (!sorted) order.subarray(lo, hi).sort((x, y) => tsOf[x] - tsOf[y] || x - y);
      // Sweep stored sessions and rows in start order, merging what touches.
      let cur = -1;
      let si = 0;
      let ri = lo;
      while (si < stored.length || ri < hi) {
        const takeStored = ri >= hi || (si < stored.length && stored[si][0] <= tsOf[order[ri]]);
        const start = takeStored ? stored[si][0] : tsOf[order[ri]];
        const end = takeStored ? stored[si][1] : endOf[order[ri]];
        if (cur < 0 || start > planEnd[cur]) {
          cur = planStart.length;
          planStart.push(start);
          planEnd.push(end);
          planGroup.push(-1);
          planFrom.push(si);
          planTo.push(si);
        } else if (end > planEnd[cur]) planEnd[cur] = end;
        if (takeStored) planTo[cur] = ++si;
        else {
          if (planGroup[cur] < 0) planGroup[cur] = numGroups++;
          groupOfRow[order[ri++]] = planGroup[cur];
        }
      }
    }
    kidPlans[numKids] = planStart.length;
    const parts = this.partials(keyed, groupsPerBatch, numGroups);
    const emitsChanges = this.mode === 'update' || this.mode === 'changelog';
    for (let kid = 0; kid < numKids; kid++) {
      const components = kidComponents[kid];
      const stored = storedOf[kid];
      const next: StoredSession[] = [];
      for (let p = kidPlans[kid]; p < kidPlans[kid + 1]; p++) {
        const g = planGroup[p];
        const from = planFrom[p];
        const to = planTo[p];
        // Retractions first: merging changes the stored buffers in place.
        if (g >= 0 && this.mode === 'changelog') for (let i = from; i < to; i++) this.rows.push(components, { start: stored[i][0], end: stored[i][1] }, stored[i][2], -1);
        let session: StoredSession;
        if (from < to) {
          // The first absorbed session becomes the merged one.
          session = stored[from];
          for (let i = from + 1; i < to; i++) this.mergeBuffers(session[2], stored[i][2]);
          if (g >= 0) this.mergePartials(session[2], parts, g);
          session[0] = planStart[p];
          session[1] = planEnd[p];
        } else session = [planStart[p], planEnd[p], this.buffersOf(parts, g)];
        if (g >= 0 && emitsChanges) this.rows.push(components, { start: session[0], end: session[1] }, session[2], 1);
        next.push(session);
      }
      this.closeSessions(makeKey(components), components, next);
    }
    // Keys this batch touched are not due: closeSessions left each with sessions the watermark has not
    // closed (timeout after it) or removed it.
    if (this.evicts && Number.isFinite(this.wm)) {
      for (const key of this.state.state.keysWithTimeoutAtOrBefore(this.wm)) {
        this.closeSessions(key, splitKey(key, this.op.componentCount), this.state.get(key) as StoredSession[]);
      }
    }
    if (this.mode === 'complete') {
      for (const [key, sessions] of this.state.state.sortedEntries()) {
        if (isSchemaKey(key)) continue;
        for (const s of sessions as StoredSession[]) this.rows.push(splitKey(key, this.op.componentCount), { start: s[0], end: s[1] }, s[2]);
      }
    }
    this.flushLate(keyed);
    return this.rows.batch();
  }

  /** Emits and drops the sessions of a key that the watermark closed; stores the rest. */
  private closeSessions(key: unknown, components: unknown[], sessions: StoredSession[]): void {
    let open = sessions;
    for (const s of sessions) {
      if (!this.closed(s[1])) continue;
      if (this.mode === 'append') this.rows.push(components, { start: s[0], end: s[1] }, s[2]);
      else if (this.mode === 'changelog') this.rows.push(components, { start: s[0], end: s[1] }, s[2], -1);
      if (open === sessions) open = [];
    }
    if (open !== sessions) for (const s of sessions) if (!this.closed(s[1])) open.push(s);
    if (open.length === 0) { this.state.remove(key); return; }
    let minEnd = Infinity;
    for (const s of open) minEnd = Math.min(minEnd, s[1]);
    this.state.put(key, open, this.evicts ? minEnd + this.lateness : -1);
  }
}

function isSchemaKey(key: unknown): boolean {
  return Array.isArray(key) && key.length === 1 && key[0] === SCHEMA_KEY[0];
}
