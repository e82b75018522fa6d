/**
 * Schema-directed JSON-lines decoding straight from bytes into Arrow buffers: the fast path of
 * {@link decodeJsonLines} for byte input (files, socket logs), and of the Kafka source's JSON values, which
 * {@link decodeJsonRecords} reads in place in the fetched response (one object per record, not per line).
 *
 * Why: `JSON.parse` per line builds an object per row and a JS string per field, the converters copy them
 * into JS arrays, and building the utf8 columns encodes every string back to bytes. This scanner walks the
 * bytes once, copies string field bytes as they are into the utf8 columns (the input is checked to be
 * valid UTF-8 up front), reads numbers and canonical ISO timestamps from the bytes, and validates what it
 * skips (fields not in the schema) with JSON's grammar, so no row object and, for clean lines, no JS
 * string is made.
 *
 * It decodes exactly what the general decoder would, or gives up: any line it does not fully understand
 * (malformed JSON, a value that does not fit its field, a field given twice, nesting too deep) makes
 * {@link decodeJsonBytes} return null, and the caller decodes the whole input the general way, which owns
 * the malformed-record policy. Rare shapes that are valid (escaped strings, a number or object read into a
 * string field) are decoded here through `JSON.parse` of that one value.
 */
import { isUtf8 } from 'node:buffer';
import { type Data, type DataType, type Field, makeData, RecordBatch, type Schema, Struct, Type } from 'apache-arrow';
import { mkData } from '../../arrow/columns.js';
import { grown } from '../../util/grown.js';
import { DEFAULT_CORRUPT_COLUMN, parseTimestamp } from './common.js';

/** The text a string field holds for a JSON value that is not a string: its JSON text, as in Spark. */
export function jsonText(v: unknown): string {
  return typeof v === 'string' ? v : typeof v === 'object' ? JSON.stringify(v) : String(v);
}

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
const encoder = new TextEncoder();

/** Thrown (not an Error: no stack is captured) when the input needs the general decoder. */
const BAIL = { bail: true } as const;

const QUOTE = 34;
const BACKSLASH = 92;
const COMMA = 44;
const COLON = 58;
const LBRACE = 123;
const RBRACE = 125;
const LBRACKET = 91;
const RBRACKET = 93;
const NEWLINE = 10;
const TWO_32 = 2 ** 32;
const TWO_63 = 2 ** 63;

// Column kinds the scanner decodes.
const K_UTF8 = 0;
const K_F64 = 1;
const K_I32 = 2;
const K_I64 = 3;
const K_BOOL = 4;
const K_TIMESTAMP = 5;
const K_STRUCT = 6;

/** The kind of a supported type, or -1 (the input then goes to the general decoder). */
function kindOf(type: DataType): number {
  switch (type.typeId) {
    case Type.Utf8:
      return K_UTF8;
    case Type.Float:
      return K_F64;
    case Type.Int: {
      const t = type as unknown as { bitWidth: number; isSigned: boolean };
      if (!t.isSigned) return -1;
      return t.bitWidth === 32 ? K_I32 : t.bitWidth === 64 ? K_I64 : -1;
    }
    case Type.Bool:
      return K_BOOL;
    case Type.Timestamp:
      return K_TIMESTAMP;
    case Type.Struct:
      return (type as Struct).children.every((f) => kindOf(f.type) >= 0) ? K_STRUCT : -1;
    default:
      return -1;
  }
}

/** One column being filled: validity per row (1 byte each until the end) and the values of its kind. */
class Column {
  n = 0;
  nulls = 0;
  valid: Uint8Array;
  /** utf8: value offsets; int32: values; int64 and timestamps: two 32-bit words per value. */
  ints: Int32Array;
  /** utf8 bytes; bool values (one byte per row). */
  bytes: Uint8Array;
  /** Bytes used in `bytes` (utf8). */
  pos = 0;
  f64: Float64Array;
  /** The struct's fields (struct columns only). */
  readonly level: Level | null;

