/**
 * The `kafka://HOST:PORT/TOPIC` sink: each output row becomes one Kafka record, written exactly once
 * across crashes and restarts by idempotent replay.
 *
 * ## Guarantee
 * Every record carries one header, `sluice`, whose value is `<queryId>:<batchId>:<seq>`: the query id from
 * the checkpoint, the batch id and the row's position in the batch's output (one header rather than three:
 * kafkajs encodes each header into a buffer of its own, and three per record doubled the cost of producing).
 * Before it sends batch N the sink writes a marker `<checkpoint>/sinks/kafka/<N>` holding the end offset of
 * every partition of every target topic; a sink with one topic writes it as the batch starts, while the batch
 * still reads (any end offset taken before the first send bounds the look-back), so the marker's request and
 * fsync are not on the path to the output becoming visible. When the engine hands it batch N again after a crash (or a failed
 * attempt), the marker exists: the sink reads every target partition from the marked offset to its current
 * end, collects the `seq` of every record whose header starts with `<queryId>:<N>:`, and sends only the
 * rows that are missing. Because the engine replays batch N with exactly the same rows (deterministic
 * replay), a consumer of the topic sees every output row exactly once, in read_uncommitted mode, without
 * relying on broker transactions. The same look-back runs within one attempt when a produce request fails: a request
 * that timed out may have been written, so it is never resent blindly (the librdkafka test broker does not
 * deduplicate kafkajs' idempotent producer, so broker-side sequence numbers cannot be relied on).
 *
 * The guarantee holds when:
 * - one query (one checkpoint) runs at a time, and its output and its late-data output do not share a
 *   topic (both number their batches the same way). Other producers may write to the same topics: their
 *   records are told apart by the headers, they only make the look-back read more;
 * - records of batch N are not deleted by retention or compaction between the crash and the restart that
 *   replays N (a deleted record is written again);
 * - consumers that need exactly-once do not need the rows of one batch to appear atomically: a crash
 *   mid-batch leaves part of the batch visible until the restart completes it.
 *
 * ## Fencing
 * The sink checks the checkpoint's claim (`verifyOwner`) before each produce request, but a process paused
 * between that check and its request (SIGSTOP, a long GC) sends it after waking, when its successor may have
 * replayed the batch already. With `fencing=epoch` (the default of a consumer-group member) the brokers close
 * that window, as Kafka Streams does: the checkpoint has a transactional id, `<transactionalIdPrefix><queryId>`,
 * and `initialize` bumps the producer epoch its last owner stored in `<checkpoint>/sinks/kafka/producer`
 * (InitProducerId v3 with that id and epoch: the librdkafka test broker hands out a new id, fencing nobody,
 * when asked with none) and stores the new one before anything is produced. Each batch is one transaction
 * (AddPartitionsToTxn, transactional record batches with the partition's next sequence number, EndTxn commit
 * before `addBatch` returns), and the brokers refuse anything of an older epoch: the old owner stops with
 * KAFKA_FENCED, having written nothing more. After a failed produce request the sequence numbers the broker
 * holds are unknown, so the epoch is bumped (which also aborts the open transaction) before the look-back.
 *
 * The look-back still reads read_uncommitted, so the guarantee above is unchanged. What transactions add:
 * fencing, and batches that read_committed consumers see whole when they commit, except a batch interrupted
 * by a crash or a failed request, whose first part stays in an aborted transaction (the look-back counts it
 * as written). What they cost: two round trips to the transaction coordinator per batch (see BENCHMARKS.md),
 * and brokers with a transaction state log.
 *
 * Deduplication is by row position, so on a replay only the missing rows are sent, possibly to other
 * partitions than in the first attempt when the topic gained partitions in between. Keyed rows always go
 * to murmur2(key) (Java-compatible), so a key's records stay in one partition and in order.
 *
 * ## Record layout (Spark's)
 * A row's `key` column (or the column named by `keyColumn`) is the record key, its `value` column the value
 * (or, without one, the whole row as JSON), a `partition` column picks the partition, a `topic` column the
 * topic, and a `headers` column (a list of `{key, value}`) the headers, in order, repeated keys included.
 * Records are sent in batches of at most the topic's `max.message.bytes` (read with DescribeConfigs where
 * the brokers answer it) as they go on the wire, compressed when the sink compresses, so a broker never
 * refuses a batch as too large; a single record over that limit stops the query naming its size.
 */
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { type Data, type Table, Type } from 'apache-arrow';
import { isValid, valuesOf } from '../arrow/columns.js';
import { readVersioned, writeVersioned } from '../checkpoint/versioned-file.js';
import { pathError, SluiceError } from '../errors.js';
import type { KafkaClient } from '../kafka/client.js';
import type { KafkaClientOptions } from '../kafka/client-options.js';
import type { ProduceMessage } from '../kafka/messages.js';
import { KAFKA_PRODUCER_OPTION_KEYS, kafkaClientOptions, unknownKafkaSetting } from '../kafka/prefixed-options.js';
import { brokerErrorType, isFenced, isUnknownProducer, ProducerTransaction } from '../kafka/producer-transaction.js';
import { COMPRESSION_TYPES, type CompressionType, codecByName } from '../kafka/protocol/compression.js';
import type { ProducerEpoch } from '../kafka/protocol/transactions/init-producer-id.js';
import { RECORD_BATCH_OVERHEAD, recordSizeBound, wireBatchSize } from '../kafka/record-size.js';
import { type KafkaRetryEvent, retryText } from '../kafka/retry.js';
import { crashPoint } from '../util/crash-points.js';
import { createDirectory } from '../util/create-directory.js';
import { notice } from '../util/notices.js';
import { removeFileIfPresent } from '../util/remove-file.js';
import { jsonLines } from './file-text-formats.js';
import type { SinkContext, StreamSink } from './sink.js';
import { checkKnownOptions, choiceOption, integerOption, type SinkOptionValues, stringOption } from './sink-options.js';

