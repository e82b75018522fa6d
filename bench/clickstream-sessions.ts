/**
 * Benchmark: sessionisation of clickstream events (the clickstream-sessions app: event-time
 * session windows per user, 30-minute gap, 5-minute watermark delay and allowed lateness, the seed's
 * metrics per session) from JSON lines files, for threads 0, 1 and 2, against DuckDB's SQL
 * sessionisation of the same files and a hand-written loop, in the same invocation.
 *
 *   node dist/bench/clickstream-sessions.js [events=1000000] [runs=3] [only=loop,duckdb,duckdb-min,threads=0,...]
 *   node dist/bench/clickstream-sessions.js 5000000 3 threads=0,threads=2,threads=2@DIR
 *
 * Every run is a child process of its own, so its peak RSS and CPU time are its alone. Variants:
 * - `threads=N`: the app through `runApp` (file source, 2 files per batch, availableNow, no-op sinks), with the
 *   critical path of its lanes (bench/lane-cpu.ts); `threads=N@DIR` the same on the build in DIR (a copy of an
 *   older dist), for an A/B in one invocation;
 * - `loop`: readFileSync + JSON.parse per line + a Map of open sessions per user, computing the same metrics;
 * - `duckdb`: SQL over `read_json` of the same files computing the same metrics (LAG, running SUM, GROUP BY;
 *   the SQL the windows tests use as their oracle);
 * - `duckdb-min`: a minimal sessionisation SQL (session count, events, revenue).
 * The data is in event-time order (no late events). Each variant's output is checked: the sessions
 * complete at the final watermark (end + gap + lateness <= max event time - delay) must number the same.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadApp, runApp } from '../lib/app/app-runner.js';
import { type LaneCpu, LaneCpuCollector } from './lane-cpu.js';
import { clickstreamFiles, median } from './support.js';

const GAP_MS = 30 * 60_000;
const BOUND_MS = 5 * 60_000;
const LATENESS_MS = 5 * 60_000;
const FILES = 20;
const FILES_PER_BATCH = 2;

/** What a child run reports. */
interface RunResult {
  variant: string;
  events: number;
  /** Sessions complete at the final watermark (what the app's append-mode output holds). */
  sessions: number;
  wallSeconds: number;
  cpuSeconds: number;
  peakRssBytes: number;
  /** The lanes' thread CPU of an engine run (absent for the other variants and from builds without it). */
  laneCpu?: LaneCpu;
}

interface ClickEvent {
  user_id: string;
  event_type: string;
  page_url: string;
  timestamp: string;
  referrer: string;
  device: { type: string };
  geo: { country: string };
  metadata: { amount?: string };
}

/** One open session of the loop. */
interface OpenSession {
  user: string;
  start: number;
  end: number;
  events: number;
  pageViews: number;
  clicks: number;
  purchases: number;
  pages: Set<string>;
  entry: string;
  exit: string;
  referrer: string;
  device: string;
  country: string;
  revenue: number;
  withoutAmount: number;
}

/** The app's output row of a session, built by hand. */
function sessionRow(s: OpenSession): Record<string, unknown> {
  return {
    session_id: `${s.user}-${s.start}`,
    user_id: s.user,
    start_time: s.start,
    end_time: s.end,
    duration_seconds: Math.round(s.end - s.start) / 1000,
    event_count: s.events,
    page_view_count: s.pageViews,
    click_count: s.clicks,
    purchase_count: s.purchases,
    pages_visited: [...s.pages],
    entry_page: s.entry,
    exit_page: s.exit,
    referrer: s.referrer,
    device_type: s.device,
    country: s.country,
    conversion: s.purchases > 0,
    revenue: Math.round(s.revenue * 100) / 100,
    purchases_without_amount: s.withoutAmount,
  };
}

/**
 * The sessionisation by hand, on events in event-time order: per user one open session; an event more than
 * the gap after it closes it (its row is built) and opens the next. Returns the sessions complete at the
 * final watermark.
 */
