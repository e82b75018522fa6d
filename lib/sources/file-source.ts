/**
 * The file source (`file:DIR`): a directory of JSON-lines, CSV or text files. Each trigger lists the
 * directory; files not seen before are appended, in modification-time-then-name order, to the source's own
 * file log in the checkpoint. An offset is a position in that log, so a batch's files (and the byte size each
 * had when it was found) are fixed once planned, and a replay reads exactly the same bytes.
 */
import { type FSWatcher, type Stats, watch } from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { gunzipSync } from 'node:zlib';
import type { RecordBatch, Schema } from 'apache-arrow';
import { inferSchema, type SchemaSpec, schemaFromSpec, schemaToSpec, type TypeSpec } from '../arrow/schema.js';
import { isTempFileName } from '../checkpoint/atomic-file.js';
import { BatchLog } from '../checkpoint/batch-log.js';
import { isRecord } from '../checkpoint/fields.js';
import { readVersioned, writeVersioned } from '../checkpoint/versioned-file.js';
import { SluiceError } from '../errors.js';
import { sleep } from '../util/clock.js';
import { counterOf } from './counter-offsets.js';
import { DataSignal } from './data-signal.js';
import {
  cachedSchema,
  DEFAULT_CORRUPT_COLUMN,
  type DecodeOptions,
  type ParseMode,
  splitLines,
} from './decode/common.js';
import { type CsvOptions, checkCsvSchema, decodeCsv, inferCsvSchema } from './decode/csv.js';
import { decodeJsonLines } from './decode/json-lines.js';
import { decodeText, TEXT_SCHEMA } from './decode/text.js';
import type { ReadLimit, ReadResult, ReadTask, SourceContext, SourceOffset, StreamSource } from './source.js';

/** How often an idle query lists a directory the system would not watch (as the engine polls other sources). */
const UNWATCHED_POLL_MS = 10;

/** The file formats the file source reads. */
export type FileFormat = 'json' | 'csv' | 'text';
export const FILE_FORMATS: readonly FileFormat[] = ['json', 'csv', 'text'];

/** Options of {@link FileSource} (Spark's names where Spark has the option). */
export interface FileSourceOptions extends CsvOptions {
  /** The directory to watch. Only its files are read, not its subdirectories. */
  path: string;
  /** Default json (JSON lines). */
  format?: FileFormat;
  /** Schema of json and csv input; without it the schema is inferred once and recorded in the checkpoint. */
  schema?: SchemaSpec | Schema;
  /** At most this many new files per batch (unless the engine's ReadLimit says otherwise). */
  maxFilesPerTrigger?: number;
  /** Malformed-record policy; default PERMISSIVE. */
  mode?: ParseMode;
  /** Directory for rejected records (JSON lines with path, line, record and reason). */
  badRecordsPath?: string;
  /** Default `_corrupt_record`. */
  columnNameOfCorruptRecord?: string;
  /** Only files whose name matches this glob (`*.json`, `part-?.csv`, `*.{json,jsonl}`). */
  pathGlobFilter?: string;
  /** JSON-lines and text files larger than this are read by several tasks. Default 32 MiB. */
  maxBytesPerTask?: number;
}

/** Offset of the file source: the first `files` entries of its file log have been admitted. */
export interface FileOffset {
  files: number;
}

/** A file as the log records it when found. */
export interface FileEntry {
  path: string;
  size: number;
  mtimeMs: number;
}

/** One entry of the file log: the files one discovery round found (or several rounds, once merged). */
interface FileLogEntry {
  files: FileEntry[];
  merged?: boolean;
}

/** The JSON spec of a `file` read task: one file, or one chunk of it. */
export interface FileReadSpec {
  path: string;
  format: FileFormat;
  /** Byte range of this chunk: it reads the lines that start in [start, end). */
  start: number;
  end: number;
  /** The file's size when it was found; bytes appended later are not read. */
  size: number;
  gzip: boolean;
  schema: Record<string, TypeSpec>;
  mode: ParseMode;
  columnNameOfCorruptRecord: string;
  csv: CsvOptions;
  /** badRecordsPath and the task's name there. */
  badRecords?: { dir: string; task: string };
}

