/**
 * Benchmark: file source → JSON parse → filter → select → no-op sink, for threads 0, 1 and 2,
 * against a hand-written single loop doing the same work (read, split, JSON.parse, filter, project) in the
 * same invocation. Prints events/s per run, medians and the ratio to the loop.
 *
 *   node dist/bench/stateless.js [events=1000000] [runs=3]
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadApp, runApp } from '../lib/app/app-runner.js';
import { clickstreamFiles, cpuSeconds, median } from './support.js';

const EVENTS = Number(process.argv[2] ?? 1_000_000);
const RUNS = Number(process.argv[3] ?? 3);
const FILES = 10;
const dataDir = path.join(os.tmpdir(), 'sluice-bench-clickstream');

function handLoop(files: string[]): number {
  let kept = 0;
  let check = 0;
  for (const f of files) {
    const text = fs.readFileSync(f, 'utf8');
    for (const line of text.split('\n')) {
      if (line === '') continue;
      const e = JSON.parse(line);
      if (e.event_type === 'page_view') continue;
      const row = {
        user_id: e.user_id,
        event_type: e.event_type,
        page_url: e.page_url,
        timestamp: Date.parse(e.timestamp),
      };
      kept++;
      check += row.timestamp % 7;
    }
  }
  return kept + (check < 0 ? 1 : 0);
}

async function runSluice(threads: number): Promise<number> {
  const ckpt = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-bench-ckpt-'));
  const app = await loadApp(fileURLToPath(new URL('./apps/stateless.js', import.meta.url)));
  let rows = 0;
  const { queries } = await runApp(app, {
    sources: [`file:${dataDir}?maxFilesPerTrigger=2`],
    sinks: ['noop:'],
    checkpoint: ckpt,
    trigger: { availableNow: true },
    threads,
    onProgress: (_o, p) => {
      rows += p.numInputRows;
    },
  });
  await Promise.all([...queries.values()].map((q) => q.awaitTermination()));
  fs.rmSync(ckpt, { recursive: true, force: true });
  return rows;
}

async function main(): Promise<void> {
  const files = clickstreamFiles(dataDir, EVENTS, FILES);
  const results: Record<string, number[]> = { loop: [], 'threads=0': [], 'threads=1': [], 'threads=2': [] };
  const cpu: Record<string, number[]> = { loop: [], 'threads=0': [], 'threads=1': [], 'threads=2': [] };
  for (let r = 0; r < RUNS; r++) {
    for (const name of Object.keys(results)) {
      const c0 = process.cpuUsage();
      const t0 = performance.now();
      let n = EVENTS;
      if (name === 'loop') handLoop(files);
      else n = await runSluice(Number(name.split('=')[1]));
      const secs = (performance.now() - t0) / 1000;
      if (n !== EVENTS) throw new Error(`${name} processed ${n} events, expected ${EVENTS}`);
      results[name].push(EVENTS / secs);
      cpu[name].push(cpuSeconds(c0) / secs);
      console.log(
        `run ${r + 1} ${name.padEnd(10)} ${Math.round(EVENTS / secs)
          .toLocaleString('en-US')
          .padStart(11)} events/s  (${secs.toFixed(2)} s, ${(100 * cpu[name][r]).toFixed(0)}% CPU)`,
      );
    }
  }
  const base = median(results.loop);
  console.log(`\nmedian of ${RUNS} runs, ${EVENTS.toLocaleString('en-US')} events, ${os.cpus().length} cores`);
  for (const name of Object.keys(results)) {
    const m = median(results[name]);
    const perCore = m / Math.max(1, median(cpu[name]));
    console.log(
      `${name.padEnd(10)} ${Math.round(m).toLocaleString('en-US').padStart(11)} events/s  ratio to loop ${(m / base).toFixed(2)}  per core ${Math.round(perCore).toLocaleString('en-US')} events/s (${(perCore / base).toFixed(2)} of loop)`,
    );
  }
}

await main();
