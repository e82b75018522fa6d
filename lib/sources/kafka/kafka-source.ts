/**
 * The Kafka source (`kafka://HOST:PORT/TOPIC[,TOPIC]`, Spark's `format('kafka')`). Each trigger asks the
 * brokers for the end of every partition and plans the batch as a range per partition; read tasks fetch
 * exactly those ranges, in the worker pool when the query has one. The checkpoint's offset log is the only
 * record of progress (a consumer group never is): an offset is `{topic: {partition: nextOffset}}`, and a
 * replayed batch reads the same ranges again.
 *
 * The offsets a query starts from are fixed on its first start (`startingOffsets`, `startingTimestamp`,
 * `startingOffsetsByTimestamp`) and kept in the checkpoint (`sources/<i>/initial-offsets`), so a crash in the
 * first batch replays it exactly; so are the offsets a bounded run ends at (`endingOffsets`,
 * `sources/<i>/ending-offsets`). Partitions that appear later (new topics matching the pattern, partitions
 * added to a topic) join the offsets at their earliest offset in the batch that finds them and are read from
 * the next batch on, unless the run is bounded.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { Binary, Field, Int32, Int64, List, Schema, Struct, TimestampMillisecond, Utf8 } from 'apache-arrow';
import { type SchemaSpec, schemaFromSpec, schemaToSpec } from '../../arrow/schema.js';
import { readVersioned, writeVersioned } from '../../checkpoint/versioned-file.js';
import { SluiceError } from '../../errors.js';
import type { KafkaClient } from '../../kafka/client.js';
import type { KafkaClientOptions } from '../../kafka/client-options.js';
import { type KafkaRetryEvent, retryText } from '../../kafka/retry.js';
import type { PartitionOffsets } from '../../kafka/topic-partition.js';
import { sleep } from '../../util/clock.js';
import { notice } from '../../util/notices.js';
import { DEFAULT_CORRUPT_COLUMN, type ParseMode } from '../decode/common.js';
import type { ReadLimit, ReadTask, SourceContext, SourceOffset, StreamSource } from '../source.js';
import { type ConsumerStrategy, consumerStrategy, describeStrategy, strategyPartitions } from './consumer-strategy.js';
import {
  isOffsets,
  type KafkaOffsets,
  parseEndingOffsets,
  resolveEndingOffsets,
  resolveStartingOffsets,
  type StartingOffsetsSpec,
  setOffset,
  sortedOffsets,
  startingOffsetsSpec,
  type TimestampStrategy,
} from './kafka-offset-range-limit.js';
import { type KafkaReadSpec, type KafkaValueFormat, READ_AHEAD_TASKS } from './kafka-read-task.js';

export type { KafkaOffsets };

/** Options of {@link KafkaSource} (Spark's names). */
export interface KafkaSourceOptions {
  /** `host:port[,host:port]`. */
  bootstrap: string;
  /** Topics to read (Spark's `subscribe`); or use {@link subscribePattern} or {@link assign}. */
  topics?: string[];
  /** A regular expression: every topic whose whole name matches is read, including topics created later. */
  subscribePattern?: string;
  /** Fixed partitions to read, JSON like `{"topic":[0,1]}`; partitions added later are not read. */
  assign?: string;
  /**
   * Where a new query starts: `earliest`, `latest` (default, as in Spark), or JSON naming every partition,
   * `{"topic":{"0":23,"1":-2}}` with -2 for earliest and -1 for latest. Ignored once the checkpoint has offsets.
   */
  startingOffsets?: string;
  /**
   * Start every partition at its first record whose timestamp is at or after this time (epoch ms). Takes
   * precedence over {@link startingOffsetsByTimestamp} and {@link startingOffsets}.
   */
  startingTimestamp?: number;
  /** The same per partition, JSON like `{"topic":{"0":1700000000000}}`; takes precedence over startingOffsets. */
  startingOffsetsByTimestamp?: string;
  /** A partition with no record that late: `error` (default) stops the query, `latest` starts it at its end. */
  startingOffsetsByTimestampStrategy?: TimestampStrategy;
  /**
   * Make the run bounded: `latest` (the partition ends when the query first starts) or JSON naming every
   * partition, `{"topic":{"0":50,"1":-1}}` with -1 for latest. Once read to them the source has reached
   * its end, so the last batch closes every window, session and event-time timeout.
   */
  endingOffsets?: string;
  /** At most this many records per batch, shared by partitions in proportion to how far behind each is. */
  maxOffsetsPerTrigger?: number;
  /**
   * Wait for at least this many new records before running a batch, but no longer than
   * {@link maxTriggerDelayMs} since the last batch.
   */
  minOffsetsPerTrigger?: number;
  /** How long {@link minOffsetsPerTrigger} may hold back a batch, in ms. Default 15 minutes. */
  maxTriggerDelayMs?: number;
  /** Read a batch with at least this many tasks, splitting large partition ranges (default: one task per partition). */
  minPartitions?: number;
  /**
   * Offsets that are gone from the broker (retention, a recreated topic) stop the query with a clear error
   * (true, default); when false they are skipped and counted in progress as `dataLossOffsets`.
   */
  failOnDataLoss?: boolean;
  /** `string` (default; also `text`): the value as a utf8 column; `bytes`: binary; `json`: parsed with {@link schema}. */
  valueFormat?: KafkaValueFormat;
  /** The key as `string` (default) or `bytes`. */
  keyFormat?: 'string' | 'bytes';
  /** Schema of JSON values (required with valueFormat json). */
  schema?: SchemaSpec | Schema;
  /** Malformed JSON values: PERMISSIVE (default; a row of nulls, the text in the corrupt-record column if the schema has it), DROPMALFORMED, FAILFAST. */
  mode?: ParseMode;
  columnNameOfCorruptRecord?: string;
  /** Set malformed JSON values aside in this directory, with the reason, instead of keeping or dropping them. */
  badRecordsPath?: string;
  /** Add a `headers` column: list of `{key, value}` (Spark's includeHeaders). Default false. */
  includeHeaders?: boolean;
  /**
   * After each batch, commit its end offsets to this consumer group (Kafka's `group.id`) so lag tools see
   * progress. Never read back: the checkpoint records where the query is.
   */
  groupId?: string;
  /** Without {@link groupId}, commit to the group `<groupIdPrefix>-<query id>` instead. */
  groupIdPrefix?: string;
  /** Retry budget and timeouts of the client. */
  client?: KafkaClientOptions;
}