function handLoop(files: string[]): { events: number; sessions: number } {
  const open = new Map<string, OpenSession>();
  const closed: Record<string, unknown>[] = [];
  let events = 0;
  let maxTs = -Infinity;
  for (const f of files) {
    for (const line of fs.readFileSync(f, 'utf8').split('\n')) {
      if (line === '') continue;
      const e = JSON.parse(line) as ClickEvent;
      const ts = Date.parse(e.timestamp);
      events++;
      if (ts > maxTs) maxTs = ts;
      let s = open.get(e.user_id);
      if (s !== undefined && ts - s.end > GAP_MS) {
        closed.push(sessionRow(s));
        s = undefined;
      }
      if (s === undefined) {
        s = {
          user: e.user_id,
          start: ts,
          end: ts,
          events: 0,
          pageViews: 0,
          clicks: 0,
          purchases: 0,
          pages: new Set(),
          entry: e.page_url,
          exit: e.page_url,
          referrer: e.referrer,
          device: e.device.type,
          country: e.geo.country,
          revenue: 0,
          withoutAmount: 0,
        };
        open.set(e.user_id, s);
      }
      s.end = ts;
      s.exit = e.page_url;
      s.events++;
      s.pages.add(e.page_url);
      if (e.event_type === 'page_view') s.pageViews++;
      else if (e.event_type === 'click') s.clicks++;
      else if (e.event_type === 'purchase') {
        s.purchases++;
        const amount = Number(e.metadata.amount);
        if (e.metadata.amount === undefined || Number.isNaN(amount)) s.withoutAmount++;
        else s.revenue += amount;
      }
    }
  }
  for (const s of open.values()) closed.push(sessionRow(s));
  const watermark = maxTs - BOUND_MS;
  const sessions = closed.filter((r) => (r.end_time as number) + GAP_MS + LATENESS_MS <= watermark).length;
  return { events, sessions };
}

/** The same sessions and metrics in SQL (the oracle of test/windows), over the same JSON lines files. */
function duckSql(glob: string, minimal: boolean): string {
  const columns = minimal
    ? `{user_id: 'VARCHAR', timestamp: 'TIMESTAMPTZ', metadata: 'STRUCT(amount VARCHAR)'}`
    : `{user_id: 'VARCHAR', event_type: 'VARCHAR', page_url: 'VARCHAR', timestamp: 'TIMESTAMPTZ', referrer: 'VARCHAR', ` +
      `device: 'STRUCT(type VARCHAR)', geo: 'STRUCT("country" VARCHAR)', metadata: 'STRUCT(amount VARCHAR)'}`;
  const src = `read_json('${glob}', format = 'newline_delimited', columns = ${columns})`;
  if (minimal) {
    return `
      WITH e AS (SELECT user_id, epoch_ms(timestamp) AS ms, TRY_CAST(metadata.amount AS DOUBLE) AS amount FROM ${src}),
      m AS (SELECT *, CASE WHEN ms - LAG(ms) OVER w <= ${GAP_MS} THEN 0 ELSE 1 END AS starts FROM e WINDOW w AS (PARTITION BY user_id ORDER BY ms)),
      s AS (SELECT *, SUM(starts) OVER (PARTITION BY user_id ORDER BY ms, starts DESC ROWS UNBOUNDED PRECEDING) AS sn FROM m),
      g AS (SELECT user_id, sn, max(ms) AS end_ms, count(*) AS n, sum(amount) AS amt FROM s GROUP BY ALL)
      SELECT count(*) FILTER (WHERE end_ms + ${GAP_MS + LATENESS_MS} <= (SELECT max(ms) - ${BOUND_MS} FROM e)) AS sessions,
        sum(n) AS events, round(sum(amt), 2) AS revenue FROM g`;
  }
  return `
    WITH e AS (SELECT user_id, event_type, page_url, epoch_ms(timestamp) AS ms, referrer, device.type AS device, geo.country AS country,
        metadata.amount AS amount FROM ${src}),
    m AS (SELECT *, CASE WHEN ms - LAG(ms) OVER (PARTITION BY user_id ORDER BY ms) <= ${GAP_MS} THEN 0 ELSE 1 END AS starts FROM e),
    s AS (SELECT *, SUM(starts) OVER (PARTITION BY user_id ORDER BY ms, starts DESC ROWS UNBOUNDED PRECEDING) AS sn FROM m),
    pages AS (SELECT user_id, sn, list(page_url ORDER BY first_ms, page_url) AS pages_visited
      FROM (SELECT user_id, sn, page_url, MIN(ms) AS first_ms FROM s GROUP BY ALL) GROUP BY ALL),
    agg AS (SELECT user_id, sn, MIN(ms) AS start_ms, MAX(ms) AS end_ms, COUNT(*) AS event_count,
        COUNT(*) FILTER (WHERE event_type = 'page_view') AS page_view_count, COUNT(*) FILTER (WHERE event_type = 'click') AS click_count,
        COUNT(*) FILTER (WHERE event_type = 'purchase') AS purchase_count,
        first(page_url ORDER BY ms, page_url) AS entry_page, first(page_url ORDER BY ms DESC, page_url) AS exit_page,
        first(referrer ORDER BY ms, referrer) AS referrer, first(device ORDER BY ms, device) AS device_type,
        first(country ORDER BY ms, country) AS country,
        round(coalesce(SUM(TRY_CAST(amount AS DOUBLE)) FILTER (WHERE event_type = 'purchase'), 0), 2) AS revenue,
        COUNT(*) FILTER (WHERE event_type = 'purchase' AND TRY_CAST(amount AS DOUBLE) IS NULL) AS purchases_without_amount
      FROM s GROUP BY user_id, sn),
    sessions AS (SELECT agg.*, pages.pages_visited FROM agg JOIN pages USING (user_id, sn))
    SELECT count(*) FILTER (WHERE end_ms + ${GAP_MS + LATENESS_MS} <= (SELECT max(ms) - ${BOUND_MS} FROM e)) AS sessions,
      sum(event_count) AS events, round(sum(revenue), 2) AS revenue, sum(len(pages_visited)) AS pages FROM sessions`;
}

