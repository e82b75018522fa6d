import * as fs from 'node:fs';
import * as path from 'node:path';
import { expect } from 'chai';
import { loggedBatches } from '../checkpoint/helpers.js';
import { bankData, depositData, readSinkRows, tempDir, writeParts } from '../stateful/helpers.js';
import { runCli, TEST_APPS } from '../support/cli.js';

const commits = (query: string): number[] => loggedBatches(query, 'commits');
const plans = (query: string): number[] => loggedBatches(query, 'offsets');

describe('recovery: a restart runs a batch without new data only when it has something to do', function () {
  this.timeout(240_000);
  let root: string;
  before(() => {
    root = tempDir();
  });
  after(() => fs.rmSync(root, { recursive: true, force: true }));

  it('mapGroupsWithState without timeouts (bank-account): restarts without new input plan and commit nothing', async () => {
    const input = path.join(root, 'bank-in');
    writeParts(
      input,
      bankData(600, 20).map((e) => JSON.stringify(e.operation)),
      200,
      '.jsonl',
    );
    const ckpt = path.join(root, 'bank-ckpt');
    const args = ['run', 'bank-account', '--source', `file:${input}`, '--sink', 'movements=noop:'];
    const run = [...args, '--sink', 'accounts=noop:', '--checkpoint', ckpt, '--trigger', 'available-now', '--quiet'];
    const first = await runCli(run);
    expect(first.code, first.stderr).to.equal(0);
    const after = { movements: plans(path.join(ckpt, 'movements')), accounts: plans(path.join(ckpt, 'accounts')) };
    expect(after.movements).to.deep.equal([0]);
    for (let i = 0; i < 3; i++) {
      const res = await runCli(run);
      expect(res.code, res.stderr).to.equal(0);
    }
    expect(plans(path.join(ckpt, 'movements'))).to.deep.equal(after.movements);
    expect(commits(path.join(ckpt, 'accounts'))).to.deep.equal(after.accounts);
  });

  it('a watermark: the batch the last one called for runs once, then restarts plan nothing', async () => {
    const input = path.join(root, 'payments-in');
    const lines = Array.from({ length: 300 }, (_, i) =>
      JSON.stringify({ ts: new Date(1_700_000_000_000 + i * 1000).toISOString(), user: `u${i % 7}`, amount: i % 11 }),
    );
    writeParts(input, lines, 100, '.jsonl');
    const ckpt = path.join(root, 'payments-ckpt');
    const run = [
      'run',
      path.join(TEST_APPS, '..', '..', 'cli', 'apps', 'user-totals.js'),
      '--source',
      `file:${input}`,
      '--checkpoint',
      ckpt,
      '--trigger',
      'available-now',
      '--quiet',
    ];
    const first = await runCli(run);
    expect(first.code, first.stderr).to.equal(0);
    // The data batch moved the watermark: a batch without data followed it, to close the windows it passed.
    const minutes = path.join(ckpt, 'minutes');
    expect(commits(minutes)).to.deep.equal([0, 1]);
    for (let i = 0; i < 2; i++) expect((await runCli(run)).code).to.equal(0);
    expect(plans(minutes)).to.deep.equal([0, 1]);
    expect(plans(path.join(ckpt, 'totals'))).to.deep.equal([0]);
  });

  it('processing-time timeouts (deposit-sessions): a restart runs one batch once a timeout is due, none before', async () => {
    const input = path.join(root, 'deposits-in');
    writeParts(input, depositData(400).lines, 400, '.txt');
    const ckpt = path.join(root, 'deposits-ckpt');
    const out = path.join(root, 'deposits-out');
    const run = (timeout: string) => [
      'run',
      'deposit-sessions',
      '--source',
      `file:${input}`,
      '--sink',
      `file:${out}`,
      '--checkpoint',
      ckpt,
      '--trigger',
      'available-now',
      '--session-timeout',
      timeout,
      '--quiet',
    ];
    const first = await runCli(run('20s'));
    expect(first.code, first.stderr).to.equal(0);
    const query = path.join(ckpt, fs.readdirSync(ckpt).find((n) => fs.existsSync(path.join(ckpt, n, 'commits')))!);
    expect(commits(query)).to.deep.equal([0]);
    const text = fs.readFileSync(path.join(query, 'commits', '0'), 'utf8');
    const due = JSON.parse(text.slice(text.indexOf('\n') + 1)).nextProcessingTimeoutMs as number;
    expect(due, 'the commit records when the open sessions time out').to.be.a('number');
    const early = await runCli(run('20s'));
    expect(early.code, early.stderr).to.equal(0);
    if (Date.now() < due) expect(plans(query), 'no timeout is due yet').to.deep.equal([0]);
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, due - Date.now() + 100)));
    const late = await runCli(run('20s'));
    expect(late.code, late.stderr).to.equal(0);
    expect(plans(query), 'the due timeout ran one batch without data').to.deep.equal([0, 1]);
    const closed = readSinkRows(out).filter((r) => r.closedByTimeout === true);
    expect(closed.length, 'it closed the open sessions').to.be.greaterThan(0);
    const res = await runCli(run('20s'));
    expect(res.code, res.stderr).to.equal(0);
    expect(plans(query), 'nothing is due after it').to.deep.equal([0, 1]);
  });
});