/** The Kafka columns, in Spark's order. */
const KAFKA_COLUMNS = ['key', 'value', 'topic', 'partition', 'offset', 'timestamp', 'headers'] as const;

const INITIAL_OFFSETS_FILE = 'initial-offsets';
const ENDING_OFFSETS_FILE = 'ending-offsets';
const DEFAULT_MAX_TRIGGER_DELAY_MS = 15 * 60_000;
/**
 * How long one wake-up Fetch waits for new records when `kafka.fetch.max.wait.ms` is not set. A broker answers
 * at once when records arrive, so on Kafka this only sets how often an idle query asks; the test broker holds
 * an empty answer for the whole wait, so there it is how late new records are seen, as when polling.
 */
const WAKE_FETCH_MAX_WAIT_MS = 10;

/** A range of one partition to read: [from, until). */
interface Range {
  topic: string;
  partition: number;
  from: number;
  until: number;
}

function validateOffsets(body: unknown): string | null {
  return isOffsets(body) ? null : 'expected {topic: {partition: offset}}';
}

function lossError(topic: string, partition: number, from: number, until: number, why: string): SluiceError {
  return new SluiceError(
    'KAFKA_DATA_LOSS',
    `offsets ${from}..${until - 1} of ${topic}-${partition} ${why}`,
    'set failOnDataLoss=false to skip lost offsets (they are counted in progress), or restart the query from a new checkpoint',
  );
}

