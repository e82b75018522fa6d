/**
 * Benchmark: bank-account (a keyed mapGroupsWithState over operations keyed by account) over an 8-partition
 * topic of the test broker, `sluice run --group` with one member against two members, threads 0, in one
 * invocation; then the time a killed member's tasks take to resume on the other (session timeout included).
 *
 *   node dist/bench/group-scale.js [events=400000] [runs=3] [--session-timeout 6s]
 *
 * Each run is a new group with a new checkpoint and output topic, timed from the members' start to the last
 * output record (one movement per operation), group joins included. The contenders take turns.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { KafkaClient } from '../lib/kafka/client.js';
import { startBroker } from '../test/support/kafka-broker.js';
import { median } from './support.js';

const positional = process.argv.slice(2).filter((a, i, all) => !a.startsWith('--') && !all[i - 1]?.startsWith('--'));
const EVENTS = Number(positional[0] ?? 400_000);
const RUNS = Number(positional[1] ?? 3);
const at = process.argv.indexOf('--session-timeout');
const SESSION_TIMEOUT = at < 0 ? '6s' : process.argv[at + 1];
const PARTITIONS = 8;
const CLI = fileURLToPath(new URL('../lib/cli/main.js', import.meta.url));

const broker = await startBroker({ brokers: 1, topics: { ops: PARTITIONS } });
const root = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-group-bench-'));
const client = await KafkaClient.connect(broker.bootstrap);
let runs = 0;

function sluice(args: string[], env: Record<string, string> = {}): ChildProcess {
  return spawn(process.execPath, [CLI, ...args], {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, ...env },
  });
}

async function records(topic: string): Promise<number> {
  const parts = await client.fetchOffsets([topic]).catch(() => []);
  return parts.reduce((n, p) => n + p.high, 0);
}

async function waitFor(topic: string, count: number): Promise<void> {
  while ((await records(topic)) < count) await new Promise((r) => setTimeout(r, 100));
}

function member(group: string, out: string): ChildProcess {
  return sluice([
    'run',
    'bank-account',
    '--source',
    `kafka://${broker.bootstrap}/ops?startingOffsets=earliest&maxOffsetsPerTrigger=20000`,
    '--sink',
    `movements=kafka://${broker.bootstrap}/${out}`,
    '--sink',
    'accounts=noop:',
    '--checkpoint',
    path.join(root, group),
    '--trigger',
    '100ms',
    '--group',
    group,
    '--group-session-timeout',
    SESSION_TIMEOUT,
    '--quiet',
  ]);
}

async function stop(ps: ChildProcess[]): Promise<void> {
  await Promise.all(
    ps.map(
      (p) =>
        new Promise<void>((resolve) => {
          if (p.exitCode !== null || p.signalCode !== null) return resolve();
          p.once('exit', () => resolve());
          p.kill('SIGTERM');
        }),
    ),
  );
}

/** Events/s of `members` processes over the whole topic. */
async function throughput(members: number): Promise<number> {
  const id = `g${++runs}`;
  await broker.command(`topic out-${id} 2`);
  const started = Date.now();
  const ps = Array.from({ length: members }, () => member(id, `out-${id}`));
  await waitFor(`out-${id}`, EVENTS);
  const seconds = (Date.now() - started) / 1000;
  await stop(ps);
  return EVENTS / seconds;
}

/** Seconds from a member's SIGKILL until its tasks wrote again on the other member. */
async function failover(): Promise<number> {
  const id = `g${++runs}`;
  await broker.command(`topic out-${id} 2`);
  const [a, b] = [member(id, `out-${id}`), member(id, `out-${id}`)];
  await waitFor(`out-${id}`, EVENTS);
  // Both hold four tasks now; new input for every partition, then one member dies.
  const gen = sluice([
    'gen',
    'bank',
    '--count',
    '8000',
    '--seed',
    String(runs),
    '--to',
    `kafka://${broker.bootstrap}/ops`,
  ]);
  await new Promise((r) => gen.once('exit', r));
  const killed = Date.now();
  a.kill('SIGKILL');
  await waitFor(`out-${id}`, EVENTS + 8000);
  const seconds = (Date.now() - killed) / 1000;
  await stop([b]);
  return seconds;
}

const gen = sluice([
  'gen',
  'bank',
  '--count',
  String(EVENTS),
  '--accounts',
  '10000',
  '--to',
  `kafka://${broker.bootstrap}/ops`,
]);
await new Promise((r) => gen.once('exit', r));
const one: number[] = [];
const two: number[] = [];
for (let r = 0; r < RUNS; r++) {
  if (r % 2 === 0) {
    one.push(await throughput(1));
    two.push(await throughput(2));
  } else {
    two.push(await throughput(2));
    one.push(await throughput(1));
  }
  console.log(
    `run ${r + 1}: one member ${Math.round(one.at(-1)!)} events/s, two members ${Math.round(two.at(-1)!)} events/s`,
  );
}
console.log(
  `median: one member ${Math.round(median(one))} events/s, two members ${Math.round(median(two))} events/s, ratio ${(median(two) / median(one)).toFixed(2)}x`,
);
const resumed = await failover();
console.log(
  `a killed member's tasks wrote again on the other member ${resumed.toFixed(1)} s after SIGKILL (session timeout ${SESSION_TIMEOUT})`,
);
await client.close();
await broker.stop();
fs.rmSync(root, { recursive: true, force: true });