async function duckRun(dir: string, minimal: boolean): Promise<{ events: number; sessions: number }> {
  const { DuckDBInstance } = await import('@duckdb/node-api');
  const db = await DuckDBInstance.create(':memory:');
  const c = await db.connect();
  try {
    const r = await c.runAndReadAll(duckSql(path.join(dir, '*.json'), minimal));
    const row = r.getRowObjectsJson()[0] as Record<string, unknown>;
    return { events: Number(row.events), sessions: Number(row.sessions) };
  } finally {
    c.closeSync();
    db.closeSync();
  }
}

async function engineRun(
  dir: string,
  threads: number,
): Promise<{ events: number; sessions: number; laneCpu: LaneCpu }> {
  const ckpt = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-bench-ckpt-'));
  const lanes = new LaneCpuCollector();
  try {
    let events = 0;
    let sessions = 0;
    const { queries } = await runApp(await loadApp('clickstream-sessions'), {
      sources: [`file:${dir}?maxFilesPerTrigger=${FILES_PER_BATCH}`],
      sinks: ['sessions=noop:', 'late=noop:'],
      checkpoint: ckpt,
      trigger: { availableNow: true },
      threads,
      onProgress: (_o, p) => {
        events += p.numInputRows;
        sessions += p.sink.numOutputRows;
      },
    });
    await Promise.all([...queries.values()].map((q) => q.awaitTermination()));
    return { events, sessions, laneCpu: lanes.figures() };
  } finally {
    fs.rmSync(ckpt, { recursive: true, force: true });
  }
}

