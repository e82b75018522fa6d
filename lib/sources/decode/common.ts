/**
 * What the line decoders share: parse modes, the malformed-record policy (Spark's PERMISSIVE,
 * DROPMALFORMED, FAILFAST plus Databricks' badRecordsPath) and the dead-letter files.
 */
import * as path from 'node:path';
import { type RecordBatch, type Schema, Type } from 'apache-arrow';
import { batchFromColumns } from '../../arrow/columns.js';
import { schemaFromSpec, type TypeSpec } from '../../arrow/schema.js';
import { writeFileAtomic } from '../../checkpoint/atomic-file.js';
import { pathError, SluiceError } from '../../errors.js';
import type { ReadResult } from '../source.js';

/** How a decoder treats a record it cannot read (Spark's `mode` option). */
export type ParseMode = 'PERMISSIVE' | 'DROPMALFORMED' | 'FAILFAST';

export const PARSE_MODES: readonly ParseMode[] = ['PERMISSIVE', 'DROPMALFORMED', 'FAILFAST'];

/** Spark's default name of the column that keeps the raw text of a malformed record. */
export const DEFAULT_CORRUPT_COLUMN = '_corrupt_record';

/** Reads a mode name case-insensitively; a wrong name is a clear error. */
export function parseMode(value: unknown, where = 'option mode'): ParseMode {
  const s = String(value).toUpperCase();
  if ((PARSE_MODES as readonly string[]).includes(s)) return s as ParseMode;
  throw new SluiceError(
    'BAD_OPTION',
    `${where} is '${String(value)}', which is not a parse mode`,
    `use one of ${PARSE_MODES.join(', ')}`,
  );
}

/** Where rejected records go when `badRecordsPath` is set: one file per batch and read task. */
export interface BadRecordsTarget {
  /** The badRecordsPath directory. */
  dir: string;
  /** Names the file inside `<dir>/<batchId>/`; must be the same when the batch is replayed. */
  task: string;
}

/** Options every line decoder takes. */
export interface DecodeOptions {
  /** The schema of the produced batches. */
  schema: Schema;
  /** Default PERMISSIVE. */
  mode?: ParseMode;
  /** Column that receives the raw text of malformed records in PERMISSIVE mode, when the schema has it (utf8). */
  columnNameOfCorruptRecord?: string;
  /** Where the lines come from, for messages and dead letters, e.g. `file data/in/a.json` or `socket localhost:9999`. */
  location: string;
  /**
   * 1-based number of the first input line in its source, or a function computing it (called only when a
   * record is rejected, because for a chunk in the middle of a big file it costs a scan of the prefix).
   */
  firstLine?: number | (() => Promise<number>);
  /** Write rejected records here instead of keeping them (PERMISSIVE) or only counting them (DROPMALFORMED). */
  badRecords?: BadRecordsTarget;
  /** The batch being read, for the dead-letter file name. */
  batchId?: number;
}

/** A record a decoder could not read: its position among the input lines, its text and why. */
export interface Rejected {
  /** 0-based index of the record's first line in the decoder's input. */
  index: number;
  record: string;
  reason: string;
}

/** One line of a dead-letter file. */
export interface BadRecord {
  /** The source location (file path, `socket://host:port`, `Kafka topic-partition`). */
  path: string;
  /** 1-based line number in that source (files and sockets). */
  line?: number;
  /** The record's offset in its partition (Kafka). */
  offset?: number;
  record: string;
  reason: string;
}

/**
 * Collects rows column by column and applies the malformed-record policy. Decoders call `addRow` with
 * the converted values and, for a bad record, the reason; the builder decides whether the row is kept,
 * dropped or ends the read.
 */
export class RowCollector {
  readonly columns: unknown[][];
  length = 0;
  readonly rejected: Rejected[] = [];
  /** Malformed records seen: kept with nulls (PERMISSIVE), dropped (DROPMALFORMED) or set aside (badRecordsPath). */
  numMalformed = 0;
  /** Set in FAILFAST mode at the first bad record; the decoder stops there. */
  failed: Rejected | null = null;
  private readonly corruptIndex: number;
  private readonly mode: ParseMode;
  private readonly keepsRejected: boolean;

  constructor(
    readonly schema: Schema,
    options: DecodeOptions,
    capacity: number,
  ) {
    this.mode = options.mode ?? 'PERMISSIVE';
    this.keepsRejected = options.badRecords !== undefined;
    const corruptName = options.columnNameOfCorruptRecord ?? DEFAULT_CORRUPT_COLUMN;
    this.corruptIndex = schema.fields.findIndex((f) => f.name === corruptName && f.type.typeId === Type.Utf8);
    this.columns = schema.fields.map(() => new Array(capacity));
  }

