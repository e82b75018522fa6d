/**
 * Struct rows packed into bytes, as Spark's UnsafeRow: the rows that max_by and its top-k form keep of a
 * wide struct (a whole bid, say) are copied byte for byte out of the batch's Arrow columns, kept in state as
 * one byte array each, and gathered back into Arrow columns on output, so a kept row is never turned into JS
 * strings and numbers to be encoded again (twice: into state and into the output).
 *
 * A packed row is self-describing: per field of the struct, in order, one tag byte and its payload (numbers
 * as int32 or float64, timestamps and dates as epoch ms, strings as their utf8 bytes after a length).
 * {@link unpackRow} reads it back as the tuple that rows of structs the packer does not take are kept as,
 * which is how rows compare (field by field) when their orders tie, and how output mixes packed rows with
 * tuples restored from older state.
 */
import { type Data, type DataType, type List, type Struct, Type } from 'apache-arrow';
import { dataFromValues, isValid, mkData, textBuffer } from '../../arrow/columns.js';
import { varBytesOf } from '../../arrow/deferred-gather.js';
import { isNumericType, type Numbers, numbersOf } from './column-values.js';

const P_NULL = 0;
const P_FLOAT64 = 1;
const P_INT32 = 2;
const P_FALSE = 3;
const P_TRUE = 4;
/** utf8 of fewer than 256 bytes: one length byte. */
const P_SHORT_UTF8 = 5;
/** utf8 of any length: a 4-byte length. */
const P_UTF8 = 6;

/**
 * Rows are written into chunks of this many bytes, each row a view of its chunk: one allocation per chunk
 * rather than one ArrayBuffer per row (several times dearer than the copy). A chunk lives while any of its
 * rows is kept, so chunks stay small.
 */
export const CHUNK_BYTES = 1 << 16;

function packsField(t: DataType): boolean {
  return t.typeId === Type.Utf8 || t.typeId === Type.Bool || isNumericType(t);
}

/** Whether rows of `type` are packed: a struct whose fields are all strings, numbers, timestamps, dates or booleans. */
export function packsRows(type: DataType): boolean {
  return type.typeId === Type.Struct && type.children.length > 0 && type.children.every((f) => packsField(f.type));
}

/** One field's column, read the way the packer writes it. */
interface FieldReader {
  data: Data;
  kind: 'utf8' | 'number' | 'bool';
  offsets?: Int32Array;
  bytes?: Uint8Array;
  /** The row of `offsets` each row is, when the column's bytes were left in its source (see varBytesOf). */
  rows?: Int32Array | null;
  numbers?: Numbers;
}

/** Packs rows of one struct column (see {@link packsRows}) on demand. */
export class RowPacker {
  private readonly fields: FieldReader[];
  private chunk = new Uint8Array(0);
  private pos = 0;

  constructor(private readonly data: Data) {
    this.fields = data.children.map((c): FieldReader => {
      if (c.type.typeId === Type.Utf8) {
        const { offsets, bytes, rows } = varBytesOf(c);
        return { data: c, kind: 'utf8', offsets, bytes, rows };
      }
      if (c.type.typeId === Type.Bool) return { data: c, kind: 'bool' };
      return { data: c, kind: 'number', numbers: numbersOf(c) };
    });
  }

  /** Row i as a packed row, or null when the struct itself is null there. */
  pack(i: number): Uint8Array | null {
    const size = this.size(i);
    if (size < 0) return null;
    if (this.pos + size > this.chunk.length) {
      this.chunk = new Uint8Array(Math.max(CHUNK_BYTES, size));
      this.pos = 0;
    }
    const start = this.pos;
    this.pos = this.write(i, this.chunk, start);
    return this.chunk.subarray(start, this.pos);
  }

  /** At most the bytes of row i packed (numbers counted as float64s), or -1 when the struct itself is null there. */
  size(i: number): number {
    if (!isValid(this.data, i)) return -1;
    const fields = this.fields;
    let size = 0;
    for (let f = 0; f < fields.length; f++) {
      const r = fields[f];
      if (r.kind === 'utf8') {
        const j = r.rows ? r.rows[i] : i;
        const len = isValid(r.data, i) ? r.offsets![j + 1] - r.offsets![j] : -1;
        size += len < 0 ? 1 : len < 256 ? 2 + len : 5 + len;
      } else size += r.kind === 'bool' ? 1 : 9;
    }
    return size;
  }

