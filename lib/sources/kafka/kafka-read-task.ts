/**
 * The `kafka` reader: reads one planned offset range of one partition and decodes it into one Arrow record
 * batch. It runs in the driver or in a worker thread; each thread keeps one {@link KafkaClient} per
 * bootstrap address and client options, so a batch's tasks reuse connections instead of opening new ones.
 *
 * In the driver's thread (threads: 0) a batch's tasks run one after another, in plan order, so a task
 * starts fetching the ranges of the tasks planned after it ({@link KafkaReadSpec.following}) before it decodes
 * its own: the batch's first task sends the Fetches of up to {@link READ_AHEAD_TASKS} tasks at once, and their
 * round trips overlap with each other and with decoding. A prefetched range is exactly the one its task would
 * fetch itself, so which rows a batch reads does not change. Worker threads do not prefetch: the next task may
 * run in another worker, and tasks running side by side already overlap their round trips.
 */
import { isMainThread } from 'node:worker_threads';
import { Binary, type DataType, type Schema, Type } from 'apache-arrow';
import { batchOf } from '../../arrow/batch-ops.js';
import { dataFromValues, mkData } from '../../arrow/columns.js';
import type { TypeSpec } from '../../arrow/schema.js';
import { SluiceError } from '../../errors.js';
import type { KafkaClient } from '../../kafka/client.js';
import type { KafkaClientOptions } from '../../kafka/client-options.js';
import type { DataLoss } from '../../kafka/data-loss.js';
import type { KafkaMessage } from '../../kafka/messages.js';
import type { RecordColumns } from '../../kafka/record-columns.js';
import {
  type BadRecord,
  type BadRecordsTarget,
  cachedSchema,
  type ParseMode,
  writeBadRecords,
} from '../decode/common.js';
import { decodeJsonSpans } from '../decode/json-bytes.js';
import { collectJsonLines } from '../decode/json-lines.js';
import type { ReaderContext } from '../reader-context.js';
import type { ReadResult } from '../source.js';

/** Tasks after its own whose ranges a read task in the driver's thread fetches ahead. */
export const READ_AHEAD_TASKS = 8;

/** How record values are decoded. `text` is the same as `string` (the name apps use for text input). */
export type KafkaValueFormat = 'json' | 'string' | 'text' | 'bytes';

/** The JSON spec of one `kafka` read task: records [fromOffset, untilOffset) of one partition. */
export interface KafkaReadSpec {
  bootstrap: string;
  client: KafkaClientOptions;
  topic: string;
  partition: number;
  fromOffset: number;
  untilOffset: number;
  failOnDataLoss: boolean;
  valueFormat: KafkaValueFormat;
  /** The whole output schema (decoded value fields, then the Kafka columns). */
  schema: Record<string, TypeSpec>;
  /** Names of the output columns that come from the JSON value (json only). */
  valueFields: string[];
  mode: ParseMode;
  columnNameOfCorruptRecord: string;
  /** Where malformed JSON values are set aside (badRecordsPath), and the batch they belong to. */
  badRecords?: BadRecordsTarget;
  batchId?: number;
  /** The ranges of the tasks planned after this one in the same batch, up to {@link READ_AHEAD_TASKS} (see the module comment). */
  following?: KafkaRange[];
}

/** Records [fromOffset, untilOffset) of one partition. */
export interface KafkaRange {
  topic: string;
  partition: number;
  fromOffset: number;
  untilOffset: number;
}

/** The records of one range, and how many of its offsets were lost (failOnDataLoss=false). */
interface Fetched {
  records: RecordColumns;
  lost: number;
}

const clients = new Map<string, Promise<KafkaClient>>();
let holders = 0;
/** Broker calls this thread's read clients retried, and the back-off they waited, not yet reported by a task. */
const retried = { calls: 0, waitMs: 0 };

