/**
 * The aggregate functions of `groupBy(...).agg(...)`. Each one works in two steps, as Spark's partial and
 * final aggregation do: a batch's rows are folded per group into a partial result with typed-array loops
 * (no row objects), then the partial is merged into the group's buffer kept in the state store. Buffers
 * are small JS values the state codec stores compactly (a number, a pair, a Set, a Map, HLL registers).
 * Merging is associative, so windows that meet again after a restart, across batches or when two sessions
 * merge combine the same way; the older buffer is always the left argument, which is what first/last use.
 */
import { type Data, type DataType, Field, Float64, Int64, List, Map_, Struct, Type } from 'apache-arrow';
import { isValid, type TextBuffer, textBuffer } from '../../arrow/columns.js';
import { varBytesOf } from '../../arrow/deferred-gather.js';
import { SluiceError } from '../../errors.js';
import {
  compareScalars,
  isNumericType,
  type Numbers,
  numbersOf,
  scalarsOf,
  Utf8Interner,
  valueType,
} from './column-values.js';
import * as hll from './hyperloglog.js';
import { packsRows, RowPacker, unpackRow } from './packed-rows.js';
import {
  bestRankedRow,
  isRankedRows,
  RankedRowsMerger,
  RankedRowsWriter,
  rankedRowPairs,
  rankedRowsOf,
  rankedRowValues,
} from './ranked-rows.js';

/** The aggregate functions sluice knows. */
export type AggregateName =
  | 'count'
  | 'count_if'
  | 'sum'
  | 'avg'
  | 'min'
  | 'max'
  | 'first'
  | 'last'
  | 'collect_list'
  | 'collect_set'
  | 'count_distinct'
  | 'approx_count_distinct'
  | 'max_by'
  | 'min_by'
  | 'top_k'
  | 'count_by';

/** Options some aggregates take. */
export interface AggregateOptions {
  /** first/last: skip null values. */
  ignoreNulls?: boolean;
  /** approx_count_distinct: relative standard deviation. */
  rsd?: number;
  /** top_k: how many values; max_by/min_by: how many rows (a list of their values). */
  k?: number;
  /** collect_list/collect_set: order the values by this argument (index into args) instead of arrival/value order. */
  ordered?: boolean;
}

/** One argument column of a batch, with its number and scalar views computed at most once. */
export class ArgColumn {
  private nums?: Numbers;
  private scalars?: unknown[];
  private text?: TextBuffer;
  private ids?: Interned | null;
  private fields?: ArgColumn[];
  private packer?: RowPacker | null;

  constructor(readonly data: Data) {}

  numbers(): Numbers {
    this.nums ??= numbersOf(this.data);
    return this.nums;
  }

  /** Scalars per row; a utf8 column's equal values are one shared string. */
  values(): unknown[] {
    if (this.scalars) return this.scalars;
    const interned = this.interned();
    if (!interned) {
      this.scalars = scalarsOf(this.data);
      return this.scalars;
    }
    const { ids, strings } = interned;
    const out = new Array<unknown>(ids.length);
    for (let i = 0; i < ids.length; i++) out[i] = ids[i] < 0 ? null : strings[ids[i]];
    this.scalars = out;
    return out;
  }

  /** A utf8 column's rows as ids of its distinct values (-1 for null), or null for other types. */
  interned(): Interned | null {
    if (this.ids !== undefined) return this.ids;
    if (this.data.type.typeId !== Type.Utf8) this.ids = null;
    else {
      const interner = new Utf8Interner();
      this.ids = { ids: interner.ids(this.data), strings: interner.strings };
    }
    return this.ids;
  }

  /**
   * The value of one row, decoding only that row when the whole column has not been read; a struct row is a
   * tuple (see structAt), whether or not the column was read whole.
   */
  valueAt(i: number): unknown {
    const d = this.data;
    if (d.type.typeId === Type.Struct) return isValid(d, i) ? this.structAt(i) : null;
    if (this.scalars) return this.scalars[i];
    if (!isValid(d, i)) return null;
    if (d.type.typeId === Type.Utf8) {
      const { offsets: vo, bytes, rows } = varBytesOf(d);
      const x = rows ? rows[i] : i;
      this.text ??= textBuffer(bytes);
      return this.text.utf8Slice(vo[x], vo[x + 1]);
    }
    if (isNumericType(d.type)) return this.numbers().vals[i];
    return this.values()[i];
  }

  /**
   * `compareScalars(valueAt(i), valueAt(j))` with as little decoding as it takes: a struct field by field,
   * numbers from their typed array, a utf8 value decoded only where the two rows' bytes differ.
   */
  compareAt(i: number, j: number): number {
    const d = this.data;
    const t = d.type.typeId;
    if (t === Type.Struct && isValid(d, i) && isValid(d, j)) {
      this.fields ??= d.children.map((c) => new ArgColumn(c));
      for (const f of this.fields) {
        const c = f.compareAt(i, j);
        if (c !== 0) return c;
      }
      return 0;
    }
    if (isNumericType(d.type)) {
      const { vals, valid } = this.numbers();
      if (valid && !(valid[i] && valid[j])) return valid[i] === valid[j] ? 0 : valid[i] ? 1 : -1;
      return vals[i] < vals[j] ? -1 : vals[i] > vals[j] ? 1 : 0;
    }
    if (t === Type.Utf8 && isValid(d, i) && isValid(d, j)) {
      const { offsets: vo, bytes, rows } = varBytesOf(d);
      const x = rows ? rows[i] : i;
      const y = rows ? rows[j] : j;
      const len = vo[x + 1] - vo[x];
      if (len === vo[y + 1] - vo[y]) {
        let k = 0;
        while (k < len && bytes[vo[x] + k] === bytes[vo[y] + k]) k++;
        if (k === len) return 0;
      }
    }
    return compareScalars(this.valueAt(i), this.valueAt(j));
  }

