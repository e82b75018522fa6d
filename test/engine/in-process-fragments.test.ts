import { tableFromArrays } from 'apache-arrow';
import { expect } from 'chai';
import type { BatchContext } from '../../lib/exec/batch-context.js';
import { type FragmentJob, InProcessExecutor } from '../../lib/exec/executor.js';
import { readers } from '../../lib/sources/readers.js';
import { sleep } from '../../lib/util/clock.js';

const CTX: BatchContext = {
  batchId: 0,
  batchTimestampMs: 0,
  watermarkMs: 0,
  checkpointDir: '',
  numStatePartitions: 1,
  outputMode: 'append',
  eventTimeColumns: {},
  operatorOutputModes: {},
  lateOutput: false,
  minStateVersionToKeep: 0,
};

/**
 * In the driver's thread a batch's read tasks wait together (e.g. one Fetch per Kafka partition in flight at
 * once) instead of one after the other, a few at a time, and their results keep the order of the tasks.
 */
describe("the driver's thread runs a batch's fragments side by side", () => {
  let inFlight = 0;
  let maxInFlight = 0;
  const started: number[] = [];
  before(() => {
    readers['test-waiting'] = async (spec) => {
      const { id, waitMs, fail } = spec as { id: number; waitMs: number; fail?: boolean };
      started.push(id);
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      try {
        await sleep(waitMs);
        if (fail) throw new Error(`task ${id} failed`);
        return { batches: tableFromArrays({ id: Int32Array.of(id) }).batches };
      } finally {
        inFlight--;
      }
    };
  });
  after(() => {
    delete readers['test-waiting'];
  });
  beforeEach(() => {
    maxInFlight = 0;
    started.length = 0;
  });

  const jobs = (waits: number[], failing = -1): FragmentJob[] =>
    waits.map((waitMs, id) => ({
      spec: { read: { reader: 'test-waiting', spec: { id, waitMs, fail: id === failing } }, chain: [] },
      input: [],
    }));

  it('has up to four reads in flight, and gives the results in the order of the tasks', async () => {
    const executor = new InProcessExecutor(new Map());
    // Later tasks finish first: the order of the results must not follow.
    const results = await executor.runFragments(jobs([80, 60, 40, 20, 10, 5]), CTX);
    expect(maxInFlight).to.equal(4);
    expect(new Set(results.map((r) => r.slot)), 'the four slots the tasks ran in').to.deep.equal(new Set([0, 1, 2, 3]));
    expect(results.map((r) => r.batches[0].getChild('id')?.get(0))).to.deep.equal([0, 1, 2, 3, 4, 5]);
    for (const r of results) {
      expect(r.metrics.numInputRows).to.equal(1);
      expect(r.cpuMs).to.be.a('number').and.at.least(0);
      expect(r.wallMs).to.be.a('number').and.at.least(0);
    }
    await executor.close();
  });

  it('fails with the failed task once the tasks running have ended, and starts no other', async () => {
    const executor = new InProcessExecutor(new Map());
    let failure: unknown;
    try {
      await executor.runFragments(jobs([30, 0, 30, 30, 5, 5, 5, 5], 1), CTX);
    } catch (err) {
      failure = err;
    }
    expect((failure as Error)?.message).to.equal('task 1 failed');
    expect(inFlight, 'no read still running once the batch failed').to.equal(0);
    expect(started.sort()).to.deep.equal([0, 1, 2, 3]);
    await executor.close();
  });
});
