/**
 * Read-only inspection of checkpoint directories (`sluice checkpoint`). Nothing here writes, creates or
 * removes a file, not even the temporary files a crash left behind: a user may point it at the
 * checkpoint of a query that is running.
 *
 * A problem in one part (a corrupt commit file, a missing state delta) is recorded in the query's
 * `problems` and the rest is still read, so one torn file does not hide everything else.
 */
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { isTempFileName } from '../checkpoint/atomic-file.js';
import { type CommitEntry, CommitLog } from '../checkpoint/commit-log.js';
import { isRecord } from '../checkpoint/fields.js';
import { metadataPath } from '../checkpoint/metadata.js';
import { type ConfValues, type OffsetEntry, OffsetLog } from '../checkpoint/offset-log.js';
import { readVersionedEntry } from '../checkpoint/versioned-file.js';
import { describeError, SluiceError } from '../errors.js';
import type { QueryProgress } from '../exec/progress.js';
import { joinBufferedRows, joinStateRows } from '../plan/operators/join-state.js';
import {
  EXPIRIES_FIELD,
  type KeyRow,
  parseRowPerVariableKey,
  ROW_PER_VARIABLE_KEY,
  TIMERS_FIELD,
  timersOf,
  VARIABLES_KEY,
} from '../plan/operators/transform-with-state-rows.js';
import type { StateVariableRecords } from '../plan/operators/transform-with-state-schema.js';
import { StateStore } from '../state/state-store.js';

/** Figures of one stateful operator's state, as of the last committed batch. */
export interface StateOperatorSummary {
  /** The operator id: its directory name under `state/`. */
  id: string;
  /** The operator's name in progress reports (e.g. `mapGroupsWithState#3`), from the offset log or a progress log. */
  name: string | null;
  partitions: number;
  /** The state version read: the one the last committed batch wrote (0 = empty). */
  version: number;
  /** Keys in the state (the rows `--state` shows). */
  numRows: number;
  /** Rows the engine keeps for itself (e.g. an aggregation's output schema); progress reports count them in `numRowsTotal`. */
  internalRows: number;
  /** Bytes of the operator's delta and snapshot files. */
  diskBytes: number;
  files: number;
  /** Bytes the state takes once loaded (as `memoryUsedBytes` in progress reports). */
  memoryBytes: number;
}

/** One source's position, from the latest plan. */
export interface SourcePosition {
  index: number;
  /** What the source reads, from the offset log or a progress log. */
  description: string | null;
  /** Where the latest planned batch started and ended (source-specific JSON). */
  start: unknown;
  end: unknown;
}

/** What a checkpoint says about one query. */
export interface QueryCheckpointSummary {
  /** The query's checkpoint directory. */
  dir: string;
  /** Its path relative to the inspected directory: `.` for the directory itself, else e.g. the app output's name. */
  name: string;
  queryId: string | null;
  formatVersion: number | null;
  createdAt: string | null;
  /** Settings fixed for the life of the checkpoint (e.g. numStatePartitions). */
  conf: ConfValues;
  lastPlannedBatch: number | null;
  lastCommittedBatch: number | null;
  lastCommittedAt: string | null;
  /** A batch that was planned but not committed: it runs again, with the same offsets, on restart. */
  pendingBatch: number | null;
  /** The oldest batch whose plan is still kept (older ones were purged). */
  oldestRetainedBatch: number | null;
  /** The event-time watermark the next batch runs with; null before any watermark. */
  watermarkMs: number | null;
  sources: SourcePosition[];
  stateOperators: StateOperatorSummary[];
  /** All files of the query's checkpoint, in bytes. */
  diskBytes: number;
  /** The query's last progress line in the progress log, when one was given and has it. */
  lastProgress: QueryProgress | null;
  /** What could not be read, one sentence each (naming the file). */
  problems: string[];
}

/** Options of {@link inspectCheckpoint}. */
export interface InspectOptions {
  /** A `sluice run --progress-log` file: gives the last progress and operator and source names. */
  progressLog?: string;
  /** Skip loading state (no row counts or memory figures); for a quick look at a large state. */
  skipState?: boolean;
}

