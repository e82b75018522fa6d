/**
 * Exactly-once output into a directory that readers simply list (DuckDB `read_parquet('<dir>/**\/*.parquet')`,
 * `cat <dir>/*.jsonl`), after Spark's ManifestFileCommitProtocol and FileStreamSinkLog. Readers do not
 * read the manifest, so the directory listing itself must be right.
 *
 * Layout:
 * ```
 * <dir>/[k=v/…]part-<batch, 8 digits>-<part, 5 digits><ext>   data files, named by batch id and part
 * <dir>/_sluice_log/<batchId>                                 the batch's manifest (atomic, versioned)
 * ```
 * Batch N is written in three steps:
 * 1. **stage**: every data file is written and fsynced under a hidden pending name in its final folder,
 *    `.part-…<ext>.pending`. No listing reader matches it (leading dot, other extension).
 * 2. **commit**: the folders holding the pending files are fsynced, then `_sluice_log/N` is written
 *    atomically, listing the files. This is the commit point of batch N in the sink.
 * 3. **publish**: each pending file is renamed to its final name and the folders are fsynced.
 *
 * Invariant: a file under a final name belongs to a committed manifest. A listing therefore never shows
 * rows of a batch that will be written again, and never shows a row twice.
 *
 * The window: during step 3 a listing shows a subset of batch N's files. In normal operation that lasts a
 * few renames. If the process dies inside it, the subset stays visible until the query restarts, where
 * {@link FileCommitProtocol.recover} (the sink's `initialize`, before any batch runs) renames the rest. A
 * crash before step 2 leaves only pending files: `recover` deletes them, and the replayed batch writes them
 * again. A replayed batch whose manifest exists is not written again (deterministic replay makes it the
 * same output); it is only published to the end.
 */

import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { fsyncDir, removeStaleTempFiles } from '../checkpoint/atomic-file.js';
import { BatchLog } from '../checkpoint/batch-log.js';
import { checkInteger, isRecord } from '../checkpoint/fields.js';
import { pathError, SluiceError } from '../errors.js';
import { crashPoint } from '../util/crash-points.js';
import { createDirectory } from '../util/create-directory.js';
import { guardedWrite } from '../util/file-write.js';

/** The folder of the manifest log inside the output directory. */
export const SINK_LOG_DIR = '_sluice_log';

const PENDING_SUFFIX = '.pending';
const PENDING_FILE = /^\.part-(\d+)-(\d+)\..*\.pending$/;

/** One data file of a committed batch. */
export interface CommittedFile {
  /** Path relative to the output directory, `/`-separated, e.g. `event_type=click/part-00000003-00000.parquet`. */
  path: string;
  rows: number;
  bytes: number;
}

/** The manifest of one batch, `<dir>/_sluice_log/<batchId>`. */
export interface SinkManifest {
  /** The query that wrote it: a directory belongs to one query. */
  queryId: string;
  batchId: number;
  files: CommittedFile[];
}

/** The points of the protocol, in order, as reported to a {@link CommitObserver}. */
export type CommitStep = 'staged' | 'committed' | 'published' | 'done';

/**
 * Called after each step of a batch: `staged` and `published` once per file (with its relative path),
 * `committed` once the manifest is durable, `done` at the end. Useful for logging; the crash tests kill
 * the process from it.
 */
export type CommitObserver = (step: CommitStep, batchId: number, file?: string) => void;

/** Options of {@link FileCommitProtocol}. */
export interface FileCommitProtocolOptions {
  /** The data files' extension with its dot, e.g. `.parquet`. */
  extension: string;
  /** Manifests kept in the log (older ones are deleted); default 100. Replays only need the latest. */
  retainManifests?: number;
  onStep?: CommitObserver;
}

/** What a file may be written from. */
export type FileContents = string | Uint8Array | Iterable<string | Uint8Array>;

/** Collects the data files of one batch; see {@link FileCommitProtocol.writeBatch}. */
export interface BatchFiles {
  /**
   * Stages one data file of `rows` rows in partition folder `folder` (`''` or `k=v/k2=w`, relative).
   * @returns its final path relative to the output directory
   */
  add(folder: string, contents: FileContents, rows: number): Promise<string>;
}

/** The outcome of {@link FileCommitProtocol.writeBatch}. */
export interface BatchWriteResult {
  /** True when the batch was committed before (a replay) and nothing was written. */
  skipped: boolean;
  files: CommittedFile[];
}

/** What {@link FileCommitProtocol.recover} did. */
export interface RecoveryReport {
  /** Files of committed batches that a crash left unpublished, now renamed to their final names. */
  published: string[];
  /** Pending files of batches that never committed, and interrupted manifest writes, now deleted. */
  removed: string[];
}

/** The final file name of part `part` of batch `batchId`. */
export function dataFileName(batchId: number, part: number, extension: string): string {
  return `part-${String(batchId).padStart(8, '0')}-${String(part).padStart(5, '0')}${extension}`;
}

