/**
 * The socket source (`socket://HOST:PORT`): a TCP client that receives text lines in the background. Unlike
 * Spark's, it can be replayed: every received line is appended to a receive log in the checkpoint and
 * fsynced before an offset can include it, so a crash loses no line that a batch was planned over, and a
 * replayed batch reads the same lines from the log. Offsets count lines since the query first started.
 *
 * Receive log: `<checkpoint>/sources/<i>/receive-log/<first>.log`, segments named by the index of their first
 * line, each a `v1` version line followed by the lines. Only the newest segment is appended to; segments
 * whose lines are all committed are deleted.
 */
import * as fsp from 'node:fs/promises';
import * as net from 'node:net';
import * as path from 'node:path';
import { StringDecoder } from 'node:string_decoder';
import type { Schema } from 'apache-arrow';
import { type SchemaSpec, schemaFromSpec, schemaToSpec, type TypeSpec } from '../arrow/schema.js';
import { writeFileAtomic } from '../checkpoint/atomic-file.js';
import { corruptCheckpointFile } from '../checkpoint/versioned-file.js';
import { pathError, SluiceError } from '../errors.js';
import { sleep } from '../util/clock.js';
import { createDirectory } from '../util/create-directory.js';
import { guardedWrite } from '../util/file-write.js';
import { notice } from '../util/notices.js';
import { counterOf } from './counter-offsets.js';
import { DataSignal } from './data-signal.js';
import { cachedSchema, DEFAULT_CORRUPT_COLUMN, type ParseMode } from './decode/common.js';
import { decodeJsonLines } from './decode/json-lines.js';
import { decodeText, TEXT_SCHEMA } from './decode/text.js';
import type { ReadLimit, ReadResult, ReadTask, SourceContext, SourceOffset, StreamSource } from './source.js';

/** Options of {@link SocketSource}. */
export interface SocketSourceOptions {
  host: string;
  port: number;
  /** text (default): one `value` column per line; json: JSON lines decoded with `schema`. */
  format?: 'text' | 'json';
  /** Required for json. */
  schema?: SchemaSpec | Schema;
  /** Malformed-record policy for json; default PERMISSIVE. */
  mode?: ParseMode;
  badRecordsPath?: string;
  columnNameOfCorruptRecord?: string;
  /** A new log segment starts when the current one reaches this size. Default 4 MiB. */
  segmentBytes?: number;
  /** Received lines are written and fsynced at least this often. Default 100 ms. */
  flushIntervalMs?: number;
  /** Upper bound of the reconnect backoff. Default 5000 ms. */
  maxReconnectDelayMs?: number;
  /** How long a connection attempt may take. Default 5000 ms. */
  connectTimeoutMs?: number;
  /**
   * How long to keep trying when the server is not listening yet at start, as when a generator and the
   * query are started together. Default 30 s; 0 fails at once.
   */
  waitForServerMs?: number;
  /** Where connection events are reported; default the process's notices (util/notices.ts). */
  log?: (message: string) => void;
}

/** Offset of the socket source: lines [0, lines) of the receive log have been admitted. */
export interface SocketOffset {
  lines: number;
}

/** Spec of a `socket` read task: lines [from, to) of the receive log, found in the listed segments. */
export interface SocketReadSpec {
  location: string;
  format: 'text' | 'json';
  from: number;
  to: number;
  /** Segments holding the lines, in order, with the index of their first line. */
  segments: { file: string; first: number }[];
  schema: Record<string, TypeSpec>;
  mode: ParseMode;
  columnNameOfCorruptRecord: string;
  badRecords?: { dir: string; task: string };
}

const SEGMENT_HEADER = 'v1\n';
const SEGMENT_NAME = /^(0|[1-9][0-9]*)\.log$/;
const FIRST_RECONNECT_DELAY_MS = 250;
/** How long a query waits at start for a socket server that is not listening yet. */
export const DEFAULT_WAIT_FOR_SERVER_MS = 30_000;
const FLUSH_NOW_BYTES = 1024 * 1024;

interface Segment {
  first: number;
  file: string;
}

