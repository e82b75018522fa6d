/**
 * Readers of Arrow columns for aggregation: numbers as one typed array (longs and timestamps converted once
 * per batch, strings parsed), and JS scalars for values that become keys of maps and sets. Timestamps read as
 * epoch milliseconds (numbers), not Date objects: they are compared, hashed and stored as numbers.
 */
import { type Data, type DataType, type Dictionary, Type } from 'apache-arrow';
import { int64ToNumbers, isValid, textBuffer, valuesOf } from '../../arrow/columns.js';
import { grown } from '../../util/grown.js';

/** Numbers of a column and which rows hold one (null when all do). */
export interface Numbers {
  vals: ArrayLike<number>;
  valid: Uint8Array | null;
}

/** Scale from a timestamp's unit to milliseconds. */
function timestampScale(type: DataType): number {
  const unit = (type as unknown as { unit?: number }).unit ?? 1;
  return [1000, 1, 1e-3, 1e-6][unit] ?? 1;
}

function validBytes(data: Data): Uint8Array | null {
  if (data.nullCount === 0 || !data.nullBitmap || data.nullBitmap.length === 0) return null;
  const n = data.length;
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = isValid(data, i) ? 1 : 0;
  return out;
}

/** Decimal text to a number; blank or malformed text is null (as Spark's cast of a string to double). */
export function parseNumber(s: string): number | null {
  const t = s.trim();
  if (t === '') return null;
  const v = Number(t);
  return Number.isNaN(v) && t !== 'NaN' ? null : v;
}

/**
 * The column as numbers: ints and doubles as they are, longs and timestamps (ms) converted, booleans as
 * 0/1, strings parsed as decimal numbers (text that is not a number counts as null). Throws for other types.
 */
export function numbersOf(data: Data): Numbers {
  const n = data.length;
  const t = data.type;
  switch (t.typeId) {
    case Type.Float:
    case Type.Int: {
      const v = data.values as ArrayLike<number | bigint>;
      if (v instanceof BigInt64Array || v instanceof BigUint64Array)
        return { vals: int64ToNumbers(v, 1, n), valid: validBytes(data) };
      return { vals: v as ArrayLike<number>, valid: validBytes(data) };
    }
    case Type.Timestamp:
    case Type.Date: {
      const v = data.values as ArrayLike<number | bigint>;
      const scale =
        t.typeId === Type.Date ? ((t as unknown as { unit: number }).unit === 0 ? 86_400_000 : 1) : timestampScale(t);
      if (v instanceof BigInt64Array) return { vals: int64ToNumbers(v, scale, n), valid: validBytes(data) };
      const out = new Float64Array(n);
      for (let i = 0; i < n; i++) out[i] = Number(v[i]) * scale;
      return { vals: out, valid: validBytes(data) };
    }
    case Type.Bool:
    case Type.Utf8:
    case Type.Dictionary: {
      const js = valuesOf(data);
      const out = new Float64Array(n);
      const valid = new Uint8Array(n);
      for (let i = 0; i < n; i++) {
        const x = js[i];
        const num = x === null ? null : typeof x === 'string' ? parseNumber(x) : Number(x);
        if (num !== null) {
          out[i] = num;
          valid[i] = 1;
        }
      }
      return { vals: out, valid };
    }
    default:
      throw new TypeError(`cannot read ${t} as numbers`);
  }
}

/**
 * The column as JS scalars: strings, numbers (longs as numbers, timestamps as ms), booleans, null. Equal
 * strings are one shared string (they become keys of maps and sets).
 */
export function scalarsOf(data: Data): unknown[] {
  const t = data.type;
  if (
    t.typeId === Type.Timestamp ||
    t.typeId === Type.Date ||
    (t.typeId === Type.Int && (data.values instanceof BigInt64Array || data.values instanceof BigUint64Array))
  ) {
    const { vals, valid } = numbersOf(data);
    const out = new Array<unknown>(data.length);
    for (let i = 0; i < data.length; i++) out[i] = valid && !valid[i] ? null : vals[i];
    return out;
  }
  if (t.typeId === Type.Utf8) return internedStrings(data);
  return valuesOf(data);
}

