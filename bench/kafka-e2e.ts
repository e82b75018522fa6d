/**
 * Benchmark: Kafka topic → JSON parse → count and sum per user → Kafka topic, against the loop a
 * Node user writes today with kafkajs (group consumer, eachBatch: JSON.parse, a Map of totals, produce the
 * changed totals), on the same mock broker (test/support/kafka/mockbroker) in the same run. Then Kafka →
 * JSON parse → Parquet sink against the same pipeline into the JSON-lines file sink, and the source alone
 * (into a no-op sink) against the client's raw fetch, to see whether it keeps pace with the broker.
 *
 *   node dist/bench/kafka-e2e.js [events=200000] [runs=3] [partitions=8]
 *
 * The input is produced once with kcat in large record sets, each user's events in one partition (where a
 * keyed producer puts them). sluice runs the app bench/apps/kafka-aggregate.ts
 * with Trigger.AvailableNow and maxOffsetsPerTrigger 50 000, for threads 0 and 2; it checkpoints offsets
 * and state every batch and writes exactly once. The kafkajs loop keeps its totals in memory only (a crash
 * loses them) and is at-least-once; its time is given with and without the ~3 s consumer-group join.
 * Every run's output is checked: the last record of each user must hold that user's count and sum.
 * Prints medians of `runs` runs in events/s and the ratios; the machine's load average goes with them.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import kafkajs from 'kafkajs';
import { loadApp, runApp } from '../lib/app/app-runner.js';
import { KafkaClient } from '../lib/kafka/client.js';
import { produceWithKcat, startBroker, type TestBroker } from '../test/support/kafka-broker.js';
import { kafkaBenchEvents, median, type Totals } from './support.js';

const EVENTS = Number(process.argv[2] ?? 200_000);
const RUNS = Number(process.argv[3] ?? 3);
const PARTITIONS = Number(process.argv[4] ?? 8);
const PER_TRIGGER = 50_000;
const USERS = 10_000;

/** Checks that the last record per user in `topic` holds the expected totals. */
async function check(client: KafkaClient, topic: string, expected: Map<string, Totals>, label: string): Promise<void> {
  const last = new Map<string, Totals>();
  for (const p of await client.fetchOffsets(topic)) {
    for (const m of await client.fetchRange(topic, p.partition, p.low, p.high)) {
      const v = JSON.parse(m.value!.toString()) as { user_id: string } & Totals;
      last.set(v.user_id, { events: v.events, amount: v.amount });
    }
  }
  let bad = last.size === expected.size ? 0 : 1;
  for (const [user, t] of expected) {
    const got = last.get(user);
    if (!got || got.events !== t.events || Math.abs(got.amount - t.amount) > 1e-6 * Math.max(1, t.amount)) bad++;
  }
  if (bad > 0)
    throw new Error(`${label}: output topic ${topic} does not hold the expected totals (${bad} users wrong)`);
}

let topicNo = 0;
async function newTopic(broker: TestBroker, partitions: number): Promise<string> {
  const name = `out-${++topicNo}`;
  await broker.command(`topic ${name} ${partitions}`);
  return name;
}

/** The sluice app through runApp; returns wall-clock ms from start to the end of the last batch. */
async function runSluice(
  module: string,
  source: string,
  sink: string,
  threads: number,
  onBatch?: (rows: number, sinkMs: number) => void,
): Promise<number> {
  const ckpt = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-bench-kafka-'));
  const app = await loadApp(fileURLToPath(new URL(module, import.meta.url)));
  const t0 = performance.now();
  const { queries } = await runApp(app, {
    sources: [source],
    sinks: [sink],
    checkpoint: ckpt,
    trigger: { availableNow: true },
    threads,
    onProgress: (_o, p) => onBatch?.(p.sink.numOutputRows, p.durationMs.sink),
  });
  await Promise.all([...queries.values()].map((q) => q.awaitTermination()));
  const ms = performance.now() - t0;
  fs.rmSync(ckpt, { recursive: true, force: true });
  return ms;
}