  /** Packs row i (not null, see {@link size}) into `out` at `p`, which has room for it; returns where it ends. */
  write(i: number, out: Uint8Array, p: number): number {
    const fields = this.fields;
    for (let f = 0; f < fields.length; f++) {
      const r = fields[f];
      if (r.kind === 'utf8') {
        if (!isValid(r.data, i)) {
          out[p++] = P_NULL;
          continue;
        }
        const j = r.rows ? r.rows[i] : i;
        const from = r.offsets![j];
        const len = r.offsets![j + 1] - from;
        if (len < 256) {
          out[p] = P_SHORT_UTF8;
          out[p + 1] = len;
          p += 2;
        } else {
          out[p] = P_UTF8;
          putUint32(out, p + 1, len);
          p += 5;
        }
        copyBytes(r.bytes!, from, len, out, p);
        p += len;
      } else if (r.kind === 'bool') {
        out[p++] = isValid(r.data, i) ? (boolAt(r.data, i) ? P_TRUE : P_FALSE) : P_NULL;
      } else {
        const { vals, valid } = r.numbers!;
        if (valid && !valid[i]) {
          out[p++] = P_NULL;
          continue;
        }
        const v = vals[i];
        if ((v | 0) === v && !Object.is(v, -0)) {
          out[p] = P_INT32;
          scratchInt[0] = v;
          for (let k = 0; k < 4; k++) out[p + 1 + k] = scratch[k];
          p += 5;
        } else {
          out[p] = P_FLOAT64;
          scratchFloat[0] = v;
          for (let k = 0; k < 8; k++) out[p + 1 + k] = scratch[k];
          p += 9;
        }
      }
    }
    return p;
  }
}

/**
 * Copies `len` bytes: short strings byte by byte, since a subarray per string (what `set` needs) costs more
 * than the copy.
 */
export function copyBytes(from: Uint8Array, start: number, len: number, to: Uint8Array, at: number): void {
  if (len > 32) to.set(from.subarray(start, start + len), at);
  else for (let k = 0; k < len; k++) to[at + k] = from[start + k];
}

/**
 * Numbers go in and out of packed rows through one scratch word rather than a DataView per row, so they are in
 * the machine's byte order (little-endian wherever Node runs sluice, as its Arrow buffers).
 */
const scratch = new Uint8Array(8);
const scratchFloat = new Float64Array(scratch.buffer);
const scratchInt = new Int32Array(scratch.buffer);

function int32At(row: Uint8Array, p: number): number {
  for (let k = 0; k < 4; k++) scratch[k] = row[p + k];
  return scratchInt[0];
}

/** The float64 at byte `p` of `row`. */
export function float64At(row: Uint8Array, p: number): number {
  for (let k = 0; k < 8; k++) scratch[k] = row[p + k];
  return scratchFloat[0];
}

/** Writes `v` as a float64 at byte `p` of `row`. */
export function putFloat64(row: Uint8Array, p: number, v: number): void {
  scratchFloat[0] = v;
  for (let k = 0; k < 8; k++) row[p + k] = scratch[k];
}

/** Writes `v` (below 2^32) as a little-endian uint32 at byte `p` of `row`. */
export function putUint32(row: Uint8Array, p: number, v: number): void {
  row[p] = v & 0xff;
  row[p + 1] = (v >>> 8) & 0xff;
  row[p + 2] = (v >>> 16) & 0xff;
  row[p + 3] = v >>> 24;
}

/** The little-endian uint32 at byte `p` of `row`. */
export function uint32At(row: Uint8Array, p: number): number {
  return (row[p] | (row[p + 1] << 8) | (row[p + 2] << 16) | (row[p + 3] << 24)) >>> 0;
}

function boolAt(data: Data, i: number): boolean {
  const j = data.offset + i;
  return ((data.values as Uint8Array)[j >> 3] & (1 << (j & 7))) !== 0;
}

