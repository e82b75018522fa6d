/**
 * The `console:` sink: prints each batch the way Spark's console sink does, a `Batch: N` header and the
 * `+---+` table of `Dataset.show` (Spark 3.5+: nulls print as NULL, binary as hex, cells right-aligned
 * while truncating). Like Spark's, it prints a replayed batch again: the console is for watching a query,
 * not for exactly-once output.
 */
import { type Data, type DataType, type Field, type List, type Struct, type Table, Type } from 'apache-arrow';
import { isValid, valuesOf } from '../arrow/index.js';
import { SluiceError } from '../errors.js';
import type { SinkContext, StreamSink } from './sink.js';
import { checkKnownOptions, integerOption, type SinkOptionValues } from './sink-options.js';

/** Options of {@link ConsoleSink}; strings are accepted, as URI query parameters give them. */
export interface ConsoleSinkOptions extends SinkOptionValues {
  /** Rows shown per batch; default 20. */
  numRows?: number | string;
  /** true (default): cut cells to 20 characters and right-align; false: full cells, left-aligned; a number: cut to that many. */
  truncate?: boolean | number | string;
  /** Where to print; default process.stdout. */
  out?: NodeJS.WritableStream;
}

const RULE = '-------------------------------------------';
const NULL_TEXT = 'NULL';

function pad2(n: number): string {
  return n < 10 ? `0${n}` : String(n);
}

/** Java's Double.toString, which Spark uses to show doubles: `1.0`, `0.001`, `1.0E7`, `1.5E-4`. */
export function javaDoubleString(d: number): string {
  if (Number.isNaN(d)) return 'NaN';
  if (d === Infinity) return 'Infinity';
  if (d === -Infinity) return '-Infinity';
  if (d === 0) return Object.is(d, -0) ? '-0.0' : '0.0';
  const abs = Math.abs(d);
  if (abs >= 1e-3 && abs < 1e7) {
    const s = String(d);
    return s.includes('.') ? s : `${s}.0`;
  }
  const [mantissa, exponent] = d.toExponential().split('e');
  return `${mantissa.includes('.') ? mantissa : `${mantissa}.0`}E${exponent.replace('+', '')}`;
}

function dateText(d: Date): string {
  return `${d.getUTCFullYear()}-${pad2(d.getUTCMonth() + 1)}-${pad2(d.getUTCDate())}`;
}

/** Spark's timestamp text: `yyyy-MM-dd HH:mm:ss` plus the fraction without trailing zeros; here in UTC. */
function timestampText(d: Date): string {
  const base = `${dateText(d)} ${pad2(d.getUTCHours())}:${pad2(d.getUTCMinutes())}:${pad2(d.getUTCSeconds())}`;
  const ms = d.getUTCMilliseconds();
  return ms === 0 ? base : `${base}.${String(ms).padStart(3, '0').replace(/0+$/, '')}`;
}

/** One value as Spark shows it (ToPrettyString): nested values recurse, nulls at any depth print NULL. */
export function prettyValue(v: unknown, type: DataType): string {
  if (v === null || v === undefined) return NULL_TEXT;
  switch (type.typeId) {
    case Type.Float:
      return javaDoubleString(v as number);
    case Type.Timestamp:
      return timestampText(v as Date);
    case Type.Date:
      return dateText(v as Date);
    case Type.Binary:
      return `[${[...(v as Uint8Array)].map((b) => b.toString(16).toUpperCase().padStart(2, '0')).join(' ')}]`;
    case Type.List: {
      const item = (type as List).children[0].type;
      return `[${(v as unknown[]).map((x) => prettyValue(x, item)).join(', ')}]`;
    }
    case Type.Struct: {
      const fields = (type as Struct).children as Field[];
      const o = v as Record<string, unknown>;
      return `{${fields.map((f) => prettyValue(o[f.name], f.type)).join(', ')}}`;
    }
    case Type.Dictionary:
      return prettyValue(v, (type as unknown as { dictionary: DataType }).dictionary);
    default:
      return String(v);
  }
}

/** The shown text of every row of one column. */
function columnTexts(data: Data): string[] {
  const n = data.length;
  const out = new Array<string>(n);
  if (data.type.typeId === Type.Int && (data.type as unknown as { bitWidth: number }).bitWidth === 64) {
    const vals = data.values as BigInt64Array;
    for (let i = 0; i < n; i++) out[i] = isValid(data, i) ? String(vals[i]) : NULL_TEXT;
    return out;
  }
  const vals = valuesOf(data);
  for (let i = 0; i < n; i++) out[i] = prettyValue(vals[i], data.type);
  return out;
}

// biome-ignore lint/suspicious/noControlCharactersInRegex: these control characters are what it escapes
const META = /[\n\r\t\f\b\u000b\u0007]/g;
const META_ESCAPES: Record<string, string> = {
  '\n': '\\n',
  '\r': '\\r',
  '\t': '\\t',
  '\f': '\\f',
  '\b': '\\b',
  '\u000b': '\\v',
  '\u0007': '\\a',
};

