/**
 * Benchmark: a running sum per key through mapGroupsWithState with a ProcessingTimeTimeout, from
 * JSON lines files, for threads 0, 1 and 2, against a hand-written Map-based loop doing the same work in
 * the same invocation; and the same logic written with transformWithState (a ValueState and a timer per
 * key, variants `tws threads=N`), compared per CPU second with mapGroupsWithState at the same thread count; and
 * mapGroupsWithState on the disk state store (variants `disk threads=N`), compared per CPU second with the memory
 * store at the same thread count. Both start from the same JSON lines files and parse every line with JSON.parse-level
 * work (the engine through its JSON decoder into Arrow, the loop with JSON.parse); the loop keeps its state
 * in a Map and writes nothing to disk.
 *
 *   node dist/bench/map-groups-with-state.js [events=1000000] [keys=100000] [runs=3] [recoverKeys=1000000] [only=loop,threads=0,...]
 *
 * `only` limits the throughput runs to the named variants (e.g. `threads=0` under `node --cpu-prof`).
 *
 * Prints per run and as medians: events/s, CPU% (all threads of the process), events per CPU second and
 * its ratio to the loop's; state bytes per key on disk (snapshot ÷ keys, delta ÷ updated keys) and in memory
 * (memoryUsedBytes from progress ÷ keys); and the time to recover `recoverKeys` keys of state: a query
 * builds that state, a second query on the same checkpoint runs one more batch, whose state load is timed
 * (stateLoadTimeMs from progress, and StateStore.load of every partition directly).
 * Targets: within 2× of the loop per core, ≤ 100 bytes per key, ≤ 2 s to recover 1M keys.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadApp, runApp } from '../lib/app/app-runner.js';
import { operatorStateDir, stateDir, stateRootDir } from '../lib/checkpoint/paths.js';
import type { QueryProgress } from '../lib/exec/progress.js';
import { Random } from '../lib/gen/random.js';
import { StateStore } from '../lib/state/state-store.js';
import { cpuSeconds, median } from './support.js';

const EVENTS = Number(process.argv[2] ?? 1_000_000);
const KEYS = Number(process.argv[3] ?? 100_000);
const RUNS = Number(process.argv[4] ?? 3);
const RECOVER_KEYS = Number(process.argv[5] ?? 1_000_000);
const ONLY = process.argv[6]?.split(',');
/** Input files; the engine reads FILES_PER_BATCH per batch (one read task each), so 10 batches. */
const FILES = 20;
const FILES_PER_BATCH = 2;
const TIMEOUT_MS = 3_600_000;
const APP = fileURLToPath(new URL('./apps/map-groups-with-state.js', import.meta.url));

function keyName(prefix: string, i: number, width: number): string {
  return prefix + String(i).padStart(width, '0');
}

/**
 * Writes FILES JSON-lines files of `{key, amount}` under `dir` (reused when a marker says they are complete);
 * `keyOf(i)` names the key of event i. Files get increasing mtimes so the file source reads them in order.
 */
function eventFiles(dir: string, count: number, keyOf: (i: number) => string): string[] {
  const marker = path.join(dir, `.complete-${count}-${FILES}`);
  const names = Array.from({ length: FILES }, (_, f) => path.join(dir, `part-${String(f).padStart(4, '0')}.json`));
  fs.rmSync(path.join(dir, EXTRA_FILE), { force: true });
  if (fs.existsSync(marker)) return names;
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  const rnd = new Random(7);
  const per = Math.ceil(count / FILES);
  for (let f = 0; f < FILES; f++) {
    const lines: string[] = [];
    for (let i = f * per; i < Math.min(count, (f + 1) * per); i++)
      lines.push(JSON.stringify({ key: keyOf(i), amount: 1 + rnd.int(100) }));
    fs.writeFileSync(names[f], `${lines.join('\n')}\n`);
    const t = new Date(1_700_000_000_000 + f * 1000);
    fs.utimesSync(names[f], t, t);
  }
  fs.writeFileSync(marker, '');
  return names;
}

const EXTRA_FILE = 'part-9999.json';

/**
 * The same work by hand: per batch (FILES_PER_BATCH files), parse each line, add its amount to the key's sum in a Map,
 * then emit one row per key updated in the batch with its timeout re-armed, then remove and emit the keys
 * whose timeout is due. Returns the events processed.
 */