/** A packed row as the tuple of its fields' values: numbers (timestamps as epoch ms), strings, booleans, null. */
export function unpackRow(row: Uint8Array): unknown[] {
  const text = textBuffer(row);
  const out: unknown[] = [];
  let p = 0;
  while (p < row.length) {
    switch (row[p]) {
      case P_NULL:
        out.push(null);
        p++;
        break;
      case P_FALSE:
      case P_TRUE:
        out.push(row[p] === P_TRUE);
        p++;
        break;
      case P_INT32:
        out.push(int32At(row, p + 1));
        p += 5;
        break;
      case P_FLOAT64:
        out.push(float64At(row, p + 1));
        p += 9;
        break;
      default: {
        const short = row[p] === P_SHORT_UTF8;
        const len = short ? row[p + 1] : uint32At(row, p + 1);
        p += short ? 2 : 5;
        out.push(text.utf8Slice(p, p + len));
        p += len;
      }
    }
  }
  return out;
}

/** Whether the output gathers a field of this type from packed rows directly (others go through tuples). */
function gathersField(t: DataType): boolean {
  switch (t.typeId) {
    case Type.Utf8:
    case Type.Bool:
      return true;
    case Type.Float:
      return (t as unknown as { precision: number }).precision === 2;
    case Type.Int: {
      const w = (t as unknown as { bitWidth: number; isSigned: boolean }).bitWidth;
      return (w === 32 || w === 64) && (t as unknown as { isSigned: boolean }).isSigned;
    }
    case Type.Timestamp:
      return (t as unknown as { unit: number }).unit === 1;
    default:
      return false;
  }
}

/** The output of one field of the packed rows. */
interface FieldColumn {
  type: DataType;
  valid: Uint8Array;
  nulls: number;
  /** Numbers and booleans. */
  nums?: Float64Array;
  /** utf8: offsets and bytes. */
  offsets?: Int32Array;
  bytes?: Uint8Array;
}

/**
 * An Arrow struct column of `type` from packed rows, gathering each field's bytes and numbers straight from
 * them. Rows that are tuples or objects (state written before rows were packed) and types the gather does not
 * write go through {@link dataFromValues}.
 */
function structData(type: Struct, rows: ArrayLike<unknown>): Data {
  const n = rows.length;
  const fields = type.children;
  let gather = fields.every((f) => gathersField(f.type));
  for (let i = 0; gather && i < n; i++) if (rows[i] !== null && !(rows[i] instanceof Uint8Array)) gather = false;
  if (!gather) {
    const tuples = new Array<unknown>(n);
    for (let i = 0; i < n; i++) tuples[i] = rows[i] instanceof Uint8Array ? unpackRow(rows[i] as Uint8Array) : rows[i];
    return dataFromValues(type, tuples);
  }
  const cols: FieldColumn[] = fields.map((f) => ({ type: f.type, valid: new Uint8Array((n + 7) >> 3), nulls: 0 }));
  // First pass: each utf8 field's byte total, so that its buffer is allocated once.
  const utf8Bytes = new Array<number>(fields.length).fill(0);
  for (let i = 0; i < n; i++) {
    const row = rows[i] as Uint8Array | null;
    if (row === null) continue;
    let p = 0;
    for (let f = 0; f < fields.length; f++) {
      const tag = row[p];
      if (tag === P_SHORT_UTF8) {
        utf8Bytes[f] += row[p + 1];
        p += 2 + row[p + 1];
      } else if (tag === P_UTF8) {
        const len = uint32At(row, p + 1);
        utf8Bytes[f] += len;
        p += 5 + len;
      } else p += tag === P_INT32 ? 5 : tag === P_FLOAT64 ? 9 : 1;
    }
  }
  cols.forEach((c, f) => {
    if (c.type.typeId === Type.Utf8) {
      c.offsets = new Int32Array(n + 1);
      c.bytes = new Uint8Array(utf8Bytes[f]);
    } else c.nums = new Float64Array(n);
  });
  const structValid = new Uint8Array((n + 7) >> 3);
  let structNulls = 0;
  const pos = new Int32Array(fields.length);
  for (let i = 0; i < n; i++) {
    const row = rows[i] as Uint8Array | null;
    const bit = 1 << (i & 7);
    if (row === null) {
      structNulls++;
      for (let f = 0; f < cols.length; f++) {
        const c = cols[f];
        c.nulls++;
        if (c.offsets) c.offsets[i + 1] = pos[f];
      }
      continue;
    }
    structValid[i >> 3] |= bit;
    let p = 0;
    for (let f = 0; f < cols.length; f++) {
      const c = cols[f];
      const tag = row[p];
      if (tag === P_NULL) {
        c.nulls++;
        p++;
      } else {
        c.valid[i >> 3] |= bit;
        if (tag === P_SHORT_UTF8 || tag === P_UTF8) {
          const short = tag === P_SHORT_UTF8;
          const len = short ? row[p + 1] : uint32At(row, p + 1);
          p += short ? 2 : 5;
          copyBytes(row, p, len, c.bytes!, pos[f]);
          pos[f] += len;
          p += len;
        } else if (tag === P_INT32) {
          c.nums![i] = int32At(row, p + 1);
          p += 5;
        } else if (tag === P_FLOAT64) {
          c.nums![i] = float64At(row, p + 1);
          p += 9;
        } else {
          c.nums![i] = tag === P_TRUE ? 1 : 0;
          p++;
        }
      }
      if (c.offsets) c.offsets[i + 1] = pos[f];
    }
  }
  const children = cols.map((c) => fieldData(c, n));
  return mkData({
    type,
    length: n,
    nullCount: structNulls,
    nullBitmap: structNulls > 0 ? structValid : undefined,
    children,
  });
}