/** The hand-written kafkajs loop. Returns total ms and ms after the group join (from the first batch). */
async function runKafkajs(
  bootstrap: string,
  output: string,
  run: number,
): Promise<{ ms: number; afterJoinMs: number }> {
  const kafka = new kafkajs.Kafka({
    clientId: 'baseline',
    brokers: bootstrap.split(','),
    logLevel: kafkajs.logLevel.NOTHING,
  });
  const consumer = kafka.consumer({ groupId: `baseline-${run}-${Date.now()}` });
  const producer = kafka.producer();
  const t0 = performance.now();
  await Promise.all([consumer.connect(), producer.connect()]);
  await consumer.subscribe({ topic: 'events', fromBeginning: true });
  const totals = new Map<string, Totals>();
  let seen = 0;
  let first = 0;
  await new Promise<void>((resolve, reject) => {
    consumer
      .run({
        eachBatch: async ({ batch }) => {
          if (first === 0) first = performance.now();
          const touched = new Set<string>();
          for (const m of batch.messages) {
            const e = JSON.parse(m.value!.toString()) as { user_id: string; amount: number };
            let t = totals.get(e.user_id);
            if (!t) {
              t = { events: 0, amount: 0 };
              totals.set(e.user_id, t);
            }
            t.events++;
            t.amount += e.amount;
            touched.add(e.user_id);
          }
          await producer.send({
            topic: output,
            messages: [...touched].map((u) => ({ key: u, value: JSON.stringify({ user_id: u, ...totals.get(u) }) })),
          });
          seen += batch.messages.length;
          if (seen >= EVENTS) resolve();
        },
      })
      .catch(reject);
  });
  const end = performance.now();
  await consumer.disconnect().catch(() => undefined);
  await producer.disconnect();
  return { ms: end - t0, afterJoinMs: end - first };
}

const fmt = (x: number): string => Math.round(x).toLocaleString('en').padStart(10);

/** Adds one run's events per second to the runs of `label`. */
function addRun(runs: Record<string, number[]>, label: string, eventsPerSecond: number): void {
  runs[label] ??= [];
  runs[label].push(eventsPerSecond);
}

