/**
 * Benchmark: end-to-end latency, from producing an event to seeing its result in the output.
 *
 *   node dist/bench/latency.js [--seconds 20] [--rates 1000,10000,50000] [--triggers 0,100ms]
 *                              [--queries stateless,aggregate] [--file] [--threads 0] [--runs 1] [--vs DIST]
 *
 * The bench starts the test broker (test/support/kafka-broker.ts) and, for each query, rate and trigger, a
 * `sluice run` process of bench/apps/latency.ts reading topic `in-N` and writing topic `out-N`. It produces
 * JSON events `{user_id, amount, sent}` keyed by user at a fixed rate (a request every 5 ms), `sent` being
 * the time the event is handed to the producer, and reads the output with kcat (librdkafka, an independent
 * client) as it appears. An event is visible when its output record arrives: for the stateless query
 * (filter and projection) the record that carries it; for the aggregate (a running count per user, update
 * mode) the first record of its user whose count includes it. The first `--warmup` seconds (default 3) are
 * left out. Prints p50, p99 and max produce-to-visible latency, the largest batch duration (progress
 * `triggerExecution`) and where its time went, beside the broker alone (kcat reading the input topic) as the
 * baseline measured in the same invocation.
 *
 * kcat reads read_committed with a fetch wait of 1 ms: the test broker holds an empty Fetch for the whole wait
 * instead of answering when records arrive, so the wait is how late the consumer can see a visible record.
 * Each run also prints the latency budget of its events, as means: `produce` (sent to acknowledged by the
 * broker), `to batch` (acknowledged to the start of the batch that read it), `batch` (that start to the end of
 * the batch's sink, from progress: `timestamp` + `triggerExecution` - `commitOffsets`, which runs from the
 * sink's end), `consumer` (the sink's end to kcat printing it). The output record's batch is the one its
 * `sluice` header names.
 *
 * `--file` adds the same queries from a file source (a JSON lines file written every 10 ms, renamed into
 * place) to the file sink, the consumer listing the output directory every 2 ms.
 *
 * `--vs DIST` runs every configuration first with the sluice build in DIST (e.g. a copy of an earlier `dist`),
 * then with this one, and prints the ratios of their p50 and p99: a before-and-after in one invocation.
 * `--runs N` runs each configuration N times (the builds alternating) and prints the medians, which a
 * loaded machine needs; each run also counts its batches over 500 ms. Every sluice run's stderr is kept in a
 * file under `--logs DIR` (default: a new directory in the OS temp directory, printed at the start), and a run
 * that ends before it is stopped says how (exit code or signal) with the end of its stderr.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { QueryProgress } from '../lib/exec/progress.js';
import { KafkaClient } from '../lib/kafka/client.js';
import { sleep } from '../lib/util/clock.js';
import { startBroker, type TestBroker } from '../test/support/kafka-broker.js';

/** A sluice build: its command line and its latency app. */
interface Build {
  label: string;
  cli: string;
  app: string;
}
const THIS_BUILD: Build = {
  label: 'this build',
  cli: fileURLToPath(new URL('../lib/cli/main.js', import.meta.url)),
  app: fileURLToPath(new URL('./apps/latency.js', import.meta.url)),
};
const PARTITIONS = 4;
/**
 * Why a query that falls behind on the test broker stops: librdkafka's mock keeps at most 100,000 records or 5 MB
 * per partition (rdkafka_mock.c), about half a minute of this bench's input at 10K events/s.
 */
const MOCK_RETENTION =
  'the test broker keeps at most 100,000 records or 5 MB per partition (about half a minute of input at 10K/s): ' +
  'the query fell further behind than that, and its unread input was deleted';
const USERS = 1000;

