/**
 * The one module through which sluice talks to Kafka. Everything else (source, sink, tools, tests)
 * goes through {@link KafkaClient}, so the client library can be swapped without touching them.
 *
 * Choice: kafkajs 2.2.4 (pure JS, no native build). Measured on this machine against the librdkafka
 * mock (notes/stack-bench.md §6): reading without a group through its internal cluster reaches
 * ~470k msg/s, faster than @confluentinc/kafka-javascript's native assign API (~113k msg/s), which also
 * needs a native build; producing runs at ~100k msg/s (confluent native: ~214k). @platformatic/kafka
 * cannot talk to the mock at all.
 *
 * Reading uses kafkajs internals on purpose: sluice's checkpoint, not a consumer group, owns the
 * offsets, and kafkajs has no public API to read a partition without joining a group (a join costs
 * ~3 s and `consumer.seek` only works after `run()`). We therefore create kafkajs' internal `Cluster`
 * and call `broker.fetch` on partition leaders, exactly like its own consumer does underneath.
 */
import { createRequire } from 'node:module';
import kafkajs from 'kafkajs';
import type { Kafka as KafkaType, Producer, Message as KjsMessage, IHeaders } from 'kafkajs';
import { SluiceError } from '../../errors.js';
import { decodePartition, fetchRequest, type FetchedPartition } from './fetch-request.js';
import { encodeRecordBatch, produceRequest, type ProduceV3Response } from './produce-request.js';

const { Kafka, logLevel: KjsLogLevel, Partitioners } = kafkajs;
const require = createRequire(import.meta.url);
/** Java's murmur2 of a key, as kafkajs' default partitioner computes it. */
const murmur2 = require('kafkajs/src/producer/partitioners/default/murmur2') as (key: Buffer | string) => number;

/** A record read from Kafka. */
export interface KafkaMessage {
  offset: number;
  /** Milliseconds since the epoch (create time or log-append time, whichever the topic uses). */
  timestamp: number;
  key: Buffer | null;
  value: Buffer | null;
  /** Undefined when the record has none; a key repeated in the record maps to an array, in order. */
  headers?: Record<string, Buffer | Buffer[]>;
}

/** A record to write. Without `partition`, kafkajs' default (Java-compatible murmur2) partitioner picks one. */
export interface ProduceMessage {
  key?: Buffer | string | null;
  value: Buffer | string | null;
  /** An array value writes the header once per element, in order. */
  headers?: Record<string, Buffer | string | Array<Buffer | string>>;
  partition?: number;
  /** Create time in ms since the epoch; the broker's clock when omitted. */
  timestamp?: number;
}

/** Where a produced chunk landed. */
export interface ProduceResult {
  partition: number;
  /** Offset of the first record of the chunk written to this partition. */
  baseOffset: number;
}

/** One partition of a topic. */
export interface TopicPartition {
  topic: string;
  partition: number;
}

/** Offsets of one partition: `low` is the first offset still stored, `high` the next offset to be written. */
export interface PartitionOffsets extends TopicPartition {
  low: number;
  high: number;
}

/** Offsets in [fromOffset, untilOffset) that the broker no longer (or never) had when they were read. */
export interface DataLoss extends TopicPartition {
  fromOffset: number;
  untilOffset: number;
  /**
   * `retention`: the range starts below the partition's low watermark (deleted by retention or size
   * limits). `truncated`: the partition ends before the range does (topic recreated, unclean leader election).
   */
  reason: 'retention' | 'truncated';
}

/** Thrown by {@link KafkaClient.fetchRange} when offsets are gone and no `onDataLoss` handler was given. */
export class KafkaDataLossError extends SluiceError {
  readonly loss: DataLoss;
  constructor(loss: DataLoss) {
    const what = loss.reason === 'retention'
      ? 'were deleted from the broker (retention or size limit)'
      : 'are beyond the end of the partition (was the topic recreated or truncated?)';
    super('KAFKA_DATA_LOSS',
      `offsets ${loss.fromOffset}..${loss.untilOffset - 1} of ${loss.topic}-${loss.partition} ${what}`,
      'set failOnDataLoss=false to skip lost offsets, or restart the query from a new checkpoint');
    this.loss = loss;
  }
}

/**
 * A produce request failed, and records of it may or may not have been written
 * ({@link KafkaClientOptions.resendFailedProduce} = false). `retriable` says whether trying again can help.
 */
