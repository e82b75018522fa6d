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
 * A grouping by the event-time column itself (`groupBy('ts')` after `withWatermark('ts', …)`) follows the same
 * rules, each group closing at its own time as a window at its end (Spark's StateStoreSaveExec evicts by any
 * watermarked key); other aggregations without a window ignore the watermark, as Spark's do.
 *
 * Output modes: append emits each window (or event-time group) once when it closes; update emits the groups
 * a batch changed (not for session windows, where a later merge would leave replaced sessions in the sink);
 * complete emits all groups. A changelog aggregation (`.changelog()`) ignores the output mode and emits a
 * retract stream of the currently open groups: +1 rows for new results, -1 rows for results they replace,
 * for sessions merged away and for windows that close; aggregating its `change`-weighted values downstream
 * gives totals over open windows (the active-session-totals app).
 *
 * Output order is deterministic: touched groups in order of first appearance in the partition's rows,
 * closing windows by end time then key, complete mode by key.
 *
 * This file holds the operator (binding, partitioning, evaluating a batch's key and argument columns); a
 * partition's batch runs in aggregation-run.ts (plain and time windows) or session-merge.ts (sessions).
 */
import { type Data, type Float, type Int, type RecordBatch, type Schema, Type } from 'apache-arrow';
import { SluiceError } from '../../errors.js';
import type { OutputMode } from '../../sinks/output-mode.js';
import {
  hashKey,
  hashNumber,
  partitionOf,
  partitionsOfData,
  partitionsOfNumbers,
} from '../../state/state-partitioner.js';
import { parseDuration } from '../../util/duration.js';
import { ArgColumn } from '../aggregates/aggregate-functions.js';
import { isNumericType, numbersOf, parseNumber, scalarsOf, Utf8Interner } from '../aggregates/column-values.js';
import type { Expression } from '../expression.js';
import { type EvalContext, evaluate } from '../expression-eval.js';
import type { KeyedState, StatefulContext, StatefulOperator } from '../stateful-operator.js';
import { lastWindowStart, type SessionWindowGrouping, type TimeWindowGrouping } from '../windows.js';
import type { AggregateDefinition } from './aggregate-definition.js';
import { type BatchKeys, type KeyComponent, LocalKeys } from './aggregate-keys.js';
import { AggregateSchemas } from './aggregate-output.js';
import { type AggregationShape, GroupAggregationRun } from './aggregation-run.js';
import { DecodedStateCache } from './decoded-state.js';
import { SessionAggregationRun } from './session-merge.js';

/** The `groupBy(...).agg(...)` operator; see the module comment. */
export class AggregateOperator implements StatefulOperator, AggregationShape {
  readonly name: string;
  readonly outputSchema = null;
  readonly outputModes: readonly OutputMode[] = ['append', 'update', 'complete'];
  /** The window or session grouping, if any. */
  readonly window: TimeWindowGrouping | SessionWindowGrouping | null;
  /** Number of key components (groupings other than the window). */
  readonly componentCount: number;
  /** Output and late-data schemas per input schema, and the output schema kept in state. */
  readonly schemas: AggregateSchemas;
  /** Group buffers stay decoded between batches (see decoded-state.ts). */
  private readonly decoded = new DecodedStateCache();

  constructor(readonly def: AggregateDefinition) {
    const windows = def.groupings.filter(
      (g): g is TimeWindowGrouping | SessionWindowGrouping => g.kind === 'window' || g.kind === 'session',
    );
    if (windows.length > 1) {
      throw new SluiceError(
        'ANALYSIS',
        'groupBy() has more than one window or session_window column',
        'group by one event-time window, plus any plain columns',
      );
    }
    if (def.aggregates.length === 0)
      throw new SluiceError('ANALYSIS', 'agg() needs at least one aggregate', "e.g. agg(count('*'), sum('amount'))");
    this.window = windows[0] ?? null;
    this.componentCount = def.groupings.length - (this.window ? 1 : 0);
    this.schemas = new AggregateSchemas(def);
    this.name =
      this.window?.kind === 'session' ? 'sessionWindowAggregate' : this.window ? 'windowAggregate' : 'aggregate';
  }

  usesWatermark(eventTimeColumn: string | undefined): boolean {
    return this.window !== null || this.eventTimeKey(eventTimeColumn) >= 0;
  }

  /**
   * Which key component (groupings other than the window) is the event-time column `eventTimeColumn` itself,
   * or -1. Grouped by it, a group is final once the watermark reaches its time: Spark evicts such groups and
   * drops rows behind the watermark as it does for windows.
   */
  eventTimeKey(eventTimeColumn: string | undefined): number {
    if (this.window !== null || eventTimeColumn === undefined) return -1;
    return this.def.groupings
      .filter((g) => g.kind !== 'window' && g.kind !== 'session')
      .findIndex((g) => g.kind === 'key' && columnRead(g.column) === eventTimeColumn);
  }

  inputExpressions(): Expression[] {
    const read: Expression[] = [];
    for (const g of this.def.groupings) {
      if (g.kind === 'key' || g.kind === 'bucket') read.push(g.column);
      else read.push(g.time, ...(g.kind === 'session' && g.gap ? [g.gap] : []));
    }
    for (const a of this.def.aggregates) read.push(...a.args);
    return read;
  }

  analyze(info: {
    outputMode: OutputMode;
    hasWatermark: boolean;
    eventTimeColumn?: string;
    appendsBelow?: boolean;
  }): string | null {
    const w = this.window;
    if (w && info.eventTimeColumn) {
      const name = columnRead(w.time);
      if (name !== null && name !== info.eventTimeColumn) {
        return `the ${w.kind === 'session' ? 'session_window' : 'window'} is over '${name}' but the watermark is defined on '${info.eventTimeColumn}'; windows can only be closed by the watermark of their own event-time column`;
      }
    }
    if (this.def.afterAggregation && info.outputMode !== 'append' && !info.appendsBelow) {
      return (
        `Multiple streaming aggregations are not supported with ${info.outputMode} output mode: the aggregation below ` +
        're-emits every group it changes, so this one would count them again; make the one below a changelog ' +
        '(groupBy(...).changelog().agg(...)) and aggregate value × change here, group the one below by a window or ' +
        "the event-time column so that it emits each group once, when it closes, or use outputMode('append')"
      );
    }
    if (this.def.changelog) return null;
    if (w?.kind === 'session' && info.outputMode === 'update') {
      return (
        'Update output mode not supported for session window on streaming DataFrames/DataSets: a session that a later ' +
        "row merges into another was already emitted and would stay in the sink; use outputMode('append') (each " +
        "session once, when the watermark closes it) or outputMode('complete'), or a changelog " +
        '(groupBy(...).changelog().agg(...)) whose rows retract the sessions a merge replaces'
      );
    }
    if (info.outputMode !== 'append') return null;
    if (!info.hasWatermark) {
      return (
        'Append output mode not supported when there are streaming aggregations on streaming Datasets without watermark: ' +
        "add withWatermark('<event time column>', '<delay>') before groupBy, or use outputMode('update')"
      );
    }
    if (!w && this.eventTimeKey(info.eventTimeColumn) < 0) {
      return (
        `Append output mode needs an event-time window or the event-time column '${info.eventTimeColumn}' itself in the ` +
        'grouping (window(...), session_window(...) or the column), because only a group that the watermark has ' +
        "passed is final; use outputMode('update') or 'complete' for other groupings"
      );
    }
    return null;
  }

  private evalCtx(ctx?: StatefulContext): EvalContext {
    return { batchTimestampMs: ctx?.processingTimeMs ?? 0 };
  }

  resolveOutputSchema(input: Schema): Schema {
    return this.schemas.bind(input).output;
  }

  /** The key components (window aside) of a batch's rows, numeric columns as their typed numbers. */
  private componentsOf(batch: RecordBatch, ctx?: StatefulContext): KeyComponent[] {
    const out: KeyComponent[] = [];
    for (const g of this.def.groupings) {
      if (g.kind === 'key') out.push(keyComponent(evaluate(g.column, batch, this.evalCtx(ctx))));
      else if (g.kind === 'bucket')
        out.push({ vals: partitionsOfData(evaluate(g.column, batch, this.evalCtx(ctx)), g.buckets), valid: null });
    }
    return out;
  }

  /**
   * Per row, the combined hash of its key components' hashKeys (and of its tumbling window's start), a column
   * at a time: a utf8 column's distinct values are found by their bytes and each hashed once, numbers are
   * hashed from their typed array.
   */
  private keyHashes(batch: RecordBatch, tumbling: TimeWindowGrouping | null): Int32Array {
    const n = batch.numRows;
    const out = new Int32Array(n).fill(17);
    const mixIn = (i: number, h: number): void => {
      out[i] = (Math.imul(out[i], 31) + h) | 0;
    };
    for (const g of this.def.groupings) {
      if (g.kind !== 'key' && g.kind !== 'bucket') continue;
      const d = evaluate(g.column, batch, this.evalCtx());
      if (g.kind === 'bucket') {
        const buckets = partitionsOfData(d, g.buckets);
        for (let i = 0; i < n; i++) mixIn(i, hashNumber(buckets[i]));
      } else if (d.type.typeId === Type.Utf8) {
        const interner = new Utf8Interner();
        const ids = interner.ids(d);
        const distinct = interner.strings.map(hashKey);
        const none = hashKey(null);
        for (let i = 0; i < n; i++) mixIn(i, ids[i] < 0 ? none : distinct[ids[i]]);
      } else if (isNumericType(d.type)) {
        const { vals, valid } = numbersOf(d);
        const none = hashKey(null);
        for (let i = 0; i < n; i++) mixIn(i, valid && !valid[i] ? none : hashNumber(vals[i]));
      } else {
        const vals = scalarsOf(d);
        for (let i = 0; i < n; i++) mixIn(i, hashKey(vals[i]));
      }
    }
    if (tumbling) {
      const times = this.timesOf(batch).vals;
      for (let i = 0; i < n; i++) mixIn(i, hashKey(lastWindowStart(times[i], tumbling.slideMs, tumbling.offsetMs)));
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
    const tumbling = this.tumbling();
    if (!tumbling && this.componentCount === 1) {
      const c = this.componentsOf(batch)[0];
      return Array.isArray(c)
        ? c
        : Array.from({ length: batch.numRows }, (_, i) => (c.valid && !c.valid[i] ? null : c.vals[i]));
    }
    return Array.from(this.keyHashes(batch, tumbling));
  }

  private tumbling(): TimeWindowGrouping | null {
    const w = this.window;
    return w?.kind === 'window' && w.sizeMs === w.slideMs ? w : null;
  }

  /**
   * Partitions as keysOf hashes them, computed from the key column's buffers when the key is one utf8,
   * 32-bit integer or double column (no string is decoded); several key columns from their combined hashes,
   * in typed arrays.
   */
  partitionsOf(batch: RecordBatch, numPartitions: number): Int32Array {
    const keys = this.def.groupings.filter((g) => g.kind !== 'window' && g.kind !== 'session');
    const tumbling = this.tumbling();
    if (!tumbling && keys.length === 1 && keys[0].kind === 'key') {
      const d = evaluate(keys[0].column, batch, this.evalCtx());
      const t = d.type;
      const direct =
        t.typeId === Type.Utf8 || t.typeId === Type.Float || (t.typeId === Type.Int && (t as Int).bitWidth <= 32);
      if (direct) return partitionsOfData(d, numPartitions);
    }
    if (!tumbling && this.componentCount === 1) {
      const k = this.keysOf(batch);
      const out = new Int32Array(k.length);
      for (let i = 0; i < k.length; i++) out[i] = partitionOf(k[i], numPartitions);
      return out;
    }
    // keysOf's keys are these int32 hashes, and partitionOf of an int32 is partitionsOfNumbers' value.
    return partitionsOfNumbers(this.keyHashes(batch, tumbling), numPartitions);
  }

  internalRows(state: KeyedState): number {
    return this.schemas.internalRows(state);
  }

  process(inputs: RecordBatch[], ctx: StatefulContext): RecordBatch[] {
    const batches = inputs.filter((b) => b.numRows > 0);
    let output: Schema | null = null;
    if (batches.length > 0) {
      const b = this.schemas.bind(batches[0].schema);
      output = b.output;
      this.schemas.store(ctx.state, b);
    } else {
      output = this.schemas.storedSchema(ctx.state);
      if (!output) return [];
    }
    const state = this.decoded.begin(ctx.state, ctx.batchId);
    const run =
      this.window?.kind === 'session'
        ? new SessionAggregationRun(this, ctx, state, output)
        : new GroupAggregationRun(this, ctx, state, output);
    const keyed = batches.map((batch) => this.evaluateBatch(batch, ctx));
    const keys = this.localKeys(keyed, ctx);
    const out = run.run(keyed, keys);
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
      if (!a) {
        a = new ArgColumn(d);
        columns.set(d, a);
      }
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
    const keys = new LocalKeys(this.componentCount, utf8 ? new Utf8Interner() : null);
    for (const k of keyed) {
      if (utf8) k.keyIds = keys.interner!.ids(k.keyData!);
      else k.components = k.keyData ? [keyComponent(k.keyData)] : this.componentsOf(k.batch, ctx);
    }
    return keys;
  }
}

/**
 * A key column as a key component: numbers (ints, doubles, timestamps and dates, as epoch ms) as their typed
 * numbers, other types as JS values.
 */
function keyComponent(d: Data): KeyComponent {
  const t = d.type;
  const numeric =
    t.typeId === Type.Int ||
    (t.typeId === Type.Float && (t as Float).precision > 0) ||
    t.typeId === Type.Timestamp ||
    t.typeId === Type.Date;
  return numeric ? numbersOf(d) : scalarsOf(d);
}

/** The column an expression reads as it is (`col('ts')`, `col('ts').alias('t')`), or null for any other expression. */
function columnRead(e: Expression): string | null {
  const x = e.expr;
  if (x.kind === 'col') return x.name;
  return x.kind === 'alias' && x.child.kind === 'col' ? x.child.name : null;
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
          try {
            p = parseDuration(v, 'session gap');
          } catch {
            p = NaN;
          }
        }
        parsed.set(v, p);
      }
      ms = p;
    }
    out[i] = ms > 0 ? ms : NaN;
  }
  return out;
}
