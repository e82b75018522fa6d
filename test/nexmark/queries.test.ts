import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { writeSideInput } from '../../bench/nexmark/side-input.js';
import { loadApp, runApp } from '../../lib/app/app-runner.js';
import { type NexmarkEvent, NexmarkGenerator } from '../../lib/gen/nexmark.js';
import { ManualClock } from '../../lib/testing/manual-clock.js';
import * as reference from './reference.js';

const APPS = fileURLToPath(new URL('../../bench/nexmark/', import.meta.url));
const SEED = 11;
const RATE = 2000;

interface Run {
  rows: reference.Row[];
  batches: number;
}

/** Runs a query app over `events` Nexmark events until they are all processed; its rows from a memory sink. */
async function runQuery(
  query: string,
  events: number,
  kinds: string,
  options: { threads?: number; batchEvents?: number; clock?: ManualClock; onBatch?: () => void } = {},
): Promise<Run> {
  const ckpt = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-nexmark-'));
  try {
    const app = await loadApp(path.join(APPS, `${query}.js`));
    let batches = 0;
    const { session, queries } = await runApp(app, {
      sources: [
        `nexmark:?events=${events}&seed=${SEED}&rate=${RATE}&kinds=${kinds}&maxEventsPerTrigger=${options.batchEvents ?? 10_000}&numPartitions=3`,
      ],
      sinks: ['memory:'],
      checkpoint: ckpt,
      trigger: { availableNow: true },
      threads: options.threads ?? 0,
      clock: options.clock,
      onProgress: () => {
        batches++;
        options.onBatch?.();
      },
    });
    await Promise.all([...queries.values()].map((q) => q.awaitTermination()));
    return { rows: session.table(`${app.def.name}.out`), batches };
  } finally {
    fs.rmSync(ckpt, { recursive: true, force: true });
  }
}

function events(n: number): NexmarkEvent[] {
  return [...new NexmarkGenerator({ seed: SEED, firstEventRate: RATE }).events(0, n)];
}

describe('nexmark queries, checked against reference computations', function () {
  this.timeout(120_000);
  const small = events(20_000);
  const large = events(100_000);

  it('q0 passes every bid through', async () => {
    const { rows } = await runQuery('q0', 20_000, 'bid');
    expect(rows).to.deep.equal(reference.q0(small));
  });

  it('q1 converts prices to euros', async () => {
    const { rows } = await runQuery('q1', 20_000, 'bid');
    expect(rows).to.deep.equal(reference.q1(small));
  });

  it('q2 selects the bids on every 123rd auction', async () => {
    const { rows } = await runQuery('q2', 20_000, 'bid');
    const expected = reference.q2(small);
    expect(expected.length).to.be.greaterThan(10);
    expect(rows).to.deep.equal(expected);
  });

  it('q3 joins category-10 auctions with their sellers in OR, ID or CA (stream-stream inner join)', async () => {
    const { rows } = await runQuery('q3', 100_000, 'person,auction');
    const expected = reference.q3(large);
    expect(expected.length).to.be.greaterThan(20);
    expect(reference.sorted(rows)).to.deep.equal(reference.sorted(expected));
  });

  it('q20 expands bids with their category-10 auction (stream-stream join within the auction lifetime)', async () => {
    const { rows } = await runQuery('q20', 100_000, 'auction,bid');
    const expected = reference.q20(large);
    expect(expected.length).to.be.greaterThan(100);
    expect(reference.sorted(rows)).to.deep.equal(reference.sorted(expected));
  });

  it('q5 finds the auctions with the most bids per sliding window', async () => {
    const { rows } = await runQuery('q5', 100_000, 'bid');
    const expected = reference.q5(large);
    expect(expected.length).to.be.greaterThan(15);
    expect(reference.sorted(rows)).to.deep.equal(reference.sorted(expected));
  });

  it('q7 finds the highest bids per tumbling window', async () => {
    const { rows } = await runQuery('q7', 100_000, 'bid');
    const expected = reference.q7(large);
    expect(expected.length).to.be.greaterThan(3);
    expect(reference.sorted(rows)).to.deep.equal(reference.sorted(expected));
  });

  it('q8 finds people who opened an auction in the window they registered in', async () => {
    const { rows } = await runQuery('q8', 100_000, 'person,auction');
    const expected = reference.q8(large);
    expect(expected.length).to.be.greaterThan(100);
    expect(reference.sorted(rows)).to.deep.equal(reference.sorted(expected));
  });

  it('q11 counts bids per bidder session', async () => {
    const { rows } = await runQuery('q11', 100_000, 'bid');
    const expected = reference.q11(large);
    expect(expected.length).to.be.greaterThan(100);
    expect(reference.sorted(rows)).to.deep.equal(reference.sorted(expected));
  });

  it('q12 counts bids per bidder in processing-time windows', async () => {
    const clock = new ManualClock(1_700_000_000_000);
    const { rows, batches } = await runQuery('q12', 100_000, 'bid', { clock, onBatch: () => clock.advance(3000) });
    // Batch i reads events [10 000 i, 10 000 (i + 1)) at processing time start + 3 s × i.
    const bids = large.flatMap((e, n) =>
      e.type === 'bid' ? [{ bid: e.bid, processingTime: 1_700_000_000_000 + 3000 * Math.floor(n / 10_000) }] : [],
    );
    const expected = reference.q12(bids);
    expect(batches).to.be.greaterThan(10);
    expect(expected.length).to.be.greaterThan(100);
    expect(reference.sorted(rows)).to.deep.equal(reference.sorted(expected));
  });

  it('q13 joins every bid with the side input row of its auction % 10000, at threads 0 and 2', async () => {
    writeSideInput();
    const expected = reference.q13(small);
    expect(new Set(expected.map((r) => r.value)).size).to.be.greaterThan(50);
    expect((await runQuery('q13', 20_000, 'bid')).rows).to.deep.equal(expected);
    const pooled = await runQuery('q13', 20_000, 'bid', { threads: 2, batchEvents: 5000 });
    expect(reference.sorted(pooled.rows)).to.deep.equal(reference.sorted(expected));
  });

  it('gives the same join results in worker threads (q3, q8)', async () => {
    for (const [q, kinds, query] of [
      ['q3', 'person,auction', reference.q3],
      ['q8', 'person,auction', reference.q8],
    ] as const) {
      const { rows } = await runQuery(q, 100_000, kinds, { threads: 2, batchEvents: 25_000 });
      expect(reference.sorted(rows), q).to.deep.equal(reference.sorted(query(large)));
    }
  });

  it('gives the same results in worker threads (q5, q7: a stateful operator after another)', async () => {
    for (const [q, query] of [
      ['q5', reference.q5],
      ['q7', reference.q7],
    ] as const) {
      const { rows } = await runQuery(q, 100_000, 'bid', { threads: 2, batchEvents: 25_000 });
      expect(reference.sorted(rows), q).to.deep.equal(reference.sorted(query(large)));
    }
  });
});
