import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { pathError, SluiceError } from '../errors.js';
import { KAFKA_CLIENT_OPTION_KEYS, kafkaClientOptions } from '../kafka/prefixed-options.js';
import { retryText } from '../kafka/retry.js';
import { sleep } from '../util/clock.js';
import { createDirectorySync } from '../util/create-directory.js';

/**
 * Where generated records go. A target is a URI; each scheme has a {@link WriterFactory}:
 *
 * - `file:PATH`: one file, or, when PATH ends with `/` or is an existing directory, numbered part files
 *   (`part-0000.jsonl` …) of `rowsPerFile` lines each. Every file is written under a hidden temporary
 *   name and renamed when complete, so a file source watching the directory never sees a partial file.
 *   Part numbers continue after the parts already in the directory: running the command again adds files.
 * - `socket://HOST:PORT`: a TCP server apps connect to (like `nc -lk PORT`, what Spark's socket source
 *   expects). Lines go to every connected client; by default nothing is sent before the first client
 *   connects, and lines written while no client is connected afterwards are dropped. Port 0 picks a free
 *   port (see {@link RecordWriter.address}).
 * - `stdout:` or `-`: standard output.
 * - `kafka://HOST:PORT/TOPIC`: one record per line, keyed by the record's first field (its entity id:
 *   user_id, customer_id, account; for text lines what precedes the first comma), so the keys spread over
 *   the partitions and each entity's records stay in order in one partition. The topic must exist. Client
 *   options go in the query, as for the Kafka sink (`?kafka.security.protocol=SASL_SSL&...`).
 *
 * More schemes plug in with {@link registerWriterScheme}; nothing else needs to change.
 */
export interface RecordWriter {
  /** Human-readable target, e.g. `file data/clickstream/ (part files)` or `socket server 127.0.0.1:9999`. */
  readonly description: string;
  /** `host:port` a socket server listens on (known after open); undefined for other targets. */
  readonly address?: string;
  /**
   * Writes one line (no newline inside). Returns a promise only when the caller must wait
   * (backpressure or a socket server waiting for its first client).
   */
  write(line: string): void | Promise<void>;
  /** True once the target went away for good (stdout closed by `| head`): the caller stops producing. */
  gone?(): boolean;
  /** Flushes, completes files, disconnects clients; resolves to what was produced. */
  close(): Promise<WriterResult>;
}

/** What a writer produced. */
export interface WriterResult {
  /** Files written (file targets), in order. */
  files?: string[];
  /** Clients that were connected at some point (socket targets). */
  clients?: number;
}

/** Options every factory receives; each uses the ones that apply to it. */
export interface WriterOptions {
  /** Lines per part file in directory mode. Default 100 000. */
  rowsPerFile?: number;
  /** Part file extension without the dot: `jsonl` for objects, `txt` for text lines. Default `jsonl`. */
  extension?: string;
  /** Socket server: hold the first line until a client connects. Default true. */
  waitForClient?: boolean;
  /** Receives one-line notices (e.g. "listening on 127.0.0.1:9999"). */
  log?: (message: string) => void;
  /** Abort: a socket server stops waiting for a client. */
  signal?: AbortSignal;
}

/** Opens a writer for a parsed target. `rest` is everything after `scheme:`. */
export type WriterFactory = (rest: string, options: WriterOptions) => Promise<RecordWriter>;

const factories = new Map<string, WriterFactory>();

/** Adds (or replaces) the writer of a URI scheme, e.g. `kafka` once the Kafka producer exists. */
export function registerWriterScheme(scheme: string, factory: WriterFactory): void {
  factories.set(scheme.toLowerCase(), factory);
}

/** The schemes that can be written to now. */
export function writerSchemes(): string[] {
  return [...factories.keys()];
}

const TARGET_EXAMPLES =
  'file:data/out.jsonl, file:data/out/ (part files), socket://localhost:9999, kafka://localhost:9092/topic, - (stdout)';

