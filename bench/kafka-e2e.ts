/**
 * Benchmark: Kafka topic → JSON parse → count and sum per user → Kafka topic, sluice against the loop a
 * Node user writes by hand (bench/kafka-loops.ts) on kafkajs and, given `--confluent DIR`, on Confluent's
 * librdkafka-based client, all on the same test broker (test/support/kafka/mockbroker) in one invocation.
 *
 *   node dist/bench/kafka-e2e.js [events=1000000] [runs=3] [partitions=24] [--max-offsets N] [--threads 0,2]
 *        [--only sluice,kafkajs,confluent] [--confluent DIR] [--baseline DIR] [--profile FILE]
 *
 * The input is produced once with kcat: `events` JSON events of about 96 bytes, about 7,000 users, each user's
 * events in one partition (where a keyed producer puts them). The test broker (librdkafka's mock) keeps about
 * 5 MB per partition and drops older records, so 1M events need about 24 partitions. sluice runs bench/apps/kafka-aggregate.ts as
 * `sluice run` does, with Trigger.AvailableNow and maxOffsetsPerTrigger `--max-offsets` (default 250,000),
 * timed from the start of the query to its end; it checkpoints offsets and state every batch and writes
 * exactly once. The loops are timed from their group join (partitions assigned) to their last record
 * acknowledged by the broker; they keep totals in memory only and are at-least-once. Each run's output is
 * checked: the last record of every user must hold that user's count and sum. The contenders take turns,
 * each run starting with the next one, so a slow spell of the shared machine does not fall on one only.
 * Prints medians in events/s and per CPU second of this process (librdkafka's threads and sluice's workers
 * included), and the ratios. `--profile FILE` writes a CPU profile (for Chrome DevTools) of sluice's runs only.
 * `--baseline DIR` adds sluice as built in DIR (the `dist` of an earlier checkout) as a contender taking its
 * turn with the others, so a change is measured against the build before it in one invocation.
 */
import * as fs from 'node:fs';
import { Session as Inspector } from 'node:inspector/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as appRunner from '../lib/app/app-runner.js';
import { KafkaClient } from '../lib/kafka/client.js';
import { murmur2 } from '../lib/kafka/murmur2.js';
import { produceWithKcat, startBroker, type TestBroker } from '../test/support/kafka-broker.js';
import {
  confluentKafkajsLoop,
  confluentRdkafkaLoop,
  kafkajsLoop,
  type LoopRun,
  type LoopTarget,
  loadConfluent,
} from './kafka-loops.js';
import { cpuSeconds, kafkaBenchEvents, median, type Totals } from './support.js';

const positional = process.argv.slice(2).filter((a, i, all) => !a.startsWith('--') && !all[i - 1]?.startsWith('--'));
function flag(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i < 0 ? undefined : process.argv[i + 1];
}
const EVENTS = Number(positional[0] ?? 1_000_000);
const RUNS = Number(positional[1] ?? 3);
const PARTITIONS = Number(positional[2] ?? 24);
const MAX_OFFSETS = Number(flag('max-offsets') ?? 250_000);
const THREADS = (flag('threads') ?? '0').split(',').map(Number);
const ONLY = new Set((flag('only') ?? 'sluice,kafkajs,confluent').split(','));
const CONFLUENT_DIR = flag('confluent');
const PROFILE = flag('profile');
const BASELINE = flag('baseline');
const USERS = 10_000;

/** Reads `topic` whole; checks that the last record per user holds the expected totals; returns its records. */
async function check(
  client: KafkaClient,
  topic: string,
  expected: Map<string, Totals>,
  label: string,
): Promise<number> {
  const last = new Map<string, Totals>();
  let records = 0;
  for (const p of await client.fetchOffsets(topic)) {
    for (const m of await client.fetchRange(topic, p.partition, p.low, p.high)) {
      const v = JSON.parse(m.value!.toString()) as { user_id: string } & Totals;
      if (m.key?.toString() !== v.user_id) throw new Error(`${label}: a record of ${v.user_id} has key ${m.key}`);
      last.set(v.user_id, { events: v.events, amount: v.amount });
      records++;
    }
  }
  let bad = last.size === expected.size ? 0 : 1;
  for (const [user, t] of expected) {
    const got = last.get(user);
    if (!got || got.events !== t.events || Math.abs(got.amount - t.amount) > 1e-6 * Math.max(1, t.amount)) bad++;
  }
  if (bad > 0)
    throw new Error(`${label}: output topic ${topic} does not hold the expected totals (${bad} users wrong)`);
  return records;
}

let topicNo = 0;
async function newTopic(broker: TestBroker): Promise<string> {
  const name = `out-${++topicNo}`;
  await broker.command(`topic ${name} ${PARTITIONS}`);
  return name;
}

