import {
  Binary,
  Bool,
  type Data,
  type DataType,
  DateUnit,
  Float64,
  Int32,
  Int64,
  TimestampMillisecond,
  Type,
  Utf8,
} from 'apache-arrow';
import { takeData } from '../arrow/batch-ops.js';
import { mkData, utf8Data, valuesOf } from '../arrow/columns.js';

/**
 * The working representation of column values while an expression is evaluated. Every row-wise kernel reads
 * and writes whole typed arrays:
 * - numbers (int, long, double) and timestamps (epoch ms) as Float64Array: every int and every long below
 *   2^53 is exact there, so one set of kernels serves them all. Longs that do not fit use BigInt64Array.
 * - booleans as one byte per row, validity as one byte per row (1 = valid) or null when nothing is null:
 *   byte arrays combine with plain loops, bitmaps are only built at the Arrow boundary.
 * - strings as Arrow's utf8 offsets and bytes (compared without decoding), decoded to JS strings once when
 *   a kernel needs them; dictionary-encoded strings keep their indices.
 * - literals stay scalars, so `amount > 10` does not materialise a column of tens.
 */

/** The logical types of the expression language (Spark's). */
export type LType =
  | 'string'
  | 'double'
  | 'long'
  | 'int'
  | 'boolean'
  | 'timestamp'
  | 'binary'
  | 'struct'
  | 'list'
  | 'null'
  | 'other';

/** Validity per row (1 = valid), or null when every row is valid. */
export type Valid = Uint8Array | null;

/** A literal value: numbers and timestamps (ms) as number, longs beyond 2^53 as bigint. */
export type Scalar = number | bigint | string | boolean | null;

/** Strings in one of three forms; `strs` caches the decoded values. */
export interface StrRep {
  /** utf8 value offsets (n + 1 entries, possibly not starting at 0) and bytes. */
  vo?: Int32Array;
  bytes?: Uint8Array;
  /** Dictionary indices and the decoded dictionary. */
  idx?: ArrayLike<number>;
  dict?: (string | null)[];
  /** Decoded strings, null where invalid. */
  strs?: (string | null)[];
}

export type Val =
  | { k: 'scalar'; v: Scalar }
  | { k: 'num'; f: Float64Array; valid: Valid; src?: Data }
  | { k: 'big'; b: BigInt64Array; valid: Valid; src?: Data }
  | { k: 'bool'; b: Uint8Array; valid: Valid; src?: Data }
  | { k: 'str'; s: StrRep; valid: Valid; src?: Data }
  | { k: 'data'; data: Data };

export type StrVal = Extract<Val, { k: 'str' }>;

export const NULL_SCALAR: Val = Object.freeze({ k: 'scalar', v: null }) as Val;

const TWO_32 = 4294967296;
const SAFE = 2 ** 53;
const decoder = new TextDecoder();

/** The Arrow type a computed value of `t` is written as. */
export function canonicalArrow(t: LType): DataType {
  switch (t) {
    case 'double':
      return new Float64();
    case 'long':
      return new Int64();
    case 'int':
      return new Int32();
    case 'boolean':
      return new Bool();
    case 'timestamp':
      return new TimestampMillisecond('UTC');
    case 'binary':
      return new Binary();
    default:
      return new Utf8();
  }
}

/** The logical type of an Arrow type. */
export function ltypeOf(type: DataType): LType {
  switch (type.typeId) {
    case Type.Utf8:
    case Type.LargeUtf8:
      return 'string';
    case Type.Float:
      return 'double';
    case Type.Int: {
      const { bitWidth, isSigned } = type as unknown as { bitWidth: number; isSigned: boolean };
      return bitWidth < 32 || (bitWidth === 32 && isSigned) ? 'int' : 'long';
    }
    case Type.Bool:
      return 'boolean';
    case Type.Timestamp:
    case Type.Date:
      return 'timestamp';
    case Type.Binary:
    case Type.LargeBinary:
      return 'binary';
    case Type.Struct:
      return 'struct';
    case Type.List:
    case Type.LargeList:
    case Type.FixedSizeList:
      return 'list';
    case Type.Null:
      return 'null';
    case Type.Dictionary:
      return ltypeOf((type as unknown as { dictionary: DataType }).dictionary);
    default:
      return 'other';
  }
}