const USAGE = `usage: node dist/bench/latency.js [options]

Produce-to-visible latency of a stateless and an aggregating query, Kafka to Kafka (and file to file with
--file), beside the broker alone; p50, p99, max, and the batches' phases from progress durationMs.

  --seconds S        length of each run (default 20)
  --warmup S         seconds left out at the start of each run (default 3)
  --rates R,...      events per second (default 1000,10000,50000)
  --triggers T,...   trigger intervals, 0 for as soon as the last batch ends (default 0,100ms)
  --queries Q,...    stateless, aggregate (default both)
  --threads N        worker threads of the query (default 0)
  --file             also file source to file sink
  --runs N           runs per configuration, builds alternating; medians printed (default 1)
  --vs DIST          also run the build in DIST (a copy of an earlier dist) and print the ratios
  --logs DIR         keep each sluice run's stderr in DIR (default: a new directory in the OS temp directory)
  --cpu-prof DIR     every sluice run writes a V8 CPU profile into DIR when it stops
  --help             this text
`;
if (process.argv.includes('--help')) {
  process.stdout.write(USAGE);
  process.exit(0);
}

function flag(name: string, fallback: string): string {
  const at = process.argv.indexOf(`--${name}`);
  return at >= 0 ? process.argv[at + 1] : fallback;
}
const SECONDS = Number(flag('seconds', '20'));
const WARMUP_S = Number(flag('warmup', '3'));
const RATES = flag('rates', '1000,10000,50000').split(',').map(Number);
const TRIGGERS = flag('triggers', '0,100ms').split(',');
const QUERIES = flag('queries', 'stateless,aggregate').split(',');
const THREADS = flag('threads', '0');
const FILES = process.argv.includes('--file');
const VS = flag('vs', '');
const RUNS = Number(flag('runs', '1'));
const LOGS = flag('logs', '') || fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-latency-logs-'));
fs.mkdirSync(LOGS, { recursive: true });
/** With `--cpu-prof DIR`, every sluice run writes a V8 CPU profile into DIR when it stops. */
const PROFILE_DIR = flag('cpu-prof', '');
/** A batch longer than this counts as slow (the target: none in a 5-minute run). */
const SLOW_BATCH_MS = 500;
const BUILDS: Build[] = VS
  ? [
      {
        label: VS,
        cli: path.resolve(VS, 'lib/cli/main.js'),
        app: path.resolve(VS, 'bench/apps/latency.js'),
      },
      THIS_BUILD,
    ]
  : [THIS_BUILD];

/** Wall time in ms, sub-millisecond, comparable across this process's clocks. */
const now = (): number => performance.timeOrigin + performance.now();

/** An event seen in the output: when it was sent, when the broker acknowledged it, seen, and its batch. */
interface Seen {
  sent: number;
  acked: number;
  at: number;
  batchId: number;
}

/** Latencies of the events of one run, and what the query's progress said. */
interface Measured {
  measureFrom: number;
  latencies: number[];
  seen: Seen[];
  expected: number;
  progress: QueryProgress[];
}

/** Events produced so far: their send times per user, in order, and per user the next one not yet seen. */
class Ledger {
  readonly sent = new Map<string, number[]>();
  readonly seen = new Map<string, number>();
  readonly latencies: number[] = [];
  readonly seenEvents: Seen[] = [];
  /** When the broker acknowledged the events sent at a time (all of a tick share their send time). */
  readonly acked = new Map<number, number>();
  produced = 0;
  constructor(
    readonly measureFrom: number,
    /** Whether the query keeps an event of this amount (the stateless query filters some out). */
    readonly keeps: (amount: number) => boolean,
  ) {}

  /** Records an event sent at `at`; `kept` false when the query drops it, so that no output ever shows it. */
  add(user: string, at: number, kept = true): void {
    this.produced++;
    if (!kept) return;
    let list = this.sent.get(user);
    if (!list) {
      list = [];
      this.sent.set(user, list);
    }
    list.push(at);
  }

  /** Events measured: those sent after the warm-up. */
  get expected(): number {
    let n = 0;
    for (const list of this.sent.values()) for (const t of list) if (t >= this.measureFrom) n++;
    return n;
  }

  /** An output record of batch `batchId` (-1: not known) carrying one event sent at `sent`. */
  visibleOne(sent: number, at: number, batchId: number): void {
    if (sent < this.measureFrom) return;
    this.latencies.push(at - sent);
    this.seenEvents.push({ sent, acked: this.acked.get(sent) ?? Number.NaN, at, batchId });
  }