  constructor(
    readonly field: Field,
    readonly kind: number,
    private cap: number,
  ) {
    this.valid = new Uint8Array(cap);
    this.ints = new Int32Array(
      kind === K_UTF8 ? cap + 1 : kind === K_I32 ? cap : kind === K_I64 || kind === K_TIMESTAMP ? cap * 2 : 0,
    );
    this.bytes = new Uint8Array(kind === K_UTF8 ? cap * 16 + 64 : kind === K_BOOL ? cap : 0);
    this.f64 = new Float64Array(kind === K_F64 ? cap : 0);
    this.level = kind === K_STRUCT ? new Level((field.type as Struct).children, cap, -1) : null;
  }

  /** Makes room for one more row. */
  room(): void {
    if (this.n < this.cap) return;
    const cap = this.cap * 2 + 16;
    this.valid = grown(this.valid, cap);
    if (this.kind === K_UTF8) this.ints = grown(this.ints, cap + 1);
    else if (this.kind === K_I32) this.ints = grown(this.ints, cap);
    else if (this.kind === K_I64 || this.kind === K_TIMESTAMP) this.ints = grown(this.ints, cap * 2);
    else if (this.kind === K_BOOL) this.bytes = grown(this.bytes, cap);
    else if (this.kind === K_F64) {
      const f = new Float64Array(cap);
      f.set(this.f64);
      this.f64 = f;
    }
    this.cap = cap;
  }

  /** Makes room for `len` more utf8 bytes. */
  byteRoom(len: number): void {
    if (this.pos + len <= this.bytes.length) return;
    this.bytes = grown(this.bytes, Math.max(this.bytes.length * 2, this.pos + len + 64));
  }

  appendNull(): void {
    this.room();
    const i = this.n++;
    this.nulls++;
    // valid[i] is 0 already; fixed-width values stay 0, as the general decoder writes them.
    if (this.kind === K_UTF8) this.ints[i + 1] = this.pos;
    else if (this.level !== null) this.level.appendNullRow();
  }

  /** Ends a utf8 value whose bytes were written at [previous end, pos). */
  endString(): void {
    const i = this.n++;
    this.valid[i] = 1;
    this.ints[i + 1] = this.pos;
  }

  appendString(s: string): void {
    this.room();
    this.byteRoom(s.length * 3);
    const buf = this.bytes;
    let p = this.pos;
    let j = 0;
    for (; j < s.length; j++) {
      const c = s.charCodeAt(j);
      if (c > 127) break;
      buf[p++] = c;
    }
    if (j < s.length) p += encoder.encodeInto(s.slice(j), buf.subarray(p)).written;
    this.pos = p;
    this.endString();
  }

  appendNumber(v: number): void {
    this.room();
    const i = this.n++;
    this.valid[i] = 1;
    switch (this.kind) {
      case K_F64:
        this.f64[i] = v;
        break;
      case K_I32:
        this.ints[i] = v | 0;
        break;
      default: {
        // Two's complement words of an integer below 2^63 in magnitude (exact: powers of two divide exactly).
        const hi = Math.floor(v / TWO_32);
        this.ints[2 * i] = (v - hi * TWO_32) | 0;
        this.ints[2 * i + 1] = hi | 0;
      }
    }
  }

  appendBool(v: boolean): void {
    this.room();
    const i = this.n++;
    this.valid[i] = 1;
    this.bytes[i] = v ? 1 : 0;
  }

  /** A struct value: the fields are appended by the caller through `level`. */
  appendStructValid(): void {
    this.room();
    this.valid[this.n++] = 1;
  }