/** The header that identifies a record's origin, `<queryId>:<batchId>:<seq>`; the sink reads it back to deduplicate. */
export const SLUICE_HEADER = 'sluice';

/** Where a record written by the Kafka sink comes from (the value of its {@link SLUICE_HEADER}). */
export interface SluiceRecordOrigin {
  queryId: string;
  batchId: number;
  /** The row's position in the batch's output. */
  seq: number;
}

/**
 * Reads a {@link SLUICE_HEADER} value back, e.g. for a consumer that wants to trace records to the batch
 * that wrote them; null when it is not a value the sink writes.
 */
export function parseSluiceHeader(value: Buffer | string): SluiceRecordOrigin | null {
  const text = typeof value === 'string' ? value : value.toString('utf8');
  const m = /^(.*):(\d+):(\d+)$/.exec(text);
  return m ? { queryId: m[1], batchId: Number(m[2]), seq: Number(m[3]) } : null;
}

/** Options of {@link KafkaSink}; values may be strings, as sink URIs give them. */
export interface KafkaSinkOptions extends SinkOptionValues {
  /** `host:port[,host:port]` (required; `bootstrap` is accepted too). */
  'kafka.bootstrap.servers'?: string;
  bootstrap?: string;
  /** Target topic; without it every row needs a `topic` column. The topic must exist. */
  topic?: string;
  /**
   * How a row becomes the record value. `json` (default): the `value` column when there is one (strings
   * and binary as they are, other types as JSON), otherwise the whole row as a JSON object without the
   * `topic`, `headers` and `key` columns. `string`: the `value` column as text (required).
   */
  valueFormat?: 'json' | 'string' | string;
  /** Column whose value is the record key (default `key`; rows without one are spread over partitions). */
  keyColumn?: string;
  /**
   * Largest record batch in bytes when the brokers do not tell the topic's `max.message.bytes` (the smaller
   * of the two when both are given). Default 1 MB, Kafka's default.
   */
  'kafka.max.message.bytes'?: string | number;
  'kafka.max.request.size'?: string | number;
  /** How record batches are compressed: `none` (default), `gzip`, `snappy`, `lz4` or `zstd`. */
  compression?: CompressionType | string;
  /** The same under Spark's passthrough name for the producer's `compression.type`. */
  'kafka.compression.type'?: CompressionType | string;
  /**
   * How a process that lost the query to another is kept from writing. `claim` (default, except in a
   * consumer group): the checkpoint's claim is checked before each produce request. `epoch` (default in a
   * consumer group): each batch is also one Kafka transaction of the transactional id
   * `<transactionalIdPrefix><queryId>`, whose new owner fences the old one at the brokers (see the module doc).
   */
  fencing?: 'epoch' | 'claim' | string;
  /** The start of the transactional id with `fencing=epoch` (default `sluice-`), e.g. to match a prefix ACL. */
  transactionalIdPrefix?: string;
}

const KNOWN = [
  'kafka.bootstrap.servers',
  'bootstrap',
  'topic',
  'valueFormat',
  'keyColumn',
  'compression',
  'kafka.compression.type',
  'fencing',
  'transactionalIdPrefix',
  ...KAFKA_PRODUCER_OPTION_KEYS,
];

/** Kafka's default max.message.bytes and max.request.size. */
const DEFAULT_MAX_BATCH_BYTES = 1 << 20;

/** Markers of this many batches before the current one are kept (one would do; a few help debugging). */
const MARKERS_KEPT = 3;

/** `<checkpoint>/sinks/kafka/producer`: the transactional id's producer id and epoch, for the next owner to fence. */
const PRODUCER_FILE = 'producer';

/** Produce refusals of a sequence number the broker did not expect: the epoch is renewed and the topics read back. */
const SEQUENCE_ERRORS = new Set(['OUT_OF_ORDER_SEQUENCE_NUMBER', 'DUPLICATE_SEQUENCE_NUMBER']);

/** Kafka's default transaction.timeout.ms: a transaction open longer is aborted by its coordinator. */
const TRANSACTION_TIMEOUT_MS = 60_000;

/** Times a start that finds the stored epoch outdated reads the file again, waiting for its holder to store it. */
const OUTDATED_EPOCH_READS = 3;