/** Validity bytes of Arrow data (bitmaps are addressed through data.offset), or null when nothing is null. */
export function validOfData(data: Data): Valid {
  const n = data.length;
  if (data.typeId === Type.Null) return new Uint8Array(n);
  const bm = data.nullBitmap;
  if (!bm || bm.length === 0 || data.nullCount === 0) return null;
  const out = new Uint8Array(n);
  const off = data.offset;
  for (let i = 0; i < n; i++) {
    const j = off + i;
    out[i] = (bm[j >> 3] >> (j & 7)) & 1;
  }
  return out;
}

/** Row-wise AND of two validities. */
export function andValid(a: Valid, b: Valid, n: number): Valid {
  if (!a) return b;
  if (!b) return a;
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = a[i] & b[i];
  return out;
}

/** Validity of any value over n rows. */
export function validOf(v: Val, n: number): Valid {
  switch (v.k) {
    case 'scalar':
      return v.v === null ? new Uint8Array(n) : null;
    case 'data':
      return validOfData(v.data);
    default:
      return v.valid;
  }
}

/** Packs one byte per row (0/1) into an Arrow bitmap, eight rows per step without branches. */
function packBits(bytes: Uint8Array, n: number): Uint8Array {
  const bits = new Uint8Array((n + 7) >> 3);
  const full = n >> 3;
  for (let j = 0; j < full; j++) {
    const i = j << 3;
    bits[j] =
      bytes[i] |
      (bytes[i + 1] << 1) |
      (bytes[i + 2] << 2) |
      (bytes[i + 3] << 3) |
      (bytes[i + 4] << 4) |
      (bytes[i + 5] << 5) |
      (bytes[i + 6] << 6) |
      (bytes[i + 7] << 7);
  }
  for (let i = full << 3; i < n; i++) bits[i >> 3] |= bytes[i] << (i & 7);
  return bits;
}

/** Arrow validity bitmap of validity bytes. */
function bitmapOf(valid: Valid, n: number): { nullBitmap?: Uint8Array; nullCount: number } {
  if (!valid) return { nullCount: 0 };
  let set = 0;
  for (let i = 0; i < n; i++) set += valid[i];
  return set === n ? { nullCount: 0 } : { nullBitmap: packBits(valid, n), nullCount: n - set };
}

/** The same data with validity narrowed to `valid` (its own nulls stay null); buffers are shared. */
export function withValidity(data: Data, valid: Valid): Data {
  if (!valid) return data;
  const n = data.length;
  const own = validOfData(data);
  const off = data.offset;
  const bm = new Uint8Array((off + n + 7) >> 3);
  let nulls = 0;
  for (let i = 0; i < n; i++) {
    if (valid[i] && (!own || own[i])) {
      const j = off + i;
      bm[j >> 3] |= 1 << (j & 7);
    } else nulls++;
  }
  if (nulls === 0) return data;
  return data.clone(
    data.type,
    off,
    n,
    nulls,
    [data.valueOffsets, data.values, bm, data.typeIds] as never,
    data.children,
  );
}

/** Reads 64-bit integers as doubles through 32-bit halves (no BigInt per row); null if one is beyond 2^53. */
function int64AsDoubles(
  values: BigInt64Array | BigUint64Array | Int32Array,
  n: number,
  unsigned: boolean,
): Float64Array | null {
  const w = values instanceof Int32Array ? values : new Int32Array(values.buffer, values.byteOffset, n * 2);
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const hi = w[2 * i + 1];
    if (unsigned ? hi >>> 0 >= 0x200000 : hi >= 0x200000 || hi < -0x200000) return null;
    out[i] = (unsigned ? hi >>> 0 : hi) * TWO_32 + (w[2 * i] >>> 0);
  }
  return out;
}

/** Decodes a dictionary's values (all chunks) to strings. */
function dictionaryStrings(data: Data): (string | null)[] {
  const dict = data.dictionary as unknown as { data: Data[] } | undefined;
  const out: (string | null)[] = [];
  for (const chunk of dict?.data ?? []) for (const s of valuesOf(chunk)) out.push(s as string | null);
  return out;
}

