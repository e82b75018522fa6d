import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { expect } from 'chai';
import { col } from '../../lib/api/column.js';
import { count, sum } from '../../lib/api/functions.js';
import { Session } from '../../lib/api/session.js';
import type { QueryProgress, TriggerDurations } from '../../lib/exec/progress.js';

const DRIVER_PHASES = ['latestOffset', 'getBatch', 'queryPlanning', 'walCommit', 'addBatch', 'commitOffsets'] as const;
const ADD_BATCH_PARTS = ['read', 'exchange', 'sink'] as const;

/** Three files of JSON lines, one per batch: 4,000 transactions of 50 customers each. */
function writeInput(dir: string): void {
  fs.mkdirSync(dir, { recursive: true });
  for (let f = 0; f < 3; f++) {
    const lines: string[] = [];
    for (let i = 0; i < 4000; i++)
      lines.push(JSON.stringify({ customer_id: `c${(i * 7 + f) % 50}`, amount: ((i * 13) % 97) + f }));
    fs.writeFileSync(path.join(dir, `part-${f}.json`), `${lines.join('\n')}\n`);
  }
}

/**
 * Totals per customer over the input at `threads`, written to a foreachBatch sink that takes `sinkMs` per batch;
 * returns each batch's progress.
 */
async function runTotals(threads: number, input: string, ckpt: string, sinkMs: number): Promise<QueryProgress[]> {
  const session = Session.local({ threads, statePartitions: 4 });
  const progress: QueryProgress[] = [];
  session.streams.addListener({ onQueryProgress: ({ progress: p }) => progress.push(p) });
  const q = await session.readStream
    .format('file')
    .option('format', 'json')
    .option('maxFilesPerTrigger', 1)
    .schema('customer_id STRING, amount DOUBLE')
    .load(input)
    .where(col('amount').gt(10))
    .groupBy('customer_id')
    .agg(count('*').alias('n'), sum('amount').alias('total'))
    .writeStream.outputMode('update')
    .foreachBatch(async () => {
      await new Promise((r) => setTimeout(r, sinkMs));
    })
    .trigger({ availableNow: true })
    .option('checkpointLocation', ckpt)
    .start();
  await q.awaitTermination();
  await session.stop();
  return progress;
}

describe("progress durationMs: where a batch's time goes", function () {
  this.timeout(120_000);
  let root: string;
  beforeEach(() => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-durations-'));
    writeInput(path.join(root, 'in'));
  });
  afterEach(() => fs.rmSync(root, { recursive: true, force: true }));

  for (const threads of [0, 2]) {
    it(`names every phase, each within the trigger and the parts of addBatch within it (threads ${threads})`, async () => {
      const progress = await runTotals(threads, path.join(root, 'in'), path.join(root, 'ckpt'), 40);
      expect(progress.map((p) => p.numInputRows)).to.deep.equal([4000, 4000, 4000]);
      for (const p of progress) {
        const d: TriggerDurations = p.durationMs;
        expect(Object.keys(d).sort()).to.deep.equal(
          [...DRIVER_PHASES, ...ADD_BATCH_PARTS, 'stateCommit', 'triggerExecution'].sort(),
          `batch ${p.batchId}`,
        );
        for (const [k, v] of Object.entries(d)) expect(v, k).to.be.a('number').and.at.least(0);
        const driver = DRIVER_PHASES.reduce((a, k) => a + d[k], 0);
        expect(driver, 'driver phases').to.be.at.most(d.triggerExecution);
        // The driver's phases are the trigger, apart from bookkeeping between them.
        expect(driver, 'driver phases').to.be.at.least(d.triggerExecution * 0.8);
        for (const k of ADD_BATCH_PARTS) expect(d[k], k).to.be.at.most(d.addBatch);
        // The driver's thread writes its state partitions while the sink has the output, and the batch's commit
        // waits for them.
        expect(d.stateCommit, 'stateCommit').to.be.at.most(d.addBatch + d.commitOffsets);
        expect(d.read, 'reading 4,000 JSON lines').to.be.greaterThan(0);
        expect(d.exchange, 'splitting rows by customer').to.be.greaterThan(0);
        expect(d.stateCommit, 'committing the totals').to.be.greaterThan(0);
        // The sink takes 40 ms a batch: progress puts that time in `sink`, not elsewhere.
        expect(d.sink).to.be.at.least(39);
        expect(d.addBatch - d.sink).to.be.at.least(d.read);
        expect(p.batchDuration).to.equal(Math.round(d.triggerExecution));
      }
    });
  }

  it('shows a slow sink as the sink part of addBatch', async () => {
    const slow = await runTotals(0, path.join(root, 'in'), path.join(root, 'ckpt'), 250);
    for (const p of slow) {
      expect(p.durationMs.sink).to.be.at.least(249);
      expect(p.durationMs.sink).to.be.at.most(p.durationMs.addBatch);
    }
  });
});