export class KafkaProduceError extends SluiceError {
  readonly retriable: boolean;
  constructor(topic: string, cause: Error, retriable: boolean) {
    super('KAFKA_PRODUCE_FAILED', `producing to Kafka topic ${topic} failed: ${cause.message}`,
      retriable ? 'the brokers may be unavailable; the records of the failed request may or may not have been written' : undefined,
      { cause });
    this.retriable = retriable;
  }
}

/** Retry policy for broker calls that fail with retriable errors (broker down, leader moved, timeouts). */
export interface KafkaRetryOptions {
  /** Attempts after the first one. Default 10. */
  retries?: number;
  /** First back-off in ms, doubled each attempt (with ±20% jitter). Default 100. */
  initialMs?: number;
  /** Back-off ceiling in ms. Default 2000. */
  maxMs?: number;
}

/** Reported before each back-off, e.g. to show a stall in query progress. */
export interface KafkaRetryEvent {
  operation: string;
  attempt: number;
  delayMs: number;
  error: Error;
}

/** One line saying that a call to `bootstrap` failed and is being retried, for logs and notices. */
export function retryText(bootstrap: string, { operation, attempt, delayMs, error }: KafkaRetryEvent): string {
  return `Kafka ${operation} to ${bootstrap} failed (${error.message}); retrying in ${(delayMs / 1000).toFixed(1)} s (attempt ${attempt + 1})`;
}

export interface KafkaClientOptions {
  clientId?: string;
  retry?: KafkaRetryOptions;
  onRetry?: (event: KafkaRetryEvent) => void;
  /**
   * `read_committed` hides records of aborted transactions and reads up to the last stable offset.
   * Default `read_uncommitted` (Kafka's and Spark's default). Note: the librdkafka 2.0.2 test broker
   * does not filter aborted transactions.
   */
  isolationLevel?: 'read_uncommitted' | 'read_committed';
  /** Messages per produce request. Default 1000 (fastest in notes/stack-bench.md §6). */
  produceBatchSize?: number;
  /** Use kafkajs' idempotent producer (broker-side dedup of producer retries within one session). */
  idempotent?: boolean;
  /**
   * Whether {@link KafkaClient.produce} sends a chunk again when its request fails (default true). A request
   * that timed out may still have been written, so a resend can duplicate records (the librdkafka 2.0.2
   * test broker does not deduplicate idempotent producers). With false, a failed chunk throws
   * {@link KafkaProduceError} at once, so the caller can find out what was written before sending again.
   */
  resendFailedProduce?: boolean;
  /** Timeout for establishing a connection in ms. Default 3000. */
  connectionTimeoutMs?: number;
  /** Timeout for one request in ms. Default 30000. */
  requestTimeoutMs?: number;
  /** kafkajs' own logging. Default 'nothing': failures surface as errors and retry events instead. */
  logLevel?: 'nothing' | 'error' | 'warn' | 'info' | 'debug';
}

/** Options of {@link KafkaClient.fetchRange}. */
export interface FetchRangeOptions {
  /** Bytes per partition per fetch request; grows by itself when one record set does not fit. Default 8 MiB. */
  maxBytes?: number;
  /**
   * Called for offsets of the range that are gone; reading then continues with what is left.
   * Without it, lost offsets throw {@link KafkaDataLossError} (failOnDataLoss=true).
   */
  onDataLoss?: (loss: DataLoss) => void;
}

// ---- the subset of kafkajs internals we use (src/cluster/index.js, src/broker/index.js, 2.2.4) ----

interface KjsBroker {
  /** kafkajs' private sendRequest (see {@link brokerSendRequest}): resolves to the parsed response. */
  [sendRequest: symbol]: <T>(request: { request: object; response: { decode(raw: Buffer): Promise<unknown>; parse(d: unknown): Promise<unknown> } }) => Promise<T>;
  offsetCommit(req: {
    groupId: string; groupGenerationId: number; memberId: string;
    topics: Array<{ topic: string; partitions: Array<{ partition: number; offset: string }> }>;
  }): Promise<unknown>;
  offsetFetch(req: { groupId: string; topics: Array<{ topic: string; partitions: Array<{ partition: number }> }> }):
    Promise<{ responses: Array<{ topic: string; partitions: Array<{ partition: number; offset: string }> }> }>;
}
interface KjsMetadata {
  controllerId: number;
  brokers: Array<{ nodeId: number }>;
  topicMetadata: Array<{ topic: string; topicErrorCode: number; partitionMetadata: Array<{ partitionId: number }> }>;
}
interface KjsCluster {
  connect(): Promise<void>;
  disconnect(): Promise<void>;
  refreshMetadata(): Promise<void>;
  metadata(args?: { topics?: string[] }): Promise<KjsMetadata | null>;
  addMultipleTargetTopics(topics: string[]): Promise<void>;
  findLeaderForPartitions(topic: string, partitions: number[]): Record<string, number[]>;
  findBroker(args: { nodeId: string }): Promise<KjsBroker>;
  findTopicPartitionMetadata(topic: string): Array<{ partitionId: number; leader: number }>;
  findControllerBroker(): Promise<KjsBroker>;
  findGroupCoordinator(args: { groupId: string }): Promise<KjsBroker>;
  fetchTopicsOffset(topics: Array<{ topic: string; partitions: Array<{ partition: number }>; fromBeginning: boolean }>):
    Promise<Array<{ topic: string; partitions: Array<{ partition: number; offset: string }> }>>;
  brokerPool: { metadata: KjsMetadata | null };
}
type CreateCluster = (opts: { allowAutoTopicCreation?: boolean; isolationLevel?: number; maxInFlightRequests?: number | null }) => KjsCluster;