/** A state row as `--state` shows it. */
export interface StateRow {
  partition: number;
  /** The grouping key. */
  key: unknown;
  /** transformWithState only: the state variable the row belongs to, or `(timers)` for the key's timers. */
  variable?: string;
  /** The state; for transformWithState's timers, their times. */
  value: unknown;
  /** Timeout timestamp in ms (for transformWithState, the TTL expiry), or null when the row has none. */
  timeoutMs: number | null;
}

/** The rows of one operator's state. */
export interface StateContents {
  query: string;
  operator: StateOperatorSummary;
  /** Rows matching the filter, before the limit; internal rows excluded. */
  matched: number;
  /** Bookkeeping rows of the engine (e.g. an aggregation's output schema), never shown. */
  internalRows: number;
  /** The rows shown, ordered by key (and by variable for transformWithState). */
  rows: StateRow[];
  /**
   * The operator's own counters in the last progress (e.g. deduplication's numDroppedDuplicateRows), with the
   * batch they are of, when a progress log was given.
   */
  lastMetrics?: { batchId: number; customMetrics: Record<string, number> };
  /** transformWithState only: its state variables as declared, by name. */
  variables?: StateVariableRecords;
}

/** Options of {@link readStateRows}. */
export interface StateReadOptions {
  /** Show at most this many rows (default all). */
  limit?: number;
  /** Only the rows whose key, rendered as text, equals this (e.g. `user-1`, or `["a",1]` for a composite key). */
  key?: string;
}

const CHECKPOINT_MARKERS = ['metadata', 'offsets', 'commits'];
const MAX_SEARCH_DEPTH = 3;
const INTERNAL_KEY_PREFIX = '\u0000sluice:';
const PROGRESS_CHUNK = 1 << 16;

function isQueryDir(dir: string): boolean {
  return CHECKPOINT_MARKERS.some((m) => fs.existsSync(path.join(dir, m)));
}

function queryDirsBelow(dir: string, depth: number): string[] {
  if (isQueryDir(dir)) return [dir];
  if (depth === 0) return [];
  let entries: fs.Dirent[];
  try {
    entries = fs.readdirSync(dir, { withFileTypes: true });
  } catch {
    return [];
  }
  return entries
    .filter((e) => e.isDirectory() && !e.name.startsWith('.'))
    .sort((a, b) => a.name.localeCompare(b.name))
    .flatMap((e) => queryDirsBelow(path.join(dir, e.name), depth - 1));
}

/**
 * The query checkpoint directories in `dir`: `dir` itself when it is one, else those below it (an app
 * with several outputs checkpoints each in `<dir>/<output>`).
 * Throws SluiceError CHECKPOINT_NOT_FOUND or NOT_A_CHECKPOINT.
 */
export function findQueryCheckpoints(dir: string): string[] {
  let stat: fs.Stats;
  try {
    stat = fs.statSync(dir);
  } catch {
    throw new SluiceError(
      'CHECKPOINT_NOT_FOUND',
      `checkpoint directory ${dir} does not exist`,
      'give the directory a query was run with (sluice run --checkpoint DIR; the default is checkpoints/<app>)',
    );
  }
  if (!stat.isDirectory()) {
    throw new SluiceError(
      'NOT_A_CHECKPOINT',
      `${dir} is a file, not a checkpoint directory`,
      'give the directory a query was run with (sluice run --checkpoint DIR)',
    );
  }
  const found = queryDirsBelow(dir, MAX_SEARCH_DEPTH);
  if (found.length === 0) {
    throw new SluiceError(
      'NOT_A_CHECKPOINT',
      `${dir} is not a checkpoint directory: neither it nor a directory below it has a metadata, offsets or commits entry`,
      'give the directory a query was run with (sluice run --checkpoint DIR); a query that never started has no checkpoint yet',
    );
  }
  return found;
}