/**
 * The writer factory of `uri`'s scheme and the rest of the URI; null for `-` (stdout). Unknown schemes and
 * URIs without one are SluiceErrors naming what is accepted.
 */
export function targetWriter(uri: string): { factory: WriterFactory; rest: string } | null {
  if (uri === '-') return null;
  const m = /^([a-zA-Z][a-zA-Z0-9+.-]*):(.*)$/.exec(uri);
  if (!m || m[1].length === 1) {
    throw new SluiceError(
      'GEN_BAD_TARGET',
      `cannot tell where to write '${uri}': a target needs a scheme`,
      `accepted schemes: ${writerSchemes().join(', ')}; e.g. ${TARGET_EXAMPLES}`,
    );
  }
  const factory = factories.get(m[1].toLowerCase());
  if (!factory) {
    throw new SluiceError(
      'GEN_BAD_TARGET',
      `unknown target scheme '${m[1]}' in '${uri}'`,
      `accepted schemes: ${writerSchemes().join(', ')}; e.g. ${TARGET_EXAMPLES}`,
    );
  }
  return { factory, rest: m[2] };
}

/** Opens the writer for `uri` (see {@link targetWriter}). */
export async function openWriter(uri: string, options: WriterOptions = {}): Promise<RecordWriter> {
  const target = targetWriter(uri);
  return target ? target.factory(target.rest, options) : stdoutWriter();
}

/** Options of {@link writeRecords}. */
export interface WriteOptions extends WriterOptions {
  /** Events per second, paced against the wall clock; undefined or 0 means as fast as possible. */
  rate?: number;
  /** Called with the number of records written so far: every 1 024 records (every record when paced) and at the end. */
  onProgress?: (written: number) => void;
}

/** What {@link writeRecords} did. */
export interface WriteSummary extends WriterResult {
  written: number;
  target: string;
  elapsedMs: number;
  /** True when the signal stopped the run before the records ran out. */
  aborted: boolean;
}

/** A record as one line: strings as they are, anything else as JSON. */
export function lineOf(record: unknown): string {
  return typeof record === 'string' ? record : JSON.stringify(record);
}

/**
 * Writes `records` to the target `to`, one line each, paced at `rate` when given. Stops early when the
 * signal aborts and still closes the target properly (files complete, clients disconnected).
 */
export async function writeRecords(
  records: Iterable<unknown>,
  to: string,
  options: WriteOptions = {},
): Promise<WriteSummary> {
  const { rate, onProgress, signal } = options;
  if (rate !== undefined && !(rate >= 0 && Number.isFinite(rate))) {
    throw new SluiceError(
      'GEN_BAD_OPTION',
      `rate must be a non-negative number of events per second, got ${rate}`,
      'use e.g. --rate 1000, or leave it out to write as fast as possible',
    );
  }
  const writer = await openWriter(to, options);
  const started = performance.now();
  // Pacing counts from the first record's delivery: a socket server may wait long for its first client.
  let paceOrigin = 0;
  let written = 0;
  let aborted = false;
  try {
    for (const record of records) {
      if (signal?.aborted) {
        aborted = true;
        break;
      }
      if (rate && written > 0) {
        const ahead = paceOrigin + (written * 1000) / rate - performance.now();
        if (ahead > 2) {
          await sleep(ahead, signal);
          if (signal?.aborted) {
            aborted = true;
            break;
          }
        }
      }
      const pending = writer.write(lineOf(record));
      if (pending) {
        await pending;
        // Stopped while the target held the record back (e.g. no client yet): it was not delivered.
        if (signal?.aborted) {
          aborted = true;
          break;
        }
      }
      if (writer.gone?.()) {
        aborted = true;
        break;
      }
      if (written === 0) paceOrigin = performance.now();
      written++;
      // Paced runs are slow enough to report every record; fast ones every 1 024.
      if (onProgress && (rate || (written & 1023) === 0)) onProgress(written);
    }
  } catch (err) {
    await writer.close().catch(() => undefined);
    throw err;
  }
  const result = await writer.close();
  onProgress?.(written);
  return { written, target: writer.description, elapsedMs: performance.now() - started, aborted, ...result };
}