/** The hidden name a file is staged under before its batch commits. */
export function pendingPathOf(finalPath: string): string {
  return path.join(path.dirname(finalPath), `.${path.basename(finalPath)}${PENDING_SUFFIX}`);
}

function validateManifest(body: unknown, batchId: number): string | null {
  if (!isRecord(body)) return 'the manifest is not a JSON object';
  if (typeof body.queryId !== 'string' || body.queryId === '') return `field "queryId" must be a non-empty string`;
  const bad = checkInteger(body, 'batchId');
  if (bad !== null) return bad;
  if (body.batchId !== batchId) return `it is for batch ${String(body.batchId)}, not ${batchId}`;
  if (!Array.isArray(body.files)) return 'field "files" must be an array';
  for (const f of body.files) {
    if (!isRecord(f) || typeof f.path !== 'string' || f.path === '' || f.path.split('/').includes('..')) {
      return `entry ${JSON.stringify(f)} of "files" has no valid relative "path"`;
    }
    const count = checkInteger(f, 'rows') ?? checkInteger(f, 'bytes');
    if (count !== null) return `entry ${JSON.stringify(f.path)} of "files": ${count}`;
  }
  return null;
}

// Some platforms cannot open or fsync a directory; the rename is still atomic there, only less durable.

async function exists(file: string): Promise<boolean> {
  try {
    await fsp.access(file);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
}

function writeContents(file: string, contents: FileContents): Promise<number> {
  return guardedWrite(file, () => writeOpenedContents(file, contents));
}

async function writeOpenedContents(file: string, contents: FileContents): Promise<number> {
  await createDirectory(path.dirname(file));
  const handle = await fsp.open(file, 'w');
  try {
    // writeFile on an open handle writes all of its data at the current position, unlike a single write().
    if (typeof contents === 'string' || contents instanceof Uint8Array) await handle.writeFile(contents);
    else for (const chunk of contents) await handle.writeFile(chunk);
    await handle.sync();
    return (await handle.stat()).size;
  } finally {
    await handle.close();
  }
}

/** The exactly-once commit protocol of one output directory; one instance per running sink. */
export class FileCommitProtocol {
  private readonly log: BatchLog<SinkManifest>;
  private readonly retain: number;
  private queryId?: string;
  private latestCommitted = -1;
  /** The output directory, absolute. */
  readonly dir: string;

  /**
   * @param dir the output directory (created by {@link recover})
   * @param sinkName the sink's name for messages, e.g. `parquet`
   */
  constructor(
    dir: string,
    readonly sinkName: string,
    private readonly options: FileCommitProtocolOptions,
  ) {
    this.dir = path.resolve(dir);
    this.log = new BatchLog<SinkManifest>(path.join(this.dir, SINK_LOG_DIR), validateManifest);
    this.retain = Math.max(1, options.retainManifests ?? 100);
  }

  /** The manifest of `batchId`, or null when the batch is not committed (or its manifest was purged). */
  manifest(batchId: number): Promise<SinkManifest | null> {
    return this.log.get(batchId);
  }

  /**
   * Brings the directory to a clean state after a crash; call it once before the first batch. Refuses a
   * directory written by another query (their part names would collide, and a replay check against
   * their manifests would skip this query's batches). Publishes the unpublished files of committed
   * batches and deletes pending files of uncommitted ones and interrupted manifest writes. It lists the
   * whole output directory once.
   */
  async recover(queryId: string): Promise<RecoveryReport> {
    let created: string | undefined;
    try {
      created = await createDirectory(this.dir);
      await fsp.access(this.dir, fsp.constants.W_OK);
    } catch (err) {
      throw pathError(err, `the output directory ${this.dir}`, 'write to');
    }
    if (created !== undefined) await fsyncDir(path.dirname(path.resolve(created)));
    const latest = await this.log.latest();
    if (latest !== null && latest.entry.queryId !== queryId) throw this.foreignQuery(latest.entry.queryId, queryId);
    this.queryId = queryId;
    this.latestCommitted = latest?.batchId ?? -1;

    const staleTemps = await removeStaleTempFiles(this.log.dir);
    const report: RecoveryReport = { published: [], removed: staleTemps.map((n) => `${SINK_LOG_DIR}/${n}`) };
    const manifests = new Map<number, Set<string> | null>();
    const touched = new Set<string>();
    const names = (await fsp.readdir(this.dir, { recursive: true })) as string[];
    for (const rel of names) {
      const parts = rel.split(path.sep);
      const match = PENDING_FILE.exec(parts[parts.length - 1]);
      if (parts[0] === SINK_LOG_DIR || match === null) continue;
      const batchId = Number(match[1]);
      if (!manifests.has(batchId)) {
        const m = await this.log.get(batchId);
        manifests.set(batchId, m && new Set(m.files.map((f) => f.path)));
      }
      const finalRel = [...parts.slice(0, -1), parts[parts.length - 1].slice(1, -PENDING_SUFFIX.length)].join('/');
      const pendingAbs = path.join(this.dir, rel);
      if (manifests.get(batchId)?.has(finalRel)) {
        await fsp.rename(pendingAbs, path.join(this.dir, finalRel));
        report.published.push(finalRel);
      } else {
        await fsp.rm(pendingAbs, { force: true });
        report.removed.push(rel.split(path.sep).join('/'));
      }
      touched.add(path.dirname(pendingAbs));
    }
    for (const d of touched) await fsyncDir(d);
    return report;
  }

  /**
   * Writes batch `batchId` exactly once: `produce` stages its files through the given {@link BatchFiles};
   * then the manifest commits them and they are published. A batch that is already committed is not
   * produced again, only published to the end. If `produce` or staging fails, the staged files are
   * deleted and the error is rethrown; nothing of the batch is visible. (A pending file that could not
   * be deleted stays invisible; a retry overwrites it, or the next {@link recover} deletes it.)
   */
  async writeBatch(batchId: number, produce: (files: BatchFiles) => Promise<void>): Promise<BatchWriteResult> {
    const queryId = this.queryId;
    if (queryId === undefined) throw new Error(`${this.sinkName} sink: recover() must run before writeBatch()`);
    const existing = await this.log.get(batchId);
    if (existing !== null) {
      if (existing.queryId !== queryId) throw this.foreignQuery(existing.queryId, queryId);
      await this.publish(existing, false);
      return { skipped: true, files: existing.files };
    }
    // Manifests below the retained ones are purged; a batch older than the latest committed one was
    // committed before (Spark's FileStreamSink makes the same check).
    if (batchId < this.latestCommitted) return { skipped: true, files: [] };

    const staged: CommittedFile[] = [];
    const folders = new Set<string>();
    const files: BatchFiles = {
      add: async (folder, contents, rows) => {
        const segments = folder === '' ? [] : folder.split('/');
        if (path.isAbsolute(folder) || segments.some((s) => s === '' || s === '.' || s === '..')) {
          throw new Error(`invalid partition folder ${JSON.stringify(folder)}`);
        }
        const rel = [...segments, dataFileName(batchId, staged.length, this.options.extension)].join('/');
        const abs = path.join(this.dir, rel);
        // Reserve the part number before writing, so a failed write is still cleaned up below.
        const entry: CommittedFile = { path: rel, rows, bytes: 0 };
        staged.push(entry);
        entry.bytes = await writeContents(pendingPathOf(abs), contents);
        for (let i = 0; i <= segments.length; i++) folders.add(path.join(this.dir, ...segments.slice(0, i)));
        this.options.onStep?.('staged', batchId, rel);
        return rel;
      },
    };
    const manifest: SinkManifest = { queryId, batchId, files: staged };
    try {
      await produce(files);
      for (const d of folders) await fsyncDir(d);
      await this.log.add(batchId, manifest);
    } catch (err) {
      await Promise.all(staged.map((f) => fsp.rm(pendingPathOf(path.join(this.dir, f.path)), { force: true })));
      throw err;
    }
    this.latestCommitted = Math.max(this.latestCommitted, batchId);
    this.options.onStep?.('committed', batchId);
    crashPoint('in-sink', batchId);
    await this.publish(manifest, true);
    await this.log.purgeBefore(batchId - this.retain + 1);
    this.options.onStep?.('done', batchId);
    return { skipped: false, files: staged };
  }

  /** Renames the pending files of a committed batch to their final names. */
  private async publish(manifest: SinkManifest, allPending: boolean): Promise<void> {
    const folders = new Set<string>();
    for (const f of manifest.files) {
      const abs = path.join(this.dir, f.path);
      const pending = pendingPathOf(abs);
      if (allPending || (await exists(pending))) {
        await fsp.rename(pending, abs);
        folders.add(path.dirname(abs));
        this.options.onStep?.('published', manifest.batchId, f.path);
      } else if (!(await exists(abs))) {
        throw new SluiceError(
          'SINK_OUTPUT_MISSING',
          `file ${abs} of batch ${manifest.batchId} is listed in ${this.log.pathOf(manifest.batchId)} but is missing`,
          'restore the file, or delete the output directory and the checkpoint to start the query over',
        );
      }
    }
    for (const d of folders) await fsyncDir(d);
  }

  private foreignQuery(owner: string, queryId: string): SluiceError {
    return new SluiceError(
      'SINK_PATH_IN_USE',
      `the ${this.sinkName} sink's output directory ${this.dir} holds the output of another query (id ${owner}; this query is ${queryId})`,
      'give each query its own output path, or delete that directory to start its output over',
    );
  }
}
