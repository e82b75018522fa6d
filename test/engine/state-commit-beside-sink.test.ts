import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { expect } from 'chai';
import { count, sum } from '../../lib/api/functions.js';
import { Session } from '../../lib/api/session.js';
import { MemoryStream } from '../../lib/testing/index.js';

type Tx = { user: string; amount: number };

/** The state versions each partition of each stateful operator of a checkpoint has a delta file of. */
function deltaVersions(ckpt: string): number[][] {
  const root = path.join(ckpt, 'state');
  if (!fs.existsSync(root)) return [];
  return fs
    .readdirSync(root)
    .flatMap((op) => fs.readdirSync(path.join(root, op)).map((p) => path.join(root, op, p)))
    .map((dir) =>
      fs
        .readdirSync(dir)
        .map((f) => /^(\d+)\.delta$/.exec(f)?.[1])
        .filter((v) => v !== undefined)
        .map(Number),
    );
}

/**
 * In the driver's thread a stateful operator's state is written while its output goes to the sink, so the sink
 * does not wait for the state's fsyncs; commits/N is written only after both. A state file appears under its
 * final name as its write begins, so which of the two comes first at the sink is a race: what is fixed is that
 * the commit waits for both and that every version is there afterwards.
 */
describe('the state commit beside the sink (threads 0)', function () {
  this.timeout(60_000);
  let root: string;
  beforeEach(() => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-state-beside-sink-'));
  });
  afterEach(() => fs.rmSync(root, { recursive: true, force: true }));

  it('commits batch N only after its sink has the output and its state is written', async () => {
    const ckpt = path.join(root, 'ckpt');
    const session = Session.local({ threads: 0, statePartitions: 2 });
    const input = new MemoryStream<Tx>(session, { user: 'string', amount: 'double' });
    const seen: { batchId: number; rows: number; committedAtSink: boolean }[] = [];
    const q = await input
      .toDS()
      .groupBy('user')
      .agg(count('*').alias('n'), sum('amount').alias('total'))
      .writeStream.outputMode('update')
      .foreachBatch(async (rows, batchId) => {
        seen.push({
          batchId,
          rows: rows.length,
          committedAtSink: fs.existsSync(path.join(ckpt, 'commits', String(batchId))),
        });
      })
      .option('checkpointLocation', ckpt)
      .start();
    for (let b = 0; b < 3; b++) {
      input.addData([
        { user: 'a', amount: b },
        { user: 'b', amount: 10 * b },
        { user: `c${b}`, amount: 1 },
      ]);
      await q.processAllAvailable();
    }
    await q.stop();
    await session.stop();
    expect(seen.map((s) => [s.batchId, s.rows])).to.deep.equal([
      [0, 3],
      [1, 3],
      [2, 3],
    ]);
    for (const s of seen)
      expect(s.committedAtSink, `batch ${s.batchId}: committed before the sink had the output`).to.equal(false);
    // Afterwards every partition holds every version, and every batch is committed.
    for (const vs of deltaVersions(ckpt)) expect(vs.sort()).to.deep.equal([1, 2, 3]);
    expect(fs.readdirSync(path.join(ckpt, 'commits')).sort()).to.deep.equal(['0', '1', '2']);
  });
});
