import { type Data, makeData, RecordBatch, type Schema, Struct, Type } from 'apache-arrow';
import { carryMadeRows } from './batch-rows.js';
import { dataFromValues, emptyBatch, isValid, mkData, valuesOf } from './columns.js';
import { DeferredVarBytes, gatherVarBytes, varBytesOf } from './deferred-gather.js';

/**
 * Gathers rows `indices` of one column: typed-array copies for flat types, a JS round trip for nested ones.
 * With `deferVarBytes`, a utf8 or binary column's bytes are left where they are until read (see
 * {@link DeferredVarBytes}).
 */
export function takeData(data: Data, indices: ArrayLike<number>, deferVarBytes = false): Data {
  const n = indices.length;
  const type = data.type;
  let bitmap: Uint8Array | undefined;
  let nullCount = 0;
  if (data.nullCount > 0 && data.nullBitmap && data.nullBitmap.length > 0) {
    bitmap = new Uint8Array((n + 7) >> 3);
    for (let i = 0; i < n; i++) {
      if (isValid(data, indices[i])) bitmap[i >> 3] |= 1 << (i & 7);
      else nullCount++;
    }
    if (nullCount === 0) bitmap = undefined;
  }
  switch (type.typeId) {
    case Type.Float:
    case Type.Int:
    case Type.Timestamp: {
      const src = data.values as Float64Array | BigInt64Array | Int32Array;
      const Ctor = src.constructor as new (n: number) => typeof src;
      const out = new Ctor(n);
      for (let i = 0; i < n; i++) out[i] = src[indices[i]];
      return mkData({ type, length: n, nullCount, nullBitmap: bitmap, data: out });
    }
    case Type.Utf8:
    case Type.Binary: {
      const from = varBytesOf(data);
      const rows = from.rows;
      const ids = rows === null ? indices : Int32Array.from(indices, (i) => rows[i]);
      if (deferVarBytes) {
        const source = data instanceof DeferredVarBytes ? data.source : data;
        return new DeferredVarBytes(source, ids instanceof Int32Array ? ids : Int32Array.from(ids), nullCount, bitmap);
      }
      const { offsets, bytes } = gatherVarBytes(from.bytes, from.offsets, ids);
      return mkData({ type, length: n, nullCount, nullBitmap: bitmap, valueOffsets: offsets, data: bytes });
    }
    case Type.Dictionary: {
      const src = data.values as Int32Array;
      const Ctor = src.constructor as new (n: number) => typeof src;
      const out = new Ctor(n);
      for (let i = 0; i < n; i++) out[i] = src[indices[i]];
      return mkData({ type, length: n, nullCount, nullBitmap: bitmap, data: out, dictionary: data.dictionary });
    }
    case Type.Struct: {
      const children = data.children.map((c) => takeData(c, indices));
      return mkData({ type, length: n, nullCount, nullBitmap: bitmap, children });
    }
    default: {
      const vals = valuesOf(data);
      const picked = new Array(n);
      for (let i = 0; i < n; i++) picked[i] = vals[indices[i]];
      return dataFromValues(type, picked);
    }
  }
}

/** Gathers rows `indices` of one column where a negative index stands for a null (the missing side of an outer join). */
export function takeDataOrNull(data: Data, indices: Int32Array): Data {
  const n = indices.length;
  let missing = 0;
  for (let i = 0; i < n; i++) if (indices[i] < 0) missing++;
  if (missing === 0) return takeData(data, indices);
  if (data.length === 0) return dataFromValues(data.type, new Array(n).fill(null));
  const d = takeData(
    data,
    indices.map((i) => Math.max(i, 0)),
  );
  const bitmap = new Uint8Array((n + 7) >> 3);
  let nullCount = 0;
  for (let i = 0; i < n; i++) {
    if (indices[i] >= 0 && isValid(d, i)) bitmap[i >> 3] |= 1 << (i & 7);
    else nullCount++;
  }
  return d.clone(d.type, 0, n, nullCount, [d.valueOffsets, d.values, bitmap, d.typeIds] as never, d.children);
}

/**
 * A batch holding rows `indices` of `batch`, in that order (with their row objects, when some were kept);
 * `deferVarBytes` as {@link takeData}'s.
 */
export function takeRows(batch: RecordBatch, indices: ArrayLike<number>, deferVarBytes = false): RecordBatch {
  const children = batch.data.children.map((c) => takeData(c, indices, deferVarBytes));
  const out = new RecordBatch(
    batch.schema,
    makeData({ type: new Struct(batch.schema.fields), length: indices.length, nullCount: 0, children }),
  );
  carryMadeRows(batch, out, indices);
  return out;
}

/** A batch of the given columns (already of equal length) under `schema`. */
export function batchOf(schema: Schema, children: Data[], length: number): RecordBatch {
  return new RecordBatch(schema, makeData({ type: new Struct(schema.fields), length, nullCount: 0, children }));
}

/** Total rows over batches. */
export function countRows(batches: readonly RecordBatch[]): number {
  let n = 0;
  for (const b of batches) n += b.numRows;
  return n;
}

/** Drops empty batches; keeps one empty batch of `schema` when all are empty so the schema survives. */
export function compactBatches(schema: Schema, batches: readonly RecordBatch[]): RecordBatch[] {
  const out = batches.filter((b) => b.numRows > 0);
  return out.length > 0 ? out : [emptyBatch(schema)];
}