  /**
   * The value max_by keeps of row i: a packed row for a struct of scalar fields (see packed-rows.ts), else
   * {@link valueAt}'s value.
   */
  keptAt(i: number): unknown {
    const packer = this.rowPacker();
    return packer === null ? this.valueAt(i) : packer.pack(i);
  }

  /** The packer of this struct column's rows, or null when its rows are not packed (see packed-rows.ts). */
  rowPacker(): RowPacker | null {
    if (this.packer === undefined) this.packer = packsRows(this.data.type) ? new RowPacker(this.data) : null;
    return this.packer;
  }

  /**
   * One row of a struct column as a tuple: its fields' values in the struct's order, timestamps as epoch ms,
   * nested structs as tuples. top-k and max_by keep a few rows of a wide struct per batch, and a tuple is
   * cheaper than an object with named fields and Dates to build, compare (field by field, as a struct
   * orders) and keep in state; the Arrow builder reads tuples as struct rows by position.
   */
  private structAt(i: number): unknown[] {
    this.fields ??= this.data.children.map((c) => new ArgColumn(c));
    const fields = this.fields;
    const row = new Array<unknown>(fields.length);
    for (let f = 0; f < fields.length; f++) row[f] = fields[f].valueAt(i);
    return row;
  }
}

/** A utf8 column as ids of its distinct values. */
export interface Interned {
  ids: Int32Array;
  strings: string[];
}

/**
 * Per (group, distinct value) cells of one update are counted in a dense array when there are at most this
 * many per row (a few groups, a few hundred distinct values: window metrics), which is then read once.
 */
const DENSE_CELLS_PER_ROW = 4;

/** The per-batch fold of one aggregate over the rows of each local group. */
export interface Partial {
  /** Folds row i into group groups[i] for every i with groups[i] >= 0. */
  update(groups: Int32Array, args: ArgColumn[]): void;
  /** The buffer of group g (every group has at least one row folded in). */
  buffer(g: number): unknown;
}

/** An aggregate function: partial fold, merge of buffers, final value. */
export interface AggregateFunction {
  readonly name: AggregateName;
  /** Spark-like generated column name from the argument names, e.g. `sum(amount)`. */
  outputName(argNames: string[]): string;
  /** Arrow type of the result from the argument types; throws SluiceError('ANALYSIS') when they do not fit. */
  resultType(argTypes: DataType[]): DataType;
  newPartial(numGroups: number): Partial;
  /**
   * Combines two buffers of one group; `older` came first (earlier batch, earlier session). It may change
   * `older` in place and return it (the caller owns it and uses only the result); `newer` is left as it is.
   */
  merge(older: unknown, newer: unknown): unknown;
  /** The output value of a buffer (a JS value of resultType's shape). */
  result(buffer: unknown): unknown;
}

function typeError(fn: string, what: string, hint: string): SluiceError {
  return new SluiceError('ANALYSIS', `${fn}: ${what}`, hint);
}

function needNumeric(fn: string, t: DataType): void {
  const v = valueType(t);
  if (!isNumericType(v) && v.typeId !== Type.Utf8 && v.typeId !== Type.Bool) {
    throw typeError(
      fn,
      `cannot aggregate a column of type ${v}`,
      'use a numeric column, or a string column holding decimal numbers',
    );
  }
}

function needScalar(fn: string, t: DataType): void {
  const v = valueType(t);
  if (v.typeId === Type.List || v.typeId === Type.Struct || v.typeId === Type.Map) {
    throw typeError(
      fn,
      `cannot aggregate a column of type ${v}`,
      'use a scalar column (string, number, boolean, timestamp), or one field of the struct',
    );
  }
}

const isIntegral = (t: DataType): boolean => {
  const v = valueType(t);
  return v.typeId === Type.Int;
};

// ---------------------------------------------------------------------------------------------- count

class CountPartial implements Partial {
  readonly counts: Float64Array;
  constructor(
    n: number,
    private readonly star: boolean,
  ) {
    this.counts = new Float64Array(n);
  }
  update(groups: Int32Array, args: ArgColumn[]): void {
    const c = this.counts;
    if (this.star) {
      for (let i = 0; i < groups.length; i++) {
        const g = groups[i];
        if (g >= 0) c[g]++;
      }
      return;
    }
    const d = args[0].data;
    const bm = d.nullBitmap;
    if (d.nullCount === 0 || !bm || bm.length === 0) {
      for (let i = 0; i < groups.length; i++) {
        const g = groups[i];
        if (g >= 0) c[g]++;
      }
      return;
    }
    // The validity bits read directly (Data.getValid per row costs several times more).
    const off = d.offset;
    for (let i = 0; i < groups.length; i++) {
      const g = groups[i];
      const j = off + i;
      if (g >= 0 && (bm[j >> 3] >> (j & 7)) & 1) c[g]++;
    }
  }
  buffer(g: number): unknown {
    return this.counts[g];
  }
}

const countFn = (star: boolean): AggregateFunction => ({
  name: 'count',
  outputName: (a) => (star ? 'count(1)' : `count(${a[0]})`),
  resultType: () => new Int64(),
  newPartial: (n) => new CountPartial(n, star),
  merge: (a, b) => (a as number) + (b as number),
  result: (b) => b,
});

// ------------------------------------------------------------------------------------------- count_if