/** A streaming source over Kafka topics. */
export class KafkaSource implements StreamSource {
  readonly description: string;
  private outputSchema: Schema;
  private valueFields: string[];
  private readonly strategy: ConsumerStrategy;
  private readonly starting: StartingOffsetsSpec;
  private readonly ending: 'latest' | KafkaOffsets | null;
  private readonly failOnDataLoss: boolean;
  private client: KafkaClient | null = null;
  private initial: KafkaOffsets = {};
  /** Where a bounded run ends (endingOffsets), fixed on the query's first start. */
  private endOffsets: KafkaOffsets | null = null;
  private groupId: string | undefined;
  private badRecordsTask = '';
  /** When the last batch was let through, for minOffsetsPerTrigger (0: the first trigger never waits). */
  private lastTriggerMs = 0;
  /** The partition ends seen by the last latestOffset call, for offsets-behind metrics. */
  private latestSeen: PartitionOffsets[] = [];
  private lastEnd: KafkaOffsets | null = null;
  private lostAtPlan = 0;
  private groupCommitFailures = 0;
  /** Broker calls the driver retried, and the back-off they waited, since the last progress report. */
  private retries = 0;
  private retryWaitMs = 0;
  private stall: { event: KafkaRetryEvent; at: number } | null = null;
  private availableNowCap: KafkaOffsets | null = null;
  private releaseClients: (() => Promise<void>) | null = null;
  /** The connection of the wake-up Fetch (see {@link waitForData}), opened on the first wait. */
  private wakeClient: Promise<KafkaClient> | null = null;
  /** The wake-up Fetch in flight: a wait that ended early leaves it running, and the next wait takes it over. */
  private waking: Promise<boolean> | null = null;

  constructor(readonly options: KafkaSourceOptions) {
    if (!options.bootstrap) {
      throw new SluiceError(
        'BAD_OPTION',
        'the kafka source needs bootstrap servers',
        'write kafka://HOST:PORT/TOPIC or set option kafka.bootstrap.servers',
      );
    }
    this.strategy = consumerStrategy(options);
    for (const key of ['maxOffsetsPerTrigger', 'minOffsetsPerTrigger', 'minPartitions'] as const) {
      const v = options[key];
      if (v !== undefined && !(Number.isSafeInteger(v) && v > 0)) {
        throw new SluiceError(
          'BAD_OPTION',
          `option ${key} of the kafka source must be a positive integer, found ${String(v)}`,
        );
      }
    }
    const { minOffsetsPerTrigger: min, maxOffsetsPerTrigger: max } = options;
    if (min !== undefined && max !== undefined && min > max) {
      throw new SluiceError(
        'BAD_OPTION',
        `minOffsetsPerTrigger (${min}) of the kafka source is larger than maxOffsetsPerTrigger (${max})`,
        'a batch could never hold enough records: lower minOffsetsPerTrigger or raise maxOffsetsPerTrigger',
      );
    }
    this.failOnDataLoss = options.failOnDataLoss ?? true;
    this.starting = startingOffsetsSpec(options);
    this.ending = options.endingOffsets === undefined ? null : parseEndingOffsets(options.endingOffsets);
    const built = buildSchema(options);
    this.outputSchema = built.schema;
    this.valueFields = built.valueFields;
    this.description = `KafkaSource[${options.bootstrap}/${describeStrategy(this.strategy)}]`;
  }

