import * as fs from 'node:fs';
import * as path from 'node:path';
import { expect } from 'chai';
import { loadApp, runApp } from '../../lib/app/app-runner.js';
import type { BankEntry } from '../../lib/gen/bank.js';
import { runCli } from '../support/cli.js';
import {
  bankData,
  expectedBank,
  lastBalances,
  movementsByAccount,
  readSinkRows,
  tempDir,
  writeParts,
} from './helpers.js';

describe('app bank-account', function () {
  this.timeout(240_000);
  let root: string;
  let input: string;
  let entries: BankEntry[];
  before(() => {
    root = tempDir();
    input = path.join(root, 'in');
    entries = bankData(6000, 250);
    writeParts(
      input,
      entries.map((e) => JSON.stringify(e.operation)),
      500,
      '.jsonl',
    );
  });
  after(() => fs.rmSync(root, { recursive: true, force: true }));

  /** Checks both outputs against the sequential fold of the operations per account. */
  function checkOutputs(movements: Record<string, unknown>[], accounts: Record<string, unknown>[]): void {
    const expected = expectedBank(entries);
    expect(movements, 'one movement per operation').to.have.length(entries.length);
    expect(movementsByAccount(movements)).to.deep.equal(expected.movements);
    expect(lastBalances(accounts)).to.deep.equal(expected.balances);
    const refused = movements.filter((m) => m.error === 'insufficient funds').length;
    expect(refused, 'only invalid operations are refused').to.equal(entries.filter((e) => !e.valid).length);
  }

  it('gives the same output for threads 0, 1, 2 and 4, equal to the per-account fold', async () => {
    const app = await loadApp('bank-account');
    const outputs: string[] = [];
    for (const threads of [0, 1, 2, 4]) {
      const { session, queries } = await runApp(app, {
        sources: [`file:${input}?maxFilesPerTrigger=3`],
        sinks: ['movements=memory:', 'accounts=memory:'],
        threads,
        statePartitions: 5,
        trigger: { availableNow: true },
        checkpoint: path.join(root, `ckpt-threads-${threads}`),
      });
      await Promise.all([...queries.values()].map((q) => q.awaitTermination()));
      expect(queries.get('movements')!.recentProgress).to.have.length(4);
      const m = session.table('bank-account.movements');
      const a = session.table('bank-account.accounts');
      checkOutputs(m, a);
      outputs.push(JSON.stringify({ m, a }));
    }
    expect(new Set(outputs).size, 'identical output, row order included').to.equal(1);
  });

  it('survives SIGKILLs of the CLI mid-stream: balances are the sequential fold, no valid operation refused', async () => {
    const out = path.join(root, 'out');
    const ckpt = path.join(root, 'ckpt');
    const args = (threads: number) => [
      'run',
      'bank-account',
      '--source',
      `file:${input}?maxFilesPerTrigger=1`,
      '--sink',
      `movements=file:${path.join(out, 'movements')}`,
      '--sink',
      `accounts=file:${path.join(out, 'accounts')}`,
      '--checkpoint',
      ckpt,
      '--trigger',
      'available-now',
      '--threads',
      String(threads),
      '--state-partitions',
      '4',
      '--quiet',
    ];
    const crashed = await runCli(args(2), { env: { SLUICE_CRASH_AT: 'after-sink:4' } });
    expect(crashed.signal, crashed.stderr).to.equal('SIGKILL');
    // The other query may not have committed a batch, or made its checkpoint, when the first one's kill came.
    const committed = (q: string) => {
      const dir = path.join(ckpt, q, 'commits');
      return fs.existsSync(dir) ? fs.readdirSync(dir).filter((n) => /^\d+$/.test(n)).length : 0;
    };
    expect(committed('movements') + committed('accounts'))
      .to.be.greaterThan(0)
      .and.lessThan(24);
    for (const killAfterMs of [700, 1100]) {
      const killed = await runCli(args(2), { timeoutMs: killAfterMs });
      expect(killed.code === 0 || killed.signal === 'SIGKILL', killed.stderr).to.equal(true);
    }
    const res = await runCli(args(1));
    expect(res.code, res.stderr).to.equal(0);
    checkOutputs(readSinkRows(path.join(out, 'movements')), readSinkRows(path.join(out, 'accounts')));
  });
});
