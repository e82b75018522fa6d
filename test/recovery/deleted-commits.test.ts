import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { expect } from 'chai';
import { count, sum } from '../../lib/api/functions.js';
import { Session } from '../../lib/api/session.js';
import { MemoryStream } from '../../lib/testing/index.js';
import { onNotice } from '../../lib/util/notices.js';

type Ev = { user: string; amount: number };

const BATCHES: Ev[][] = [
  [
    { user: 'a', amount: 1 },
    { user: 'b', amount: 2 },
  ],
  [{ user: 'a', amount: 4 }],
  [
    { user: 'b', amount: 8 },
    { user: 'c', amount: 16 },
  ],
  [{ user: 'a', amount: 32 }],
];

/** Every line of the JSON-lines files of a directory, sorted. */
function jsonLines(dir: string): string[] {
  return fs
    .readdirSync(dir)
    .filter((f) => f.endsWith('.jsonl'))
    .flatMap((f) => fs.readFileSync(path.join(dir, f), 'utf8').split('\n'))
    .filter((l) => l !== '')
    .sort();
}

/**
 * Commits deleted by hand to run batches again, as Spark users do: the restart re-runs the latest planned
 * batch from its logged offsets (as Spark's MicroBatchExecution does) and says so; the file sink treats the
 * re-run as a replay of a batch it has (Spark's FileStreamSink skips it), and the state carries on.
 */
describe('recovery: commits deleted by hand', () => {
  let root: string;
  beforeEach(() => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-deleted-commits-'));
  });
  afterEach(() => fs.rmSync(root, { recursive: true, force: true }));

  /**
   * Runs the running totals per user into a file sink, as a new process would: a new session whose stream
   * holds the batches a run before it read (`earlier`), then one batch per addData of `batches`. Returns the
   * query's progress.
   */
  async function run(out: string, ckpt: string, earlier: Ev[][], batches: Ev[][]) {
    const session = Session.local({ statePartitions: 2 });
    const input = new MemoryStream<Ev>(session, { user: 'string', amount: 'double' });
    for (const rows of earlier) input.addData(rows);
    const q = await input
      .toDS()
      .groupBy('user')
      .agg(sum('amount').alias('total'), count('*').alias('n'))
      .writeStream.format('file')
      .option('path', out)
      .option('checkpointLocation', ckpt)
      .outputMode('update')
      .start();
    await q.processAllAvailable();
    for (const rows of batches) {
      input.addData(rows);
      await q.processAllAvailable();
    }
    await q.stop();
    return q.recentProgress;
  }

  /** Runs again after the first three batches, with `batches` to come, and collects the notices it gives. */
  async function restart(out: string, ckpt: string, batches: Ev[][]) {
    const notices: string[] = [];
    const stop = onNotice((m) => notices.push(m));
    try {
      return { progress: await run(out, ckpt, BATCHES.slice(0, 3), batches), notices };
    } finally {
      stop();
    }
  }

  it('re-runs the latest planned batch with a notice; the file sink keeps each row once and the totals carry on', async () => {
    await run(path.join(root, 'expected'), path.join(root, 'ck-expected'), [], BATCHES);
    const out = path.join(root, 'out');
    const ckpt = path.join(root, 'ck');
    await run(out, ckpt, [], BATCHES.slice(0, 3));
    for (const id of [0, 1, 2]) fs.rmSync(path.join(ckpt, 'commits', String(id)));

    const { progress, notices } = await restart(out, ckpt, BATCHES.slice(3));
    expect(notices).to.deep.equal([
      `checkpoint ${ckpt}: the commits of batches 0-1 are missing; re-running the latest planned batch 2 from ` +
        'offsets/2 (the batches before it are not run again)',
    ]);
    expect(
      progress.map((p) => [p.batchId, p.sources[0].startOffset, p.sources[0].endOffset, p.numInputRows]),
    ).to.deep.equal([
      [2, 2, 3, 2],
      [3, 3, 4, 1],
    ]);
    expect(fs.readdirSync(path.join(ckpt, 'commits')).sort()).to.deep.equal(['2', '3']);
    const written = jsonLines(out);
    expect(written).to.deep.equal(jsonLines(path.join(root, 'expected')));
    expect(written).to.include(JSON.stringify({ user: 'a', total: 37, n: 3 }));
  });

  it('re-runs the latest planned batch when every commit is gone', async () => {
    const out = path.join(root, 'out');
    const ckpt = path.join(root, 'ck');
    await run(out, ckpt, [], BATCHES.slice(0, 3));
    fs.rmSync(path.join(ckpt, 'commits'), { recursive: true });
    const { progress, notices } = await restart(out, ckpt, []);
    expect(notices).to.have.length(1);
    expect(notices[0]).to.contain('the commits of batches 0-1 are missing; re-running the latest planned batch 2');
    expect(progress.map((p) => p.batchId)).to.deep.equal([2]);
    expect(jsonLines(out)).to.deep.equal(
      [
        { user: 'a', total: 1, n: 1 },
        { user: 'b', total: 2, n: 1 },
        { user: 'a', total: 5, n: 2 },
        { user: 'b', total: 10, n: 2 },
        { user: 'c', total: 16, n: 1 },
      ]
        .map((r) => JSON.stringify(r))
        .sort(),
    );
  });

  it('writes the commit a crash left unwritten, of the batch before the latest plan, and re-runs that plan', async () => {
    await run(path.join(root, 'expected'), path.join(root, 'ck-expected'), [], BATCHES);
    const out = path.join(root, 'out');
    const ckpt = path.join(root, 'ck');
    await run(out, ckpt, [], BATCHES.slice(0, 3));
    // A batch is planned once the one before it is complete, while that one's commit is written: a crash
    // between the two leaves offsets/2 and the state of version 2, without commits/1 and commits/2.
    for (const id of [1, 2]) fs.rmSync(path.join(ckpt, 'commits', String(id)));
    const { progress, notices } = await restart(out, ckpt, BATCHES.slice(3));
    expect(notices).to.deep.equal([]);
    expect(progress.map((p) => p.batchId)).to.deep.equal([2, 3]);
    expect(fs.readdirSync(path.join(ckpt, 'commits')).sort()).to.deep.equal(['0', '1', '2', '3']);
    const written = JSON.parse(fs.readFileSync(path.join(ckpt, 'commits', '1'), 'utf8').split('\n')[1]);
    const expected = JSON.parse(fs.readFileSync(path.join(root, 'ck-expected', 'commits', '1'), 'utf8').split('\n')[1]);
    const { batchId, nextWatermarkMs, stateVersions } = expected;
    expect(written).to.deep.include({ batchId, nextWatermarkMs, stateVersions });
    expect(jsonLines(out)).to.deep.equal(jsonLines(path.join(root, 'expected')));
  });
});