/**
 * count_if's fold: the rows whose boolean argument is true, read from its bits (value and validity bitmaps,
 * a byte of rows at a time where the group ids allow), with no vector made per aggregate.
 */
class CountIfPartial implements Partial {
  readonly counts: Float64Array;
  constructor(n: number) {
    this.counts = new Float64Array(n);
  }
  update(groups: Int32Array, args: ArgColumn[]): void {
    const d = args[0].data;
    const c = this.counts;
    const bits = d.values as Uint8Array;
    const bm = d.nullCount > 0 && d.nullBitmap && d.nullBitmap.length > 0 ? d.nullBitmap : null;
    const off = d.offset;
    for (let i = 0; i < groups.length; i++) {
      const g = groups[i];
      const j = off + i;
      if (g >= 0 && (bits[j >> 3] >> (j & 7)) & 1 && (bm === null || (bm[j >> 3] >> (j & 7)) & 1)) c[g]++;
    }
  }
  buffer(g: number): unknown {
    return this.counts[g];
  }
}

const countIfFn: AggregateFunction = {
  name: 'count_if',
  outputName: (a) => `count_if(${a[0]})`,
  resultType: (t) => {
    if (valueType(t[0]).typeId !== Type.Bool)
      throw typeError(
        'count_if',
        `needs a boolean condition, got a column of type ${t[0]}`,
        "e.g. count_if(col('price').lt(100))",
      );
    return new Int64();
  },
  newPartial: (n) => new CountIfPartial(n),
  merge: (a, b) => (a as number) + (b as number),
  result: (b) => b,
};

// ------------------------------------------------------------------------------------------ sum, avg

class SumPartial implements Partial {
  readonly sums: Float64Array;
  readonly counts: Float64Array;
  constructor(
    n: number,
    private readonly avg: boolean,
  ) {
    this.sums = new Float64Array(n);
    this.counts = new Float64Array(n);
  }
  update(groups: Int32Array, args: ArgColumn[]): void {
    const { vals, valid } = args[0].numbers();
    const s = this.sums;
    const c = this.counts;
    if (!valid) {
      for (let i = 0; i < groups.length; i++) {
        const g = groups[i];
        if (g >= 0) {
          s[g] += vals[i];
          c[g]++;
        }
      }
    } else {
      for (let i = 0; i < groups.length; i++) {
        const g = groups[i];
        if (g >= 0 && valid[i]) {
          s[g] += vals[i];
          c[g]++;
        }
      }
    }
  }
  buffer(g: number): unknown {
    if (this.avg) return [this.sums[g], this.counts[g]];
    return this.counts[g] > 0 ? this.sums[g] : null;
  }
}

const sumFn: AggregateFunction = {
  name: 'sum',
  outputName: (a) => `sum(${a[0]})`,
  resultType: (t) => {
    needNumeric('sum', t[0]);
    return isIntegral(t[0]) ? new Int64() : new Float64();
  },
  newPartial: (n) => new SumPartial(n, false),
  merge: (a, b) => (a === null ? b : b === null ? a : (a as number) + (b as number)),
  result: (b) => b,
};

const avgFn: AggregateFunction = {
  name: 'avg',
  outputName: (a) => `avg(${a[0]})`,
  resultType: (t) => {
    needNumeric('avg', t[0]);
    return new Float64();
  },
  newPartial: (n) => new SumPartial(n, true),
  merge: (a, b) => {
    const x = a as number[];
    const y = b as number[];
    x[0] += y[0];
    x[1] += y[1];
    return x;
  },
  result: (b) => {
    const [s, c] = b as number[];
    return c > 0 ? s / c : null;
  },
};

// ------------------------------------------------------------------------------------------ min, max

class ExtremePartial implements Partial {
  private readonly nums: Float64Array;
  private readonly seen: Uint8Array;
  private readonly vals: unknown[];
  constructor(
    n: number,
    private readonly sign: 1 | -1,
  ) {
    this.nums = new Float64Array(n);
    this.seen = new Uint8Array(n);
    this.vals = new Array(n).fill(null);
  }
  update(groups: Int32Array, args: ArgColumn[]): void {
    const t = valueType(args[0].data.type);
    const seen = this.seen;
    if (isNumericType(t)) {
      const { vals, valid } = args[0].numbers();
      const m = this.nums;
      const sign = this.sign;
      for (let i = 0; i < groups.length; i++) {
        const g = groups[i];
        if (g < 0 || (valid && !valid[i])) continue;
        const v = vals[i];
        if (!seen[g] || (sign > 0 ? v > m[g] : v < m[g])) {
          m[g] = v;
          seen[g] = 1;
        }
      }
      return;
    }
    const vals = args[0].values();
    for (let i = 0; i < groups.length; i++) {
      const g = groups[i];
      const v = vals[i];
      if (g < 0 || v === null) continue;
      if (!seen[g] || compareScalars(v, this.vals[g]) * this.sign > 0) {
        this.vals[g] = v;
        seen[g] = 2;
      }
    }
  }
  buffer(g: number): unknown {
    return this.seen[g] === 1 ? this.nums[g] : this.seen[g] === 2 ? this.vals[g] : null;
  }
}

const extremeFn = (name: 'min' | 'max'): AggregateFunction => {
  const sign = name === 'max' ? 1 : -1;
  return {
    name,
    outputName: (a) => `${name}(${a[0]})`,
    resultType: (t) => {
      needScalar(name, t[0]);
      return valueType(t[0]);
    },
    newPartial: (n) => new ExtremePartial(n, sign),
    merge: (a, b) => (a === null ? b : b === null ? a : compareScalars(b, a) * sign > 0 ? b : a),
    result: (b) => b,
  };
};