  data(): Data {
    const type = this.field.type;
    const length = this.n;
    const nullCount = this.nulls;
    const nullBitmap = nullCount === 0 ? undefined : packBits(this.valid, length);
    switch (this.kind) {
      case K_UTF8:
        return mkData({
          type,
          length,
          nullCount,
          nullBitmap,
          valueOffsets: this.ints.subarray(0, length + 1),
          data: this.bytes.subarray(0, this.pos),
        });
      case K_F64:
        return mkData({ type, length, nullCount, nullBitmap, data: this.f64.subarray(0, length) });
      case K_I32:
        return mkData({ type, length, nullCount, nullBitmap, data: this.ints.subarray(0, length) });
      case K_I64:
      case K_TIMESTAMP:
        return mkData({ type, length, nullCount, nullBitmap, data: new BigInt64Array(this.ints.buffer, 0, length) });
      case K_BOOL:
        return mkData({ type, length, nullCount, nullBitmap, data: packBits(this.bytes, length) });
      default:
        return mkData({ type, length, nullCount, nullBitmap, children: this.level!.columns.map((c) => c.data()) });
    }
  }
}

function packBits(bytes: Uint8Array, n: number): Uint8Array {
  const out = new Uint8Array((n + 7) >> 3);
  for (let i = 0; i < n; i++) if (bytes[i] !== 0) out[i >> 3] |= 1 << (i & 7);
  return out;
}

/** The fields of one JSON object level (the row, or a struct): their columns and JSON names as bytes. */
class Level {
  readonly columns: Column[];
  /** JSON names as bytes; null for a field not read by bytes (see the constructor). */
  readonly names: (Uint8Array | null)[];
  /** Row in which each field was last given (a field given twice in one object is left to the general decoder). */
  readonly stamps: Float64Array;
  /** The field expected next: producers write fields in the same order on every line. */
  next = 0;

  /** `skip`: index of a field that is not read from the JSON (the corrupt-record column), or -1. */
  constructor(
    fields: readonly Field[],
    cap: number,
    readonly skip: number,
  ) {
    this.columns = fields.map((f) => new Column(f, kindOf(f.type), cap));
    // A name with a quote, backslash or control character only matches escaped keys (see Scanner.key).
    this.names = fields.map((f, k) =>
      // biome-ignore lint/suspicious/noControlCharactersInRegex: JSON escapes control characters in keys
      k === skip || /["\\\u0000-\u001f]/.test(f.name) ? null : encoder.encode(f.name),
    );
    this.stamps = new Float64Array(fields.length).fill(-1);
  }

  /** A null struct: every field null, nested structs included. */
  appendNullRow(): void {
    for (const c of this.columns) c.appendNull();
  }
}

/** Walks the bytes of one input; see the module comment. */
class Scanner {
  p = 0;
  row = 0;
  private view: Buffer;
  private cachedMinute = new Uint8Array(16);
  private cachedMinuteMs = NaN;

  constructor(
    private b: Uint8Array,
    private end: number,
  ) {
    this.view = Buffer.from(b.buffer, b.byteOffset, b.byteLength);
  }

  /** Scans other bytes from now on (records that live in another buffer). */
  reset(b: Uint8Array): void {
    this.b = b;
    this.end = b.length;
    this.view = Buffer.from(b.buffer, b.byteOffset, b.byteLength);
  }

  /**
   * Decodes one record, the bytes [start, end) of the input, as exactly one JSON object with only JSON
   * whitespace (newlines included) around it, as `JSON.parse` of the record's text would; throws BAIL
   * otherwise. The bytes after `end` may be anything (the next record): reading them only happens on the
   * way to a BAIL, because a scan that went past `end` cannot come back to it.
   */
  record(top: Level, start: number, end: number): void {
    const b = this.b;
    this.end = end;
    let p = start;
    while (p < end && isJsonWs(b[p])) p++;
    if (p >= end || b[p] !== LBRACE) throw BAIL;
    this.p = p;
    this.object(top);
    p = this.p;
    while (p < end && isJsonWs(b[p])) p++;
    if (p !== end) throw BAIL;
    this.row++;
  }

  /** A record without a value (a Kafka tombstone): a row whose fields are all null, as for `{}`. */
  nullRecord(top: Level): void {
    top.appendNullRow();
    this.row++;
  }