/** The producer the last owner of the checkpoint's transactional id was given. */
type StoredProducer = ProducerEpoch & { transactionalId: string };

function validateProducer(body: unknown): string | null {
  const p = body as StoredProducer;
  return typeof p === 'object' &&
    p !== null &&
    typeof p.transactionalId === 'string' &&
    Number.isSafeInteger(p.producerId) &&
    Number.isInteger(p.epoch)
    ? null
    : 'expected {transactionalId, producerId, epoch}';
}

/** Target partitions and their end offsets when a batch started writing: `{topic: {partition: offset}}`. */
type Marker = { queryId: string; batchId: number; offsets: Record<string, Record<string, number>> };

function validateMarker(body: unknown): string | null {
  const m = body as Marker;
  if (
    typeof m !== 'object' ||
    m === null ||
    typeof m.queryId !== 'string' ||
    !Number.isInteger(m.batchId) ||
    typeof m.offsets !== 'object' ||
    m.offsets === null
  )
    return 'expected {queryId, batchId, offsets}';
  for (const parts of Object.values(m.offsets)) {
    if (typeof parts !== 'object' || parts === null || Object.values(parts).some((o) => !Number.isSafeInteger(o))) {
      return 'offsets must map topics to {partition: offset}';
    }
  }
  return null;
}

/** One output row, encoded: the message is handed to the client as it is (no copy per attempt). */
interface OutRecord {
  topic: string;
  seq: number;
  /** The row's `partition` column, or null when it has none. */
  partition: number | null;
  message: ProduceMessage;
}

/** Exactly-once output to Kafka topics (see the module documentation for the guarantee). */
export class KafkaSink implements StreamSink {
  readonly description: string;
  readonly bootstrap: string;
  readonly topic: string | undefined;
  readonly valueFormat: 'json' | 'string';
  readonly keyColumn: string;
  readonly compression: CompressionType;
  readonly fencing: 'epoch' | 'claim';
  readonly transactionalIdPrefix: string;
  /** The batch size limit given by options, used where the brokers do not tell a topic's own. */
  private readonly optionBatchBytes: { bytes: number; from: string };
  /** Each target topic's batch size limit and where it comes from, asked once per topic. */
  private readonly batchBytes = new Map<string, { bytes: number; from: string }>();
  private readonly clientOptions: KafkaClientOptions;
  private client: KafkaClient | null = null;
  private markerDir = '';
  private queryId = '';
  /** Throws once another process owns the query's checkpoint: checked before each produce request. */
  private verifyOwner: () => Promise<void> = async () => undefined;
  private stall: { event: KafkaRetryEvent; at: number } | null = null;
  /**
   * The marker {@link prepareBatch} wrote for a batch this sink has not sent anything of yet, so that batch
   * needs no look-back; used once.
   */
  private prepared: { batchId: number; marker: Marker } | null = null;
  /** Markers of batches below this one are removed (undefined until the first removal lists the directory). */
  private markersRemovedBelow: number | undefined;
  /** With `fencing=epoch`: the transactional producer every batch writes through. */
  private transaction: ProducerTransaction | null = null;

  /** Checks the options; throws SluiceError BAD_OPTION naming the option that is wrong. */
  constructor(options: KafkaSinkOptions) {
    for (const key of Object.keys(options)) {
      if (key.startsWith('kafka.') && !KNOWN.includes(key)) throw unknownKafkaSetting('kafka sink', key, KNOWN);
    }
    checkKnownOptions('kafka', options, KNOWN);
    const bootstrap =
      stringOption('kafka', options, 'kafka.bootstrap.servers') ?? stringOption('kafka', options, 'bootstrap');
    if (bootstrap === undefined) {
      throw new SluiceError(
        'BAD_OPTION',
        'the kafka sink needs kafka.bootstrap.servers',
        "write the sink as kafka://HOST:PORT/TOPIC or set .option('kafka.bootstrap.servers', 'host:9092')",
      );
    }
    this.bootstrap = bootstrap;
    this.topic = stringOption('kafka', options, 'topic');
    this.valueFormat = choiceOption('kafka', options, 'valueFormat', ['json', 'string'] as const, 'json');
    this.keyColumn = stringOption('kafka', options, 'keyColumn') ?? 'key';
    const limits = (['kafka.max.message.bytes', 'kafka.max.request.size'] as const)
      .filter((k) => options[k] !== undefined)
      .map((k) => ({ bytes: integerOption('kafka', options, k, 0, RECORD_BATCH_OVERHEAD + 1), from: `option ${k}` }));
    this.optionBatchBytes = limits.sort((a, b) => a.bytes - b.bytes)[0] ?? {
      bytes: DEFAULT_MAX_BATCH_BYTES,
      from: "Kafka's default max.message.bytes",
    };
    this.compression = compressionOption(options);
    this.fencing = choiceOption('kafka', options, 'fencing', ['epoch', 'claim'] as const, 'claim');
    this.transactionalIdPrefix = stringOption('kafka', options, 'transactionalIdPrefix') ?? 'sluice-';
    // A failed produce is not resent blindly (its records may be written): addBatch looks first.
    this.clientOptions = {
      ...kafkaClientOptions('kafka sink', options),
      resendFailedProduce: false,
      clientId: 'sluice-sink',
      compression: this.compression,
    };
    this.description = `KafkaSink[${this.bootstrap}/${this.topic ?? '<topic column>'}]`;
  }