/**
 * Distinct values of utf8 columns found by their bytes: a hash table over the bytes (no JS Map, no string
 * per row), each distinct value decoded once and shared by its rows, and each row given its value's id.
 * Ids span every column one interner reads. Arrow utf8 is valid UTF-8, so equal bytes are equal strings.
 */
export class Utf8Interner {
  /** The distinct values by id. */
  readonly strings: string[] = [];
  private table = new Int32Array(64);
  private hashes: Int32Array = new Int32Array(32);
  /** Where each distinct value's bytes are: the column bytes it was first seen in, start and end. */
  private source: Int32Array = new Int32Array(32);
  private starts: Int32Array = new Int32Array(32);
  private ends: Int32Array = new Int32Array(32);
  private readonly sources: DataView[] = [];

  /** The id of each row's value (-1 for null). */
  ids(data: Data): Int32Array {
    return this.idsOf(data.valueOffsets as Int32Array, data.values as Uint8Array, data.length, validBytes(data));
  }

  /**
   * The id of each of `n` utf8 values given as offsets (n + 1, possibly not starting at 0) and bytes, -1 where
   * `valid` (a byte per row, null when all are) says null.
   */
  idsOf(offsets: Int32Array, bytes: Uint8Array, n: number, valid: Uint8Array | null): Int32Array {
    const out = new Int32Array(n);
    const text = textBuffer(bytes);
    const src = this.sources.length;
    // Bytes are hashed and compared four at a time (unaligned little-endian words), the tail byte by byte.
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.sources.push(view);
    for (let i = 0; i < n; i++) {
      if (valid && !valid[i]) {
        out[i] = -1;
        continue;
      }
      const start = offsets[i];
      const end = offsets[i + 1];
      const words = end - ((end - start) & 3);
      let h = (end - start) | 0;
      let j = start;
      for (; j < words; j += 4) h = Math.imul((h << 5) ^ (h >>> 27) ^ view.getInt32(j, true), 0x9e3779b1);
      for (; j < end; j++) h = Math.imul(h ^ bytes[j], 0x01000193);
      h ^= h >>> 15;
      h = Math.imul(h, 0x85ebca6b);
      h ^= h >>> 13;
      const table = this.table;
      const mask = table.length - 1;
      let slot = h & mask;
      let id = -1;
      for (let e = table[slot]; e !== 0; e = table[slot]) {
        const c = e - 1;
        if (this.hashes[c] === h && this.ends[c] - this.starts[c] === end - start) {
          const other = this.sources[this.source[c]];
          const d = this.starts[c] - start;
          let k = start;
          while (k < words && other.getInt32(d + k, true) === view.getInt32(k, true)) k += 4;
          if (k >= words) while (k < end && other.getUint8(d + k) === bytes[k]) k++;
          if (k === end) {
            id = c;
            break;
          }
        }
        slot = (slot + 1) & mask;
      }
      if (id < 0) id = this.add(slot, h, src, start, end, text.utf8Slice(start, end));
      out[i] = id;
    }
    return out;
  }

  private add(slot: number, h: number, src: number, start: number, end: number, value: string): number {
    const id = this.strings.length;
    if (id === this.hashes.length) {
      const cap = id * 2;
      this.hashes = grown(this.hashes, cap);
      this.source = grown(this.source, cap);
      this.starts = grown(this.starts, cap);
      this.ends = grown(this.ends, cap);
    }
    this.strings.push(value);
    this.hashes[id] = h;
    this.source[id] = src;
    this.starts[id] = start;
    this.ends[id] = end;
    this.table[slot] = id + 1;
    if ((id + 1) * 2 > this.table.length) this.rehash();
    return id;
  }

