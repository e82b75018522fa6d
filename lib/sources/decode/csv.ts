/**
 * CSV decoder (RFC 4180): fields separated by `sep`, optionally quoted, a quote inside a quoted field
 * doubled, quoted fields may span lines. Values are typed by the schema; a value that does not fit, or a
 * record with the wrong number of fields, is malformed and handled by the parse mode.
 */
import { type DataType, type Schema, Type } from 'apache-arrow';
import { schemaFromSpec, type TypeSpec } from '../../arrow/schema.js';
import { SluiceError } from '../../errors.js';
import type { ReadResult } from '../source.js';
import { type DecodeOptions, finishDecode, parseTimestamp, RowCollector } from './common.js';

/** CSV dialect options (Spark's names). */
export interface CsvOptions {
  /** The first record holds column names; schema fields are matched to them by name. Default false. */
  header?: boolean;
  /** Field separator, one character. Default `,`. */
  sep?: string;
  /** Quote character. Default `"`. */
  quote?: string;
  /** An unquoted field with this text is null. Default '' (an unquoted empty field is null). */
  nullValue?: string;
}

/** One record as the tokenizer found it. */
interface CsvRecord {
  fields: string[];
  /** Which fields were quoted (a quoted empty field is an empty string, not null). */
  quoted: boolean[];
  /** 0-based line index where the record starts. */
  line: number;
  /** The record's text without its line break. */
  raw: string;
  /** A syntax problem (unterminated quote, text after a closing quote), or null. */
  error: string | null;
}

/** Splits text into records; calls `onRecord` for each non-blank one and stops when it returns false. */
export function tokenizeCsv(text: string, options: CsvOptions, onRecord: (rec: CsvRecord) => boolean): void {
  const sep = (options.sep ?? ',').charCodeAt(0);
  const quoteChar = options.quote ?? '"';
  const quote = quoteChar.charCodeAt(0);
  const n = text.length;
  let pos = 0;
  let line = 0;
  while (pos < n) {
    const start = pos;
    const startLine = line;
    const fields: string[] = [];
    const quoted: boolean[] = [];
    let error: string | null = null;
    for (;;) {
      if (pos < n && text.charCodeAt(pos) === quote) {
        let value = '';
        pos++;
        for (;;) {
          const q = text.indexOf(quoteChar, pos);
          if (q < 0) {
            value += text.slice(pos);
            line += countNewlines(text, pos, n);
            pos = n;
            error ??= 'unterminated quoted field';
            break;
          }
          value += text.slice(pos, q);
          line += countNewlines(text, pos, q);
          if (q + 1 < n && text.charCodeAt(q + 1) === quote) {
            value += quoteChar;
            pos = q + 2;
            continue;
          }
          pos = q + 1;
          break;
        }
        // Anything between the closing quote and the next separator is not CSV; keep it visible in the reason.
        let after = pos;
        while (after < n) {
          const c = text.charCodeAt(after);
          if (c === sep || c === 10 || (c === 13 && (after + 1 === n || text.charCodeAt(after + 1) === 10))) break;
          after++;
        }
        if (after > pos) {
          error ??= `unexpected text ${JSON.stringify(text.slice(pos, Math.min(after, pos + 20)))} after a closing quote`;
          value += text.slice(pos, after);
          pos = after;
        }
        fields.push(value);
        quoted.push(true);
      } else {
        let end = pos;
        while (end < n) {
          const c = text.charCodeAt(end);
          if (c === sep || c === 10) break;
          end++;
        }
        let stop = end;
        if (stop > pos && text.charCodeAt(stop - 1) === 13 && (stop === n || text.charCodeAt(stop) === 10)) stop--;
        fields.push(text.slice(pos, stop));
        quoted.push(false);
        pos = end;
      }
      if (pos < n && text.charCodeAt(pos) === sep) {
        pos++;
        continue;
      }
      break;
    }
    let rawEnd = pos;
    if (rawEnd > start && text.charCodeAt(rawEnd - 1) === 13) rawEnd--;
    if (pos < n && text.charCodeAt(pos) === 13) pos++;
    if (pos < n && text.charCodeAt(pos) === 10) {
      pos++;
      line++;
    }
    const raw = text.slice(start, rawEnd);
    if (raw.length === 0) continue;
    if (!onRecord({ fields, quoted, line: startLine, raw, error })) return;
  }
}