/** Spark's escapeMetaCharacters: control characters would break the table's lines. */
function escapeMeta(s: string): string {
  return s.replace(META, (c) => META_ESCAPES[c]);
}

// Spark's Utils.fullWidthRegex: East Asian wide characters take two columns.
const FULL_WIDTH =
  /[\u1100-\u115F\u2E80-\uA4CF\uAC00-\uD7A3\uF900-\uFAFF\uFE10-\uFE19\uFE30-\uFE6F\uFF00-\uFF60\uFFE0-\uFFE6]/g;

function halfWidth(s: string): number {
  return s.length + (s.match(FULL_WIDTH)?.length ?? 0);
}

function truncateCell(s: string, truncate: number): string {
  if (truncate <= 0 || s.length <= truncate) return s;
  return truncate < 4 ? s.slice(0, truncate) : `${s.slice(0, truncate - 3)}...`;
}

/**
 * Spark's `Dataset.showString(numRows, truncate)`: the `+---+` table of the first `numRows` rows, with
 * `only showing top N rows` when there are more. `truncate` > 0 cuts cells to that many characters and
 * right-aligns them; 0 shows full cells left-aligned. Ends with a newline.
 */
export function showString(table: Table, numRows = 20, truncate = 20): string {
  const limit = Math.max(0, numRows);
  const shown = table.slice(0, limit);
  const header = table.schema.fields.map((f) => escapeMeta(f.name));
  const rows: string[][] = [];
  for (const batch of shown.batches) {
    const cols = batch.data.children.map((c) => columnTexts(c));
    for (let r = 0; r < batch.numRows; r++) rows.push(cols.map((c) => truncateCell(escapeMeta(c[r]), truncate)));
  }
  const widths = header.map((h, i) =>
    rows.reduce((w, row) => Math.max(w, halfWidth(row[i])), Math.max(3, halfWidth(h))),
  );
  const line = (cells: string[]) =>
    `|${cells
      .map((c, i) => {
        const fill = ' '.repeat(widths[i] - halfWidth(c));
        return truncate > 0 ? fill + c : c + fill;
      })
      .join('|')}|\n`;
  const sep = `+${widths.map((w) => '-'.repeat(w)).join('+')}+\n`;
  let out = sep + line(header) + sep + rows.map(line).join('') + sep;
  if (table.numRows > limit) out += `only showing top ${limit} ${limit === 1 ? 'row' : 'rows'}\n`;
  return out;
}

/** The text the console sink prints for one batch: Spark's header, the table and a blank line. */
export function consoleBatchText(batchId: number, table: Table, numRows = 20, truncate = 20): string {
  return `${RULE}\nBatch: ${batchId}\n${RULE}\n${showString(table, numRows, truncate)}\n`;
}

function truncateOption(options: ConsoleSinkOptions): number {
  const v = options.truncate;
  if (v === undefined || v === true) return 20;
  if (v === false) return 0;
  if (typeof v === 'string' && /^(true|false)$/i.test(v.trim())) return v.trim().toLowerCase() === 'true' ? 20 : 0;
  if (typeof v === 'number' || (typeof v === 'string' && /^\s*\d+\s*$/.test(v)))
    return integerOption('console', { truncate: v }, 'truncate', 20, 0);
  throw new SluiceError(
    'BAD_OPTION',
    `option 'truncate' of the console sink must be true, false or a number of characters, got ${JSON.stringify(v)}`,
    "write console:?truncate=false, or .option('truncate', 'false')",
  );
}

/** Prints every batch as a Spark-style table. */
export class ConsoleSink implements StreamSink {
  readonly description: string;
  readonly numRows: number;
  /** Characters a cell is cut to; 0 for no cutting. */
  readonly truncate: number;
  private readonly out: NodeJS.WritableStream;

  /** Checks the options; throws SluiceError BAD_OPTION naming the option that is wrong. */
  constructor(options: ConsoleSinkOptions = {}) {
    checkKnownOptions('console', options, ['numRows', 'truncate', 'out']);
    this.numRows = integerOption('console', options, 'numRows', 20, 0);
    this.truncate = truncateOption(options);
    this.out = options.out ?? process.stdout;
    this.description = `ConsoleSink[numRows=${this.numRows}, truncate=${this.truncate}]`;
  }

  async initialize(_ctx: SinkContext): Promise<void> {
    // Nothing to open: the stream is given.
  }

  async addBatch(batchId: number, data: Table): Promise<void> {
    const text = consoleBatchText(batchId, data, this.numRows, this.truncate);
    await new Promise<void>((resolve, reject) => {
      this.out.write(text, (err) => (err ? reject(err) : resolve()));
    });
  }

  async close(): Promise<void> {
    // The stream belongs to the caller (stdout by default) and stays open.
  }
}