/** The working value of Arrow data whose logical type is `t`. Fixed-width values are used in place. */
export function loadData(data: Data, t: LType): Val {
  const n = data.length;
  const valid = validOfData(data);
  const typeId = data.typeId;
  if (typeId === Type.Dictionary) {
    if (t === 'string') {
      return {
        k: 'str',
        s: { idx: data.values as ArrayLike<number>, dict: dictionaryStrings(data) },
        valid,
        src: data,
      };
    }
    const vals = valuesOf(data);
    return loadJs(vals, t, data);
  }
  switch (t) {
    case 'double':
    case 'int':
    case 'long': {
      const v = data.values;
      if (v instanceof Float64Array) return { k: 'num', f: v, valid, src: data };
      if (v instanceof BigInt64Array || v instanceof BigUint64Array) {
        const f = int64AsDoubles(v, n, v instanceof BigUint64Array);
        if (f) return { k: 'num', f, valid, src: data };
        return {
          k: 'big',
          b: v instanceof BigInt64Array ? v : BigInt64Array.from(v, (x) => BigInt.asIntN(64, x)),
          valid,
          src: data,
        };
      }
      const f = new Float64Array(n);
      for (let i = 0; i < n; i++) f[i] = (v as ArrayLike<number>)[i];
      return { k: 'num', f, valid, src: data };
    }
    case 'timestamp': {
      const f = new Float64Array(n);
      const unit = (data.type as unknown as { unit: number }).unit;
      if (data.typeId === Type.Date && unit === DateUnit.DAY) {
        const days = data.values as Int32Array;
        for (let i = 0; i < n; i++) f[i] = days[i] * 86_400_000;
        return { k: 'num', f, valid, src: data };
      }
      const toMs = data.typeId === Type.Date ? 1 : ([1000, 1, 1e-3, 1e-6][unit] ?? 1);
      const w =
        data.values instanceof Int32Array
          ? data.values
          : new Int32Array(data.values.buffer, data.values.byteOffset, n * 2);
      for (let i = 0; i < n; i++) f[i] = Math.floor((w[2 * i + 1] * TWO_32 + (w[2 * i] >>> 0)) * toMs);
      return { k: 'num', f, valid, src: data };
    }
    case 'boolean': {
      const bits = data.values as Uint8Array;
      const off = data.offset;
      const b = new Uint8Array(n);
      for (let i = 0; i < n; i++) {
        const j = off + i;
        b[i] = (bits[j >> 3] >> (j & 7)) & 1;
      }
      return { k: 'bool', b, valid, src: data };
    }
    case 'string':
    case 'binary':
      if (data.valueOffsets instanceof Int32Array) {
        return { k: 'str', s: { vo: data.valueOffsets, bytes: data.values as Uint8Array }, valid, src: data };
      }
      return loadJs(valuesOf(data), t, data);
    case 'null':
      return NULL_SCALAR;
    default:
      return { k: 'data', data };
  }
}

/** Working value from JS values (the slow path for unusual Arrow layouts). */
function loadJs(vals: unknown[], t: LType, src: Data): Val {
  const n = vals.length;
  const valid = new Uint8Array(n);
  for (let i = 0; i < n; i++) valid[i] = vals[i] === null || vals[i] === undefined ? 0 : 1;
  switch (t) {
    case 'string':
      return { k: 'str', s: { strs: vals.map((v) => (v === null || v === undefined ? null : String(v))) }, valid, src };
    case 'binary': {
      const strs = vals.map((v) => (v instanceof Uint8Array ? decoder.decode(v) : null));
      return { k: 'str', s: { strs }, valid, src };
    }
    case 'boolean':
      return { k: 'bool', b: Uint8Array.from(vals, (v) => (v ? 1 : 0)), valid, src };
    case 'timestamp':
      return {
        k: 'num',
        f: Float64Array.from(vals, (v) => (v instanceof Date ? v.getTime() : Number(v ?? 0))),
        valid,
        src,
      };
    case 'double':
    case 'int':
    case 'long': {
      const f = Float64Array.from(vals, (v) => Number(v ?? 0));
      if (f.some((x) => Math.abs(x) >= SAFE)) {
        return {
          k: 'big',
          b: BigInt64Array.from(vals, (v) => (typeof v === 'bigint' ? v : BigInt(Math.trunc(Number(v ?? 0))))),
          valid,
          src,
        };
      }
      return { k: 'num', f, valid, src };
    }
    default:
      return { k: 'data', data: src };
  }
}