/** Child process: runs one variant and prints its RunResult as JSON. */
async function child(variant: string, dir: string): Promise<void> {
  const files = fs
    .readdirSync(dir)
    .filter((n) => n.endsWith('.json'))
    .sort()
    .map((n) => path.join(dir, n));
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const r =
    variant === 'loop'
      ? handLoop(files)
      : variant === 'duckdb' || variant === 'duckdb-min'
        ? await duckRun(dir, variant === 'duckdb-min')
        : await engineRun(dir, Number(variant.split('=')[1]));
  const wallSeconds = (performance.now() - t0) / 1000;
  const u = process.cpuUsage(c0);
  const result: RunResult = {
    variant,
    ...r,
    wallSeconds,
    cpuSeconds: (u.user + u.system) / 1e6,
    peakRssBytes: process.resourceUsage().maxRSS * 1024,
  };
  console.log(JSON.stringify(result));
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

async function main(): Promise<void> {
  const events = Number(process.argv[2] ?? 1_000_000);
  const runs = Number(process.argv[3] ?? 3);
  const variants = process.argv[4]?.split(',') ?? [
    'loop',
    'duckdb',
    'duckdb-min',
    'threads=0',
    'threads=1',
    'threads=2',
  ];
  const dir = path.join(os.tmpdir(), `sluice-bench-clickstream-sessions-${events}`);
  clickstreamFiles(dir, events, FILES);
  console.log(
    `clickstream sessionisation benchmark: ${fmt(events)} events (10,000 users, seed 42) in ${FILES} JSON lines files, ` +
      `${FILES_PER_BATCH} per batch; node ${process.version}, ${os.cpus().length} cpus, load average ${load()}`,
  );
  const results: Record<string, RunResult[]> = Object.fromEntries(variants.map((v) => [v, []]));
  const loads: string[] = [];
  for (let r = 0; r < runs; r++) {
    for (const v of variants) {
      const [variant, build] = v.split('@');
      const script = build ? path.resolve(build, 'bench', 'clickstream-sessions.js') : fileURLToPath(import.meta.url);
      const out = spawnSync(process.execPath, [script, '--child', variant, dir], {
        encoding: 'utf8',
        maxBuffer: 1 << 24,
      });
      if (out.status !== 0) throw new Error(`${v} failed:\n${out.stderr}`);
      const res = JSON.parse(out.stdout.trim().split('\n').pop()!) as RunResult;
      if (res.events !== events) throw new Error(`${v} processed ${res.events} events, expected ${events}`);
      results[v].push(res);
      console.log(
        `run ${r + 1} ${v.padEnd(10)} ${fmt(events / res.wallSeconds).padStart(11)} events/s  (${res.wallSeconds.toFixed(2)} s, ` +
          `${((100 * res.cpuSeconds) / res.wallSeconds).toFixed(0)}% CPU, peak RSS ${(res.peakRssBytes / 2 ** 20).toFixed(0)} MiB, ${fmt(res.sessions)} sessions` +
          `${res.laneCpu ? `, critical path ${res.laneCpu.criticalPath.toFixed(2)} s CPU` : ''})`,
      );
    }
    loads.push(load());
  }
  const sessions = new Set(
    Object.values(results)
      .flat()
      .map((r) => r.sessions),
  );
  if (sessions.size !== 1)
    throw new Error(`the variants disagree on the number of complete sessions: ${[...sessions].join(', ')}`);
  const rate = (v: string): number => median(results[v].map((r) => events / r.wallSeconds));
  const perCpu = (v: string): number => median(results[v].map((r) => events / r.cpuSeconds));
  const base = variants.includes('loop') ? 'loop' : variants[0];
  console.log(
    `\nmedian of ${runs} runs (load average after each round: ${loads.join(' | ')}); ${fmt([...sessions][0])} complete sessions in every variant`,
  );
  console.log(
    `${''.padEnd(10)} ${'events/s'.padStart(11)}  ${'CPU'.padStart(5)}  ${`vs ${base}`.padStart(8)}  ${'ev/CPU-s'.padStart(11)}  per core vs ${base}  peak RSS  critical path vs ${base}`,
  );
  // The critical path's ratio is the wall-clock speed-up idle cores would give (see bench/lane-cpu.ts).
  const criticalPath = (v: string): number => median(results[v].map((r) => r.laneCpu?.criticalPath ?? Number.NaN));
  for (const v of variants) {
    const cpu = median(results[v].map((r) => r.cpuSeconds / r.wallSeconds));
    const rss = median(results[v].map((r) => r.peakRssBytes));
    const critical = criticalPath(base) / criticalPath(v);
    console.log(
      `${v.padEnd(10)} ${fmt(rate(v)).padStart(11)}  ${(100 * cpu).toFixed(0).padStart(4)}%  ${(rate(v) / rate(base)).toFixed(2).padStart(8)}  ` +
        `${fmt(perCpu(v)).padStart(11)}  ${(perCpu(v) / perCpu(base)).toFixed(2).padStart(18)}  ${(rss / 2 ** 20).toFixed(0).padStart(4)} MiB` +
        `${Number.isNaN(critical) ? '' : `  ${critical.toFixed(2).padStart(8)}`}`,
    );
  }
}

if (process.argv[2] === '--child') await child(process.argv[3], process.argv[4]);
else await main();
