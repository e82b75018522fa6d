/**
 * Text encodings of Arrow tables for the file sink: JSON lines and CSV, written as UTF-8 bytes. String
 * columns are copied from their Arrow bytes, escaped or quoted on the way, without decoding them into JS
 * strings (decoding, re-escaping and joining strings cost 5× more, most of it in garbage collection); a
 * dictionary column encodes each dictionary entry once; other types are formatted once per value. No row
 * objects are built.
 *
 * Values: timestamps are ISO-8601 UTC strings (`2024-05-01T10:00:00.000Z`), 64-bit integers keep all their
 * digits, binary is base64, lists and structs are JSON. In JSON, null fields are written as `null` and
 * NaN/±Infinity (which JSON cannot hold) as null. In CSV, null is an empty field, the empty string is `""`,
 * and a field holding `,`, `"`, CR or LF is quoted with `"` doubled (RFC 4180); lines end with `\n`.
 */
import { type Data, type RecordBatch, type Table, Type } from 'apache-arrow';
import { isValid, valuesOf } from '../arrow/index.js';

/** The text formats of the file sink. */
export type TextFormat = 'json' | 'csv';

/** The file extension of each format. */
export const TEXT_EXTENSIONS: Record<TextFormat, string> = { json: '.jsonl', csv: '.csv' };

/** Rows per encoded chunk: bounds the memory of a chunk while writing a large batch. */
const CHUNK_ROWS = 16384;

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const CR = 0x0d;
const LF = 0x0a;
const HEX = '0123456789abcdef';
const JSON_ESCAPES: Record<number, string> = {
  8: '\\b',
  9: '\\t',
  10: '\\n',
  12: '\\f',
  13: '\\r',
  34: '\\"',
  92: '\\\\',
};

const encoder = new TextEncoder();

/** UTF-8 bytes appended to a growing buffer. */
class ByteWriter {
  private buf: Uint8Array;
  private pos = 0;

  constructor(capacity = 1 << 16) {
    this.buf = new Uint8Array(capacity);
  }

  private reserve(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const next = new Uint8Array(Math.max(this.buf.length * 2, this.pos + n));
    next.set(this.buf.subarray(0, this.pos));
    this.buf = next;
  }

  byte(b: number): void {
    this.reserve(1);
    this.buf[this.pos++] = b;
  }

  bytes(src: Uint8Array): void {
    this.reserve(src.length);
    this.buf.set(src, this.pos);
    this.pos += src.length;
  }

  /** Any JS string, with a fast path for ASCII (numbers, timestamps, keys). */
  text(s: string): void {
    const len = s.length;
    this.reserve(len * 3);
    const buf = this.buf;
    let p = this.pos;
    for (let j = 0; j < len; j++) {
      const c = s.charCodeAt(j);
      if (c > 127) {
        this.pos = p + encoder.encodeInto(s.slice(j), buf.subarray(p)).written;
        return;
      }
      buf[p++] = c;
    }
    this.pos = p;
  }

  /** `src[start, end)` as a JSON string literal: quotes, `"`, `\` and control bytes escaped, UTF-8 copied. */
  jsonString(src: Uint8Array, start: number, end: number): void {
    this.reserve((end - start) * 6 + 2);
    const buf = this.buf;
    let p = this.pos;
    buf[p++] = QUOTE;
    for (let k = start; k < end; k++) {
      const b = src[k];
      if (b >= 0x20 && b !== QUOTE && b !== BACKSLASH) {
        buf[p++] = b;
        continue;
      }
      const esc = JSON_ESCAPES[b] ?? `\\u00${HEX[b >> 4]}${HEX[b & 15]}`;
      for (let j = 0; j < esc.length; j++) buf[p++] = esc.charCodeAt(j);
    }
    buf[p++] = QUOTE;
    this.pos = p;
  }

