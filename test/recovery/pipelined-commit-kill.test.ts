import * as fs from 'node:fs';
import * as path from 'node:path';
import { expect } from 'chai';
import { loggedBatches } from '../checkpoint/helpers.js';
import { crashThenRestart, runCli } from '../support/cli.js';
import { OUTPUTS, userTotalsRuns } from './user-totals-runs.js';

/** The state versions every partition of every operator of a query checkpoint holds a delta or snapshot of. */
function stateVersions(queryCheckpoint: string): number[] {
  const root = path.join(queryCheckpoint, 'state');
  const perPartition = fs
    .readdirSync(root)
    .flatMap((op) => fs.readdirSync(path.join(root, op)).map((p) => path.join(root, op, p)))
    .map((dir) => new Set(fs.readdirSync(dir).map((f) => Number(/^(\d+)\.(delta|snapshot)$/.exec(f)?.[1]))));
  return [...perPartition[0]].filter((v) => perPartition.every((vs) => vs.has(v)));
}

/**
 * A batch reads while the batch before it writes its state and commit, and writes its own offsets only once
 * that batch is complete: its state durable and the commit before it written. Killed while a batch reads, the
 * checkpoint never holds offsets/N without the state of version N and commits/N-2, and the restart gives the
 * output of a run that was never killed.
 */
describe('recovery: SIGKILL while a batch reads and the one before it commits, restart, same output', function () {
  this.timeout(240_000);
  const runs = userTotalsRuns();
  const { reference, args, rowsOf } = runs;

  it('the uninterrupted run has output in both queries over six batches', () => {
    expect(loggedBatches(path.join(runs.root, 'ref-ckpt', 'totals'), 'commits')).to.deep.equal([0, 1, 2, 3, 4, 5]);
    expect(reference.totals.length).to.be.greaterThan(0);
    expect(reference.minutes.length).to.be.greaterThan(0);
  });

  for (const [batch, threads] of [
    [1, 0],
    [4, 0],
    [3, 2],
  ]) {
    it(`killed as batch ${batch} reads (threads ${threads}): no offsets ahead of a batch's state, restart gives the reference`, async () => {
      const out = path.join(runs.root, `out-${batch}-${threads}`);
      const ckpt = path.join(runs.root, `ckpt-${batch}-${threads}`);
      const crashed = await runCli(args(out, ckpt, threads), { env: { SLUICE_CRASH_AT: `in-read:${batch}` } });
      expect(crashed.signal, crashed.stderr).to.equal('SIGKILL');
      for (const o of OUTPUTS) {
        const commits = loggedBatches(path.join(ckpt, o), 'commits');
        for (const n of loggedBatches(path.join(ckpt, o), 'offsets')) {
          if (n > 1) expect(commits, `${o}: offsets/${n} written before commits/${n - 2}`).to.include(n - 2);
          if (n > 0 && !commits.includes(n - 1))
            expect(stateVersions(path.join(ckpt, o)), `${o}: offsets/${n} written before state ${n}`).to.include(n);
        }
      }
      const res = await runCli(args(out, ckpt, threads));
      expect(res.code, res.stderr).to.equal(0);
      for (const o of OUTPUTS) expect(rowsOf(out, o), o).to.deep.equal(reference[o]);
    });
  }

  it('killed after a commit while the next batch may already read: restart gives the reference', async () => {
    const out = path.join(runs.root, 'out-after-commit');
    const ckpt = path.join(runs.root, 'ckpt-after-commit');
    await crashThenRestart(args(out, ckpt, 0), 'after-commit:2');
    for (const o of OUTPUTS) expect(rowsOf(out, o), o).to.deep.equal(reference[o]);
  });
});
