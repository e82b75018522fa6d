import * as fs from 'node:fs';
import * as path from 'node:path';
import { expect } from 'chai';
import type { BankEntry } from '../../lib/gen/bank.js';
import { loggedBatches } from '../checkpoint/helpers.js';
import { bankData, tempDir, writeParts } from '../stateful/helpers.js';
import { runCli } from '../support/cli.js';

/** The batch ids committed in one query's checkpoint. */
const commits = (ckpt: string, output: string): number[] => loggedBatches(path.join(ckpt, output), 'commits');

describe('recovery: the queries of an app stay in step', function () {
  this.timeout(240_000);
  let root: string;
  let entries: BankEntry[];

  before(() => {
    root = tempDir();
    entries = bankData(2400, 60);
  });
  after(() => fs.rmSync(root, { recursive: true, force: true }));

  /** bank-account over `input`, two files a batch, both outputs into `dir`. */
  function args(input: string, dir: string): string[] {
    return [
      'run',
      'bank-account',
      '--source',
      `file:${input}?maxFilesPerTrigger=2`,
      '--sink',
      `movements=file:${path.join(dir, 'movements')}`,
      '--sink',
      `accounts=file:${path.join(dir, 'accounts')}`,
      '--checkpoint',
      path.join(dir, 'ckpt'),
      '--trigger',
      'available-now',
      '--quiet',
    ];
  }

  /** A run over the first 6 of 12 input files (3 batches per query), then the other 6 files arrive. */
  async function halfRun(name: string): Promise<{ input: string; dir: string; ckpt: string }> {
    const dir = path.join(root, name);
    const input = path.join(dir, 'in');
    const lines = entries.map((e) => JSON.stringify(e.operation));
    writeParts(input, lines.slice(0, 1200), 200, '.jsonl');
    const res = await runCli(args(input, dir));
    expect(res.code, res.stderr).to.equal(0);
    const ckpt = path.join(dir, 'ckpt');
    expect(commits(ckpt, 'movements')).to.deep.equal([0, 1, 2]);
    expect(commits(ckpt, 'accounts')).to.deep.equal([0, 1, 2]);
    const more = path.join(dir, 'more');
    writeParts(more, lines.slice(1200), 200, '.jsonl');
    for (const f of fs.readdirSync(more)) {
      const to = path.join(input, f.replace('part-', 'part-1'));
      fs.renameSync(path.join(more, f), to);
      const t = new Date(1_800_000_000_000 + fs.readdirSync(input).length * 1000);
      fs.utimesSync(to, t, t);
    }
    return { input, dir, ckpt };
  }

  const damages: { what: string; damage: (ckpt: string) => string; message: RegExp }[] = [
    {
      what: 'a truncated offsets/N',
      damage: (ckpt) => {
        const file = path.join(ckpt, 'accounts', 'offsets', '2');
        fs.truncateSync(file, Math.floor(fs.statSync(file).size / 2));
        return file;
      },
      message: /^sluice: error: checkpoint file .*accounts\/offsets\/2 is corrupt/,
    },
    {
      what: 'a deleted state delta',
      damage: (ckpt) => {
        const state = path.join(ckpt, 'accounts', 'state');
        const file = (fs.readdirSync(state, { recursive: true }) as string[])
          .filter((rel) => rel.endsWith(`${path.sep}3.delta`))
          .map((rel) => path.join(state, rel))[0];
        fs.rmSync(file);
        return file;
      },
      message: /^sluice: error: .*accounts\/state\/.*3\.delta/,
    },
  ];
  for (const d of damages) {
    it(`${d.what} in one query's checkpoint: no query of the app runs a batch, one line names it, on every restart`, async () => {
      const { input, dir, ckpt } = await halfRun(d.what.replace(/\W+/g, '-'));
      const file = d.damage(ckpt);
      for (let attempt = 0; attempt < 2; attempt++) {
        const res = await runCli(args(input, dir));
        expect(res.code, res.stderr).to.equal(1);
        const lines = res.stderr.split('\n').filter(Boolean);
        expect(lines, res.stderr).to.have.length(1);
        expect(lines[0]).to.match(d.message);
        expect(lines[0]).to.include(path.basename(file));
        expect(commits(ckpt, 'movements'), 'the healthy query did not run ahead').to.deep.equal([0, 1, 2]);
        expect(fs.readdirSync(path.join(ckpt, 'movements', 'offsets')).sort()).to.deep.equal(['0', '1', '2']);
      }
    });
  }

  it('a query that fails mid-run stops the other one with it', async () => {
    const { input, dir, ckpt } = await halfRun('mid-run');
    // The accounts query cannot commit the first batch of this run (batch 3).
    const res = await runCli(args(input, dir), { env: { SLUICE_WRITE_FAULT: 'ENOSPC:/ckpt/accounts/commits/:1' } });
    expect(res.code, res.stderr).to.equal(1);
    expect(res.stderr).to.include('accounts/commits/3');
    expect(commits(ckpt, 'accounts')).to.deep.equal([0, 1, 2]);
    // The movements query may finish the batch it is running, not the rest of the input (batches 3-5).
    expect(commits(ckpt, 'movements').length).to.be.lessThan(6);
    const again = await runCli(args(input, dir));
    expect(again.code, again.stderr).to.equal(0);
    expect(commits(ckpt, 'accounts')).to.deep.equal([0, 1, 2, 3, 4, 5]);
    expect(commits(ckpt, 'movements')).to.deep.equal([0, 1, 2, 3, 4, 5]);
  });
});
