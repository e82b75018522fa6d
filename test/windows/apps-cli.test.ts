/**
 * The window apps end to end through the `sluice` command: generated files in, JSON lines out, with the
 * worker pool and with a restart in the middle.
 */

import * as fs from 'node:fs';
import * as path from 'node:path';
import { expect } from 'chai';
import { runCli } from '../support/cli.js';
import { tmpDir } from './support.js';

type Row = Record<string, unknown>;

/** Every JSON line of the .jsonl files under `dir`, in file-name order. */
function readJsonLines(dir: string): Row[] {
  if (!fs.existsSync(dir)) return [];
  const files = fs
    .readdirSync(dir, { recursive: true })
    .map(String)
    .filter((f) => f.endsWith('.jsonl'))
    .sort();
  return files.flatMap((f) =>
    fs
      .readFileSync(path.join(dir, f), 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Row),
  );
}

async function sluice(args: string[]): Promise<string> {
  const r = await runCli(args, { timeoutMs: 180_000 });
  expect(r.code, `sluice ${args.join(' ')}\n${r.stderr}`).to.equal(0);
  return r.stderr;
}

const canonical = (rows: Row[]): string[] => rows.map((r) => JSON.stringify(r)).sort();

describe('window apps through the CLI', function () {
  this.timeout(600_000);
  let dir: string;
  before(() => {
    dir = tmpDir();
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('clickstream-sessions: sessions and late events, the same with 2 worker threads and across a restart', async () => {
    const data = path.join(dir, 'clicks');
    await sluice([
      'gen',
      'clickstream',
      '--count',
      '3000',
      '--seed',
      '9',
      '--users',
      '100',
      '--spacing',
      '2s',
      '--max-out-of-orderness',
      '5m',
      '--late-fraction',
      '0.02',
      '--late-by',
      '40m..90m',
      '--mark-late',
      '--rows-per-file',
      '500',
      '--to',
      `file:${data}/`,
    ]);
    const run = async (name: string, extra: string[], input = data): Promise<{ sessions: Row[]; late: Row[] }> => {
      const out = path.join(dir, name);
      await sluice([
        'run',
        'clickstream-sessions',
        '--source',
        `file:${input}?maxFilesPerTrigger=1`,
        '--sink',
        `sessions=file:${out}/sessions`,
        '--sink',
        `late=file:${out}/late`,
        '--checkpoint',
        `${out}/ckpt`,
        '--quiet',
        ...extra,
      ]);
      return { sessions: readJsonLines(`${out}/sessions`), late: readJsonLines(`${out}/late`) };
    };
    const single = await run('t0', ['--trigger', 'available-now']);
    const pooled = await run('t2', ['--trigger', 'available-now', '--threads', '2']);
    // A restart between two runs over a growing directory: the second run continues from the checkpoint.
    const growing = path.join(dir, 'growing');
    fs.mkdirSync(growing);
    const parts = fs.readdirSync(data).sort();
    for (const f of parts.slice(0, 3)) fs.copyFileSync(path.join(data, f), path.join(growing, f));
    await run('restarted', ['--trigger', 'available-now'], growing);
    for (const f of parts.slice(3)) fs.copyFileSync(path.join(data, f), path.join(growing, f));
    const restarted = await run('restarted', ['--trigger', 'available-now'], growing);

    expect(single.sessions.length).to.be.above(100);
    expect(new Set(single.sessions.map((s) => s.session_id)).size).to.equal(single.sessions.length);
    const s = single.sessions[0];
    expect(s.start_time).to.match(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    expect(Object.keys(s)).to.deep.equal([
      'session_id',
      'user_id',
      'start_time',
      'end_time',
      'duration_seconds',
      'event_count',
      'page_view_count',
      'click_count',
      'purchase_count',
      'pages_visited',
      'entry_page',
      'exit_page',
      'referrer',
      'device_type',
      'country',
      'conversion',
      'revenue',
      'purchases_without_amount',
    ]);
    // Late events: each once, each one the generator marked as beyond the bound, and with the watermark of its batch.
    expect(single.late.length).to.be.above(10);
    expect(new Set(single.late.map((r) => `${r.user_id} ${r.timestamp} ${r.page_url}`)).size).to.equal(
      single.late.length,
    );
    const marked = new Map(
      readJsonLines(data).map((e) => [`${e.user_id} ${e.timestamp} ${e.page_url}`, e.late as boolean]),
    );
    for (const r of single.late) {
      expect(marked.get(`${r.user_id} ${r.timestamp} ${r.page_url}`)).to.equal(true);
      expect(Date.parse(r.timestamp as string)).to.be.at.most(Date.parse(r.late_watermark as string) - 5 * 60_000);
    }
    for (const other of [pooled, restarted]) {
      expect(canonical(other.sessions)).to.deep.equal(canonical(single.sessions));
      expect(canonical(other.late)).to.deep.equal(canonical(single.late));
    }
  });

  it('clickstream-metrics: three window sizes, each window once, with window_start and window_end', async () => {
    const out = path.join(dir, 'metrics');
    const data = path.join(dir, 'ontime');
    await sluice([
      'gen',
      'clickstream',
      '--count',
      '3000',
      '--seed',
      '4',
      '--users',
      '200',
      '--spacing',
      '1s',
      '--max-out-of-orderness',
      '5m',
      '--rows-per-file',
      '600',
      '--to',
      `file:${data}/`,
    ]);
    const stderr = await sluice([
      'run',
      'clickstream-metrics',
      '--source',
      `file:${data}?maxFilesPerTrigger=1`,
      '--sink',
      `metrics-1m=file:${out}/1m`,
      '--sink',
      `metrics-5m=file:${out}/5m`,
      '--sink',
      `metrics-1h=file:${out}/1h`,
      '--checkpoint',
      `${out}/ckpt`,
      '--trigger',
      'available-now',
    ]);
    expect(stderr).to.match(/\[metrics-5m\] batch \d+/);
    const sizes: Record<string, number> = { '1m': 60_000, '5m': 300_000, '1h': 3_600_000 };
    for (const [name, size] of Object.entries(sizes)) {
      const rows = readJsonLines(`${out}/${name}`);
      expect(rows.length, name).to.be.above(0);
      expect(new Set(rows.map((r) => r.window_start)).size, name).to.equal(rows.length);
      for (const r of rows) {
        expect(Date.parse(r.window_end as string) - Date.parse(r.window_start as string)).to.equal(size);
        expect(r.total_events).to.equal(
          Object.values(r.device_breakdown as Record<string, number>).reduce((a, b) => a + b, 0),
        );
        expect(r.top_pages as unknown[]).to.have.length.at.most(10);
      }
    }
    const m1 = readJsonLines(`${out}/1m`);
    const m5 = readJsonLines(`${out}/5m`);
    // A 5-minute window holds exactly the events of its five 1-minute windows (no event is late here); every
    // 1-minute window inside an emitted 5-minute window has been emitted too (a minute without events has no row).
    const byStart = new Map(m1.map((r) => [Date.parse(r.window_start as string), r.total_events as number]));
    expect(m5.length).to.be.above(10);
    for (const r of m5) {
      const sum = [0, 1, 2, 3, 4].reduce(
        (a, k) => a + (byStart.get(Date.parse(r.window_start as string) + k * 60_000) ?? 0),
        0,
      );
      expect(r.total_events, r.window_start as string).to.equal(sum);
    }
  });

  it('active-session-totals: session sums and the running total, the same with 2 worker threads', async () => {
    const run = async (name: string, threads: string): Promise<{ sessions: Row[]; totals: Row[] }> => {
      const out = path.join(dir, name);
      await sluice([
        'run',
        'active-session-totals',
        '--source',
        'file:data/transactions?maxFilesPerTrigger=1',
        '--threads',
        threads,
        '--sink',
        `sessions=file:${out}/sessions`,
        '--sink',
        `totals=file:${out}/totals`,
        '--checkpoint',
        `${out}/ckpt`,
        '--trigger',
        'available-now',
        '--quiet',
      ]);
      return { sessions: readJsonLines(`${out}/sessions`), totals: readJsonLines(`${out}/totals`) };
    };
    const t0 = await run('ast0', '0');
    const t2 = await run('ast2', '2');
    expect(t0.totals.length).to.be.at.least(2);
    expect(t0.totals.map((r) => [r.total, r.active_sessions])).to.deep.equal(
      t2.totals.map((r) => [r.total, r.active_sessions]),
    );
    expect(canonical(t0.sessions)).to.deep.equal(canonical(t2.sessions));
    const last = t0.totals[t0.totals.length - 1];
    expect(last.active_sessions).to.be.above(0);
    expect(Object.keys(last)).to.deep.equal(['total', 'active_sessions', 'updated_at']);
  });
});
