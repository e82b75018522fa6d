import { expect } from 'chai';
import { count, sum } from '../../lib/api/functions.js';
import type { QueryProgress } from '../../lib/exec/progress.js';
import { at, Harness, iso } from '../windows/support.js';

type Ev = { user: string; amount: number; ts: number };
const schema = { user: 'string', amount: 'double', ts: 'timestamp' } as const;

/** Output rows as `HH:MM:SS user n total`, sorted. */
function text(rows: Record<string, unknown>[]): string[] {
  return rows.map((r) => [iso(r.ts).slice(11, 19), r.user, r.n, r.total].join(' ')).sort();
}

/** The stateful operator's progress in batch `batchId`. */
function stateOf(progress: QueryProgress[], batchId: number): QueryProgress['stateOperators'][number] {
  const p = progress.find((x) => x.batchId === batchId);
  if (!p) throw new Error(`no progress for batch ${batchId}: ${progress.map((x) => x.batchId).join(', ')}`);
  return p.stateOperators[0];
}

const byUserAndTime = (mode: 'append' | 'update') =>
  Harness.start<Ev>({
    schema,
    mode,
    late: true,
    build: (ds) =>
      ds
        .withWatermark('ts', '10 seconds')
        .groupBy('user', 'ts')
        .agg(count('*').alias('n'), sum('amount').alias('total')),
  });

describe('aggregation grouped by the event-time column itself', () => {
  it('append mode emits each group once the watermark reaches its time, drops late rows and evicts the state', async () => {
    const h = await byUserAndTime('append');
    // Batch 0 runs with watermark 0 and moves it to 00:00:10; the batch without data that follows closes 00:00:10.
    const first = await h.step([
      { user: 'a', amount: 1, ts: at('00:00:10') },
      { user: 'a', amount: 2, ts: at('00:00:10') },
      { user: 'a', amount: 4, ts: at('00:00:20') },
    ]);
    expect(text(first)).to.deep.equal(['00:00:10 a 2 3']);
    expect(h.progress.map((p) => p.batchId)).to.deep.equal([0, 1]);
    expect(stateOf(h.progress, 1)).to.deep.include({ numRowsTotal: 1, numRowsRemoved: 1 });

    // Watermark 00:00:10: rows at or before it are late, even for a group that was never seen.
    const second = await h.step([
      { user: 'a', amount: 8, ts: at('00:00:10') },
      { user: 'b', amount: 16, ts: at('00:00:05') },
      { user: 'a', amount: 32, ts: at('00:00:20') },
      { user: 'b', amount: 64, ts: at('00:00:40') },
    ]);
    expect(text(second)).to.deep.equal(['00:00:20 a 2 36']);
    expect(stateOf(h.progress, 2)).to.deep.include({ numRowsDroppedByWatermark: 2, numLateRows: 2 });
    expect(stateOf(h.progress, 3)).to.deep.include({ numRowsTotal: 1, numRowsRemoved: 1 });
    const late = h.newLate();
    expect(late.map((r) => r.amount).sort((x, y) => Number(x) - Number(y))).to.deep.equal([8, 16]);
    expect(late[0].late_reason).to.match(/behind the watermark: event time 2024-01-01T00:00:\d\d\.000Z/);
    expect(iso(late[0].late_watermark)).to.equal('2024-01-01T00:00:10.000Z');
    await h.stop();
  });

  it('update mode emits changed groups, drops rows behind the watermark instead of updating old groups, and evicts them', async () => {
    const h = await byUserAndTime('update');
    const first = await h.step([
      { user: 'a', amount: 1, ts: at('00:00:10') },
      { user: 'a', amount: 2, ts: at('00:00:10') },
      { user: 'a', amount: 4, ts: at('00:00:20') },
    ]);
    expect(text(first)).to.deep.equal(['00:00:10 a 2 3', '00:00:20 a 1 4']);
    // The batch without data that the watermark makes due evicts 00:00:10 and emits nothing.
    expect(stateOf(h.progress, 1)).to.deep.include({ numRowsTotal: 1, numRowsRemoved: 1, numRowsUpdated: 0 });

    const second = await h.step([
      { user: 'a', amount: 8, ts: at('00:00:10') },
      { user: 'a', amount: 32, ts: at('00:00:20') },
      { user: 'b', amount: 64, ts: at('00:00:40') },
    ]);
    expect(text(second)).to.deep.equal(['00:00:20 a 2 36', '00:00:40 b 1 64']);
    expect(stateOf(h.progress, 2)).to.deep.include({ numRowsDroppedByWatermark: 1 });
    expect(h.newLate().map((r) => r.amount)).to.deep.equal([8]);
    expect(stateOf(h.progress, 3)).to.deep.include({ numRowsTotal: 1, numRowsRemoved: 1 });
    await h.stop();
  });

  it('complete mode keeps every group and counts late rows in, as without a watermark', async () => {
    const h = await Harness.start<Ev>({
      schema,
      mode: 'complete',
      build: (ds) => ds.withWatermark('ts', '10 seconds').groupBy('ts').agg(count('*').alias('n')),
    });
    await h.step([{ user: 'a', amount: 1, ts: at('00:00:20') }]);
    const all = await h.step([{ user: 'a', amount: 1, ts: at('00:00:01') }]);
    expect(all.map((r) => `${iso(r.ts).slice(11, 19)} ${r.n}`).sort()).to.deep.equal(['00:00:01 1', '00:00:20 1']);
    await h.stop();
  });
});
