/**
 * Grouping keys of an aggregation's input: the evaluated key, time and argument columns of each batch, and
 * the local ids that one partition's batch gives its distinct keys, so the fold loops index arrays instead
 * of hashing a key per row and aggregate.
 */
import type { Data, RecordBatch } from 'apache-arrow';
import { encodeKeyString } from '../../state/value-codec.js';
import { grown } from '../../util/grown.js';
import type { ArgColumn } from '../aggregates/aggregate-functions.js';
import type { Numbers, Utf8Interner } from '../aggregates/column-values.js';

/**
 * One key component's values in a batch: JS values, or a numeric column as its typed numbers (what
 * `scalarsOf` would give, without a JS value per row: the number, or null where `valid` is 0).
 */
export type KeyComponent = unknown[] | Numbers;

/** Row i's value of a key component. */
function componentAt(c: KeyComponent, i: number): unknown {
  if (Array.isArray(c)) return c[i];
  return c.valid && !c.valid[i] ? null : c.vals[i];
}

/** Evaluated grouping inputs of one batch. */
export interface BatchKeys {
  batch: RecordBatch;
  /** Key component values per component (window excluded), one entry per row; unset when keyIds is. */
  components?: KeyComponent[];
  /** The one key column when the grouping is one plain key (window aside), for LocalKeys to intern. */
  keyData?: Data;
  /** Per row, the interned id of a utf8 key (see LocalKeys). */
  keyIds?: Int32Array;
  /** Per row, the local id of its key (LocalKeys fills it from `components`). */
  localIds?: Int32Array;
  /** Event times (ms) and their validity, when there is a window. */
  times?: { vals: ArrayLike<number>; valid: Uint8Array | null };
  /** Per-row session gaps in ms (NaN where invalid), when the gap is a column. */
  gaps?: Float64Array;
  args: ArgColumn[][];
}

/** A group key as stored: one component as itself, several (or none) as an array. */
export function makeKey(components: unknown[]): unknown {
  return components.length === 1 ? components[0] : components;
}

/** The components of a stored key (the inverse of {@link makeKey}). */
export function splitKey(key: unknown, numComponents: number): unknown[] {
  return numComponents === 1 ? [key] : (key as unknown[]);
}

/** The distinct grouping keys (window aside) of a partition's rows in one batch, as local ids in order of first appearance. */
export class LocalKeys {
  /** Key components per local id. */
  readonly components: unknown[][] = [];
  private byInterned = new Int32Array(0);
  private nullKid = -1;
  /** Per component, the number of each distinct value (see {@link ValueIds}). */
  private readonly valueIds: ValueIds[];
  /** Per component after the first, (ids of the components before, id of this one) → id; the last gives the local id. */
  private readonly prefixes: PairIds[];

  /** `interner`: set when every batch's key is one utf8 column, whose rows then carry `keyIds`. */
  constructor(
    numComponents: number,
    readonly interner: Utf8Interner | null,
  ) {
    this.valueIds = Array.from({ length: numComponents }, () => new ValueIds());
    this.prefixes = Array.from({ length: Math.max(0, numComponents - 1) }, () => new PairIds());
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
    k.localIds ??= this.idsOf(k.components!, k.batch.numRows);
    return k.localIds[i];
  }

  /**
   * Local ids of rows given as component columns, a column at a time: each component's values numbered, then
   * the numbers of the components combined pairwise in integer hash tables (no string or array per row).
   */
  private idsOf(comps: KeyComponent[], n: number): Int32Array {
    const out = new Int32Array(n);
    if (comps.length === 0) {
      if (n > 0) out.fill(this.components.length > 0 ? 0 : this.add([]));
      return out;
    }
    const ids = this.valueIds[0].of(comps[0], out);
    if (comps.length === 1) {
      // Value ids are given in order of first appearance, as local ids are: they are the same numbers.
      for (let i = 0; i < n; i++) if (ids[i] === this.components.length) this.add([componentAt(comps[0], i)]);
      return ids;
    }
    const next = new Int32Array(n);
    for (let c = 1; c < comps.length; c++) {
      const last = c === comps.length - 1;
      const table = this.prefixes[c - 1];
      const own = this.valueIds[c].of(comps[c], next);
      for (let i = 0; i < n; i++) {
        let id = table.find(out[i], own[i]);
        if (id < 0) {
          id = table.insert(out[i], own[i]);
          if (last) this.add(comps.map((col) => componentAt(col, i)));
        }
        out[i] = id;
      }
    }
    return out;
  }

  private add(components: unknown[]): number {
    this.components.push(components);
    return this.components.length - 1;
  }
}

/**
 * Numbers for the distinct values of one key component, in order of first appearance: strings, numbers,
 * booleans, bigints and null as a JS Map keys them (NaN is one value, -0 is 0); other values (structs,
 * lists) by their canonical state encoding. Numbers, from JS values or a typed column alike, go to one
 * open-addressing table over their float64 values (no Map lookup or boxed number per row).
 */