/** This thread's client for a bootstrap address and options, connected once and reused. */
function clientFor(bootstrap: string, options: KafkaClientOptions): Promise<KafkaClient> {
  const key = `${bootstrap}|${JSON.stringify(options)}`;
  let c = clients.get(key);
  if (!c) {
    // The client's module, and kafkajs with it, load with the first Kafka read: a thread that reads no Kafka
    // topic does not pay for them.
    c = import('../../kafka/client.js').then(({ KafkaClient }) =>
      KafkaClient.connect(bootstrap, {
        ...options,
        clientId: options.clientId ?? 'sluice-reader',
        onRetry: (event) => {
          retried.calls++;
          retried.waitMs += event.delayMs;
        },
      }),
    );
    clients.set(key, c);
    c.catch(() => clients.delete(key));
  }
  return c;
}

/**
 * Keeps this thread's read clients open until the matching {@link releaseReadClients}. A Kafka source calls
 * it when it starts, so that reads run in the driver's thread (threads: 0) close their sockets when the last
 * source stops (open sockets would keep the process alive). Worker threads close theirs when they exit.
 */
export function holdReadClients(): void {
  holders++;
}

/** Closes this thread's read clients once no source holds them. */
export async function releaseReadClients(): Promise<void> {
  holders = Math.max(0, holders - 1);
  if (holders > 0) return;
  prefetched.clear();
  const all = [...clients.values()];
  clients.clear();
  await Promise.all(all.map(async (c) => (await c.catch(() => null))?.close()));
}

/** Fetches started ahead of their task, by {@link rangeKey}, oldest first. */
const prefetched = new Map<string, { at: number; fetched: Promise<Fetched> }>();
/**
 * Prefetches kept at most (several queries may read in one process) and for at most this long: one that
 * was never taken (its batch failed before reaching it) only holds memory until then.
 */
const PREFETCH_SLOTS = 2 * READ_AHEAD_TASKS;
const PREFETCH_MAX_AGE_MS = 30_000;

/** What identifies a fetch: the same key always reads the same records. */
function rangeKey(spec: KafkaReadSpec, range: KafkaRange): string {
  return `${spec.bootstrap}|${JSON.stringify(spec.client)}|${spec.failOnDataLoss}|${range.topic}|${range.partition}|${range.fromOffset}|${range.untilOffset}`;
}

function fetchRange(client: KafkaClient, spec: KafkaReadSpec, range: KafkaRange): Promise<Fetched> {
  let lost = 0;
  return client
    .fetchRecords(
      range.topic,
      range.partition,
      range.fromOffset,
      range.untilOffset,
      spec.failOnDataLoss
        ? {}
        : {
            onDataLoss: (l: DataLoss) => {
              lost += l.untilOffset - l.fromOffset;
            },
          },
    )
    .then((records) => ({ records, lost }));
}

/** This task's records: prefetched by the task before it when that worked, otherwise fetched now. */
function takeOrFetch(client: KafkaClient, spec: KafkaReadSpec): Promise<Fetched> {
  const key = rangeKey(spec, spec);
  const entry = prefetched.get(key);
  prefetched.delete(key);
  const now = Date.now();
  for (const [k, e] of prefetched) if (now - e.at > PREFETCH_MAX_AGE_MS) prefetched.delete(k);
  if (!entry || now - entry.at > PREFETCH_MAX_AGE_MS) return fetchRange(client, spec, spec);
  // A failed prefetch is fetched again, so the task fails (or retries) exactly as it would have alone.
  return entry.fetched.catch(() => fetchRange(client, spec, spec));
}

function prefetch(client: KafkaClient, spec: KafkaReadSpec, range: KafkaRange): void {
  const key = rangeKey(spec, range);
  if (prefetched.has(key)) return;
  const fetched = fetchRange(client, spec, range);
  fetched.catch(() => undefined);
  prefetched.set(key, { at: Date.now(), fetched });
  for (const k of prefetched.keys()) {
    if (prefetched.size <= PREFETCH_SLOTS) break;
    prefetched.delete(k);
  }
}

