import * as fs from 'node:fs';
import * as path from 'node:path';
import { expect } from 'chai';
import { loadApp, runApp } from '../../lib/app/app-runner.js';
import { ManualClock } from '../../lib/testing/index.js';
import { crashThenRestart, runCli } from '../support/cli.js';
import { depositData, readSinkRows, tempDir, writeParts } from './helpers.js';

type Api = 'mapGroupsWithState' | 'transformWithState';

describe('app deposit-sessions with --state-api transformWithState', function () {
  this.timeout(240_000);
  let root: string;
  beforeEach(() => {
    root = tempDir();
  });
  afterEach(() => fs.rmSync(root, { recursive: true, force: true }));

  /**
   * Runs the app over `lines` fed a file at a time, the clock moving 4 minutes after each (so sessions idle
   * for the 10-minute timeout close between files and in batches without data); returns every output row in order.
   */
  async function sessions(api: Api, threads: number, lines: string[]): Promise<Record<string, unknown>[]> {
    const input = path.join(root, `in-${api}-${threads}`);
    fs.mkdirSync(input);
    const clock = new ManualClock(1_700_000_000_000);
    const app = await loadApp('deposit-sessions');
    const { session, queries } = await runApp(app, {
      sources: [`file:${input}`],
      sinks: ['memory:'],
      threads,
      clock,
      checkpoint: path.join(root, `ckpt-${api}-${threads}`),
      options: { 'session-timeout': '10m', 'state-api': api },
    });
    const q = queries.get('sessions')!;
    try {
      for (let at = 0, f = 0; at < lines.length; at += 150, f++) {
        fs.writeFileSync(
          path.join(input, `part-${String(f).padStart(4, '0')}.txt`),
          `${lines.slice(at, at + 150).join('\n')}\n`,
        );
        await q.processAllAvailable();
        clock.advance(4 * 60_000);
        await q.processAllAvailable();
      }
      clock.advance(60 * 60_000);
      await q.processAllAvailable();
      return session.table('deposit-sessions.sessions');
    } finally {
      await q.stop();
    }
  }

  it('writes the same rows in the same order as the mapGroupsWithState variant, timeouts included, at threads 0 and 2', async () => {
    const { lines } = depositData(1500);
    // Sessions that stop getting lines, so that some close by timeout rather than by deposit.
    const withIdle = lines.map((l, i) => (i % 7 === 3 ? l.replace(/^[^,]*/, `idle-${i}`) : l));
    const reference = await sessions('mapGroupsWithState', 0, withIdle);
    const timedOut = reference.filter((r) => r.closedByTimeout).length;
    expect(timedOut, 'sessions closed by timeout').to.be.greaterThan(100);
    expect(reference.filter((r) => r.depositCurrentBalance).length).to.be.greaterThan(0);
    expect(await sessions('transformWithState', 0, withIdle)).to.deep.equal(reference);
    expect(await sessions('transformWithState', 2, withIdle)).to.deep.equal(reference);
  });

  describe('SIGKILL and restart', () => {
    const args = (input: string, out: string, ckpt: string, api: Api, threads = 0): string[] => [
      'run',
      'deposit-sessions',
      '--source',
      `file:${input}?maxFilesPerTrigger=1`,
      '--sink',
      `file:${out}`,
      '--checkpoint',
      ckpt,
      '--trigger',
      'available-now',
      '--state-api',
      api,
      '--threads',
      String(threads),
      '--quiet',
    ];
    const sorted = (dir: string) =>
      readSinkRows(dir)
        .map((r) => JSON.stringify(r))
        .sort();

    it('continues with the same sessions and balances, giving the rows of an uninterrupted mapGroupsWithState run', async () => {
      const { lines } = depositData(2000);
      const input = path.join(root, 'in');
      writeParts(input, lines, 250, '.txt');
      const ref = await runCli(args(input, path.join(root, 'ref'), path.join(root, 'ref-ckpt'), 'mapGroupsWithState'));
      expect(ref.code, ref.stderr).to.equal(0);
      const reference = sorted(path.join(root, 'ref'));
      expect(reference.length).to.be.greaterThan(400);
      for (const [point, threads] of [
        ['after-offsets:2', 0],
        ['in-sink:4', 0],
        ['after-commit:3', 2],
      ] as const) {
        const out = path.join(root, `out-${point}`);
        await crashThenRestart(
          args(input, out, path.join(root, `ckpt-${point}`), 'transformWithState', threads),
          point,
        );
        expect(sorted(out), point).to.deep.equal(reference);
      }
    });
  });
});