  async initialize(ctx: SinkContext): Promise<void> {
    this.queryId = ctx.queryId;
    this.verifyOwner = ctx.verifyOwner ?? this.verifyOwner;
    this.markerDir = path.join(ctx.checkpointDir, 'kafka');
    try {
      await createDirectory(this.markerDir);
    } catch (err) {
      throw pathError(err, `the Kafka sink's directory in the checkpoint ${this.markerDir}`, 'create');
    }
    const { KafkaClient } = await import('../kafka/client.js');
    this.client = await KafkaClient.connect(this.bootstrap, {
      ...this.clientOptions,
      onRetry: (event) => {
        notice(`sink ${retryText(this.bootstrap, event)}`);
        this.stall = { event, at: Date.now() };
      },
    });
    if (this.fencing === 'epoch') this.transaction = await this.initTransactions(this.client);
  }

  private get producerFile(): string {
    return path.join(this.markerDir, PRODUCER_FILE);
  }

  /**
   * The transactional producer of this checkpoint: InitProducerId with the producer id and epoch its last owner
   * stored, which bumps the epoch and so fences that owner, or a new id when there is none (or the brokers
   * forgot it); stored before anything is produced.
   */
  private async initTransactions(client: KafkaClient): Promise<ProducerTransaction> {
    const transactionalId = this.transactionalIdPrefix + this.queryId;
    let producer: ProducerEpoch | null = null;
    for (let read = 0; producer === null; read++) {
      const stored = await this.storedProducer(transactionalId);
      try {
        producer = await this.askProducerId(client, transactionalId, stored);
      } catch (err) {
        if (!isFenced(err)) throw err;
        // A newer epoch than the stored one exists: a process took the checkpoint over (the claim says so), or
        // one bumped the epoch and has not stored it yet, or died before it could.
        await this.verifyOwner();
        if (read < OUTDATED_EPOCH_READS) {
          await new Promise((r) => setTimeout(r, 500));
          continue;
        }
        notice(`sink: the producer epoch of ${transactionalId} was never stored; starting with a new producer id`);
        producer = await this.askProducerId(client, transactionalId, null);
      }
    }
    await this.storeProducer(transactionalId, producer);
    return new ProducerTransaction(transactionalId, producer, TRANSACTION_TIMEOUT_MS);
  }

  /** Stores the producer id and epoch the brokers gave, before anything is produced with them. */
  private storeProducer(transactionalId: string, producer: ProducerEpoch): Promise<void> {
    return writeVersioned(this.producerFile, { transactionalId, ...producer } satisfies StoredProducer);
  }

  private async storedProducer(transactionalId: string): Promise<ProducerEpoch | null> {
    if (!fs.existsSync(this.producerFile)) return null;
    const stored = await readVersioned<StoredProducer>(this.producerFile, validateProducer);
    return stored.transactionalId === transactionalId ? stored : null;
  }

  /** InitProducerId for `current`, or for a new id when the brokers no longer know it; fencing errors pass. */
  private async askProducerId(
    client: KafkaClient,
    transactionalId: string,
    current: ProducerEpoch | null,
  ): Promise<ProducerEpoch> {
    try {
      return await client.initProducerId(transactionalId, current, TRANSACTION_TIMEOUT_MS);
    } catch (err) {
      if (current !== null && isUnknownProducer(err)) return this.askProducerId(client, transactionalId, null);
      if (isFenced(err)) throw err;
      throw this.noTransactions(err) ?? err;
    }
  }

  /** The error of brokers that cannot run transactions, naming the option and the broker setting; else null. */
  private noTransactions(err: unknown): SluiceError | null {
    const e = err as SluiceError;
    const coordinatorMissing = brokerErrorType(err) === 'GROUP_COORDINATOR_NOT_AVAILABLE';
    if (e.code !== 'KAFKA_NO_TRANSACTIONS' && !coordinatorMissing) return null;
    const why = coordinatorMissing ? 'no transaction coordinator is available' : e.message;
    return new SluiceError(
      'KAFKA_NO_TRANSACTIONS',
      `the kafka sink has fencing=epoch, which needs Kafka transactions, but at ${this.bootstrap} ${why}`,
      'give the brokers a transaction state log they can create (transaction.state.log.replication.factor and ' +
        'transaction.state.log.min.isr at most the number of brokers), or set the sink option fencing=claim',
      { cause: err },
    );
  }

  /**
   * A new epoch after a failed produce, whose sequence numbers the broker may or may not have taken: bumping it
   * also aborts the open transaction. Stored, so the next owner bumps past it.
   */
  private async renewProducer(client: KafkaClient, batchId: number): Promise<void> {
    const t = this.transaction!;
    let producer: ProducerEpoch;
    try {
      producer = await this.askProducerId(client, t.transactionalId, t.producer);
    } catch (err) {
      throw isFenced(err) ? this.fenced(batchId, err) : err;
    }
    await this.storeProducer(t.transactionalId, producer);
    t.renew(producer);
  }

