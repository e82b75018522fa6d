/**
 * Grouping keys of an aggregation's input: the evaluated key, time and argument columns of each batch, and
 * the local ids that one partition's batch gives its distinct keys, so the fold loops index arrays instead
 * of hashing a key per row and aggregate.
 */
import type { Data, RecordBatch } from 'apache-arrow';
import type { ArgColumn } from '../aggregates/aggregate-functions.js';
import type { Utf8Interner } from '../aggregates/column-values.js';

/** Evaluated grouping inputs of one batch. */
export interface BatchKeys {
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

/** A group key as stored: one component as itself, several (or none) as an array. */
export function makeKey(components: unknown[]): unknown {
  return components.length === 1 ? components[0] : components;
}

/** The components of a stored key (the inverse of {@link makeKey}). */
export function splitKey(key: unknown, numComponents: number): unknown[] {
  return numComponents === 1 ? [key] : (key as unknown[]);
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
export class LocalKeys {
  /** Key components per local id. */
  readonly components: unknown[][] = [];
  private readonly byValue = new Map<unknown, number>();
  private byInterned = new Int32Array(0);
  private nullKid = -1;
  private readonly row: unknown[];

  /** `interner`: set when every batch's key is one utf8 column, whose rows then carry `keyIds`. */
  constructor(
    private readonly numComponents: number,
    readonly interner: Utf8Interner | null,
  ) {
    this.row = new Array<unknown>(numComponents);
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