function countNewlines(text: string, from: number, to: number): number {
  let k = 0;
  for (let i = text.indexOf('\n', from); i >= 0 && i < to; i = text.indexOf('\n', i + 1)) k++;
  return k;
}

const MISMATCH = Symbol('mismatch');
type Converter = (s: string) => unknown;

const DECIMAL = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;
const INTEGER = /^[+-]?\d+$/;
const SPECIAL_DOUBLES: Record<string, number> = {
  NaN: NaN,
  Infinity: Infinity,
  '+Infinity': Infinity,
  '-Infinity': -Infinity,
};

/** Converter from CSV text to the JS value columns.ts expects for `type`; throws for types CSV cannot hold. */
function csvConverter(type: DataType, name: string): Converter {
  switch (type.typeId) {
    case Type.Utf8:
    case Type.LargeUtf8:
      return (s) => s;
    case Type.Float:
      return (s) => {
        const t = s.trim();
        if (DECIMAL.test(t)) return Number(t);
        return t in SPECIAL_DOUBLES ? SPECIAL_DOUBLES[t] : MISMATCH;
      };
    case Type.Int: {
      const is64 = (type as unknown as { bitWidth: number }).bitWidth === 64;
      return (s) => {
        const t = s.trim();
        if (!INTEGER.test(t)) return MISMATCH;
        if (is64) return BigInt(t);
        const v = Number(t);
        return v >= -2147483648 && v <= 2147483647 ? v : MISMATCH;
      };
    }
    case Type.Bool:
      return (s) => {
        const t = s.trim().toLowerCase();
        return t === 'true' ? true : t === 'false' ? false : MISMATCH;
      };
    case Type.Timestamp:
    case Type.Date:
      return (s) => {
        const t = s.trim();
        if (INTEGER.test(t)) return Number(t);
        const ms = parseTimestamp(t);
        return Number.isNaN(ms) ? MISMATCH : ms;
      };
    case Type.Binary:
    case Type.LargeBinary:
      return (s) => Buffer.from(s, 'base64');
    default:
      throw new SluiceError(
        'BAD_SCHEMA',
        `CSV cannot hold field '${name}' of type ${type}`,
        'use scalar types (string, double, long, int, boolean, timestamp) for CSV input, or read JSON lines',
      );
  }
}

const EXPECTED: Partial<Record<Type, string>> = {
  [Type.Float]: 'a number',
  [Type.Int]: 'an integer',
  [Type.Bool]: 'true or false',
  [Type.Timestamp]: 'an ISO-8601 timestamp or epoch milliseconds',
};

/** Checks up front that every field of `schema` can be read from CSV. */
export function checkCsvSchema(schema: Schema): void {
  for (const f of schema.fields) csvConverter(f.type, f.name);
}

/**
 * Decodes CSV text (a whole file, or lines) into one record batch of `options.schema`. With `header`, the
 * first record names the columns and schema fields are found by name (a schema field missing from the
 * header is an error, whatever the mode); without it, schema fields take the columns in order.
 */