/** The replayable socket source. */
export class SocketSource implements StreamSource {
  readonly description: string;
  private readonly location: string;
  private readonly format: 'text' | 'json';
  private readonly sourceSchema: Schema;
  private readonly segmentBytes: number;
  private readonly flushIntervalMs: number;
  private readonly maxReconnectDelayMs: number;
  private readonly connectTimeoutMs: number;
  private readonly waitForServerMs: number;
  private readonly log: (message: string) => void;
  private logDir = '';
  private index = 0;
  private segments: Segment[] = [];
  private handle: fsp.FileHandle | null = null;
  private currentBytes = 0;
  /** Lines written to the log and fsynced. */
  private durable = 0;
  private pending: string[] = [];
  /** Notified as lines arrive. */
  private readonly arrival = new DataSignal();
  /** Lines the last latestOffset saw in the log. */
  private seen = 0;
  private pendingBytes = 0;
  private partial = '';
  private decoder = new StringDecoder('utf8');
  private flushing: Promise<void> = Promise.resolve();
  private flushTimer: NodeJS.Timeout | null = null;
  private flushError: unknown = null;
  private socket: net.Socket | null = null;
  private isConnected = false;
  private attempts = 0;
  private reconnectTimer: NodeJS.Timeout | null = null;
  private stopped = false;

  constructor(readonly options: SocketSourceOptions) {
    if (!options.host || !(Number.isInteger(options.port) && options.port > 0 && options.port < 65536)) {
      throw new SluiceError(
        'BAD_OPTION',
        `the socket source needs a host and a port (1-65535), found ${options.host}:${options.port}`,
        'write socket://HOST:PORT, e.g. socket://localhost:9999',
      );
    }
    this.format = options.format ?? 'text';
    if (this.format !== 'text' && this.format !== 'json') {
      throw new SluiceError(
        'BAD_OPTION',
        `the socket source cannot read format '${String(this.format)}'`,
        'use text or json',
      );
    }
    if (this.format === 'json') {
      if (options.schema === undefined) {
        throw new SluiceError(
          'SCHEMA_REQUIRED',
          'the socket source with format json needs a schema',
          "give one, e.g. schema='user STRING, amount DOUBLE'",
        );
      }
      this.sourceSchema = schemaFromSpec(options.schema);
    } else {
      if (options.schema !== undefined) {
        throw new SluiceError(
          'BAD_OPTION',
          'format text takes no schema: it always gives one string column named value',
          'drop the schema option, or use format json',
        );
      }
      this.sourceSchema = TEXT_SCHEMA;
    }
    this.segmentBytes = options.segmentBytes ?? 4 * 1024 * 1024;
    this.flushIntervalMs = options.flushIntervalMs ?? 100;
    this.maxReconnectDelayMs = options.maxReconnectDelayMs ?? 5000;
    this.connectTimeoutMs = options.connectTimeoutMs ?? 5000;
    this.waitForServerMs = options.waitForServerMs ?? DEFAULT_WAIT_FOR_SERVER_MS;
    this.log = options.log ?? notice;
    this.location = `socket ${options.host}:${options.port}`;
    this.description = `SocketSource[${options.host}:${options.port}]`;
  }

  /**
   * Recovers the receive log, then connects; a server that cannot be reached at start is retried with
   * backoff for waitForServerMs, with a notice per attempt, and is an error after that.
   */
  async initialize(ctx: SourceContext): Promise<void> {
    this.index = ctx.index;
    this.logDir = path.join(ctx.dir, 'receive-log');
    try {
      await createDirectory(this.logDir);
    } catch (err) {
      throw pathError(err, `the socket source's receive log ${this.logDir}`, 'create');
    }
    await this.recoverLog();
    const giveUpAt = Date.now() + this.waitForServerMs;
    for (let attempt = 1; ; attempt++) {
      try {
        await this.connect();
        if (attempt > 1) this.log(`${this.sourceName}: connected after ${attempt} attempts`);
        return;
      } catch (err) {
        const why = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
        const left = giveUpAt - Date.now();
        if (left <= 0 || this.stopped) {
          await this.closeLog();
          const waited = this.waitForServerMs > 0 ? ` after trying for ${formatSeconds(this.waitForServerMs)}` : '';
          throw new SluiceError(
            'SOCKET_CONNECT',
            `cannot connect to ${this.location} (${why})${waited}`,
            `start the server first (for a test, \`nc -lk ${this.options.port}\`), fix the host and port, ` +
              'or wait longer for it with ?waitForServer=2m',
            { cause: err },
          );
        }
        const delay = Math.min(left, this.maxReconnectDelayMs, FIRST_RECONNECT_DELAY_MS * 2 ** (attempt - 1));
        this.log(
          `${this.sourceName}: cannot connect (${why}); retrying in ${formatSeconds(delay)} ` +
            `(attempt ${attempt + 1}; waits up to ${formatSeconds(this.waitForServerMs)} for the server, option waitForServer)`,
        );
        await sleep(delay);
      }
    }
  }

