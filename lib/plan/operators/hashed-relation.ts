import { type Data, type RecordBatch, Table, Type, tableFromIPC, tableToIPC } from 'apache-arrow';
import { emptyBatch, int64ToNumbers, takeData, utf8Data, valuesOf } from '../../arrow/index.js';
import { hashNumber, murmur3Bytes } from '../../state/state-partitioner.js';

/**
 * One join key column as the hash table reads it: numbers (ints, longs, doubles, timestamps, booleans as 0/1)
 * or utf8 bytes, with a validity mask (null keys match nothing).
 */
export type KeyVector =
  | { kind: 'number'; values: ArrayLike<number>; valid: Uint8Array | null }
  | { kind: 'utf8'; offsets: Int32Array; bytes: Uint8Array; valid: Uint8Array | null };

function validMask(d: Data): Uint8Array | null {
  if (d.nullCount === 0) return null;
  const out = new Uint8Array(d.length);
  for (let i = 0; i < d.length; i++) out[i] = d.getValid(i) ? 1 : 0;
  return out;
}

/** The key vector of a column, without copying its values where their layout allows. */
export function keyVector(d: Data): KeyVector {
  const valid = validMask(d);
  switch (d.type.typeId) {
    case Type.Utf8:
      return { kind: 'utf8', offsets: d.valueOffsets as Int32Array, bytes: d.values as Uint8Array, valid };
    case Type.Dictionary:
      return keyVector(takeData(d.dictionary!.data[0], d.values as Int32Array));
    case Type.LargeUtf8:
      return keyVector(utf8Data(valuesOf(d)));
    case Type.Bool: {
      const bits = d.values as Uint8Array;
      const values = new Uint8Array(d.length);
      for (let i = 0; i < d.length; i++) values[i] = (bits[(d.offset + i) >> 3] >> ((d.offset + i) & 7)) & 1;
      return { kind: 'number', values, valid };
    }
    default: {
      const raw = d.values as ArrayLike<number> | BigInt64Array;
      const values = raw instanceof BigInt64Array ? int64ToNumbers(raw, 1, d.length) : raw;
      return { kind: 'number', values, valid };
    }
  }
}

const MIX = 0x9e3779b1;

/** Hash of each row's key over all key vectors, and whether the row's key has a null (it then matches nothing). */
function hashRows(keys: readonly KeyVector[], n: number): { hashes: Int32Array; nullKey: Uint8Array } {
  const hashes = new Int32Array(n);
  const nullKey = new Uint8Array(n);
  for (const k of keys) {
    if (k.valid) for (let i = 0; i < n; i++) nullKey[i] |= k.valid[i] ^ 1;
    if (k.kind === 'number') {
      const v = k.values;
      for (let i = 0; i < n; i++) hashes[i] = Math.imul(hashes[i] ^ hashNumber(v[i] === 0 ? 0 : v[i]), MIX);
    } else {
      const { offsets, bytes } = k;
      for (let i = 0; i < n; i++)
        hashes[i] = Math.imul(hashes[i] ^ murmur3Bytes(bytes, offsets[i], offsets[i + 1]), MIX);
    }
  }
  return { hashes, nullKey };
}

function sameKey(a: readonly KeyVector[], i: number, b: readonly KeyVector[], j: number): boolean {
  for (let k = 0; k < a.length; k++) {
    const x = a[k];
    const y = b[k];
    if (x.kind === 'number') {
      const u = x.values[i];
      const v = (y as typeof x).values[j];
      if (u !== v && !(Number.isNaN(u) && Number.isNaN(v))) return false;
    } else {
      const yo = (y as typeof x).offsets;
      const yb = (y as typeof x).bytes;
      const len = x.offsets[i + 1] - x.offsets[i];
      if (yo[j + 1] - yo[j] !== len) return false;
      const xs = x.offsets[i];
      const ys = yo[j];
      for (let p = 0; p < len; p++) if (x.bytes[xs + p] !== yb[ys + p]) return false;
    }
  }
  return true;
}

/** Candidate pairs of a probe: left row `left[i]` matches right row `right[i]`, in left row order. */
export interface JoinPairs {
  left: Int32Array;
  right: Int32Array;
  length: number;
}

/** The parts of a HashedRelation as buffers shared between threads (SharedArrayBuffers: no copy per thread). */
export interface SharedHashedRelation {
  rows: Uint8Array;
  keys: SharedKeyVector[];
  hashes: Int32Array;
  heads: Int32Array;
  next: Int32Array;
}

