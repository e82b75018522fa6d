import {
  type Data,
  type DataType,
  type Field,
  type List,
  type Map_,
  makeData,
  RecordBatch,
  type Schema,
  Struct,
  Type,
  Utf8,
} from 'apache-arrow';

/**
 * Builders and readers between JS values and Arrow column data. They write offsets, bytes and typed arrays
 * directly: apache-arrow's own builders make utf8 at under 1M rows/s, these at 10M+.
 */

/** makeData with props checked at run time: apache-arrow's overloads cannot type a DataType chosen at run time. */
export function mkData(props: Record<string, unknown>): Data {
  return makeData(props as never) as Data;
}

const encoder = new TextEncoder();

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/**
 * `Number(v) * scale` of every value of an int64 column (exact below 2^53, correctly rounded above, as
 * Number(bigint)). Reads each value as two 32-bit words: a BigInt per value costs ~8x more.
 */
export function int64ToNumbers(
  values: BigInt64Array | BigUint64Array,
  scale = 1,
  length = values.length,
): Float64Array {
  const n = Math.min(length, values.length);
  const out = new Float64Array(n);
  if (!LITTLE_ENDIAN) {
    for (let i = 0; i < n; i++) out[i] = Number(values[i]) * scale;
    return out;
  }
  const w = new Int32Array(values.buffer, values.byteOffset, n * 2);
  if (values instanceof BigUint64Array) {
    for (let i = 0; i < n; i++) out[i] = ((w[2 * i + 1] >>> 0) * 4294967296 + (w[2 * i] >>> 0)) * scale;
  } else {
    for (let i = 0; i < n; i++) out[i] = (w[2 * i + 1] * 4294967296 + (w[2 * i] >>> 0)) * scale;
  }
  return out;
}

/** Validity bitmap for `values`, or undefined when nothing is null. */
function validityOf(values: ArrayLike<unknown>, n: number): { bitmap?: Uint8Array; nullCount: number } {
  let nullCount = 0;
  for (let i = 0; i < n; i++) if (values[i] === null || values[i] === undefined) nullCount++;
  if (nullCount === 0) return { nullCount };
  const bitmap = new Uint8Array((n + 7) >> 3);
  for (let i = 0; i < n; i++) if (values[i] !== null && values[i] !== undefined) bitmap[i >> 3] |= 1 << (i & 7);
  return { bitmap, nullCount };
}

/** utf8 column from JS strings with an ASCII fast path. Non-strings are stringified; null/undefined stay null. */
export function utf8Data(values: ArrayLike<unknown>, type: DataType = new Utf8()): Data {
  const n = values.length;
  const offsets = new Int32Array(n + 1);
  let cap = 16;
  for (let i = 0; i < n; i++) {
    const v = values[i];
    if (typeof v === 'string') cap += v.length;
  }
  let buf = new Uint8Array(cap * 1.1 + 16);
  let p = 0;
  for (let i = 0; i < n; i++) {
    let v = values[i];
    if (v !== null && v !== undefined) {
      if (typeof v !== 'string') v = typeof v === 'object' ? JSON.stringify(v) : String(v);
      const s = v as string;
      const len = s.length;
      if (p + len * 3 > buf.length) {
        const next = new Uint8Array(Math.max(buf.length * 2, p + len * 3 + 16));
        next.set(buf.subarray(0, p));
        buf = next;
      }
      let j = 0;
      for (; j < len; j++) {
        const c = s.charCodeAt(j);
        if (c > 127) break;
        buf[p + j] = c;
      }
      if (j === len) p += len;
      else p += j + encoder.encodeInto(s.slice(j), buf.subarray(p + j)).written;
    }
    offsets[i + 1] = p;
  }
  const { bitmap, nullCount } = validityOf(values, n);
  return mkData({ type, length: n, nullCount, nullBitmap: bitmap, valueOffsets: offsets, data: buf.subarray(0, p) });
}

