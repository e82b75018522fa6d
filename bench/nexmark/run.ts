/**
 * The Nexmark benchmark runner: runs query apps of bench/nexmark over the nexmark source, with
 * checkpointing on and a no-op sink (q10 writes CSV files, as its reference does), and prints per query
 * the events, wall and CPU seconds, throughput per core, peak memory and state rows, next to Flink 1.13's
 * published figure.
 *
 *   node dist/bench/nexmark/run.js --query q5 --events 10000000 --threads 2 [--runs 3] [--against-threads 0]
 *   node dist/bench/nexmark/run.js --query q3 --events 2000000 --threads 0 --runs 3 --against-build dist-old
 *
 * Each run is a child process of its own, so peak RSS and CPU time belong to that run alone; it starts with the
 * environment the `sluice` command gives Node (lib/cli/launch-environment.ts), or with Node's own
 * environment (`--environment plain`, or `--against-environment plain` to compare the two run by run). Throughput
 * per core is events ÷ CPU seconds of the process (all its threads): "cores used × seconds" as the
 * Nexmark README measures Flink (cores = measured CPU usage, not the cores available).
 *
 * The workload follows the published one (100 M events generated at 10 M events/s, so 10 s of event time)
 * scaled to the number of events: by default the event-time rate is events / 10, which keeps 10 s of
 * event time, the same windows per run and the same events per window key relative to the run.
 *
 * `--processes 2 --threads 0 --against-threads 0` runs every measured run as two processes at once, each over half
 * the events at the full run's event rate, against one process over all of them: how far two independent copies
 * of a query scale on this machine, the most that threads 2 or two group members can reach here.
 *
 * `--state-store memory,disk` runs each query on each state store provider in turn (rows `q11/disk`) and prints
 * the disk store's throughput per core as a ratio of the memory store's, with the disk store's bytes per state
 * row on local disk and the peak of the process's anonymous memory (RSS without the database's mapped pages).
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { loadApp, runApp } from '../../lib/app/app-runner.js';
import { launchEnvironment } from '../../lib/cli/launch-environment.js';
import type { QueryProgress } from '../../lib/exec/progress.js';
import { parseDuration } from '../../lib/util/duration.js';
import { formatLaneCpu, type LaneCpu, LaneCpuCollector } from '../lane-cpu.js';
import { median, rssAnonBytes } from '../support.js';
import { NEXMARK_QUERIES, nexmarkQuery } from './queries.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));

/** What one run measured (the child prints it as JSON). */
export interface RunResult {
  query: string;
  events: number;
  threads: number;
  wallSeconds: number;
  cpuSeconds: number;
  /** Peak resident set size of the process, bytes. */
  peakRssBytes: number;
  batches: number;
  outputRows: number;
  /** State rows of all stateful operators after the last batch, and the most at any batch end. */
  stateRows: number;
  maxStateRows: number;
  /** The state stores' memory (progress memoryUsedBytes) at the batch with the most state rows. */
  maxStateMemoryBytes: number;
  /** Summed over batches: the driver's phases (progress durationMs) and the state stores' commit time. */
  durationMs: QueryProgress['durationMs'];
  stateCommitMs: number;
  /** The state store provider of the run. */
  stateStore: string;
  /** Bytes of the disk store's working databases after the last batch (0 for the memory store). */
  stateLocalBytes: number;
  /** Peak anonymous resident memory (RssAnon, sampled after each batch): RSS without mapped files. */
  peakRssAnonBytes: number;
  /** The lanes' thread CPU over the batches, and the batches' critical path (absent from a build without them). */
  laneCpu?: LaneCpu;
}