class ValueIds {
  private readonly plain = new Map<unknown, number>();
  private readonly encoded = new Map<string, number>();
  private count = 0;
  private nullId = -1;
  private nanId = -1;
  /** id + 1 per bucket, 0 = empty; a power of two long, at most half full. */
  private table = new Int32Array(1024);
  /** The number and id of each entry of `table`. */
  private nums: Float64Array = new Float64Array(512);
  private numIds: Int32Array = new Int32Array(512);
  private numCount = 0;

  /** Writes the id of each value into `out`, which it returns. */
  of(values: KeyComponent, out: Int32Array): Int32Array {
    if (!Array.isArray(values)) {
      const { vals, valid } = values;
      for (let i = 0; i < out.length; i++) out[i] = valid && !valid[i] ? this.nullOne() : this.numberId(vals[i]);
      return out;
    }
    const plain = this.plain;
    for (let i = 0; i < values.length; i++) {
      const v = values[i];
      if (typeof v === 'number') {
        out[i] = this.numberId(v);
        continue;
      }
      if (v === null) {
        out[i] = this.nullOne();
        continue;
      }
      const objectLike = typeof v === 'object';
      const key = objectLike ? encodeKeyString(v) : v;
      const map = objectLike ? this.encoded : plain;
      let id = map.get(key as string);
      if (id === undefined) {
        id = this.count++;
        map.set(key as string, id);
      }
      out[i] = id;
    }
    return out;
  }

  private nullOne(): number {
    if (this.nullId < 0) this.nullId = this.count++;
    return this.nullId;
  }

  private numberId(x: number): number {
    if (Number.isNaN(x)) {
      if (this.nanId < 0) this.nanId = this.count++;
      return this.nanId;
    }
    const v = x === 0 ? 0 : x; // -0 is 0, as a Map keys it
    const table = this.table;
    const mask = table.length - 1;
    const nums = this.nums;
    let slot = numberHash(v) & mask;
    for (let e = table[slot]; e !== 0; e = table[slot]) {
      if (nums[e - 1] === v) return this.numIds[e - 1];
      slot = (slot + 1) & mask;
    }
    const id = this.count++;
    const k = this.numCount++;
    if (k === nums.length) {
      this.nums = grown(nums, k * 2);
      this.numIds = grown(this.numIds, k * 2);
    }
    this.nums[k] = v;
    this.numIds[k] = id;
    if (this.numCount * 2 > table.length) this.rehash(table.length * 2);
    else table[slot] = k + 1;
    return id;
  }

  private rehash(size: number): void {
    const table = new Int32Array(size);
    const mask = size - 1;
    for (let k = 0; k < this.numCount; k++) {
      let slot = numberHash(this.nums[k]) & mask;
      while (table[slot] !== 0) slot = (slot + 1) & mask;
      table[slot] = k + 1;
    }
    this.table = table;
  }
}

const f64 = new Float64Array(1);
const f64Words = new Int32Array(f64.buffer);

/** A well-mixed hash of a number: int32 values directly, others by their float64 words. */
function numberHash(v: number): number {
  let h: number;
  if ((v | 0) === v) h = v;
  else {
    f64[0] = v;
    h = f64Words[0] ^ Math.imul(f64Words[1], 0x27d4eb2d);
  }
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  return h ^ (h >>> 13);
}

/** An open-addressing hash table from pairs of non-negative int32 to ids given in order of insertion. */
class PairIds {
  /** id + 1 per bucket, 0 = empty; a power of two long, at most half full. */
  private table = new Int32Array(1024);
  private first: Int32Array = new Int32Array(512);
  private second: Int32Array = new Int32Array(512);
  private count = 0;

  private static hash(a: number, b: number): number {
    return Math.imul(a, 0x9e3779b1) ^ Math.imul(b + 0x7f4a7c15, 0x85ebca77);
  }

  /** The id of (a, b), or -1. */
  find(a: number, b: number): number {
    const table = this.table;
    const mask = table.length - 1;
    for (let slot = PairIds.hash(a, b) & mask; ; slot = (slot + 1) & mask) {
      const e = table[slot];
      if (e === 0) return -1;
      if (this.first[e - 1] === a && this.second[e - 1] === b) return e - 1;
    }
  }

  /** Adds (a, b), which must not be present, and returns its id. */
  insert(a: number, b: number): number {
    const id = this.count++;
    if (id === this.first.length) {
      this.first = grown(this.first, id * 2);
      this.second = grown(this.second, id * 2);
    }
    this.first[id] = a;
    this.second[id] = b;
    if (this.count * 2 > this.table.length) this.rehash(this.table.length * 2);
    else this.place(id);
    return id;
  }

  private place(id: number): void {
    const table = this.table;
    const mask = table.length - 1;
    let slot = PairIds.hash(this.first[id], this.second[id]) & mask;
    while (table[slot] !== 0) slot = (slot + 1) & mask;
    table[slot] = id + 1;
  }

  private rehash(size: number): void {
    this.table = new Int32Array(size);
    for (let id = 0; id < this.count; id++) this.place(id);
  }
}