  /** A running count of `n` events of `user`: every event of that user up to the n-th is visible now. */
  visibleUpTo(user: string, n: number, at: number, batchId: number): void {
    const list = this.sent.get(user) ?? [];
    const from = this.seen.get(user) ?? 0;
    for (let i = from; i < Math.min(n, list.length); i++) this.visibleOne(list[i], at, batchId);
    if (n > from) this.seen.set(user, n);
  }
}

function event(i: number, sent: number): { user: string; amount: number; line: string } {
  const user = `u${(i * 7919) % USERS}`;
  const amount = (i * 31) % 100;
  return { user, amount, line: JSON.stringify({ user_id: user, amount, sent }) };
}

/** What the query of bench/apps/latency.ts keeps: the stateless one filters `amount >= 1`. */
function keepsOf(query: string): (amount: number) => boolean {
  return query === 'stateless' ? (amount) => amount >= 1 : () => true;
}

/**
 * Hands `emit` the events due at `rate` events/s every `tickMs` for `seconds`, all sent now, after recording
 * them in the ledger; a slow `emit` makes the next ticks larger, not fewer.
 */
async function paced(
  rate: number,
  seconds: number,
  tickMs: number,
  ledger: Ledger,
  emit: (events: { user: string; line: string }[], tick: number) => Promise<unknown> | undefined,
): Promise<void> {
  const start = now();
  let i = 0;
  for (let tick = 1; ; tick++) {
    const t = now();
    if (t - start >= seconds * 1000) break;
    const due = Math.floor(((t - start) / 1000) * rate);
    const events = [];
    for (; i < due; i++) {
      const e = event(i, t);
      ledger.add(e.user, t, ledger.keeps(e.amount));
      events.push(e);
    }
    if (events.length > 0) {
      await emit(events, tick);
      ledger.acked.set(t, now());
    }
    await sleep(Math.max(0, start + tick * tickMs - now()));
  }
}

/** Produces `rate` events/s for `seconds` in requests every 5 ms, each keyed by user. */
function produceKafka(client: KafkaClient, topic: string, rate: number, seconds: number, ledger: Ledger) {
  return paced(rate, seconds, 5, ledger, (events) =>
    client.produce(
      topic,
      events.map((e) => ({ key: e.user, value: e.line })),
    ),
  );
}

/** Writes `rate` events/s for `seconds` as one file every 10 ms, renamed into place once complete. */
function produceFiles(dir: string, rate: number, seconds: number, ledger: Ledger) {
  return paced(rate, seconds, 10, ledger, (events, tick) => {
    const name = `in-${String(tick).padStart(8, '0')}.json`;
    fs.writeFileSync(path.join(dir, `.${name}`), `${events.map((e) => e.line).join('\n')}\n`);
    fs.renameSync(path.join(dir, `.${name}`), path.join(dir, name));
    return undefined;
  });
}

/** An output row as it arrives, with the batch its `sluice` header names (-1 when it has none). */
type OnRow = (value: string, at: number, batchId: number) => void;

/**
 * Hands every output row to `onRow` as it arrives: kcat tailing a topic from its start, read_committed, asking
 * again every millisecond while there is nothing new (see the module comment).
 */