// ----------------------------------------------------------------------------------------- first, last

class EdgePartial implements Partial {
  private readonly vals: unknown[];
  private readonly seen: Uint8Array;
  constructor(
    n: number,
    private readonly last: boolean,
    private readonly ignoreNulls: boolean,
  ) {
    this.vals = new Array(n).fill(null);
    this.seen = new Uint8Array(n);
  }
  update(groups: Int32Array, args: ArgColumn[]): void {
    const vals = args[0].values();
    for (let i = 0; i < groups.length; i++) {
      const g = groups[i];
      if (g < 0) continue;
      const v = vals[i];
      if (this.ignoreNulls && v === null) continue;
      if (this.last || !this.seen[g]) {
        this.vals[g] = v;
        this.seen[g] = 1;
      }
    }
  }
  buffer(g: number): unknown {
    return this.vals[g];
  }
}

const edgeFn = (name: 'first' | 'last', ignoreNulls: boolean): AggregateFunction => ({
  name,
  outputName: (a) => (ignoreNulls ? `${name}(${a[0]}, true)` : `${name}(${a[0]})`),
  resultType: (t) => {
    needScalar(name, t[0]);
    return valueType(t[0]);
  },
  newPartial: (n) => new EdgePartial(n, name === 'last', ignoreNulls),
  // Without ignoreNulls a buffer's null is a real first/last value; with it, null means "none yet".
  merge:
    name === 'first' ? (a, b) => (ignoreNulls && a === null ? b : a) : (a, b) => (ignoreNulls && b === null ? a : b),
  result: (b) => b,
});

// ---------------------------------------------------------------------------------- collect_list/set

/** Per-group JS collections filled row by row (values are decoded anyway to become set and map keys). */
abstract class CollectionPartial<C> implements Partial {
  protected readonly items: (C | undefined)[];
  constructor(n: number) {
    this.items = new Array(n);
  }
  abstract update(groups: Int32Array, args: ArgColumn[]): void;
  abstract buffer(g: number): unknown;
}

// A group's collection, made at its first value: one function per collection type, so that each stays
// monomorphic where the update loops inline it.
function listAt(items: (unknown[] | undefined)[], g: number): unknown[] {
  let c = items[g];
  if (c === undefined) items[g] = c = [];
  return c;
}

function setAt(items: (Set<unknown> | undefined)[], g: number): Set<unknown> {
  let c = items[g];
  if (c === undefined) items[g] = c = new Set();
  return c;
}

function mapAt<V>(items: (Map<unknown, V> | undefined)[], g: number): Map<unknown, V> {
  let c = items[g];
  if (c === undefined) items[g] = c = new Map();
  return c;
}

class ListPartial extends CollectionPartial<unknown[]> {
  constructor(
    n: number,
    private readonly ordered: boolean,
  ) {
    super(n);
  }
  update(groups: Int32Array, args: ArgColumn[]): void {
    const vals = args[0].values();
    const ords = this.ordered ? args[1].values() : null;
    for (let i = 0; i < groups.length; i++) {
      const g = groups[i];
      const v = vals[i];
      if (g < 0 || v === null) continue;
      // Ordered lists keep [order, value] pairs, flattened; rows with a null order sort first.
      if (ords) listAt(this.items, g).push(ords[i], v);
      else listAt(this.items, g).push(v);
    }
  }
  override buffer(g: number): unknown {
    return this.items[g] ?? [];
  }
}

function sortedPairs(flat: unknown[]): unknown[] {
  const idx = Array.from({ length: flat.length / 2 }, (_, i) => i);
  idx.sort(
    (x, y) => compareScalars(flat[2 * x], flat[2 * y]) || compareScalars(flat[2 * x + 1], flat[2 * y + 1]) || x - y,
  );
  return idx.map((i) => flat[2 * i + 1]);
}

const collectListFn = (ordered: boolean): AggregateFunction => ({
  name: 'collect_list',
  outputName: (a) => (ordered ? `collect_list(${a[0]}, ${a[1]})` : `collect_list(${a[0]})`),
  resultType: (t) => {
    needScalar('collect_list', t[0]);
    return new List(new Field('item', valueType(t[0]), true));
  },
  newPartial: (n) => new ListPartial(n, ordered),
  merge: (a, b) => {
    const x = a as unknown[];
    for (const v of b as unknown[]) x.push(v);
    return x;
  },
  result: (b) => (ordered ? sortedPairs(b as unknown[]) : b),
});

class SetPartial extends CollectionPartial<Set<unknown>> {
  update(groups: Int32Array, args: ArgColumn[]): void {
    const interned = args[0].interned();
    if (interned) {
      this.updateInterned(groups, interned);
      return;
    }
    if (isNumericType(valueType(args[0].data.type))) {
      this.updateNumeric(groups, args[0].numbers());
      return;
    }
    const vals = args[0].values();
    for (let i = 0; i < groups.length; i++) {
      const g = groups[i];
      const v = vals[i];
      if (g < 0 || v === null) continue;
      setAt(this.items, g).add(v);
    }
  }

  /** Numbers (ids, event times) straight from the column's typed array: no array of scalars per batch. */
  private updateNumeric(groups: Int32Array, { vals, valid }: Numbers): void {
    for (let i = 0; i < groups.length; i++) {
      const g = groups[i];
      if (g < 0 || (valid && !valid[i])) continue;
      setAt(this.items, g).add(vals[i]);
    }
  }

