import * as path from 'node:path';
import { Type } from 'apache-arrow';
import { expect } from 'chai';
import { rowsFromBatch } from '../../lib/arrow/columns.js';
import { RateSource, type RateSourceOptions, rateRowsAt, rateTimeOf } from '../../lib/sources/rate-source.js';
import { runReadTask } from '../../lib/sources/readers.js';
import type { SourceOffset } from '../../lib/sources/source.js';
import { useTmpDir } from '../checkpoint/helpers.js';

describe('rate source', () => {
  const tmp = useTmpDir();
  const clock = {
    t: 1_700_000_000_000,
    now(): number {
      return this.t;
    },
  };

  async function open(options: RateSourceOptions = {}): Promise<RateSource> {
    const src = new RateSource({ clock, ...options });
    await src.initialize({ dir: path.join(tmp(), 'sources', '0'), index: 0, queryId: 'q' });
    return src;
  }

  async function read(
    src: RateSource,
    start: SourceOffset | null,
    end: SourceOffset,
  ): Promise<Record<string, unknown>[]> {
    const rows: Record<string, unknown>[] = [];
    for (const task of await src.planRead(start, end, 0)) {
      for (const b of (await runReadTask(task, { batchId: 0 })).batches) rows.push(...rowsFromBatch(b));
    }
    return rows;
  }

  it('gives {timestamp, value} rows with value = index and timestamp = start + index * 1000 / rowsPerSecond', async () => {
    clock.t = 1_700_000_000_000;
    const src = await open({ rowsPerSecond: 4 });
    expect(src.schema().fields.map((f) => [f.name, f.type.typeId])).to.deep.equal([
      ['timestamp', Type.Timestamp],
      ['value', Type.Int],
    ]);
    expect(await src.latestOffset(null, {})).to.equal(null);
    clock.t += 1000;
    const o1 = await src.latestOffset(null, {});
    expect(o1).to.deep.equal({ rows: 4 });
    expect(await read(src, null, o1!)).to.deep.equal(
      [0, 1, 2, 3].map((i) => ({ timestamp: new Date(1_700_000_000_000 + i * 250), value: i })),
    );
    expect(src.rowCount(null, o1!)).to.equal(4);
  });

  it('replays the same rows after a restart, from the start time recorded in the checkpoint', async () => {
    clock.t = 1_700_000_000_000;
    const first = await open({ rowsPerSecond: 10, numPartitions: 3 });
    clock.t += 2500;
    const end = await first.latestOffset({ rows: 5 }, {});
    const rows = await read(first, { rows: 5 }, end!);
    expect(rows.map((r) => r.value)).to.deep.equal(Array.from({ length: 20 }, (_, i) => i + 5));
    clock.t += 60_000;
    const restarted = await open({ rowsPerSecond: 10, numPartitions: 3 });
    expect(restarted.startTime).to.equal(first.startTime);
    expect(await read(restarted, { rows: 5 }, end!)).to.deep.equal(rows);
    expect(await restarted.planRead({ rows: 5 }, end!, 1)).to.deep.equal(await first.planRead({ rows: 5 }, end!, 1));
  });

  it('splits a batch into numPartitions contiguous tasks and honours maxRows', async () => {
    clock.t = 1_700_000_000_000;
    const src = await open({ rowsPerSecond: 1000, numPartitions: 4 });
    clock.t += 1000;
    const end = await src.latestOffset(null, { maxRows: 100 });
    expect(end).to.deep.equal({ rows: 100 });
    const tasks = await src.planRead(null, end!, 0);
    expect(tasks).to.have.length(4);
    expect(tasks.map((t) => [(t.spec as { from: number }).from, (t.spec as { to: number }).to])).to.deep.equal([
      [0, 25],
      [25, 50],
      [50, 75],
      [75, 100],
    ]);
  });

  it('ramps up linearly and stays consistent between row counts and timestamps', () => {
    const rps = 100;
    const ramp = 10_000;
    expect(rateRowsAt(ramp, rps, ramp)).to.equal(500);
    expect(rateRowsAt(ramp + 1000, rps, ramp)).to.equal(600);
    expect(rateRowsAt(ramp / 2, rps, ramp)).to.equal(125);
    let prev = -1;
    for (let i = 0; i < 700; i++) {
      const t = rateTimeOf(i, rps, ramp);
      expect(t).to.be.at.least(prev);
      // A row's timestamp is never later than the moment the row becomes available to a batch.
      expect(rateRowsAt(t, rps, ramp), `row ${i} at ${t} ms`).to.be.at.most(i);
      expect(rateRowsAt(rateTimeOf(i + 1, rps, ramp) + 1, rps, ramp), `row ${i}`).to.be.greaterThan(i);
      prev = t;
    }
  });

  it('rejects bad options', () => {
    expect(() => new RateSource({ rowsPerSecond: 0 })).to.throw(/rowsPerSecond must be a positive number/);
    expect(() => new RateSource({ numPartitions: 1.5 })).to.throw(/numPartitions must be a positive integer/);
  });

  it('stops at the rows due when an availableNow run starts', async () => {
    let now = 1_000_000;
    const src = new RateSource({ rowsPerSecond: 10, clock: { now: () => now } });
    await src.initialize({ dir: path.join(tmp(), 'an'), index: 0, queryId: 'q' });
    now += 2000;
    await src.prepareForTriggerAvailableNow();
    now += 5000;
    expect(await src.latestOffset(null, {})).to.deep.equal({ rows: 20 });
    expect(await src.latestOffset({ rows: 20 }, {})).to.deep.equal({ rows: 20 });
  });
});