function toMillis(v: unknown): number {
  if (v instanceof Date) return v.getTime();
  if (typeof v === 'number') return v;
  if (typeof v === 'bigint') return Number(v);
  if (typeof v === 'string') {
    const t = Date.parse(v);
    return Number.isNaN(t) ? NaN : t;
  }
  return NaN;
}

/** Arrow column data of `type` from JS values (null/undefined → null; a struct row is an object or a tuple in field order). */
export function dataFromValues(type: DataType, values: ArrayLike<unknown>): Data {
  const n = values.length;
  switch (type.typeId) {
    case Type.Utf8:
      return utf8Data(values, type);
    case Type.Float: {
      const out = new Float64Array(n);
      for (let i = 0; i < n; i++) {
        const v = values[i];
        out[i] = v === null || v === undefined ? 0 : Number(v);
      }
      const { bitmap, nullCount } = validityOf(values, n);
      return mkData({ type, length: n, nullCount, nullBitmap: bitmap, data: out });
    }
    case Type.Int: {
      const is64 = (type as unknown as { bitWidth: number }).bitWidth === 64;
      const { bitmap, nullCount } = validityOf(values, n);
      if (is64) {
        const out = new BigInt64Array(n);
        for (let i = 0; i < n; i++) {
          const v = values[i];
          if (v !== null && v !== undefined) out[i] = typeof v === 'bigint' ? v : BigInt(Math.trunc(Number(v)) || 0);
        }
        return mkData({ type, length: n, nullCount, nullBitmap: bitmap, data: out });
      }
      const out = new Int32Array(n);
      for (let i = 0; i < n; i++) {
        const v = values[i];
        if (v !== null && v !== undefined) out[i] = Number(v) | 0;
      }
      return mkData({ type, length: n, nullCount, nullBitmap: bitmap, data: out });
    }
    case Type.Timestamp: {
      const out = new BigInt64Array(n);
      const valid: unknown[] = new Array(n);
      for (let i = 0; i < n; i++) {
        const ms = values[i] === null || values[i] === undefined ? NaN : toMillis(values[i]);
        valid[i] = Number.isNaN(ms) ? null : 1;
        if (!Number.isNaN(ms)) out[i] = BigInt(Math.trunc(ms));
      }
      const { bitmap, nullCount } = validityOf(valid, n);
      return mkData({ type, length: n, nullCount, nullBitmap: bitmap, data: out });
    }
    case Type.Bool: {
      const out = new Uint8Array((n + 7) >> 3);
      for (let i = 0; i < n; i++) if (values[i]) out[i >> 3] |= 1 << (i & 7);
      const { bitmap, nullCount } = validityOf(values, n);
      return mkData({ type, length: n, nullCount, nullBitmap: bitmap, data: out });
    }
    case Type.Binary: {
      const offsets = new Int32Array(n + 1);
      const parts: Uint8Array[] = [];
      let p = 0;
      for (let i = 0; i < n; i++) {
        const v = values[i];
        if (v !== null && v !== undefined) {
          const b = v instanceof Uint8Array ? v : encoder.encode(String(v));
          parts.push(b);
          p += b.length;
        }
        offsets[i + 1] = p;
      }
      const buf = new Uint8Array(p);
      let q = 0;
      for (const b of parts) {
        buf.set(b, q);
        q += b.length;
      }
      const { bitmap, nullCount } = validityOf(values, n);
      return mkData({ type, length: n, nullCount, nullBitmap: bitmap, valueOffsets: offsets, data: buf });
    }
    case Type.List: {
      const offsets = new Int32Array(n + 1);
      const flat: unknown[] = [];
      for (let i = 0; i < n; i++) {
        const v = values[i];
        if (Array.isArray(v)) for (const x of v) flat.push(x);
        offsets[i + 1] = flat.length;
      }
      const child = dataFromValues((type as List).children[0].type, flat);
      const { bitmap, nullCount } = validityOf(values, n);
      return mkData({ type, length: n, nullCount, nullBitmap: bitmap, valueOffsets: offsets, child });
    }
    case Type.Struct: {
      const children = (type as Struct).children.map((f, k) => {
        const col = new Array(n);
        for (let i = 0; i < n; i++) {
          const v = values[i] as Record<string, unknown> | unknown[] | null | undefined;
          col[i] = v == null ? null : Array.isArray(v) ? v[k] : v[f.name];
        }
        return dataFromValues(f.type, col);
      });
      const { bitmap, nullCount } = validityOf(values, n);
      return mkData({ type, length: n, nullCount, nullBitmap: bitmap, children });
    }
    case Type.Map: {
      // A map value may be a JS Map, a plain object or an array of [key, value] entries.
      const offsets = new Int32Array(n + 1);
      const keys: unknown[] = [];
      const vals: unknown[] = [];
      for (let i = 0; i < n; i++) {
        const v = values[i];
        if (v !== null && v !== undefined) {
          const entries = v instanceof Map || Array.isArray(v) ? v : Object.entries(v as object);
          for (const [k, x] of entries as Iterable<[unknown, unknown]>) {
            keys.push(k);
            vals.push(x);
          }
        }
        offsets[i + 1] = keys.length;
      }
      const entryType = (type as Map_).children[0].type as Struct;
      const child = mkData({
        type: entryType,
        length: keys.length,
        nullCount: 0,
        children: [dataFromValues(entryType.children[0].type, keys), dataFromValues(entryType.children[1].type, vals)],
      });
      const { bitmap, nullCount } = validityOf(values, n);
      return mkData({ type, length: n, nullCount, nullBitmap: bitmap, valueOffsets: offsets, child });
    }
    default:
      throw new Error(`sluice cannot build Arrow columns of type ${type}`);
  }
}

