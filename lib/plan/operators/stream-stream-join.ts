/**
 * Stream-stream joins, Spark's StreamingSymmetricHashJoinExec: both inputs are hash-partitioned by the join
 * keys; in each state partition the left side's new rows are joined with the right side's buffered rows and
 * buffered, then the right side's new rows with the left side's buffered rows (this batch's included) and
 * buffered, so every matching pair is emitted exactly once, in the batch where its later row arrives.
 *
 * Rows at or below the watermark are late and dropped (numRowsDroppedByWatermark). A buffered row is dropped
 * once the watermark shows no row of the other side can match it any more (the state watermark that the join
 * condition's event-time range gives, see join-condition.ts); an outer join then emits it null-padded if it
 * never matched, and a left semi join emits a left row once, at its first match. Output mode: append only.
 */
import { type Data, Field, type RecordBatch, Schema, Type } from 'apache-arrow';
import { batchOf, dataFromValues, emptyBatch, takeDataOrNull, valuesOf } from '../../arrow/index.js';
import { SluiceError } from '../../errors.js';
import { partitionOf } from '../../state/state-partitioner.js';
import { encodeKeyString } from '../../state/value-codec.js';
import { numbersOf } from '../aggregates/column-values.js';
import type { Expression, ExprNode } from '../expression.js';
import { splitColumnName } from '../expression.js';
import { evaluate, filterIndices } from '../expression-eval.js';
import { expandStructKeys, type JoinDefinition, type ResolvedJoin, resolveJoin } from '../join.js';
import { type EvictionBound, stateWatermarkBounds, windowEqualityBounds } from '../join-state-watermark.js';
import type { JoinType } from '../join-type.js';
import {
  type InputSide,
  inputSideOf,
  type KeyedState,
  type StatefulContext,
  type StatefulOperator,
} from '../stateful-operator.js';
import { JoinSideBuffer, MATCHED } from './join-side-buffer.js';
import { JoinState, type RowInfo } from './join-state.js';

const OTHER: Record<InputSide, InputSide> = { left: 'right', right: 'left' };

/** What Dataset.join recorded for a join of two streams. */
export interface StreamJoinSpec extends JoinDefinition {
  /** The event-time column (withWatermark) each side carries, when it has one. */
  leftEventTime?: string;
  rightEventTime?: string;
  /**
   * Per side, whether its rows come out of a stateful operator (e.g. a window aggregation's closed windows).
   * Such rows are not late whatever their event time: the operator below has already dropped the late ones and
   * emits what the watermark has closed, as Spark judges them by the previous batch's watermark.
   */
  leftAfterStateful?: boolean;
  rightAfterStateful?: boolean;
  /** Per side, its columns that are tumbling windows over its event time (a window-equality join evicts by them). */
  leftWindows?: string[];
  rightWindows?: string[];
}

/** Where an output column comes from; a using column of a right or full outer join falls back to the right's. */
interface OutputColumn {
  side: InputSide;
  index: number;
  rightIndex?: number;
}

/** A join resolved for a pair of side schemas, with what a stream-stream join adds. */
interface StreamJoin extends ResolvedJoin {
  output: Schema;
  columns: OutputColumn[];
  eviction: Record<InputSide, EvictionBound[]>;
  eventTime: Record<InputSide, number>;
}

/** Column values of a batch as JS values: numbers for ints and longs, epoch ms for timestamps (a typed array when none is null). */
function columnValues(data: Data): ArrayLike<unknown> {
  const t = data.type;
  if (
    t.typeId === Type.Timestamp ||
    t.typeId === Type.Date ||
    (t.typeId === Type.Int && (data.values instanceof BigInt64Array || data.values instanceof BigUint64Array))
  ) {
    const { vals, valid } = numbersOf(data);
    return valid ? Array.from(vals, (v, i) => (valid[i] ? v : null)) : vals;
  }
  return valuesOf(data);
}

/** Per side, which rows the join must remember it matched: the outer side(s), and the left side of a semi join. */
function tracksMatches(joinType: JoinType): Record<InputSide, boolean> {
  return {
    left: joinType === 'left_outer' || joinType === 'full_outer' || joinType === 'left_semi',
    right: joinType === 'right_outer' || joinType === 'full_outer',
  };
}