/** Decoded strings of a string value, null where invalid (memoised on the value). */
export function stringsOf(v: StrVal, n: number): (string | null)[] {
  const s = v.s;
  if (s.strs) return s.strs;
  const out = new Array<string | null>(n);
  const valid = v.valid;
  if (s.idx && s.dict) {
    for (let i = 0; i < n; i++) out[i] = valid && !valid[i] ? null : s.dict[s.idx[i]];
  } else {
    const vo = s.vo!;
    const bytes = s.bytes!;
    for (let i = 0; i < n; i++) out[i] = valid && !valid[i] ? null : decodeUtf8(bytes, vo[i], vo[i + 1]);
  }
  s.strs = out;
  return out;
}

/** One utf8 value; short ASCII strings skip TextDecoder, which costs more than the copy for them. */
function decodeUtf8(bytes: Uint8Array, start: number, end: number): string {
  if (end - start < 24) {
    let ascii = true;
    for (let k = start; k < end; k++)
      if (bytes[k] > 127) {
        ascii = false;
        break;
      }
    if (ascii) return String.fromCharCode.apply(null, bytes.subarray(start, end) as unknown as number[]);
  }
  return decoder.decode(bytes.subarray(start, end));
}

/**
 * utf8 offsets and bytes of a string value (memoised on it): a dictionary's values are encoded once and their
 * bytes copied per row; strings that exist only as JS strings are encoded.
 */
export function utf8Of(v: StrVal, n: number): { vo: Int32Array; bytes: Uint8Array } {
  if (!(v.s.vo && v.s.bytes)) {
    const { vo, bytes } = v.s.idx && v.s.dict ? gatherDictionary(v.s.idx, v.s.dict, v.valid, n) : encodeStrings(v, n);
    v.s.vo = vo;
    v.s.bytes = bytes;
  }
  return { vo: v.s.vo, bytes: v.s.bytes };
}

function encodeStrings(v: StrVal, n: number): { vo: Int32Array; bytes: Uint8Array } {
  const d = utf8Data(stringsOf(v, n));
  return { vo: d.valueOffsets as Int32Array, bytes: d.values as Uint8Array };
}

/** Rows of a dictionary-encoded string value as utf8: each entry encoded once, then copied to its rows. */
function gatherDictionary(
  idx: ArrayLike<number>,
  dict: (string | null)[],
  valid: Valid,
  n: number,
): { vo: Int32Array; bytes: Uint8Array } {
  // Null rows point at an extra null entry, so that no index is out of range.
  const rows = new Int32Array(n);
  for (let i = 0; i < n; i++) rows[i] = valid && !valid[i] ? dict.length : idx[i];
  const d = takeData(utf8Data([...dict, null]), rows);
  return { vo: d.valueOffsets as Int32Array, bytes: d.values as Uint8Array };
}

/** A value with every row equal to a scalar, in the working form of type `t`. */
function broadcast(v: Scalar, t: LType, n: number): Val {
  if (v === null) {
    const valid = new Uint8Array(n);
    switch (t) {
      case 'boolean':
        return { k: 'bool', b: new Uint8Array(n), valid };
      case 'double':
      case 'int':
      case 'long':
      case 'timestamp':
        return { k: 'num', f: new Float64Array(n), valid };
      default:
        return { k: 'str', s: { strs: new Array(n).fill(null) }, valid };
    }
  }
  switch (typeof v) {
    case 'number':
      return { k: 'num', f: new Float64Array(n).fill(v), valid: null };
    case 'bigint':
      return { k: 'big', b: new BigInt64Array(n).fill(v), valid: null };
    case 'boolean':
      return { k: 'bool', b: new Uint8Array(n).fill(v ? 1 : 0), valid: null };
    default:
      return { k: 'str', s: { strs: new Array(n).fill(v) }, valid: null };
  }
}

/** Materialises scalars; other values are returned as they are. */
export function materialise(v: Val, t: LType, n: number): Val {
  return v.k === 'scalar' ? broadcast(v.v, t, n) : v;
}