function tailTopic(bootstrap: string, topic: string, onRow: OnRow): ChildProcess {
  const kcat = spawn(
    'kcat',
    [
      ...['-b', bootstrap, '-C', '-t', topic, '-o', 'beginning', '-u', '-q', '-f', '%h\t%s\n'],
      ...['-X', 'fetch.wait.max.ms=1', '-X', 'isolation.level=read_committed'],
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  createInterface({ input: kcat.stdout! }).on('line', (line) => {
    const at = now();
    const tab = line.indexOf('\t');
    // The header is `sluice=<queryId>:<batchId>:<seq>`; the input topic's records have none.
    const origin = /(?:^|,)sluice=[^,]*:(\d+):\d+(?:,|$)/.exec(line.slice(0, tab));
    onRow(line.slice(tab + 1), at, origin ? Number(origin[1]) : -1);
  });
  return kcat;
}

/** Hands every row of each new output file to `onRow`, listing the directory every 2 ms. */
function tailDirectory(dir: string, onRow: OnRow): { kill(): void } {
  const done = new Set<string>();
  const timer = setInterval(() => {
    if (!fs.existsSync(dir)) return;
    for (const f of fs.readdirSync(dir)) {
      if (!f.startsWith('part-') || done.has(f)) continue;
      done.add(f);
      const at = now();
      for (const line of fs.readFileSync(path.join(dir, f), 'utf8').split('\n')) if (line) onRow(line, at, -1);
    }
  }, 2);
  return { kill: () => clearInterval(timer) };
}

function rowHandler(query: string, ledger: Ledger): OnRow {
  return (value, at, batchId) => {
    const row = JSON.parse(value) as { user_id: string; sent: number; n?: number };
    if (query === 'aggregate') ledger.visibleUpTo(row.user_id, row.n!, at, batchId);
    else ledger.visibleOne(row.sent, at, batchId);
  };
}

/**
 * Starts `sluice run` of the latency app and resolves once its queries run. Its stderr goes to a file under
 * LOGS as well, kept after the run.
 */
async function startSluice(build: Build, query: string, source: string, sink: string, trigger: string, dir: string) {
  const progressLog = path.join(dir, 'progress.jsonl');
  const stderrFile = path.join(LOGS, `${query}-${path.basename(dir)}.stderr`);
  const stderrLog = fs.createWriteStream(stderrFile);
  const startedAt = now();
  const child = spawn(
    process.execPath,
    [
      ...(PROFILE_DIR ? ['--cpu-prof', `--cpu-prof-dir=${PROFILE_DIR}`] : []),
      build.cli,
      'run',
      build.app,
      '--query',
      query,
      '--source',
      source,
      '--sink',
      `out=${sink}`,
      '--checkpoint',
      path.join(dir, 'ckpt'),
      '--trigger',
      trigger,
      '--threads',
      THREADS,
      '--progress-log',
      progressLog,
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  let stopping = false;
  const exited = new Promise<void>((resolve) =>
    child.once('close', (code, signal) => {
      stderrLog.end();
      // A run that ends before it is stopped says why, instead of leaving a gap in the output.
      if (!stopping)
        console.log(
          `    sluice run ended by itself after ${((now() - startedAt) / 1000).toFixed(1)} s ` +
            `(${signal ? `signal ${signal}` : `exit code ${code}`}); its stderr is in ${stderrFile}, ending:\n` +
            stderr.slice(-2000) +
            (stderr.includes('were deleted from the broker') ? `\n    ${MOCK_RETENTION}` : ''),
        );
      resolve();
    }),
  );
  await new Promise<void>((resolve, reject) => {
    child.stderr!.on('data', (d: Buffer) => {
      stderrLog.write(d);
      stderr = (stderr + d.toString()).slice(-4000);
      if (stderr.includes('sluice: running')) resolve();
    });
    void exited.then(() => reject(new Error(`sluice run exited ${child.exitCode}: ${stderr}`)));
  });
  return {
    async stop(): Promise<QueryProgress[]> {
      stopping = true;
      child.kill('SIGINT');
      await exited;
      return fs.existsSync(progressLog)
        ? fs
            .readFileSync(progressLog, 'utf8')
            .split('\n')
            .filter(Boolean)
            .map((l) => JSON.parse(l) as QueryProgress)
        : [];
    },
  };
}

let topics = 0;
async function runKafka(
  build: Build,
  broker: TestBroker,
  client: KafkaClient,
  query: string,
  rate: number,
  trigger: string,
) {
  const n = ++topics;
  await broker.command(`topic in-${n} ${PARTITIONS}`);
  await broker.command(`topic out-${n} ${PARTITIONS}`);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-latency-'));
  const kafka = `kafka://${broker.bootstrap}`;
  const sluice = await startSluice(
    build,
    query,
    `${kafka}/in-${n}?startingOffsets=earliest`,
    `${kafka}/out-${n}`,
    trigger,
    dir,
  );
  const measured = await measure(
    query,
    (onRow) => tailTopic(broker.bootstrap, `out-${n}`, onRow),
    (ledger) => produceKafka(client, `in-${n}`, rate, SECONDS, ledger),
  );
  const progress = await sluice.stop();
  fs.rmSync(dir, { recursive: true, force: true });
  return { ...measured, progress };
}

async function runFiles(build: Build, query: string, rate: number, trigger: string): Promise<Measured> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-latency-'));
  fs.mkdirSync(path.join(dir, 'in'));
  const sluice = await startSluice(build, query, `file:${dir}/in`, `file:${dir}/out`, trigger, dir);
  const measured = await measure(
    query,
    (onRow) => tailDirectory(path.join(dir, 'out'), onRow),
    (ledger) => produceFiles(path.join(dir, 'in'), rate, SECONDS, ledger),
  );
  const progress = await sluice.stop();
  fs.rmSync(dir, { recursive: true, force: true });
  return { ...measured, progress };
}

/** The broker alone: kcat sees the input records as they are produced. */
async function runBroker(broker: TestBroker, client: KafkaClient, rate: number): Promise<Measured> {
  const n = ++topics;
  await broker.command(`topic in-${n} ${PARTITIONS}`);
  const measured = await measure(
    'broker',
    (onRow) => tailTopic(broker.bootstrap, `in-${n}`, onRow),
    (ledger) => produceKafka(client, `in-${n}`, rate, SECONDS, ledger),
  );
  return { ...measured, progress: [] };
}

/**
 * One run's latencies: the output tailed by `tail`, events produced by `produce`, then every event the query
 * keeps awaited for up to 10 s.
 */
async function measure(
  query: string,
  tail: (onRow: OnRow) => { kill(): unknown },
  produce: (ledger: Ledger) => Promise<void>,
): Promise<Omit<Measured, 'progress'>> {
  const ledger = new Ledger(now() + WARMUP_S * 1000, keepsOf(query));
  const tailing = tail(rowHandler(query, ledger));
  await produce(ledger);
  const until = now() + 10_000;
  while (ledger.latencies.length < ledger.expected && now() < until) await sleep(20);
  tailing.kill();
  return {
    measureFrom: ledger.measureFrom,
    latencies: ledger.latencies,
    seen: ledger.seenEvents,
    expected: ledger.expected,
  };
}

function percentile(sorted: number[], p: number): number {
  return sorted.length === 0 ? Number.NaN : sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))];
}