  /** Each value is added to a group's set once per run of rows of that group (no Set lookup for repeats). */
  private updateInterned(groups: Int32Array, { ids, strings }: Interned): void {
    const lastGroup = new Int32Array(strings.length).fill(-1);
    for (let i = 0; i < groups.length; i++) {
      const g = groups[i];
      const id = ids[i];
      if (g < 0 || id < 0 || lastGroup[id] === g) continue;
      lastGroup[id] = g;
      setAt(this.items, g).add(strings[id]);
    }
  }
  override buffer(g: number): unknown {
    return this.items[g] ?? new Set();
  }
}

/** Value → smallest order seen with it (collect_set ordered by first occurrence). */
class FirstOrderPartial extends CollectionPartial<Map<unknown, unknown>> {
  update(groups: Int32Array, args: ArgColumn[]): void {
    if (isNumericType(valueType(args[1].data.type))) {
      this.updateNumeric(groups, args);
      return;
    }
    const vals = args[0].values();
    const ords = args[1].values();
    for (let i = 0; i < groups.length; i++) {
      const g = groups[i];
      const v = vals[i];
      if (g < 0 || v === null) continue;
      keepFirstOrder(mapAt(this.items, g), v, ords[i]);
    }
  }

  /** Numeric orders (event times) compared as numbers; a null order sorts first, as compareScalars has it. */
  private updateNumeric(groups: Int32Array, args: ArgColumn[]): void {
    const vals = args[0].values();
    const { vals: ords, valid } = args[1].numbers();
    for (let i = 0; i < groups.length; i++) {
      const g = groups[i];
      const v = vals[i];
      if (g < 0 || v === null) continue;
      const m = mapAt(this.items, g);
      const o = valid && !valid[i] ? null : ords[i];
      const cur = m.get(v);
      if (cur === undefined ? !m.has(v) : o === null ? cur !== null : cur !== null && o < (cur as number)) m.set(v, o);
    }
  }
  override buffer(g: number): unknown {
    return this.items[g] ?? new Map();
  }
}

/** Records that value `v` came with order `o` in a value → smallest order map. */
function keepFirstOrder(m: Map<unknown, unknown>, v: unknown, o: unknown): void {
  if (!m.has(v) || compareScalars(o, m.get(v)) < 0) m.set(v, o);
}

/** The values of a value → first order map, by order, then by value. */
function firstOrderResult(b: unknown): unknown[] {
  const m = b as Map<unknown, unknown>;
  const values = new Array<unknown>(m.size);
  const orders = new Array<unknown>(m.size);
  let n = 0;
  let numeric = true;
  m.forEach((o, v) => {
    values[n] = v;
    orders[n++] = o;
    if (typeof o !== 'number' || Number.isNaN(o)) numeric = false;
  });
  // Orders that are all numbers (event times) compare as numbers; compareScalars decides the ties as ever.
  const before = numeric
    ? (x: number, y: number): boolean =>
        (orders[x] as number) - (orders[y] as number) < 0 ||
        (orders[x] === orders[y] && compareScalars(values[x], values[y]) < 0)
    : (x: number, y: number): boolean =>
        (compareScalars(orders[x], orders[y]) || compareScalars(values[x], values[y])) < 0;
  const idx = new Int32Array(n);
  for (let i = 0; i < n; i++) idx[i] = i;
  // The order is total (values are distinct). A session visits a handful of pages: insertion sort.
  if (n > 32) idx.sort((x, y) => (before(x, y) ? -1 : before(y, x) ? 1 : 0));
  else {
    for (let i = 1; i < n; i++) {
      let j = i;
      while (j > 0 && before(i, idx[j - 1])) {
        idx[j] = idx[j - 1];
        j--;
      }
      idx[j] = i;
    }
  }
  for (let i = 0; i < n; i++) orders[i] = values[idx[i]];
  return orders;
}

// Merges iterate with forEach: for-of over a Map makes an entry array per element.
function unionSets(a: unknown, b: unknown): unknown {
  const s = a as Set<unknown>;
  for (const v of b as Set<unknown>) s.add(v);
  return s;
}

function mergeFirstOrders(a: unknown, b: unknown): unknown {
  const m = a as Map<unknown, unknown>;
  (b as Map<unknown, unknown>).forEach((o, v) => {
    keepFirstOrder(m, v, o);
  });
  return m;
}

const collectSetFn = (ordered: boolean): AggregateFunction => ({
  name: 'collect_set',
  outputName: (a) => (ordered ? `collect_set(${a[0]}, ${a[1]})` : `collect_set(${a[0]})`),
  resultType: (t) => {
    needScalar('collect_set', t[0]);
    return new List(new Field('item', valueType(t[0]), true));
  },
  newPartial: (n) => (ordered ? new FirstOrderPartial(n) : new SetPartial(n)),
  merge: ordered ? mergeFirstOrders : unionSets,
  result: ordered ? firstOrderResult : (b) => [...(b as Set<unknown>)].sort(compareScalars),
});

// ---------------------------------------------------------------------------- count_distinct, HLL

const countDistinctFn: AggregateFunction = {
  name: 'count_distinct',
  outputName: (a) => `count(DISTINCT ${a[0]})`,
  resultType: (t) => {
    needScalar('count_distinct', t[0]);
    return new Int64();
  },
  newPartial: (n) => new SetPartial(n),
  merge: unionSets,
  result: (b) => (b as Set<unknown>).size,
};