/** Row 0 of a one-row value as a scalar (kernels run on one row to fold literals). */
export function scalarOf(v: Val): Scalar {
  const valid = v.k === 'scalar' ? null : v.k === 'data' ? validOfData(v.data) : v.valid;
  if (valid && !valid[0]) return null;
  switch (v.k) {
    case 'scalar':
      return v.v;
    case 'num':
      return v.f[0];
    case 'big':
      return v.b[0];
    case 'bool':
      return v.b[0] === 1;
    case 'str':
      return stringsOf(v, 1)[0];
    default:
      return valuesOf(v.data)[0] as Scalar;
  }
}

/** Doubles of a numeric value (longs beyond 2^53 rounded). */
export function doublesOf(v: Val, n: number): Float64Array {
  if (v.k === 'num') return v.f;
  if (v.k === 'big') {
    const f = new Float64Array(n);
    for (let i = 0; i < n; i++) f[i] = Number(v.b[i]);
    return f;
  }
  if (v.k === 'bool') {
    const f = new Float64Array(n);
    for (let i = 0; i < n; i++) f[i] = v.b[i];
    return f;
  }
  if (v.k === 'scalar') return new Float64Array(n).fill(typeof v.v === 'boolean' ? Number(v.v) : Number(v.v ?? 0));
  throw new Error(`internal: ${v.k} value is not numeric`);
}

/** 64-bit integers of a long value. */
export function bigintsOf(v: Val, n: number): BigInt64Array {
  if (v.k === 'big') return v.b;
  if (v.k === 'scalar')
    return new BigInt64Array(n).fill(typeof v.v === 'bigint' ? v.v : BigInt(Math.trunc(Number(v.v ?? 0))));
  const f = doublesOf(v, n);
  const valid = v.k === 'num' ? v.valid : null;
  const out = new BigInt64Array(n);
  for (let i = 0; i < n; i++) if (!valid || valid[i]) out[i] = BigInt(f[i]);
  return out;
}

/** Writes integral doubles as int64 through 32-bit halves (no BigInt per row). */
function doublesToInt64(f: Float64Array, valid: Valid, n: number): BigInt64Array {
  const out = new BigInt64Array(n);
  const w = new Int32Array(out.buffer);
  for (let i = 0; i < n; i++) {
    if (valid && !valid[i]) continue;
    const x = Math.floor(f[i]);
    const hi = Math.floor(x / TWO_32);
    w[2 * i] = (x - hi * TWO_32) | 0;
    w[2 * i + 1] = hi | 0;
  }
  return out;
}

/** Arrow data of a working value of type `t` over n rows, written as `arrow`. */
export function toData(v: Val, t: LType, arrow: DataType, n: number): Data {
  if (v.k === 'scalar') return toData(broadcast(v.v, t, n), t, arrow, n);
  if (v.k === 'data') return v.data;
  if (v.src && v.src.type === arrow) return v.src;
  const { nullBitmap, nullCount } = bitmapOf(v.valid, n);
  const base = { type: arrow, length: n, nullCount, nullBitmap };
  switch (v.k) {
    case 'num':
      switch (t) {
        case 'double':
          return mkData({ ...base, data: v.f.length === n ? v.f : v.f.subarray(0, n) });
        case 'int':
          return mkData({ ...base, data: Int32Array.from(v.f.subarray(0, n)) });
        case 'long':
        case 'timestamp':
          return mkData({ ...base, data: doublesToInt64(v.f, v.valid, n) });
        default:
          break;
      }
      break;
    case 'big':
      return mkData({ ...base, data: v.b.length === n ? v.b : v.b.slice(0, n) });
    case 'bool': {
      return mkData({ ...base, data: packBits(v.b, n) });
    }
    case 'str': {
      if ((v.s.vo && v.s.bytes) || (v.s.idx && v.s.dict)) {
        const { vo, bytes } = utf8Of(v, n);
        return mkData({ ...base, valueOffsets: vo.subarray(0, n + 1), data: bytes });
      }
      const d = utf8Data(stringsOf(v, n), arrow);
      return nullCount === d.nullCount ? d : mkData({ ...base, valueOffsets: d.valueOffsets, data: d.values });
    }
    default:
      break;
  }
  throw new Error(`internal: cannot write a ${v.k} value as ${t}`);
}
