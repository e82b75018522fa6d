/**
 * Benchmark (issue 4): clickstream sessionisation (the clickstream-sessions app: 30-minute session windows
 * per user, 14 aggregates per session) of the same JSON-lines files by
 * - sluice with threads 0, 1 and 2 (file source, one file per batch, no-op sinks),
 * - DuckDB's SQL sessionisation (read_json, LAG-based session numbers, the same metrics),
 * - a hand-written loop (JSON.parse per line, a Map of open sessions per user, closed by the watermark),
 * each in its own child process, so that peak memory (max RSS) is the variant's own.
 *
 *   node dist/bench/sessionization.js [events=1000000] [runs=1] [only=loop,duckdb,threads=0,threads=1,threads=2]
 *
 * Prints per run: events/s, CPU% of the process, events per CPU second, max RSS, sessions written.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadApp, runApp } from '../lib/app/app-runner.js';
import { clickstreamFiles, cpuSeconds, median } from './support.js';

const EVENTS = Number(process.argv[2] ?? 1_000_000);
const RUNS = Number(process.argv[3] ?? 1);
const ONLY = process.argv[4]?.split(',');
const VARIANT = process.env.SLUICE_BENCH_VARIANT;
const FILES = 10;
const GAP = 30 * 60_000;
const BOUND = 5 * 60_000;
const LATENESS = 5 * 60_000;
const SELF = fileURLToPath(import.meta.url);

interface Result { events: number; sessions: number; secs: number; cpu: number; maxRssMb: number; }

/** One user's open session in the hand-written loop: the same metrics as the app. */
interface OpenSession {
  start: number; end: number; count: number; views: number; clicks: number; purchases: number;
  pages: Map<string, number>; entry: string; exit: string; referrer: string; device: string; country: string; revenue: number;
}

interface Click {
  user_id: string; event_type: string; page_url: string; timestamp: string; referrer: string;
  device: { type: string }; geo: { country: string }; metadata: { amount?: string };
}

function handLoop(files: string[]): { events: number; sessions: number } {
  const open = new Map<string, OpenSession[]>();
  let events = 0;
  let emitted = 0;
  let maxTs = -Infinity;
  const close = (watermark: number): void => {
    for (const [user, list] of open) {
      const keep = list.filter((s) => s.end + GAP + LATENESS > watermark);
      emitted += list.length - keep.length;
      if (keep.length === 0) open.delete(user); else if (keep.length !== list.length) open.set(user, keep);
    }
  };
  for (const file of files) {
    for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
      if (line === '') continue;
      const e = JSON.parse(line) as Click;
      const ts = Date.parse(e.timestamp);
      events++;
      if (ts > maxTs) maxTs = ts;
      let list = open.get(e.user_id);
      if (!list) open.set(e.user_id, (list = []));
      let s = list.find((x) => ts >= x.start - GAP && ts <= x.end + GAP);
      if (!s) {
        s = { start: ts, end: ts, count: 0, views: 0, clicks: 0, purchases: 0, pages: new Map(), entry: e.page_url, exit: e.page_url, referrer: e.referrer, device: e.device.type, country: e.geo.country, revenue: 0 };
        list.push(s);
      }
      if (ts < s.start) { s.start = ts; s.entry = e.page_url; s.referrer = e.referrer; s.device = e.device.type; s.country = e.geo.country; }
      if (ts >= s.end) { s.end = ts; s.exit = e.page_url; }
      s.count++;
      if (e.event_type === 'page_view') s.views++;
      else if (e.event_type === 'click') s.clicks++;
      else if (e.event_type === 'purchase') { s.purchases++; s.revenue += Number(e.metadata.amount ?? 0) || 0; }
      const first = s.pages.get(e.page_url);
      if (first === undefined || ts < first) s.pages.set(e.page_url, ts);
    }
    close(maxTs - BOUND);
  }
  return { events, sessions: emitted };
}