  async initialize(ctx: SourceContext): Promise<void> {
    const [{ KafkaClient }, { holdReadClients, releaseReadClients }] = await Promise.all([
      import('../../kafka/client.js'),
      import('./kafka-read-task.js'),
    ]);
    holdReadClients();
    this.releaseClients = releaseReadClients;
    this.client = await KafkaClient.connect(this.options.bootstrap, {
      ...this.options.client,
      clientId: this.options.client?.clientId ?? 'sluice-source',
      onRetry: (event) => {
        notice(`source ${retryText(this.options.bootstrap, event)}`);
        this.stall = { event, at: Date.now() };
        this.retries++;
        this.retryWaitMs += event.delayMs;
      },
    });
    this.groupId =
      this.options.groupId ??
      (this.options.groupIdPrefix === undefined ? undefined : `${this.options.groupIdPrefix}-${ctx.queryId}`);
    this.badRecordsTask = `source${ctx.index}-kafka`;
    const file = path.join(ctx.dir, INITIAL_OFFSETS_FILE);
    const endFile = path.join(ctx.dir, ENDING_OFFSETS_FILE);
    if (fs.existsSync(file)) {
      this.initial = await readVersioned<KafkaOffsets>(file, validateOffsets);
      if (this.ending !== null) this.endOffsets = await this.storedEndingOffsets(endFile);
    } else {
      // A misspelt topic would otherwise be read as empty forever; a pattern may match topics created later.
      if (this.strategy.kind === 'subscribe') await this.requireClient().fetchOffsets(this.strategy.topics);
      const ends = await this.partitionEnds();
      this.initial = await resolveStartingOffsets(
        this.requireClient(),
        ends,
        this.starting,
        this.options.startingOffsetsByTimestampStrategy ?? 'error',
      );
      // Written before the initial offsets: a crash in between leaves a query that starts afresh.
      if (this.ending !== null) {
        this.endOffsets = resolveEndingOffsets(ends, this.ending);
        await writeVersioned(endFile, this.endOffsets);
      }
      await writeVersioned(file, this.initial);
    }
  }

  /** The ending offsets the query's first start fixed; a query started without endingOffsets cannot get them. */
  private async storedEndingOffsets(file: string): Promise<KafkaOffsets> {
    if (!fs.existsSync(file)) {
      throw new SluiceError(
        'BAD_OPTION',
        'endingOffsets was added to a query that started without it',
        'a bounded run fixes its end on its first start: use a new checkpoint, or drop endingOffsets',
      );
    }
    return readVersioned<KafkaOffsets>(file, validateOffsets);
  }

  schema(): Schema {
    return this.outputSchema;
  }

  /** Read tasks then decode only these value fields and build only these Kafka columns. */
  pruneColumns(columns: readonly string[]): void {
    this.outputSchema = this.outputSchema.select([...columns]);
    this.valueFields = this.valueFields.filter((f) => columns.includes(f));
  }

  /** Every partition the query reads with its earliest and next offset. */
  private async partitionEnds(): Promise<PartitionOffsets[]> {
    const ends = await strategyPartitions(this.requireClient(), this.strategy);
    this.stall = null;
    return ends;
  }

  private requireClient(): KafkaClient {
    if (!this.client) throw new Error('KafkaSource used before initialize()');
    return this.client;
  }

  async latestOffset(start: SourceOffset | null, limit: ReadLimit): Promise<SourceOffset | null> {
    const from = start === null ? this.initial : this.checkOffsets(start);
    const ends = await this.partitionEnds();
    this.latestSeen = ends;
    const end: KafkaOffsets = {};
    const ranges: Range[] = [];
    for (const p of ends) {
      const known = from[p.topic]?.[p.partition];
      const cap = this.capOf(p.topic, p.partition);
      if (cap === undefined || (known !== undefined && known >= cap)) {
        // Found after an AvailableNow run started, or outside a bounded run, or read to its end.
        if (known !== undefined) setOffset(end, p.topic, p.partition, known);
        continue;
      }
      // A partition found now joins at its earliest offset and is read from the next batch on.
      if (known === undefined) {
        setOffset(end, p.topic, p.partition, p.low);
        continue;
      }
      const high = Math.min(p.high, cap);
      if (high < known) {
        if (this.failOnDataLoss)
          throw lossError(
            p.topic,
            p.partition,
            high,
            known,
            'are beyond the end of the partition (was the topic deleted and created again?)',
          );
        setOffset(end, p.topic, p.partition, high);
        continue;
      }
      if (known < p.low && this.failOnDataLoss) {
        throw lossError(
          p.topic,
          p.partition,
          known,
          p.low,
          'were deleted from the broker (retention or size limit) before they were read',
        );
      }
      ranges.push({ topic: p.topic, partition: p.partition, from: known, until: high });
    }
    if (this.delayBatch(ranges)) return start;
    const max = limit.maxRows ?? this.options.maxOffsetsPerTrigger;
    for (const r of rateLimit(ranges, max)) setOffset(end, r.topic, r.partition, r.until);
    // Partitions that vanished (topic deleted) keep their offset: a recreated topic shows up as data loss.
    for (const [topic, parts] of Object.entries(from)) {
      for (const [partition, offset] of Object.entries(parts)) {
        if (end[topic]?.[partition] === undefined && !ends.some((e) => e.topic === topic))
          setOffset(end, topic, partition, offset);
      }
    }
    const result = sortedOffsets(end);
    if (start === null && isDeepStrictEqual(result, sortedOffsets(this.initial))) return null;
    return result;
  }