  /** Decodes every line into `top`'s columns; throws BAIL for input the general decoder must read. */
  lines(top: Level): void {
    const b = this.b;
    const end = this.end;
    while (this.p < end) {
      this.ws();
      if (this.p >= end) break;
      if (b[this.p] === NEWLINE) {
        this.p++;
        continue;
      }
      if (b[this.p] !== LBRACE) throw BAIL;
      this.object(top);
      this.ws();
      if (this.p < end) {
        if (b[this.p] !== NEWLINE) throw BAIL;
        this.p++;
      }
      this.row++;
    }
  }

  /** JSON whitespace within a line (a newline ends the line). */
  private ws(): void {
    const b = this.b;
    let p = this.p;
    for (let c = b[p]; c === 32 || c === 9 || c === 13; c = b[++p]);
    this.p = p;
  }

  private object(level: Level): void {
    const b = this.b;
    const row = this.row;
    this.p++;
    this.ws();
    if (b[this.p] === RBRACE) this.p++;
    else {
      for (;;) {
        if (b[this.p] !== QUOTE) throw BAIL;
        const k = this.key(level);
        // Whitespace checks only where there is some: compact JSON has none.
        if (b[this.p] !== COLON) {
          this.ws();
          if (b[this.p] !== COLON) throw BAIL;
        }
        if (isWs(b[++this.p])) this.ws();
        if (k < 0) this.skipValue();
        else {
          if (level.stamps[k] === row) throw BAIL;
          level.stamps[k] = row;
          this.value(level.columns[k]);
        }
        let c = b[this.p];
        if (isWs(c)) {
          this.ws();
          c = b[this.p];
        }
        if (c === COMMA) {
          if (isWs(b[++this.p])) this.ws();
          continue;
        }
        if (c === RBRACE) {
          this.p++;
          break;
        }
        throw BAIL;
      }
    }
    const stamps = level.stamps;
    for (let k = 0; k < stamps.length; k++) if (stamps[k] !== row) level.columns[k].appendNull();
  }

  /** Reads a key (at its opening quote): the index of its field, or -1 when the schema does not have it. */
  private key(level: Level): number {
    const b = this.b;
    const start = this.p + 1;
    const names = level.names;
    const nf = names.length;
    // The field expected next, compared in place: its name has no quote, backslash or control character,
    // so equal bytes followed by a quote are exactly that key.
    const next = level.next;
    const expected = names[next];
    if (expected !== null) {
      const len = expected.length;
      let j = 0;
      while (j < len && expected[j] === b[start + j]) j++;
      if (j === len && b[start + len] === QUOTE) {
        this.p = start + len + 1;
        level.next = next + 1 === nf ? 0 : next + 1;
        return next;
      }
    }
    let q = start;
    for (let c = b[q]; c !== QUOTE; c = b[++q]) {
      if (c === BACKSLASH || !(c >= 32)) return this.escapedKey(level);
    }
    this.p = q + 1;
    const len = q - start;
    for (let k = 0; k < nf; k++) {
      const name = names[k];
      if (name === null || name.length !== len) continue;
      let j = 0;
      while (j < len && name[j] === b[start + j]) j++;
      if (j === len) {
        level.next = k + 1 === nf ? 0 : k + 1;
        return k;
      }
    }
    return -1;
  }

  private escapedKey(level: Level): number {
    const start = this.p;
    this.skipString();
    const name = JSON.parse(this.view.toString('utf8', start, this.p)) as string;
    for (let k = 0; k < level.columns.length; k++)
      if (k !== level.skip && level.columns[k].field.name === name) return k;
    return -1;
  }