interface Options {
  query: string;
  events: number;
  threads: number;
  runs: number;
  rate?: number;
  keys?: number;
  span: number;
  seed: number;
  batchEvents: number;
  partitions?: number;
  statePartitions: number;
  trigger?: string;
  profile?: string;
  json?: string;
  /** Pair every run with one at this many threads, alternating, and print the ratios pair by pair. */
  againstThreads?: number;
  /** Pair every run with one of the build in this directory (its bench/nexmark/run.js), alternating. */
  againstBuild?: string;
  /** The children's environment: as the `sluice` command starts Node, or Node's own. */
  environment: 'sluice' | 'plain';
  againstEnvironment?: 'sluice' | 'plain';
  stateStores: string[];
  stateCacheMb?: number;
  /** Keys a stateful operator closes per state partition and batch (the engine's default when unset). */
  maxEvictionsPerBatch?: number;
  /** Events of an unmeasured run of the query in the same process first, so the measured run starts on warm lanes. */
  warmUp: number;
  /** Concurrent processes that share a run's events, each over an equal part at the run's event rate. */
  processes: number;
}

/** Bytes of the files under `dir` (0 when it does not exist). */
function treeBytes(dir: string): number {
  if (!fs.existsSync(dir)) return 0;
  let total = 0;
  for (const e of fs.readdirSync(dir, { withFileTypes: true, recursive: true }))
    if (e.isFile()) total += fs.statSync(path.join(e.parentPath, e.name)).size;
  return total;
}

/** Bids per key within one 10 s session gap in the --keys workload: enough that nearly every key is live. */
const BIDS_PER_KEY_PER_GAP = 3;
/** Share of bids among Nexmark events (46 of 50). */
const BID_SHARE = 46 / 50;

/**
 * The event-time rate: `--rate`, else with `--keys K` the rate at which K bidders each bid about
 * {@link BIDS_PER_KEY_PER_GAP} times per 10 s gap, else `--span` seconds of event time for the run.
 */
function eventRate(o: Options): number {
  if (o.rate) return o.rate;
  if (o.keys) return Math.max(1, Math.round((BIDS_PER_KEY_PER_GAP * o.keys) / (10 * BID_SHARE)));
  return Math.max(1, Math.round(o.events / o.span));
}

/** Read tasks per batch and lane, unless --partitions says otherwise. */
const READ_TASKS_PER_LANE = 4;

/**
 * The source URI. `--keys K` scales q11's state with the reference generator's own knobs: bidders are drawn
 * from the K most recent people (numActivePeople), with no hot bidders (hotBiddersRatio 1), and the stream
 * starts once K people exist (firstEventId = 50 K); the rate keeps nearly all K bidders inside a session.
 */
function sourceUri(o: Options, kinds: string): string {
  // Four read tasks per lane: lanes take the next task as they free up, and with two per lane the last task of a
  // batch left one lane waiting for up to half of its share (critical path 1.31-1.34x against 1.46-1.56x, q0/q1);
  // eight gained nothing measurable and gave the driver more results to take in.
  const partitions = o.partitions ?? Math.max(1, o.threads) * READ_TASKS_PER_LANE;
  const keys = o.keys ? `&numActivePeople=${o.keys}&hotBiddersRatio=1&firstEventId=${50 * o.keys}` : '';
  return `nexmark:?events=${o.events}&seed=${o.seed}&rate=${eventRate(o)}&kinds=${kinds}&maxEventsPerTrigger=${o.batchEvents}&numPartitions=${partitions}${keys}`;
}

/**
 * One run in this process: the query until every event is processed. `lanesBefore` is each lane's thread CPU
 * from earlier runs on the same (warm) lanes, which the figures leave out.
 */