const FLUSH_BYTES = 1 << 20;

/** Buffers lines and writes them with fs.writeSync in ~1 MB chunks. */
class FileChunks {
  private parts: string[] = [];
  private size = 0;
  constructor(private readonly fd: number) {}
  add(line: string): void {
    this.parts.push(line, '\n');
    this.size += line.length + 1;
    if (this.size >= FLUSH_BYTES) this.flush();
  }
  flush(): void {
    if (this.parts.length === 0) return;
    fs.writeSync(this.fd, this.parts.join(''));
    this.parts = [];
    this.size = 0;
  }
}

/** Writes `<dir>/.<name>.tmp`, then fsyncs and renames it to `<dir>/<name>`. */
class AtomicFile {
  private readonly tmp: string;
  private readonly fd: number;
  readonly chunks: FileChunks;
  constructor(readonly file: string) {
    this.tmp = path.join(path.dirname(file), `.${path.basename(file)}.tmp`);
    this.fd = fs.openSync(this.tmp, 'w');
    this.chunks = new FileChunks(this.fd);
  }
  commit(): void {
    this.chunks.flush();
    fs.fsyncSync(this.fd);
    fs.closeSync(this.fd);
    fs.renameSync(this.tmp, this.file);
  }
}

function fileTargetError(target: string, err: unknown): unknown {
  const known = pathError(err, `'${target}'`, 'write to');
  if (known !== err) return known;
  const why = err instanceof Error ? err.message : String(err);
  return new SluiceError('GEN_BAD_TARGET', `cannot write to '${target}': ${why}`, 'check that the path is writable', {
    cause: err,
  });
}

/** `file:` targets (see {@link RecordWriter}). */
async function fileWriter(rest: string, options: WriterOptions): Promise<RecordWriter> {
  const target = rest.startsWith('//') ? rest.slice(2) : rest;
  if (target === '') {
    throw new SluiceError(
      'GEN_BAD_TARGET',
      "the file target 'file:' names no path",
      'write e.g. file:data/out.jsonl or file:data/out/',
    );
  }
  const rowsPerFile = options.rowsPerFile ?? 100_000;
  if (!Number.isSafeInteger(rowsPerFile) || rowsPerFile < 1) {
    throw new SluiceError(
      'GEN_BAD_OPTION',
      `rows per file must be a positive integer, got ${rowsPerFile}`,
      'use e.g. --rows-per-file 100000',
    );
  }
  const isDir =
    target.endsWith('/') || target.endsWith(path.sep) || (fs.existsSync(target) && fs.statSync(target).isDirectory());
  if (!isDir) {
    let file: AtomicFile;
    try {
      file = new AtomicFile(target);
    } catch (err) {
      throw fileTargetError(target, err);
    }
    const writer: RecordWriter = {
      description: `file ${target}`,
      write: (line) => file.chunks.add(line),
      close: async () => {
        file.commit();
        return { files: [target] };
      },
    };
    return writer;
  }
  const dir = target;
  const ext = options.extension ?? 'jsonl';
  try {
    createDirectorySync(dir);
  } catch (err) {
    throw fileTargetError(target, err);
  }
  let part = 0;
  for (const name of fs.readdirSync(dir)) {
    const pm = /^part-(\d+)\./.exec(name);
    if (pm) part = Math.max(part, Number(pm[1]) + 1);
  }
  const files: string[] = [];
  let current: AtomicFile | undefined;
  let rows = 0;
  const writer: RecordWriter = {
    description: `file ${dir} (part files of ${rowsPerFile} lines)`,
    write: (line) => {
      if (!current) {
        current = new AtomicFile(path.join(dir, `part-${String(part++).padStart(4, '0')}.${ext}`));
        rows = 0;
      }
      current.chunks.add(line);
      if (++rows >= rowsPerFile) {
        current.commit();
        files.push(current.file);
        current = undefined;
      }
    },
    close: async () => {
      if (current) {
        current.commit();
        files.push(current.file);
        current = undefined;
      }
      return { files };
    },
  };
  return writer;
}