/** What one run measured, as the summary over several runs takes it. */
interface Figures {
  p50: number;
  p99: number;
  max: number;
  /** Batches after the warm-up, their mean duration, the slowest, and how many took over SLOW_BATCH_MS. */
  batches: number;
  meanBatch: number;
  slowest: number;
  /** The slowest batch's id, phases and source figures (broker retries show there), to tell why it was slow. */
  slowestBatch: string;
  slow: number;
  /** Mean of each progress durationMs phase over those batches. */
  phases: Record<string, number>;
  /** The latency budget: the mean of each part of the events' latency, and of the latency (see the module comment). */
  budget: Record<string, number>;
}

/**
 * The mean of each part of the measured events' latency: `produce`, `to batch`, `batch`, `consumer` for events
 * whose batch is known, `after produce` for the others (the broker alone, the file sink), and `latency`.
 */
function budgetOf(m: Measured): Record<string, number> {
  const byBatch = new Map(m.progress.map((p) => [p.batchId, p]));
  const sums: Record<string, { sum: number; n: number }> = {};
  const add = (part: string, ms: number): void => {
    if (!Number.isFinite(ms)) return;
    const acc = sums[part] ?? { sum: 0, n: 0 };
    acc.sum += ms;
    acc.n++;
    sums[part] = acc;
  };
  for (const e of m.seen) {
    add('produce', e.acked - e.sent);
    const p = byBatch.get(e.batchId);
    if (p) {
      const start = Date.parse(p.timestamp);
      const visible = start + p.durationMs.triggerExecution - p.durationMs.commitOffsets;
      add('to batch', start - e.acked);
      add('batch', visible - start);
      add('consumer', e.at - visible);
    } else {
      add('after produce', e.at - e.acked);
    }
    add('latency', e.at - e.sent);
  }
  return Object.fromEntries(Object.entries(sums).map(([k, { sum, n }]) => [k, sum / n]));
}