  schema(): Schema {
    return this.sourceSchema;
  }

  /** How connection notices name this source. */
  private get sourceName(): string {
    return `socket source ${this.options.host}:${this.options.port}`;
  }

  /** True while the TCP connection is up. */
  get connected(): boolean {
    return this.isConnected;
  }

  /** Lines received so far (durable or not). */
  get receivedLines(): number {
    return this.durable + this.pending.length;
  }

  /** Lines that are in the receive log and fsynced; offsets never go beyond this. */
  get durableLines(): number {
    return this.durable;
  }

  /** Writes what was received so far to the log and fsyncs it. */
  flush(): Promise<void> {
    this.flushing = this.flushing.then(() => this.writePending());
    return this.flushing;
  }

  async latestOffset(start: SourceOffset | null, limit: ReadLimit): Promise<SourceOffset | null> {
    await this.flush();
    if (this.flushError) throw this.flushError;
    const from = start === null ? 0 : this.linesOf(start);
    let end = this.durable;
    this.seen = end;
    if (limit.maxRows !== undefined) end = Math.min(end, from + limit.maxRows);
    if (end <= from) return start;
    return { lines: end } satisfies SocketOffset;
  }

  waitForData(signal: AbortSignal): Promise<void> {
    return this.durable > this.seen || this.pending.length > 0 ? Promise.resolve() : this.arrival.wait(signal);
  }

  async planRead(start: SourceOffset | null, end: SourceOffset, _batchId: number): Promise<ReadTask[]> {
    const from = start === null ? 0 : this.linesOf(start);
    const to = this.linesOf(end);
    const first = this.segments[0]?.first ?? 0;
    if (from < first) {
      throw new SluiceError(
        'CHECKPOINT_CORRUPT',
        `lines ${from}..${to} of ${this.location} are no longer in the receive log ` +
          `${this.logDir} (it starts at line ${first})`,
        'the offset log and the receive log disagree: restore the checkpoint from a backup, or delete it to start over',
      );
    }
    if (to <= from) return [];
    const spec: SocketReadSpec = {
      location: this.location,
      format: this.format,
      from,
      to,
      segments: this.segments.filter((s, k) => s.first < to && (this.segments[k + 1]?.first ?? Infinity) > from),
      schema: schemaToSpec(this.sourceSchema),
      mode: this.options.mode ?? 'PERMISSIVE',
      columnNameOfCorruptRecord: this.options.columnNameOfCorruptRecord ?? DEFAULT_CORRUPT_COLUMN,
    };
    if (this.options.badRecordsPath)
      spec.badRecords = { dir: path.resolve(this.options.badRecordsPath), task: `source${this.index}-socket` };
    return [{ reader: 'socket', spec }];
  }

  rowCount(start: SourceOffset | null, end: SourceOffset): number | undefined {
    return this.format === 'text' ? this.linesOf(end) - (start === null ? 0 : this.linesOf(start)) : undefined;
  }

