import * as fs from 'node:fs';
import * as path from 'node:path';
import { expect } from 'chai';
import { loadApp, runApp } from '../../lib/app/app-runner.js';
import { ManualClock } from '../../lib/testing/index.js';
import { runCli } from '../support/cli.js';
import { depositData, expectedSessions, readSinkRows, tempDir, writeParts } from './helpers.js';

const row = (
  sessionId: string | null,
  currentBalance: number | null,
  deposit: boolean,
  timeout = false,
  malformed: string | null = null,
) => ({ sessionId, currentBalance, depositCurrentBalance: deposit, closedByTimeout: timeout, malformed });

describe('app deposit-sessions', function () {
  this.timeout(120_000);
  let root: string;
  beforeEach(() => {
    root = tempDir();
  });
  afterEach(() => fs.rmSync(root, { recursive: true, force: true }));

  const cli = (input: string, out: string, extra: string[] = []) =>
    runCli([
      'run',
      'deposit-sessions',
      '--source',
      `file:${input}`,
      '--sink',
      `file:${out}`,
      '--checkpoint',
      path.join(root, `ckpt-${path.basename(out)}`),
      '--trigger',
      'available-now',
      '--quiet',
      ...extra,
    ]);

  it('sums wins per session, closes on deposit (re-opening in the same batch), reports malformed lines', async () => {
    const input = path.join(root, 'in');
    writeParts(
      input,
      ['s1,2.76', 's2,10', 's1,7.07', 's1,0,true', 's1,5', '', 's2,abc', 's3,1,TRUE', 's2,1,maybe', ',4', 's2,2.5'],
      100,
      '.txt',
    );
    const res = await cli(input, path.join(root, 'out'));
    expect(res.code, res.stderr).to.equal(0);
    const rows = readSinkRows(path.join(root, 'out'));
    const bySession = (id: string | null) => rows.filter((r) => r.sessionId === id);
    expect(bySession('s1')).to.deep.equal([row('s1', 9.83, true), row('s1', 5, false)]);
    expect(bySession('s2')).to.deep.equal([
      row('s2', null, false, false, "winAmount 'abc' is not a number: s2,abc"),
      row('s2', null, false, false, "deposit flag 'maybe' is not true or false: s2,1,maybe"),
      row('s2', 12.5, false),
    ]);
    expect(bySession('s3')).to.deep.equal([row('s3', 1, true)]);
    expect(bySession(null)).to.deep.equal([row(null, null, false, false, 'the sessionId is empty: ,4')]);
    expect(rows).to.have.length(7);

    const dropped = await cli(input, path.join(root, 'out-drop'), ['--mode', 'DROPMALFORMED']);
    expect(dropped.code, dropped.stderr).to.equal(0);
    expect(readSinkRows(path.join(root, 'out-drop')).filter((r) => r.malformed !== null)).to.deep.equal([]);
    expect(readSinkRows(path.join(root, 'out-drop')).filter((r) => r.sessionId === 's2')).to.deep.equal([
      row('s2', 12.5, false),
    ]);

    const failed = await cli(input, path.join(root, 'out-fail'), ['--mode', 'FAILFAST']);
    expect(failed.code).to.not.equal(0);
    expect(failed.stderr).to.match(/malformed line "s2,abc": winAmount 'abc' is not a number/);
    expect(failed.stderr).to.not.match(/^\s+at /m);
  });

  it('matches the per-session fold over generated data read in several batches', async () => {
    const { records, lines } = depositData(3000);
    const input = path.join(root, 'in');
    writeParts(input, lines, 400, '.txt');
    const res = await runCli([
      'run',
      'deposit-sessions',
      '--source',
      `file:${input}?maxFilesPerTrigger=1`,
      '--sink',
      `file:${path.join(root, 'out')}`,
      '--checkpoint',
      path.join(root, 'ckpt'),
      '--trigger',
      'available-now',
      '--threads',
      '2',
      '--quiet',
    ]);
    expect(res.code, res.stderr).to.equal(0);
    const rows = readSinkRows(path.join(root, 'out'));
    const { deposited, open } = expectedSessions(records);
    const closes = rows.filter((r) => r.depositCurrentBalance);
    expect(closes).to.have.length(deposited.size);
    expect(new Map(closes.map((r) => [r.sessionId as string, r.currentBalance as number]))).to.deep.equal(deposited);
    const lastRunning = new Map<string, number>();
    for (const r of rows)
      if (!r.depositCurrentBalance) lastRunning.set(r.sessionId as string, r.currentBalance as number);
    for (const [id, balance] of open) expect(lastRunning.get(id), id).to.equal(balance);
    expect(rows.every((r) => r.malformed === null && r.closedByTimeout === false)).to.equal(true);
  });

  it('closes idle sessions by processing-time timeout, in worker threads', async () => {
    const input = path.join(root, 'in');
    writeParts(input, ['a,1', 'b,2', 'a,3'], 10, '.txt');
    const clock = new ManualClock(1_700_000_000_000);
    const app = await loadApp('deposit-sessions');
    const { session, queries } = await runApp(app, {
      sources: [`file:${input}`],
      sinks: ['memory:'],
      threads: 2,
      clock,
      checkpoint: path.join(root, 'ckpt'),
      options: { 'session-timeout': '10m' },
    });
    const q = queries.get('sessions')!;
    try {
      await q.processAllAvailable();
      const first = session
        .table('deposit-sessions.sessions')
        .sort((x, y) => String(x.sessionId).localeCompare(String(y.sessionId)));
      expect(first).to.deep.equal([row('a', 4, false), row('b', 2, false)]);
      clock.advance(5 * 60_000);
      fs.writeFileSync(path.join(input, 'part-9999.txt'), 'b,1\n');
      await q.processAllAvailable();
      clock.advance(5 * 60_000); // a idle for 10 minutes: closed; b got a line 5 minutes ago
      await q.processAllAvailable();
      const tail = session.table('deposit-sessions.sessions').slice(2);
      expect(tail).to.deep.equal([row('b', 3, false), row('a', 4, false, true)]);
      expect(q.lastProgress!.stateOperators[0].numKeysTimedOut).to.equal(1);
    } finally {
      await q.stop();
    }
  });
});