  /** Index of the corrupt-record column, which decoders leave alone, or -1. */
  get corruptColumn(): number {
    return this.corruptIndex;
  }

  /**
   * Commits the row the decoder wrote at position `length` of every column. `bad` describes a malformed
   * record; its values (nulls where conversion failed) are kept only in PERMISSIVE mode without badRecordsPath.
   * Every malformed record counts, kept or not, so progress shows data that became null without a
   * `_corrupt_record` column to tell.
   * @returns false when the decoder must stop (FAILFAST)
   */
  commitRow(index: number, raw: string, bad: string | null): boolean {
    if (bad === null) {
      if (this.corruptIndex >= 0) this.columns[this.corruptIndex][this.length] = null;
      this.length++;
      return true;
    }
    const rejected = { index, record: raw, reason: bad };
    if (this.mode === 'FAILFAST') {
      this.failed = rejected;
      return false;
    }
    this.numMalformed++;
    if (this.keepsRejected || this.mode === 'DROPMALFORMED') {
      if (this.keepsRejected) this.rejected.push(rejected);
      return true;
    }
    if (this.corruptIndex >= 0) this.columns[this.corruptIndex][this.length] = raw;
    this.length++;
    return true;
  }

  /** A row of nulls (an unparseable record), then {@link commitRow}. */
  commitNullRow(index: number, raw: string, bad: string): boolean {
    for (const col of this.columns) col[this.length] = null;
    return this.commitRow(index, raw, bad);
  }

  batch(): RecordBatch {
    for (const col of this.columns) col.length = this.length;
    return batchFromColumns(this.schema, this.columns, this.length);
  }
}

/**
 * Turns a collector's outcome into a ReadResult: throws the FAILFAST error naming the location and the
 * line, and writes rejected records to badRecordsPath.
 */
export async function finishDecode(rows: RowCollector, options: DecodeOptions): Promise<ReadResult> {
  if (rows.failed) {
    const line = await lineNumberOf(options, rows.failed.index);
    throw malformedRecordError(options.location, line, rows.failed.reason, rows.failed.record);
  }
  if (options.badRecords && rows.rejected.length > 0) {
    const base = await lineNumberOf(options, 0);
    const records = rows.rejected.map((r) => ({
      path: options.location,
      line: base + r.index,
      record: r.record,
      reason: r.reason,
    }));
    await writeBadRecords(options.badRecords, options.batchId ?? 0, records);
  }
  return { batches: [rows.batch()], numMalformed: rows.numMalformed };
}

async function lineNumberOf(options: DecodeOptions, index: number): Promise<number> {
  const first = typeof options.firstLine === 'function' ? await options.firstLine() : (options.firstLine ?? 1);
  return first + index;
}

const MAX_RECORD_IN_MESSAGE = 200;

/** The FAILFAST error: names the location and line, the reason and (a prefix of) the record. */
export function malformedRecordError(location: string, line: number, reason: string, record: string): SluiceError {
  const shown = record.length > MAX_RECORD_IN_MESSAGE ? `${record.slice(0, MAX_RECORD_IN_MESSAGE)}…` : record;
  return new SluiceError(
    'MALFORMED_RECORD',
    `malformed record in ${location} line ${line}: ${reason}: ${shown}`,
    'fix or remove that line, or read with mode PERMISSIVE or DROPMALFORMED (or set badRecordsPath) to keep going',
  );
}

/** The dead-letter file of one read task of one batch: `<dir>/<batchId>/<task>.json`. */
export function badRecordsFile(target: BadRecordsTarget, batchId: number): string {
  return path.join(target.dir, String(batchId), `${target.task.replace(/[^\w.-]/g, '_')}.json`);
}

/**
 * Writes rejected records as JSON lines `{path, line, record, reason}` (`offset` instead of `line` for
 * Kafka), atomically and under a name fixed
 * by batch and task, so a replayed batch replaces its own file instead of adding a second copy.
 */
export async function writeBadRecords(
  target: BadRecordsTarget,
  batchId: number,
  records: BadRecord[],
): Promise<string> {
  const file = badRecordsFile(target, batchId);
  try {
    await writeFileAtomic(file, `${records.map((r) => JSON.stringify(r)).join('\n')}\n`);
  } catch (err) {
    throw pathError(err, `rejected records to badRecordsPath ${target.dir}`);
  }
  return file;
}