  /** `src[start, end)` as one CSV field: quoted with `"` doubled when it holds `,` `"` CR or LF; `""` when empty. */
  csvField(src: Uint8Array, start: number, end: number): void {
    this.reserve((end - start) * 2 + 2);
    const buf = this.buf;
    // Copy while looking for a byte that needs quoting; most fields have none.
    let p = this.pos;
    let k = start;
    for (; k < end; k++) {
      const b = src[k];
      if (b === COMMA || b === QUOTE || b === CR || b === LF) break;
      buf[p++] = b;
    }
    if (k === end && start !== end) {
      this.pos = p;
      return;
    }
    p = this.pos;
    buf[p++] = QUOTE;
    for (let k = start; k < end; k++) {
      const b = src[k];
      buf[p++] = b;
      if (b === QUOTE) buf[p++] = QUOTE;
    }
    buf[p++] = QUOTE;
    this.pos = p;
  }

  /** The bytes written so far; the writer starts over with a fresh buffer. */
  take(): Uint8Array {
    const out = this.buf.subarray(0, this.pos);
    this.buf = new Uint8Array(Math.max(1024, this.buf.length));
    this.pos = 0;
    return out;
  }
}

/** Writes the cell of row `i` of one column. */
type CellWriter = (w: ByteWriter, i: number) => void;

/** Where the writers of one format differ. */
interface Format {
  /** Text of a null cell. */
  nul: string;
  /** Writes the UTF-8 bytes `src[start, end)` of a string cell. */
  string(w: ByteWriter, src: Uint8Array, start: number, end: number): void;
  /** Text of a cell whose formatted value is the string `s` (a timestamp, base64). */
  quoted(s: string): string;
  /** Text of a list or struct cell, given its JSON. */
  nested(json: string): string;
  /** Text of a double. */
  double(v: number): string;
}

function base64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
}

function nestedJson(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) => (v instanceof Uint8Array ? base64(v) : v));
}

