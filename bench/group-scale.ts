/**
 * Benchmark: bank-account (a keyed mapGroupsWithState over operations keyed by account) over an 8-partition
 * topic of the test broker, `sluice run --group` with threads 0.
 *
 *   node dist/bench/group-scale.js [events=1600000] [runs=3] [--session-timeout 6s]
 *       [--failover-accounts 1000000] [--failover-events 2000000] [--state-store memory,disk]
 *       [--idle SECONDS] [--cpu-prof DIR] [--vs DIST]
 *
 * Throughput: one member against two, taking turns, each run a new group, input topic, checkpoint and output
 * topic over the same operations (bank operations over 10,000 accounts, account i in partition i mod 8). The
 * test broker keeps at most 100,000 records or 5 MB per partition, so a run's input is written in rounds of
 * 200,000 while the members read it, the next round as soon as less than a round is left unread: the members
 * always have at least a round ahead of them, and a partition never holds more than two. A run is timed in
 * steady state: from the moment every task of the group runs on its member (the group's joins and the restores
 * are over) to the last output record (one movement per operation), counting only the operations written after
 * that moment. CPU seconds of the members and of the broker over the same span give events per CPU second, and
 * say what the broker itself costs.
 *
 * Failover: two members build state from `--failover-events` deposits that go over `--failover-accounts`
 * accounts in turn (account i in partition i mod 8), so that as many events as accounts give exactly that many
 * keys; they are written in rounds the broker's retention holds (about 5 MB per partition). Then one member is
 * killed with SIGKILL and input written on every partition; timed until every operation is in the output, with
 * the steps in between (the survivor's new generation, each task's restore) from the survivor's log, the restore
 * time per million state rows of the tasks that moved, and the survivor's peak resident memory; then a new member
 * alone restarts every task over the same state, for the restart's restore time in the same invocation. Once per
 * state store. With runs 0 only the failover runs; with `--failover-events 0` none.
 *
 * Idle cost (`--idle SECONDS`): one member, then two, over a topic they have read to its end; each member's CPU
 * over that many seconds, in cores. `--cpu-prof DIR` has every member write a V8 CPU profile there.
 *
 * `--vs DIST` compares builds instead of group sizes: each run is one member of the build in DIST (a copy of an
 * earlier `dist`) and one member of this build, taking turns, over the same input; it prints both builds'
 * events per member CPU second, their ratio per pair and the ratio of the medians.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { bank } from '../lib/gen/bank.js';
import { idOf } from '../lib/gen/common.js';
import { KafkaClient } from '../lib/kafka/client.js';
import { produceWithKcat, startBroker } from '../test/support/kafka-broker.js';
import { median } from './support.js';

const flag = (name: string, fallback: string): string => {
  const at = process.argv.indexOf(`--${name}`);
  return at < 0 ? fallback : process.argv[at + 1];
};
const positional = process.argv.slice(2).filter((a, i, all) => !a.startsWith('--') && !all[i - 1]?.startsWith('--'));
const EVENTS = Number(positional[0] ?? 400_000);
const RUNS = Number(positional[1] ?? 3);
const SESSION_TIMEOUT = flag('session-timeout', '6s');
const FAILOVER_ACCOUNTS = Number(flag('failover-accounts', '1000000'));
const FAILOVER_EVENTS = Number(flag('failover-events', '2000000'));
const STORES = flag('state-store', 'memory,disk').split(',');
/** Seconds over which each member's CPU is read while the group idles (input caught up); 0 skips it. */
const IDLE_SECONDS = Number(flag('idle', '0'));
/** With `--cpu-prof DIR`, every member writes a V8 CPU profile into DIR when it exits. */
const PROFILE_DIR = flag('cpu-prof', '');
const MEMBER_NODE_FLAGS = PROFILE_DIR ? ['--cpu-prof', `--cpu-prof-dir=${PROFILE_DIR}`] : [];
/** With `--vs DIST`, runs compare one member of that build with one member of this one. */
const VS = flag('vs', '');
const PARTITIONS = 8;
/** Operations per round while state is built: well within the test broker's retention (5 MB per partition). */
const ROUND = 400_000;
/** Operations per round of the throughput runs' input: the broker holds two (50,000 per partition, ~3 MB). */
const THROUGHPUT_ROUND = 200_000;
const CLI = fileURLToPath(new URL('../lib/cli/main.js', import.meta.url));
const VS_CLI = VS ? path.resolve(VS, 'lib/cli/main.js') : '';
const TICKS = 100; // clock ticks per second of /proc/PID/stat on Linux