/** Inspects every query checkpoint in `dir` (see {@link findQueryCheckpoints}). */
export async function inspectCheckpoint(dir: string, options: InspectOptions = {}): Promise<QueryCheckpointSummary[]> {
  const dirs = findQueryCheckpoints(dir);
  const out: QueryCheckpointSummary[] = [];
  for (const d of dirs) out.push(await inspectQuery(d, path.relative(dir, d) || '.', options));
  return out;
}

async function attempt<T>(problems: string[], fn: () => Promise<T>): Promise<T | null> {
  try {
    return await fn();
  } catch (err) {
    if (!(err instanceof SluiceError)) throw err;
    problems.push(describeError(err));
    return null;
  }
}

function validateMetadataBody(body: unknown): string | null {
  if (!isRecord(body)) return 'the metadata is not a JSON object';
  if (typeof body.id !== 'string' || body.id === '')
    return `field "id" must be a non-empty string, found ${JSON.stringify(body.id)}`;
  return null;
}

async function inspectQuery(dir: string, name: string, options: InspectOptions): Promise<QueryCheckpointSummary> {
  const problems: string[] = [];
  const meta = await attempt(problems, async () => {
    try {
      return await readVersionedEntry<{ id: string; createdAtMs?: number; conf?: ConfValues }>(
        metadataPath(dir),
        validateMetadataBody,
      );
    } catch (err) {
      if (err instanceof SluiceError && err.code === 'CHECKPOINT_MISSING') {
        throw new SluiceError(
          'CHECKPOINT_CORRUPT',
          `checkpoint ${dir} has no metadata file (${metadataPath(dir)})`,
          'the query id is unknown; restore the file from a backup',
          { cause: err },
        );
      }
      throw err;
    }
  });
  const offsets = new OffsetLog(path.join(dir, 'offsets'));
  const commits = new CommitLog(path.join(dir, 'commits'));
  const plan = await attempt(problems, () => offsets.latest());
  const commit = await attempt(problems, () => commits.latest());
  const planIds = await offsets.batchIds();
  const queryId = meta?.body.id ?? null;
  const lastProgress =
    options.progressLog && queryId
      ? await attempt(problems, () => readLastProgress(options.progressLog!, queryId))
      : null;
  const lastCommitted = commit?.batchId ?? null;
  const stateOperators = await summariseState(
    dir,
    lastCommitted,
    plan?.entry.operators ?? lastProgress?.stateOperators.map((o) => o.operatorName) ?? [],
    options,
    problems,
  );
  return {
    dir,
    name,
    queryId,
    formatVersion: meta?.version ?? null,
    createdAt: typeof meta?.body.createdAtMs === 'number' ? new Date(meta.body.createdAtMs).toISOString() : null,
    conf: meta?.body.conf ?? {},
    lastPlannedBatch: plan?.batchId ?? null,
    lastCommittedBatch: lastCommitted,
    lastCommittedAt: commit ? new Date(commit.entry.committedAtMs).toISOString() : null,
    pendingBatch: plan && plan.batchId !== lastCommitted ? plan.batchId : null,
    oldestRetainedBatch: planIds[0] ?? null,
    watermarkMs: watermarkOf(plan?.entry ?? null, commit?.entry ?? null),
    sources: (plan?.entry.sources ?? []).map((s, index) => ({
      index,
      description: s.description ?? lastProgress?.sources[index]?.description ?? null,
      start: s.start,
      end: s.end,
    })),
    stateOperators,
    diskBytes: await directoryBytes(dir),
    lastProgress,
    problems,
  };
}

/** The watermark the next batch runs with: the last commit's, else the pending plan's; 0 means none yet. */
function watermarkOf(plan: OffsetEntry | null, commit: CommitEntry | null): number | null {
  const ms = commit ? commit.nextWatermarkMs : (plan?.batchWatermarkMs ?? 0);
  return ms > 0 ? ms : null;
}

async function directoryBytes(dir: string): Promise<number> {
  let total = 0;
  for (const e of await fsp.readdir(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) total += await directoryBytes(p);
    else if (e.isFile()) total += (await fsp.stat(p)).size;
  }
  return total;
}

