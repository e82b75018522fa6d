/**
 * runAppInGroup, the API behind `sluice run --group`, in this process against the test broker; and the runs
 * `--group` refuses, each in one line before anything connects.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { expect } from 'chai';
import { runAppInGroup } from '../../lib/app/app-group.js';
import { loadApp, runApp } from '../../lib/app/app-runner.js';
import { groupCommand } from '../../lib/cli/group-command.js';
import { onNotice } from '../../lib/util/notices.js';
import { runCli } from '../support/cli.js';
import { consumeWithKcat, startBroker, type TestBroker } from '../support/kafka-broker.js';

describe('runAppInGroup', function () {
  this.timeout(300_000);
  let broker: TestBroker;
  let root: string;

  before(async () => {
    broker = await startBroker({ brokers: 1, topics: { ops: 4, out: 2, ref: 2 } });
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-group-api-'));
    const gen = await runCli(['gen', 'bank', '--count', '1200', '--to', `kafka://${broker.bootstrap}/ops`]);
    expect(gen.code, gen.stderr).to.equal(0);
  });
  after(async () => {
    await broker?.stop();
    fs.rmSync(root, { recursive: true, force: true });
  });

  const values = (topic: string) =>
    consumeWithKcat(broker.bootstrap, topic)
      .map((r) => r.value)
      .sort();

  it('runs every task of a group of one in this process, and writes what runApp writes', async () => {
    const app = await loadApp('bank-account');
    const source = `kafka://${broker.bootstrap}/ops?startingOffsets=earliest&maxOffsetsPerTrigger=100`;
    const reference = await runApp(app, {
      sources: [source],
      sinks: [`movements=kafka://${broker.bootstrap}/ref`, 'accounts=console:'],
      checkpoint: path.join(root, 'ref'),
      trigger: { availableNow: true },
    });
    await Promise.all([...reference.queries.values()].map((q) => q.awaitTermination()));
    await reference.session.stop();
    const expected = values('ref');
    expect(expected).to.have.length(1200);

    const lines: string[] = [];
    const stopNotices = onNotice((m) => lines.push(m));
    const member = await runAppInGroup(
      app,
      {
        sources: [source],
        sinks: [`movements=kafka://${broker.bootstrap}/out`, 'accounts=console:'],
        checkpoint: path.join(root, 'group'),
        trigger: { processingTime: '100ms' },
      },
      { id: 'api', sessionTimeout: '6s' },
    );
    try {
      expect(member.memberId).to.be.a('string').and.not.equal('');
      const deadline = Date.now() + 120_000;
      while (values('out').length < expected.length) {
        if (Date.now() > deadline) throw new Error(`output incomplete:\n${lines.join('\n')}`);
        await new Promise((r) => setTimeout(r, 300));
      }
      expect(member.tasks()).to.deep.equal([0, 1, 2, 3]);
      expect([...member.queries().keys()].sort()).to.deep.equal([0, 1, 2, 3]);
      // sluice group: this process holds the four tasks, each read to the end of its partition.
      let shown = '';
      await groupCommand({ id: 'api', checkpoint: path.join(root, 'group'), bootstrap: broker.bootstrap }, (t) => {
        shown += t;
      });
      expect(shown).to.include('1 member running');
      expect(shown).to.include(`  pid ${process.pid} on `);
      expect(shown).to.include(': tasks 0, 1, 2, 3\n');
      const table = shown.split('\n').filter((l) => /^\s*\d+\s+pid/.test(l));
      expect(table, shown).to.have.length(4);
      // Lag 0 on each, and the next offsets add up to every record of the topic.
      for (const row of table) expect(row, shown).to.match(/ops:\d+\s+0\s/);
      const read = table.map((row) => Number(/ops:(\d+)/.exec(row)![1]));
      expect(
        read.reduce((a, b) => a + b, 0),
        shown,
      ).to.equal(1200);
      expect(
        lines.some((l) => /^group api: generation \d+: kept tasks none; took 0, 1, 2, 3; gave up none$/.test(l)),
      ).to.equal(true);
    } finally {
      await member.stop();
      stopNotices();
    }
    await member.awaitTermination();
    expect(values('out')).to.deep.equal(expected);
    // Each task has a checkpoint of its own.
    expect(fs.readdirSync(path.join(root, 'group', 'tasks')).sort()).to.deep.equal(['0', '1', '2', '3']);
  });
});

describe('sluice run --group refuses what it cannot share, in one line', function () {
  this.timeout(120_000);

  async function refused(args: string[], pattern: RegExp): Promise<void> {
    const res = await runCli(['run', ...args, '--group', 'g']);
    expect(res.code, res.stderr).to.equal(2);
    expect(res.stderr).to.match(pattern);
    expect(res.stderr.split('\n').filter((l) => l.startsWith('sluice: error:'))).to.have.length(1);
    expect(res.stderr).to.not.match(/^\s+at /m);
  }

  it('sluice group with a checkpoint of no group, or of another group', async () => {
    const res = await runCli(['group', 'g', '--checkpoint', os.tmpdir()]);
    expect(res.code, res.stderr).to.equal(2);
    expect(res.stderr).to.match(/^sluice: error: .* is not the checkpoint of a group/m);
  });

  it('an input that is not a Kafka topic', async () => {
    await refused(
      ['bank-account'],
      /^sluice: error: --group shares the partitions of Kafka inputs, but input operations is/m,
    );
  });

  it('a trigger that ends the run', async () => {
    await refused(
      ['bank-account', '--source', 'kafka://localhost:1/ops', '--trigger', 'available-now'],
      /needs an interval trigger/,
    );
  });

  it('--repartition of active-session-totals, whose global total is above keyed operators (two repartitions)', async () => {
    await refused(
      ['active-session-totals', '--source', 'kafka://localhost:1/tx', '--repartition'],
      /output totals of app active-session-totals has keyed operators below its global one/,
    );
  });

  it('--repartition without --group', async () => {
    const res = await runCli(['run', 'bank-account', '--source', 'kafka://localhost:1/ops', '--repartition']);
    expect(res.code, res.stderr).to.equal(2);
    expect(res.stderr).to.match(/^sluice: error: --repartition only applies with --group/m);
  });
});