  /** The offset past which a partition is not read in this run: AvailableNow's and endingOffsets' caps. */
  private capOf(topic: string, partition: number): number | undefined {
    let cap = Infinity;
    for (const c of [this.availableNowCap, this.endOffsets]) {
      if (!c) continue;
      const o = c[topic]?.[partition];
      if (o === undefined) return undefined;
      cap = Math.min(cap, o);
    }
    return cap;
  }

  /**
   * Whether minOffsetsPerTrigger holds this batch back: fewer new records than that, and less than
   * maxTriggerDelay since the last batch was let through (Spark's rule). A run that must end (AvailableNow,
   * endingOffsets) is never held back.
   */
  private delayBatch(ranges: Range[]): boolean {
    const min = this.options.minOffsetsPerTrigger;
    if (min === undefined || this.availableNowCap || this.endOffsets) return false;
    const now = Date.now();
    const waited = now - this.lastTriggerMs >= (this.options.maxTriggerDelayMs ?? DEFAULT_MAX_TRIGGER_DELAY_MS);
    if (!waited && ranges.reduce((a, r) => a + (r.until - r.from), 0) < min) return true;
    this.lastTriggerMs = now;
    return false;
  }

  /** Whether a bounded run (endingOffsets) has read every partition to its end at `offset`. */
  reachedEnd(offset: SourceOffset): boolean {
    const endAt = this.endOffsets;
    if (!endAt || !isOffsets(offset)) return false;
    return Object.entries(endAt).every(([topic, parts]) =>
      Object.entries(parts).every(([p, o]) => (offset[topic]?.[p] ?? -1) >= o),
    );
  }

  async planRead(start: SourceOffset | null, end: SourceOffset, batchId: number): Promise<ReadTask[]> {
    const from = start === null ? this.initial : this.checkOffsets(start);
    const to = this.checkOffsets(end);
    this.lastEnd = to;
    const ranges: Range[] = [];
    for (const topic of Object.keys(to)) {
      for (const [partition, until] of Object.entries(to[topic])) {
        const begin = from[topic]?.[partition];
        if (begin === undefined || begin === until) continue;
        if (until < begin) {
          // The partition went back (failOnDataLoss=false let latestOffset plan it): skip the gap, count it.
          if (this.failOnDataLoss)
            throw lossError(
              topic,
              Number(partition),
              until,
              begin,
              'are beyond the end of the partition (was the topic deleted and created again?)',
            );
          this.lostAtPlan += begin - until;
          continue;
        }
        ranges.push({ topic, partition: Number(partition), from: begin, until });
      }
    }
    const schema = schemaToSpec(this.outputSchema);
    const split = splitRanges(ranges, this.options.minPartitions);
    return split.map((r, i): ReadTask => {
      const spec: KafkaReadSpec = {
        bootstrap: this.options.bootstrap,
        client: this.options.client ?? {},
        topic: r.topic,
        partition: r.partition,
        fromOffset: r.from,
        untilOffset: r.until,
        failOnDataLoss: this.failOnDataLoss,
        valueFormat: this.options.valueFormat ?? 'string',
        schema,
        valueFields: this.valueFields,
        mode: this.options.mode ?? 'PERMISSIVE',
        columnNameOfCorruptRecord: this.options.columnNameOfCorruptRecord ?? DEFAULT_CORRUPT_COLUMN,
      };
      if (this.options.badRecordsPath !== undefined) {
        spec.badRecords = {
          dir: path.resolve(this.options.badRecordsPath),
          task: `${this.badRecordsTask}-${r.topic}-${r.partition}-${r.from}`,
        };
        spec.batchId = batchId;
      }
      const following = split.slice(i + 1, i + 1 + READ_AHEAD_TASKS);
      if (following.length > 0)
        spec.following = following.map((f) => ({
          topic: f.topic,
          partition: f.partition,
          fromOffset: f.from,
          untilOffset: f.until,
        }));
      return { reader: 'kafka', spec };
    });
  }

