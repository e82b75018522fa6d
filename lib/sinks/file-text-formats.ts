/**
 * Text encodings of Arrow tables for the file sink: JSON lines and CSV. Each column is encoded once into
 * one text fragment per row (a dictionary column encodes its dictionary once), then rows are joined from
 * the fragments: no row objects are built.
 *
 * Values: timestamps are ISO-8601 UTC strings (`2024-05-01T10:00:00.000Z`), 64-bit integers keep all their
 * digits, binary is base64, lists and structs are JSON. In JSON, null fields are written as `null` and
 * NaN/±Infinity (which JSON cannot hold) as null. In CSV, null is an empty field, the empty string is `""`,
 * and a field holding `,`, `"`, CR or LF is quoted with `"` doubled (RFC 4180); lines end with `\n`.
 */
import { Data, Table, Type, type RecordBatch } from 'apache-arrow';
import { isValid, valuesOf } from '../arrow/index.js';

/** The text formats of the file sink. */
export type TextFormat = 'json' | 'csv';

/** The file extension of each format. */
export const TEXT_EXTENSIONS: Record<TextFormat, string> = { json: '.jsonl', csv: '.csv' };

/** Rows per encoded chunk: bounds the memory of the fragments while writing a large batch. */
const CHUNK_ROWS = 16384;

type Encoder = (data: Data) => string[];

function base64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
}

function nestedJson(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) => (v instanceof Uint8Array ? base64(v) : v));
}

/**
 * Fragments of the types both formats write alike (numbers, booleans, timestamps, binary), with `nul` for
 * null, or undefined for the types each format writes its own way (strings, nested values).
 */
function scalarFragments(data: Data, nul: string, quoteText: (s: string) => string): string[] | undefined {
  const n = data.length;
  const out = new Array<string>(n);
  switch (data.type.typeId) {
    case Type.Int: {
      if ((data.type as unknown as { bitWidth: number }).bitWidth === 64) {
        const vals = data.values as BigInt64Array;
        for (let i = 0; i < n; i++) out[i] = isValid(data, i) ? String(vals[i]) : nul;
        return out;
      }
      const vals = valuesOf(data);
      for (let i = 0; i < n; i++) out[i] = vals[i] === null ? nul : String(vals[i]);
      return out;
    }
    case Type.Bool: {
      const vals = valuesOf(data);
      for (let i = 0; i < n; i++) out[i] = vals[i] === null ? nul : String(vals[i]);
      return out;
    }
    case Type.Timestamp: {
      const texts = isoTimestamps(data);
      for (let i = 0; i < n; i++) out[i] = texts[i] === null ? nul : quoteText(texts[i]!);
      return out;
    }
    case Type.Date: {
      const vals = valuesOf(data) as (Date | null)[];
      for (let i = 0; i < n; i++) out[i] = vals[i] === null ? nul : quoteText(vals[i]!.toISOString());
      return out;
    }
    case Type.Binary: {
      const vals = valuesOf(data) as (Uint8Array | null)[];
      for (let i = 0; i < n; i++) out[i] = vals[i] === null ? nul : quoteText(base64(vals[i]!));
      return out;
    }
    case Type.Null:
      return out.fill(nul);
    default:
      return undefined;
  }
}

const MS_PER_UNIT = [1000, 1, 1e-3, 1e-6];
const MAX_4_DIGIT_YEAR_MS = 253402300800000;

/**
 * ISO-8601 UTC text (`2024-05-01T10:30:00.005Z`) of a timestamp column, null where null. Events of a
 * batch mostly share their minute, so the `yyyy-MM-ddTHH:mm:` prefix is formatted once per minute
 * instead of a Date and toISOString per row (which cost more than all other columns together).
 */
function isoTimestamps(data: Data): (string | null)[] {
  const vals = data.values as BigInt64Array;
  const scale = MS_PER_UNIT[(data.type as unknown as { unit: number }).unit] ?? 1;
  const out = new Array<string | null>(data.length);
  let minute = NaN;
  let prefix = '';
  for (let i = 0; i < data.length; i++) {
    if (!isValid(data, i)) { out[i] = null; continue; }
    const ms = Math.floor(Number(vals[i]) * scale);
    if (ms < 0 || ms >= MAX_4_DIGIT_YEAR_MS) { out[i] = new Date(ms).toISOString(); continue; }
    const m = Math.floor(ms / 60000);
    if (m !== minute) { minute = m; prefix = new Date(m * 60000).toISOString().slice(0, 17); }
    const rest = ms - m * 60000;
    const sec = Math.floor(rest / 1000);
    const milli = rest - sec * 1000;
    out[i] = `${prefix}${sec < 10 ? '0' : ''}${sec}.${milli < 100 ? (milli < 10 ? '00' : '0') : ''}${milli}Z`;
  }
  return out;
}