const DEFAULT_MAX_BYTES_PER_TASK = 32 * 1024 * 1024;
const INFER_MAX_FILES = 10;
const MERGE_ENTRIES = 64;
const INFER_MAX_RECORDS = 1000;
const INFER_MAX_BYTES = 4 * 1024 * 1024;

/** A streaming source over a directory of files. */
export class FileSource implements StreamSource {
  readonly description: string;
  private readonly dir: string;
  private readonly format: FileFormat;
  private readonly mode: ParseMode;
  private readonly corruptColumn: string;
  private readonly maxBytesPerTask: number;
  private readonly nameFilter: RegExp | null;
  private sourceSchema: Schema | null = null;
  private log: BatchLog<FileLogEntry> | null = null;
  /** The log's entries in order; `merged` ones already hold MERGE_ENTRIES discovery rounds. */
  private readonly entries: { id: number; merged: boolean }[] = [];
  private files: FileEntry[] = [];
  private readonly seen = new Set<string>();
  private index = 0;
  /** Watches the directory from the first latestOffset on, so that a query waiting for files wakes as they land. */
  private watcher: FSWatcher | null = null;
  /** Whether the directory changed since the last listing (which may have missed the change). */
  private changed = false;
  private readonly arrival = new DataSignal();

  constructor(readonly options: FileSourceOptions) {
    if (!options.path) {
      throw new SluiceError('BAD_OPTION', 'the file source needs a directory', 'give it as file:DIR or option path');
    }
    this.format = options.format ?? 'json';
    if (!FILE_FORMATS.includes(this.format)) {
      throw new SluiceError(
        'BAD_OPTION',
        `the file source cannot read format '${String(this.format)}'`,
        `use one of ${FILE_FORMATS.join(', ')}`,
      );
    }
    if (this.format === 'text' && options.schema !== undefined) {
      throw new SluiceError(
        'BAD_OPTION',
        'format text takes no schema: it always gives one string column named value',
        'drop the schema option, or read format json or csv',
      );
    }
    for (const key of ['maxFilesPerTrigger', 'maxBytesPerTask'] as const) {
      const v = options[key];
      if (v !== undefined && !(Number.isSafeInteger(v) && v > 0)) {
        throw new SluiceError('BAD_OPTION', `option ${key} must be a positive integer, found ${String(v)}`);
      }
    }
    this.dir = path.resolve(options.path);
    this.mode = options.mode ?? 'PERMISSIVE';
    this.corruptColumn = options.columnNameOfCorruptRecord ?? DEFAULT_CORRUPT_COLUMN;
    this.maxBytesPerTask = options.maxBytesPerTask ?? DEFAULT_MAX_BYTES_PER_TASK;
    this.nameFilter = options.pathGlobFilter ? globToRegExp(options.pathGlobFilter) : null;
    this.description = `FileSource[${options.path}]`;
    if (options.schema !== undefined) {
      this.sourceSchema = schemaFromSpec(options.schema);
      if (this.format === 'csv') checkCsvSchema(this.sourceSchema);
    } else if (this.format === 'text') {
      this.sourceSchema = TEXT_SCHEMA;
    }
  }

  async initialize(ctx: SourceContext): Promise<void> {
    this.index = ctx.index;
    try {
      if (!(await fsp.stat(this.dir)).isDirectory()) {
        throw new SluiceError(
          'FILE_SOURCE_DIR',
          `the file source path ${this.options.path} is not a directory`,
          'give the directory that new files are written into',
        );
      }
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      throw new SluiceError(
        'FILE_SOURCE_DIR',
        `the file source directory ${this.options.path} does not exist`,
        'create it (new files are picked up as they arrive) or fix the path',
      );
    }
    this.log = new BatchLog(path.join(ctx.dir, 'files'), validateLogEntry);
    for (const id of await this.log.batchIds()) {
      const entry = (await this.log.get(id))!;
      if (id < this.files.length) {
        await this.dropMergedEntry(id, entry);
        continue;
      }
      if (id !== this.files.length) {
        throw new SluiceError(
          'CHECKPOINT_CORRUPT',
          `checkpoint file ${this.log.pathOf(id)} is corrupt: the file log has a gap ` +
            `(entry ${id} follows ${this.files.length} files)`,
          'restore the checkpoint directory from a backup, or delete it to start over',
        );
      }
      for (const f of entry.files) {
        this.files.push(f);
        this.seen.add(f.path);
      }
      this.entries.push({ id, merged: entry.merged === true });
    }
    if (this.sourceSchema === null)
      this.sourceSchema = await this.recordedOrInferredSchema(path.join(ctx.dir, 'schema'));
  }