  rowCount(start: SourceOffset | null, end: SourceOffset): number {
    const from = start === null ? this.initial : this.checkOffsets(start);
    const to = this.checkOffsets(end);
    let n = 0;
    for (const [topic, parts] of Object.entries(to)) {
      for (const [p, until] of Object.entries(parts)) {
        const begin = from[topic]?.[p];
        if (begin !== undefined && until > begin) n += until - begin;
      }
    }
    return n;
  }

  /**
   * Commits the batch's end offsets to the consumer group when one is set (groupId or groupIdPrefix). A failure (e.g. the group has active members)
   * does not stop the query, since nothing reads these offsets back; it is counted as groupCommitFailures.
   */
  async commit(end: SourceOffset): Promise<void> {
    if (this.groupId === undefined) return;
    const offsets = Object.entries(this.checkOffsets(end)).flatMap(([topic, parts]) =>
      Object.entries(parts).map(([p, offset]) => ({ topic, partition: Number(p), offset })),
    );
    try {
      await this.requireClient().commitGroupOffsets(this.groupId, offsets);
    } catch {
      this.groupCommitFailures++;
    }
  }

  /**
   * Resolves once a partition has records past the end the last {@link latestOffset} saw: a Fetch from those
   * ends with min bytes 1 on a connection of its own (a waiting Fetch would hold up the requests behind it on
   * the source's connection), asked again until records come or `signal` aborts. Partitions created since are
   * found by the trigger loop's next safety-net poll; with minOffsetsPerTrigger a wait ends when the trigger
   * delay does.
   */
  async waitForData(signal: AbortSignal): Promise<void> {
    const aborted = new Promise<void>((resolve) => {
      if (signal.aborted) resolve();
      signal.addEventListener('abort', () => resolve(), { once: true });
    });
    const positions = this.latestSeen.map((p) => ({ topic: p.topic, partition: p.partition, offset: p.high }));
    const maxWaitMs = this.options.client?.fetchMaxWaitMs ?? WAKE_FETCH_MAX_WAIT_MS;
    const delayEnds =
      this.options.minOffsetsPerTrigger === undefined
        ? Infinity
        : this.lastTriggerMs + (this.options.maxTriggerDelayMs ?? DEFAULT_MAX_TRIGGER_DELAY_MS);
    if (positions.length === 0) {
      // No partition yet (a pattern no topic matches): asked again after the wait, as when polling.
      await Promise.race([sleep(maxWaitMs), aborted]);
      return;
    }
    while (!signal.aborted && Date.now() < delayEnds) {
      this.waking ??= this.wakeFetch(positions, Math.max(1, Math.min(maxWaitMs, delayEnds - Date.now())));
      const woke = await Promise.race([this.waking, aborted.then(() => false)]);
      if (woke) return;
    }
  }