function numericSubdirs(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return fs
    .readdirSync(dir, { withFileTypes: true })
    .filter((e) => e.isDirectory() && /^[0-9]+$/.test(e.name))
    .map((e) => e.name)
    .sort((a, b) => Number(a) - Number(b));
}

/** The state version the commit of batch B stands for: batch B reads version B and writes B + 1. */
function committedStateVersion(lastCommitted: number | null): number {
  return lastCommitted === null ? 0 : lastCommitted + 1;
}

/** `operatorNames`: as progress names them (`mapGroupsWithState#3`), from the offset log or a progress log. */
async function summariseState(
  dir: string,
  lastCommitted: number | null,
  operatorNames: readonly string[],
  options: InspectOptions,
  problems: string[],
): Promise<StateOperatorSummary[]> {
  const version = committedStateVersion(lastCommitted);
  const out: StateOperatorSummary[] = [];
  for (const id of numericSubdirs(path.join(dir, 'state'))) {
    const parts = numericSubdirs(path.join(dir, 'state', id));
    const summary: StateOperatorSummary = {
      id,
      name: operatorNames.find((n) => n.endsWith(`#${id}`)) ?? null,
      partitions: parts.length,
      version,
      numRows: 0,
      internalRows: 0,
      diskBytes: 0,
      files: 0,
      memoryBytes: 0,
    };
    for (const part of parts) {
      const partDir = path.join(dir, 'state', id, part);
      for (const f of await fsp.readdir(partDir)) {
        if (isTempFileName(f)) continue;
        summary.files++;
        summary.diskBytes += (await fsp.stat(path.join(partDir, f))).size;
      }
      if (options.skipState) continue;
      const store = await attempt(problems, () => StateStore.load(partDir, version));
      const joinRows = store && joinBufferedRows(store);
      if (store && joinRows !== null) {
        // A join's state rows are chunks of buffered rows: count the rows, as its progress does.
        summary.numRows += joinRows;
        summary.internalRows += store.size;
        summary.memoryBytes += store.memoryUsedBytes();
      } else if (store) {
        let internal = 0;
        for (const key of store.keys()) if (isInternalStateKey(key)) internal++;
        summary.internalRows += internal;
        summary.numRows += store.size - internal;
        summary.memoryBytes += store.memoryUsedBytes();
      }
    }
    out.push(summary);
  }
  return out;
}

/**
 * The last progress of query `queryId` in a `--progress-log` file (JSON lines, newest last), read from
 * the end so a long log costs little. A torn last line (a run still writing) is skipped.
 */
export async function readLastProgress(file: string, queryId: string): Promise<QueryProgress | null> {
  let handle: fsp.FileHandle;
  try {
    handle = await fsp.open(file, 'r');
  } catch {
    throw new SluiceError(
      'PROGRESS_LOG_NOT_FOUND',
      `progress log ${file} cannot be read`,
      'give the file a query wrote with sluice run --progress-log FILE',
    );
  }
  try {
    let pos = (await handle.stat()).size;
    // The bytes before the first newline of what was read so far: the end of a line that starts earlier.
    let carry = Buffer.alloc(0);
    while (pos > 0) {
      const start = Math.max(0, pos - PROGRESS_CHUNK);
      const buf = Buffer.alloc(pos - start);
      await handle.read(buf, 0, buf.length, start);
      pos = start;
      const data = Buffer.concat([buf, carry]);
      let lineEnd = data.length;
      for (let nl = data.lastIndexOf(0x0a, lineEnd - 1); nl >= 0; nl = nl === 0 ? -1 : data.lastIndexOf(0x0a, nl - 1)) {
        const p = parseProgressLine(data.subarray(nl + 1, lineEnd).toString('utf8'));
        if (p && p.id === queryId) return p;
        lineEnd = nl;
      }
      carry = data.subarray(0, lineEnd);
    }
    const first = parseProgressLine(carry.toString('utf8'));
    return first && first.id === queryId ? first : null;
  } finally {
    await handle.close();
  }
}

function parseProgressLine(line: string): QueryProgress | null {
  if (line.trim() === '') return null;
  try {
    const p: unknown = JSON.parse(line);
    return isRecord(p) && typeof p.id === 'string' && typeof p.batchId === 'number'
      ? (p as unknown as QueryProgress)
      : null;
  } catch {
    return null;
  }
}

