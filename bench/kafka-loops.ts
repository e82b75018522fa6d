/**
 * The consume-aggregate-produce loop a Node user writes by hand, on three clients: kafkajs, and Confluent's
 * librdkafka-based `@confluentinc/kafka-javascript` through its KafkaJS-compatible API and through its
 * node-rdkafka API. Each joins a consumer group, parses every JSON value, keeps a count and a sum per user
 * in a `Map`, and after each batch produces the totals of the users the batch touched, keyed by user, as
 * JSON. Totals live in memory only and delivery is at-least-once: the loops do less than sluice does.
 *
 * Each loop reports the wall-clock ms from its start and from its group join (the moment partitions are
 * assigned) to its last produced record acknowledged by the broker, and how many records it produced.
 */
import { createRequire } from 'node:module';
import kafkajs from 'kafkajs';
import type { Totals } from './support.js';

/** What one loop run measured. */
export interface LoopRun {
  /** From connecting to the last acknowledged output record. */
  ms: number;
  /** From the group join (partitions assigned) to the last acknowledged output record. */
  afterJoinMs: number;
  outputRecords: number;
}

/** Where a loop reads, writes and stops. */
export interface LoopTarget {
  bootstrap: string;
  input: string;
  output: string;
  /** Records in the input topic: the loop stops once it has read them all. */
  events: number;
  groupId: string;
}

/** The running totals of the loops, and the users a batch touched. */
class RunningTotals {
  readonly totals = new Map<string, Totals>();
  private touched = new Set<string>();

  /** Adds one JSON event. */
  add(value: Buffer): void {
    const e = JSON.parse(value.toString()) as { user_id: string; amount: number };
    let t = this.totals.get(e.user_id);
    if (!t) {
      t = { events: 0, amount: 0 };
      this.totals.set(e.user_id, t);
    }
    t.events++;
    t.amount += e.amount;
    this.touched.add(e.user_id);
  }

  /** The touched users' totals as output records, and a fresh touched set. */
  takeTouched(): Array<{ key: string; value: string }> {
    const out = [...this.touched].map((u) => ({
      key: u,
      value: JSON.stringify({ user_id: u, ...this.totals.get(u) }),
    }));
    this.touched = new Set();
    return out;
  }
}

/**
 * The consume-aggregate-produce body both eachBatch loops share: each fetched batch folds into the running
 * totals and the keys it touched are sent before the next batch; ends when every input event was seen.
 * Resolves to the time of the last acknowledged send.
 */
async function aggregateEachBatch(
  consumer: EachBatchConsumer,
  producer: EachBatchProducer,
  target: LoopTarget,
): Promise<{ end: number; outputRecords: number }> {
  const totals = new RunningTotals();
  let seen = 0;
  let outputRecords = 0;
  await new Promise<void>((resolve, reject) => {
    consumer
      .run({
        eachBatch: async ({ batch }) => {
          for (const m of batch.messages) totals.add(m.value!);
          const messages = totals.takeTouched();
          await producer.send({ topic: target.output, messages });
          outputRecords += messages.length;
          seen += batch.messages.length;
          if (seen >= target.events) resolve();
        },
      })
      .catch(reject);
  });
  const end = performance.now();
  await consumer.disconnect().catch(() => undefined);
  await producer.disconnect();
  return { end, outputRecords };
}

/** The loop on kafkajs 2.2.4: `eachBatch` and `producer.send`. */
export async function kafkajsLoop(target: LoopTarget): Promise<LoopRun> {
  const kafka = new kafkajs.Kafka({
    clientId: 'loop',
    brokers: target.bootstrap.split(','),
    logLevel: kafkajs.logLevel.NOTHING,
  });
  const consumer = kafka.consumer({ groupId: target.groupId });
  const producer = kafka.producer();
  const t0 = performance.now();
  let joined = 0;
  consumer.on(consumer.events.GROUP_JOIN, () => {
    joined ||= performance.now();
  });
  await Promise.all([consumer.connect(), producer.connect()]);
  await consumer.subscribe({ topic: target.input, fromBeginning: true });
  const { end, outputRecords } = await aggregateEachBatch(consumer, producer, target);
  return { ms: end - t0, afterJoinMs: end - joined, outputRecords };
}