  /**
   * One wake-up Fetch: true when it found records, or after its wait when it failed (the offsets the trigger
   * loop asks for next then tell, and report what is wrong).
   */
  private wakeFetch(
    positions: Array<{ topic: string; partition: number; offset: number }>,
    maxWaitMs: number,
  ): Promise<boolean> {
    this.wakeClient ??= import('../../kafka/client.js').then(({ KafkaClient }) =>
      KafkaClient.connect(this.options.bootstrap, {
        ...this.options.client,
        clientId: `${this.options.client?.clientId ?? 'sluice-source'}-wake`,
        retry: { retries: 0 },
      }),
    );
    const connecting = this.wakeClient;
    const fetching = connecting
      .then((client) => client.awaitRecords(positions, maxWaitMs))
      .catch(async () => {
        // The next wait connects afresh; this connection must not keep the process alive.
        if (this.wakeClient === connecting) this.wakeClient = null;
        await connecting.then((client) => client.close()).catch(() => undefined);
        await sleep(maxWaitMs);
        return true;
      })
      .finally(() => {
        if (this.waking === fetching) this.waking = null;
      });
    return fetching;
  }

  /** From now on no batch reads past the partition ends seen here (Trigger.AvailableNow). */
  async prepareForTriggerAvailableNow(): Promise<void> {
    const cap: KafkaOffsets = {};
    for (const p of await this.partitionEnds()) setOffset(cap, p.topic, p.partition, p.high);
    this.availableNowCap = cap;
  }

  /**
   * Spark's Kafka figures for the last planned batch: how far its end is behind the latest offsets seen
   * (min, max, avg over partitions, and the total over partitions: the records still to read); offsets skipped as lost (failOnDataLoss=false); and, when the brokers
   * were unreachable since the last report, how many calls were retried and how long they waited.
   */
  metrics(): Record<string, number> {
    const out: Record<string, number> = {};
    if (this.lastEnd && this.latestSeen.length > 0) {
      const behind = this.latestSeen.map((p) => Math.max(0, p.high - (this.lastEnd![p.topic]?.[p.partition] ?? p.low)));
      out.minOffsetsBehindLatest = Math.min(...behind);
      out.maxOffsetsBehindLatest = Math.max(...behind);
      out.totalOffsetsBehindLatest = behind.reduce((a, b) => a + b, 0);
      out.avgOffsetsBehindLatest = out.totalOffsetsBehindLatest / behind.length;
    }
    if (this.lostAtPlan > 0) {
      out.dataLossOffsets = this.lostAtPlan;
      this.lostAtPlan = 0;
    }
    if (this.groupCommitFailures > 0) out.groupCommitFailures = this.groupCommitFailures;
    if (this.retries > 0) {
      out.brokerRetries = this.retries;
      out.brokerRetryWaitMs = this.retryWaitMs;
      this.retries = 0;
      this.retryWaitMs = 0;
    }
    return out;
  }

  stallMessage(): string | null {
    const s = this.stall;
    // A retry event older than its back-off plus a margin is over: the call went through or gave up.
    if (!s || Date.now() - s.at > s.event.delayMs + 5000) return null;
    return `Kafka ${s.event.operation} failed (attempt ${s.event.attempt}, retrying in ${s.event.delayMs} ms): ${s.event.error.message}`;
  }

  async stop(): Promise<void> {
    const c = this.client;
    this.client = null;
    const release = this.releaseClients;
    this.releaseClients = null;
    const wake = this.wakeClient;
    this.wakeClient = null;
    await Promise.all([c?.close(), release?.(), wake?.then((w) => w.close()).catch(() => undefined)]);
  }

  private checkOffsets(o: SourceOffset): KafkaOffsets {
    if (!isOffsets(o)) {
      throw new SluiceError(
        'CHECKPOINT_CORRUPT',
        `the offset log holds ${JSON.stringify(o)}, which is not a Kafka source offset`,
        'was the query changed to read another source? Start it with a new checkpoint',
      );
    }
    return o;
  }
}