/** The phases of `d` largest first, `n` of them, as `name ms` (addBatch, which holds the others, left out). */
function largest(d: Record<string, number>, n: number): string {
  return Object.entries(d)
    .filter(([k]) => k !== 'triggerExecution' && k !== 'addBatch')
    .sort((a, b) => b[1] - a[1])
    .slice(0, n)
    .map(([k, v]) => `${k} ${v.toFixed(0)}`)
    .join(', ');
}

/** One run's latency percentiles and its batches after the warm-up. */
function figuresOf(m: Measured): Figures {
  const s = [...m.latencies].sort((a, b) => a - b);
  const after = m.progress.filter((p) => Date.parse(p.timestamp) >= m.measureFrom);
  const phases: Record<string, number> = {};
  for (const p of after)
    for (const [k, v] of Object.entries(p.durationMs)) phases[k] = (phases[k] ?? 0) + v / after.length;
  const durations = after.map((p) => p.durationMs.triggerExecution);
  const worst = after.reduce<QueryProgress | null>(
    (w, p) => (w === null || p.durationMs.triggerExecution > w.durationMs.triggerExecution ? p : w),
    null,
  );
  return {
    p50: percentile(s, 0.5),
    p99: percentile(s, 0.99),
    max: s[s.length - 1] ?? Number.NaN,
    batches: after.length,
    meanBatch: phases.triggerExecution ?? Number.NaN,
    slowest: durations.reduce((a, b) => Math.max(a, b), 0),
    slowestBatch: worst ? describeBatch(worst) : '',
    slow: durations.filter((d) => d > SLOW_BATCH_MS).length,
    phases,
    budget: budgetOf(m),
  };
}

/** A batch as `batch N at TIME, R rows: phases; source figures`, for the slowest batch of a run. */
function describeBatch(p: QueryProgress): string {
  const figures = p.sources
    .flatMap((s) => Object.entries(s.metrics ?? {}))
    .filter(([k]) => !k.endsWith('OffsetsBehindLatest') || k === 'totalOffsetsBehindLatest')
    .map(([k, v]) => `${k} ${v}`);
  return (
    `batch ${p.batchId} at ${p.timestamp.slice(11, 23)}, ${p.numInputRows} rows: ${largest({ ...p.durationMs }, 6)}` +
    (figures.length > 0 ? `; ${figures.join(', ')}` : '')
  );
}

function line(label: string, f: Figures, extra: string): string {
  const parts = Object.entries(f.budget).filter(([k]) => k !== 'latency');
  const budget =
    parts.length === 0
      ? ''
      : `\n    budget, means: ${parts.map(([k, v]) => `${k} ${v.toFixed(1)}`).join(', ')} ms ` +
        `(latency ${f.budget.latency.toFixed(1)} ms)`;
  const batches =
    f.batches === 0
      ? ''
      : `\n    ${f.batches} batches, mean ${f.meanBatch.toFixed(0)} ms (${largest(f.phases, 5)}); ` +
        `slowest ${f.slowest.toFixed(0)} ms, ${f.slow} over ${SLOW_BATCH_MS} ms` +
        (f.slowestBatch ? `\n    slowest: ${f.slowestBatch}` : '');
  return (
    `${label.padEnd(34)} p50 ${f.p50.toFixed(1).padStart(6)} ms  p99 ${f.p99.toFixed(1).padStart(6)} ms  ` +
    `max ${f.max.toFixed(1).padStart(7)} ms${extra}${budget}${batches}`
  );
}

/** Reports one run; returns its figures. */
function report(label: string, m: Measured, baselineP50?: number): Figures {
  const f = figuresOf(m);
  const missing = m.expected - m.latencies.length;
  const vs = baselineP50 ? `  p50 ${(f.p50 / baselineP50).toFixed(1)}x the broker's` : '';
  const events = `  ${m.latencies.length} events${missing > 0 ? ` (${missing} never seen)` : ''}${vs}`;
  console.log(line(label, f, `${events}, load ${os.loadavg()[0].toFixed(1)}`));
  return f;
}