/** Runs one read task (registered as reader `kafka` in lib/sources/readers.ts). */
export async function readKafkaTask(rawSpec: unknown, _ctx: ReaderContext): Promise<ReadResult> {
  const spec = rawSpec as KafkaReadSpec;
  const client = await clientFor(spec.bootstrap, spec.client);
  const fetched = takeOrFetch(client, spec);
  if (spec.following && isMainThread) {
    for (const range of spec.following) prefetch(client, spec, range);
    // Lets the prefetch's request reach the socket before decoding holds the thread.
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
  const { records, lost } = await fetched;
  const { badRecords, ...result } = decodeRecords(records, spec);
  if (badRecords.length > 0 && spec.badRecords) await writeBadRecords(spec.badRecords, spec.batchId ?? 0, badRecords);
  const metrics: Record<string, number> = { ...result.metrics };
  if (lost > 0) metrics.dataLossOffsets = lost;
  // A slow read shows in progress as retried calls (a timed-out request, a broker away) or as none. Each task
  // reports the thread's retries since the last task ended, a prefetch's among them.
  if (retried.calls > 0) {
    metrics.readRetries = retried.calls;
    metrics.readRetryWaitMs = retried.waitMs;
    retried.calls = 0;
    retried.waitMs = 0;
  }
  return Object.keys(metrics).length > 0 ? { ...result, metrics } : result;
}

/**
 * Decodes records of one partition into one batch of the spec's schema, and gives the malformed JSON values
 * to set aside when the spec has a badRecordsPath. A tombstone (a record whose value is null, which deletes
 * its key from a compacted topic) is a row whose value is null (every value column, for JSON), as in Spark,
 * and counts as `numTombstones`. `fastJson: false` decodes JSON values the general way only (tests compare
 * it with the byte scanner).
 */
export function decodeRecords(
  fetched: RecordColumns,
  spec: KafkaReadSpec,
  fastJson = true,
): ReadResult & { badRecords: BadRecord[] } {
  const schema = cachedSchema(spec.schema);
  let rows: number[] | null = null;
  let numMalformed = 0;
  let badRecords: BadRecord[] = [];
  const children = new Array(schema.fields.length);
  if (spec.valueFormat === 'json') {
    const decoded = decodeJsonValues(fetched, spec, schema, fastJson);
    rows = decoded.kept;
    numMalformed = decoded.numMalformed;
    badRecords = decoded.badRecords;
    for (const [name, data] of decoded.columns) children[schema.fields.findIndex((f) => f.name === name)] = data;
  }
  let numTombstones = 0;
  for (let i = 0; i < fetched.length; i++) if (fetched.valueStarts[i] < 0) numTombstones++;
  const records = rows ? keptRecords(fetched, rows) : fetched;
  const n = records.length;
  schema.fields.forEach((f, k) => {
    if (children[k] !== undefined) return;
    switch (f.name) {
      case 'key':
        children[k] = bytesData(f.type, records, records.keyStarts, records.keyEnds);
        break;
      case 'value':
        children[k] = bytesData(f.type, records, records.valueStarts, records.valueEnds);
        break;
      case 'topic':
        children[k] = repeatedBytesData(f.type, Buffer.from(spec.topic), n);
        break;
      case 'partition':
        children[k] = mkData({ type: f.type, length: n, nullCount: 0, data: new Int32Array(n).fill(spec.partition) });
        break;
      case 'offset':
        children[k] = mkData({ type: f.type, length: n, nullCount: 0, data: int64s(records.offsets, n) });
        break;
      case 'timestamp':
        children[k] = mkData({ type: f.type, length: n, nullCount: 0, data: int64s(records.timestamps, n) });
        break;
      case 'headers':
        children[k] = dataFromValues(
          f.type,
          Array.from({ length: n }, (_, i) => headerList(records.headers?.[i])),
        );
        break;
      default:
        throw new Error(`kafka reader: no data for column ${f.name}`);
    }
  });
  const result: ReadResult & { badRecords: BadRecord[] } = {
    batches: [batchOf(schema, children, n)],
    numMalformed,
    badRecords,
  };
  if (numTombstones > 0) result.metrics = { numTombstones };
  return result;
}

/**
 * Decodes JSON values into the value columns. Returns them, which records became rows (null: all of them)
 * and how many were malformed. The byte scanner reads the values in place in the fetched response when it
 * can (every value a clean JSON object of supported types); otherwise every value is parsed with the
 * JSON-lines decoder (one value per "line"), which applies the source's mode.
 */
function decodeJsonValues(
  records: RecordColumns,
  spec: KafkaReadSpec,
  schema: Schema,
  fast: boolean,
): { columns: Map<string, unknown>; kept: number[] | null; numMalformed: number; badRecords: BadRecord[] } {
  const valueSchema = jsonSchemaOf(schema, spec.valueFields);
  if (fast) {
    const values = {
      length: records.length,
      chunks: records.chunks,
      chunkOf: records.chunkOf,
      starts: records.valueStarts,
      ends: records.valueEnds,
    };
    const batch = decodeJsonSpans(values, valueSchema, spec.columnNameOfCorruptRecord);
    if (batch) {
      const columns = new Map<string, unknown>(valueSchema.fields.map((f, k) => [f.name, batch.data.children[k]]));
      return { columns, kept: null, numMalformed: 0, badRecords: [] };
    }
  }
  const texts = new Array<string>(records.length);
  for (let i = 0; i < records.length; i++) {
    const v = records.value(i);
    // A tombstone is a row whose value fields are all null; a blank value is malformed.
    const s = v === null ? '{}' : v.toString('utf8');
    texts[i] = s.length === 0 || (s.charCodeAt(0) <= 32 && s.trim() === '') ? JSON.stringify(s) : s;
  }
  const kept: number[] = [];
  const location = `Kafka ${spec.topic}-${spec.partition}`;
  const rows = collectJsonLines(
    texts,
    {
      schema: valueSchema,
      mode: spec.mode,
      columnNameOfCorruptRecord: spec.columnNameOfCorruptRecord,
      location,
      badRecords: spec.badRecords,
    },
    kept,
  );
  if (rows.failed) {
    const offset = records.offsets[rows.failed.index];
    const shown = rows.failed.record.length > 200 ? `${rows.failed.record.slice(0, 200)}…` : rows.failed.record;
    throw new SluiceError(
      'MALFORMED_RECORD',
      `malformed record in Kafka ${spec.topic}-${spec.partition} at offset ${offset}: ${rows.failed.reason}: ${shown}`,
      'fix the producer, or read with mode PERMISSIVE (keeps the row, with nulls) or DROPMALFORMED (skips it and counts it)',
    );
  }
  const batch = rows.batch();
  const columns = new Map<string, unknown>(valueSchema.fields.map((f, k) => [f.name, batch.data.children[k]]));
  const badRecords = rows.rejected.map((r) => ({
    path: location,
    offset: records.offsets[r.index],
    record: r.record,
    reason: r.reason,
  }));
  return { columns, kept, numMalformed: rows.numMalformed, badRecords };
}

const jsonSchemas = new WeakMap<Schema, Schema>();

/** The value part of the output schema, made once per schema so the decoder's converter cache is hit. */
function jsonSchemaOf(schema: Schema, valueFields: string[]): Schema {
  let s = jsonSchemas.get(schema);
  if (!s) {
    s = schema.select(valueFields);
    jsonSchemas.set(schema, s);
  }
  return s;
}

/** The records `kept` (indices in order) of `records`. */
function keptRecords(records: RecordColumns, kept: number[]): RecordColumns {
  let k = 0;
  return records.filter((i) => {
    if (kept[k] !== i) return false;
    k++;
    return true;
  });
}

/**
 * The first `n` offsets or timestamps (safe integers) as int64 values, written as two 32-bit words
 * (little-endian) instead of one BigInt each. Floor division keeps negative values (a timestamp before 1970)
 * in two's complement.
 */
function int64s(values: Float64Array, n: number): BigInt64Array {
  const out = new BigInt64Array(n);
  if (!LITTLE_ENDIAN) {
    for (let i = 0; i < n; i++) out[i] = BigInt(values[i]);
    return out;
  }
  const words = new Int32Array(out.buffer);
  for (let i = 0; i < n; i++) {
    const v = values[i];
    const hi = Math.floor(v / 4294967296);
    words[2 * i] = (v - hi * 4294967296) | 0;
    words[2 * i + 1] = hi | 0;
  }
  return out;
}

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/**
 * The records' keys or values (spans [starts[i], ends[i]) of their chunks, null where a start is negative) as
 * utf8 or binary column data, copied once into one values buffer.
 */
function bytesData(type: DataType, records: RecordColumns, starts: Int32Array, ends: Int32Array): unknown {
  const n = records.length;
  const offsets = new Int32Array(n + 1);
  let total = 0;
  let nullCount = 0;
  for (let i = 0; i < n; i++) {
    if (starts[i] < 0) nullCount++;
    else total += ends[i] - starts[i];
    offsets[i + 1] = total;
  }
  const data = new Uint8Array(total);
  // All null (keyless records, the usual case) leaves the bitmap all zeros: nothing to copy or set.
  let bitmap: Uint8Array | undefined;
  if (nullCount > 0) bitmap = new Uint8Array((n + 7) >> 3);
  if (nullCount < n) {
    const chunks = records.chunks;
    const chunkOf = records.chunkOf;
    for (let i = 0; i < n; i++) {
      const start = starts[i];
      if (start < 0) continue;
      if (bitmap) bitmap[i >> 3] |= 1 << (i & 7);
      const chunk = chunks[chunkOf[i]];
      const end = ends[i];
      if (end - start < 16) for (let k = start, p = offsets[i]; k < end; k++, p++) data[p] = chunk[k];
      else data.set(chunk.subarray(start, end), offsets[i]);
    }
  }
  return mkData({ type: textOrBinary(type), length: n, nullCount, nullBitmap: bitmap, valueOffsets: offsets, data });
}

/** A utf8 or binary column holding `bytes` in each of `n` rows (the topic of a partition's records). */
function repeatedBytesData(type: DataType, bytes: Buffer, n: number): unknown {
  const len = bytes.length;
  const offsets = new Int32Array(n + 1);
  for (let i = 1; i <= n; i++) offsets[i] = i * len;
  const data = new Uint8Array(n * len);
  if (n > 0) {
    data.set(bytes);
    // Doubling copies: log2(n) calls instead of n.
    for (let filled = len; filled < data.length; filled *= 2)
      data.copyWithin(filled, 0, Math.min(filled, data.length - filled));
  }
  return mkData({ type: textOrBinary(type), length: n, nullCount: 0, valueOffsets: offsets, data });
}

function textOrBinary(type: DataType): DataType {
  return type.typeId === Type.Utf8 || type.typeId === Type.Binary ? type : new Binary();
}

/** Headers as Spark shows them: a list of `{key, value}` in record order (repeated keys repeat). */
function headerList(headers: KafkaMessage['headers']): { key: string; value: Buffer | null }[] {
  if (!headers) return [];
  const out: { key: string; value: Buffer | null }[] = [];
  for (const [key, v] of Object.entries(headers)) {
    if (Array.isArray(v)) for (const x of v) out.push({ key, value: x });
    else out.push({ key, value: v });
  }
  return out;
}
