import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { expect } from 'chai';
import { count, sum, window } from '../../lib/api/functions.js';
import { Session } from '../../lib/api/session.js';
import { MemoryStream } from '../../lib/testing/index.js';

type Ev = { user: string; ts: number; amount: number };
const schema = { user: 'string', ts: 'timestamp', amount: 'double' } as const;
const USERS = 60;

/** Two rows per user in the first minute, then one row ten minutes on that moves the watermark past them all. */
const early: Ev[] = Array.from({ length: 2 * USERS }, (_, i) => ({
  user: `u${i % USERS}`,
  ts: (i * 397) % 60_000,
  amount: i,
}));
const late: Ev[] = [{ user: 'u0', ts: 600_000, amount: 1 }];

/** Runs tumbling windows per user over `early`, then `late`; returns the rows by batch and the batches' removals. */
async function run(
  store: string,
  maxEvictions: number | undefined,
): Promise<{ rows: string[]; perBatch: Map<number, number>; removed: number[] }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-evictions-'));
  const session = Session.local({ statePartitions: 2 });
  try {
    const input = new MemoryStream<Ev>(session, schema);
    const perBatch = new Map<number, number>();
    const rows: string[] = [];
    let w = input
      .toDS()
      .withWatermark('ts', '10 seconds')
      .groupBy('user', window('ts', '1 minute'))
      .agg(count('*').alias('n'), sum('amount').alias('total'))
      .writeStream.foreachBatch((batch, batchId) => {
        perBatch.set(batchId, batch.length);
        for (const r of batch) rows.push(JSON.stringify(r));
      })
      .outputMode('append')
      .option('checkpointLocation', path.join(dir, 'ckpt'))
      .option('stateStore', store)
      .option('stateLocalDir', path.join(dir, 'local'));
    if (maxEvictions !== undefined) w = w.option('stateMaxEvictionsPerBatch', String(maxEvictions));
    const query = await w.start();
    input.addData(early);
    await query.processAllAvailable();
    input.addData(late);
    await query.processAllAvailable();
    const removed = query.recentProgress.map((p) => p.stateOperators[0].numRowsRemoved ?? 0);
    await query.stop();
    return { rows: rows.sort(), perBatch, removed };
  } finally {
    await session.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

describe('windows closed by a watermark jump, a few keys per state partition and batch', function () {
  this.timeout(120_000);
  for (const store of ['memory', 'disk']) {
    it(`${store} store: the same rows as closing them all at once, over no-data batches of at most the limit`, async () => {
      const all = await run(store, undefined);
      const capped = await run(store, 7);
      expect(all.rows).to.have.length(USERS);
      expect(capped.rows).to.deep.equal(all.rows);
      // Two state partitions, at most 7 windows closed in each per batch.
      for (const n of capped.removed) expect(n).to.be.at.most(14);
      for (const n of capped.perBatch.values()) expect(n).to.be.at.most(14);
      expect([...capped.perBatch.values()].filter((n) => n > 0).length).to.be.at.least(Math.ceil(USERS / 14));
      expect([...all.perBatch.values()].filter((n) => n > 0)).to.deep.equal([USERS]);
    });
  }

  it('refuses a limit that is not a positive integer, in one line', async () => {
    const session = Session.local();
    try {
      const input = new MemoryStream<Ev>(session, schema);
      const start = () =>
        input
          .toDS()
          .withWatermark('ts', '10 seconds')
          .groupBy('user', window('ts', '1 minute'))
          .agg(count('*').alias('n'))
          .writeStream.format('memory')
          .queryName('refused')
          .outputMode('append')
          .option('stateMaxEvictionsPerBatch', '0')
          .start();
      let message = '';
      await start().catch((err: Error) => {
        message = err.message;
      });
      expect(message).to.match(/^stateMaxEvictionsPerBatch must be a positive integer, got "0"$/);
    } finally {
      await session.stop();
    }
  });
});