interface KjsError extends Error {
  retriable?: boolean;
  type?: string;
  cause?: unknown;
}

const READ_UNCOMMITTED = 0;
const READ_COMMITTED = 1;
const DEFAULT_FETCH_MAX_BYTES = 8 << 20;
const MAX_FETCH_MAX_BYTES = 256 << 20;
/** Fetches that come back empty at the partition end before the range counts as truncated (leader catch-up). */
const EMPTY_AT_END_ATTEMPTS = 3;

/** Thrown inside a retry loop for conditions kafkajs does not flag itself (no leader known yet, ...). */
class RetriableCondition extends Error {
  readonly retriable = true;
}

function isRetriable(err: unknown): boolean {
  const e = err as KjsError | undefined;
  if (!e || typeof e !== 'object') return false;
  // kafkajs' inner retrier gives up with a non-retriable wrapper; the broker may still come back.
  if (e.name === 'KafkaJSNumberOfRetriesExceeded') return e.cause === undefined || isRetriable(e.cause);
  if (e.name === 'KafkaJSOffsetOutOfRange') return false;
  return e.retriable === true;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * The librdkafka 2.0.2 mock broker reports ControllerId=0 while its brokers are numbered from 1, so
 * kafkajs cannot find the controller and every request it routes there fails with "Broker 0 not found
 * in the cached metadata" — notably InitProducerId for the idempotent producer. We wrap
 * `findControllerBroker` on each cluster this client creates (not kafkajs' prototype, so other kafkajs
 * users in the process are untouched) and fall back to the lowest-id broker ONLY when the reported
 * controller id is absent from the broker list, which a real cluster never reports (a stale but
 * existing controller id still takes kafkajs' normal refresh-and-retry path). CreateTopics and
 * DeleteTopics stay unsupported by the mock regardless.
 */
function patchControllerLookup(cluster: KjsCluster): KjsCluster {
  const original = cluster.findControllerBroker.bind(cluster);
  cluster.findControllerBroker = async () => {
    try {
      return await original();
    } catch (err) {
      const md = cluster.brokerPool.metadata;
      if ((err as Error).name !== 'KafkaJSBrokerNotFound' || !md || md.brokers.length === 0 ||
        md.brokers.some((b) => b.nodeId === md.controllerId)) throw err;
      const fallback = Math.min(...md.brokers.map((b) => b.nodeId));
      return cluster.findBroker({ nodeId: String(fallback) });
    }
  };
  return cluster;
}

function toKjsMessage(m: ProduceMessage): KjsMessage {
  // kafkajs only reads messages; one without a timestamp has its shape already (no copy per record).
  if (m.timestamp === undefined) return m as KjsMessage;
  const out: KjsMessage = { key: m.key ?? null, value: m.value };
  if (m.partition !== undefined) out.partition = m.partition;
  if (m.headers) out.headers = m.headers as IHeaders;
  if (m.timestamp !== undefined) out.timestamp = String(m.timestamp);
  return out;
}

const guarded = new WeakSet<object>();

/**
 * kafkajs' Connection.connect opens a new socket on every call until one is connected, so two requests
 * that find the connection closed at once (a read task and its prefetch) open two sockets and leak one,
 * which keeps the process from exiting. Makes each of a broker's connections share a pending connect.
 */
function shareConnects(broker: KjsBroker): KjsBroker {
  if (guarded.has(broker)) return broker;
  guarded.add(broker);
  const pool = (broker as unknown as { connectionPool?: { pool?: Array<{ connect(): Promise<unknown> }> } }).connectionPool?.pool;
  if (!pool) throw new Error('kafkajs internals changed: Broker has no connectionPool.pool (expected kafkajs 2.2.x)');
  for (const connection of pool) {
    const connect = connection.connect.bind(connection);
    let pending: Promise<unknown> | null = null;
    connection.connect = () => (pending ??= connect().finally(() => { pending = null; }));
  }
  return broker;
}

let sendRequestSymbol: symbol | undefined;

/** kafkajs' private Broker method that sends a request over the broker's connection pool. */
function brokerSendRequest(broker: KjsBroker): symbol {
  if (sendRequestSymbol) return sendRequestSymbol;
  const found = Object.getOwnPropertySymbols(Object.getPrototypeOf(broker)).find((s) => s.description === 'private:Broker:sendRequest');
  if (!found) throw new Error('kafkajs internals changed: Broker has no sendRequest symbol (expected kafkajs 2.2.x)');
  return (sendRequestSymbol = found);
}

/**
 * A connection to one Kafka cluster: metadata, offsets, exact offset-range reads without a consumer
 * group, and batched produce with acks=all. Broker calls retry retriable failures with exponential
 * back-off (see {@link KafkaClientOptions.retry}); when the budget is spent they throw a SluiceError
 * with code `KAFKA_UNAVAILABLE`.
 */
export class KafkaClient {
  private producer: Producer | null = null;
  private producerConnecting: Promise<Producer> | null = null;
  private readonly knownTopics = new Set<string>();
  /** Topics whose tracking request is in flight. */
  private readonly tracking = new Map<string, Promise<void>>();
  /** Where the round-robin of keyless messages without a partition is, per topic. */
  private readonly roundRobin = new Map<string, number>();
  private readonly retries: number;
  private readonly initialMs: number;
  private readonly maxMs: number;

  private constructor(
    private readonly kafka: KafkaType,
    private readonly cluster: KjsCluster,
    private readonly bootstrap: string[],
    private readonly opts: KafkaClientOptions,
  ) {
    this.retries = opts.retry?.retries ?? 10;
    this.initialMs = opts.retry?.initialMs ?? 100;
    this.maxMs = opts.retry?.maxMs ?? 2000;
  }

  /**
   * Connects to the cluster (retrying while no bootstrap broker answers).
   * @param bootstrap `host:port` entries, or one comma-separated string.
   */
  static async connect(bootstrap: string[] | string, opts: KafkaClientOptions = {}): Promise<KafkaClient> {
    const brokers = (Array.isArray(bootstrap) ? bootstrap : bootstrap.split(','))
      .map((b) => b.trim()).filter((b) => b.length > 0);
    if (brokers.length === 0) {
      throw new SluiceError('KAFKA_CONFIG', 'no Kafka bootstrap servers given',
        'set kafka.bootstrap.servers, e.g. localhost:9092');
    }
    const levels = { nothing: KjsLogLevel.NOTHING, error: KjsLogLevel.ERROR, warn: KjsLogLevel.WARN,
      info: KjsLogLevel.INFO, debug: KjsLogLevel.DEBUG };
    const kafka = new Kafka({
      clientId: opts.clientId ?? 'sluice',
      brokers,
      connectionTimeout: opts.connectionTimeoutMs ?? 3000,
      requestTimeout: opts.requestTimeoutMs ?? 30000,
      logLevel: levels[opts.logLevel ?? 'nothing'],
      // Short inner retries: KafkaClient's own loop owns the overall budget and reports each back-off.
      retry: { retries: 2, initialRetryTime: 100, maxRetryTime: 1000 },
    });
    const symbol = Object.getOwnPropertySymbols(kafka).find((s) => s.description === 'private:Kafka:createCluster');
    if (!symbol) throw new Error('kafkajs internals changed: Kafka has no createCluster symbol (expected kafkajs 2.2.x)');
    const holder = kafka as unknown as Record<symbol, CreateCluster>;
    const createCluster = holder[symbol];
    holder[symbol] = (o) => patchControllerLookup(createCluster(o));

    const cluster = holder[symbol]({
      // The mock creates topics on any Metadata request naming them; we only ever name existing topics.
      allowAutoTopicCreation: false,
      isolationLevel: opts.isolationLevel === 'read_committed' ? READ_COMMITTED : READ_UNCOMMITTED,
    });
    const client = new KafkaClient(kafka, cluster, brokers, opts);
    await client.retrying('connect', () => cluster.connect());
    return client;
  }

  private get isolationLevel(): number {
    return this.opts.isolationLevel === 'read_committed' ? READ_COMMITTED : READ_UNCOMMITTED;
  }

  /**
   * Runs `fn`, retrying retriable failures with back-off and a metadata refresh in between
   * (leaders may have moved while a broker was away).
   */
  private async retrying<T>(operation: string, fn: () => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await fn();
      } catch (err) {
        if (!isRetriable(err)) {
          if (err instanceof Error && err.name.startsWith('KafkaJS')) {
            throw new SluiceError('KAFKA_ERROR', `Kafka ${operation} failed: ${err.message}`, undefined, { cause: err });
          }
          throw err;
        }
        if (attempt > this.retries) {
          throw new SluiceError('KAFKA_UNAVAILABLE',
            `Kafka ${operation} failed after ${attempt} attempts: ${(err as Error).message}`,
            `check that the brokers at ${this.bootstrap.join(',')} are up and reachable`, { cause: err });
        }
        const base = Math.min(this.maxMs, this.initialMs * 2 ** (attempt - 1));
        const delayMs = Math.round(base * (0.8 + 0.4 * Math.random()));
        this.opts.onRetry?.({ operation, attempt, delayMs, error: err as Error });
        await sleep(delayMs);
        await this.cluster.refreshMetadata().catch(() => undefined);
      }
    }
  }

  /**
   * Makes kafkajs track a topic's partition leaders (a metadata request naming only existing topics).
   * Concurrent calls for one topic share one request: kafkajs' metadata refreshes running side by side can
   * leave a broker connection open that nothing closes (a process then never exits).
   */
  private async track(topics: string[]): Promise<void> {
    const fresh = topics.filter((t) => !this.knownTopics.has(t));
    if (fresh.length === 0) return;
    const start = fresh.filter((t) => !this.tracking.has(t));
    if (start.length > 0) {
      const added = this.cluster.addMultipleTargetTopics(start).then(() => {
        for (const t of start) this.knownTopics.add(t);
      }).finally(() => {
        for (const t of start) this.tracking.delete(t);
      });
      for (const t of start) this.tracking.set(t, added);
    }
    await Promise.all(fresh.map((t) => this.tracking.get(t)));
  }

  /** All topics' metadata. Asking for all topics never auto-creates one (naming a topic does, on the mock). */
  private async allMetadata(): Promise<KjsMetadata> {
    return this.retrying('metadata', async () => {
      const md = await this.cluster.metadata();
      if (!md) throw new RetriableCondition('no broker answered the metadata request');
      return md;
    });
  }

  /**
   * Partitions of the given topics, or of every topic whose name matches `pattern`, sorted by topic then
   * partition. Always asks the broker, so partitions added since the last call show up. Topics that do
   * not exist are left out (Spark's subscribe semantics: they appear once created).
   */
  async listPartitions(topics: string[] | RegExp): Promise<TopicPartition[]> {
    const md = await this.allMetadata();
    const wanted = Array.isArray(topics) ? new Set(topics) : null;
    // A /g or /y pattern keeps state between test() calls; matching must not depend on call order.
    const pattern = Array.isArray(topics) ? null : new RegExp(topics.source, topics.flags.replace(/[gy]/g, ''));
    const out: TopicPartition[] = [];
    for (const t of md.topicMetadata) {
      if (t.topicErrorCode !== 0) continue;
      if (wanted ? !wanted.has(t.topic) : !pattern!.test(t.topic)) continue;
      for (const p of t.partitionMetadata) out.push({ topic: t.topic, partition: p.partitionId });
    }
    out.sort((a, b) => (a.topic < b.topic ? -1 : a.topic > b.topic ? 1 : a.partition - b.partition));
    return out;
  }

  /**
   * Earliest (`low`) and latest (`high`, the next offset to be written; the last stable offset under
   * read_committed) offsets of every partition of the given topics, sorted by topic then partition.
   * @throws SluiceError `KAFKA_UNKNOWN_TOPIC` when a topic does not exist.
   */
  async fetchOffsets(topics: string | string[]): Promise<PartitionOffsets[]> {
    const names = Array.isArray(topics) ? topics : [topics];
    const parts = await this.listPartitions(names);
    const missing = names.filter((t) => !parts.some((p) => p.topic === t));
    if (missing.length > 0) {
      throw new SluiceError('KAFKA_UNKNOWN_TOPIC', `Kafka topic ${missing.join(', ')} does not exist`,
        'create the topic first or check its name');
    }
    await this.track(names);
    if (parts.some((p) => Object.keys(this.cluster.findLeaderForPartitions(p.topic, [p.partition])).length === 0)) {
      // Partitions were added since kafkajs last cached this topic's leaders.
      await this.retrying('metadata', () => this.cluster.refreshMetadata());
    }
    const request = (fromBeginning: boolean) => names.map((topic) => ({
      topic, fromBeginning,
      partitions: parts.filter((p) => p.topic === topic).map((p) => ({ partition: p.partition })),
    }));
    const [low, high] = await this.retrying('list offsets', () => Promise.all([
      this.cluster.fetchTopicsOffset(request(true)),
      this.cluster.fetchTopicsOffset(request(false)),
    ]));
    const lookup = (res: typeof low, topic: string, partition: number): number => {
      const o = res.find((r) => r.topic === topic)?.partitions.find((p) => p.partition === partition)?.offset;
      if (o === undefined) throw new Error(`broker returned no offset for ${topic}-${partition}`);
      return Number(o);
    };
    return parts.map((p) => ({ ...p, low: lookup(low, p.topic, p.partition), high: lookup(high, p.topic, p.partition) }));
  }

  /** The leader of one partition, refreshing metadata when it is not known (yet). */
  private async leaderOf(topic: string, partition: number): Promise<KjsBroker> {
    await this.track([topic]);
    const leaders = this.cluster.findLeaderForPartitions(topic, [partition]);
    const nodeId = Object.keys(leaders)[0];
    if (nodeId === undefined) {
      throw new RetriableCondition(`no leader known for ${topic}-${partition}`);
    }
    return shareConnects(await this.cluster.findBroker({ nodeId }));
  }

  /** One Fetch request for one partition; `null` means the offset is out of range. */
  private async fetchOnce(topic: string, partition: number, offset: number, maxBytes: number):
    Promise<FetchedPartition | null> {
    return this.retrying(`fetch ${topic}-${partition}`, async () => {
      const broker = await this.leaderOf(topic, partition);
      try {
        const request = fetchRequest(topic, partition, offset, { isolationLevel: this.isolationLevel, maxWaitMs: 100, maxBytes });
        const res = await broker[brokerSendRequest(broker)]<Awaited<ReturnType<typeof request.response.decode>>>(request);
        const p = res.responses.find((r) => r.topicName === topic)?.partitions.find((x) => x.partition === partition);
        if (!p) throw new RetriableCondition(`fetch response lacks ${topic}-${partition}`);
        return await decodePartition(p, this.isolationLevel === READ_COMMITTED);
      } catch (err) {
        if ((err as Error).name === 'KafkaJSOffsetOutOfRange') return null;
        throw err;
      }
    });
  }

  /**
   * Exactly the records of `topic`-`partition` with offsets in [fromOffset, untilOffset), in offset
   * order (fewer only on compacted topics, aborted transactions under read_committed, or data loss
   * reported to `onDataLoss`). Issues as many fetches as needed; each one is retried on retriable errors.
   * @throws KafkaDataLossError when offsets of the range are gone and no `onDataLoss` was given.
   */
  async fetchRange(topic: string, partition: number, fromOffset: number, untilOffset: number,
    options: FetchRangeOptions = {}): Promise<KafkaMessage[]> {
    const out: KafkaMessage[] = [];
    let maxBytes = options.maxBytes ?? DEFAULT_FETCH_MAX_BYTES;
    let next = fromOffset;
    let emptyAtEnd = 0;
    const lose = (fromOff: number, untilOff: number, reason: DataLoss['reason']): void => {
      const loss: DataLoss = { topic, partition, fromOffset: fromOff, untilOffset: untilOff, reason };
      if (!options.onDataLoss) throw new KafkaDataLossError(loss);
      options.onDataLoss(loss);
    };

    while (next < untilOffset) {
      const resp = await this.fetchOnce(topic, partition, next, maxBytes);
      if (resp === null) {
        const [o] = (await this.fetchOffsets(topic)).filter((p) => p.partition === partition);
        if (!o) throw new SluiceError('KAFKA_UNKNOWN_PARTITION', `partition ${topic}-${partition} does not exist`);
        if (next < o.low) {
          lose(next, Math.min(o.low, untilOffset), 'retention');
          next = o.low;
        } else if (next > o.high) {
          lose(next, untilOffset, 'truncated');
          break;
        }
        continue;
      }
      // Continue after the last record batch, not the last record: compaction leaves holes at batch ends.
      const batchEnd = resp.batchEnd ?? next;
      if (batchEnd <= next) {
        if (next < resp.highWatermark) {
          // The record set at `next` is larger than maxBytes and the broker sent only part of it, which
          // the decoder drops. Brokers since 0.10.1 (KIP-74, and the mock) send the first set whole instead.
          if (maxBytes >= MAX_FETCH_MAX_BYTES) {
            throw new SluiceError('KAFKA_RECORD_TOO_LARGE',
              `a record set of ${topic}-${partition} at offset ${next} is larger than ${MAX_FETCH_MAX_BYTES} bytes`);
          }
          maxBytes *= 2;
        } else if (++emptyAtEnd >= EMPTY_AT_END_ATTEMPTS) {
          lose(next, untilOffset, 'truncated');
          break;
        } else {
          // A new leader may not have caught up to the high watermark the range was planned from.
          await sleep(this.initialMs * emptyAtEnd);
        }
        continue;
      }
      emptyAtEnd = 0;
      for (const m of resp.messages) {
        if (m.offset < next) continue;
        if (m.offset >= untilOffset) break;
        out.push(m);
      }
      next = batchEnd;
    }
    return out;
  }

  private async getProducer(): Promise<Producer> {
    if (this.producer) return this.producer;
    this.producerConnecting ??= (async () => {
      const producer = this.kafka.producer({
        createPartitioner: Partitioners.DefaultPartitioner,
        allowAutoTopicCreation: false,
        idempotent: this.opts.idempotent ?? false,
        // The idempotent producer requires one request in flight per connection.
        maxInFlightRequests: this.opts.idempotent ? 1 : undefined,
        ...(this.opts.resendFailedProduce === false ? { retry: { retries: 0 } } : {}),
      });
      try {
        await this.retrying('connect producer', () => producer.connect());
      } catch (err) {
        this.producerConnecting = null;
        throw err;
      }
      this.producer = producer;
      return producer;
    })();
    return this.producerConnecting;
  }

  /**
   * Writes `messages` to `topic` with acks=all, in requests of `produceBatchSize` messages, one request
   * at a time so partition order follows array order. Messages without a partition go to murmur2(key) when
   * they have a key (Java's and kafkajs' default partitioner), round-robin over partitions with a leader
   * otherwise. A chunk that fails with a retriable error is sent again, so a retry can duplicate records
   * (at-least-once), unless `resendFailedProduce` is false: then it throws {@link KafkaProduceError} and sinks
   * that need exactly-once deduplicate by replay.
   * @throws SluiceError `KAFKA_UNKNOWN_TOPIC` when the topic does not exist.
   */
  async produce(topic: string, messages: ProduceMessage[]): Promise<ProduceResult[]> {
    if (messages.length === 0) return [];
    if (!this.knownTopics.has(topic)) {
      // Checked up front: a broker that auto-creates topics named in Metadata requests (the mock does)
      // would otherwise create a misspelt topic, and a real one would fail only after every retry.
      if ((await this.listPartitions([topic])).length === 0) {
        throw new SluiceError('KAFKA_UNKNOWN_TOPIC', `Kafka topic ${topic} does not exist`,
          'create the topic before writing to it or check its name');
      }
      await this.track([topic]);
    }
    // The idempotent producer needs kafkajs' producer id and sequence bookkeeping; everything else is
    // encoded here (lib/sources/kafka/produce-request.ts), several times cheaper.
    const producer = this.opts.idempotent ? await this.getProducer() : null;
    const send = producer
      ? async (chunk: ProduceMessage[]) => (await producer.send({ topic, acks: -1, messages: chunk.map(toKjsMessage) }))
        .map((m) => ({ partition: m.partition, baseOffset: Number(m.baseOffset ?? m.offset) }))
      : (chunk: ProduceMessage[]) => this.sendChunk(topic, chunk);
    const sendOnce = async (chunk: ProduceMessage[]) => {
      try {
        return await send(chunk);
      } catch (err) {
        // A moved leader is found again before the caller's next attempt.
        await this.cluster.refreshMetadata().catch(() => undefined);
        throw new KafkaProduceError(topic, err as Error, isRetriable(err));
      }
    };
    const size = this.opts.produceBatchSize ?? 1000;
    const results: ProduceResult[] = [];
    for (let i = 0; i < messages.length; i += size) {
      const chunk = messages.slice(i, i + size);
      const meta = this.opts.resendFailedProduce === false
        ? await sendOnce(chunk)
        : await this.retrying(`produce to ${topic}`, () => send(chunk));
      results.push(...meta);
    }
    return results;
  }

  /** One Produce request per partition leader for `chunk`, all in flight at once. */
  private async sendChunk(topic: string, chunk: ProduceMessage[]): Promise<ProduceResult[]> {
    const partitions = this.cluster.findTopicPartitionMetadata(topic);
    if (partitions.length === 0) throw new RetriableCondition(`no partitions known for topic ${topic}`);
    const byPartition = new Map<number, ProduceMessage[]>();
    for (const m of chunk) {
      const p = m.partition ?? (m.key !== null && m.key !== undefined
        ? (murmur2(m.key) & 0x7fffffff) % partitions.length
        : this.nextRoundRobin(topic, partitions));
      let list = byPartition.get(p);
      if (!list) byPartition.set(p, (list = []));
      list.push(m);
    }
    const leaders = this.cluster.findLeaderForPartitions(topic, [...byPartition.keys()]);
    const led = Object.values(leaders).reduce((a, ps) => a + ps.length, 0);
    if (led < byPartition.size) throw new RetriableCondition(`no leader known for some partitions of ${topic}`);
    const now = Date.now();
    const results: ProduceResult[] = [];
    await Promise.all(Object.entries(leaders).map(async ([nodeId, ps]) => {
      const broker = shareConnects(await this.cluster.findBroker({ nodeId }));
      const request = produceRequest(topic, ps.map((p) => ({ partition: p, batch: encodeRecordBatch(byPartition.get(p)!, now) })),
        this.opts.requestTimeoutMs ?? 30000);
      const res = await broker[brokerSendRequest(broker)]<ProduceV3Response>(request);
      for (const t of res.topics) {
        for (const p of t.partitions) results.push({ partition: p.partition, baseOffset: Number(p.baseOffset) });
      }
    }));
    return results;
  }

  /** kafkajs' rule for keyless messages: round-robin over the partitions that have a leader. */
  private nextRoundRobin(topic: string, partitions: Array<{ partitionId: number; leader: number }>): number {
    const available = partitions.filter((p) => p.leader >= 0);
    const counter = (this.roundRobin.get(topic) ?? Math.floor(Math.random() * 0x7fffffff)) + 1;
    this.roundRobin.set(topic, counter);
    const from = available.length > 0 ? available : partitions;
    return from[(counter & 0x7fffffff) % from.length].partitionId;
  }

  /**
   * Commits `offsets` (each the next offset to read, Kafka's convention) for consumer group `groupId`
   * as a standalone commit (generation -1, no member), so lag tools see sluice's progress. Never read
   * back for recovery: the checkpoint is the source of truth. Fails if the group has active members.
   */
  async commitGroupOffsets(groupId: string, offsets: Array<TopicPartition & { offset: number }>): Promise<void> {
    if (offsets.length === 0) return;
    const byTopic = new Map<string, Array<{ partition: number; offset: string }>>();
    for (const o of offsets) {
      let parts = byTopic.get(o.topic);
      if (!parts) byTopic.set(o.topic, (parts = []));
      parts.push({ partition: o.partition, offset: String(o.offset) });
    }
    const topics = [...byTopic].map(([topic, partitions]) => ({ topic, partitions }));
    await this.retrying(`commit offsets of group ${groupId}`, async () => {
      const coordinator = await this.cluster.findGroupCoordinator({ groupId });
      await coordinator.offsetCommit({ groupId, groupGenerationId: -1, memberId: '', topics });
    });
  }

  /** Committed offsets of `groupId` for the partitions of `topic` (-1 where none was committed). */
  async fetchGroupOffsets(groupId: string, topic: string): Promise<Array<{ partition: number; offset: number }>> {
    const parts = await this.listPartitions([topic]);
    const res = await this.retrying(`fetch offsets of group ${groupId}`, async () => {
      const coordinator = await this.cluster.findGroupCoordinator({ groupId });
      return coordinator.offsetFetch({ groupId, topics: [{ topic, partitions: parts.map((p) => ({ partition: p.partition })) }] });
    });
    const found = res.responses.find((r) => r.topic === topic)?.partitions ?? [];
    return found.map((p) => ({ partition: p.partition, offset: Number(p.offset) }))
      .sort((a, b) => a.partition - b.partition);
  }

  /** Closes the producer and all broker connections. */
  async close(): Promise<void> {
    const producer = this.producer ?? (this.producerConnecting ? await this.producerConnecting.catch(() => null) : null);
    this.producer = null;
    this.producerConnecting = null;
    await producer?.disconnect().catch(() => undefined);
    await this.cluster.disconnect();
  }
}