async function main(): Promise<void> {
  console.log(
    `kafka-e2e: ${EVENTS.toLocaleString('en')} events, ${PARTITIONS} partitions, ${RUNS} runs; uptime: ${os
      .loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}`,
  );
  const broker = await startBroker({ brokers: 1, topics: { events: PARTITIONS } });
  const client = await KafkaClient.connect(broker.bootstrap);
  try {
    const { lines, keys, totals } = kafkaBenchEvents(EVENTS, USERS);
    const byPartition = new Map<number, string[]>();
    keys.forEach((k, i) => {
      const p = (hash(k) >>> 0) % PARTITIONS;
      (byPartition.get(p) ?? byPartition.set(p, []).get(p)!).push(lines[i]);
    });
    for (const [p, ls] of byPartition) produceWithKcat(broker.bootstrap, 'events', ls, p);
    const avgBytes = lines.reduce((a, l) => a + l.length, 0) / lines.length;
    console.log(`input: ${EVENTS.toLocaleString('en')} events of ${avgBytes.toFixed(0)} bytes, ${USERS} users\n`);

    const source = `kafka://${broker.bootstrap}/events?startingOffsets=earliest&maxOffsetsPerTrigger=${PER_TRIGGER}`;
    const results: Record<string, number[]> = {};
    for (let r = 0; r < RUNS; r++) {
      for (const threads of [0, 2]) {
        const out = await newTopic(broker, PARTITIONS);
        const ms = await runSluice(
          './apps/kafka-aggregate.js',
          source,
          `kafka://${broker.bootstrap}/${out}?keyColumn=user_id`,
          threads,
        );
        await check(client, out, totals, `sluice threads ${threads}`);
        addRun(results, `sluice, threads ${threads}`, EVENTS / (ms / 1000));
      }
      const out = await newTopic(broker, PARTITIONS);
      const base = await runKafkajs(broker.bootstrap, out, r);
      await check(client, out, totals, 'kafkajs loop');
      addRun(results, 'kafkajs loop (with group join)', EVENTS / (base.ms / 1000));
      addRun(results, 'kafkajs loop (after group join)', EVENTS / (base.afterJoinMs / 1000));
    }
    console.log('Kafka → JSON → count and sum per user → Kafka (events/s, median):');
    for (const [label, xs] of Object.entries(results))
      console.log(`  ${label.padEnd(34)} ${fmt(median(xs))}   runs: ${xs.map((x) => Math.round(x)).join(', ')}`);
    const loop = median(results['kafkajs loop (after group join)']);
    const loopJoin = median(results['kafkajs loop (with group join)']);
    for (const t of [0, 2]) {
      const s = median(results[`sluice, threads ${t}`]);
      console.log(
        `  ratio sluice threads ${t} / kafkajs loop: ${(s / loop).toFixed(2)} (after join), ${(s / loopJoin).toFixed(2)} (with join)`,
      );
    }

    // Does the source keep pace with the broker? Reading alone: the client's raw fetch of every partition,
    // against the source decoding JSON into Arrow into a no-op sink.
    const pace: Record<string, number[]> = {};
    for (let r = 0; r < RUNS; r++) {
      const t0 = performance.now();
      const offsets = await client.fetchOffsets('events');
      const got = await Promise.all(offsets.map((o) => client.fetchRange('events', o.partition, o.low, o.high)));
      if (got.reduce((a, m) => a + m.length, 0) !== EVENTS)
        throw new Error('raw fetch read the wrong number of records');
      addRun(pace, 'KafkaClient fetch, no decoding', EVENTS / ((performance.now() - t0) / 1000));
      for (const threads of [0, 2]) {
        const ms = await runSluice('./apps/kafka-events.js', source, 'noop:', threads);
        addRun(pace, `sluice source → noop, threads ${threads}`, EVENTS / (ms / 1000));
      }
    }
    console.log('\nReading alone (events/s, median):');
    for (const [label, xs] of Object.entries(pace))
      console.log(`  ${label.padEnd(34)} ${fmt(median(xs))}   runs: ${xs.map((x) => Math.round(x)).join(', ')}`);

    const sinks: Record<string, { e2e: number[]; sink: number[] }> = {};
    for (let r = 0; r < RUNS; r++) {
      for (const [label, sink] of [
        ['parquet', 'parquet:'],
        ['json lines', 'file:'],
      ] as const) {
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-bench-sink-'));
        let rows = 0;
        let addMs = 0;
        const ms = await runSluice('./apps/kafka-events.js', source, `${sink}${dir}`, 0, (n, a) => {
          rows += n;
          addMs += a;
        });
        fs.rmSync(dir, { recursive: true, force: true });
        if (rows !== EVENTS) throw new Error(`${label} sink wrote ${rows} rows, expected ${EVENTS}`);
        sinks[label] ??= { e2e: [], sink: [] };
        const s = sinks[label];
        s.e2e.push(EVENTS / (ms / 1000));
        s.sink.push(rows / (addMs / 1000));
      }
    }
    console.log(
      '\nKafka → JSON → sink, threads 0 (median): end to end events/s, and rows/s of the sink itself (its progress `sink` time):',
    );
    for (const [label, s] of Object.entries(sinks)) {
      console.log(
        `  ${label.padEnd(12)} end to end ${fmt(median(s.e2e))}   sink ${fmt(median(s.sink))} rows/s   sink runs: ${s.sink.map((x) => Math.round(x)).join(', ')}`,
      );
    }
    console.log(
      `  ratio parquet / json lines: sink ${(median(sinks.parquet.sink) / median(sinks['json lines'].sink)).toFixed(2)}, ` +
        `end to end ${(median(sinks.parquet.e2e) / median(sinks['json lines'].e2e)).toFixed(2)}`,
    );
    console.log(
      `\nuptime after: ${os
        .loadavg()
        .map((l) => l.toFixed(2))
        .join(' ')}`,
    );
  } finally {
    await client.close();
    await broker.stop();
  }
}

/** Java's String.hashCode, only to spread users over partitions deterministically. */
function hash(s: string): number {
  let h = 0;
  for (let i = 0; i < s.length; i++) h = (h * 31 + s.charCodeAt(i)) | 0;
  return h;
}

await main();