  /** The error of a producer that a newer one with the same transactional id fenced. */
  private fenced(batchId: number, cause: unknown): SluiceError {
    return new SluiceError(
      'KAFKA_FENCED',
      `the Kafka sink stopped before batch ${batchId}: another process took over transactional id ${this.transaction?.transactionalId} (${brokerErrorType(cause)})`,
      'this run stops without committing and its successor writes the batch; make sure one process runs per checkpoint',
      { cause },
    );
  }

  stallMessage(): string | null {
    const s = this.stall;
    // A retry event older than its back-off plus a margin is over: the call went through or gave up.
    if (!s || Date.now() - s.at > s.event.delayMs + 5000) return null;
    return `Kafka ${s.event.operation} failed (attempt ${s.event.attempt}, retrying in ${s.event.delayMs} ms): ${s.event.error.message}`;
  }

  /**
   * Writes batch `batchId`'s marker while the batch still reads, off the path to visibility. Only a sink with
   * one topic knows its target partitions before the output exists. A marker already there belongs to an
   * earlier attempt, which {@link addBatch} looks back for.
   */
  async prepareBatch(batchId: number): Promise<void> {
    this.prepared = null;
    const client = this.client;
    if (this.topic === undefined || !client || fs.existsSync(this.markerFile(batchId))) return;
    this.prepared = { batchId, marker: await this.writeMarker(client, batchId, [this.topic]) };
    await this.removeOldMarkers(batchId);
  }

  async addBatch(batchId: number, data: Table): Promise<void> {
    const client = this.client;
    if (!client) throw new Error('KafkaSink.addBatch called before initialize');
    const prepared = this.prepared?.batchId === batchId ? this.prepared.marker : null;
    this.prepared = null;
    const records = this.encode(batchId, data);
    if (records.length === 0) return;
    const topics = [...new Set(records.map((r) => r.topic))].sort();
    await this.checkSizes(client, batchId, records, topics);
    const markerFile = this.markerFile(batchId);
    const replay = !prepared && fs.existsSync(markerFile);
    let marker: Marker;
    if (prepared) {
      marker = prepared;
    } else if (replay) {
      marker = await readVersioned<Marker>(markerFile, validateMarker);
      if (marker.queryId !== this.queryId || marker.batchId !== batchId) {
        throw new SluiceError(
          'CHECKPOINT_CORRUPT',
          `Kafka sink marker ${markerFile} belongs to query ${marker.queryId} batch ${marker.batchId}`,
          'the checkpoint directory was copied or edited; restore it or start over with a new checkpoint',
        );
      }
    } else {
      marker = await this.writeMarker(client, batchId, topics);
    }
    await this.write(client, batchId, records, topics, marker, replay);
    this.stall = null;
    if (!prepared) await this.removeOldMarkers(batchId);
  }

  private markerFile(batchId: number): string {
    return path.join(this.markerDir, String(batchId));
  }

  /** Writes batch `batchId`'s marker: the current end offset of every partition of `topics`. */
  private async writeMarker(client: KafkaClient, batchId: number, topics: string[]): Promise<Marker> {
    const offsets: Marker['offsets'] = {};
    for (const p of await client.fetchOffsets(topics)) {
      offsets[p.topic] ??= {};
      offsets[p.topic][p.partition] = p.high;
    }
    const marker = { queryId: this.queryId, batchId, offsets };
    await writeVersioned(this.markerFile(batchId), marker);
    return marker;
  }

  /**
   * Sends the records not yet in the topics. On a first attempt nothing can be there yet; on a replay, and
   * after a failed produce request (whose records may or may not have been written), the topics are read
   * back from the marked offsets before the rest is sent, with back-off between attempts.
   */
  private async write(
    client: KafkaClient,
    batchId: number,
    records: OutRecord[],
    topics: string[],
    marker: Marker,
    lookBack: boolean,
  ): Promise<void> {
    const retry = this.clientOptions.retry ?? {};
    for (let attempt = 1; ; attempt++) {
      try {
        let todo = records;
        let partitionCounts = new Map(
          Object.entries(marker.offsets).map(([t, parts]) => [t, Object.keys(parts).length]),
        );
        if (lookBack) {
          partitionCounts = new Map();
          const written = await this.writtenSeqs(client, marker, topics, batchId, partitionCounts);
          todo = records.filter((r) => !written.has(r.seq));
        }
        await this.send(client, batchId, todo, partitionCounts);
        if (this.transaction) await client.endTransaction(this.transaction, true);
        return;
      } catch (err) {
        if (this.transaction && isFenced(err)) throw this.fenced(batchId, err);
        const e = err as SluiceError & { retriable?: boolean };
        // In a transaction, a broker that lost the producer id or the sequence count needs a new epoch too.
        const again =
          (e.code === 'KAFKA_PRODUCE_FAILED' && e.retriable) ||
          (this.transaction !== null && (isUnknownProducer(err) || SEQUENCE_ERRORS.has(brokerErrorType(err) ?? '')));
        if (!again || attempt > (retry.retries ?? 20)) throw err;
        const delayMs = Math.min(retry.maxMs ?? 2000, (retry.initialMs ?? 100) * 2 ** (attempt - 1));
        this.stall = { event: { operation: `produce batch ${batchId}`, attempt, delayMs, error: e }, at: Date.now() };
        await new Promise((r) => setTimeout(r, delayMs));
        if (this.transaction) await this.renewProducer(client, batchId);
        lookBack = true;
      }
    }
  }