const NEEDS_QUOTES = /[",\r\n]/;

/** One CSV field: quoted when it holds a separator, quote or line break (RFC 4180), `""` when empty. */
export function csvField(s: string): string {
  if (s === '') return '""';
  return NEEDS_QUOTES.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

const JSON_FORMAT: Format = {
  nul: 'null',
  string: (w, src, start, end) => w.jsonString(src, start, end),
  quoted: (s) => JSON.stringify(s),
  nested: (json) => json,
  double: (v) => (Number.isFinite(v) ? String(v) : 'null'),
};

const CSV_FORMAT: Format = {
  nul: '',
  string: (w, src, start, end) => w.csvField(src, start, end),
  quoted: csvField,
  nested: csvField,
  double: (v) => String(v),
};

const MS_PER_UNIT = [1000, 1, 1e-3, 1e-6];
const MAX_4_DIGIT_YEAR_MS = 253402300800000;

/**
 * ISO-8601 UTC text (`2024-05-01T10:30:00.005Z`) of a timestamp column, null where null. Events of a
 * batch mostly share their minute, so the `yyyy-MM-ddTHH:mm:` prefix is formatted once per minute
 * instead of a Date and toISOString per row.
 */
function isoTimestamps(data: Data): (string | null)[] {
  const vals = data.values as BigInt64Array;
  const scale = MS_PER_UNIT[(data.type as unknown as { unit: number }).unit] ?? 1;
  const out = new Array<string | null>(data.length);
  let minute = NaN;
  let prefix = '';
  for (let i = 0; i < data.length; i++) {
    if (!isValid(data, i)) {
      out[i] = null;
      continue;
    }
    const ms = Math.floor(Number(vals[i]) * scale);
    if (ms < 0 || ms >= MAX_4_DIGIT_YEAR_MS) {
      out[i] = new Date(ms).toISOString();
      continue;
    }
    const m = Math.floor(ms / 60000);
    if (m !== minute) {
      minute = m;
      prefix = new Date(m * 60000).toISOString().slice(0, 17);
    }
    const rest = ms - m * 60000;
    const sec = Math.floor(rest / 1000);
    const milli = rest - sec * 1000;
    out[i] = `${prefix}${sec < 10 ? '0' : ''}${sec}.${milli < 100 ? (milli < 10 ? '00' : '0') : ''}${milli}Z`;
  }
  return out;
}

/** Cell text of the columns that are formatted value by value. */
function valueTexts(data: Data, f: Format): string[] {
  const n = data.length;
  const out = new Array<string>(n);
  const { typeId } = data.type;
  if (typeId === Type.Int && (data.type as unknown as { bitWidth: number }).bitWidth === 64) {
    // Exact digits: valuesOf turns 64-bit integers into (rounded) numbers.
    const vals = data.values as BigInt64Array;
    for (let i = 0; i < n; i++) out[i] = isValid(data, i) ? String(vals[i]) : f.nul;
    return out;
  }
  if (typeId === Type.Timestamp) {
    const texts = isoTimestamps(data);
    for (let i = 0; i < n; i++) out[i] = texts[i] === null ? f.nul : f.quoted(texts[i]!);
    return out;
  }
  const vals = valuesOf(data);
  for (let i = 0; i < n; i++) {
    const v = vals[i];
    if (v === null || v === undefined) out[i] = f.nul;
    else if (typeId === Type.Int || typeId === Type.Bool) out[i] = String(v);
    else if (typeId === Type.Float) out[i] = f.double(v as number);
    else if (typeId === Type.Date) out[i] = f.quoted((v as Date).toISOString());
    else if (typeId === Type.Binary) out[i] = f.quoted(base64(v as Uint8Array));
    else out[i] = f.nested(nestedJson(v));
  }
  return out;
}

function cellWriter(data: Data, f: Format): CellWriter {
  if (data.type.typeId === Type.Utf8) {
    const vo = data.valueOffsets as Int32Array;
    const bytes = data.values as Uint8Array;
    return (w, i) => {
      if (isValid(data, i)) f.string(w, bytes, vo[i], vo[i + 1]);
      else w.text(f.nul);
    };
  }
  if (data.type.typeId === Type.Dictionary) {
    // Encode each dictionary entry once, then copy its bytes per row.
    const dict = (data.dictionary as unknown as { data: Data[] }).data[0];
    const entryWriter = cellWriter(dict, f);
    const scratch = new ByteWriter(256);
    const entries = Array.from({ length: dict.length }, (_, k) => {
      entryWriter(scratch, k);
      return scratch.take();
    });
    const idx = data.values as Int32Array;
    return (w, i) => {
      if (isValid(data, i)) w.bytes(entries[idx[i]]);
      else w.text(f.nul);
    };
  }
  const texts = valueTexts(data, f);
  return (w, i) => w.text(texts[i]);
}

function* chunksOf(table: Table): Generator<RecordBatch> {
  for (const batch of table.batches) {
    for (let start = 0; start < batch.numRows; start += CHUNK_ROWS) {
      yield batch.numRows <= CHUNK_ROWS ? batch : batch.slice(start, Math.min(batch.numRows, start + CHUNK_ROWS));
    }
  }
}

/** `table` as JSON lines, one object per row with the columns in schema order, in chunks of UTF-8 bytes. */
export function* jsonLines(table: Table): Generator<Uint8Array> {
  const keys = table.schema.fields.map((f, k) => encoder.encode(`${k === 0 ? '{' : ','}${JSON.stringify(f.name)}:`));
  const w = new ByteWriter();
  for (const batch of chunksOf(table)) {
    const cells = batch.data.children.map((c) => cellWriter(c, JSON_FORMAT));
    for (let r = 0; r < batch.numRows; r++) {
      if (keys.length === 0) w.byte(0x7b);
      for (let k = 0; k < keys.length; k++) {
        w.bytes(keys[k]);
        cells[k](w, r);
      }
      w.byte(0x7d);
      w.byte(LF);
    }
    yield w.take();
  }
}

/** `table` as CSV with a header line, in chunks of UTF-8 bytes. */
export function* csvLines(table: Table): Generator<Uint8Array> {
  const w = new ByteWriter();
  w.text(`${table.schema.fields.map((f) => csvField(f.name)).join(',')}\n`);
  yield w.take();
  for (const batch of chunksOf(table)) {
    const cells = batch.data.children.map((c) => cellWriter(c, CSV_FORMAT));
    for (let r = 0; r < batch.numRows; r++) {
      for (let k = 0; k < cells.length; k++) {
        if (k > 0) w.byte(COMMA);
        cells[k](w, r);
      }
      w.byte(LF);
    }
    yield w.take();
  }
}