function stdoutWriter(): RecordWriter {
  const chunks: string[] = [];
  let size = 0;
  let broken = false;
  const onError = (): void => {
    broken = true;
  };
  process.stdout.on('error', onError);
  const flush = (): void | Promise<void> => {
    if (chunks.length === 0 || broken) return;
    const ok = process.stdout.write(chunks.join(''));
    chunks.length = 0;
    size = 0;
    if (!ok) {
      return new Promise((resolve) => {
        const done = (): void => {
          process.stdout.off('drain', done);
          process.stdout.off('error', done);
          resolve();
        };
        process.stdout.once('drain', done);
        process.stdout.once('error', done);
      });
    }
  };
  const writer: RecordWriter = {
    description: 'stdout',
    gone: () => broken,
    write: (line) => {
      chunks.push(line, '\n');
      size += line.length + 1;
      if (size >= 1 << 16) return flush();
    },
    close: async () => {
      await flush();
      process.stdout.off('error', onError);
      return {};
    },
  };
  return writer;
}

/** `socket://HOST:PORT` targets: a TCP server that broadcasts lines to its clients. */
async function socketWriter(rest: string, options: WriterOptions): Promise<RecordWriter> {
  const m = /^\/\/(\[[^\]]+\]|[^:/]*):(\d+)\/?$/.exec(rest);
  if (!m || Number(m[2]) > 65535) {
    throw new SluiceError(
      'GEN_BAD_TARGET',
      `malformed socket target 'socket:${rest}'`,
      'write socket://HOST:PORT, e.g. socket://localhost:9999',
    );
  }
  const host = (m[1] || 'localhost').replace(/^\[|\]$/g, '');
  const server = net.createServer();
  const clients = new Set<net.Socket>();
  let everConnected = 0;
  let waiters: (() => void)[] = [];
  server.on('connection', (socket) => {
    socket.setNoDelay(true);
    clients.add(socket);
    everConnected++;
    socket.on('error', () => clients.delete(socket));
    socket.on('close', () => clients.delete(socket));
    for (const w of waiters) w();
    waiters = [];
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err) =>
      reject(
        new SluiceError(
          'GEN_BAD_TARGET',
          `cannot listen on ${host}:${m[2]}: ${err.message}`,
          'pick a free port, or stop the process that holds it',
          { cause: err },
        ),
      ),
    );
    server.listen(Number(m[2]), host, () => resolve());
  });
  const addr = server.address() as net.AddressInfo;
  const address = `${addr.family === 'IPv6' ? `[${addr.address}]` : addr.address}:${addr.port}`;
  const waitForClient = options.waitForClient ?? true;
  options.log?.(`listening on ${address}${waitForClient ? ', waiting for a client to connect' : ''}`);

  let pending: string[] = [];
  let pendingBytes = 0;
  let flushScheduled = false;
  const flush = (): void | Promise<void> => {
    flushScheduled = false;
    if (pending.length === 0) return;
    const chunk = pending.join('');
    pending = [];
    pendingBytes = 0;
    const drains: Promise<void>[] = [];
    for (const c of clients) {
      if (!c.write(chunk))
        drains.push(
          new Promise((resolve) => {
            c.once('drain', resolve);
            c.once('close', resolve);
          }),
        );
    }
    if (drains.length > 0) return Promise.all(drains).then(() => undefined);
  };
  const firstClient = (): Promise<void> =>
    new Promise((resolve) => {
      const abort = (): void => resolve();
      options.signal?.addEventListener('abort', abort, { once: true });
      waiters.push(() => {
        options.signal?.removeEventListener('abort', abort);
        resolve();
      });
    });

  const writer: RecordWriter = {
    description: `socket server ${address}`,
    address,
    write: (line) => {
      if (waitForClient && everConnected === 0) {
        return firstClient().then(() => {
          if (options.signal?.aborted) return;
          pending.push(line, '\n');
          pendingBytes += line.length + 1;
          return flush();
        });
      }
      pending.push(line, '\n');
      pendingBytes += line.length + 1;
      if (pendingBytes >= 1 << 16) return flush();
      if (!flushScheduled) {
        flushScheduled = true;
        setImmediate(() => {
          void flush();
        });
      }
    },
    close: async () => {
      await flush();
      await Promise.all(
        [...clients].map(
          (c) =>
            new Promise<void>((resolve) => {
              c.end(() => resolve());
              c.once('close', () => resolve());
            }),
        ),
      );
      await new Promise<void>((resolve) => server.close(() => resolve()));
      return { clients: everConnected };
    },
  };
  return writer;
}