  private rehash(): void {
    const table = new Int32Array(this.table.length * 2);
    const mask = table.length - 1;
    for (let id = 0; id < this.strings.length; id++) {
      let slot = this.hashes[id] & mask;
      while (table[slot] !== 0) slot = (slot + 1) & mask;
      table[slot] = id + 1;
    }
    this.table = table;
  }
}

/** The column's utf8 values with one shared string per distinct value (Maps and Sets then hash each once). */
export function internedStrings(data: Data): (string | null)[] {
  const interner = new Utf8Interner();
  const ids = interner.ids(data);
  const strings = interner.strings;
  const out = new Array<string | null>(ids.length);
  for (let i = 0; i < ids.length; i++) out[i] = ids[i] < 0 ? null : strings[ids[i]];
  return out;
}

/** The type values of `type` are written as: a dictionary's value type, else the type itself. */
export function valueType(type: DataType): DataType {
  return type.typeId === Type.Dictionary ? (type as Dictionary).dictionary : type;
}

/** Whether a type reads as numbers in {@link numbersOf} without parsing (ints, doubles, timestamps). */
export function isNumericType(type: DataType): boolean {
  return (
    type.typeId === Type.Int ||
    type.typeId === Type.Float ||
    type.typeId === Type.Timestamp ||
    type.typeId === Type.Date
  );
}

/**
 * Total order of values for min/max/ordering: null first, then numbers, then strings, then objects (dates,
 * lists, structs: see compareObjects).
 */
export function compareScalars(a: unknown, b: unknown): number {
  if (a === b) return 0;
  if (a === null || a === undefined) return -1;
  if (b === null || b === undefined) return 1;
  const ta = typeof a;
  const tb = typeof b;
  if ((ta === 'number' || ta === 'boolean') && (tb === 'number' || tb === 'boolean')) {
    const x = Number(a);
    const y = Number(b);
    return x < y ? -1 : x > y ? 1 : 0;
  }
  if (ta === 'string' && tb === 'string') return (a as string) < (b as string) ? -1 : 1;
  if (ta !== tb) return ta < tb ? -1 : 1;
  if (ta === 'object') return compareObjects(a as object, b as object);
  const sa = String(a);
  const sb = String(b);
  return sa < sb ? -1 : sa > sb ? 1 : 0;
}

/**
 * Dates by time, lists and struct tuples element by element, structs (plain objects) field by field in the
 * first one's order. A struct kept as a plain object meets one kept as a tuple when state written before
 * max_by kept tuples is restored; it is then compared as the tuple of its fields, dates as epoch ms.
 */
function compareObjects(a: object, b: object): number {
  if (a instanceof Date && b instanceof Date) return a.getTime() - b.getTime();
  const listA = Array.isArray(a) || ArrayBuffer.isView(a);
  const listB = Array.isArray(b) || ArrayBuffer.isView(b);
  if (listA !== listB && (isRecord(a) || isRecord(b))) {
    return compareObjects(listA ? a : tupleOf(a), listB ? b : tupleOf(b));
  }
  if (listA && listB) {
    const x = a as ArrayLike<unknown>;
    const y = b as ArrayLike<unknown>;
    for (let i = 0; i < x.length && i < y.length; i++) {
      const c = compareScalars(x[i], y[i]);
      if (c !== 0) return c;
    }
    return x.length - y.length;
  }
  const x = a as Record<string, unknown>;
  const y = b as Record<string, unknown>;
  for (const k in x) {
    const c = compareScalars(x[k], y[k]);
    if (c !== 0) return c;
  }
  return 0;
}

function isRecord(v: object): boolean {
  return Object.getPrototypeOf(v) === Object.prototype;
}

function tupleOf(o: object): unknown[] {
  return Object.values(o).map((v) => (v instanceof Date ? v.getTime() : v));
}
