import * as fs from 'node:fs';
import * as path from 'node:path';
import { expect } from 'chai';
import { loggedBatches } from '../checkpoint/helpers.js';
import { runCli } from '../support/cli.js';
import { OUTPUTS, userTotalsRuns } from './user-totals-runs.js';

/** The sizes of every partition's delta file of state version `version` under a query checkpoint. */
function deltaSizes(queryCheckpoint: string, version: number): number[] {
  const root = path.join(queryCheckpoint, 'state');
  if (!fs.existsSync(root)) return [];
  return fs
    .readdirSync(root)
    .flatMap((op) => fs.readdirSync(path.join(root, op)).map((p) => path.join(root, op, p, `${version}.delta`)))
    .filter((f) => fs.existsSync(f))
    .map((f) => fs.statSync(f).size);
}

/**
 * A state file is written under its final name and synced with its directory at once (one journal commit
 * instead of two), its checksum telling a torn one. Killed right after a delta file is created, before its
 * bytes are written, the checkpoint holds an empty delta of a version no commit refers to; the restart runs
 * the batch again, replaces the torn file, and gives the output of a run that was never killed.
 */
describe('recovery: SIGKILL while a state file is written, restart, same output', function () {
  this.timeout(240_000);
  const runs = userTotalsRuns();
  const { reference, args, rowsOf } = runs;

  for (const [batch, threads] of [
    [0, 0],
    [3, 0],
    [2, 2],
  ]) {
    it(`killed as batch ${batch} writes its state (threads ${threads}): a torn delta, restart gives the reference`, async () => {
      const out = path.join(runs.root, `out-${batch}-${threads}`);
      const ckpt = path.join(runs.root, `ckpt-${batch}-${threads}`);
      const crashed = await runCli(args(out, ckpt, threads), { env: { SLUICE_CRASH_AT: `in-state-file:${batch}` } });
      expect(crashed.signal, crashed.stderr).to.equal('SIGKILL');
      const torn = OUTPUTS.filter((o) => deltaSizes(path.join(ckpt, o), batch + 1).includes(0));
      expect(torn, 'a query left an empty delta file behind').to.not.be.empty;
      for (const o of torn)
        expect(loggedBatches(path.join(ckpt, o), 'commits'), `${o}: batch ${batch} committed`).to.not.include(batch);
      const res = await runCli(args(out, ckpt, threads));
      expect(res.code, res.stderr).to.equal(0);
      for (const o of OUTPUTS) {
        expect(rowsOf(out, o), o).to.deep.equal(reference[o]);
        expect(deltaSizes(path.join(ckpt, o), batch + 1), `${o}: every delta of version ${batch + 1}`).to.not.include(
          0,
        );
      }
    });
  }
});