/** Record batch from JS column arrays, one per schema field, all of length `length`. */
export function batchFromColumns(schema: Schema, columns: ArrayLike<unknown>[], length: number): RecordBatch {
  const children = schema.fields.map((f, i) => dataFromValues(f.type, columns[i]));
  const struct = makeData({ type: new Struct(schema.fields), length, nullCount: 0, children });
  return new RecordBatch(schema, struct);
}

/** Record batch from row objects; fields missing in a row are null. */
export function batchFromRows(rows: ArrayLike<Record<string, unknown>>, schema: Schema): RecordBatch {
  const n = rows.length;
  const columns = schema.fields.map((f) => {
    const col = new Array(n);
    const name = f.name;
    for (let i = 0; i < n; i++) col[i] = rows[i][name];
    return col;
  });
  return batchFromColumns(schema, columns, n);
}

/** An empty batch of `schema`. */
export function emptyBatch(schema: Schema): RecordBatch {
  return batchFromColumns(
    schema,
    schema.fields.map(() => []),
    0,
  );
}

export function isValid(data: Data, i: number): boolean {
  const bm = data.nullBitmap;
  if (!bm || data.nullCount === 0 || bm.length === 0) return true;
  const j = data.offset + i;
  return ((bm[j >> 3] >> (j & 7)) & 1) === 1;
}

/** Validity per row of `data` as a JS boolean array, or null when no row is null. */
export function validityArray(data: Data): boolean[] | null {
  if (!data.nullBitmap || data.nullCount === 0 || data.nullBitmap.length === 0) return null;
  const out = new Array<boolean>(data.length);
  for (let i = 0; i < data.length; i++) out[i] = isValid(data, i);
  return out;
}

/** Node's Buffer with its native string decoders (what `toString('utf8', start, end)` calls, without its argument checks). */
export type TextBuffer = Buffer & {
  utf8Slice(start: number, end: number): string;
  latin1Slice(start: number, end: number): string;
};

/**
 * A Buffer over the memory of `bytes` (no copy) to decode strings of a utf8 column from: `utf8Slice` per
 * value is 2-3x faster than a TextDecoder or `String.fromCharCode` over a subarray per value.
 */