function fieldData(c: FieldColumn, n: number): Data {
  const t = c.type;
  const validity = { nullCount: c.nulls, nullBitmap: c.nulls > 0 ? c.valid : undefined };
  if (t.typeId === Type.Utf8)
    return mkData({ type: t, length: n, ...validity, valueOffsets: c.offsets, data: c.bytes });
  const nums = c.nums!;
  if (t.typeId === Type.Bool) {
    const bits = new Uint8Array((n + 7) >> 3);
    for (let i = 0; i < n; i++) if (nums[i] !== 0) bits[i >> 3] |= 1 << (i & 7);
    return mkData({ type: t, length: n, ...validity, data: bits });
  }
  if (t.typeId === Type.Float) return mkData({ type: t, length: n, ...validity, data: nums });
  if (t.typeId === Type.Int && (t as unknown as { bitWidth: number }).bitWidth === 32)
    return mkData({ type: t, length: n, ...validity, data: Int32Array.from(nums) });
  // 64-bit integers and timestamps in ms, written as two 32-bit words (exact below 2^53).
  const words = new Int32Array(2 * n);
  for (let i = 0; i < n; i++) {
    const v = Math.trunc(nums[i]);
    const hi = Math.floor(v / 4294967296);
    words[2 * i] = v - hi * 4294967296;
    words[2 * i + 1] = hi;
  }
  return mkData({ type: t, length: n, ...validity, data: new BigInt64Array(words.buffer) });
}

/**
 * Arrow column data of `type` from aggregate results that may hold packed rows: a struct column of them, or a
 * list of struct column of lists of them (max_by's top-k form); any other column through {@link dataFromValues}.
 */
export function resultData(type: DataType, values: ArrayLike<unknown>): Data {
  if (type.typeId === Type.Struct) return structData(type as Struct, values);
  const item = type.typeId === Type.List ? (type as List).children[0].type : null;
  if (item?.typeId !== Type.Struct || !holdsPackedRows(values)) return dataFromValues(type, values);
  const n = values.length;
  const offsets = new Int32Array(n + 1);
  const flat: unknown[] = [];
  const valid = new Uint8Array((n + 7) >> 3);
  let nulls = 0;
  for (let i = 0; i < n; i++) {
    const v = values[i] as unknown[] | null | undefined;
    if (v === null || v === undefined) nulls++;
    else {
      valid[i >> 3] |= 1 << (i & 7);
      for (let j = 0; j < v.length; j++) flat.push(v[j]);
    }
    offsets[i + 1] = flat.length;
  }
  const child = structData(item as Struct, flat);
  return mkData({
    type,
    length: n,
    nullCount: nulls,
    nullBitmap: nulls > 0 ? valid : undefined,
    valueOffsets: offsets,
    child,
  });
}

/** Whether a column of lists holds any packed row. */
function holdsPackedRows(values: ArrayLike<unknown>): boolean {
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (Array.isArray(v)) for (let j = 0; j < v.length; j++) if (v[j] instanceof Uint8Array) return true;
  }
  return false;
}