/** Whether unmatched rows of `side` are emitted null-padded. */
function isOuter(joinType: JoinType, side: InputSide): boolean {
  return joinType === 'full_outer' || joinType === (side === 'left' ? 'left_outer' : 'right_outer');
}

/** The sides' key expressions read from the condition with one side's schema alone (for the exchange). */
function sideKeys(spec: StreamJoinSpec, side: InputSide, schema: Schema): Expression[] {
  const alias = side === 'left' ? spec.leftAlias : spec.rightAlias;
  const otherAlias = side === 'left' ? spec.rightAlias : spec.leftAlias;
  const names = new Set(schema.fields.map((f) => f.name));
  // 'mine': every column read is this side's; 'theirs': some column is the other side's.
  const owner = (n: ExprNode): 'mine' | 'theirs' | 'none' => {
    switch (n.kind) {
      case 'col': {
        const parts = splitColumnName(n.name);
        if (names.has(n.name)) return 'mine';
        if (parts.length > 1 && parts[0] === alias && names.has(parts[1])) return 'mine';
        if (parts.length > 1 && parts[0] === otherAlias) return 'theirs';
        return names.has(parts[0]) ? 'mine' : 'theirs';
      }
      case 'lit':
        return 'none';
      default: {
        const kids: ExprNode[] =
          n.kind === 'op'
            ? [n.left, n.right]
            : n.kind === 'call' || n.kind === 'udf'
              ? n.args
              : n.kind === 'case'
                ? n.branches.flatMap((b) => [b.when, b.then, ...(n.otherwise ? [n.otherwise] : [])])
                : [n.child];
        const owners = kids.map(owner);
        if (owners.includes('theirs')) return 'theirs';
        return owners.includes('mine') ? 'mine' : 'none';
      }
    }
  };
  const strip = (n: ExprNode): ExprNode => {
    if (n.kind === 'col') {
      const parts = splitColumnName(n.name);
      if (!names.has(n.name) && parts.length > 1 && parts[0] === alias) {
        let out: ExprNode = { kind: 'col', name: parts[1] };
        for (const p of parts.slice(2)) out = { kind: 'field', child: out, name: p };
        return out;
      }
      return n;
    }
    if (n.kind === 'lit') return n;
    if (n.kind === 'op') return { ...n, left: strip(n.left), right: strip(n.right) };
    if (n.kind === 'call' || n.kind === 'udf') return { ...n, args: n.args.map(strip) };
    if (n.kind === 'case')
      return {
        kind: 'case',
        // biome-ignore lint/suspicious/noThenProperty: CASE WHEN's THEN, an expression, never a function
        branches: n.branches.map((b) => ({ when: strip(b.when), then: strip(b.then) })),
        otherwise: n.otherwise && strip(n.otherwise),
      };
    return { ...n, child: strip(n.child) } as ExprNode;
  };
  const keys: Expression[] = (spec.using ?? []).map((u) => ({
    expr: { kind: 'col', name: `\`${u.replaceAll('`', '``')}\`` },
  }));
  const conjuncts = (n: ExprNode): ExprNode[] =>
    n.kind === 'op' && n.op === 'AND' ? [...conjuncts(n.left), ...conjuncts(n.right)] : [n];
  for (const c of spec.condition ? conjuncts(spec.condition.expr) : []) {
    if (c.kind !== 'op' || c.op !== '=') continue;
    const a = owner(c.left);
    const b = owner(c.right);
    if (a === 'mine' && b === 'theirs') keys.push({ expr: strip(c.left) });
    else if (a === 'theirs' && b === 'mine') keys.push({ expr: strip(c.right) });
  }
  return expandStructKeys(keys, schema);
}

/** The join key of each row (one value, or an array of values); null where a key column is null. */
function keyValues(keys: readonly Expression[], batch: RecordBatch): unknown[] {
  const cols = keys.map((k) => columnValues(evaluate(k, batch, { batchTimestampMs: 0 })));
  const n = batch.numRows;
  const out = new Array<unknown>(n);
  if (cols.length === 1) {
    const c = cols[0];
    for (let i = 0; i < n; i++) out[i] = c[i] ?? null;
    return out;
  }
  for (let i = 0; i < n; i++) {
    const k = cols.map((c) => c[i] ?? null);
    out[i] = k.includes(null) ? null : k;
  }
  return out;
}

/** A stream-stream join (see the module comment); `spec` is what Dataset.join recorded. */
export class StreamStreamJoinOperator implements StatefulOperator {
  readonly name = 'symmetricHashJoin';
  readonly outputSchema = null;
  readonly outputModes = ['append'] as const;
  readonly outputModeHint =
    "a stream-stream join emits each joined row once, when it is final: use outputMode('append')";
  private readonly keysBySchema = new WeakMap<Schema, Expression[]>();
  private resolved: { left: Schema; right: Schema; join: StreamJoin } | null = null;
  /** Each state partition's buffered rows as of the last batch this instance ran it (see join-state.ts). */
  private readonly states = new Map<number, JoinState>();

  constructor(readonly spec: StreamJoinSpec) {}

  /**
   * Whether the join equates the two sides' event times and `column` is one of them: both rows of a pair then
   * have its value, so a pair is never behind the watermark by it (Spark's watermark in the join keys).
   */
  equatesEventTime(column: string): boolean {
    const l = this.spec.leftEventTime;
    const r = this.spec.rightEventTime;
    if (l === undefined || r === undefined || (column !== l && column !== r)) return false;
    if (l === r && this.spec.using?.includes(l)) return true;
    const named = (n: ExprNode, name: string, alias: string | undefined): boolean => {
      if (n.kind !== 'col') return false;
      const parts = splitColumnName(n.name);
      return n.name === name || (parts.length === 2 && parts[0] === alias && parts[1] === name);
    };
    const conjuncts = (n: ExprNode): ExprNode[] =>
      n.kind === 'op' && n.op === 'AND' ? [...conjuncts(n.left), ...conjuncts(n.right)] : [n];
    const { leftAlias, rightAlias } = this.spec;
    return (this.spec.condition ? conjuncts(this.spec.condition.expr) : []).some(
      (c) =>
        c.kind === 'op' &&
        c.op === '=' &&
        ((named(c.left, l, leftAlias) && named(c.right, r, rightAlias)) ||
          (named(c.left, r, rightAlias) && named(c.right, l, leftAlias))),
    );
  }

  usesWatermark(): boolean {
    return this.spec.leftEventTime !== undefined || this.spec.rightEventTime !== undefined;
  }

  /** Resolves the condition and checks Spark's rules for streaming joins, once per pair of side schemas. */
  resolve(left: Schema, right: Schema): StreamJoin {
    const r = this.resolved;
    if (r && r.left === left && r.right === right) return r.join;
    const base = resolveJoin(this.spec, left, right);
    const type = this.spec.joinType;
    const eventTime = {
      left: this.spec.leftEventTime ? left.fields.findIndex((f) => f.name === this.spec.leftEventTime) : -1,
      right: this.spec.rightEventTime ? right.fields.findIndex((f) => f.name === this.spec.rightEventTime) : -1,
    };
    const eviction = stateWatermarkBounds(base.residual?.expr, left, right, eventTime);
    const windows = windowEqualityBounds(
      { left: base.leftKeys, right: base.rightKeys },
      { left, right },
      {
        left: this.spec.leftAfterStateful ? [] : (this.spec.leftWindows ?? []),
        right: this.spec.rightAfterStateful ? [] : (this.spec.rightWindows ?? []),
      },
    );
    eviction.left.push(...windows.left);
    eviction.right.push(...windows.right);
    for (const side of ['left', 'right'] as const) {
      if (!isOuter(type, side)) continue;
      const missing = (['left', 'right'] as const).filter((s) => eventTime[s] < 0);
      if (missing.length > 0) {
        throw new SluiceError(
          'ANALYSIS',
          `a stream-stream ${type} join needs a watermark on both sides; the ${missing.join(' and ')} side has none`,
          "call withWatermark('<event time column>', '<delay>') on both inputs before the join",
        );
      }
      if (eviction[side].length === 0) {
        throw new SluiceError(
          'ANALYSIS',
          `a stream-stream ${type} join needs a time constraint in its condition, so that the ${side} side's rows can be emitted unmatched once no match can come`,
          "bound the event times, e.g. col('a.ts').between(col('b.ts').minus(interval('1 hour')), col('b.ts').plus(interval('1 hour')))",
        );
      }
    }
    const using = this.spec.using ?? [];
    const coalesceUsing = type === 'right_outer' || type === 'full_outer';
    const columns: OutputColumn[] = [
      ...base.leftOut.map((index, k) =>
        k < using.length && coalesceUsing
          ? { side: 'left' as const, index, rightIndex: right.fields.findIndex((f) => f.name === using[k]) }
          : { side: 'left' as const, index },
      ),
      ...base.rightOut.map((index) => ({ side: 'right' as const, index })),
    ];
    // Outer joins pad with nulls: every output column may be null.
    const output = new Schema(
      base.schema.fields.map((f) => (f.nullable ? f : new Field(f.name, f.type, true, f.metadata))),
    );
    const join: StreamJoin = { ...base, output, columns, eviction, eventTime };
    this.resolved = { left, right, join };
    return join;
  }

  resolveOutputSchema(left: Schema, right?: Schema): Schema | null {
    if (!right) return null;
    return this.resolve(left, right).output;
  }

  private keysOfSchema(batch: RecordBatch): Expression[] {
    let keys = this.keysBySchema.get(batch.schema);
    if (!keys) {
      const side = inputSideOf(batch);
      if (!side) throw new Error('a stream-stream join got a batch without its input side');
      keys = sideKeys(this.spec, side, batch.schema);
      this.keysBySchema.set(batch.schema, keys);
    }
    return keys;
  }

  keysOf(batch: RecordBatch): unknown[] {
    return keyValues(this.keysOfSchema(batch), batch);
  }

  partitionsOf(batch: RecordBatch, numPartitions: number): Int32Array {
    const keys = this.keysOf(batch);
    const out = new Int32Array(keys.length);
    for (let i = 0; i < keys.length; i++) out[i] = partitionOf(keys[i], numPartitions);
    return out;
  }

  internalRows(state: KeyedState): number {
    return JoinState.internalRows(state);
  }

  process(input: RecordBatch[], ctx: StatefulContext): RecordBatch[] {
    const sides: Record<InputSide, RecordBatch[]> = { left: [], right: [] };
    for (const b of input) sides[inputSideOf(b) ?? 'left'].push(b);
    const leftSchema = sides.left[0]?.schema;
    const rightSchema = sides.right[0]?.schema;
    if (!leftSchema || !rightSchema) {
      // The driver sends every partition an empty batch of each side whose schema it knows; without them
      // (a side built by a function without a declared schema, before its first row) nothing can be built yet.
      const only = sides.left.length + sides.right.length;
      if (only === 0) return [];
      throw new SluiceError(
        'ANALYSIS',
        'a stream-stream join cannot tell the columns of a side whose rows come from a function without a declared schema',
        'give map/flatMap a schema, or build the side with select/withColumn',
      );
    }
    const join = this.resolve(leftSchema, rightSchema);
    const rowInfo: RowInfo = (side, batch) => {
      const keys = keyValues(side === 'left' ? join.leftKeys : join.rightKeys, batch);
      const n = batch.numRows;
      const keyIds = new Array<unknown>(n);
      for (let i = 0; i < n; i++) {
        const k = keys[i];
        keyIds[i] = k !== null && typeof k === 'object' ? encodeKeyString(k) : k;
      }
      const deadlines = new Float64Array(n).fill(Infinity);
      for (const b of join.eviction[side]) {
        const column = batch.data.children[b.index];
        const vals = columnValues(b.field === undefined ? column : column.children[b.field]);
        for (let i = 0; i < n; i++) {
          const v = vals[i];
          if (typeof v === 'number' && v - b.offsetMs < deadlines[i]) deadlines[i] = v - b.offsetMs;
        }
      }
      return { keyIds, deadlines };
    };
    let state = this.states.get(ctx.partition);
    if (!state?.isCurrent(ctx.state, leftSchema, rightSchema)) {
      state = JoinState.load(ctx.state, leftSchema, rightSchema, keyColumns(join), rowInfo);
      this.states.set(ctx.partition, state);
    }
    return new JoinRun(this.spec, join, ctx, state, rowInfo).run(sides);
  }
}

/** Per side, the columns the join keys are, when every key is a plain column (written into the state's chunks). */
function keyColumns(join: StreamJoin): Record<InputSide, string[] | null> {
  const names = (keys: Expression[]) => {
    const out = keys.map((k) => (k.expr.kind === 'col' ? splitColumnName(k.expr.name) : []));
    return out.every((parts) => parts.length === 1) ? out.map((parts) => parts[0]) : null;
  };
  return { left: names(join.leftKeys), right: names(join.rightKeys) };
}

/** Where the rows of one side of some output rows come from: an input batch, or that side's buffer. */
type RowSource = RecordBatch | JoinSideBuffer;

/** Column names (`_l<i>`, `_r<i>`) an expression reads. */
function columnNames(n: unknown, out: Set<string>): Set<string> {
  if (n && typeof n === 'object') {
    const node = n as { kind?: string; name?: unknown };
    if (node.kind === 'col' && typeof node.name === 'string') out.add(node.name);
    for (const v of Object.values(n)) columnNames(v, out);
  }
  return out;
}

/** One partition's work in one batch. */
class JoinRun {
  private readonly out: RecordBatch[] = [];
  private readonly wm: number;
  private readonly tracks: Record<InputSide, boolean>;

  constructor(
    private readonly spec: StreamJoinSpec,
    private readonly join: StreamJoin,
    private readonly ctx: StatefulContext,
    private readonly state: JoinState,
    private readonly rowInfo: RowInfo,
  ) {
    this.wm = ctx.watermarkMs;
    this.tracks = tracksMatches(spec.joinType);
  }

  run(sides: Record<InputSide, RecordBatch[]>): RecordBatch[] {
    this.state.begin();
    for (const side of ['left', 'right'] as const) for (const b of sides[side]) this.joinBatch(side, b);
    this.state.finish(this.ctx.state, this.ctx.batchId, this.wm, (side, positions) => {
      if (!isOuter(this.spec.joinType, side)) return;
      const buf = this.state.sides[side];
      const unmatched = positions.filter((p) => (buf.status[p] & MATCHED) === 0);
      if (unmatched.length > 0) this.emitPadded(side, buf, unmatched);
    });
    const m = this.ctx.metrics;
    const { left, right } = this.state.sides;
    m.stateRows = left.live + right.live;
    m.customMetrics = {
      leftNumRowsTotal: left.live,
      rightNumRowsTotal: right.live,
      leftNumRowsUpdated: this.state.added.left,
      rightNumRowsUpdated: this.state.added.right,
      leftNumRowsRemoved: this.state.removed.left,
      rightNumRowsRemoved: this.state.removed.right,
    };
    return this.out.length > 0 ? this.out : [emptyBatch(this.join.output)];
  }

  /** Column `index` of rows `ids` of `from` (-1: null). */
  private static take(from: RowSource, index: number, ids: Int32Array): Data {
    return from instanceof JoinSideBuffer ? from.gather(index, ids) : takeDataOrNull(from.data.children[index], ids);
  }

  /** Output rows pairing row `leftIds[i]` of `left` with row `rightIds[i]` of `right` (-1: the side is null). */
  private emit(left: RowSource, leftIds: Int32Array, right: RowSource, rightIds: Int32Array): void {
    const n = leftIds.length;
    const fields = this.join.output.fields;
    const data = this.join.columns.map((col, c) => {
      const d = col.side === 'left' ? JoinRun.take(left, col.index, leftIds) : JoinRun.take(right, col.index, rightIds);
      if (col.rightIndex === undefined || !leftIds.includes(-1)) return d;
      // A using column of a right or full outer join: the right's value where the left row is missing.
      const mine = valuesOf(d);
      const theirs = valuesOf(JoinRun.take(right, col.rightIndex, rightIds));
      return dataFromValues(
        fields[c].type,
        mine.map((v, i) => v ?? theirs[i]),
      );
    });
    this.out.push(batchOf(this.join.output, data, n));
  }

  /** Rows `ids` of `side` from `from`, null-padded on the other side. */
  private emitPadded(side: InputSide, from: RowSource, ids: Int32Array): void {
    const none = new Int32Array(ids.length).fill(-1);
    const other = this.state.sides[OTHER[side]];
    if (side === 'left') this.emit(from, ids, other, none);
    else this.emit(other, none, from, ids);
  }

  /** Which candidate pairs satisfy the non-key part of the condition, evaluated over all of them at once. */
  private residualHolds(
    side: InputSide,
    batch: RecordBatch,
    rows: Int32Array,
    buffered: Int32Array,
  ): Int32Array | null {
    const residual = this.join.residual;
    if (!residual) return null;
    const theirs = this.state.sides[OTHER[side]];
    const used = columnNames(residual.expr, new Set());
    const fields = this.join.pairSchema.fields;
    const leftWidth = this.state.leftSchema.fields.length;
    const picked = fields.flatMap((f, i) => (used.has(f.name) ? [i] : []));
    const data = picked.map((i) => {
      const pairSide: InputSide = i < leftWidth ? 'left' : 'right';
      const index = i < leftWidth ? i : i - leftWidth;
      return pairSide === side ? JoinRun.take(batch, index, rows) : theirs.gather(index, buffered);
    });
    const schema = new Schema(picked.map((i) => fields[i]));
    return filterIndices(residual, batchOf(schema, data, rows.length), {
      batchTimestampMs: this.ctx.processingTimeMs,
    });
  }

  /** Joins one batch of `side` with the other side's buffered rows, then buffers what can still match. */
  private joinBatch(side: InputSide, batch: RecordBatch): void {
    const n = batch.numRows;
    if (n === 0) return;
    const other = OTHER[side];
    const theirs = this.state.sides[other];
    const { keyIds, deadlines } = this.rowInfo(side, batch);
    const afterStateful = side === 'left' ? this.spec.leftAfterStateful : this.spec.rightAfterStateful;
    const evIndex = afterStateful ? -1 : this.join.eventTime[side];
    const times = evIndex >= 0 && this.wm > 0 ? columnValues(batch.data.children[evIndex]) : null;
    const onTime = new Uint8Array(n);
    const candRows: number[] = [];
    const candBuffered: number[] = [];
    for (let i = 0; i < n; i++) {
      if (times) {
        const t = times[i];
        if (typeof t === 'number' && t <= this.wm) {
          this.ctx.metrics.numRowsDroppedByWatermark++;
          continue;
        }
      }
      onTime[i] = 1;
      const id = keyIds[i];
      if (id === null) continue;
      const list = theirs.rowsOf(id);
      if (!list) continue;
      for (let k = 0; k < list.length; k++) {
        candRows.push(i);
        candBuffered.push(list[k]);
      }
    }
    let rows = Int32Array.from(candRows);
    let buffered = Int32Array.from(candBuffered);
    if (rows.length > 0) {
      const holds = this.residualHolds(side, batch, rows, buffered);
      if (holds) {
        rows = holds.map((k) => rows[k]);
        buffered = holds.map((k) => buffered[k]);
      }
    }
    const matched = new Uint8Array(n);
    for (let k = 0; k < rows.length; k++) matched[rows[k]] = 1;
    const type = this.spec.joinType;
    if (type === 'left_semi') {
      // A right row emits each buffered left row at its first match; a left row is emitted below, once.
      if (side === 'right') {
        const first: number[] = [];
        for (let k = 0; k < buffered.length; k++)
          if (this.state.markMatched('left', buffered[k])) first.push(buffered[k]);
        if (first.length > 0) this.emitPadded('left', theirs, Int32Array.from(first));
      }
    } else if (rows.length > 0) {
      if (side === 'left') this.emit(batch, rows, theirs, buffered);
      else this.emit(theirs, buffered, batch, rows);
      if (isOuter(type, other)) for (let k = 0; k < buffered.length; k++) this.state.markMatched(other, buffered[k]);
    }
    const keep: number[] = [];
    const emitted: number[] = [];
    const padded: number[] = [];
    for (let i = 0; i < n; i++) {
      if (!onTime[i]) continue;
      if (type === 'left_semi' && side === 'left' && matched[i]) emitted.push(i);
      if (keyIds[i] !== null && deadlines[i] > this.wm) keep.push(i);
      else if (!matched[i] && isOuter(type, side)) padded.push(i);
    }
    if (emitted.length > 0) this.emitPadded('left', batch, Int32Array.from(emitted));
    if (padded.length > 0) this.emitPadded(side, batch, Int32Array.from(padded));
    if (keep.length > 0) {
      const kept = Int32Array.from(keep);
      this.state.add(
        side,
        batch,
        kept,
        keep.map((i) => keyIds[i]),
        Float64Array.from(keep, (i) => deadlines[i]),
        Uint8Array.from(keep, (i) => (this.tracks[side] ? matched[i] : 0)),
      );
    }
  }
}