/** True for rows the engine keeps for itself in an operator's state (e.g. an aggregation's output schema). */
export function isInternalStateKey(key: unknown): boolean {
  return Array.isArray(key) && key.length === 1 && typeof key[0] === 'string' && key[0].startsWith(INTERNAL_KEY_PREFIX);
}

/**
 * Finds an operator of a query by id (`3`) or name (`mapGroupsWithState#3`, or `mapGroupsWithState` when
 * only one operator has that name). Throws SluiceError UNKNOWN_OPERATOR listing the operators.
 */
export function findOperator(query: QueryCheckpointSummary, ref: string): StateOperatorSummary {
  const ops = query.stateOperators;
  const byId = ops.find((o) => o.id === ref || o.name === ref);
  if (byId) return byId;
  const byName = ops.filter((o) => o.name !== null && o.name.slice(0, o.name.lastIndexOf('#')) === ref);
  if (byName.length === 1) return byName[0];
  const listed = ops.map((o) => (o.name ? `${o.id} (${o.name})` : o.id)).join(', ');
  throw new SluiceError(
    'UNKNOWN_OPERATOR',
    `query ${query.name} has no stateful operator '${ref}'`,
    ops.length === 0
      ? 'it keeps no state'
      : byName.length > 1
        ? `several operators are named ${ref}: give the id, one of ${listed}`
        : `its operators are: ${listed}`,
  );
}

/** Text of a key as `--key` matches it: strings and numbers as they are, anything else as JSON. */
export function keyText(key: unknown): string {
  if (typeof key === 'string' || typeof key === 'number' || typeof key === 'bigint' || typeof key === 'boolean')
    return String(key);
  return JSON.stringify(toJsonValue(key));
}

/**
 * The state rows of one operator at the last committed batch, ordered by key. Loads every partition, so
 * it costs what the operator's state takes in memory.
 */
export async function readStateRows(
  query: QueryCheckpointSummary,
  operator: StateOperatorSummary,
  options: StateReadOptions = {},
): Promise<StateContents> {
  const rows: Array<StateRow & { sort: string }> = [];
  let internalRows = 0;
  let variables: StateVariableRecords | undefined;
  for (const part of numericSubdirs(path.join(query.dir, 'state', operator.id))) {
    const store = await StateStore.load(path.join(query.dir, 'state', operator.id, part), operator.version);
    const rowPerKey = store.has(VARIABLES_KEY);
    const declared = store.get(rowPerKey ? VARIABLES_KEY : ROW_PER_VARIABLE_KEY) as StateVariableRecords | undefined;
    if (declared !== undefined) variables = { ...variables, ...declared };
    const joined = joinStateRows(store.entries());
    if (joined) {
      internalRows++;
      for (const { key, value } of joined) {
        const text = keyText(key);
        if (options.key === undefined || text === options.key)
          rows.push({ partition: Number(part), key, value, timeoutMs: null, sort: text });
      }
      continue;
    }
    for (const [stored, value] of store.entries()) {
      if (isInternalStateKey(stored)) {
        internalRows++;
        continue;
      }
      const t = store.getTimeout(stored);
      const found =
        declared === undefined
          ? [{ key: stored, value, timeoutMs: t >= 0 ? t : null }]
          : rowPerKey
            ? variableRows(stored, value as KeyRow, t)
            : [rowPerVariableRow(stored, value, t)];
      for (const row of found) {
        const text = keyText(row.key);
        if (options.key !== undefined && text !== options.key) continue;
        rows.push({ partition: Number(part), ...row, sort: text });
      }
    }
  }
  rows.sort(
    (a, b) =>
      compareKeys(a.key, b.key) ||
      (a.sort < b.sort ? -1 : a.sort > b.sort ? 1 : 0) ||
      variableOrder(a.variable, b.variable),
  );
  const limit = options.limit ?? Infinity;
  const p = query.lastProgress;
  const custom = p?.stateOperators.find((o) => o.operatorName === operator.name)?.customMetrics;
  return {
    query: query.name,
    operator,
    matched: rows.length,
    internalRows,
    rows: rows.slice(0, limit).map(({ sort: _s, ...r }) => r),
    ...(p && custom ? { lastMetrics: { batchId: p.batchId, customMetrics: custom } } : {}),
    ...(variables === undefined ? {} : { variables }),
  };
}