function handLoop(files: string[]): number {
  const state = new Map<string, { sum: number; timeout: number; batch: number }>();
  let events = 0;
  let out = 0;
  for (let b = 0; b * FILES_PER_BATCH < files.length; b++) {
    const now = Date.now();
    const touched: string[] = [];
    const rows: { key: string; sum: number; timedOut: boolean }[] = [];
    const lines = files
      .slice(b * FILES_PER_BATCH, (b + 1) * FILES_PER_BATCH)
      .flatMap((f) => fs.readFileSync(f, 'utf8').split('\n'));
    for (const line of lines) {
      if (line === '') continue;
      const e = JSON.parse(line) as { key: string; amount: number };
      let s = state.get(e.key);
      if (s === undefined) {
        s = { sum: 0, timeout: -1, batch: -1 };
        state.set(e.key, s);
      }
      if (s.batch !== b) {
        s.batch = b;
        touched.push(e.key);
      }
      s.sum += e.amount;
      events++;
    }
    for (const key of touched) {
      const s = state.get(key)!;
      s.timeout = now + TIMEOUT_MS;
      rows.push({ key, sum: s.sum, timedOut: false });
    }
    for (const [key, s] of state) {
      if (s.batch !== b && s.timeout <= now) {
        state.delete(key);
        rows.push({ key, sum: s.sum, timedOut: true });
      }
    }
    out += rows.length;
  }
  if (out === 0) throw new Error('the loop produced no rows');
  return events;
}

/** What one engine run reports. */
interface RunFigures {
  events: number;
  progress: QueryProgress[];
  /** Bytes of the newest snapshot of every partition, and the keys in it. */
  snapshotBytes: number;
  /** Bytes of every delta file, and the keys they put or removed. */
  deltaBytes: number;
}

/** Total size of the files of each state partition of the checkpoint, by kind. */
function stateFileBytes(ckpt: string): {
  snapshotBytes: number;
  deltaBytes: number;
  stores: { dir: string; version: number }[];
} {
  const query = path.join(ckpt, 'sums');
  let snapshotBytes = 0;
  let deltaBytes = 0;
  const stores: { dir: string; version: number }[] = [];
  for (const op of fs.readdirSync(stateRootDir(query))) {
    for (const part of fs.readdirSync(operatorStateDir(query, op))) {
      const dir = stateDir(query, op, part);
      const names = fs.readdirSync(dir);
      const snaps = names
        .filter((n) => n.endsWith('.snapshot'))
        .map((n) => Number(n.split('.')[0]))
        .sort((a, b) => a - b);
      const deltas = names.filter((n) => n.endsWith('.delta')).map((n) => Number(n.split('.')[0]));
      if (snaps.length > 0) snapshotBytes += fs.statSync(path.join(dir, `${snaps[snaps.length - 1]}.snapshot`)).size;
      for (const d of deltas) deltaBytes += fs.statSync(path.join(dir, `${d}.delta`)).size;
      stores.push({ dir, version: Math.max(...deltas) });
    }
  }
  return { snapshotBytes, deltaBytes, stores };
}

/** Runs the app over `dataDir` to the end of the data (availableNow, FILES_PER_BATCH files per batch). */
async function runSluice(
  dataDir: string,
  ckpt: string,
  threads: number,
  stateApi = 'mapGroupsWithState',
  provider: 'memory' | 'disk' = 'memory',
): Promise<{ events: number; progress: QueryProgress[] }> {
  const app = await loadApp(APP);
  const progress: QueryProgress[] = [];
  const { queries } = await runApp(app, {
    sources: [`file:${dataDir}?maxFilesPerTrigger=${FILES_PER_BATCH}`],
    sinks: ['noop:'],
    checkpoint: ckpt,
    stateStore: { provider, localDir: path.join(ckpt, 'state-local') },
    options: { timeout: `${TIMEOUT_MS}ms`, 'state-api': stateApi },
    trigger: { availableNow: true },
    threads,
    onProgress: (_o, p) => {
      progress.push(p);
    },
  });
  await Promise.all([...queries.values()].map((q) => q.awaitTermination()));
  return { events: progress.reduce((a, p) => a + p.numInputRows, 0), progress };
}

async function engineRun(
  dataDir: string,
  threads: number,
  stateApi: string,
  provider: 'memory' | 'disk',
): Promise<RunFigures> {
  const ckpt = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-bench-ckpt-'));
  try {
    const { events, progress } = await runSluice(dataDir, ckpt, threads, stateApi, provider);
    const { snapshotBytes, deltaBytes } = stateFileBytes(ckpt);
    return { events, progress, snapshotBytes, deltaBytes };
  } finally {
    fs.rmSync(ckpt, { recursive: true, force: true });
  }
}