type SharedKeyVector =
  | { kind: 'number'; values: Float64Array; valid: Uint8Array | null }
  | { kind: 'utf8'; offsets: Int32Array; bytes: Uint8Array; valid: Uint8Array | null };

function shared<T extends Int32Array | Float64Array | Uint8Array>(
  a: ArrayLike<number>,
  Ctor: new (b: SharedArrayBuffer) => T,
  bytesPer: number,
): T {
  const out = new Ctor(new SharedArrayBuffer(a.length * bytesPer));
  (out as unknown as { set(a: ArrayLike<number>): void }).set(a);
  return out;
}

/**
 * The static side of a join as a hash table over its Arrow columns (Spark's HashedRelation): rows with equal
 * keys chain from one bucket in row order, so a probe lists a key's matches in the order the relation has them.
 * Built once per query by the driver; worker threads get it once, as shared buffers.
 */
export class HashedRelation {
  private readonly mask: number;

  private constructor(
    readonly rows: RecordBatch,
    private readonly keys: readonly KeyVector[],
    private readonly hashes: Int32Array,
    private readonly heads: Int32Array,
    private readonly next: Int32Array,
  ) {
    this.mask = heads.length - 1;
  }

  /** A hash table over `rows` keyed by `keyColumns` (one Data per key, of rows.numRows values). */
  static build(rows: RecordBatch, keyColumns: readonly Data[]): HashedRelation {
    const n = rows.numRows;
    const keys = keyColumns.map(keyVector);
    const { hashes, nullKey } = hashRows(keys, n);
    let capacity = 16;
    while (capacity < n * 2) capacity *= 2;
    const heads = new Int32Array(capacity).fill(-1);
    const next = new Int32Array(n).fill(-1);
    // Inserted last row first, so each chain runs in row order.
    for (let r = n - 1; r >= 0; r--) {
      if (nullKey[r]) continue;
      const b = hashes[r] & (capacity - 1);
      next[r] = heads[b];
      heads[b] = r;
    }
    return new HashedRelation(rows, keys, hashes, heads, next);
  }

  /** The same relation, with its rows as Arrow IPC bytes and its table and keys in shared memory. */
  toShared(): SharedHashedRelation {
    const ipc = tableToIPC(new Table([this.rows]), 'stream');
    const rows = new Uint8Array(new SharedArrayBuffer(ipc.length));
    rows.set(ipc);
    const keys = this.keys.map((k): SharedKeyVector => {
      const valid = k.valid && shared(k.valid, Uint8Array, 1);
      if (k.kind === 'number') return { kind: 'number', values: shared(k.values, Float64Array, 8), valid };
      const base = k.offsets[0];
      const offsets = shared(
        Array.from(k.offsets, (o) => o - base),
        Int32Array,
        4,
      );
      return {
        kind: 'utf8',
        offsets,
        bytes: shared(k.bytes.subarray(base, k.offsets[k.offsets.length - 1]), Uint8Array, 1),
        valid,
      };
    });
    return {
      rows,
      keys,
      hashes: shared(this.hashes, Int32Array, 4),
      heads: shared(this.heads, Int32Array, 4),
      next: shared(this.next, Int32Array, 4),
    };
  }

  /** The relation a thread received from {@link toShared}, reading the shared buffers in place. */
  static fromShared(s: SharedHashedRelation): HashedRelation {
    const t = tableFromIPC(s.rows);
    const rows = t.batches[0] ?? emptyBatch(t.schema);
    return new HashedRelation(rows, s.keys, s.hashes, s.heads, s.next);
  }

  get schema() {
    return this.rows.schema;
  }

  /** Pairs of `n` probe rows (keyed by `probeKeys`) and the relation's rows with an equal key. */
  probe(probeKeys: readonly KeyVector[], n: number): JoinPairs {
    const { hashes, nullKey } = hashRows(probeKeys, n);
    let left = new Int32Array(Math.max(16, n));
    let right = new Int32Array(left.length);
    let length = 0;
    const mask = this.mask;
    for (let i = 0; i < n; i++) {
      if (nullKey[i]) continue;
      const h = hashes[i];
      for (let r = this.heads[h & mask]; r >= 0; r = this.next[r]) {
        if (this.hashes[r] !== h || !sameKey(probeKeys, i, this.keys, r)) continue;
        if (length === left.length) {
          const l2 = new Int32Array(length * 2);
          l2.set(left);
          left = l2;
          const r2 = new Int32Array(length * 2);
          r2.set(right);
          right = r2;
        }
        left[length] = i;
        right[length++] = r;
      }
    }
    return { left, right, length };
  }
}