  /** Reads the value at p into column `col` (or its struct's columns). */
  private value(col: Column): void {
    const b = this.b;
    const c = b[this.p];
    if (c === 110) {
      this.literal(NULL_BYTES);
      col.appendNull();
      return;
    }
    switch (col.kind) {
      case K_UTF8:
        if (c === QUOTE) this.stringInto(col);
        else this.genericText(col);
        return;
      case K_F64:
        col.appendNumber(this.number());
        return;
      case K_I32: {
        const v = this.number();
        if (!Number.isInteger(v) || v < -2147483648 || v > 2147483647) throw BAIL;
        col.appendNumber(v);
        return;
      }
      case K_I64: {
        const v = this.number();
        if (!Number.isInteger(v) || Math.abs(v) >= TWO_63) throw BAIL;
        col.appendNumber(v);
        return;
      }
      case K_BOOL:
        if (c === 116) {
          this.literal(TRUE_BYTES);
          col.appendBool(true);
          return;
        }
        if (c === 102) {
          this.literal(FALSE_BYTES);
          col.appendBool(false);
          return;
        }
        throw BAIL;
      case K_TIMESTAMP: {
        const ms = c === QUOTE ? this.timestamp() : this.number();
        if (!Number.isFinite(ms)) throw BAIL;
        const v = Math.trunc(ms);
        if (Math.abs(v) >= TWO_63) throw BAIL;
        col.appendNumber(v);
        return;
      }
      default:
        if (c !== LBRACE) throw BAIL;
        col.appendStructValid();
        this.object(col.level!);
    }
  }

  /** Copies a string's bytes into a utf8 column; an escaped string is decoded by JSON.parse. */
  private stringInto(col: Column): void {
    const b = this.b;
    const start = this.p + 1;
    let q = start;
    for (let c = b[q]; c !== QUOTE; c = b[++q]) {
      // A control character is invalid JSON; past the end of the input b[q] is undefined.
      if (c === BACKSLASH || !(c >= 32)) {
        this.genericText(col);
        return;
      }
    }
    const len = q - start;
    col.room();
    col.byteRoom(len);
    const out = col.bytes;
    const o = col.pos;
    if (len > 64) out.set(b.subarray(start, q), o);
    else for (let j = 0; j < len; j++) out[o + j] = b[start + j];
    col.pos = o + len;
    col.endString();
    this.p = q + 1;
  }

  /** A value read into a string field the general way: JSON.parse of its text (validated by skipValue first). */
  private genericText(col: Column): void {
    const start = this.p;
    this.skipValue();
    col.appendString(jsonText(JSON.parse(this.view.toString('utf8', start, this.p))));
  }

  /** A timestamp string: canonical ISO through a cached minute prefix of bytes, anything else through parseTimestamp. */
  private timestamp(): number {
    const b = this.b;
    const start = this.p + 1;
    // `YYYY-MM-DDTHH:MM:SS.sssZ` whose minute is the cached one (valid ASCII without quotes): only the
    // seconds and milliseconds are read.
    if (
      b[start + 24] === QUOTE &&
      b[start + 23] === 90 &&
      b[start + 19] === 46 &&
      b[start + 16] === COLON &&
      !Number.isNaN(this.cachedMinuteMs) &&
      sameBytes(this.cachedMinute, b, start, 16)
    ) {
      const sec = digit(b[start + 17]) * 10 + digit(b[start + 18]);
      const t =
        this.cachedMinuteMs +
        sec * 1000 +
        digit(b[start + 20]) * 100 +
        digit(b[start + 21]) * 10 +
        digit(b[start + 22]);
      if (sec <= 60 && !Number.isNaN(t)) {
        this.p = start + 25;
        return t;
      }
    }
    let q = start;
    let ascii = true;
    for (let c = b[q]; c !== QUOTE; c = b[++q]) {
      if (c === BACKSLASH || !(c >= 32)) {
        const s = this.p;
        this.skipString();
        return parseTimestamp(JSON.parse(this.view.toString('utf8', s, this.p)) as string);
      }
      if (c > 127) ascii = false;
    }
    this.p = q + 1;
    if (
      ascii &&
      q - start === 24 &&
      b[start + 23] === 90 &&
      b[start + 10] === 84 &&
      b[start + 16] === COLON &&
      b[start + 19] === 46
    ) {
      const sec = digit(b[start + 17]) * 10 + digit(b[start + 18]);
      const ms = digit(b[start + 20]) * 100 + digit(b[start + 21]) * 10 + digit(b[start + 22]);
      if (sec <= 60) {
        if (Number.isNaN(this.cachedMinuteMs) || !sameBytes(this.cachedMinute, b, start, 16)) {
          this.cachedMinuteMs = parseTimestamp(`${this.view.toString('latin1', start, start + 16)}Z`);
          this.cachedMinute.set(b.subarray(start, start + 16));
        }
        const t = this.cachedMinuteMs + sec * 1000 + ms;
        if (!Number.isNaN(t)) return t;
      }
    }
    return parseTimestamp(this.view.toString('utf8', start, q));
  }