function fmt(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

function load(): string {
  return os
    .loadavg()
    .map((x) => x.toFixed(2))
    .join(' ');
}

async function throughput(): Promise<void> {
  const dataDir = path.join(os.tmpdir(), `sluice-bench-mgws-${EVENTS}-${KEYS}`);
  const rnd = new Random(42);
  const keyIds = Array.from({ length: EVENTS }, () => rnd.int(KEYS));
  const width = String(KEYS - 1).length;
  const files = eventFiles(dataDir, EVENTS, (i) => keyName('k', keyIds[i], width));
  const names = [
    'loop',
    'threads=0',
    'threads=1',
    'threads=2',
    'tws threads=0',
    'tws threads=2',
    'disk threads=0',
    'disk threads=2',
  ].filter((n) => !ONLY || ONLY.includes(n));
  const rate: Record<string, number[]> = Object.fromEntries(names.map((n) => [n, []]));
  const cpu: Record<string, number[]> = Object.fromEntries(names.map((n) => [n, []]));
  const loads: string[] = [];
  let last: RunFigures | null = null;
  console.log(
    `\n== throughput: ${fmt(EVENTS)} events over ${fmt(KEYS)} keys in ${FILES} files (${FILES_PER_BATCH} per batch), JSON lines, load average ${load()}`,
  );
  for (let r = 0; r < RUNS; r++) {
    for (const name of names) {
      const c0 = process.cpuUsage();
      const t0 = performance.now();
      let n: number;
      if (name === 'loop') n = handLoop(files);
      else {
        const run = await engineRun(
          dataDir,
          Number(name.split('=')[1]),
          name.startsWith('tws') ? 'transformWithState' : 'mapGroupsWithState',
          name.startsWith('disk') ? 'disk' : 'memory',
        );
        if (!name.includes(' ')) last = run;
        n = run.events;
      }
      const secs = (performance.now() - t0) / 1000;
      if (n !== EVENTS) throw new Error(`${name} processed ${n} events, expected ${EVENTS}`);
      rate[name].push(EVENTS / secs);
      cpu[name].push(cpuSeconds(c0) / secs);
      console.log(
        `run ${r + 1} ${name.padEnd(13)} ${fmt(EVENTS / secs).padStart(11)} events/s  (${secs.toFixed(2)} s, ${(100 * cpu[name][r]).toFixed(0)}% CPU)`,
      );
    }
    loads.push(load());
  }
  const loopPerCore = median(rate.loop ?? [NaN]) / median(cpu.loop ?? [NaN]);
  console.log(`\nmedian of ${RUNS} runs (load average after each round: ${loads.join(' | ')})`);
  console.log(
    `${''.padEnd(13)} ${'events/s'.padStart(11)}  ${'CPU'.padStart(5)}  ${'ratio'.padStart(6)}  ${'ev/CPU-s'.padStart(11)}  ${'per core vs loop'}`,
  );
  for (const name of names) {
    const m = median(rate[name]);
    const c = median(cpu[name]);
    const perCore = m / c;
    console.log(
      `${name.padEnd(13)} ${fmt(m).padStart(11)}  ${(100 * c).toFixed(0).padStart(4)}%  ${(m / median(rate.loop ?? [NaN])).toFixed(2).padStart(6)}  ${fmt(perCore).padStart(11)}  ${(perCore / loopPerCore).toFixed(2)}`,
    );
  }
  // Per-run ratios of one round (same load), then their median.
  const perRound = (name: string, base: string): number[] =>
    rate[name].map((r, i) => rate[base][i] / cpu[base][i] / (r / cpu[name][i]));
  for (const name of names.filter((n) => n.startsWith('tws '))) {
    const base = name.slice('tws '.length);
    if (!names.includes(base)) continue;
    const ratios = perRound(name, base);
    console.log(
      `transformWithState vs mapGroupsWithState at ${base}: mapGroupsWithState does ${median(ratios).toFixed(2)}x the events per CPU second ` +
        `(per round: ${ratios.map((x) => x.toFixed(2)).join(', ')}; target <= 1.2)`,
    );
  }
  for (const name of names.filter((n) => n.startsWith('disk '))) {
    const base = name.slice('disk '.length);
    if (!names.includes(base)) continue;
    const ratios = perRound(base, name);
    console.log(
      `disk vs memory state store at ${base}: the disk store does ${median(ratios).toFixed(2)}x the memory store's events per CPU second ` +
        `(per round: ${ratios.map((x) => x.toFixed(2)).join(', ')}; target >= 0.6)`,
    );
  }
  if (last) {
    const end = last.progress[last.progress.length - 1].stateOperators[0];
    const updated = last.progress.reduce(
      (a, p) => a + p.stateOperators[0].numRowsUpdated + p.stateOperators[0].numRowsRemoved,
      0,
    );
    const commitMs = last.progress.map((p) => p.stateOperators[0].commitTimeMs);
    console.log(`\nstate (last engine run): ${fmt(end.numRowsTotal)} keys after ${last.progress.length} batches`);
    console.log(
      `  on disk: newest snapshots ${fmt(last.snapshotBytes)} B = ${(last.snapshotBytes / end.numRowsTotal).toFixed(1)} B/key; ` +
        `deltas ${fmt(last.deltaBytes)} B for ${fmt(updated)} updates = ${(last.deltaBytes / updated).toFixed(1)} B/updated key`,
    );
    console.log(
      `  in memory: memoryUsedBytes ${fmt(end.memoryUsedBytes)} = ${(end.memoryUsedBytes / end.numRowsTotal).toFixed(1)} B/key`,
    );
    console.log(`  commit time per batch (sum over partitions): median ${median(commitMs).toFixed(1)} ms`);
  }
}

async function recovery(): Promise<void> {
  const dataDir = path.join(os.tmpdir(), `sluice-bench-mgws-recover-${RECOVER_KEYS}`);
  const width = String(RECOVER_KEYS - 1).length;
  eventFiles(dataDir, RECOVER_KEYS, (i) => keyName('r', i, width));
  console.log(
    `\n== recovery: ${fmt(RECOVER_KEYS)} keys of state (each key once, ${FILES / FILES_PER_BATCH} batches), then a restart on the same checkpoint; load average ${load()}`,
  );
  for (const threads of [0, 2]) {
    const ckpt = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-bench-ckpt-'));
    try {
      const build = await runSluice(dataDir, ckpt, threads);
      const total = build.progress[build.progress.length - 1].stateOperators[0].numRowsTotal;
      if (total !== RECOVER_KEYS) throw new Error(`the state holds ${total} keys, expected ${RECOVER_KEYS}`);
      const { stores } = stateFileBytes(ckpt);
      const direct: number[] = [];
      for (let r = 0; r < RUNS; r++) {
        const t0 = performance.now();
        let keys = 0;
        for (const s of stores) keys += (await StateStore.load(s.dir, s.version)).size;
        direct.push(performance.now() - t0);
        if (keys !== RECOVER_KEYS) throw new Error(`loaded ${keys} keys, expected ${RECOVER_KEYS}`);
      }
      const extra = Array.from({ length: 1000 }, (_, i) =>
        JSON.stringify({ key: keyName('r', (i * 997) % RECOVER_KEYS, width), amount: 1 }),
      );
      fs.writeFileSync(path.join(dataDir, EXTRA_FILE), `${extra.join('\n')}\n`);
      const t0 = performance.now();
      const restart = await runSluice(dataDir, ckpt, threads);
      const wall = performance.now() - t0;
      const first = restart.progress[0];
      const op = first.stateOperators[0];
      console.log(
        `threads=${threads}: StateStore.load of ${stores.length} partitions (version ${stores[0].version}), sequential: median ${median(direct).toFixed(0)} ms`,
      );
      console.log(
        `  restart: first batch triggerExecution ${first.durationMs.triggerExecution.toFixed(0)} ms` +
          ('stateLoadTimeMs' in op
            ? `, stateLoadTimeMs ${(op as { stateLoadTimeMs: number }).stateLoadTimeMs.toFixed(0)} ms (sum over partitions)`
            : '') +
          `, query start to stop ${wall.toFixed(0)} ms, ${fmt(op.numRowsTotal)} keys`,
      );
    } finally {
      fs.rmSync(path.join(dataDir, EXTRA_FILE), { force: true });
      fs.rmSync(ckpt, { recursive: true, force: true });
    }
  }
}

console.log(
  `mapGroupsWithState benchmark, node ${process.version}, ${os.cpus().length} cpus, uptime: ${os.uptime().toFixed(0)} s`,
);
await throughput();
if (RECOVER_KEYS > 0) await recovery();