async function runOnce(o: Options, lanesBefore: number[] = []): Promise<RunResult> {
  const q = nexmarkQuery(o.query);
  const ckpt = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-nexmark-'));
  const out = path.join(ckpt, 'out');
  const progress: QueryProgress[] = [];
  const stateStore = o.stateStores[0];
  const localDir = path.join(ckpt, 'state-local');
  let stateLocalBytes = 0;
  let peakRssAnonBytes = 0;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const lanes = new LaneCpuCollector(lanesBefore);
  try {
    q.prepare?.();
    const app = await loadApp(path.join(HERE, `${q.name}.js`));
    const { queries } = await runApp(app, {
      sources: [sourceUri(o, q.kinds)],
      sinks: [q.sink ? q.sink(out) : 'noop:'],
      checkpoint: path.join(ckpt, 'checkpoint'),
      threads: o.threads,
      statePartitions: o.statePartitions,
      stateStore: {
        provider: stateStore === 'disk' ? 'disk' : 'memory',
        cacheMb: o.stateCacheMb,
        localDir,
        maxEvictionsPerBatch: o.maxEvictionsPerBatch,
      },
      trigger: o.trigger ? { processingTime: o.trigger } : { availableNow: true },
      onProgress: (_name, p) => {
        progress.push(p);
        peakRssAnonBytes = Math.max(peakRssAnonBytes, rssAnonBytes());
        const end = p.sources[0]?.endOffset as { events?: number } | undefined;
        // A processing-time trigger never ends by itself: stop once every event is in (and, for a stateful query,
        // the no-data batch that the last watermark move asks for has run).
        const done = end?.events === o.events && (p.stateOperators.length === 0 || p.numInputRows === 0);
        if (o.trigger && done) void [...queries.values()][0].stop();
      },
    });
    await Promise.all([...queries.values()].map((x) => x.awaitTermination()));
    stateLocalBytes = treeBytes(localDir);
  } finally {
    fs.rmSync(ckpt, { recursive: true, force: true });
  }
  const wallSeconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const stateRowsOf = (p: QueryProgress): number => p.stateOperators.reduce((a, s) => a + s.numRowsTotal, 0);
  const fullest = progress.reduce<QueryProgress | undefined>(
    (best, p) => (!best || stateRowsOf(p) > stateRowsOf(best) ? p : best),
    undefined,
  );
  const sum = (f: (p: QueryProgress) => number): number => progress.reduce((a, p) => a + f(p), 0);
  const last = progress[progress.length - 1];
  const events = (last?.sources[0]?.endOffset as { events: number } | undefined)?.events ?? 0;
  if (events !== o.events) throw new Error(`${q.name} stopped at event ${events} of ${o.events}`);
  return {
    query: q.name,
    events,
    threads: o.threads,
    wallSeconds,
    cpuSeconds: (cpu.user + cpu.system) / 1e6,
    peakRssBytes: process.resourceUsage().maxRSS * 1024,
    batches: progress.length,
    outputRows: sum((p) => p.sink.numOutputRows),
    stateRows: last ? stateRowsOf(last) : 0,
    maxStateRows: fullest ? stateRowsOf(fullest) : 0,
    maxStateMemoryBytes: fullest ? fullest.stateOperators.reduce((a, s) => a + s.memoryUsedBytes, 0) : 0,
    durationMs: sumDurations(progress.map((p) => p.durationMs)),
    stateCommitMs: sum((p) => p.stateOperators.reduce((a, s) => a + s.commitTimeMs, 0)),
    stateStore,
    stateLocalBytes,
    peakRssAnonBytes,
    laneCpu: lanes.figures(),
  };
}

/** Each phase of `durationMs` summed over batches (or runs). */
function sumDurations(each: QueryProgress['durationMs'][]): QueryProgress['durationMs'] {
  const total = { ...each[0] };
  for (const d of each.slice(1)) for (const k of Object.keys(total) as (keyof typeof total)[]) total[k] += d[k];
  return total;
}