/** The parts of @confluentinc/kafka-javascript the loops use. */
interface Confluent {
  KafkaJS: {
    Kafka: new (
      config: Record<string, unknown>,
    ) => {
      consumer(config: Record<string, unknown>): EachBatchConsumer;
      producer(config: Record<string, unknown>): EachBatchProducer;
    };
  };
  KafkaConsumer: new (global: Record<string, unknown>, topic: Record<string, unknown>) => RdConsumer;
  Producer: new (global: Record<string, unknown>) => RdProducer;
  CODES: { ERRORS: Record<string, number> };
}
interface EachBatchConsumer {
  connect(): Promise<void>;
  disconnect(): Promise<void>;
  subscribe(s: { topics: string[] }): Promise<void>;
  run(r: { eachBatch: (p: { batch: { messages: Array<{ value: Buffer | null }> } }) => Promise<void> }): Promise<void>;
}
interface EachBatchProducer {
  connect(): Promise<void>;
  disconnect(): Promise<void>;
  send(r: { topic: string; messages: Array<{ key: string; value: string }> }): Promise<unknown>;
}
interface RdConsumer {
  connect(): void;
  disconnect(cb: () => void): void;
  on(event: string, cb: (...args: never[]) => void): void;
  subscribe(topics: string[]): void;
  assign(a: unknown): void;
  unassign(): void;
  consume(n: number, cb: (err: Error | null, messages: Array<{ value: Buffer | null }>) => void): void;
}
interface RdProducer {
  connect(): void;
  disconnect(cb: () => void): void;
  on(event: string, cb: (...args: never[]) => void): void;
  produce(topic: string, partition: null, value: Buffer, key: string): void;
  poll(): void;
  setPollInterval(ms: number): void;
  flush(timeoutMs: number, cb: (err: Error | null) => void): void;
}

/** Loads the Confluent client from its install directory (it is never a dependency of sluice). */
export function loadConfluent(dir: string): Confluent {
  return createRequire(import.meta.url)(dir) as Confluent;
}

/**
 * The loop on Confluent's KafkaJS-compatible API: the kafkajs loop with the client swapped, as its
 * migration guide has it, and eachBatch's batch size raised to what kafkajs gives.
 */
export async function confluentKafkajsLoop(ck: Confluent, target: LoopTarget): Promise<LoopRun> {
  const kafka = new ck.KafkaJS.Kafka({ kafkaJS: { brokers: target.bootstrap.split(','), logLevel: 0 } });
  let joined = 0;
  const consumer = kafka.consumer({
    kafkaJS: { groupId: target.groupId, fromBeginning: true },
    // Batches of up to 10,000 records, as kafkajs' fetches give here (the default of 32 makes it 6x slower).
    'js.consumer.max.batch.size': 10_000,
    rebalance_cb: () => {
      joined ||= performance.now();
    },
  });
  const producer = kafka.producer({ 'linger.ms': 5 });
  const t0 = performance.now();
  await Promise.all([consumer.connect(), producer.connect()]);
  await consumer.subscribe({ topics: [target.input] });
  const { end, outputRecords } = await aggregateEachBatch(consumer, producer, target);
  return { ms: end - t0, afterJoinMs: end - joined, outputRecords };
}

/**
 * The loop on Confluent's node-rdkafka API: `consume(n)` in a loop, `produce` per record with delivery
 * reports, and a `flush` at the end so the last record is acknowledged before the clock stops.
 */
export async function confluentRdkafkaLoop(ck: Confluent, target: LoopTarget): Promise<LoopRun> {
  const ERR = ck.CODES.ERRORS;
  let joined = 0;
  const consumer: RdConsumer = new ck.KafkaConsumer(
    {
      'metadata.broker.list': target.bootstrap,
      'group.id': target.groupId,
      'enable.auto.commit': false,
      rebalance_cb: (err: { code: number }, assignment: unknown) => {
        if (err.code === ERR.ERR__ASSIGN_PARTITIONS) {
          joined ||= performance.now();
          consumer.assign(assignment);
        } else {
          consumer.unassign();
        }
      },
    },
    { 'auto.offset.reset': 'earliest' },
  );
  const producer: RdProducer = new ck.Producer({
    'metadata.broker.list': target.bootstrap,
    dr_cb: true,
    'linger.ms': 5,
    // A batch's output goes into the queue at once; librdkafka's default of 100,000 queued records could refuse it.
    'queue.buffering.max.messages': 1_000_000,
  });
  const t0 = performance.now();
  const ready = (c: RdConsumer | RdProducer) =>
    new Promise<void>((resolve, reject) => {
      c.on('ready', () => resolve());
      c.on('connection.failure', (e: Error) => reject(e));
      c.connect();
    });
  await Promise.all([ready(consumer), ready(producer)]);
  producer.setPollInterval(10);
  consumer.subscribe([target.input]);
  const totals = new RunningTotals();
  let seen = 0;
  let outputRecords = 0;
  await new Promise<void>((resolve, reject) => {
    const next = () =>
      consumer.consume(10_000, (err, messages) => {
        if (err) {
          reject(err);
          return;
        }
        for (const m of messages) totals.add(m.value!);
        for (const r of totals.takeTouched()) {
          producer.produce(target.output, null, Buffer.from(r.value), r.key);
          outputRecords++;
        }
        seen += messages.length;
        if (seen >= target.events) resolve();
        else setImmediate(next);
      });
    next();
  });
  await new Promise<void>((resolve, reject) => producer.flush(30_000, (e) => (e ? reject(e) : resolve())));
  const end = performance.now();
  await new Promise<void>((resolve) => consumer.disconnect(() => resolve()));
  await new Promise<void>((resolve) => producer.disconnect(() => resolve()));
  return { ms: end - t0, afterJoinMs: end - joined, outputRecords };
}