class HllPartial implements Partial {
  private readonly regs: (Uint8Array | undefined)[];
  constructor(
    n: number,
    private readonly p: number,
  ) {
    this.regs = new Array(n);
  }
  private at(g: number): Uint8Array {
    let r = this.regs[g];
    if (r === undefined) this.regs[g] = r = new Uint8Array(1 << this.p);
    return r;
  }
  update(groups: Int32Array, args: ArgColumn[]): void {
    const d = args[0].data;
    const p = this.p;
    if (d.type.typeId === Type.Utf8) {
      // Hash the utf8 bytes in place: no string is decoded.
      const vo = d.valueOffsets as Int32Array;
      const bytes = d.values as Uint8Array;
      for (let i = 0; i < groups.length; i++) {
        const g = groups[i];
        if (g >= 0 && d.getValid(i)) hll.addUtf8(this.at(g), p, bytes, vo[i], vo[i + 1]);
      }
      return;
    }
    if (isNumericType(d.type)) {
      const { vals, valid } = args[0].numbers();
      for (let i = 0; i < groups.length; i++) {
        const g = groups[i];
        if (g >= 0 && (!valid || valid[i])) hll.addNumber(this.at(g), p, vals[i]);
      }
      return;
    }
    const vals = args[0].values();
    for (let i = 0; i < groups.length; i++) {
      const g = groups[i];
      if (g >= 0 && vals[i] !== null) hll.addValue(this.at(g), p, vals[i]);
    }
  }
  buffer(g: number): unknown {
    return this.regs[g] ?? new Uint8Array(1 << this.p);
  }
}

const approxCountDistinctFn = (rsd: number): AggregateFunction => {
  const p = hll.precisionForRsd(rsd);
  return {
    name: 'approx_count_distinct',
    outputName: (a) => `approx_count_distinct(${a[0]})`,
    resultType: (t) => {
      needScalar('approx_count_distinct', t[0]);
      return new Int64();
    },
    newPartial: (n) => new HllPartial(n, p),
    merge: (a, b) => hll.mergeInto(a as Uint8Array, b as Uint8Array),
    result: (b) => hll.estimate(b as Uint8Array),
  };
};

// ---------------------------------------------------------------------------------- max_by, min_by

/** An [order, value] pair of max_by/min_by. */
type Ranked = [unknown, unknown];

/** How two kept values compare: as values, or as the tuples of packed rows. */
type CompareValues = (a: unknown, b: unknown) => number;

const tupleOf = (v: unknown): unknown => (v instanceof Uint8Array ? unpackRow(v) : v);

/** Kept struct rows compare as tuples, packed or not; any other value (a binary one too) as it is. */
const compareRows: CompareValues = (a, b) => compareScalars(tupleOf(a), tupleOf(b));

function better(x: Ranked, y: Ranked, sign: number, cmp: CompareValues): boolean {
  const c = compareScalars(x[0], y[0]) * sign;
  if (c !== 0) return c > 0;
  // Equal orders: the smaller value wins, whatever the arrival order, so results are deterministic.
  return cmp(x[1], y[1]) < 0;
}

/** Inserts `x` into a best-first list kept at most `k` long (ties by value). */
function insertRanked(list: Ranked[], x: Ranked, k: number, sign: number, cmp: CompareValues): void {
  let i = list.length;
  if (i === k && !better(x, list[i - 1], sign, cmp)) return;
  while (i > 0 && better(x, list[i - 1], sign, cmp)) i--;
  list.splice(i, 0, x);
  if (list.length > k) list.pop();
}

/**
 * What max_by/min_by keep of a group and how they merge it, for one aggregate: the rows of a struct of scalar
 * fields ranked by a numeric order as one ranked-rows array (ranked-rows.ts), other values as [order, value]
 * pairs (one pair for the plain form, a best-first list of up to k for the top-k form), as state written
 * before ranked rows holds them too. The two meet when such state is restored: they merge as pairs, and
 * the result is a ranked-rows array again once every row kept is packed.
 */
class KeptRows {
  private readonly writer = new RankedRowsWriter();
  readonly merger: RankedRowsMerger;

  constructor(
    readonly sign: 1 | -1,
    readonly k: number,
    /** The plain form: one pair (or null) rather than a list of them. */
    readonly single: boolean,
    readonly cmp: () => CompareValues,
  ) {
    this.merger = new RankedRowsMerger(k, sign, this.writer);
  }

  /** The writer new ranked-rows arrays of a batch go into. */
  rowsWriter(): RankedRowsWriter {
    return this.writer;
  }

  /** Merges `newer` into `older` (changed in place when it is pairs). */
  merge(older: unknown, newer: unknown): unknown {
    if (isRankedRows(older) && isRankedRows(newer)) return this.merger.merge(older, newer);
    if (this.single) {
      if (older === null || newer === null) return older === null ? newer : older;
      if (!isRankedRows(older) && !isRankedRows(newer)) {
        const x = older as Ranked;
        const y = newer as Ranked;
        // The newer pair's fields copied into the older one: the partial's pair is then garbage right away.
        if (better(y, x, this.sign, this.cmp())) {
          x[0] = y[0];
          x[1] = y[1];
        }
        return x;
      }
    }
    const list = this.pairs(older);
    for (const p of this.pairs(newer)) insertRanked(list, p, this.k, this.sign, this.cmp());
    return this.fromPairs(list);
  }

  /** The kept values, best first (the plain form: the best one, or null). */
  result(kept: unknown): unknown {
    if (this.single) {
      if (kept === null) return null;
      return isRankedRows(kept) ? bestRankedRow(kept) : (kept as Ranked)[1];
    }
    return isRankedRows(kept) ? rankedRowValues(kept) : (kept as Ranked[]).map((p) => p[1]);
  }

  private pairs(kept: unknown): Ranked[] {
    if (kept === null) return [];
    if (isRankedRows(kept)) return rankedRowPairs(kept);
    return this.single ? [kept as Ranked] : (kept as Ranked[]);
  }

