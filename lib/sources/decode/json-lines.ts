/**
 * JSON-lines decoder: one JSON object per line into Arrow record batches of a given schema. Bytes go through
 * the scanner of json-bytes.ts when it can read them (clean lines of supported types: no row objects, no JS
 * strings); otherwise, and for input given as strings, each line is parsed once and its fields are written
 * straight into per-column JS arrays, from which the columns are built in one pass each.
 */
import { type DataType, type Field, type List, type Schema, type Struct, Type } from 'apache-arrow';
import type { ReadResult } from '../source.js';
import { type DecodeOptions, describeValue, finishDecode, linesOf, parseTimestamp, RowCollector } from './common.js';
import { decodeJsonBytes, jsonText } from './json-bytes.js';

/** Marks a value that does not fit its field's type; the converter leaves the reason in `mismatch`. */
const MISMATCH = Symbol('mismatch');
let mismatch = '';

type Converter = (v: unknown) => unknown;

function fail(where: string, expected: string, v: unknown): typeof MISMATCH {
  mismatch = `field '${where}': expected ${expected}, found ${describeValue(v)}`;
  return MISMATCH;
}

/**
 * A function converting a parsed JSON value (never null or undefined) to the JS value columns.ts expects for
 * `type`, or MISMATCH. Numbers, booleans and objects read into a string field become their JSON text, as in Spark.
 */
export function jsonConverter(type: DataType, where: string): Converter {
  switch (type.typeId) {
    case Type.Utf8:
    case Type.LargeUtf8:
      return jsonText;
    case Type.Float:
      return (v) => (typeof v === 'number' ? v : fail(where, 'a number', v));
    case Type.Int: {
      if ((type as unknown as { bitWidth: number }).bitWidth === 64) {
        return (v) => (typeof v === 'number' && Number.isInteger(v) ? v : fail(where, 'an integer', v));
      }
      return (v) =>
        typeof v === 'number' && Number.isInteger(v) && v >= -2147483648 && v <= 2147483647
          ? v
          : fail(where, 'a 32-bit integer', v);
    }
    case Type.Bool:
      return (v) => (typeof v === 'boolean' ? v : fail(where, 'true or false', v));
    case Type.Timestamp:
    case Type.Date:
      return (v) => {
        if (typeof v === 'number' && Number.isFinite(v)) return v;
        if (typeof v === 'string') {
          const ms = parseTimestamp(v);
          if (!Number.isNaN(ms)) return ms;
        }
        return fail(where, 'an ISO-8601 timestamp or epoch milliseconds', v);
      };
    case Type.Binary:
    case Type.LargeBinary:
      return (v) =>
        typeof v === 'string' && BASE64.test(v) ? Buffer.from(v, 'base64') : fail(where, 'a base64 string', v);
    case Type.List: {
      const item = jsonConverter((type as List).children[0].type, `${where}[]`);
      return (v) => {
        if (!Array.isArray(v)) return fail(where, 'an array', v);
        const out = new Array(v.length);
        for (let i = 0; i < v.length; i++) {
          const x = v[i];
          if (x === null || x === undefined) {
            out[i] = null;
            continue;
          }
          const c = item(x);
          if (c === MISMATCH) return MISMATCH;
          out[i] = c;
        }
        return out;
      };
    }
    case Type.Struct: {
      const fields = (type as Struct).children;
      const convs = fields.map((f: Field) => jsonConverter(f.type, `${where}.${f.name}`));
      return (v) => {
        if (typeof v !== 'object' || Array.isArray(v)) return fail(where, 'an object', v);
        const src = v as Record<string, unknown>;
        const out: Record<string, unknown> = {};
        for (let k = 0; k < fields.length; k++) {
          const x = own(src, fields[k].name);
          if (x === null || x === undefined) {
            out[fields[k].name] = null;
            continue;
          }
          const c = convs[k](x);
          if (c === MISMATCH) return MISMATCH;
          out[fields[k].name] = c;
        }
        return out;
      };
    }
    default:
      throw new Error(`sluice cannot decode JSON into Arrow type ${type}`);
  }
}

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/** A field of a parsed object; names that objects inherit (`constructor`, `toString`) count only when the line has them. */
function own(obj: Record<string, unknown>, name: string): unknown {
  return name in Object.prototype && !Object.hasOwn(obj, name) ? undefined : obj[name];
}