/** Encodes a dictionary column through its dictionary: each distinct value is encoded once. */
function viaDictionary(data: Data, encode: Encoder, nul: string): string[] {
  const dict = encode((data.dictionary as unknown as { data: Data[] }).data[0]);
  const idx = data.values as Int32Array;
  const out = new Array<string>(data.length);
  for (let i = 0; i < data.length; i++) out[i] = isValid(data, i) ? dict[idx[i]] : nul;
  return out;
}

function jsonString(s: string): string {
  return JSON.stringify(s);
}

const jsonEncoder: Encoder = (data) => {
  if (data.type.typeId === Type.Dictionary) return viaDictionary(data, jsonEncoder, 'null');
  const scalar = scalarFragments(data, 'null', jsonString);
  if (scalar) return scalar;
  const vals = valuesOf(data);
  const out = new Array<string>(vals.length);
  switch (data.type.typeId) {
    case Type.Utf8:
      for (let i = 0; i < vals.length; i++) out[i] = vals[i] === null ? 'null' : JSON.stringify(vals[i]);
      return out;
    case Type.Float:
      for (let i = 0; i < vals.length; i++) {
        const v = vals[i] as number | null;
        out[i] = v !== null && Number.isFinite(v) ? String(v) : 'null';
      }
      return out;
    default:
      for (let i = 0; i < vals.length; i++) out[i] = vals[i] === null ? 'null' : nestedJson(vals[i]);
      return out;
  }
};

const NEEDS_QUOTES = /[",\r\n]/;

/** One CSV field: quoted when it holds a separator, quote or line break (RFC 4180), `""` when empty. */
export function csvField(s: string): string {
  if (s === '') return '""';
  return NEEDS_QUOTES.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

const csvEncoder: Encoder = (data) => {
  if (data.type.typeId === Type.Dictionary) return viaDictionary(data, csvEncoder, '');
  const scalar = scalarFragments(data, '', csvField);
  if (scalar) return scalar;
  const vals = valuesOf(data);
  const out = new Array<string>(vals.length);
  switch (data.type.typeId) {
    case Type.Utf8:
      for (let i = 0; i < vals.length; i++) out[i] = vals[i] === null ? '' : csvField(vals[i] as string);
      return out;
    case Type.Float:
      for (let i = 0; i < vals.length; i++) out[i] = vals[i] === null ? '' : String(vals[i]);
      return out;
    default:
      for (let i = 0; i < vals.length; i++) out[i] = vals[i] === null ? '' : csvField(nestedJson(vals[i]));
      return out;
  }
};

function* chunksOf(table: Table): Generator<RecordBatch> {
  for (const batch of table.batches) {
    for (let start = 0; start < batch.numRows; start += CHUNK_ROWS) {
      yield batch.numRows <= CHUNK_ROWS ? batch : batch.slice(start, Math.min(batch.numRows, start + CHUNK_ROWS));
    }
  }
}

/** `table` as JSON lines, one object per row with the columns in schema order, in chunks of text. */
export function* jsonLines(table: Table): Generator<string> {
  const keys = table.schema.fields.map((f, k) => `${k === 0 ? '{' : ','}${JSON.stringify(f.name)}:`);
  for (const batch of chunksOf(table)) {
    const cols = batch.data.children.map((c) => jsonEncoder(c));
    const lines = new Array<string>(batch.numRows);
    for (let r = 0; r < batch.numRows; r++) {
      let line = keys.length === 0 ? '{' : '';
      for (let k = 0; k < keys.length; k++) line += keys[k] + cols[k][r];
      lines[r] = `${line}}\n`;
    }
    yield lines.join('');
  }
}

/** `table` as CSV with a header line, in chunks of text. */
export function* csvLines(table: Table): Generator<string> {
  yield `${table.schema.fields.map((f) => csvField(f.name)).join(',')}\n`;
  for (const batch of chunksOf(table)) {
    const cols = batch.data.children.map((c) => csvEncoder(c));
    const lines = new Array<string>(batch.numRows);
    for (let r = 0; r < batch.numRows; r++) {
      let line = cols.length > 0 ? cols[0][r] : '';
      for (let k = 1; k < cols.length; k++) line += `,${cols[k][r]}`;
      lines[r] = `${line}\n`;
    }
    yield lines.join('');
  }
}
