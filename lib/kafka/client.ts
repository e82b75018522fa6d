/**
 * The client through which sluice talks to Kafka. Everything else (source, sink, tools, tests) goes
 * through {@link KafkaClient}, so the client library can be swapped without touching them.
 *
 * Choice: kafkajs 2.2.4 (pure JS, no native build). Measured on this machine against the librdkafka
 * mock when the client was chosen: reading without a group through its internal cluster reaches
 * ~470k msg/s, faster than @confluentinc/kafka-javascript's native assign API (~113k msg/s), which also
 * needs a native build; producing runs at ~100k msg/s (confluent native: ~214k). @platformatic/kafka
 * cannot talk to the mock at all.
 *
 * Reading uses kafkajs internals on purpose (see kafkajs-internals.ts): sluice's checkpoint, not a
 * consumer group, owns the offsets, so the client fetches from partition leaders through kafkajs'
 * internal `Cluster`, exactly like its own consumer does underneath.
 */

import type { IHeaders, Kafka as KafkaType, Message as KjsMessage, Producer } from 'kafkajs';
import kafkajs from 'kafkajs';
import { SluiceError } from '../errors.js';
import type { FetchRangeOptions, KafkaClientOptions } from './client-options.js';
import { kafkajsSecurity } from './connection-security.js';
import { type DataLoss, KafkaDataLossError } from './data-loss.js';
import { registerKafkajsCodecs } from './kafkajs-codecs.js';
import {
  createCluster,
  type KjsBroker,
  type KjsCluster,
  type KjsMetadata,
  sendRequest,
  shareConnects,
} from './kafkajs-internals.js';
import type { KafkaMessage, ProduceMessage, ProduceResult } from './messages.js';
import { murmur2 } from './murmur2.js';
import { PartitionLeaders, type TopicLeaders } from './partition-leaders.js';
import { KafkaProduceError } from './produce-error.js';
import { NO_PRODUCER, type ProducerTransaction, partitionKey } from './producer-transaction.js';
import {
  ADD_PARTITIONS_TO_TXN_API_KEY,
  brokerVersions,
  commonVersion,
  END_TXN_API_KEY,
  FETCH_API_KEY,
  INIT_PRODUCER_ID_API_KEY,
  LIST_OFFSETS_API_KEY,
  PRODUCE_API_KEY,
  versionFor,
} from './protocol/api-versions.js';
import { type CompressionCodec, codecByName } from './protocol/compression.js';
import { decodePartition, type FetchedPartition } from './protocol/fetch/fetched-partition.js';
import { FETCH_BY_TOPIC_ID, type FetchPosition, fetchPartitionsRequest, fetchRequest } from './protocol/fetch/v16.js';
import {
  EARLIEST_TIMESTAMP,
  LATEST_TIMESTAMP,
  type ListedOffset,
  type ListOffsetsPartition,
  listOffsetsRequest,
} from './protocol/list-offsets/v7.js';
import { produceRequest } from './protocol/produce/v10.js';
import { compressRecordBatch, encodeRecordBatch } from './protocol/record-batch.js';
import { addPartitionsToTxnRequest } from './protocol/transactions/add-partitions-to-txn.js';
import { endTxnRequest } from './protocol/transactions/end-txn.js';
import { initProducerIdRequest, type ProducerEpoch } from './protocol/transactions/init-producer-id.js';
import { RecordColumns } from './record-columns.js';
import { produceRuns } from './record-size.js';
import { isRetriable, RetriableCondition } from './retry.js';
import { securityFailure } from './security-failure.js';
import type { PartitionOffsets, TopicPartition } from './topic-partition.js';

const { CompressionTypes, Kafka, logLevel: KjsLogLevel, Partitioners } = kafkajs;

const READ_UNCOMMITTED = 0;
const READ_COMMITTED = 1;
const DEFAULT_FETCH_MAX_BYTES = 8 << 20;
const DEFAULT_FETCH_MAX_WAIT_MS = 100;
/** How long cached cluster metadata counts as fresh: the Kafka clients' metadata.max.age.ms default. */
const METADATA_MAX_AGE_MS = 300_000;
/** FindCoordinator's key type of a transactional id. */
const TRANSACTION_COORDINATOR = 1;
/** DescribeConfigs' resource type of a topic. */
const TOPIC_RESOURCE = 2;
const MAX_FETCH_MAX_BYTES = 256 << 20;
/** Fetches that come back empty at the partition end before the range counts as truncated (leader catch-up). */
const EMPTY_AT_END_ATTEMPTS = 3;
/**
 * With compression, produce runs are first cut at this many times the batch limit in uncompressed bytes (JSON
 * compresses 3-5x), then split further where a compressed batch is still over the limit.
 */