  /** Reads a JSON number (validating its grammar); throws BAIL when there is none. */
  private number(): number {
    const b = this.b;
    const start = this.p;
    let q = start;
    let neg = false;
    if (b[q] === 45) {
      neg = true;
      q++;
    }
    let c = b[q];
    if (c === 48) c = b[++q];
    else if (c >= 49 && c <= 57) {
      let v = 0;
      while (c >= 48 && c <= 57) {
        v = v * 10 + (c - 48);
        c = b[++q];
      }
      // Up to 15 digits the running value is exact; longer ones are rounded by Number() below.
      if (c !== 46 && c !== 101 && c !== 69 && q - start - (neg ? 1 : 0) <= 15) {
        this.p = q;
        return neg ? -v : v;
      }
    } else throw BAIL;
    if (c === 46) {
      const intEnd = q;
      c = b[++q];
      if (!(c >= 48 && c <= 57)) throw BAIL;
      let v = 0;
      const fracStart = q;
      while (c >= 48 && c <= 57) {
        v = v * 10 + (c - 48);
        c = b[++q];
      }
      // A decimal of at most 15 digits in all and no exponent: its digits as an integer (exact) divided by
      // an exact power of ten is the correctly rounded value (Clinger's fast path), as Number() gives it.
      const digits = intEnd - start - (neg ? 1 : 0) + (q - fracStart);
      if (c !== 101 && c !== 69 && digits <= 15) {
        for (let j = neg ? start + 1 : start; j < intEnd; j++) v += (b[j] - 48) * POW10[intEnd - 1 - j + q - fracStart];
        this.p = q;
        return neg ? -v / POW10[q - fracStart] : v / POW10[q - fracStart];
      }
    }
    if (c === 101 || c === 69) {
      c = b[++q];
      if (c === 43 || c === 45) c = b[++q];
      if (!(c >= 48 && c <= 57)) throw BAIL;
      while (c >= 48 && c <= 57) c = b[++q];
    }
    this.p = q;
    if (q - start === 1 || (neg && q - start === 2 && b[start + 1] === 48)) return neg ? -0 : 0;
    return Number(this.view.toString('latin1', start, q));
  }

  private literal(bytes: Uint8Array): void {
    const b = this.b;
    const p = this.p;
    for (let j = 0; j < bytes.length; j++) if (b[p + j] !== bytes[j]) throw BAIL;
    this.p = p + bytes.length;
  }

  /** Skips a string (at its opening quote), checking its escapes and that it has no control characters. */
  private skipString(): void {
    const b = this.b;
    const end = this.end;
    let q = this.p + 1;
    for (;;) {
      if (q >= end) throw BAIL;
      const c = b[q];
      if (c === QUOTE) break;
      if (c < 32) throw BAIL;
      if (c === BACKSLASH) {
        const e = b[q + 1];
        if (e === 117) {
          for (let j = 2; j < 6; j++) if (!isHex(b[q + j])) throw BAIL;
          q += 6;
          continue;
        }
        if (e !== QUOTE && e !== BACKSLASH && e !== 47 && e !== 98 && e !== 102 && e !== 110 && e !== 114 && e !== 116)
          throw BAIL;
        q += 2;
        continue;
      }
      q++;
    }
    this.p = q + 1;
  }