  /** The largest record batch `topic` takes: its max.message.bytes where the brokers tell it, else the options'. */
  private async batchLimit(client: KafkaClient, topic: string): Promise<{ bytes: number; from: string }> {
    let limit = this.batchBytes.get(topic);
    if (!limit) {
      // Brokers that refuse the request (no DescribeConfigs permission) leave the options' limit in force.
      const configured = Number(await client.topicConfig(topic, 'max.message.bytes').catch(() => null));
      limit =
        Number.isSafeInteger(configured) && configured > RECORD_BATCH_OVERHEAD
          ? { bytes: configured, from: `max.message.bytes of topic ${topic}` }
          : this.optionBatchBytes;
      this.batchBytes.set(topic, limit);
    }
    return limit;
  }

  /** Stops the batch before anything is sent when a record cannot fit in a batch of its own. */
  private async checkSizes(
    client: KafkaClient,
    batchId: number,
    records: OutRecord[],
    topics: string[],
  ): Promise<void> {
    for (const topic of topics) {
      const limit = await this.batchLimit(client, topic);
      for (const r of records) {
        if (r.topic !== topic) continue;
        if (RECORD_BATCH_OVERHEAD + recordSizeBound(r.message) <= limit.bytes) continue;
        // The limit is on the wire: a record over it uncompressed may fit once compressed.
        const size = await wireBatchSize([r.message], codecByName(this.compression));
        if (size <= limit.bytes) continue;
        const compressed = this.compression === 'none' ? '' : ` (${this.compression}-compressed)`;
        throw new SluiceError(
          'KAFKA_RECORD_TOO_LARGE',
          `row ${r.seq} of batch ${batchId} makes a Kafka record batch of ${size} bytes${compressed}, over the limit of ${limit.bytes} bytes (${limit.from})`,
          `make the row smaller, or raise max.message.bytes of topic ${topic} (and the sink's kafka.max.message.bytes where the brokers do not report it)`,
        );
      }
    }
  }

  /** Sends records topic by topic; a crash point halfway lets recovery tests stop mid-batch. */
  private async send(
    client: KafkaClient,
    batchId: number,
    records: OutRecord[],
    partitionCounts: Map<string, number>,
  ): Promise<void> {
    const byTopic = new Map<string, ProduceMessage[]>();
    const half = Math.floor(records.length / 2);
    for (const r of records) {
      let list = byTopic.get(r.topic);
      if (!list) {
        list = [];
        byTopic.set(r.topic, list);
      }
      const count = partitionCounts.get(r.topic) ?? 1;
      if (r.partition !== null) {
        if (r.partition >= count) {
          throw new SluiceError(
            'BAD_DATA',
            `row ${r.seq} of batch ${batchId} has partition ${r.partition}, but topic ${r.topic} has ${count} partition${count === 1 ? '' : 's'}`,
            'give the partition column values from 0 to the number of partitions minus one, or leave it null',
          );
        }
        r.message.partition = r.partition;
      } else if (r.message.key === null) {
        // Keyless rows go round-robin by position (deterministic); keyed rows by kafkajs' murmur2 partitioner.
        // The partition count can differ between attempts (partitions added), so it is set on each send.
        r.message.partition = r.seq % count;
      }
      list.push(r.message);
    }
    let sent = 0;
    const transaction = this.transaction ?? undefined;
    for (const [topic, messages] of byTopic) {
      const maxBatchBytes = (await this.batchLimit(client, topic)).bytes;
      if (sent <= half && sent + messages.length > half && messages.length > 1) {
        const cut = half - sent;
        await this.verifyOwner();
        await client.produce(topic, messages.slice(0, cut), { maxBatchBytes, transaction });
        crashPoint('in-sink', batchId);
        await this.verifyOwner();
        await client.produce(topic, messages.slice(cut), { maxBatchBytes, transaction });
      } else {
        await this.verifyOwner();
        await client.produce(topic, messages, { maxBatchBytes, transaction });
      }
      sent += messages.length;
    }
  }