/**
 * Caps the ranges at `max` records in all, each partition getting a share proportional to its lag (Spark's
 * rule: a share below one record rounds up, so every partition with data moves).
 */
export function rateLimit(ranges: Range[], max: number | undefined): Range[] {
  const total = ranges.reduce((a, r) => a + (r.until - r.from), 0);
  if (max === undefined || !Number.isFinite(max) || total <= max) return ranges;
  return ranges.map((r) => {
    const size = r.until - r.from;
    const share = (max * size) / total;
    const n = share < 1 ? Math.ceil(share) : Math.floor(share);
    return { ...r, until: Math.min(r.until, r.from + n) };
  });
}

/**
 * One task per range; with `minPartitions` above the number of ranges, large ranges are split in parts
 * proportional to their size (Spark's KafkaOffsetRangeCalculator).
 */
export function splitRanges(ranges: Range[], minPartitions: number | undefined): Range[] {
  const nonEmpty = ranges.filter((r) => r.until > r.from);
  if (minPartitions === undefined || nonEmpty.length >= minPartitions) return nonEmpty;
  const total = nonEmpty.reduce((a, r) => a + (r.until - r.from), 0);
  const out: Range[] = [];
  for (const r of nonEmpty) {
    const size = r.until - r.from;
    const parts = Math.max(1, Math.min(size, Math.round((size / total) * minPartitions)));
    for (let i = 0; i < parts; i++) {
      const from = r.from + Math.floor((size * i) / parts);
      const until = r.from + Math.floor((size * (i + 1)) / parts);
      out.push({ ...r, from, until });
    }
  }
  return out;
}

/** The output schema: the decoded value (json) or the key and value, then the Kafka columns. */
function buildSchema(options: KafkaSourceOptions): { schema: Schema; valueFields: string[] } {
  const format = options.valueFormat ?? 'string';
  const keyType = (options.keyFormat ?? 'string') === 'bytes' ? new Binary() : new Utf8();
  const kafkaField = (name: (typeof KAFKA_COLUMNS)[number]): Field => {
    switch (name) {
      case 'key':
        return new Field('key', keyType, true);
      case 'value':
        return new Field('value', format === 'bytes' ? new Binary() : new Utf8(), true);
      case 'topic':
        return new Field('topic', new Utf8(), true);
      case 'partition':
        return new Field('partition', new Int32(), true);
      case 'offset':
        return new Field('offset', new Int64(), true);
      case 'timestamp':
        return new Field('timestamp', new TimestampMillisecond('UTC'), true);
      case 'headers':
        return new Field(
          'headers',
          new List(
            new Field(
              'item',
              new Struct([new Field('key', new Utf8(), true), new Field('value', new Binary(), true)]),
              true,
            ),
          ),
          true,
        );
    }
  };
  const wanted = KAFKA_COLUMNS.filter((c) => c !== 'headers' || options.includeHeaders);
  if (format !== 'json') {
    if (options.schema !== undefined) {
      throw new SluiceError(
        'BAD_OPTION',
        `valueFormat ${format} takes no schema: the value is one ${format === 'bytes' ? 'binary' : 'string'} column`,
        'drop the schema option, or read with valueFormat=json',
      );
    }
    return { schema: new Schema(wanted.map(kafkaField)), valueFields: [] };
  }
  if (options.schema === undefined) {
    throw new SluiceError(
      'BAD_OPTION',
      'valueFormat json needs a schema for the values',
      'set option schema, e.g. schema=\'user STRING, amount DOUBLE\' or a JSON spec {"user":"string"}',
    );
  }
  const valueSchema = schemaFromSpec(options.schema);
  const names = new Set(valueSchema.fields.map((f) => f.name));
  // A value field wins over a Kafka column of the same name (a `timestamp` in the JSON hides the record's).
  const extra = wanted.filter((c) => c !== 'value' && !names.has(c)).map(kafkaField);
  return { schema: new Schema([...valueSchema.fields, ...extra]), valueFields: valueSchema.fields.map((f) => f.name) };
}