async function duckdb(files: string[]): Promise<{ events: number; sessions: number }> {
  const { DuckDBInstance } = await import('@duckdb/node-api');
  const db = await DuckDBInstance.create(':memory:');
  const c = await db.connect();
  const list = files.map((f) => `'${f}'`).join(', ');
  const r = await c.runAndReadAll(`
    WITH ev AS (
      SELECT user_id, event_type, page_url, epoch_ms(timestamp::TIMESTAMP) AS ms, referrer, device.type AS device, geo.country AS country,
             TRY_CAST(metadata.amount AS DOUBLE) AS amount
      FROM read_json([${list}], format = 'newline_delimited',
        columns = {user_id: 'VARCHAR', event_type: 'VARCHAR', page_url: 'VARCHAR', timestamp: 'VARCHAR', referrer: 'VARCHAR',
                   device: 'STRUCT(type VARCHAR)', geo: 'STRUCT(country VARCHAR)', metadata: 'STRUCT(amount VARCHAR)'})),
    marked AS (SELECT *, CASE WHEN ms - LAG(ms) OVER (PARTITION BY user_id ORDER BY ms) <= ${GAP} THEN 0 ELSE 1 END AS starts FROM ev),
    s AS (SELECT *, SUM(starts) OVER (PARTITION BY user_id ORDER BY ms, starts DESC ROWS UNBOUNDED PRECEDING) AS sn FROM marked),
    sessions AS (
      SELECT user_id, sn, MIN(ms) AS start_ms, MAX(ms) AS end_ms, COUNT(*) AS events,
        COUNT(*) FILTER (WHERE event_type = 'page_view') AS views, COUNT(*) FILTER (WHERE event_type = 'click') AS clicks,
        COUNT(*) FILTER (WHERE event_type = 'purchase') AS purchases,
        arg_min(page_url, ms) AS entry_page, arg_max(page_url, ms) AS exit_page, arg_min(referrer, ms) AS referrer,
        arg_min(device, ms) AS device, arg_min(country, ms) AS country,
        round(coalesce(SUM(amount) FILTER (WHERE event_type = 'purchase'), 0), 2) AS revenue, list(DISTINCT page_url) AS pages
      FROM s GROUP BY user_id, sn)
    SELECT COUNT(*) AS sessions, SUM(events) AS events FROM sessions`);
  const [row] = r.getRowObjectsJson() as { sessions: string; events: string }[];
  c.closeSync();
  db.closeSync();
  return { events: Number(row.events), sessions: Number(row.sessions) };
}

async function sluice(dataDir: string, threads: number): Promise<{ events: number; sessions: number }> {
  const ckpt = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-bench-sess-'));
  try {
    let events = 0;
    let sessions = 0;
    const { queries } = await runApp(await loadApp('clickstream-sessions'), {
      sources: [`file:${dataDir}?maxFilesPerTrigger=1`], sinks: ['sessions=noop:', 'late=noop:'], checkpoint: ckpt,
      trigger: { availableNow: true }, threads, onProgress: (_o, p) => { events += p.numInputRows; sessions += p.sink.numOutputRows; },
    });
    await Promise.all([...queries.values()].map((q) => q.awaitTermination()));
    return { events, sessions };
  } finally {
    fs.rmSync(ckpt, { recursive: true, force: true });
  }
}

/** Runs one variant in this process and prints its Result as JSON (the child side). */
async function child(variant: string, dataDir: string, files: string[]): Promise<void> {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const r = variant === 'loop' ? handLoop(files) : variant === 'duckdb' ? await duckdb(files) : await sluice(dataDir, Number(variant.split('=')[1]));
  const secs = (performance.now() - t0) / 1000;
  const result: Result = { ...r, secs, cpu: cpuSeconds(c0) / secs, maxRssMb: process.resourceUsage().maxRSS / 1024 };
  process.stdout.write(JSON.stringify(result) + '\n');
}

function fmt(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

async function main(): Promise<void> {
  const dataDir = path.join(os.tmpdir(), `sluice-bench-clicks-${EVENTS}`);
  const files = clickstreamFiles(dataDir, EVENTS, FILES);
  if (VARIANT) { await child(VARIANT, dataDir, files); return; }
  const names = ['loop', 'duckdb', 'threads=0', 'threads=1', 'threads=2'].filter((n) => !ONLY || ONLY.includes(n));
  console.log(`== sessionisation of ${fmt(EVENTS)} clickstream events (10,000 users) in ${FILES} JSON-lines files, load average ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}`);
  const rates: Record<string, number[]> = Object.fromEntries(names.map((n) => [n, []]));
  for (let run = 1; run <= RUNS; run++) {
    for (const name of names) {
      const res = spawnSync(process.execPath, [SELF, String(EVENTS), '1'], { env: { ...process.env, SLUICE_BENCH_VARIANT: name }, encoding: 'utf8', maxBuffer: 1 << 24 });
      if (res.status !== 0) throw new Error(`${name} failed: ${res.stderr}`);
      const r = JSON.parse(res.stdout.trim().split('\n').pop()!) as Result;
      if (r.events !== EVENTS) throw new Error(`${name} processed ${r.events} events, expected ${EVENTS}`);
      rates[name].push(EVENTS / r.secs);
      console.log(`run ${run} ${name.padEnd(10)} ${fmt(EVENTS / r.secs).padStart(10)} events/s  ${r.secs.toFixed(2)} s  ${(100 * r.cpu).toFixed(0)}% CPU  ` +
        `${fmt(EVENTS / r.secs / r.cpu).padStart(10)} events/CPU-s  max RSS ${fmt(r.maxRssMb)} MB  ${fmt(r.sessions)} sessions`);
    }
  }
  if (RUNS > 1) for (const n of names) console.log(`median ${n.padEnd(10)} ${fmt(median(rates[n]))} events/s`);
}

await main();