export function textBuffer(bytes: Uint8Array): TextBuffer {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength) as TextBuffer;
}

/**
 * Note on offsets: apache-arrow's Data.slice pre-slices fixed-width values, value offsets and children, but
 * not bitmaps (validity and booleans), which stay addressed through `data.offset`.
 *
 * Column data as a JS array: utf8 → string, numbers → number (64-bit ints as numbers), timestamps → Date,
 * lists → arrays, structs → objects, null → null. For user functions that want rows; operators read
 * typed arrays instead.
 */
export function valuesOf(data: Data): unknown[] {
  const n = data.length;
  const out = new Array<unknown>(n);
  const off = data.offset;
  const t = data.type;
  switch (t.typeId) {
    case Type.Utf8: {
      const vo = data.valueOffsets as Int32Array;
      const bytes = data.values as Uint8Array;
      const text = textBuffer(bytes);
      // A value with the bytes of the one before it is that string again (a source's topic column, runs of
      // a key): comparing bytes costs less than a string per row, and the rows then share it.
      let last: string | null = null;
      let lastStart = 0;
      for (let i = 0; i < n; i++) {
        if (!isValid(data, i)) {
          out[i] = null;
          continue;
        }
        const start = vo[i];
        const len = vo[i + 1] - start;
        if (last === null || len !== last.length || !sameBytes(bytes, lastStart, start, len)) {
          last = text.utf8Slice(start, start + len);
          lastStart = start;
          // A string shorter than its bytes (non-ASCII) is never compared: its length is not its byte length.
          if (last.length !== len) {
            out[i] = last;
            last = null;
            continue;
          }
        }
        out[i] = last;
      }
      return out;
    }
    case Type.Binary: {
      const vo = data.valueOffsets as Int32Array;
      const bytes = data.values as Uint8Array;
      for (let i = 0; i < n; i++) out[i] = isValid(data, i) ? bytes.slice(vo[i], vo[i + 1]) : null;
      return out;
    }
    case Type.Float:
    case Type.Int: {
      const raw = data.values as ArrayLike<number> | BigInt64Array | BigUint64Array;
      const vals = raw instanceof BigInt64Array || raw instanceof BigUint64Array ? int64ToNumbers(raw, 1, n) : raw;
      for (let i = 0; i < n; i++) out[i] = isValid(data, i) ? vals[i] : null;
      return out;
    }
    case Type.Timestamp:
    case Type.Date: {
      const vals = data.values as BigInt64Array | Int32Array;
      const unit = (t as unknown as { unit: number }).unit ?? 1;
      // Date units are DAY (0) and MILLISECOND (1); timestamp units SECOND, MILLISECOND, MICROSECOND, NANOSECOND.
      const scale = t.typeId === Type.Date ? (unit === 0 ? 86_400_000 : 1) : ([1000, 1, 1e-3, 1e-6][unit] ?? 1);
      if (vals instanceof BigInt64Array) {
        const ms = int64ToNumbers(vals, scale, n);
        for (let i = 0; i < n; i++) out[i] = isValid(data, i) ? new Date(ms[i]) : null;
        return out;
      }
      for (let i = 0; i < n; i++) out[i] = isValid(data, i) ? new Date(Number(vals[i]) * scale) : null;
      return out;
    }
    case Type.Bool: {
      const vals = data.values as Uint8Array;
      for (let i = 0; i < n; i++) {
        const j = off + i;
        out[i] = isValid(data, i) ? ((vals[j >> 3] >> (j & 7)) & 1) === 1 : null;
      }
      return out;
    }
    case Type.List: {
      const vo = data.valueOffsets as Int32Array;
      const child = valuesOf(data.children[0]);
      for (let i = 0; i < n; i++) out[i] = isValid(data, i) ? child.slice(vo[i] - vo[0], vo[i + 1] - vo[0]) : null;
      return out;
    }
    case Type.Struct: {
      const fields = (t as Struct).children;
      const cols = data.children.map((c) => valuesOf(c));
      for (let i = 0; i < n; i++) {
        if (!isValid(data, i)) {
          out[i] = null;
          continue;
        }
        const o: Record<string, unknown> = {};
        for (let k = 0; k < fields.length; k++) o[fields[k].name] = cols[k][i];
        out[i] = o;
      }
      return out;
    }
    case Type.Map: {
      // Maps read as plain objects (keys as strings), which is how JSON writes them.
      const vo = data.valueOffsets as Int32Array;
      const entries = data.children[0];
      const keys = valuesOf(entries.children[0]);
      const vals = valuesOf(entries.children[1]);
      for (let i = 0; i < n; i++) {
        if (!isValid(data, i)) {
          out[i] = null;
          continue;
        }
        const o: Record<string, unknown> = {};
        for (let j = vo[i] - vo[0]; j < vo[i + 1] - vo[0]; j++) o[String(keys[j])] = vals[j];
        out[i] = o;
      }
      return out;
    }
    case Type.Dictionary: {
      const dict = valuesOf((data.dictionary as unknown as { data: Data[] }).data[0]);
      const idx = data.values as Int32Array;
      for (let i = 0; i < n; i++) out[i] = isValid(data, i) ? dict[idx[i]] : null;
      return out;
    }
    case Type.Null:
      return out.fill(null);
    default: {
      const vec = data as unknown as { get?: (i: number) => unknown };
      for (let i = 0; i < n; i++) out[i] = vec.get ? vec.get(i) : null;
      return out;
    }
  }
}