/** Runs one measurement in a fresh child process (optionally under the CPU profiler). */
async function runChild(o: Options, query: string, run: number, stateStore: string): Promise<RunResult> {
  const args = [
    ...(o.profile ? ['--cpu-prof', '--cpu-prof-dir', path.join(o.profile, `${query}-t${o.threads}-run${run}`)] : []),
    o.againstBuild ? path.resolve(o.againstBuild, 'bench', 'nexmark', 'run.js') : fileURLToPath(import.meta.url),
    '--child',
    '--query',
    query,
    '--events',
    String(o.events),
    '--threads',
    String(o.threads),
    '--seed',
    String(o.seed),
    '--batch-events',
    String(o.batchEvents),
    '--state-partitions',
    String(o.statePartitions),
    '--span',
    String(o.span),
    ...(o.rate ? ['--rate', String(o.rate)] : []),
    ...(o.keys ? ['--keys', String(o.keys)] : []),
    ...(o.partitions ? ['--partitions', String(o.partitions)] : []),
    ...(o.trigger ? ['--trigger', o.trigger] : []),
    '--state-store',
    stateStore,
    ...(o.stateCacheMb !== undefined ? ['--state-cache-mb', String(o.stateCacheMb)] : []),
    ...(o.maxEvictionsPerBatch !== undefined
      ? ['--state-max-evictions-per-batch', String(o.maxEvictionsPerBatch)]
      : []),
    ...(o.warmUp > 0 ? ['--warm-up', String(o.warmUp)] : []),
  ];
  const env = o.environment === 'plain' ? process.env : launchEnvironment(process.env);
  for (let attempt = 1; ; attempt++) {
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], env });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
    });
    const status = await new Promise<number | null>((resolve) => child.on('close', resolve));
    const line = stdout.split('\n').find((l) => l.startsWith('RESULT '));
    if (status === 0 && line) return JSON.parse(line.slice('RESULT '.length)) as RunResult;
    const why = `${query} run ${run} failed (exit ${status}):\n${stderr}`;
    // Node 20.19+ can fail a worker thread's first module load (ERR_INTERNAL_ASSERTION, see BENCHMARKS.md): one retry, said out loud.
    if (attempt > 1 || !stderr.includes('ERR_INTERNAL_ASSERTION')) throw new Error(why);
    console.log(`warning: ${query} run ${run} hit the worker module-loading assertion; running it again`);
  }
}

/**
 * One run as `o.processes` processes at once, each over an equal part of the events at the run's event rate and a
 * seed of its own: what as many independent copies of the query on separate cores achieve, with nothing shared
 * but the machine. The combined run took as long as its slowest process; CPU seconds, memory, rows and batches
 * add up.
 */
async function runSplit(o: Options, query: string, run: number, stateStore: string): Promise<RunResult> {
  if (o.processes <= 1) return runChild(o, query, run, stateStore);
  const part: Options = { ...o, events: Math.floor(o.events / o.processes), rate: eventRate(o), processes: 1 };
  const parts = await Promise.all(
    Array.from({ length: o.processes }, (_, i) => runChild({ ...part, seed: o.seed + i }, query, run, stateStore)),
  );
  const total = (f: (r: RunResult) => number): number => parts.reduce((a, r) => a + f(r), 0);
  return {
    ...parts[0],
    events: total((r) => r.events),
    wallSeconds: Math.max(...parts.map((r) => r.wallSeconds)),
    cpuSeconds: total((r) => r.cpuSeconds),
    peakRssBytes: total((r) => r.peakRssBytes),
    batches: total((r) => r.batches),
    outputRows: total((r) => r.outputRows),
    stateRows: total((r) => r.stateRows),
    maxStateRows: total((r) => r.maxStateRows),
    maxStateMemoryBytes: total((r) => r.maxStateMemoryBytes),
    durationMs: sumDurations(parts.map((r) => r.durationMs)),
    stateCommitMs: total((r) => r.stateCommitMs),
    stateLocalBytes: total((r) => r.stateLocalBytes),
    peakRssAnonBytes: total((r) => r.peakRssAnonBytes),
    laneCpu: undefined,
  };
}

/** How a run's label names its processes: nothing for one. */
const processesOf = (o: Options): string => (o.processes > 1 ? ` x ${o.processes} processes` : '');

const fmt = (n: number, digits = 0): string =>
  n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });

function report(results: RunResult[][], o: Options): void {
  const rate = eventRate(o);
  const keys = o.keys ? `, ${fmt(o.keys)} active bidders (numActivePeople, no hot bidders)` : '';
  console.log(
    `\nNexmark on sluice${o.againstBuild ? ` (the build in ${o.againstBuild})` : ''}${o.environment === 'plain' ? " (Node's plain environment)" : ''}: ${fmt(o.events)} events at ${fmt(rate)} events/s of event time${keys}, threads ${o.threads}${processesOf(o)}, ${o.runs} run(s) per query (medians), ` +
      `batches of ${fmt(o.batchEvents)} events, checkpointing every batch; ${os.cpus().length} cores, load ${os
        .loadavg()
        .map((l) => l.toFixed(2))
        .join(' ')}`,
  );
  const header = [
    'query',
    'events',
    'wall s',
    'CPU s',
    'cores',
    'events/s',
    'per core',
    'Flink/core',
    'ratio',
    'peak RSS MB',
    'state rows',
    'max state',
    'state B/row',
    'batches',
    'out rows',
  ];
  const rows = results.map((runs) => {
    const q = nexmarkQuery(runs[0].query);
    const m = (f: (r: RunResult) => number): number => median(runs.map(f));
    const perCore = m((r) => r.events / r.cpuSeconds);
    return [
      o.stateStores.length > 1 || runs[0].stateStore !== 'memory' ? `${q.name}/${runs[0].stateStore}` : q.name,
      fmt(runs[0].events),
      fmt(
        m((r) => r.wallSeconds),
        2,
      ),
      fmt(
        m((r) => r.cpuSeconds),
        2,
      ),
      fmt(
        m((r) => r.cpuSeconds / r.wallSeconds),
        2,
      ),
      fmt(m((r) => r.events / r.wallSeconds)),
      fmt(perCore),
      fmt(q.flinkPerCore),
      fmt(perCore / q.flinkPerCore, 2),
      fmt(m((r) => r.peakRssBytes) / 2 ** 20),
      fmt(m((r) => r.stateRows)),
      fmt(m((r) => r.maxStateRows)),
      fmt(m((r) => (r.maxStateRows > 0 ? r.maxStateMemoryBytes / r.maxStateRows : 0))),
      fmt(m((r) => r.batches)),
      fmt(m((r) => r.outputRows)),
    ];
  });
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]): string =>
    cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  console.log(line(header));
  for (const r of rows) console.log(line(r));
  console.log(
    'per core = events ÷ CPU seconds of the process (all threads); Flink/core: nexmark/nexmark README, Flink 1.13, 100 M events',
  );
  for (const runs of results) {
    if (runs[0].stateStore !== 'disk') continue;
    const m = (f: (r: RunResult) => number): number => median(runs.map(f));
    const memory = results.find((r) => r[0].query === runs[0].query && r[0].stateStore === 'memory');
    const perCore = (rs: RunResult[]): number => median(rs.map((r) => r.events / r.cpuSeconds));
    console.log(
      `${runs[0].query}/disk: ${memory ? `${(perCore(runs) / perCore(memory)).toFixed(2)}x the memory store per core, ` : ''}` +
        `${fmt(m((r) => (r.maxStateRows > 0 ? r.stateLocalBytes / r.maxStateRows : 0)))} B per state row on local disk, ` +
        `peak RSS ${fmt(m((r) => r.peakRssBytes) / 2 ** 20)} MB (anonymous ${fmt(m((r) => r.peakRssAnonBytes) / 2 ** 20)} MB, the rest the database's mapped pages)`,
    );
  }
}

/** Per query, the medians of the pair-by-pair ratios of runs at --threads to runs at --against-threads. */
function reportPairs(runs: RunResult[][], baseline: RunResult[][], o: Options, base: Options): void {
  const against = base.againstBuild
    ? `the build in ${base.againstBuild}`
    : base.environment !== o.environment
      ? `the ${base.environment} environment`
      : `threads ${base.threads}`;
  console.log(
    `\nthreads ${o.threads}${processesOf(o)} against ${against}, ${o.runs} pair(s) run in turn, medians of the ratios pair by pair`,
  );
  console.log('query  per CPU s  events/s  critical path  balanced  (ratios of each pair: per CPU s; critical path)');
  runs.forEach((rs, q) => {
    const ratios = (f: (r: RunResult) => number): number[] => rs.map((r, i) => f(baseline[q][i]) / f(r));
    const perCpu = ratios((r) => r.cpuSeconds);
    const wall = ratios((r) => r.wallSeconds);
    const path = ratios((r) => r.laneCpu?.criticalPath ?? Number.NaN);
    const balanced = ratios((r) => r.laneCpu?.balancedPath ?? Number.NaN);
    const x = (v: number[], width: number): string => `${median(v).toFixed(2).padStart(width)}x`;
    console.log(
      `${rs[0].query.padEnd(5)}  ${x(perCpu, 8)}  ${x(wall, 7)}  ${x(path, 12)}  ${x(balanced, 7)}  (${perCpu.map((v) => v.toFixed(2)).join(' ')}; ${path.map((v) => v.toFixed(2)).join(' ')})`,
    );
  });
  console.log(
    `critical path: per batch, the driver's work plus each stage's busiest lane, in thread CPU; its ratio is the wall-clock speed-up idle cores would give (${against}'s critical path ÷ threads ${o.threads}'s)`,
  );
}