/** Splits text into lines on `\n`, dropping one trailing `\r` per line and the empty piece after a final newline. */
export function splitLines(text: string): string[] {
  const lines = text.split('\n');
  if (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  for (let i = 0; i < lines.length; i++) {
    const l = lines[i];
    if (l.length > 0 && l.charCodeAt(l.length - 1) === 13) lines[i] = l.slice(0, -1);
  }
  return lines;
}

/** Lines of a decoder input given as lines or as newline-separated bytes. */
export function linesOf(input: readonly string[] | Uint8Array): readonly string[] {
  if (input instanceof Uint8Array)
    return splitLines(Buffer.from(input.buffer, input.byteOffset, input.byteLength).toString('utf8'));
  return input;
}

/** Short description of a JS value for type-mismatch messages. */
export function describeValue(v: unknown): string {
  const json = JSON.stringify(v) ?? String(v);
  const shown = json.length > 40 ? `${json.slice(0, 40)}…` : json;
  if (Array.isArray(v)) return `array ${shown}`;
  return `${typeof v === 'object' ? 'object' : typeof v} ${shown}`;
}

/**
 * Parses a timestamp string to epoch milliseconds, or NaN. ISO-8601 with `T` or a space; without a zone
 * it is UTC, so the result does not depend on the machine's time zone (Date.parse would use local time).
 */
export function parseTimestamp(s: string): number {
  const fast = parseCanonicalIso(s);
  return Number.isNaN(fast) ? parseTimestampSlow(s) : fast;
}

let cachedMinute = '';
let cachedMinuteMs = NaN;

function digit(s: string, i: number): number {
  const c = s.charCodeAt(i) - 48;
  return c >= 0 && c <= 9 ? c : NaN;
}

/**
 * `YYYY-MM-DDTHH:MM:SS.sssZ`, the form JSON producers (JS `toISOString`, most loggers) write: the minute
 * prefix is parsed once and reused while events stay in the same minute, which makes timestamp decoding
 * several times cheaper than the general pattern. NaN for anything else.
 */
function parseCanonicalIso(s: string): number {
  if (
    s.length !== 24 ||
    s.charCodeAt(23) !== 90 ||
    s.charCodeAt(10) !== 84 ||
    s.charCodeAt(16) !== 58 ||
    s.charCodeAt(19) !== 46
  )
    return NaN;
  const minute = s.slice(0, 16);
  if (minute !== cachedMinute) {
    cachedMinuteMs = parseTimestampSlow(`${minute}Z`);
    cachedMinute = minute;
  }
  const sec = digit(s, 17) * 10 + digit(s, 18);
  const ms = digit(s, 20) * 100 + digit(s, 21) * 10 + digit(s, 22);
  return sec <= 60 ? cachedMinuteMs + sec * 1000 + ms : NaN;
}

function parseTimestampSlow(s: string): number {
  const m = TIMESTAMP.exec(s);
  if (!m) return NaN;
  const [, y, mo, d, h, mi, sec, frac, zone] = m;
  let ms = Date.UTC(
    +y,
    +mo - 1,
    +d,
    h ? +h : 0,
    mi ? +mi : 0,
    sec ? +sec : 0,
    frac ? Math.floor(+`0.${frac}` * 1000) : 0,
  );
  if (+mo < 1 || +mo > 12 || +d < 1 || +d > 31 || (h && +h > 23) || (mi && +mi > 59) || (sec && +sec > 60)) return NaN;
  if (zone && zone !== 'Z' && zone !== 'z') {
    const zm = /^([+-])(\d{2}):?(\d{2})$/.exec(zone)!;
    const offset = (+zm[2] * 60 + +zm[3]) * 60_000;
    ms += zm[1] === '+' ? -offset : offset;
  }
  return ms;
}

const TIMESTAMP =
  /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?)?\s*(Z|z|[+-]\d{2}:?\d{2})?$/;

const schemaCache = new Map<string, Schema>();

/**
 * The Arrow schema of a spec that came with a read task, built once per thread: decoders cache their
 * converters per Schema object, so tasks of the same source share them.
 */
export function cachedSchema(spec: Record<string, TypeSpec>): Schema {
  const key = JSON.stringify(spec);
  let s = schemaCache.get(key);
  if (!s) {
    s = schemaFromSpec(spec);
    schemaCache.set(key, s);
  }
  return s;
}