  schema(): Schema {
    if (!this.sourceSchema) throw new Error('FileSource.schema() called before initialize()');
    return this.sourceSchema;
  }

  /**
   * Every row under the path as it is now, for a batch read (`session.read`): the path is a directory or one
   * file, the schema is the given one or inferred from the first files, and nothing is recorded anywhere.
   */
  async readAll(): Promise<{ schema: Schema; batches: RecordBatch[] }> {
    let st: Stats;
    try {
      st = await fsp.stat(this.dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      throw new SluiceError(
        'PATH_NOT_FOUND',
        `path ${this.options.path} does not exist`,
        'give the file or directory of the static data to read',
      );
    }
    this.files = st.isFile()
      ? [{ path: this.dir, size: st.size, mtimeMs: Math.trunc(st.mtimeMs) }]
      : await this.listNewFiles();
    this.sourceSchema ??= await this.inferSchema(this.files.slice(0, INFER_MAX_FILES));
    const batches: RecordBatch[] = [];
    for (const task of await this.planRead(null, { files: this.files.length }, 0))
      batches.push(...(await readFileTask(task.spec, { batchId: 0 })).batches);
    return { schema: this.sourceSchema, batches };
  }

  /** The files found so far, in log order (the order they are read in). */
  get fileLog(): readonly FileEntry[] {
    return this.files;
  }

  async latestOffset(start: SourceOffset | null, limit: ReadLimit): Promise<SourceOffset | null> {
    this.watch();
    this.changed = false;
    await this.discover();
    const from = start === null ? 0 : this.checkOffset(start);
    const max = limit.maxFiles ?? this.options.maxFilesPerTrigger;
    const end = max === undefined ? this.files.length : Math.min(this.files.length, from + max);
    if (end === from) return start;
    return { files: end } satisfies FileOffset;
  }

  async planRead(start: SourceOffset | null, end: SourceOffset, _batchId: number): Promise<ReadTask[]> {
    const from = start === null ? 0 : this.checkOffset(start);
    const to = this.checkOffset(end);
    const schema = schemaToSpec(this.schema());
    const tasks: ReadTask[] = [];
    for (let i = from; i < to; i++) {
      const f = this.files[i];
      const gzip = f.path.endsWith('.gz');
      const splittable = !gzip && this.format !== 'csv' && f.size > this.maxBytesPerTask;
      const chunks = splittable ? Math.ceil(f.size / this.maxBytesPerTask) : 1;
      for (let c = 0; c < chunks; c++) {
        const spec: FileReadSpec = {
          path: f.path,
          format: this.format,
          start: c * this.maxBytesPerTask,
          end: c === chunks - 1 ? f.size : (c + 1) * this.maxBytesPerTask,
          size: f.size,
          gzip,
          schema,
          mode: this.mode,
          columnNameOfCorruptRecord: this.corruptColumn,
          csv: {
            header: this.options.header,
            sep: this.options.sep,
            quote: this.options.quote,
            nullValue: this.options.nullValue,
          },
        };
        if (this.options.badRecordsPath) {
          spec.badRecords = {
            dir: path.resolve(this.options.badRecordsPath),
            task: `source${this.index}-file${i}-part${c}`,
          };
        }
        tasks.push({ reader: 'file', spec });
      }
    }
    return tasks;
  }

  async commit(_end: SourceOffset): Promise<void> {
    // Files are never deleted by sluice; the log must keep every name to know which files are new.
  }

  /** Without a watch (the system refused one) the directory is listed again after the polling delay. */
  waitForData(signal: AbortSignal): Promise<void> {
    if (!this.watcher) return sleep(UNWATCHED_POLL_MS, signal);
    return this.changed ? Promise.resolve() : this.arrival.wait(signal);
  }

  private watch(): void {
    if (this.watcher) return;
    const changed = (): void => {
      this.changed = true;
      this.arrival.notify();
    };
    try {
      this.watcher = watch(this.dir, { persistent: false }, changed);
    } catch {
      return;
    }
    // A directory removed or a watch the system drops: the next listing finds out, and reports it.
    this.watcher.on('error', () => {
      this.watcher?.close();
      this.watcher = null;
      changed();
    });
  }

  async stop(): Promise<void> {
    this.watcher?.close();
    this.watcher = null;
  }

  private checkOffset(offset: SourceOffset): number {
    const n = counterOf(offset, 'files', 'file');
    if (n > this.files.length) {
      throw new SluiceError(
        'CHECKPOINT_CORRUPT',
        `the offset log asks for ${n} files of ${this.options.path}, but the file log ` +
          `in the checkpoint lists only ${this.files.length}`,
        'restore the checkpoint directory from a backup, or delete it to start over',
      );
    }
    return n;
  }

  /** Appends files not seen before to the log, durably, before any offset can point at them. */
  private async discover(): Promise<void> {
    const found = await this.listNewFiles();
    if (found.length === 0) return;
    const id = this.files.length;
    await this.log!.add(id, { files: found });
    for (const f of found) {
      this.files.push(f);
      this.seen.add(f.path);
    }
    this.entries.push({ id, merged: false });
    await this.mergeRecentEntries();
  }

  /**
   * Keeps the log from growing by one file per discovery round forever (a restart reads them all): every
   * MERGE_ENTRIES unmerged entries are rewritten as one entry under the first one's id. A crash between that
   * write and the deletion of the merged entries leaves copies that the next start recognises and drops.
   */
  private async mergeRecentEntries(): Promise<void> {
    const tail = this.entries.slice(-MERGE_ENTRIES);
    if (tail.length < MERGE_ENTRIES || tail.some((e) => e.merged)) return;
    const first = tail[0].id;
    await this.log!.add(first, { files: this.files.slice(first), merged: true }, { overwrite: true });
    for (const e of tail.slice(1)) await fsp.rm(this.log!.pathOf(e.id), { force: true });
    this.entries.splice(this.entries.length - MERGE_ENTRIES, MERGE_ENTRIES, { id: first, merged: true });
  }

  /** Removes an entry that an interrupted merge left behind, after checking it repeats what the merged entry holds. */
  private async dropMergedEntry(id: number, entry: FileLogEntry): Promise<void> {
    const copy = this.files.slice(id, id + entry.files.length);
    if (copy.length !== entry.files.length || copy.some((f, k) => f.path !== entry.files[k].path)) {
      throw new SluiceError(
        'CHECKPOINT_CORRUPT',
        `checkpoint file ${this.log!.pathOf(id)} is corrupt: it lists files that ` +
          'differ from the earlier entries of the file log',
        'restore the checkpoint directory from a backup, or delete it to start over',
      );
    }
    await fsp.rm(this.log!.pathOf(id), { force: true });
  }

  private async listNewFiles(): Promise<FileEntry[]> {
    let names: string[];
    try {
      names = await fsp.readdir(this.dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      throw new SluiceError(
        'FILE_SOURCE_DIR',
        `the file source directory ${this.options.path} was removed`,
        'recreate it; files already read are remembered in the checkpoint',
      );
    }
    const out: FileEntry[] = [];
    for (const name of names) {
      if (name.startsWith('.') || name.startsWith('_') || isTempFileName(name)) continue;
      if (this.nameFilter && !this.nameFilter.test(name)) continue;
      const full = path.join(this.dir, name);
      if (this.seen.has(full)) continue;
      let st: Stats;
      try {
        st = await fsp.stat(full);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
        throw err;
      }
      if (st.isFile()) out.push({ path: full, size: st.size, mtimeMs: Math.trunc(st.mtimeMs) });
    }
    return out.sort((a, b) => a.mtimeMs - b.mtimeMs || (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  }

  private async recordedOrInferredSchema(file: string): Promise<Schema> {
    try {
      return schemaFromSpec(
        await readVersioned<Record<string, TypeSpec>>(file, (b) =>
          isRecord(b) ? null : 'the schema is not a JSON object',
        ),
      );
    } catch (err) {
      if (!(err instanceof SluiceError) || err.code !== 'CHECKPOINT_MISSING') throw err;
    }
    const sample = this.files.length > 0 ? this.files : await this.listNewFiles();
    const schema = await this.inferSchema(sample.slice(0, INFER_MAX_FILES));
    await writeVersioned(file, schemaToSpec(schema));
    return schema;
  }

  private async inferSchema(files: FileEntry[]): Promise<Schema> {
    const noSchema = (why: string) =>
      new SluiceError(
        'SCHEMA_REQUIRED',
        `cannot infer the schema of ${this.format} files in ` + `${this.options.path}: ${why}`,
        `give a schema (e.g. option schema='id STRING, amount DOUBLE') or put a sample file ` +
          'into the directory before the first start; the inferred schema is then kept in the checkpoint',
      );
    if (files.length === 0) throw noSchema('the directory has no files yet');
    const keepCorrupt = this.mode === 'PERMISSIVE' && !this.options.badRecordsPath;
    if (this.format === 'csv') {
      const texts: string[] = [];
      for (const f of files) texts.push((await readSample(f)).toString('utf8'));
      const schema = inferCsvSchema(this.options.header ? texts[0] : texts.join('\n'), {
        ...this.options,
        maxRecords: INFER_MAX_RECORDS,
        corruptColumn: keepCorrupt ? this.corruptColumn : undefined,
      });
      if (schema.fields.length === 0) throw noSchema('the first files have no records');
      return schema;
    }
    const rows: unknown[] = [];
    let malformed = false;
    for (const f of files) {
      const lines = splitLines((await readSample(f)).toString('utf8'));
      // A sample cut at INFER_MAX_BYTES may end inside a line: the last line is only used when the whole file was read.
      if (f.size > INFER_MAX_BYTES && !f.path.endsWith('.gz')) lines.pop();
      for (const line of lines) {
        if (line.trim() === '') continue;
        try {
          const v: unknown = JSON.parse(line);
          if (isRecord(v)) rows.push(v);
          else malformed = true;
        } catch {
          malformed = true;
        }
        if (rows.length >= INFER_MAX_RECORDS) break;
      }
      if (rows.length >= INFER_MAX_RECORDS) break;
    }
    if (rows.length === 0) throw noSchema('the first files hold no JSON object');
    const schema = inferSchema(rows);
    if (!malformed || !keepCorrupt || schema.fields.some((f) => f.name === this.corruptColumn)) return schema;
    return schemaFromSpec({ ...schemaToSpec(schema), [this.corruptColumn]: 'string' });
  }
}

async function readSample(f: FileEntry): Promise<Buffer> {
  if (f.path.endsWith('.gz')) return gunzipSync(await fsp.readFile(f.path)).subarray(0, INFER_MAX_BYTES);
  const h = await fsp.open(f.path, 'r');
  try {
    const buf = Buffer.alloc(Math.min(f.size, INFER_MAX_BYTES));
    const { bytesRead } = await h.read(buf, 0, buf.length, 0);
    return buf.subarray(0, bytesRead);
  } finally {
    await h.close();
  }
}

function validateLogEntry(body: unknown): string | null {
  if (!isRecord(body) || !Array.isArray(body.files)) return 'the entry has no "files" array';
  for (const f of body.files as unknown[]) {
    if (!isRecord(f) || typeof f.path !== 'string' || typeof f.size !== 'number' || typeof f.mtimeMs !== 'number') {
      return `a file entry must have path, size and mtimeMs, found ${JSON.stringify(f)}`;
    }
  }
  return null;
}

/** A RegExp for a file-name glob: `*`, `?`, `[abc]`, `{a,b}`. */
export function globToRegExp(glob: string): RegExp {
  let re = '';
  let inGroup = false;
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i];
    if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else if (c === '[') {
      const close = glob.indexOf(']', i + 1);
      if (close < 0) throw new SluiceError('BAD_OPTION', `pathGlobFilter '${glob}' has an unclosed [`);
      const body = glob.slice(i + 1, close).replace(/\\/g, '\\\\');
      re += `[${body.startsWith('!') ? `^${body.slice(1)}` : body}]`;
      i = close;
    } else if (c === '{') {
      re += '(?:';
      inGroup = true;
    } else if (c === '}' && inGroup) {
      re += ')';
      inGroup = false;
    } else if (c === ',' && inGroup) re += '|';
    else re += c.replace(/[.+^$()|\\\]{}]/g, '\\$&');
  }
  if (inGroup) throw new SluiceError('BAD_OPTION', `pathGlobFilter '${glob}' has an unclosed {`);
  return new RegExp(`^${re}$`);
}

// ---- the `file` reader, run by the driver or a worker thread ----

/** Runs one `file` read task: reads its bytes and decodes them. */
export async function readFileTask(specArg: unknown, ctx: { batchId: number }): Promise<ReadResult> {
  const spec = specArg as FileReadSpec;
  const location = `file ${spec.path}`;
  let bytes: Buffer;
  let firstStart = 0;
  let handle: fsp.FileHandle;
  try {
    handle = await fsp.open(spec.path, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    throw fileChanged(spec.path, 'was deleted before the query read it');
  }
  try {
    if ((await handle.stat()).size < spec.size)
      throw fileChanged(spec.path, `shrank below the ${spec.size} bytes it had when it was found`);
    if (spec.gzip) {
      bytes = gunzipSync(await readRange(handle, 0, spec.size));
    } else {
      firstStart = spec.start === 0 ? 0 : (await findNewline(handle, spec.start - 1, spec.size)) + 1;
      const lastEnd =
        spec.end >= spec.size
          ? spec.size
          : Math.min(spec.size, (await findNewline(handle, spec.end - 1, spec.size)) + 1);
      bytes = firstStart >= spec.end ? Buffer.alloc(0) : await readRange(handle, firstStart, lastEnd);
    }
  } finally {
    await handle.close();
  }
  if (spec.format === 'text') return decodeText(bytes);
  const options: DecodeOptions = {
    schema: cachedSchema(spec.schema),
    mode: spec.mode,
    columnNameOfCorruptRecord: spec.columnNameOfCorruptRecord,
    location,
    firstLine: firstStart === 0 ? 1 : async () => 1 + (await countNewlines(spec.path, firstStart)),
    badRecords: spec.badRecords,
    batchId: ctx.batchId,
  };
  if (spec.format === 'csv') return decodeCsv(bytes, { ...options, ...spec.csv });
  return decodeJsonLines(bytes, options);
}

function fileChanged(file: string, what: string): SluiceError {
  return new SluiceError(
    'FILE_CHANGED',
    `file ${file} ${what}`,
    'files in a streaming source directory must stay unchanged until the query has committed them; ' +
      'write new data into new files (e.g. write to a temporary name, then rename)',
  );
}

async function readRange(h: fsp.FileHandle, start: number, end: number): Promise<Buffer> {
  const buf = Buffer.allocUnsafe(end - start);
  let done = 0;
  while (done < buf.length) {
    const { bytesRead } = await h.read(buf, done, buf.length - done, start + done);
    if (bytesRead === 0) throw new Error(`unexpected end of file after ${start + done} bytes`);
    done += bytesRead;
  }
  return buf;
}

const PROBE = 64 * 1024;

/** Position of the first `\n` at or after `from`, or `size` when there is none before `size`. */
async function findNewline(h: fsp.FileHandle, from: number, size: number): Promise<number> {
  const buf = Buffer.allocUnsafe(PROBE);
  for (let pos = from; pos < size; pos += PROBE) {
    const len = Math.min(PROBE, size - pos);
    const { bytesRead } = await h.read(buf, 0, len, pos);
    const i = buf.subarray(0, bytesRead).indexOf(10);
    if (i >= 0) return pos + i;
    if (bytesRead < len) break;
  }
  return size;
}

/** Number of `\n` bytes before `end`: the line number base of a chunk, computed only for messages. */
async function countNewlines(file: string, end: number): Promise<number> {
  const h = await fsp.open(file, 'r');
  try {
    const buf = Buffer.allocUnsafe(1024 * 1024);
    let count = 0;
    for (let pos = 0; pos < end; pos += buf.length) {
      const { bytesRead } = await h.read(buf, 0, Math.min(buf.length, end - pos), pos);
      const view = buf.subarray(0, bytesRead);
      for (let i = view.indexOf(10); i >= 0; i = view.indexOf(10, i + 1)) count++;
      if (bytesRead === 0) break;
    }
    return count;
  } finally {
    await h.close();
  }
}