/** A build of sluice: its app runner and the benchmark app's path in that build. */
interface Build {
  runner: typeof appRunner;
  app: string;
}

const THIS_BUILD: Build = {
  runner: appRunner,
  app: fileURLToPath(new URL('./apps/kafka-aggregate.js', import.meta.url)),
};

/** The build in `dist` (the output folder of another checkout's `npm run build`). */
async function buildIn(dist: string): Promise<Build> {
  const root = path.resolve(dist);
  const runner = (await import(path.join(root, 'lib/app/app-runner.js'))) as typeof appRunner;
  return { runner, app: path.join(root, 'bench/apps/kafka-aggregate.js') };
}

/** Builds whose plan was printed (once each, with the columns column pruning left). */
const explained = new Set<Build>();

/** sluice's app as `sluice run` runs it; ms from the start of the query to its end. */
async function sluiceRun(build: Build, bootstrap: string, output: string, threads: number): Promise<number> {
  const ckpt = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-bench-kafka-'));
  const { loadApp, runApp } = build.runner;
  const app = await loadApp(build.app);
  const profiler = PROFILE === undefined ? null : new Inspector();
  if (profiler) {
    profiler.connect();
    await profiler.post('Profiler.enable');
    await profiler.post('Profiler.start');
  }
  const t0 = performance.now();
  const { queries } = await runApp(app, {
    sources: [`kafka://${bootstrap}/events?startingOffsets=earliest&maxOffsetsPerTrigger=${MAX_OFFSETS}`],
    sinks: [`kafka://${bootstrap}/${output}?keyColumn=user_id`],
    checkpoint: ckpt,
    trigger: { availableNow: true },
    threads,
  });
  await Promise.all([...queries.values()].map((q) => q.awaitTermination()));
  const ms = performance.now() - t0;
  if (!explained.has(build)) {
    explained.add(build);
    for (const q of queries.values()) if ('explain' in q) console.log(`  ${q.explain().replaceAll('\n', '\n  ')}`);
  }
  if (profiler) {
    const { profile } = await profiler.post('Profiler.stop');
    fs.writeFileSync(PROFILE!, JSON.stringify(profile));
    profiler.disconnect();
  }
  fs.rmSync(ckpt, { recursive: true, force: true });
  return ms;
}

/** One contender: runs once, writing to `output`; ms measured (after the join for the loops) and the records written. */
interface Contender {
  label: string;
  run(output: string, run: number): Promise<{ ms: number; joinMs?: number }>;
}

/** Per contender: events/s, events per CPU second, output records per run. */
interface Results {
  rate: number[];
  withJoin: number[];
  perCpu: number[];
  outputRecords: number[];
}

const fmt = (x: number): string => Math.round(x).toLocaleString('en').padStart(10);
const load = (): string =>
  os
    .loadavg()
    .map((l) => l.toFixed(2))
    .join(' ');