/** Whether `bytes` holds the same `len` bytes at `a` and at `b`. */
function sameBytes(bytes: Uint8Array, a: number, b: number, len: number): boolean {
  for (let k = 0; k < len; k++) if (bytes[a + k] !== bytes[b + k]) return false;
  return true;
}

/** Rows of a batch as plain objects (see valuesOf for the value mapping). */
export function rowsFromBatch(batch: RecordBatch): Record<string, unknown>[] {
  const n = batch.numRows;
  const cols = batch.data.children.map((c) => valuesOf(c));
  const make = rowBuilder(batch.schema.fields.map((f) => f.name));
  const rows = new Array<Record<string, unknown>>(n);
  for (let i = 0; i < n; i++) rows[i] = make(cols, i);
  return rows;
}

/** Builds the row object of row `r` from one JS array per column. */
export type RowBuilder = (cols: readonly ArrayLike<unknown>[], r: number) => Record<string, unknown>;

const rowBuilders = new Map<string, RowBuilder>();

/**
 * A {@link RowBuilder} for rows with fields `names` (column i is field i). It creates each row with one
 * object literal, compiled once per list of names: 2-3x faster than adding the properties one by one, and
 * every row gets the same shape. A `__proto__` field falls back to defining the properties one by one
 * (in a literal that name would set the prototype).
 */
export function rowBuilder(names: readonly string[]): RowBuilder {
  const id = JSON.stringify(names);
  let make = rowBuilders.get(id);
  if (make === undefined) {
    if (names.includes('__proto__')) {
      const own = [...names];
      make = (cols, r) => {
        const o: Record<string, unknown> = {};
        for (let k = 0; k < own.length; k++)
          Object.defineProperty(o, own[k], { value: cols[k][r], writable: true, enumerable: true, configurable: true });
        return o;
      };
    } else {
      const fields = names.map((name, k) => `${JSON.stringify(name)}: cols[${k}][r]`).join(', ');
      make = new Function('cols', 'r', `return { ${fields} };`) as RowBuilder;
    }
    rowBuilders.set(id, make);
  }
  return make;
}

/** Field lookup that names the available columns when one is missing. */
export function fieldIndex(schema: Schema, name: string): number {
  return schema.fields.findIndex((f: Field) => f.name === name);
}
