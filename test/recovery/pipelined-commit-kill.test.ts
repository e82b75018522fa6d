import * as fs from 'node:fs';
import * as path from 'node:path';
import { expect } from 'chai';
import { loggedBatches } from '../checkpoint/helpers.js';
import { readSinkRows, tempDir, writeParts } from '../stateful/helpers.js';
import { crashThenRestart, runCli, TEST_APPS } from '../support/cli.js';

const OUTPUTS = ['totals', 'minutes'];

/**
 * A batch reads while the batch before it writes its commit, and writes its own offsets only once that
 * commit is durable. Killed while a batch reads, the checkpoint never holds offsets/N without commits/N-1,
 * and the restart gives the output of a run that was never killed.
 */
describe('recovery: SIGKILL while a batch reads and the one before it commits, restart, same output', function () {
  this.timeout(240_000);
  let root: string;
  let input: string;
  const reference: Record<string, string[]> = {};
  const app = path.join(TEST_APPS, '..', '..', 'cli', 'apps', 'user-totals.js');
  const args = (out: string, ckpt: string, threads: number): string[] => [
    'run',
    app,
    '--source',
    `payments=file:${input}?maxFilesPerTrigger=2`,
    ...OUTPUTS.flatMap((o) => ['--sink', `${o}=file:${path.join(out, o)}`]),
    '--checkpoint',
    ckpt,
    '--trigger',
    'available-now',
    '--threads',
    String(threads),
    '--quiet',
  ];
  const rowsOf = (out: string, output: string): string[] =>
    readSinkRows(path.join(out, output))
      .map((r) => JSON.stringify(r))
      .sort();

  before(async () => {
    root = tempDir();
    input = path.join(root, 'in');
    const lines = Array.from({ length: 480 }, (_, i) =>
      JSON.stringify({ ts: new Date(1_700_000_000_000 + i * 1000).toISOString(), user: `u${i % 7}`, amount: i % 11 }),
    );
    writeParts(input, lines, 40, '.jsonl');
    const res = await runCli(args(path.join(root, 'ref'), path.join(root, 'ref-ckpt'), 0));
    expect(res.code, res.stderr).to.equal(0);
    for (const o of OUTPUTS) reference[o] = rowsOf(path.join(root, 'ref'), o);
  });
  after(() => fs.rmSync(root, { recursive: true, force: true }));

  it('the uninterrupted run has output in both queries over six batches', () => {
    expect(loggedBatches(path.join(root, 'ref-ckpt', 'totals'), 'commits')).to.deep.equal([0, 1, 2, 3, 4, 5]);
    expect(reference.totals.length).to.be.greaterThan(0);
    expect(reference.minutes.length).to.be.greaterThan(0);
  });

  for (const [batch, threads] of [
    [1, 0],
    [4, 0],
    [3, 2],
  ]) {
    it(`killed as batch ${batch} reads (threads ${threads}): no offsets ahead of a commit, restart gives the reference`, async () => {
      const out = path.join(root, `out-${batch}-${threads}`);
      const ckpt = path.join(root, `ckpt-${batch}-${threads}`);
      const crashed = await runCli(args(out, ckpt, threads), { env: { SLUICE_CRASH_AT: `in-read:${batch}` } });
      expect(crashed.signal, crashed.stderr).to.equal('SIGKILL');
      for (const o of OUTPUTS) {
        const commits = loggedBatches(path.join(ckpt, o), 'commits');
        for (const n of loggedBatches(path.join(ckpt, o), 'offsets'))
          if (n > 0) expect(commits, `${o}: offsets/${n} written before commits/${n - 1}`).to.include(n - 1);
      }
      const res = await runCli(args(out, ckpt, threads));
      expect(res.code, res.stderr).to.equal(0);
      for (const o of OUTPUTS) expect(rowsOf(out, o), o).to.deep.equal(reference[o]);
    });
  }

  it('killed after a commit while the next batch may already read: restart gives the reference', async () => {
    const out = path.join(root, 'out-after-commit');
    const ckpt = path.join(root, 'ckpt-after-commit');
    await crashThenRestart(args(out, ckpt, 0), 'after-commit:2');
    for (const o of OUTPUTS) expect(rowsOf(out, o), o).to.deep.equal(reference[o]);
  });
});