/** How `--state` names the timers of a transformWithState key. */
export const TIMERS_VARIABLE = '(timers)';

/** A transformWithState variable's value or a key's timers (shown as times), with the value's TTL expiry. */
interface VariableRow {
  key: unknown;
  variable: string;
  value: unknown;
  timeoutMs: number | null;
}

/** A transformWithState key's row as a row per variable, and one of its timers when it has any. */
function variableRows(key: unknown, row: KeyRow, timeoutMs: number): VariableRow[] {
  const expiries = (row[EXPIRIES_FIELD] ?? {}) as Record<string, number>;
  const out: VariableRow[] = [];
  for (const name of Object.keys(row)) {
    if (name === EXPIRIES_FIELD || name === TIMERS_FIELD) continue;
    out.push({ key, variable: name, value: row[name], timeoutMs: expiries[name] ?? null });
  }
  const timers = timersOf(row, timeoutMs);
  if (timers.length > 0)
    out.push({ key, variable: TIMERS_VARIABLE, value: timers.map((t) => new Date(t)), timeoutMs: null });
  return out;
}

/** A row of a checkpoint written as a row per variable and key (before its first batch on this version). */
function rowPerVariableRow(stored: unknown, value: unknown, timeoutMs: number): VariableRow {
  const row = parseRowPerVariableKey(stored);
  if (row === null) return { key: stored, variable: '', value, timeoutMs: null };
  if (row.variable === TIMERS_FIELD) {
    return {
      key: row.key,
      variable: TIMERS_VARIABLE,
      value: (value as number[]).map((t) => new Date(t)),
      timeoutMs: null,
    };
  }
  return { key: row.key, variable: row.variable, value, timeoutMs: timeoutMs >= 0 ? timeoutMs : null };
}

/** Variables by name, a key's timers last. */
function variableOrder(a: string | undefined, b: string | undefined): number {
  if (a === b || a === undefined || b === undefined) return 0;
  if (a === TIMERS_VARIABLE) return 1;
  if (b === TIMERS_VARIABLE) return -1;
  return a < b ? -1 : 1;
}

/** Numbers compare as numbers, so `b2` sorts before `b10` only where the key is a string. */
function compareKeys(a: unknown, b: unknown): number {
  if (typeof a === 'number' && typeof b === 'number') return a - b;
  if (Array.isArray(a) && Array.isArray(b)) {
    for (let i = 0; i < Math.min(a.length, b.length); i++) {
      const c = compareKeys(a[i], b[i]);
      if (c !== 0) return c;
    }
    return a.length - b.length;
  }
  return 0;
}

/**
 * A state value as JSON: Dates as ISO strings, bigints as strings, bytes as base64, Maps as objects (or
 * `[key, value]` pairs when a key is not a string), Sets as arrays, undefined as null.
 */
export function toJsonValue(v: unknown): unknown {
  if (v === undefined || v === null) return null;
  if (typeof v === 'bigint') return v.toString();
  if (typeof v === 'number') return Number.isFinite(v) ? v : String(v);
  if (typeof v !== 'object') return v;
  if (v instanceof Date) return Number.isNaN(v.getTime()) ? null : v.toISOString();
  if (v instanceof Uint8Array) return Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64');
  if (Array.isArray(v)) return v.map(toJsonValue);
  if (v instanceof Set) return [...v].map(toJsonValue);
  if (v instanceof Map) {
    const entries = [...v.entries()];
    return entries.every(([k]) => typeof k === 'string')
      ? Object.fromEntries(entries.map(([k, x]) => [k, toJsonValue(x)]))
      : entries.map(([k, x]) => [toJsonValue(k), toJsonValue(x)]);
  }
  return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, toJsonValue(x)]));
}