/** The key of a generated line: the value of a JSON object's first field, or the text before the first comma. */
export function keyOfLine(line: string): string {
  const m = /^\s*\{\s*"(?:[^"\\]|\\.)*"\s*:\s*(?:"((?:[^"\\]|\\.)*)"|([^,}\s]*))/.exec(line);
  if (m) return m[1] ?? m[2];
  const comma = line.indexOf(',');
  return comma < 0 ? line : line.slice(0, comma);
}

const KAFKA_CHUNK = 1000;

/** `kafka://HOST:PORT/TOPIC[?option=value&...]` targets (see {@link RecordWriter}); the Kafka client loads only when used. */
async function kafkaWriter(rest: string, options: WriterOptions): Promise<RecordWriter> {
  const q = rest.indexOf('?');
  const m = /^\/\/([^/]+)\/([^/?]+)$/.exec(q < 0 ? rest : rest.slice(0, q));
  if (!m)
    throw new SluiceError(
      'GEN_BAD_TARGET',
      `malformed Kafka target 'kafka:${rest.slice(0, q < 0 ? undefined : q)}'`,
      'write kafka://HOST:PORT/TOPIC, e.g. kafka://localhost:9092/clicks',
    );
  const [, bootstrap, topic] = m;
  const query: Record<string, string> = {};
  for (const [key, value] of new URLSearchParams(q < 0 ? '' : rest.slice(q + 1))) {
    if (!(KAFKA_CLIENT_OPTION_KEYS as readonly string[]).includes(key)) {
      throw new SluiceError(
        'GEN_BAD_TARGET',
        `unknown option '${key}' in the Kafka target`,
        `accepted options: ${KAFKA_CLIENT_OPTION_KEYS.join(', ')}`,
      );
    }
    query[key] = value;
  }
  const clientOptions = kafkaClientOptions('kafka target', query);
  const { KafkaClient } = await import('../kafka/client.js');
  // Without a broker the client retries for about 35 s, as the source and sink do; say so at once rather than sit silent.
  const client = await KafkaClient.connect(bootstrap, {
    ...clientOptions,
    clientId: clientOptions.clientId ?? 'sluice-gen',
    onRetry: (event) => options.log?.(retryText(bootstrap, event)),
  });
  if ((await client.listPartitions([topic])).length === 0) {
    await client.close();
    throw new SluiceError(
      'GEN_BAD_TARGET',
      `Kafka topic ${topic} does not exist on ${bootstrap}`,
      'create it first (e.g. kafka-topics.sh --create)',
    );
  }
  options.log?.(`producing to Kafka topic ${topic} on ${bootstrap}`);
  let chunk: { key: string; value: string }[] = [];
  const send = async (): Promise<void> => {
    const messages = chunk;
    chunk = [];
    await client.produce(topic, messages);
  };
  return {
    description: `Kafka topic ${topic} on ${bootstrap}`,
    write: (line) => {
      chunk.push({ key: keyOfLine(line), value: line });
      if (chunk.length >= KAFKA_CHUNK) return send();
    },
    close: async () => {
      try {
        if (chunk.length > 0) await send();
      } finally {
        await client.close();
      }
      return {};
    },
  };
}

registerWriterScheme('file', fileWriter);
registerWriterScheme('socket', socketWriter);
registerWriterScheme('kafka', kafkaWriter);
registerWriterScheme('stdout', async () => stdoutWriter());