const broker = await startBroker({ brokers: 1, topics: { ops: PARTITIONS } });
const root = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-group-bench-'));
const client = await KafkaClient.connect(broker.bootstrap);
let groups = 0;

/** CPU seconds process `pid` used so far (user and system, all threads). */
function cpuOf(pid: number): number {
  try {
    const fields = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return (Number(fields[11]) + Number(fields[12])) / TICKS;
  } catch {
    return 0;
  }
}

/** A `sluice run --group` process, with its stderr lines and when each arrived. */
class Member {
  readonly lines: Array<{ at: number; text: string }> = [];
  readonly proc: ChildProcess;

  constructor(args: string[], cli: string) {
    this.proc = spawn(process.execPath, [...MEMBER_NODE_FLAGS, cli, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
    let rest = '';
    this.proc.stderr!.on('data', (d: Buffer) => {
      const text = rest + d.toString();
      const parts = text.split('\n');
      rest = parts.pop()!;
      for (const line of parts) this.lines.push({ at: Date.now(), text: line });
    });
    // A member that fails ends the bench with what it said, instead of leaving it waiting for output.
    this.proc.once('exit', (code) => {
      if (code === null || code === 0) return;
      console.error(`a member exited with code ${code}:\n${this.lines.map((l) => l.text).join('\n')}${rest}`);
      process.exit(1);
    });
  }

  /** The tasks of the member's latest assignment, and whether each of them runs (restored) yet. */
  state(): { held: number[]; running: boolean } {
    let held: number[] = [];
    let restored = new Set<number>();
    for (const { text } of this.lines) {
      const g = /generation \d+: kept tasks ([^;]*); took ([^;]*);/.exec(text);
      if (g) {
        const list = (s: string) => (s === 'none' ? [] : s.split(', ').map(Number));
        held = [...list(g[1]), ...list(g[2])];
        restored = new Set(list(g[1]));
      }
      const r = /task (\d+) restored in/.exec(text);
      if (r) restored.add(Number(r[1]));
    }
    return { held, running: held.every((t) => restored.has(t)) };
  }

  stop(): Promise<void> {
    return new Promise((resolve) => {
      if (this.proc.exitCode !== null || this.proc.signalCode !== null) return resolve();
      this.proc.once('exit', () => resolve());
      this.proc.kill('SIGTERM');
    });
  }
}

function member(group: string, out: string, topic: string, extra: string[] = [], cli = CLI): Member {
  return new Member(
    [
      'run',
      'bank-account',
      '--source',
      `kafka://${broker.bootstrap}/${topic}?startingOffsets=earliest&maxOffsetsPerTrigger=20000`,
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
      ...extra,
    ],
    cli,
  );
}

async function records(topic: string): Promise<number> {
  const parts = await client.fetchOffsets([topic]).catch(() => []);
  return parts.reduce((n, p) => n + p.high, 0);
}

async function until(done: () => boolean | Promise<boolean>, what: string, timeoutMs = 900_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await done())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Whether every task runs on exactly one of `ms`, each member with its share. */
function settled(ms: Member[]): boolean {
  const states = ms.map((m) => m.state());
  const all = states.flatMap((s) => s.held);
  return states.every((s) => s.running && s.held.length === PARTITIONS / ms.length) && new Set(all).size === PARTITIONS;
}

interface Throughput {
  eventsPerSecond: number;
  /** Operations the members processed per CPU second of theirs. */
  perMemberCpu: number;
  /** Members' and broker's CPU use over the timed span, in cores. */
  memberCores: number;
  brokerCores: number;
  /** Share of the input written before the group settled (not timed). */
  before: number;
  /** Batches with input that the members' queries ran in the timed span, and their mean input rows. */
  batches: number;
  rowsPerBatch: number;
  /**
   * Share of the input in the partitions of the member holding the most (Zipf-distributed accounts): two members
   * cannot go faster than one by more than its inverse.
   */
  busiest: number;
}

/** The throughput runs' operations as lines per partition, each account always in one partition. */
function operations(): string[][] {
  const parts: string[][] = Array.from({ length: PARTITIONS }, () => []);
  for (const op of bank({ count: EVENTS, accounts: 10_000, seed: 1 })) {
    parts[Number(op.account.slice(op.account.lastIndexOf('-') + 1)) % PARTITIONS].push(JSON.stringify(op));
  }
  return parts;
}

/** Writes operations [from, until) of the stream into `topic`, each partition its share of them. */
function writeOperations(topic: string, from: number, until: number): void {
  const total = input.reduce((n, p) => n + p.length, 0);
  for (const [p, lines] of input.entries()) {
    const slice = lines.slice(Math.round((from * lines.length) / total), Math.round((until * lines.length) / total));
    if (slice.length > 0) produceWithKcat(broker.bootstrap, topic, slice, p);
  }
}

async function throughput(members: number, cli = CLI): Promise<Throughput> {
  const id = `g${++groups}`;
  const topic = `ops-${id}`;
  await broker.command(`topic ${topic} ${PARTITIONS}`);
  await broker.command(`topic out-${id} 2`);
  let written = Math.min(EVENTS, 2 * THROUGHPUT_ROUND);
  writeOperations(topic, 0, written);
  const logs = Array.from({ length: members }, (_, i) => path.join(root, `${id}-${i}.jsonl`));
  const ms = logs.map((log) => member(id, `out-${id}`, topic, ['--progress-log', log], cli));
  await until(() => settled(ms), 'the group to settle');
  const t0 = Date.now();
  const busiest = Math.max(...ms.map((m) => m.state().held.reduce((n, t) => n + input[t].length, 0))) / EVENTS;
  const out0 = await records(`out-${id}`);
  const cpu0 = ms.map((m) => cpuOf(m.proc.pid!));
  const broker0 = cpuOf(broker.pid);
  while (written < EVENTS) {
    await until(async () => (await records(`out-${id}`)) >= written - THROUGHPUT_ROUND, 'a round of output');
    const next = Math.min(EVENTS, written + THROUGHPUT_ROUND);
    writeOperations(topic, written, next);
    written = next;
  }
  await until(async () => (await records(`out-${id}`)) >= EVENTS, 'the output');
  const seconds = (Date.now() - t0) / 1000;
  const memberCpu = ms.reduce((n, m, i) => n + cpuOf(m.proc.pid!) - cpu0[i], 0);
  const brokerCpu = cpuOf(broker.pid) - broker0;
  await Promise.all(ms.map((m) => m.stop()));
  const sizes = batchSizes(logs, t0);
  return {
    batches: sizes.length,
    rowsPerBatch: sizes.reduce((n, r) => n + r, 0) / Math.max(1, sizes.length),
    eventsPerSecond: (EVENTS - out0) / seconds,
    perMemberCpu: (EVENTS - out0) / memberCpu,
    memberCores: memberCpu / seconds,
    brokerCores: brokerCpu / seconds,
    before: out0 / EVENTS,
    busiest,
  };
}

/** Input rows of each batch with input that the progress logs `logs` show started at `since` or later. */
function batchSizes(logs: string[], since: number): number[] {
  const sizes: number[] = [];
  for (const log of logs) {
    if (!fs.existsSync(log)) continue;
    for (const line of fs.readFileSync(log, 'utf8').split('\n')) {
      if (!line) continue;
      const p = JSON.parse(line) as { timestamp: string; numInputRows: number };
      if (p.numInputRows > 0 && Date.parse(p.timestamp) >= since) sizes.push(p.numInputRows);
    }
  }
  return sizes;
}

/**
 * `count` deposits, the i-th (from `first`) into account i mod `accounts`, each account always in partition
 * (its number mod the partition count), as a keyed topic holds it.
 */
function deposits(topic: string, first: number, count: number, accounts: number): void {
  const lines: string[][] = Array.from({ length: PARTITIONS }, () => []);
  for (let i = first; i < first + count; i++) {
    const a = i % accounts;
    lines[a % PARTITIONS].push(JSON.stringify({ account: idOf('acct', a, accounts), amount: 100 }));
  }
  for (const [p, part] of lines.entries()) produceWithKcat(broker.bootstrap, topic, part, p);
}

/** Peak resident memory of process `pid` so far, in MB. */
function peakRssMb(pid: number): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : 0;
}

/**
 * State rows of each task, from the latest batch of each of its queries in the progress logs: bank-account's two
 * outputs each keep a balance per account, so a task restores two rows per account.
 */
function stateRows(logs: string[]): Map<number, number> {
  const latest = new Map<string, { task: number; rows: number }>();
  for (const log of logs) {
    if (!fs.existsSync(log)) continue;
    for (const line of fs.readFileSync(log, 'utf8').split('\n')) {
      if (!line) continue;
      const p = JSON.parse(line) as { output: string; task: number; stateOperators: Array<{ numRowsTotal: number }> };
      latest.set(`${p.task}/${p.output}`, {
        task: p.task,
        rows: p.stateOperators.reduce((n, o) => n + o.numRowsTotal, 0),
      });
    }
  }
  const rows = new Map<number, number>();
  for (const { task, rows: n } of latest.values()) rows.set(task, (rows.get(task) ?? 0) + n);
  return rows;
}

async function failover(store: string): Promise<void> {
  const id = `failover-${store}`;
  const topic = `ops-${id}`;
  await broker.command(`topic ${topic} ${PARTITIONS}`);
  await broker.command(`topic out-${id} 2`);
  const logs = ['a', 'b'].map((n) => path.join(root, `${id}-${n}.jsonl`));
  const [a, b] = logs.map((log) => member(id, `out-${id}`, topic, ['--state-store', store, '--progress-log', log]));
  await until(() => settled([a, b]), 'the group to settle');
  let written = 0;
  const built = Date.now();
  while (written < FAILOVER_EVENTS) {
    const n = Math.min(ROUND, FAILOVER_EVENTS - written);
    deposits(topic, written, n, FAILOVER_ACCOUNTS);
    written += n;
    await until(async () => (await records(`out-${id}`)) >= written, 'a round of output');
  }
  // A batch's progress line is logged after its output is written: let the last ones in.
  await new Promise((r) => setTimeout(r, 3000));
  const keys = stateRows(logs);
  const total = [...keys.values()].reduce((x, y) => x + y, 0);
  console.log(
    `failover, ${store} store: state built from ${written} operations in ${((Date.now() - built) / 1000).toFixed(0)} s: ${total} state rows over ${keys.size} tasks`,
  );
  // One member dies, and input arrives on every partition while its tasks wait for their new owner.
  const moved = a.state().held;
  const movedKeys = moved.reduce((n, t) => n + (keys.get(t) ?? 0), 0);
  const from = b.lines.length;
  const killed = Date.now();
  a.proc.kill('SIGKILL');
  deposits(topic, written, 8000, FAILOVER_ACCOUNTS);
  written += 8000;
  await until(async () => (await records(`out-${id}`)) >= written, 'the output after the kill');
  await until(
    () => moved.every((t) => b.lines.slice(from).some((l) => l.text.includes(`task ${t} restored in`))),
    'the restores to be logged',
  );
  const resumed = (Date.now() - killed) / 1000;
  const after = b.lines.slice(from);
  const assigned = after.find((l) => /generation \d+: kept tasks/.test(l.text));
  const restores = after
    .map((l) => /task (\d+) restored in ([\d.]+) s/.exec(l.text))
    .filter((r) => r !== null)
    .map((r) => Number(r[2]));
  const restoreWall = Math.max(0, ...restores);
  console.log(
    `  SIGKILL of a member holding tasks ${moved.join(', ')} (${movedKeys} state rows): the survivor was assigned them ` +
      `${assigned ? ((assigned.at - killed) / 1000).toFixed(1) : '?'} s after the kill, restored them in ${restoreWall.toFixed(1)} s ` +
      `(${movedKeys > 0 ? ((restoreWall * 1e6) / movedKeys).toFixed(2) : '?'} s per million rows), and every operation was written ` +
      `${resumed.toFixed(1)} s after the kill (session timeout ${SESSION_TIMEOUT}); the survivor's peak resident memory ${Math.round(peakRssMb(b.proc.pid!))} MB`,
  );
  await b.stop();
  // The same state on a restart, in the same invocation: a new member alone takes all the tasks from their
  // checkpoints, as a single process restarted would.
  const c = member(id, `out-${id}`, topic, ['--state-store', store]);
  await until(() => settled([c]), 'the restarted member to run every task');
  const restarted = Math.max(
    0,
    ...c.lines.map((l) => /task \d+ restored in ([\d.]+) s/.exec(l.text)).map((r) => (r ? Number(r[1]) : 0)),
  );
  console.log(
    `  restart: a new member alone restored all ${PARTITIONS} tasks (${total} state rows) in ${restarted.toFixed(1)} s ` +
      `(${total > 0 ? ((restarted * 1e6) / total).toFixed(2) : '?'} s per million rows)`,
  );
  await c.stop();
}

/**
 * CPU of idle members, in cores: `members` members of a new group over the 8-partition topic read it to its end,
 * then each member's CPU over `IDLE_SECONDS` with no new input.
 */
async function idleCores(members: number): Promise<number[]> {
  const id = `idle-${++groups}`;
  const topic = `ops-${id}`;
  await broker.command(`topic ${topic} ${PARTITIONS}`);
  await broker.command(`topic out-${id} 2`);
  deposits(topic, 0, 800, 800);
  const ms = Array.from({ length: members }, () => member(id, `out-${id}`, topic));
  await until(() => settled(ms), 'the group to settle');
  await until(async () => (await records(`out-${id}`)) >= 800, 'the output');
  // The last batches' commits and a few idle triggers.
  await new Promise((r) => setTimeout(r, 2000));
  const cpu0 = ms.map((m) => cpuOf(m.proc.pid!));
  const t0 = Date.now();
  await new Promise((r) => setTimeout(r, IDLE_SECONDS * 1000));
  const seconds = (Date.now() - t0) / 1000;
  const cores = ms.map((m, i) => (cpuOf(m.proc.pid!) - cpu0[i]) / seconds);
  await Promise.all(ms.map((m) => m.stop()));
  return cores;
}

if (IDLE_SECONDS > 0) {
  const one = await idleCores(1);
  const two = await idleCores(2);
  console.log(
    `idle, trigger 100 ms, ${IDLE_SECONDS} s: one member holding 8 tasks ${one[0].toFixed(3)} cores; ` +
      `two members holding 4 each ${two.map((c) => c.toFixed(3)).join(' and ')} cores; load average ${os.loadavg()[0].toFixed(1)}`,
  );
}
const input = RUNS > 0 ? operations() : [];
const show = (t: Throughput) =>
  `${Math.round(t.eventsPerSecond)} events/s, ${Math.round(t.perMemberCpu)} per member CPU s, members ${t.memberCores.toFixed(2)} cores, broker ${t.brokerCores.toFixed(2)} cores, ${(t.before * 100).toFixed(0)}% before settling, ${t.batches} batches of ${Math.round(t.rowsPerBatch)} rows, busiest member ${(t.busiest * 100).toFixed(1)}% of the input`;
const med = (xs: Throughput[], f: (t: Throughput) => number) => median(xs.map(f));
if (VS) {
  const old: Throughput[] = [];
  const now: Throughput[] = [];
  for (let r = 0; r < RUNS; r++) {
    if (r % 2 === 0) {
      old.push(await throughput(1, VS_CLI));
      now.push(await throughput(1));
    } else {
      now.push(await throughput(1));
      old.push(await throughput(1, VS_CLI));
    }
    const ratio = now.at(-1)!.perMemberCpu / old.at(-1)!.perMemberCpu;
    console.log(
      `run ${r + 1}: ${VS}: ${show(old.at(-1)!)}; this build: ${show(now.at(-1)!)}; this build ${ratio.toFixed(2)}x per CPU second; load average ${os.loadavg()[0].toFixed(1)}`,
    );
  }
  if (RUNS > 0) {
    const o = med(old, (t) => t.perMemberCpu);
    const n = med(now, (t) => t.perMemberCpu);
    console.log(
      `median per member CPU second: ${VS} ${Math.round(o)}, this build ${Math.round(n)} (${(n / o).toFixed(2)}x); ` +
        `members' cores ${med(old, (t) => t.memberCores).toFixed(2)} and ${med(now, (t) => t.memberCores).toFixed(2)}; load average ${os.loadavg()[0].toFixed(1)}`,
    );
  }
} else {
  const one: Throughput[] = [];
  const two: Throughput[] = [];
  for (let r = 0; r < RUNS; r++) {
    if (r % 2 === 0) {
      one.push(await throughput(1));
      two.push(await throughput(2));
    } else {
      two.push(await throughput(2));
      one.push(await throughput(1));
    }
    console.log(`run ${r + 1}: one member ${show(one.at(-1)!)}; two members ${show(two.at(-1)!)}`);
  }
  if (RUNS > 0)
    console.log(
      `median: one member ${Math.round(med(one, (t) => t.eventsPerSecond))} events/s, two members ${Math.round(med(two, (t) => t.eventsPerSecond))} events/s, ratio ${(med(two, (t) => t.eventsPerSecond) / med(one, (t) => t.eventsPerSecond)).toFixed(2)}x; ` +
        `per member CPU second ${Math.round(med(one, (t) => t.perMemberCpu))} and ${Math.round(med(two, (t) => t.perMemberCpu))} (${(med(two, (t) => t.perMemberCpu) / med(one, (t) => t.perMemberCpu)).toFixed(2)}x); ` +
        `broker ${med(one, (t) => t.brokerCores).toFixed(2)} and ${med(two, (t) => t.brokerCores).toFixed(2)} cores; load average ${os.loadavg()[0].toFixed(1)}`,
    );
}
for (const store of STORES) if (FAILOVER_EVENTS > 0) await failover(store);
await client.close();
await broker.stop();
fs.rmSync(root, { recursive: true, force: true });