/** The median of the finite values (a run whose output never showed has no percentiles). */
function median(xs: number[]): number {
  const s = xs.filter(Number.isFinite).sort((a, b) => a - b);
  if (s.length === 0) return Number.NaN;
  return s.length % 2 === 1 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

/** The median of each figure over several runs (phases: the median of each phase's mean). */
function medianFigures(runs: Figures[]): Figures {
  const of = (k: Exclude<keyof Figures, 'phases' | 'budget' | 'slowestBatch'>): number => median(runs.map((r) => r[k]));
  const phases: Record<string, number> = {};
  for (const k of Object.keys(runs[0].phases)) phases[k] = median(runs.map((r) => r.phases[k] ?? 0));
  const budget: Record<string, number> = {};
  for (const k of Object.keys(runs[0].budget)) budget[k] = median(runs.map((r) => r.budget[k] ?? Number.NaN));
  return {
    p50: of('p50'),
    p99: of('p99'),
    max: of('max'),
    batches: of('batches'),
    meanBatch: of('meanBatch'),
    slowest: Math.max(...runs.map((r) => r.slowest)),
    slowestBatch: runs.reduce((w, r) => (r.slowest > w.slowest ? r : w)).slowestBatch,
    slow: runs.reduce((a, r) => a + r.slow, 0),
    phases,
    budget,
  };
}

/**
 * Runs one configuration RUNS times on every build in turn (alternating, so load that comes and goes falls on
 * both); with several runs prints each build's medians, with two builds this build's against the other's.
 */
async function compare(label: string, run: (build: Build) => Promise<Measured>, baselineP50?: number): Promise<void> {
  const figures: Figures[][] = BUILDS.map(() => []);
  const name = (b: number): string => (BUILDS.length > 1 ? `${label} (${BUILDS[b].label})` : label);
  for (let r = 0; r < RUNS; r++)
    for (let b = 0; b < BUILDS.length; b++) figures[b].push(report(name(b), await run(BUILDS[b]), baselineP50));
  const summary = RUNS > 1 ? figures.map(medianFigures) : figures.map((f) => f[0]);
  // The medians' slowest batch and count over SLOW_BATCH_MS are over all the runs.
  if (RUNS > 1)
    for (let b = 0; b < BUILDS.length; b++) console.log(line(`median of ${RUNS}: ${name(b)}`, summary[b], ''));
  if (summary.length === 2)
    console.log(
      `    this build against ${BUILDS[0].label}: p50 ${(summary[0].p50 / summary[1].p50).toFixed(2)}x lower, ` +
        `p99 ${(summary[0].p99 / summary[1].p99).toFixed(2)}x lower, mean batch ` +
        `${(summary[0].meanBatch / summary[1].meanBatch).toFixed(2)}x shorter`,
    );
}

const broker = await startBroker();
const client = await KafkaClient.connect(broker.brokers);
try {
  console.log(
    `latency, produce to visible: ${SECONDS} s per run (first ${WARMUP_S} s left out), threads ${THREADS}, ` +
      `${os.cpus().length} cores, load average ${os.loadavg()[0].toFixed(1)}; sluice stderr in ${LOGS}`,
  );
  for (const rate of RATES) {
    const base = report(`broker alone, ${rate}/s`, await runBroker(broker, client, rate)).p50;
    for (const query of QUERIES)
      for (const trigger of TRIGGERS)
        await compare(
          `kafka ${query}, ${rate}/s, trigger ${trigger}`,
          (build) => runKafka(build, broker, client, query, rate, trigger),
          base,
        );
    if (FILES)
      for (const query of QUERIES)
        for (const trigger of TRIGGERS)
          await compare(`file ${query}, ${rate}/s, trigger ${trigger}`, (build) =>
            runFiles(build, query, rate, trigger),
          );
  }
} finally {
  await client.close();
  await broker.stop();
}