const COMPRESSED_RUN_FACTOR = 4;
/** A run split because a compressed batch was over the limit keeps this share of what would just fit. */
const SPLIT_MARGIN = 0.9;

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function toKjsMessage(m: ProduceMessage): KjsMessage {
  // kafkajs only reads messages; one without a timestamp or header pairs has its shape already (no copy per record).
  if (m.timestamp === undefined && !Array.isArray(m.headers)) return m as KjsMessage;
  const out: KjsMessage = { key: m.key ?? null, value: m.value };
  if (m.partition !== undefined) out.partition = m.partition;
  if (Array.isArray(m.headers)) {
    const headers: IHeaders = {};
    for (const [name, v] of m.headers) {
      if (v === null) continue;
      const prev = headers[name];
      headers[name] = prev === undefined ? v : ([] as Array<Buffer | string>).concat(prev as Buffer | string, v);
    }
    out.headers = headers;
  } else if (m.headers) {
    out.headers = m.headers as IHeaders;
  }
  if (m.timestamp !== undefined) out.timestamp = String(m.timestamp);
  return out;
}

/**
 * A connection to one Kafka cluster: metadata, offsets, exact offset-range reads without a consumer
 * group, and batched produce (acks=all unless {@link KafkaClientOptions.acks} says otherwise). Broker calls retry retriable failures with exponential
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
  /** The codec of produced batches; null for uncompressed. */
  private readonly codec: CompressionCodec | null;
  /** Leaders with their epochs and topic ids, for Fetch. */
  private readonly leaders: PartitionLeaders;
  /** The coordinator of each transactional id this client wrote through, while calls to it succeed. */
  private readonly coordinators = new Map<string, Promise<KjsBroker>>();

  private constructor(
    private readonly kafka: KafkaType,
    private readonly cluster: KjsCluster,
    private readonly bootstrap: string[],
    private readonly opts: KafkaClientOptions,
  ) {
    this.retries = opts.retry?.retries ?? 10;
    this.initialMs = opts.retry?.initialMs ?? 100;
    this.maxMs = opts.retry?.maxMs ?? 2000;
    this.codec = codecByName(opts.compression ?? 'none');
    this.leaders = new PartitionLeaders(cluster);
  }

  /**
   * Connects to the cluster (retrying while no bootstrap broker answers).
   * @param bootstrap `host:port` entries, or one comma-separated string.
   */
  static async connect(bootstrap: string[] | string, opts: KafkaClientOptions = {}): Promise<KafkaClient> {
    const brokers = (Array.isArray(bootstrap) ? bootstrap : bootstrap.split(','))
      .map((b) => b.trim())
      .filter((b) => b.length > 0);
    if (brokers.length === 0) {
      throw new SluiceError(
        'KAFKA_CONFIG',
        'no Kafka bootstrap servers given',
        'set kafka.bootstrap.servers, e.g. localhost:9092',
      );
    }
    registerKafkajsCodecs();
    const levels = {
      nothing: KjsLogLevel.NOTHING,
      error: KjsLogLevel.ERROR,
      warn: KjsLogLevel.WARN,
      info: KjsLogLevel.INFO,
      debug: KjsLogLevel.DEBUG,
    };
    const kafka = new Kafka({
      clientId: opts.clientId ?? 'sluice',
      brokers,
      connectionTimeout: opts.connectionTimeoutMs ?? 3000,
      requestTimeout: opts.requestTimeoutMs ?? 30000,
      logLevel: levels[opts.logLevel ?? 'nothing'],
      ...kafkajsSecurity(opts.security),
      // Short inner retries: KafkaClient's own loop owns the overall budget and reports each back-off.
      retry: { retries: 2, initialRetryTime: 100, maxRetryTime: 1000 },
    });
    const cluster = createCluster(kafka, {
      // The mock creates topics on any Metadata request naming them; we only ever name existing topics.
      allowAutoTopicCreation: false,
      // With kafkajs' default of 0 for a bare cluster, every metadata lookup asked the broker twice (a refresh,
      // then the lookup): a round trip more in each batch's offsets. Leaders that move are asked again when a
      // request fails (see retrying), and listPartitions still asks the broker each time, so new partitions
      // and topics are found as before.
      metadataMaxAge: METADATA_MAX_AGE_MS,
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
        const failure = securityFailure(err, this.bootstrap, this.opts.security);
        if (failure) throw failure;
        if (!isRetriable(err)) {
          if (err instanceof Error && err.name.startsWith('KafkaJS')) {
            throw new SluiceError('KAFKA_ERROR', `Kafka ${operation} failed: ${err.message}`, undefined, {
              cause: err,
            });
          }
          throw err;
        }
        if (attempt > this.retries) {
          throw new SluiceError(
            'KAFKA_UNAVAILABLE',
            `Kafka ${operation} failed after ${attempt} attempts: ${(err as Error).message}`,
            `check that the brokers at ${this.bootstrap.join(',')} are up and reachable`,
            { cause: err },
          );
        }
        const base = Math.min(this.maxMs, this.initialMs * 2 ** (attempt - 1));
        const delayMs = Math.round(base * (0.8 + 0.4 * Math.random()));
        this.opts.onRetry?.({ operation, attempt, delayMs, error: err as Error });
        await sleep(delayMs);
        this.leaders.forget();
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
      const added = this.cluster
        .addMultipleTargetTopics(start)
        .then(() => {
          for (const t of start) this.knownTopics.add(t);
        })
        .finally(() => {
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
      throw new SluiceError(
        'KAFKA_UNKNOWN_TOPIC',
        `Kafka topic ${missing.join(', ')} does not exist`,
        'create the topic first or check its name',
      );
    }
    await this.track(names);
    if (parts.some((p) => Object.keys(this.cluster.findLeaderForPartitions(p.topic, [p.partition])).length === 0)) {
      // Partitions were added since kafkajs last cached this topic's leaders.
      await this.retrying('metadata', () => this.cluster.refreshMetadata());
    }
    const out: PartitionOffsets[] = [];
    for (const topic of names) {
      const own = parts.filter((p) => p.topic === topic);
      const [low, high] = await Promise.all(
        [EARLIEST_TIMESTAMP, LATEST_TIMESTAMP].map((timestamp) =>
          this.listOffsets(
            topic,
            own.map((p) => ({ partition: p.partition, timestamp })),
          ),
        ),
      );
      for (const p of own) out.push({ ...p, low: low.get(p.partition)!, high: high.get(p.partition)! });
    }
    return out;
  }

  /**
   * For each partition, the earliest offset whose record timestamp is at or after the given time (Kafka's
   * offsetsForTimes, a ListOffsets request by timestamp); null where no record is that late.
   */
  async offsetsForTimes(
    topic: string,
    times: Array<{ partition: number; timestamp: number }>,
  ): Promise<Array<{ partition: number; offset: number | null }>> {
    await this.track([topic]);
    const offsets = await this.listOffsets(topic, times);
    return times
      .map(({ partition }) => ({ partition, offset: offsets.get(partition)! < 0 ? null : offsets.get(partition)! }))
      .sort((a, b) => a.partition - b.partition);
  }

  /**
   * The offsets of `topic`'s partitions for the given timestamps (a record time, or earliest/latest), each
   * asked of the partition's leader with the leader epoch metadata gave (ListOffsets v4+), so a moved leader
   * is noticed (FENCED_LEADER_EPOCH) and asked again; through kafkajs' ListOffsets, without epochs, where the
   * leader speaks no such version.
   */
  private async listOffsets(
    topic: string,
    wanted: Array<{ partition: number; timestamp: number }>,
  ): Promise<Map<number, number>> {
    return this.retrying(`list offsets of ${topic}`, async () => {
      await this.track([topic]);
      const view = await this.leaders.of(topic);
      const byLeader = new Map<string, ListOffsetsPartition[]>();
      for (const { partition, timestamp } of wanted) {
        const { leader, leaderEpoch } = this.partitionLeader(topic, view, partition);
        let list = byLeader.get(leader);
        if (!list) {
          list = [];
          byLeader.set(leader, list);
        }
        list.push({ partition, timestamp, currentLeaderEpoch: leaderEpoch ?? -1 });
      }
      const offsets = new Map<number, number>();
      await Promise.all(
        [...byLeader].map(async ([nodeId, partitions]) => {
          const broker = shareConnects(await this.cluster.findBroker({ nodeId }));
          const version = commonVersion(LIST_OFFSETS_API_KEY, await brokerVersions(broker));
          const listed =
            version === null
              ? await this.kafkajsListOffsets(topic, partitions)
              : await sendRequest(broker, listOffsetsRequest(version, topic, this.isolationLevel, partitions));
          for (const l of listed) offsets.set(l.partition, l.offset);
        }),
      );
      for (const { partition } of wanted) {
        if (!offsets.has(partition)) throw new Error(`broker returned no offset for ${topic}-${partition}`);
      }
      return offsets;
    });
  }

  /** kafkajs' ListOffsets (no leader epochs), which takes one timestamp per request. */
  private async kafkajsListOffsets(topic: string, partitions: ListOffsetsPartition[]): Promise<ListedOffset[]> {
    const out: ListedOffset[] = [];
    for (const timestamp of new Set(partitions.map((p) => p.timestamp))) {
      const res = await this.cluster.fetchTopicsOffset([
        {
          topic,
          fromBeginning: timestamp === EARLIEST_TIMESTAMP,
          ...(timestamp >= 0 ? { fromTimestamp: timestamp } : {}),
          partitions: partitions.filter((p) => p.timestamp === timestamp).map(({ partition }) => ({ partition })),
        },
      ]);
      for (const p of res.find((r) => r.topic === topic)?.partitions ?? [])
        out.push({ partition: p.partition, offset: Number(p.offset) });
    }
    return out;
  }

  /**
   * The value of one of a topic's settings (DescribeConfigs, e.g. `max.message.bytes`), or null when the
   * brokers do not answer DescribeConfigs or do not report the setting, or the topic does not exist.
   */
  async topicConfig(topic: string, name: string): Promise<string | null> {
    // Checked first: naming a topic that does not exist would make a broker that auto-creates topics create it.
    if ((await this.listPartitions([topic])).length === 0) return null;
    const res = await this.retrying(`describe configs of ${topic}`, async () => {
      const broker = await this.leaderOf(topic, 0);
      try {
        return await broker.describeConfigs({
          resources: [{ type: TOPIC_RESOURCE, name: topic, configNames: [name] }],
          includeSynonyms: false,
        });
      } catch (err) {
        if ((err as Error).name === 'KafkaJSServerDoesNotSupportApiKey') return null;
        throw err;
      }
    });
    const entry = res?.resources
      .find((r) => r.resourceName === topic)
      ?.configEntries.find((e) => e.configName === name);
    return entry?.configValue ?? null;
  }

  /** The leader of one partition, refreshing metadata when it is not known (yet). */
  /**
   * The node id of `partition`'s leader, with its epoch when Metadata v7+ gave one (`view`), else from kafkajs'
   * metadata; a partition without a leader is a retriable condition.
   */
  private partitionLeader(
    topic: string,
    view: TopicLeaders | null,
    partition: number,
  ): { leader: string; leaderEpoch: number | undefined } {
    const known = view?.partitions.get(partition);
    const leader = known
      ? String(known.leader)
      : Object.keys(this.cluster.findLeaderForPartitions(topic, [partition]))[0];
    if (leader === undefined || leader === '-1')
      throw new RetriableCondition(`no leader known for ${topic}-${partition}`);
    return { leader, leaderEpoch: known?.leaderEpoch };
  }

  private async leaderOf(topic: string, partition: number): Promise<KjsBroker> {
    await this.track([topic]);
    const leaders = this.cluster.findLeaderForPartitions(topic, [partition]);
    const nodeId = Object.keys(leaders)[0];
    if (nodeId === undefined) {
      throw new RetriableCondition(`no leader known for ${topic}-${partition}`);
    }
    return shareConnects(await this.cluster.findBroker({ nodeId }));
  }

  /**
   * One Fetch request for one partition, to its leader with the leader's epoch where the brokers' Metadata
   * carries it (FENCED_LEADER_EPOCH, UNKNOWN_LEADER_EPOCH and NOT_LEADER_OR_FOLLOWER are retried after the
   * leaders are asked again; the same offset is fetched, so nothing is skipped or read twice); `null` means the
   * offset is out of range.
   */
  private async fetchOnce(
    topic: string,
    partition: number,
    offset: number,
    maxBytes: number,
  ): Promise<FetchedPartition | null> {
    return this.retrying(`fetch ${topic}-${partition}`, async () => {
      await this.track([topic]); // kafkajs must know the brokers the leaders below are looked up in
      const view = await this.leaders.of(topic);
      const known = view?.partitions.get(partition);
      if (known && known.leader < 0) throw new RetriableCondition(`no leader known for ${topic}-${partition}`);
      const broker = known
        ? shareConnects(await this.cluster.findBroker({ nodeId: String(known.leader) }))
        : await this.leaderOf(topic, partition);
      const version = await versionFor(broker, FETCH_API_KEY);
      try {
        const request = fetchRequest(topic, partition, offset, {
          // Fetch names topics by id from v13; without an id (Metadata below v10) v12 is the highest usable.
          version: view?.topicId ? version : Math.min(version, FETCH_BY_TOPIC_ID - 1),
          isolationLevel: this.isolationLevel,
          maxWaitMs: this.opts.fetchMaxWaitMs ?? DEFAULT_FETCH_MAX_WAIT_MS,
          maxBytes,
          currentLeaderEpoch: known?.leaderEpoch ?? -1,
          topicId: view?.topicId,
        });
        const res = await sendRequest(broker, request);
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
  async fetchRange(
    topic: string,
    partition: number,
    fromOffset: number,
    untilOffset: number,
    options: FetchRangeOptions = {},
  ): Promise<KafkaMessage[]> {
    return (await this.fetchRecords(topic, partition, fromOffset, untilOffset, options)).toMessages();
  }

  /**
   * The records of {@link fetchRange} as columns (offsets, timestamps, and spans of the fetched buffers for keys
   * and values), with no object per record: what a source turns into Arrow columns.
   */
  async fetchRecords(
    topic: string,
    partition: number,
    fromOffset: number,
    untilOffset: number,
    options: FetchRangeOptions = {},
  ): Promise<RecordColumns> {
    const out = new RecordColumns();
    let maxBytes = options.maxBytes ?? this.opts.maxPartitionFetchBytes ?? DEFAULT_FETCH_MAX_BYTES;
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
            throw new SluiceError(
              'KAFKA_RECORD_TOO_LARGE',
              `a record set of ${topic}-${partition} at offset ${next} is larger than ${MAX_FETCH_MAX_BYTES} bytes`,
            );
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
      out.appendRange(resp.records, next, untilOffset);
      next = batchEnd;
    }
    return out;
  }

  /**
   * Waits until any of the given partitions has a record at or after its offset, or for `maxWaitMs`: a Fetch
   * with min bytes 1 per leader and topic, side by side, which the broker holds until a record arrives or the
   * wait is over (the test broker holds an empty answer for the whole wait). Resolves to whether records
   * came back. A broker answers a connection's requests in order, so a client that waits here should do
   * nothing else: a waiting Fetch would hold up every request queued behind it.
   */
  async awaitRecords(positions: Array<TopicPartition & { offset: number }>, maxWaitMs: number): Promise<boolean> {
    const byLeader = new Map<string, { topic: string; topicId: Buffer | null; positions: FetchPosition[] }>();
    for (const topic of new Set(positions.map((p) => p.topic))) {
      await this.track([topic]);
      const view = await this.leaders.of(topic);
      for (const p of positions.filter((x) => x.topic === topic)) {
        const { leader, leaderEpoch } = this.partitionLeader(topic, view, p.partition);
        const key = `${leader}|${topic}`;
        let group = byLeader.get(key);
        if (!group) {
          group = { topic, topicId: view?.topicId ?? null, positions: [] };
          byLeader.set(key, group);
        }
        group.positions.push({ partition: p.partition, offset: p.offset, currentLeaderEpoch: leaderEpoch });
      }
    }
    const answers = await Promise.all(
      [...byLeader].map(async ([key, group]) => {
        const broker = shareConnects(await this.cluster.findBroker({ nodeId: key.slice(0, key.indexOf('|')) }));
        const version = await versionFor(broker, FETCH_API_KEY);
        const res = await sendRequest(
          broker,
          fetchPartitionsRequest(group.topic, group.positions, {
            version: group.topicId ? version : Math.min(version, FETCH_BY_TOPIC_ID - 1),
            isolationLevel: this.isolationLevel,
            maxWaitMs,
            // One record batch of a partition is enough to know it has records (brokers send a first one whole).
            maxBytes: 1,
            topicId: group.topicId,
          }),
        );
        // A record set is its int32 size and then its bytes.
        return res.responses.some((t) => t.partitions.some((p) => p.recordSet.length > 4));
      }),
    );
    return answers.some(Boolean);
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
   * Writes `messages` to `topic` with the client's acks, in requests of `produceBatchSize` messages, one request
   * at a time so partition order follows array order. Messages without a partition go to murmur2(key) when
   * they have a key (Java's and kafkajs' default partitioner), round-robin over partitions with a leader
   * otherwise. A chunk that fails with a retriable error is sent again, so a retry can duplicate records
   * (at-least-once), unless `resendFailedProduce` is false: then it throws {@link KafkaProduceError} and sinks
   * that need exactly-once deduplicate by replay.
   * With `maxBatchBytes`, requests are also cut so that no record batch exceeds that many bytes on the wire
   * (compressed, when the client compresses); a single message over it still goes alone, for the broker to refuse.
   * With `transaction`, the records are written in its open transaction (each partition added to it first, see
   * {@link initProducerId} and {@link endTransaction}), with its producer id, epoch and sequence numbers.
   * @throws SluiceError `KAFKA_UNKNOWN_TOPIC` when the topic does not exist.
   */
  async produce(
    topic: string,
    messages: ProduceMessage[],
    options: { maxBatchBytes?: number; transaction?: ProducerTransaction } = {},
  ): Promise<ProduceResult[]> {
    if (messages.length === 0) return [];
    if (!this.knownTopics.has(topic)) {
      // Checked up front: a broker that auto-creates topics named in Metadata requests (the mock does)
      // would otherwise create a misspelt topic, and a real one would fail only after every retry.
      if ((await this.listPartitions([topic])).length === 0) {
        throw new SluiceError(
          'KAFKA_UNKNOWN_TOPIC',
          `Kafka topic ${topic} does not exist`,
          'create the topic before writing to it or check its name',
        );
      }
      await this.track([topic]);
    }
    // The idempotent producer needs kafkajs' producer id and sequence bookkeeping; everything else is
    // grouped and encoded here (protocol/record-batch.ts, protocol/produce/v10.ts), several times cheaper:
    // kafkajs' producer also groups messages by partition in quadratic time.
    const producer = this.opts.idempotent && !options.transaction ? await this.getProducer() : null;
    const send = producer
      ? async (chunk: ProduceMessage[]) =>
          (
            await producer.send({
              topic,
              acks: this.opts.acks ?? -1,
              messages: chunk.map(toKjsMessage),
              compression: this.codec?.id ?? CompressionTypes.None,
            })
          ).map((m) => ({
            partition: m.partition,
            baseOffset: Number(m.baseOffset ?? m.offset),
          }))
      : (chunk: ProduceMessage[]) =>
          this.sendChunk(topic, chunk, options.maxBatchBytes ?? Infinity, options.transaction ?? null);
    const sendOnce = async (chunk: ProduceMessage[]) => {
      try {
        return await send(chunk);
      } catch (err) {
        // A moved leader is found again before the caller's next attempt.
        await this.cluster.refreshMetadata().catch(() => undefined);
        throw (
          securityFailure(err, this.bootstrap, this.opts.security) ??
          new KafkaProduceError(topic, err as Error, isRetriable(err))
        );
      }
    };
    const size = this.opts.produceBatchSize ?? 1000;
    // kafkajs' producer compresses out of sight: its runs stay under the limit uncompressed.
    const runBytes = (options.maxBatchBytes ?? Infinity) * (this.codec && !producer ? COMPRESSED_RUN_FACTOR : 1);
    const results: ProduceResult[] = [];
    const todo = produceRuns(messages, size, runBytes).reverse();
    for (let chunk = todo.pop(); chunk; chunk = todo.pop()) {
      const sent =
        this.opts.resendFailedProduce === false
          ? await sendOnce(chunk)
          : await this.retrying(`produce to ${topic}`, () => send(chunk));
      if ('fits' in sent) {
        // Pieces of the size that fits, last first: what was too large for one batch is likely so again.
        for (let end = chunk.length; end > 0; end -= sent.fits)
          todo.push(chunk.slice(Math.max(0, end - sent.fits), end));
      } else {
        results.push(...sent);
      }
    }
    return results;
  }

  /**
   * One Produce request per partition leader for `chunk`, all in flight at once; or, sending nothing, how many
   * of its first messages to send instead when a partition's batch would be over `maxBatchBytes` on the wire.
   * In `transaction`, the partitions are added to it first, and each partition's sequence moves on once written.
   */
  private async sendChunk(
    topic: string,
    chunk: ProduceMessage[],
    maxBatchBytes: number,
    transaction: ProducerTransaction | null,
  ): Promise<ProduceResult[] | { fits: number }> {
    const partitions = this.cluster.findTopicPartitionMetadata(topic);
    if (partitions.length === 0) throw new RetriableCondition(`no partitions known for topic ${topic}`);
    const byPartition = new Map<number, ProduceMessage[]>();
    for (const m of chunk) {
      const p =
        m.partition ??
        (m.key !== null && m.key !== undefined
          ? (murmur2(m.key) & 0x7fffffff) % partitions.length
          : this.nextRoundRobin(topic, partitions));
      let list = byPartition.get(p);
      if (!list) {
        list = [];
        byPartition.set(p, list);
      }
      list.push(m);
    }
    const leaders = this.cluster.findLeaderForPartitions(topic, [...byPartition.keys()]);
    const led = Object.values(leaders).reduce((a, ps) => a + ps.length, 0);
    if (led < byPartition.size) throw new RetriableCondition(`no leader known for some partitions of ${topic}`);
    const now = Date.now();
    const batches = new Map<number, Buffer>();
    let largest = 0;
    const producer = (p: number) =>
      transaction && {
        ...transaction.producer,
        baseSequence: transaction.sequences.get(partitionKey(topic, p)) ?? 0,
      };
    await Promise.all(
      [...byPartition].map(async ([p, messages]) => {
        const batch = encodeRecordBatch(messages, now, producer(p) ?? undefined);
        const wire = this.codec ? await compressRecordBatch(batch, this.codec) : batch;
        batches.set(p, wire);
        largest = Math.max(largest, wire.length);
      }),
    );
    if (largest > maxBatchBytes && chunk.length > 1) {
      const fits = Math.floor((chunk.length * maxBatchBytes * SPLIT_MARGIN) / largest);
      return { fits: Math.min(chunk.length - 1, Math.max(1, fits)) };
    }
    if (transaction) await this.addToTransaction(transaction, topic, [...byPartition.keys()]);
    const results: ProduceResult[] = [];
    await Promise.all(
      Object.entries(leaders).map(async ([nodeId, ps]) => {
        const broker = shareConnects(await this.cluster.findBroker({ nodeId }));
        const request = produceRequest(
          await versionFor(broker, PRODUCE_API_KEY),
          topic,
          ps.map((p) => ({ partition: p, batch: batches.get(p)! })),
          this.opts.requestTimeoutMs ?? 30000,
          this.opts.acks ?? -1,
          transaction?.transactionalId ?? null,
        );
        const res = await sendRequest(broker, request);
        for (const t of res.topics) {
          for (const p of t.partitions) results.push({ partition: p.partition, baseOffset: Number(p.baseOffset) });
        }
        if (transaction) {
          for (const p of ps) {
            const key = partitionKey(topic, p);
            transaction.sequences.set(key, (transaction.sequences.get(key) ?? 0) + byPartition.get(p)!.length);
          }
        }
      }),
    );
    return results;
  }

  /**
   * The coordinator of transactional id `transactionalId` and the version of `apiKey` to send it (null: none),
   * asked once (FindCoordinator) and asked again after any failed call ({@link inTransaction}, the only caller,
   * forgets it): a batch's transaction then costs its two requests, not four.
   */
  private async transactionCoordinator(
    transactionalId: string,
    apiKey: number,
  ): Promise<{ coordinator: KjsBroker; version: number | null }> {
    let found = this.coordinators.get(transactionalId);
    if (!found) {
      found = this.cluster
        .findGroupCoordinator({ groupId: transactionalId, coordinatorType: TRANSACTION_COORDINATOR })
        .then(shareConnects);
      this.coordinators.set(transactionalId, found);
    }
    const coordinator = await found;
    return { coordinator, version: commonVersion(apiKey, await brokerVersions(coordinator)) };
  }

  /** Runs `call` with retries; a failed attempt forgets the transaction's coordinator, found again next time. */
  private inTransaction<T>(operation: string, transactionalId: string, call: () => Promise<T>): Promise<T> {
    return this.retrying(operation, async () => {
      try {
        return await call();
      } catch (err) {
        this.coordinators.delete(transactionalId);
        throw err;
      }
    });
  }

  /**
   * A producer id and epoch for `transactionalId` from its transaction coordinator (InitProducerId v3+). Given
   * the id and epoch held now, the coordinator bumps the epoch, which fences every holder of an older one and
   * aborts the open transaction; given none, it hands out an id (a real broker fences the id's earlier
   * holders then too, the librdkafka test broker does not). Coordinator moves and concurrent transactions are
   * retried.
   * @throws SluiceError `KAFKA_NO_TRANSACTIONS` when the coordinator speaks no InitProducerId v3 or later;
   * `KAFKA_ERROR` with the broker's error as its cause when it refuses (e.g. INVALID_PRODUCER_EPOCH: fenced).
   */
  async initProducerId(
    transactionalId: string,
    current: ProducerEpoch | null,
    transactionTimeoutMs: number,
  ): Promise<ProducerEpoch> {
    return this.inTransaction(`initialize transactional id ${transactionalId}`, transactionalId, async () => {
      const { coordinator, version } = await this.transactionCoordinator(transactionalId, INIT_PRODUCER_ID_API_KEY);
      if (version === null) {
        throw new SluiceError(
          'KAFKA_NO_TRANSACTIONS',
          `the Kafka brokers at ${this.bootstrap.join(',')} do not speak InitProducerId v3 (Kafka 2.5 and later do), which transactional producers need`,
        );
      }
      return sendRequest(
        coordinator,
        initProducerIdRequest(version, transactionalId, transactionTimeoutMs, current ?? NO_PRODUCER),
      );
    });
  }

  /** Adds the partitions of `topic` not in `transaction`'s open transaction yet to it (AddPartitionsToTxn). */
  private async addToTransaction(transaction: ProducerTransaction, topic: string, partitions: number[]): Promise<void> {
    const fresh = partitions.filter((p) => !transaction.partitions.has(partitionKey(topic, p))).sort((a, b) => a - b);
    if (fresh.length === 0) return;
    const { transactionalId, producer } = transaction;
    await this.inTransaction(
      `add partitions of ${topic} to transaction ${transactionalId}`,
      transactionalId,
      async () => {
        const { coordinator, version } = await this.transactionCoordinator(
          transactionalId,
          ADD_PARTITIONS_TO_TXN_API_KEY,
        );
        await sendRequest(
          coordinator,
          addPartitionsToTxnRequest(version ?? 1, transactionalId, producer, new Map([[topic, fresh]])),
        );
      },
    );
    for (const p of fresh) transaction.partitions.add(partitionKey(topic, p));
  }

  /** Commits (or aborts) `transaction`'s open transaction, if it wrote to any partition (EndTxn). */
  async endTransaction(transaction: ProducerTransaction, commit: boolean): Promise<void> {
    if (transaction.partitions.size === 0) return;
    const { transactionalId, producer } = transaction;
    await this.inTransaction(
      `${commit ? 'commit' : 'abort'} transaction ${transactionalId}`,
      transactionalId,
      async () => {
        const { coordinator, version } = await this.transactionCoordinator(transactionalId, END_TXN_API_KEY);
        await sendRequest(coordinator, endTxnRequest(version ?? 1, transactionalId, producer, commit));
      },
    );
    transaction.partitions.clear();
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
      if (!parts) {
        parts = [];
        byTopic.set(o.topic, parts);
      }
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
      return coordinator.offsetFetch({
        groupId,
        topics: [{ topic, partitions: parts.map((p) => ({ partition: p.partition })) }],
      });
    });
    const found = res.responses.find((r) => r.topic === topic)?.partitions ?? [];
    return found
      .map((p) => ({ partition: p.partition, offset: Number(p.offset) }))
      .sort((a, b) => a.partition - b.partition);
  }

  /** The coordinator of consumer group `groupId`, found with retries. */
  groupCoordinator(groupId: string): Promise<KjsBroker> {
    return this.retrying(`find the coordinator of group ${groupId}`, () =>
      this.cluster.findGroupCoordinator({ groupId }),
    );
  }

  /** Closes the producer and all broker connections. */
  async close(): Promise<void> {
    const producer =
      this.producer ?? (this.producerConnecting ? await this.producerConnecting.catch(() => null) : null);
    this.producer = null;
    this.producerConnecting = null;
    await producer?.disconnect().catch(() => undefined);
    await this.cluster.disconnect();
  }
}