const convertersBySchema = new WeakMap<Schema, Converter[]>();

function convertersOf(schema: Schema): Converter[] {
  let convs = convertersBySchema.get(schema);
  if (!convs) {
    convs = schema.fields.map((f) => jsonConverter(f.type, f.name));
    convertersBySchema.set(schema, convs);
  }
  return convs;
}

/**
 * Decodes JSON lines into one record batch of `options.schema`. Blank lines are skipped. A line that is not
 * a JSON object, or whose field does not fit its type (a string where a double is expected), is malformed
 * and handled by `options.mode`; in PERMISSIVE mode a type mismatch keeps the fields that did fit, as in Spark.
 * Fields missing from a line are null; fields not in the schema are ignored.
 */
export async function decodeJsonLines(
  input: readonly string[] | Uint8Array,
  options: DecodeOptions,
): Promise<ReadResult> {
  if (input instanceof Uint8Array) {
    const batch = decodeJsonBytes(input, options.schema, options.columnNameOfCorruptRecord);
    if (batch) return { batches: [batch], numMalformed: 0 };
  }
  return finishDecode(collectJsonLines(linesOf(input), options), options);
}

/**
 * The synchronous part of {@link decodeJsonLines}: parses and applies the mode, without IO. `kept`, when
 * given, receives the index of the line behind each row (callers that decode records, not lines, add
 * per-record columns to the rows with it).
 */
export function collectJsonLines(lines: readonly string[], options: DecodeOptions, kept?: number[]): RowCollector {
  const schema = options.schema;
  const fields = schema.fields;
  const nf = fields.length;
  const convs = convertersOf(schema);
  const rows = new RowCollector(schema, options, lines.length);
  const cols = rows.columns;
  const corrupt = rows.corruptColumn;
  const names = fields.map((f) => f.name);
  const inherited = names.map((n) => n in Object.prototype);
  for (let i = 0; i < lines.length; i++) {
    // Each line adds at most one row: a row more than `kept` knows of came from the previous line.
    if (kept && rows.length > kept.length) kept.push(i - 1);
    const line = lines[i];
    if (isBlank(line)) continue;
    let obj: unknown;
    try {
      obj = JSON.parse(line);
    } catch (err) {
      if (!rows.commitNullRow(i, line, `invalid JSON (${(err as Error).message})`)) break;
      continue;
    }
    if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) {
      if (!rows.commitNullRow(i, line, `expected a JSON object, found ${describeValue(obj)}`)) break;
      continue;
    }
    const rec = obj as Record<string, unknown>;
    const r = rows.length;
    let bad: string | null = null;
    for (let k = 0; k < nf; k++) {
      if (k === corrupt) continue;
      const v = inherited[k] ? own(rec, names[k]) : rec[names[k]];
      if (v === null || v === undefined) {
        cols[k][r] = null;
        continue;
      }
      const c = convs[k](v);
      if (c === MISMATCH) {
        bad ??= mismatch;
        cols[k][r] = null;
      } else {
        cols[k][r] = c;
      }
    }
    if (!rows.commitRow(i, line, bad)) break;
  }
  if (kept && rows.length > kept.length) kept.push(lines.length - 1);
  return rows;
}

function isBlank(line: string): boolean {
  if (line.length === 0) return true;
  const c = line.charCodeAt(0);
  if (c !== 32 && c !== 9 && c !== 13) return false;
  return line.trim().length === 0;
}
