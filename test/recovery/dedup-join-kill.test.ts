import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { expect } from 'chai';
import { crashThenRestart, readProgressLog, runCli, TEST_APPS } from '../support/cli.js';

const FILES = 10;
const ROWS = 30;
const USERS: Record<string, string> = { u0: 'fr', u1: 'de', u3: 'it' };

interface Event {
  id: number;
  user: string;
  amount: number;
  ts: string;
}

/**
 * Event files in time order; about a fifth of the events are resent (same id and values, half a second later),
 * some in the next file: each resend lies well within the 5-second watermark delay of the dedup app.
 */
function writeInput(dir: string): Event[] {
  fs.mkdirSync(dir, { recursive: true });
  const all: Event[] = [];
  let carry: Event[] = [];
  for (let f = 0; f < FILES; f++) {
    const rows: Event[] = [...carry];
    carry = [];
    for (let r = 0; r < ROWS; r++) {
      const id = f * ROWS + r;
      const e = {
        id,
        user: `u${id % 5}`,
        amount: (id % 7) + 0.5,
        ts: new Date(1_700_000_000_000 + id * 100).toISOString(),
      };
      rows.push(e);
      if (id % 5 === 2) {
        const resend = { ...e, ts: new Date(Date.parse(e.ts) + 500).toISOString() };
        if (r >= ROWS - 3) carry.push(resend);
        else rows.push(resend);
      }
    }
    all.push(...rows);
    const file = path.join(dir, `part-${String(f).padStart(3, '0')}.json`);
    fs.writeFileSync(file, `${rows.map((e) => JSON.stringify(e)).join('\n')}\n`);
    const t = new Date(1_700_000_000_000 + f * 1000);
    fs.utimesSync(file, t, t);
  }
  return all;
}

/** Every output row of a JSON-lines sink directory as sorted JSON text, duplicates kept. */
function readOutput(dir: string): string[] {
  const rows: string[] = [];
  if (!fs.existsSync(dir)) return rows;
  for (const e of fs.readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (!e.isFile() || !/\.jsonl?$/.test(e.name) || e.name.startsWith('_') || e.parentPath.includes('/_')) continue;
    for (const line of fs.readFileSync(path.join(e.parentPath, e.name), 'utf8').split('\n').filter(Boolean)) {
      const row = JSON.parse(line) as Record<string, unknown>;
      rows.push(JSON.stringify(Object.fromEntries(Object.entries(row).sort(([a], [b]) => (a < b ? -1 : 1)))));
    }
  }
  return rows.sort();
}

const canonical = (rows: Record<string, unknown>[]): string[] =>
  rows.map((r) => JSON.stringify(Object.fromEntries(Object.entries(r).sort(([a], [b]) => (a < b ? -1 : 1))))).sort();