async function main(): Promise<void> {
  const argv = await yargs(hideBin(process.argv))
    .scriptName('bench:nexmark')
    .usage('$0 [--query q5|q0,q1|all] [--events N] [--threads N] [--runs N]')
    .option('query', {
      type: 'string',
      default: 'all',
      describe: `queries: ${NEXMARK_QUERIES.map((q) => q.name).join(', ')}, a comma list, or all`,
    })
    .option('events', { type: 'number', default: 10_000_000, describe: 'events per run' })
    .option('threads', { type: 'number', default: 2, describe: 'worker threads (0: in the driver thread)' })
    .option('runs', { type: 'number', default: 1, describe: 'runs per query; the table shows medians' })
    .option('span', {
      type: 'number',
      default: 10,
      describe: 'seconds of event time the events cover (the published run: 100 M events at 10 M/s = 10 s)',
    })
    .option('rate', { type: 'number', describe: 'event-time rate in events/s, instead of --span' })
    .option('keys', {
      type: 'number',
      describe:
        'state-size scaling: bidders drawn from this many people (numActivePeople), no hot bidders, the rate set so nearly all are in a session',
    })
    .option('seed', { type: 'number', default: 0 })
    .option('batch-events', {
      type: 'number',
      default: 1_000_000,
      describe: 'events per micro-batch (maxEventsPerTrigger): one checkpoint per batch',
    })
    .option('partitions', {
      type: 'number',
      describe: `read tasks per batch (default ${READ_TASKS_PER_LANE} per thread)`,
    })
    .option('state-partitions', { type: 'number', default: 4 })
    .option('trigger', {
      type: 'string',
      describe: "processing-time trigger interval (default: availableNow, batches back to back), e.g. '1 second'",
    })
    .option('profile', {
      type: 'string',
      describe: 'write V8 CPU profiles of each run under this directory (node --cpu-prof)',
    })
    .option('json', { type: 'string', describe: 'also write the per-run results to this JSON file' })
    .option('against-threads', {
      type: 'number',
      describe:
        'run each query at this many threads before every run at --threads, in turn, and print the ratios of each pair (events per CPU second, events/s)',
    })
    .option('against-build', {
      type: 'string',
      describe:
        'run each query on the build in this directory (e.g. a copy of an older dist) before every run, in turn, and print the ratios of each pair',
    })
    .option('environment', {
      choices: ['sluice', 'plain'] as const,
      default: 'sluice' as const,
      describe: "the measured runs' environment: as the sluice command starts Node (huge pages for malloc), or plain",
    })
    .option('against-environment', {
      choices: ['sluice', 'plain'] as const,
      describe: 'run each query in this environment before every run, in turn, and print the ratios of each pair',
    })
    .option('state-store', {
      type: 'string',
      default: 'memory',
      describe: 'state store provider: memory, disk, or memory,disk to run both and compare',
    })
    .option('state-cache-mb', { type: 'number', describe: "the disk store's hot keys per state partition, MiB" })
    .option('state-max-evictions-per-batch', {
      type: 'number',
      describe: 'keys a stateful operator closes per state partition and batch (the rest in the batches after)',
    })
    .option('warm-up', {
      type: 'number',
      default: 0,
      describe:
        'events of an unmeasured run of each query before the measured one, in the same process: the measured run starts on warm worker lanes, as a long-running process does',
    })
    .option('processes', {
      type: 'number',
      default: 1,
      describe:
        'run each measured run as this many processes at once, each over an equal part of the events (with --against-threads 0: how far independent copies of the query scale on this machine, the ceiling for threads and for group members)',
    })
    .option('child', { type: 'boolean', hidden: true })
    .strict()
    .parse();
  const o: Options = {
    query: argv.query,
    events: argv.events,
    threads: argv.threads,
    runs: argv.runs,
    rate: argv.rate,
    keys: argv.keys,
    span: argv.span,
    seed: argv.seed,
    batchEvents: argv['batch-events'],
    partitions: argv.partitions,
    statePartitions: argv['state-partitions'],
    trigger: argv.trigger,
    profile: argv.profile,
    json: argv.json,
    againstThreads: argv['against-threads'],
    againstBuild: argv['against-build'],
    environment: argv.environment,
    againstEnvironment: argv['against-environment'],
    stateStores: argv['state-store'].split(',').map((s) => s.trim()),
    stateCacheMb: argv['state-cache-mb'],
    maxEvictionsPerBatch: argv['state-max-evictions-per-batch'],
    warmUp: argv['warm-up'],
    processes: argv.processes,
  };
  if (o.trigger) parseDuration(o.trigger, '--trigger');
  if (argv.child) {
    const warm = o.warmUp > 0 ? await runOnce({ ...o, events: o.warmUp }) : undefined;
    const r = await runOnce(
      o,
      warm?.laneCpu?.lanes.map((x, lane) => (lane === 0 ? 0 : x)),
    );
    process.stdout.write(`RESULT ${JSON.stringify(r)}\n`);
    return;
  }
  const names = o.query === 'all' ? NEXMARK_QUERIES.map((q) => q.name) : o.query.split(',').map((s) => s.trim());
  for (const n of names) nexmarkQuery(n);
  const all: RunResult[][] = [];
  const baseline: RunResult[][] = [];
  const againsts = [o.againstThreads, o.againstBuild, o.againstEnvironment].filter((a) => a !== undefined);
  if (againsts.length > 1) throw new Error('give one of --against-threads, --against-build, --against-environment');
  const base: Options | undefined =
    o.againstBuild !== undefined
      ? { ...o }
      : o.againstEnvironment !== undefined
        ? { ...o, environment: o.againstEnvironment }
        : o.againstThreads === undefined
          ? undefined
          : { ...o, threads: o.againstThreads, againstBuild: undefined, processes: 1 };
  const mine: Options = { ...o, againstBuild: undefined };
  if (base && o.stateStores.length > 1)
    throw new Error('--against-threads and --against-build compare one state store; give --state-store one provider');
  const runOf = async (opts: Options, n: string, r: number, store: string): Promise<RunResult> => {
    const res = await runSplit(opts, n, r, store);
    console.log(
      `${n}${o.stateStores.length > 1 ? `/${store}` : ''}${opts.againstBuild ? ` (${opts.againstBuild})` : ''}${opts.environment === 'plain' ? ' (plain environment)' : ''} threads ${opts.threads}${processesOf(opts)} run ${r}: ${fmt(res.events / res.wallSeconds)} events/s, ${fmt(res.events / res.cpuSeconds)} per core ` +
        `(${res.wallSeconds.toFixed(2)} s wall, ${res.cpuSeconds.toFixed(2)} s CPU, ${fmt(res.peakRssBytes / 2 ** 20)} MB peak RSS, ${res.batches} batches)${res.laneCpu ? `\n  ${formatLaneCpu(res.laneCpu)}` : ''}`,
    );
    return res;
  };
  for (const n of names) {
    const byStore = o.stateStores.map(() => [] as RunResult[]);
    const baseRuns: RunResult[] = [];
    // Providers take turns run by run, so that a change in the machine's load hits both alike.
    for (let r = 1; r <= o.runs; r++) {
      if (base) baseRuns.push(await runOf(base, n, r, o.stateStores[0]));
      for (const [i, store] of o.stateStores.entries()) byStore[i].push(await runOf(mine, n, r, store));
    }
    all.push(...byStore);
    baseline.push(baseRuns);
  }
  if (base) {
    report(baseline, base);
    reportPairs(all, baseline, o, base);
  }
  report(all, mine);
  if (o.json) fs.writeFileSync(o.json, `${JSON.stringify(all, null, 2)}\n`);
}

await main();