  /**
   * The seqs of batch `batchId` of this query already in the target topics: each partition read from the
   * marked offset (from its start for partitions added since) to its current end.
   */
  private async writtenSeqs(
    client: KafkaClient,
    marker: Marker,
    topics: string[],
    batchId: number,
    partitionCounts: Map<string, number>,
  ): Promise<Set<number>> {
    const written = new Set<number>();
    // Compared as bytes: most records of a look-back are this batch's own, and decoding each to a string
    // would cost more than the comparison.
    const prefix = Buffer.from(`${this.queryId}:${batchId}:`);
    const allTopics = [...new Set([...topics, ...Object.keys(marker.offsets)])].sort();
    for (const p of await client.fetchOffsets(allTopics)) {
      if (topics.includes(p.topic)) partitionCounts.set(p.topic, (partitionCounts.get(p.topic) ?? 0) + 1);
      const from = Math.max(p.low, marker.offsets[p.topic]?.[p.partition] ?? p.low);
      if (from >= p.high) continue;
      const messages = await client.fetchRange(p.topic, p.partition, from, p.high, { onDataLoss: () => undefined });
      for (const m of messages) {
        const h = m.headers?.[SLUICE_HEADER];
        if (h === undefined) continue;
        // Another producer may have added a header of the same name; any of the values may be ours.
        for (const v of Array.isArray(h) ? h : [h]) {
          const seq = seqAfter(v, prefix);
          if (seq >= 0) written.add(seq);
        }
      }
    }
    return written;
  }

  private async removeOldMarkers(batchId: number): Promise<void> {
    const below = batchId - MARKERS_KEPT;
    // The first time, and after a jump in batch ids, the directory is listed; in between, the markers that fell
    // out of the kept window are removed by name, without listing the directory for every batch.
    if (this.markersRemovedBelow === undefined || below - this.markersRemovedBelow > MARKERS_KEPT) {
      for (const name of await fsp.readdir(this.markerDir))
        if (/^\d+$/.test(name) && Number(name) < below) removeFileIfPresent(path.join(this.markerDir, name));
    } else {
      for (let id = this.markersRemovedBelow; id < below; id++) removeFileIfPresent(this.markerFile(id));
    }
    this.markersRemovedBelow = Math.max(below, this.markersRemovedBelow ?? below);
  }

  /** The batch's rows as records, in row order, `seq` = row index. */
  private encode(batchId: number, data: Table): OutRecord[] {
    const n = data.numRows;
    if (n === 0) return [];
    const names = data.schema.fields.map((f) => f.name);
    const topicCol = this.topic === undefined ? 'topic' : null;
    if (topicCol && !names.includes(topicCol)) {
      throw new SluiceError(
        'BAD_OPTION',
        'the kafka sink has no topic: set the topic option or give the rows a topic column',
        'write the sink as kafka://HOST:PORT/TOPIC',
      );
    }
    const topics = topicCol ? columnText(data, topicCol) : null;
    const keys = names.includes(this.keyColumn) ? columnBytes(data, this.keyColumn) : null;
    const headerCol = names.includes('headers') ? columnValues(data, 'headers') : null;
    const partitions = names.includes('partition') ? partitionColumn(data) : null;
    let values: (Buffer | null)[];
    if (names.includes('value')) {
      if (this.valueFormat === 'string' && !isTextColumn(data, 'value')) {
        values = columnText(data, 'value').map((s) => (s === null ? null : Buffer.from(s)));
      } else {
        values = columnBytes(data, 'value');
      }
    } else if (this.valueFormat === 'string') {
      throw new SluiceError(
        'BAD_OPTION',
        'valueFormat=string needs a value column in the output',
        "select or alias one column as 'value', or use valueFormat=json to write whole rows as JSON",
      );
    } else {
      const drop = new Set([
        'headers',
        'partition',
        ...(topicCol ? [topicCol] : []),
        ...(this.keyColumn === 'key' ? ['key'] : []),
      ]);
      values = rowJson(data.select(names.filter((c) => !drop.has(c))));
    }
    const origin = `${this.queryId}:${batchId}:`;
    const out = new Array<OutRecord>(n);
    for (let i = 0; i < n; i++) {
      const topic = topics ? topics[i] : this.topic!;
      if (topic === null || topic === '') {
        throw new SluiceError(
          'BAD_DATA',
          `row ${i} of batch ${batchId} has no topic (its topic column is null or empty)`,
          'give every row a topic, or set the topic option',
        );
      }
      let headers: ProduceMessage['headers'];
      if (headerCol) {
        const pairs = userHeaders(headerCol[i]);
        pairs.push([SLUICE_HEADER, origin + i]);
        headers = pairs;
      } else {
        headers = { [SLUICE_HEADER]: origin + i };
      }
      out[i] = {
        topic,
        seq: i,
        partition: partitions ? partitions[i] : null,
        message: { key: keys ? keys[i] : null, value: values[i], headers },
      };
    }
    return out;
  }

  async close(): Promise<void> {
    const c = this.client;
    this.client = null;
    await c?.close();
  }
}

/** `compression`, or Spark's `kafka.compression.type`; both given must agree. */
function compressionOption(options: KafkaSinkOptions): CompressionType {
  const own = choiceOption('kafka', options, 'compression', COMPRESSION_TYPES, 'none');
  const spark = choiceOption('kafka', options, 'kafka.compression.type', COMPRESSION_TYPES, own);
  if (options.compression !== undefined && spark !== own) {
    throw new SluiceError(
      'BAD_OPTION',
      `the kafka sink got compression=${own} and kafka.compression.type=${spark}`,
      'give one of the two',
    );
  }
  return spark;
}