export async function decodeCsv(
  input: readonly string[] | Uint8Array,
  options: DecodeOptions & CsvOptions,
): Promise<ReadResult> {
  const text =
    input instanceof Uint8Array
      ? Buffer.from(input.buffer, input.byteOffset, input.byteLength).toString('utf8')
      : input.join('\n');
  const schema = options.schema;
  const rows = new RowCollector(schema, options, 1024);
  const corrupt = rows.corruptColumn;
  const targets = schema.fields
    .map((f, k) => ({ k, name: f.name, conv: csvConverter(f.type, f.name), type: f.type }))
    .filter((t) => t.k !== corrupt);
  const nullValue = options.nullValue ?? '';
  let positions: number[] | null = options.header ? null : targets.map((_, i) => i);
  let expectedFields = targets.length;
  const cols = rows.columns;
  tokenizeCsv(text, options, (rec) => {
    if (positions === null) {
      positions = headerPositions(
        rec.fields,
        targets.map((t) => t.name),
        options.location,
      );
      expectedFields = rec.fields.length;
      return true;
    }
    const r = rows.length;
    let bad = rec.error;
    if (bad === null && rec.fields.length !== expectedFields) {
      bad = `expected ${expectedFields} fields, found ${rec.fields.length}`;
    }
    for (let i = 0; i < targets.length; i++) {
      const t = targets[i];
      const p = positions[i];
      const col = cols[t.k];
      if (p >= rec.fields.length) {
        col[r] = null;
        continue;
      }
      const s = rec.fields[p];
      if (!rec.quoted[p] && (s === nullValue || (s === '' && t.type.typeId !== Type.Utf8))) {
        col[r] = null;
        continue;
      }
      const v = t.conv(s);
      if (v === MISMATCH) {
        bad ??= `field '${t.name}': expected ${EXPECTED[t.type.typeId as Type] ?? String(t.type)}, found ${JSON.stringify(s.length > 40 ? `${s.slice(0, 40)}…` : s)}`;
        col[r] = null;
      } else {
        col[r] = v;
      }
    }
    return rows.commitRow(rec.line, rec.raw, bad);
  });
  return finishDecode(rows, options);
}

function headerPositions(header: string[], names: string[], location: string): number[] {
  const index = new Map(header.map((h, i) => [h.trim(), i] as const));
  const missing = names.filter((n) => !index.has(n));
  if (missing.length > 0) {
    throw new SluiceError(
      'CSV_HEADER',
      `the CSV header of ${location} has no column ${missing.map((m) => `'${m}'`).join(', ')} ` +
        `(header: ${header.join(', ')})`,
      'fix the file or the schema, or read without header=true to take columns by position',
    );
  }
  return names.map((n) => index.get(n)!);
}

/**
 * Infers a schema from CSV text: column names from the header (or `_c0`, `_c1`, … as in Spark), and per
 * column the narrowest of boolean, double, timestamp that every non-null sample value fits, else string.
 * Adds the corrupt-record column when a sample record is malformed and `mode` keeps malformed rows.
 */
export function inferCsvSchema(
  text: string,
  options: CsvOptions & { maxRecords?: number; corruptColumn?: string },
): Schema {
  let names: string[] | null = null;
  const samples: string[][] = [];
  let width = 0;
  let malformed = false;
  let records = 0;
  const nullValue = options.nullValue ?? '';
  const max = options.maxRecords ?? 1000;
  tokenizeCsv(text, options, (rec) => {
    if (options.header && names === null) {
      names = rec.fields.map((h) => h.trim());
      return true;
    }
    if (rec.error !== null) malformed = true;
    width = Math.max(width, rec.fields.length);
    rec.fields.forEach((s, i) => {
      if (!rec.quoted[i] && (s === nullValue || s === '')) return;
      samples[i] ??= [];
      samples[i].push(s);
    });
    return ++records < max;
  });
  const cols: string[] = names ?? Array.from({ length: width }, (_, i) => `_c${i}`);
  const spec: Record<string, TypeSpec> = {};
  cols.forEach((name, i) => {
    spec[name] = inferCsvType(samples[i] ?? []);
  });
  if (malformed && options.corruptColumn) spec[options.corruptColumn] = 'string';
  return schemaFromSpec(spec);
}

function inferCsvType(values: string[]): TypeSpec {
  if (values.length === 0) return 'string';
  const all = (test: (s: string) => boolean) => values.every((v) => test(v.trim()));
  if (all((s) => s === 'true' || s === 'false' || s === 'TRUE' || s === 'FALSE' || s === 'True' || s === 'False'))
    return 'boolean';
  if (all((s) => DECIMAL.test(s))) return 'double';
  if (all((s) => !Number.isNaN(parseTimestamp(s)))) return 'timestamp';
  return 'string';
}