  /** Skips any JSON value, checking its grammar (a field not in the schema must still be valid JSON). */
  private skipValue(): void {
    const b = this.b;
    const c = b[this.p];
    switch (c) {
      case QUOTE:
        this.skipString();
        return;
      case 116:
        this.literal(TRUE_BYTES);
        return;
      case 102:
        this.literal(FALSE_BYTES);
        return;
      case 110:
        this.literal(NULL_BYTES);
        return;
      case LBRACE: {
        this.p++;
        this.ws();
        if (b[this.p] === RBRACE) {
          this.p++;
          return;
        }
        for (;;) {
          if (b[this.p] !== QUOTE) throw BAIL;
          this.skipString();
          this.ws();
          if (b[this.p] !== COLON) throw BAIL;
          this.p++;
          this.ws();
          this.skipValue();
          this.ws();
          const d = b[this.p++];
          if (d === RBRACE) return;
          if (d !== COMMA) throw BAIL;
          this.ws();
        }
      }
      case LBRACKET: {
        this.p++;
        this.ws();
        if (b[this.p] === RBRACKET) {
          this.p++;
          return;
        }
        for (;;) {
          this.skipValue();
          this.ws();
          const d = b[this.p++];
          if (d === RBRACKET) return;
          if (d !== COMMA) throw BAIL;
          this.ws();
        }
      }
      default:
        this.number();
    }
  }
}

/** 10^0 … 10^22, every one exact in a double. */
const POW10 = Float64Array.from({ length: 23 }, (_, k) => 10 ** k);

const TRUE_BYTES = encoder.encode('true');
const FALSE_BYTES = encoder.encode('false');
const NULL_BYTES = encoder.encode('null');

function isWs(c: number): boolean {
  return c === 32 || c === 9 || c === 13;
}

/** Whitespace JSON allows around a value: a record's newlines included, unlike a line's. */
function isJsonWs(c: number): boolean {
  return c === 32 || c === 9 || c === 13 || c === NEWLINE;
}

function digit(c: number): number {
  const d = c - 48;
  return d >= 0 && d <= 9 ? d : NaN;
}

function isHex(c: number): boolean {
  return (c >= 48 && c <= 57) || (c >= 65 && c <= 70) || (c >= 97 && c <= 102);
}

function sameBytes(a: Uint8Array, b: Uint8Array, start: number, len: number): boolean {
  for (let j = 0; j < len; j++) if (a[j] !== b[start + j]) return false;
  return true;
}

function countLines(bytes: Uint8Array): number {
  let n = 1;
  for (let i = bytes.indexOf(NEWLINE); i >= 0; i = bytes.indexOf(NEWLINE, i + 1)) n++;
  return n;
}

/**
 * Decodes JSON lines from bytes into one record batch of `schema`, or returns null when the input needs
 * the general decoder (see the module comment): not valid UTF-8, a type the scanner does not read
 * (lists, binary, dates), or a line that is malformed or does not fit the schema.
 * `corruptColumn` names the corrupt-record column (left null: every row decoded here is well formed).
 */
export function decodeJsonBytes(
  bytes: Uint8Array,
  schema: Schema,
  corruptColumn = DEFAULT_CORRUPT_COLUMN,
): RecordBatch | null {
  if (!LITTLE_ENDIAN || !schema.fields.every((f) => kindOf(f.type) >= 0) || !isUtf8(bytes)) return null;
  const skip = schema.fields.findIndex((f) => f.name === corruptColumn && f.type.typeId === Type.Utf8);
  const top = new Level(schema.fields, countLines(bytes), skip);
  const scanner = new Scanner(bytes, bytes.length);
  try {
    scanner.lines(top);
  } catch (err) {
    // A stack overflow (nesting deeper than the scanner's recursion allows) goes the general way too.
    if (err === BAIL || err instanceof RangeError) return null;
    throw err;
  }
  return batchOf(schema, top, scanner.row);
}

/**
 * Values held as spans of a few buffers: value i is bytes [starts[i], ends[i]) of `chunks[chunkOf[i]]`, null
 * where `starts[i]` is negative (a Kafka source's record columns).
 */
export interface ByteSpans {
  length: number;
  chunks: readonly Uint8Array[];
  chunkOf: Int32Array;
  starts: Int32Array;
  ends: Int32Array;
}

/**
 * Decodes records that each hold one JSON object (Kafka record values: views into the fetched response,
 * read in place) into one record batch of `schema`, one row per record in order, or returns null when the
 * records need the general decoder: a type the scanner does not read, a value that is not valid UTF-8, not
 * exactly one JSON object (blank, two objects, malformed), or that does not fit the schema. A null value
 * is a row of nulls, as the text `{}` would be. `corruptColumn` is left null, as in {@link decodeJsonBytes}.
 */
export function decodeJsonRecords(
  values: readonly (Uint8Array | null)[],
  schema: Schema,
  corruptColumn = DEFAULT_CORRUPT_COLUMN,
): RecordBatch | null {
  const n = values.length;
  const spans: ByteSpans = {
    length: n,
    chunks: [],
    chunkOf: new Int32Array(n),
    starts: new Int32Array(n),
    ends: new Int32Array(n),
  };
  const chunkIndex = new Map<ArrayBufferLike, number>();
  for (let i = 0; i < n; i++) {
    const v = values[i];
    if (v === null) {
      spans.starts[i] = -1;
      continue;
    }
    let c = chunkIndex.get(v.buffer);
    if (c === undefined) {
      c = spans.chunks.length;
      (spans.chunks as Uint8Array[]).push(new Uint8Array(v.buffer));
      chunkIndex.set(v.buffer, c);
    }
    spans.chunkOf[i] = c;
    spans.starts[i] = v.byteOffset;
    spans.ends[i] = v.byteOffset + v.length;
  }
  return decodeJsonSpans(spans, schema, corruptColumn);
}

/** {@link decodeJsonRecords} over values given as spans of their buffers, with no view per value. */
export function decodeJsonSpans(
  values: ByteSpans,
  schema: Schema,
  corruptColumn = DEFAULT_CORRUPT_COLUMN,
): RecordBatch | null {
  if (!LITTLE_ENDIAN || !schema.fields.every((f) => kindOf(f.type) >= 0)) return null;
  const skip = schema.fields.findIndex((f) => f.name === corruptColumn && f.type.typeId === Type.Utf8);
  const top = new Level(schema.fields, values.length, skip);
  let scanner: Scanner | null = null;
  let chunk = -1;
  try {
    for (let i = 0; i < values.length; i++) {
      const start = values.starts[i];
      if (start < 0) {
        scanner ??= new Scanner(new Uint8Array(0), 0);
        scanner.nullRecord(top);
        continue;
      }
      const end = values.ends[i];
      const c = values.chunkOf[i];
      const bytes = values.chunks[c];
      if (!isUtf8Span(bytes, start, end)) return null;
      // Positions are taken in the whole chunk, so consecutive records of one fetch share a scanner.
      if (c !== chunk) {
        chunk = c;
        if (scanner) scanner.reset(bytes);
        else scanner = new Scanner(bytes, bytes.length);
      }
      scanner!.record(top, start, end);
    }
  } catch (err) {
    if (err === BAIL || err instanceof RangeError) return null;
    throw err;
  }
  return batchOf(schema, top, values.length);
}

/** Whether bytes [start, end) of `bytes` are UTF-8: ASCII is checked in place, anything else by Node. */
function isUtf8Span(bytes: Uint8Array, start: number, end: number): boolean {
  for (let i = start; i < end; i++) if (bytes[i] >= 0x80) return isUtf8(bytes.subarray(start, end));
  return true;
}

function batchOf(schema: Schema, top: Level, length: number): RecordBatch {
  const children = top.columns.map((c) => c.data());
  return new RecordBatch(schema, makeData({ type: new Struct(schema.fields), length, nullCount: 0, children }));
}