describe('recovery: SIGKILL a deduplicating and a stream-static join query, restart, same output', function () {
  this.timeout(300_000);
  let root: string;
  let input: string;
  let users: string;
  let events: Event[];

  const args = (app: string, out: string, ckpt: string, threads = 0, extra: string[] = []): string[] => [
    'run',
    path.join(TEST_APPS, `${app}.js`),
    '--source',
    `file:${input}?maxFilesPerTrigger=2`,
    '--sink',
    `file:${out}`,
    '--checkpoint',
    ckpt,
    '--trigger',
    'available-now',
    '--threads',
    String(threads),
    '--quiet',
    ...(app === 'side-join' ? ['--users', users] : []),
    ...extra,
  ];

  /** Each id once, with the values of its first sending, as `id|time|user|amount`. */
  const dedupReference = (): string[] => {
    const seen = new Set<number>();
    const out: string[] = [];
    for (const e of events) {
      if (seen.has(e.id)) continue;
      seen.add(e.id);
      out.push(`${e.id}|${Date.parse(e.ts)}|${e.user}|${e.amount}`);
    }
    return out.sort();
  };
  const dedupRows = (rows: string[]): string[] =>
    rows
      .map((r) => JSON.parse(r) as Event)
      .map((e) => `${e.id}|${Date.parse(e.ts)}|${e.user}|${e.amount}`)
      .sort();

  /** Every event with its user's country (null for users not in the file), label as the app builds it. */
  const joinReference = (): string[] =>
    canonical(
      events.map((e) => {
        const country = USERS[e.user] ?? null;
        return { id: e.id, user: e.user, amount: e.amount, country, label: `${country ?? '-'}:${e.id}` };
      }),
    );

  before(() => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-recovery-dj-'));
    input = path.join(root, 'in');
    events = writeInput(input);
    users = path.join(root, 'users.jsonl');
    fs.writeFileSync(
      users,
      Object.entries(USERS)
        .map(([user, country]) => JSON.stringify({ user, country }))
        .join('\n'),
    );
  });
  after(() => fs.rmSync(root, { recursive: true, force: true }));

  it('the uninterrupted runs give the references', async () => {
    const out = path.join(root, 'dedup-ref');
    let res = await runCli(args('dedup', out, path.join(root, 'dedup-ref-ckpt')));
    expect(res.code, res.stderr).to.equal(0);
    expect(dedupRows(readOutput(out)))
      .to.deep.equal(dedupReference())
      .and.to.have.length(FILES * ROWS);
    res = await runCli(args('side-join', path.join(root, 'join-ref'), path.join(root, 'join-ref-ckpt')));
    expect(res.code, res.stderr).to.equal(0);
    expect(readOutput(path.join(root, 'join-ref'))).to.deep.equal(joinReference());
  });

  const points = ['before-offsets', 'after-offsets', 'in-sink', 'after-sink', 'after-commit'];
  for (const app of ['dedup', 'side-join']) {
    for (const point of points) {
      const batch = point === 'in-sink' ? 0 : 2;
      it(`${app} killed at ${point} of batch ${batch}: the restart gives the reference output`, async () => {
        const out = path.join(root, `${app}-${point}`);
        await crashThenRestart(args(app, out, path.join(root, `${app}-${point}-ckpt`)), `${point}:${batch}`);
        const rows = readOutput(out);
        if (app === 'dedup') expect(dedupRows(rows)).to.deep.equal(dedupReference());
        else expect(rows).to.deep.equal(joinReference());
      });
    }
  }

  for (const app of ['dedup', 'side-join']) {
    it(`${app} survives repeated kills at random moments with 2 worker threads`, async () => {
      const out = path.join(root, `${app}-random`);
      const ckpt = path.join(root, `${app}-random-ckpt`);
      for (let i = 0; i < 3; i++) await runCli(args(app, out, ckpt, 2), { timeoutMs: 400 + i * 300 });
      const res = await runCli(args(app, out, ckpt, 2));
      expect(res.code, res.stderr).to.equal(0);
      const rows = readOutput(out);
      if (app === 'dedup') expect(dedupRows(rows)).to.deep.equal(dedupReference());
      else expect(rows).to.deep.equal(joinReference());
    });
  }

  it('sluice checkpoint --state shows the dedup keys and the last numDroppedDuplicateRows', async () => {
    const ckpt = path.join(root, 'dedup-state-ckpt');
    const log = path.join(root, 'progress.jsonl');
    const res = await runCli(args('dedup', path.join(root, 'dedup-state'), ckpt, 0, ['--progress-log', log]));
    expect(res.code, res.stderr).to.equal(0);
    const progress = readProgressLog(log);
    const dropped = progress.reduce((a, p) => a + (p.stateOperators[0].customMetrics?.numDroppedDuplicateRows ?? 0), 0);
    expect(dropped).to.equal(events.length - FILES * ROWS);
    const last = progress[progress.length - 1];
    const op = last.stateOperators[0];
    const state = await runCli(['checkpoint', ckpt, '--state', op.operatorName, '--progress-log', log, '--limit', '3']);
    expect(state.code, state.stderr).to.equal(0);
    expect(state.stdout).to.include(`${op.numRowsTotal} rows`);
    expect(state.stdout).to.include(
      `last progress, batch ${last.batchId}: numDroppedDuplicateRows ${op.customMetrics!.numDroppedDuplicateRows}`,
    );
  });
});