  /** Deletes the log segments whose lines are all below `end`; the newest segment always stays. */
  async commit(end: SourceOffset): Promise<void> {
    // A query whose other sources had data commits this one at null before it ever received a line.
    if (end === null) return;
    const upTo = this.linesOf(end);
    while (this.segments.length > 1 && this.segments[1].first <= upTo) {
      const seg = this.segments.shift()!;
      await fsp.rm(seg.file, { force: true });
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    if (this.flushTimer) clearTimeout(this.flushTimer);
    this.socket?.destroy();
    this.socket = null;
    this.isConnected = false;
    this.takePartialLine();
    await this.flush();
    await this.closeLog();
  }

  private linesOf(offset: SourceOffset): number {
    const n = counterOf(offset, 'lines', 'socket');
    if (n > this.durable) {
      throw new SluiceError(
        'CHECKPOINT_CORRUPT',
        `the offset log asks for ${n} lines of ${this.location}, but the receive log ` +
          `${this.logDir} holds only ${this.durable}`,
        'restore the checkpoint directory from a backup, or delete it to start over',
      );
    }
    return n;
  }

  // ---- receive log ----

  /**
   * Reads the segments back: checks their version line and that they follow each other without gaps, and cuts
   * a torn last line (a write the crash interrupted; it was never fsynced, so no batch can include it).
   */
  private async recoverLog(): Promise<void> {
    const names = (await fsp.readdir(this.logDir)).filter((n) => SEGMENT_NAME.test(n));
    this.segments = names
      .map((n) => ({ first: Number(n.slice(0, -4)), file: path.join(this.logDir, n) }))
      .sort((a, b) => a.first - b.first);
    let next = this.segments[0]?.first ?? 0;
    for (let k = 0; k < this.segments.length; k++) {
      const seg = this.segments[k];
      if (seg.first !== next) {
        throw corruptCheckpointFile(
          seg.file,
          `the receive log has a gap: this segment starts at line ${seg.first}, the previous one ends at ${next}`,
        );
      }
      const bytes = await fsp.readFile(seg.file);
      if (!bytes.subarray(0, SEGMENT_HEADER.length).equals(Buffer.from(SEGMENT_HEADER))) {
        throw corruptCheckpointFile(seg.file, 'it does not start with the version line "v1"');
      }
      let lines = 0;
      let lastEnd = SEGMENT_HEADER.length;
      for (let i = bytes.indexOf(10, SEGMENT_HEADER.length); i >= 0; i = bytes.indexOf(10, i + 1)) {
        lines++;
        lastEnd = i + 1;
      }
      if (lastEnd < bytes.length) {
        if (k < this.segments.length - 1) throw corruptCheckpointFile(seg.file, 'it ends in the middle of a line');
        await fsp.truncate(seg.file, lastEnd);
      }
      next = seg.first + lines;
      if (k === this.segments.length - 1) this.currentBytes = lastEnd;
    }
    this.durable = next;
    if (this.segments.length === 0) await this.startSegment();
    else this.handle = await fsp.open(this.segments[this.segments.length - 1].file, 'a');
  }

  private async startSegment(): Promise<void> {
    const file = path.join(this.logDir, `${this.durable}.log`);
    await writeFileAtomic(file, SEGMENT_HEADER);
    this.handle = await fsp.open(file, 'a');
    this.currentBytes = SEGMENT_HEADER.length;
    this.segments.push({ first: this.durable, file });
  }

  private async writePending(): Promise<void> {
    if (this.pending.length === 0 || this.flushError || !this.handle) return;
    const lines = this.pending;
    this.pending = [];
    this.pendingBytes = 0;
    const text = Buffer.from(`${lines.join('\n')}\n`);
    const handle = this.handle;
    try {
      await guardedWrite(this.segments[this.segments.length - 1].file, async () => {
        await handle.write(text);
        await handle.sync();
      });
      this.durable += lines.length;
      this.currentBytes += text.length;
      if (this.currentBytes >= this.segmentBytes) {
        await this.handle.close();
        this.handle = null;
        await this.startSegment();
      }
    } catch (err) {
      this.flushError =
        err instanceof SluiceError
          ? err
          : new SluiceError(
              'SOCKET_LOG',
              `cannot write the receive log of ${this.location} in ${this.logDir}: ` + `${(err as Error).message}`,
              'free disk space or fix the checkpoint directory, then restart the query',
              { cause: err },
            );
    }
  }

  private async closeLog(): Promise<void> {
    await this.flushing;
    await this.handle?.close();
    this.handle = null;
  }

  private receive(chunk: Buffer): void {
    const text = this.partial + this.decoder.write(chunk);
    const parts = text.split('\n');
    this.partial = parts.pop()!;
    for (const p of parts) this.addLine(p);
    if (parts.length > 0) this.arrival.notify();
    if (this.pendingBytes >= FLUSH_NOW_BYTES) void this.flush();
    else if (this.pending.length > 0 && !this.flushTimer) {
      this.flushTimer = setTimeout(() => {
        this.flushTimer = null;
        void this.flush();
      }, this.flushIntervalMs);
    }
  }

  private addLine(line: string): void {
    const l = line.endsWith('\r') ? line.slice(0, -1) : line;
    this.pending.push(l);
    this.pendingBytes += l.length + 1;
  }

  /** A line the server did not end before closing the connection still counts, as with readLine(). */
  private takePartialLine(): void {
    const rest = this.partial + this.decoder.end();
    this.partial = '';
    this.decoder = new StringDecoder('utf8');
    if (rest.length > 0) this.addLine(rest);
  }

  // ---- connection ----

  private connect(): Promise<void> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host: this.options.host, port: this.options.port });
      socket.setTimeout(this.connectTimeoutMs);
      let opened = false;
      socket.once('connect', () => {
        opened = true;
        socket.setTimeout(0);
        socket.setKeepAlive(true);
        this.socket = socket;
        this.isConnected = true;
        resolve();
      });
      socket.on('timeout', () =>
        socket.destroy(Object.assign(new Error('connection attempt timed out'), { code: 'ETIMEDOUT' })),
      );
      socket.on('data', (chunk: Buffer) => this.receive(chunk));
      socket.on('error', (err) => {
        if (!opened) reject(err);
        else this.lastSocketError = err;
      });
      socket.on('close', () => {
        if (!opened) return;
        this.isConnected = false;
        this.takePartialLine();
        void this.flush();
        if (this.stopped || this.socket !== socket) return;
        this.socket = null;
        const why = this.lastSocketError
          ? `${(this.lastSocketError as NodeJS.ErrnoException).code ?? this.lastSocketError.message}`
          : 'closed by the server';
        this.lastSocketError = null;
        this.log(
          `${this.sourceName}: connection lost (${why}); ` +
            `${this.durable + this.pending.length} lines received so far are kept; reconnecting`,
        );
        this.attempts = 0;
        this.scheduleReconnect();
      });
    });
  }

  private lastSocketError: Error | null = null;

  private scheduleReconnect(): void {
    if (this.stopped) return;
    const delay = Math.min(this.maxReconnectDelayMs, FIRST_RECONNECT_DELAY_MS * 2 ** this.attempts);
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null;
      if (this.stopped) return;
      this.attempts++;
      this.connect().then(
        () => {
          if (this.stopped) {
            this.socket?.destroy();
            return;
          }
          this.log(`${this.sourceName}: reconnected after ${this.attempts} attempt(s)`);
          this.attempts = 0;
        },
        (err: NodeJS.ErrnoException) => {
          const next = Math.min(this.maxReconnectDelayMs, FIRST_RECONNECT_DELAY_MS * 2 ** this.attempts);
          this.log(
            `${this.sourceName}: cannot reconnect (${err.code ?? err.message}), ` +
              `attempt ${this.attempts}; next try in ${(next / 1000).toFixed(1)} s`,
          );
          this.scheduleReconnect();
        },
      );
    }, delay);
  }
}