  /** Pairs as kept: a ranked-rows array when every value is a packed row with a numeric order. */
  private fromPairs(list: Ranked[]): unknown {
    const packed = list.length > 0 && list.every(([o, v]) => typeof o === 'number' && v instanceof Uint8Array);
    if (packed) return rankedRowsOf(list as [number, Uint8Array][], this.writer);
    return this.single ? (list[0] ?? null) : list;
  }
}

/**
 * The `k` best rows of each group, best first: max_by/min_by, with k = 1 for the plain form. Numeric orders
 * (event times, prices) are ranked by row index first, in one flat array of k row slots per group with the
 * orders compared as numbers, so a row below a full group's last is dropped by one comparison and only the
 * rows kept are read: a struct of scalar fields packed straight into the group's ranked-rows array
 * (ranked-rows.ts), so that a whole wide row is copied as bytes rather than decoded.
 */
class ByPartial implements Partial {
  /** Pairs per group, made on the first one: groups of packed rows (the usual case) have none. */
  private best: (Ranked[] | undefined)[] | null = null;
  private readonly ranked: (Uint8Array | undefined)[];
  constructor(
    private readonly n: number,
    private readonly kept: KeptRows,
  ) {
    this.ranked = new Array(n);
  }
  update(groups: Int32Array, args: ArgColumn[]): void {
    if (isNumericType(valueType(args[1].data.type))) {
      this.updateNumeric(groups, args);
      return;
    }
    const vals = args[0].values();
    const ords = args[1].values();
    for (let i = 0; i < groups.length; i++) {
      const g = groups[i];
      const o = ords[i];
      if (g >= 0 && o !== null) this.offer(g, [o, vals[i]]);
    }
  }
  private updateNumeric(groups: Int32Array, args: ArgColumn[]): void {
    const { vals: o, valid } = args[1].numbers();
    const v = args[0];
    const { sign, k } = this.kept;
    const n = this.n;
    // Group g's slots are rows[start[g], start[g] + min(k, its rows)): never more slots than rows.
    const start = new Int32Array(n + 1);
    for (let i = 0; i < groups.length; i++) if (groups[i] >= 0) start[groups[i] + 1]++;
    for (let g = 0; g < n; g++) start[g + 1] = start[g] + Math.min(k, start[g + 1]);
    const rows = new Int32Array(start[n]);
    const counts = new Int32Array(n);
    const before = (i: number, j: number): boolean => {
      const d = (o[i] - o[j]) * sign;
      return d > 0 || (d === 0 && v.compareAt(i, j) < 0);
    };
    for (let i = 0; i < groups.length; i++) {
      const g = groups[i];
      if (g < 0 || (valid && !valid[i])) continue;
      const base = start[g];
      let at = counts[g];
      if (at === k) {
        if (!before(i, rows[base + k - 1])) continue;
        at--;
      } else counts[g]++;
      while (at > 0 && before(i, rows[base + at - 1])) {
        rows[base + at] = rows[base + at - 1];
        at--;
      }
      rows[base + at] = i;
    }
    const packer = v.rowPacker();
    const writer = this.kept.rowsWriter();
    for (let g = 0; g < n; g++) {
      const base = start[g];
      const c = counts[g];
      if (c === 0) continue;
      let bytes = 0;
      for (let r = 0; packer !== null && r < c && bytes >= 0; r++) {
        const size = packer.size(rows[base + r]);
        bytes = size < 0 ? -1 : bytes + size;
      }
      // A null struct (never one built by struct()) has no packed row: such a group keeps pairs.
      if (packer === null || bytes < 0) {
        for (let r = 0; r < c; r++) this.offer(g, [o[rows[base + r]], v.keptAt(rows[base + r])]);
        continue;
      }
      writer.begin(c, bytes);
      for (let r = 0; r < c; r++) writer.addPacked(o[rows[base + r]], packer, rows[base + r]);
      const block = writer.end();
      const prev = this.ranked[g];
      this.ranked[g] = prev === undefined ? block : this.kept.merger.merge(prev, block);
    }
  }
  private offer(g: number, x: Ranked): void {
    this.best ??= new Array(this.n);
    const list = this.best[g];
    if (list === undefined) this.best[g] = [x];
    else insertRanked(list, x, this.kept.k, this.kept.sign, this.kept.cmp());
  }
  buffer(g: number): unknown {
    const list = this.best?.[g];
    const ranked = this.ranked[g];
    const pairs = list === undefined ? undefined : this.kept.single ? list[0] : list;
    if (ranked === undefined) return pairs ?? (this.kept.single ? null : []);
    return pairs === undefined ? ranked : this.kept.merge(pairs, ranked);
  }
}

/** max_by/min_by take any value (a struct keeps a whole row); the order must be a scalar. */
function byResultType(name: string, t: DataType[]): DataType {
  needScalar(name, t[1]);
  return valueType(t[0]);
}

/**
 * max_by/min_by: with `k` the values of the k best rows (a list, best first), without it the best row's value.
 * What a group keeps and how it merges: {@link KeptRows}. A struct value of scalar fields is kept packed,
 * which the output gathers into Arrow columns (packed-rows.ts resultData).
 */
const byFn = (name: 'max_by' | 'min_by', k: number | undefined): AggregateFunction => {
  const sign = name === 'max_by' ? 1 : -1;
  // Bound with the result type: values of a struct compare as rows, packed or not (a binary value is bytes).
  let cmp: CompareValues = compareScalars;
  const resultType = (t: DataType[]): DataType => {
    const type = byResultType(name, t);
    cmp = type.typeId === Type.Struct ? compareRows : compareScalars;
    return type;
  };
  const kept = new KeptRows(sign, k ?? 1, k === undefined, () => cmp);
  return {
    name,
    outputName: (a) => (k === undefined ? `${name}(${a[0]}, ${a[1]})` : `${name}(${a[0]}, ${a[1]}, ${k})`),
    resultType: k === undefined ? resultType : (t) => new List(new Field('item', resultType(t), true)),
    newPartial: (n) => new ByPartial(n, kept),
    merge: (a, b) => kept.merge(a, b),
    result: (b) => kept.result(b),
  };
};