async function main(): Promise<void> {
  console.log(
    `kafka-e2e: ${EVENTS.toLocaleString('en')} events, ${PARTITIONS} partitions, ${RUNS} runs, ` +
      `maxOffsetsPerTrigger ${MAX_OFFSETS.toLocaleString('en')}; load average ${load()}`,
  );
  const broker = await startBroker({ brokers: 1, topics: { events: PARTITIONS } });
  const client = await KafkaClient.connect(broker.bootstrap);
  try {
    const { lines, keys, totals } = kafkaBenchEvents(EVENTS, USERS);
    const byPartition = new Map<number, string[]>();
    keys.forEach((k, i) => {
      const p = (murmur2(k) & 0x7fffffff) % PARTITIONS;
      (byPartition.get(p) ?? byPartition.set(p, []).get(p)!).push(lines[i]);
    });
    for (const [p, ls] of byPartition) produceWithKcat(broker.bootstrap, 'events', ls, p);
    if ((await client.fetchOffsets('events')).some((p) => p.low > 0)) {
      throw new Error(
        `the test broker dropped the oldest events (it keeps about 5 MB per partition): give more partitions than ${PARTITIONS}`,
      );
    }
    const avgBytes = lines.reduce((a, l) => a + l.length, 0) / lines.length;
    console.log(
      `input: ${EVENTS.toLocaleString('en')} events of ${avgBytes.toFixed(0)} bytes, ${totals.size.toLocaleString('en')} users\n`,
    );

    const target = (output: string, run: number, name: string): LoopTarget => ({
      bootstrap: broker.bootstrap,
      input: 'events',
      output,
      events: EVENTS,
      groupId: `${name}-${run}`,
    });
    const loopResult = (r: LoopRun) => ({ ms: r.afterJoinMs, joinMs: r.ms });
    const contenders: Contender[] = [];
    if (ONLY.has('sluice')) {
      const baseline = BASELINE === undefined ? null : await buildIn(BASELINE);
      for (const t of THREADS) {
        contenders.push({
          label: `sluice, threads ${t}`,
          run: async (out) => ({ ms: await sluiceRun(THIS_BUILD, broker.bootstrap, out, t) }),
        });
        if (baseline)
          contenders.push({
            label: `sluice baseline, threads ${t}`,
            run: async (out) => ({ ms: await sluiceRun(baseline, broker.bootstrap, out, t) }),
          });
      }
    }
    if (ONLY.has('kafkajs'))
      contenders.push({
        label: 'kafkajs loop',
        run: async (out, r) => loopResult(await kafkajsLoop(target(out, r, 'kafkajs'))),
      });
    if (ONLY.has('confluent')) {
      if (CONFLUENT_DIR === undefined) {
        console.log('Confluent loop skipped: give --confluent DIR (an install of @confluentinc/kafka-javascript)\n');
      } else {
        const ck = loadConfluent(path.resolve(CONFLUENT_DIR));
        contenders.push(
          {
            label: 'confluent loop, node-rdkafka API',
            run: async (out, r) => loopResult(await confluentRdkafkaLoop(ck, target(out, r, 'rdkafka'))),
          },
          {
            label: 'confluent loop, KafkaJS API',
            run: async (out, r) => loopResult(await confluentKafkajsLoop(ck, target(out, r, 'ckjs'))),
          },
        );
      }
    }

    const results = new Map<string, Results>(
      contenders.map((c) => [c.label, { rate: [], withJoin: [], perCpu: [], outputRecords: [] }]),
    );
    for (let r = 0; r < RUNS; r++) {
      for (let i = 0; i < contenders.length; i++) {
        const c = contenders[(r + i) % contenders.length];
        const out = await newTopic(broker);
        const cpu = process.cpuUsage();
        const { ms, joinMs } = await c.run(out, r);
        const cpuS = cpuSeconds(cpu);
        const res = results.get(c.label)!;
        res.outputRecords.push(await check(client, out, totals, c.label));
        res.rate.push(EVENTS / (ms / 1000));
        if (joinMs !== undefined) res.withJoin.push(EVENTS / (joinMs / 1000));
        res.perCpu.push(EVENTS / cpuS);
        console.log(
          `  run ${r + 1} ${c.label.padEnd(34)} ${fmt(EVENTS / (ms / 1000))} events/s` +
            `${joinMs === undefined ? '' : ` (${fmt(EVENTS / (joinMs / 1000)).trim()} with the group join)`}, load ${load()}`,
        );
      }
    }

    console.log(
      '\nKafka → JSON → count and sum per user → Kafka, medians (loops: after their group join to the last acknowledged record):',
    );
    console.log(
      `  ${''.padEnd(34)} ${'events/s'.padStart(10)} ${'per CPU s'.padStart(10)}  output records   runs (events/s)`,
    );
    for (const [label, res] of results) {
      console.log(
        `  ${label.padEnd(34)} ${fmt(median(res.rate))} ${fmt(median(res.perCpu))}  ${fmt(median(res.outputRecords))}       ` +
          `${res.rate.map((x) => Math.round(x)).join(', ')}` +
          (res.withJoin.length > 0 ? `   with the join: ${fmt(median(res.withJoin)).trim()}` : ''),
      );
    }
    const loops = [...results.keys()].filter((l) => !l.startsWith('sluice'));
    const ratio = (a: number[], b: number[]): string => (median(a) / median(b)).toFixed(2);
    for (const t of THREADS) {
      for (const name of ['sluice', 'sluice baseline']) {
        const s = results.get(`${name}, threads ${t}`);
        if (!s) continue;
        for (const loop of loops) {
          const l = results.get(loop)!;
          console.log(
            `  ratio ${name} threads ${t} / ${loop}: ${ratio(s.rate, l.rate)} ` +
              `(with its join ${ratio(s.rate, l.withJoin)}, per CPU second ${ratio(s.perCpu, l.perCpu)})`,
          );
        }
      }
      const s = results.get(`sluice, threads ${t}`);
      const b = results.get(`sluice baseline, threads ${t}`);
      if (s && b) {
        const byRun = s.rate.map((x, i) => (x / b.rate[i]).toFixed(2)).join(', ');
        console.log(
          `  ratio sluice threads ${t} / its baseline: ${ratio(s.rate, b.rate)} (per CPU second ${ratio(s.perCpu, b.perCpu)}; run by run ${byRun})`,
        );
      }
    }
    console.log(`\nload average after: ${load()}`);
  } finally {
    await client.close();
    await broker.stop();
  }
}

await main();