/** The seq in a {@link SLUICE_HEADER} value that starts with `prefix` (`<queryId>:<batchId>:`), else -1. */
function seqAfter(value: Buffer, prefix: Buffer): number {
  const n = value.length;
  if (n <= prefix.length || value.compare(prefix, 0, prefix.length, 0, prefix.length) !== 0) return -1;
  let seq = 0;
  for (let i = prefix.length; i < n; i++) {
    const d = value[i] - 48;
    if (d < 0 || d > 9) return -1;
    seq = seq * 10 + d;
  }
  return seq;
}

function isTextColumn(table: Table, name: string): boolean {
  const t = table.schema.fields.find((f) => f.name === name)!.type;
  return t.typeId === Type.Utf8 || t.typeId === Type.Binary;
}

/** Each chunk's data of one column. */
function chunks(table: Table, name: string): Data[] {
  const k = table.schema.fields.findIndex((f) => f.name === name);
  return table.batches.map((b) => b.data.children[k]);
}

/**
 * A column as record bytes: utf8 and binary as views of the Arrow buffer (no copy), other types as JSON
 * text (numbers, booleans, lists, structs) or ISO strings (timestamps, via JSON of a Date).
 */
function columnBytes(table: Table, name: string): (Buffer | null)[] {
  const out: (Buffer | null)[] = [];
  for (const data of chunks(table, name)) {
    const t = data.type.typeId;
    if (t === Type.Utf8 || t === Type.Binary) {
      const vo = data.valueOffsets as Int32Array;
      const bytes = data.values as Uint8Array;
      for (let i = 0; i < data.length; i++) {
        out.push(isValid(data, i) ? Buffer.from(bytes.buffer, bytes.byteOffset + vo[i], vo[i + 1] - vo[i]) : null);
      }
    } else {
      for (const v of valuesOf(data))
        out.push(v === null ? null : Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)));
    }
  }
  return out;
}

/** A column as strings (topics; `valueFormat=string` of non-text columns). */
function columnText(table: Table, name: string): (string | null)[] {
  const out: (string | null)[] = [];
  for (const data of chunks(table, name)) {
    for (const v of valuesOf(data)) {
      out.push(
        v === null
          ? null
          : typeof v === 'string'
            ? v
            : v instanceof Date
              ? v.toISOString()
              : typeof v === 'object'
                ? JSON.stringify(v)
                : String(v),
      );
    }
  }
  return out;
}

function columnValues(table: Table, name: string): unknown[] {
  return chunks(table, name).flatMap((d) => valuesOf(d));
}

/** Each row as a JSON object (views into the JSON-lines encoder's output, split at the newlines). */
function rowJson(table: Table): Buffer[] {
  const out: Buffer[] = [];
  for (const chunk of jsonLines(table)) {
    const buf = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    let start = 0;
    for (let i = buf.indexOf(0x0a); i >= 0; i = buf.indexOf(0x0a, start)) {
      out.push(buf.subarray(start, i));
      start = i + 1;
    }
  }
  return out;
}

/** A `partition` column as numbers (null where a row has none); anything but whole numbers is refused. */
function partitionColumn(table: Table): (number | null)[] {
  const out: (number | null)[] = [];
  for (const data of chunks(table, 'partition')) {
    for (const v of valuesOf(data)) {
      const p = typeof v === 'bigint' ? Number(v) : v;
      if (p === null || p === undefined) {
        out.push(null);
      } else if (typeof p === 'number' && Number.isSafeInteger(p) && p >= 0) {
        out.push(p);
      } else {
        throw new SluiceError(
          'BAD_DATA',
          `the partition column holds ${JSON.stringify(String(v))}, which is not a partition number`,
          'give the partition column integers from 0, or null to let the key (or position) pick the partition',
        );
      }
    }
  }
  return out;
}

/**
 * Headers from a `headers` column, in order with repeated names kept: Spark's list of `{key, value}` structs
 * (or `[key, value]` pairs), or a map / object of name → value. Values may be strings, bytes or null.
 */
function userHeaders(v: unknown): Array<[string, Buffer | string | null]> {
  const out: Array<[string, Buffer | string | null]> = [];
  if (v === null || v === undefined) return out;
  const put = (k: unknown, x: unknown): void => {
    if (k === null || k === undefined) return;
    out.push([
      String(k),
      x === null || x === undefined
        ? null
        : x instanceof Uint8Array
          ? Buffer.from(x.buffer, x.byteOffset, x.byteLength)
          : String(x),
    ]);
  };
  if (Array.isArray(v)) {
    for (const e of v) {
      if (Array.isArray(e)) put(e[0], e[1]);
      else if (e && typeof e === 'object') put((e as { key?: unknown }).key, (e as { value?: unknown }).value);
    }
  } else if (v instanceof Map) {
    for (const [k, x] of v) put(k, x);
  } else if (typeof v === 'object') {
    for (const [k, x] of Object.entries(v)) put(k, x);
  }
  return out;
}