/** `250 ms`, `30 s`, `1.2 s`: for notices and messages. */
function formatSeconds(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  return `${(ms / 1000).toFixed(ms % 1000 === 0 ? 0 : 1)} s`;
}

/** Runs one `socket` read task: reads lines [from, to) from the receive log segments and decodes them. */
export async function readSocketLogTask(specArg: unknown, ctx: { batchId: number }): Promise<ReadResult> {
  const spec = specArg as SocketReadSpec;
  const parts: Buffer[] = [];
  for (let k = 0; k < spec.segments.length; k++) {
    const seg = spec.segments[k];
    let bytes: Buffer;
    try {
      bytes = await fsp.readFile(seg.file);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      throw new SluiceError(
        'CHECKPOINT_CORRUPT',
        `receive log segment ${seg.file} of ${spec.location} is missing`,
        'restore the checkpoint directory from a backup, or delete it to start over',
        { cause: err },
      );
    }
    const from = Math.max(spec.from, seg.first);
    const to = k + 1 < spec.segments.length ? Math.min(spec.to, spec.segments[k + 1].first) : spec.to;
    parts.push(linesSlice(bytes, seg.file, from - seg.first, to - seg.first));
  }
  const bytes = parts.length === 1 ? parts[0] : Buffer.concat(parts);
  if (spec.format === 'text') return decodeText(bytes);
  return decodeJsonLines(bytes, {
    schema: cachedSchema(spec.schema),
    mode: spec.mode,
    columnNameOfCorruptRecord: spec.columnNameOfCorruptRecord,
    location: spec.location,
    firstLine: spec.from + 1,
    badRecords: spec.badRecords,
    batchId: ctx.batchId,
  });
}

/** Bytes of lines [a, b) (0-based, after the version line) of a segment, newlines included. */
function linesSlice(bytes: Buffer, file: string, a: number, b: number): Buffer {
  let pos = SEGMENT_HEADER.length;
  let line = 0;
  while (line < a) {
    const nl = bytes.indexOf(10, pos);
    if (nl < 0) break;
    pos = nl + 1;
    line++;
  }
  const start = pos;
  while (line < b) {
    const nl = bytes.indexOf(10, pos);
    if (nl < 0) break;
    pos = nl + 1;
    line++;
  }
  if (line < b) throw corruptCheckpointFile(file, `it holds fewer lines than the offsets need (${line} of ${b})`);
  return bytes.subarray(start, pos);
}