// ------------------------------------------------------------------------------- top_k, count_by

class CountsPartial extends CollectionPartial<Map<unknown, number>> {
  update(groups: Int32Array, args: ArgColumn[]): void {
    const interned = args[0].interned();
    if (interned && this.items.length * interned.strings.length <= DENSE_CELLS_PER_ROW * groups.length) {
      this.updateDense(groups, interned);
      return;
    }
    const vals = args[0].values();
    for (let i = 0; i < groups.length; i++) {
      const g = groups[i];
      const v = vals[i];
      if (g < 0 || v === null) continue;
      addCount(mapAt(this.items, g), v, 1);
    }
  }

  /** Counts in a groups × distinct values array, then into the groups' maps (values in first-seen order). */
  private updateDense(groups: Int32Array, { ids, strings }: Interned): void {
    const d = strings.length;
    const counts = new Int32Array(this.items.length * d);
    for (let i = 0; i < groups.length; i++) {
      const g = groups[i];
      const id = ids[i];
      if (g >= 0 && id >= 0) counts[g * d + id]++;
    }
    for (let g = 0; g < this.items.length; g++) {
      const base = g * d;
      for (let id = 0; id < d; id++) {
        const c = counts[base + id];
        if (c !== 0) addCount(mapAt(this.items, g), strings[id], c);
      }
    }
  }
  override buffer(g: number): unknown {
    return this.items[g] ?? new Map();
  }
}

function addCount(m: Map<unknown, number>, v: unknown, c: number): void {
  m.set(v, (m.get(v) ?? 0) + c);
}

function addCounts(a: unknown, b: unknown): unknown {
  const m = a as Map<unknown, number>;
  (b as Map<unknown, number>).forEach((c, v) => {
    addCount(m, v, c);
  });
  return m;
}

const topKFn = (k: number): AggregateFunction => ({
  name: 'top_k',
  outputName: (a) => `top_k(${a[0]}, ${k})`,
  resultType: (t) => {
    needScalar('top_k', t[0]);
    return new List(
      new Field(
        'item',
        new Struct([new Field('value', valueType(t[0]), true), new Field('count', new Int64(), false)]),
        true,
      ),
    );
  },
  newPartial: (n) => new CountsPartial(n),
  merge: addCounts,
  // Most frequent first; equal counts by value, so the cut at k never depends on arrival order.
  result: (b) =>
    [...(b as Map<unknown, number>)]
      .sort((x, y) => y[1] - x[1] || compareScalars(x[0], y[0]))
      .slice(0, k)
      .map(([value, count]) => ({ value, count })),
});

const countByFn: AggregateFunction = {
  name: 'count_by',
  outputName: (a) => `count_by(${a[0]})`,
  resultType: (t) => {
    needScalar('count_by', t[0]);
    const entries = new Struct([new Field('key', valueType(t[0]), false), new Field('value', new Int64(), true)]);
    return new Map_(new Field('entries', entries, false), false);
  },
  newPartial: (n) => new CountsPartial(n),
  merge: addCounts,
  result: (b) => [...(b as Map<unknown, number>)].sort((x, y) => compareScalars(x[0], y[0])),
};

/** Number of argument columns each function takes (after the optional order column is counted). */
const ARITY: Record<AggregateName, [number, number]> = {
  count: [0, 1],
  count_if: [1, 1],
  sum: [1, 1],
  avg: [1, 1],
  min: [1, 1],
  max: [1, 1],
  first: [1, 1],
  last: [1, 1],
  collect_list: [1, 2],
  collect_set: [1, 2],
  count_distinct: [1, 1],
  approx_count_distinct: [1, 1],
  max_by: [2, 2],
  min_by: [2, 2],
  top_k: [1, 1],
  count_by: [1, 1],
};

/** The implementation of an aggregate with `numArgs` argument columns and its options. */
export function aggregateFunction(
  name: AggregateName,
  numArgs: number,
  opts: AggregateOptions = {},
): AggregateFunction {
  const [lo, hi] = ARITY[name];
  if (numArgs < lo || numArgs > hi)
    throw new SluiceError(
      'BAD_EXPRESSION',
      `${name} takes ${lo === hi ? lo : `${lo} to ${hi}`} columns, got ${numArgs}`,
      `see the TSDoc of ${name}() in lib/api/functions.ts`,
    );
  switch (name) {
    case 'count':
      return countFn(numArgs === 0);
    case 'count_if':
      return countIfFn;
    case 'sum':
      return sumFn;
    case 'avg':
      return avgFn;
    case 'min':
    case 'max':
      return extremeFn(name);
    case 'first':
    case 'last':
      return edgeFn(name, opts.ignoreNulls ?? false);
    case 'collect_list':
      return collectListFn(numArgs === 2);
    case 'collect_set':
      return collectSetFn(numArgs === 2);
    case 'count_distinct':
      return countDistinctFn;
    case 'approx_count_distinct':
      return approxCountDistinctFn(opts.rsd ?? 0.05);
    case 'max_by':
    case 'min_by':
      return byFn(name, opts.k);
    case 'top_k':
      return topKFn(opts.k ?? 10);
    case 'count_by':
      return countByFn;
  }
}
