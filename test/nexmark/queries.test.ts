import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { writeSideInput } from '../../bench/nexmark/side-input.js';
import { loadApp, runApp } from '../../lib/app/app-runner.js';
import { type NexmarkEvent, NexmarkGenerator } from '../../lib/gen/nexmark.js';
import { ManualClock } from '../../lib/testing/manual-clock.js';
import { duckdb } from '../sinks/helpers.js';
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
  options: {
    threads?: number;
    batchEvents?: number;
    clock?: ManualClock;
    onBatch?: () => void;
    /** More nexmark source options, e.g. `&baseTime=...`. */
    source?: string;
    /** A sink URI instead of the memory sink (the rows are then read back from it by the test). */
    sink?: string;
  } = {},
): Promise<Run> {
  const ckpt = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-nexmark-'));
  try {
    const app = await loadApp(path.join(APPS, `${query}.js`));
    let batches = 0;
    const { session, queries } = await runApp(app, {
      sources: [
        `nexmark:?events=${events}&seed=${SEED}&rate=${RATE}&kinds=${kinds}&maxEventsPerTrigger=${options.batchEvents ?? 10_000}&numPartitions=3${options.source ?? ''}`,
      ],
      sinks: [options.sink ?? 'memory:'],
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
    return { rows: options.sink ? [] : session.table(`${app.def.name}.out`), batches };
  } finally {
    fs.rmSync(ckpt, { recursive: true, force: true });
  }
}

function events(n: number, baseTime?: number): NexmarkEvent[] {
  return [...new NexmarkGenerator({ seed: SEED, firstEventRate: RATE, baseTime }).events(0, n)];
}

/** The rows of a CSV log partitioned by `dt` and `hm`, read back with DuckDB (folder values unescaped). */
async function readPartitionedCsv(dir: string): Promise<reference.Row[]> {
  const rows = await duckdb(
    `SELECT auction, bidder, price, dateTime, extra, filename FROM read_csv('${path.join(dir, '**', '*.csv')}', header = true, filename = true, hive_partitioning = false, types = {'auction': 'BIGINT', 'bidder': 'BIGINT', 'price': 'BIGINT', 'dateTime': 'TIMESTAMP', 'extra': 'VARCHAR'})`,
  );
  return rows.map(({ filename, ...r }) => {
    const folders = path.relative(dir, String(filename)).split(path.sep);
    const part = (name: string): string =>
      decodeURIComponent((folders.find((f) => f.startsWith(`${name}=`)) as string).slice(name.length + 1));
    return {
      auction: Number(r.auction),
      bidder: Number(r.bidder),
      price: Number(r.price),
      dateTime: r.dateTime,
      extra: r.extra,
      dt: part('dt'),
      hm: part('hm'),
    };
  });
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

  for (const threads of [0, 2]) {
    it(`q9 finds each auction's winning bid: a join, then an aggregation per auction (threads ${threads})`, async () => {
      const { rows } = await runQuery('q9', 100_000, 'auction,bid', { threads, batchEvents: 25_000 });
      const expected = reference.q9(large);
      expect(expected.length).to.be.greaterThan(100);
      expect(reference.sorted(rows)).to.deep.equal(reference.sorted(expected));
    });

    it(`q4 averages the winning prices per category: a join and two aggregations (threads ${threads})`, async () => {
      const { rows } = await runQuery('q4', 100_000, 'auction,bid', { threads, batchEvents: 25_000 });
      const expected = reference.q4(large);
      expect(expected.length).to.be.greaterThan(3);
      expect(reference.sorted(reference.latest(rows, ['category']))).to.deep.equal(reference.sorted(expected));
    });
  }

  it('q5 finds the auctions with the most bids per sliding window', async () => {
    const { rows } = await runQuery('q5', 100_000, 'bid');
    const expected = reference.q5(large);
    expect(expected.length).to.be.greaterThan(15);
    expect(reference.sorted(rows)).to.deep.equal(reference.sorted(expected));
  });

  it('q7 finds the highest bids per tumbling window (window maxima joined back to the bids)', async () => {
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

  describe('q10, q14-q19, q21, q22, at threads 0 and 2', () => {
    // The 50 s of event time cross from 07:00 to 08:00 (q14's times of day); q10's 25 s cross midnight.
    const baseTime = Date.UTC(2024, 0, 1, 7, 59, 50);
    const input = events(100_000, baseTime);
    const midnight = Date.UTC(2024, 0, 1, 23, 59, 50);

    for (const threads of [0, 2]) {
      const options = { threads, batchEvents: 25_000, source: `&baseTime=${baseTime}` };

      it(`q10 logs every bid to CSV files partitioned by day and minute (threads ${threads})`, async () => {
        const out = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-nexmark-q10-'));
        try {
          const sink = `file:${out}?format=csv&partitionBy=dt,hm`;
          await runQuery('q10', 50_000, 'bid', { ...options, source: `&baseTime=${midnight}`, sink });
          const expected = reference.q10(events(50_000, midnight));
          expect(new Set(expected.map((r) => `${r.dt} ${r.hm}`))).to.have.property('size', 2);
          expect(reference.sorted(await readPartitionedCsv(out))).to.deep.equal(reference.sorted(expected));
        } finally {
          fs.rmSync(out, { recursive: true, force: true });
        }
      });

      it(`q14 filters by euro price, names the time of day and counts with a user-defined function (threads ${threads})`, async () => {
        const { rows } = await runQuery('q14', 100_000, 'bid', options);
        const expected = reference.q14(input);
        expect(new Set(expected.map((r) => r.bidTimeType))).to.deep.equal(new Set(['otherTime', 'dayTime']));
        expect(reference.sorted(rows)).to.deep.equal(reference.sorted(expected));
      });

      it(`q21 adds the channel id from the channel name or the URL (threads ${threads})`, async () => {
        const { rows } = await runQuery('q21', 100_000, 'bid', options);
        const expected = reference.q21(input);
        expect(new Set(expected.map((r) => r.channel_id))).to.include.members(['0', '1', '2', '3']);
        expect(expected.length).to.be.lessThan(reference.bidsOf(input).length);
        expect(reference.sorted(rows)).to.deep.equal(reference.sorted(expected));
      });

      it(`q22 splits URL directories (threads ${threads})`, async () => {
        const { rows } = await runQuery('q22', 100_000, 'bid', options);
        expect(reference.sorted(rows)).to.deep.equal(reference.sorted(reference.q22(input)));
      });

      for (const [q, query, keys] of [
        ['q15', reference.q15, ['day']],
        ['q16', reference.q16, ['channel', 'day']],
        ['q17', reference.q17, ['auction', 'day']],
        ['q18', reference.q18, ['bidder', 'auction']],
        ['q19', reference.q19, ['auction']],
      ] as const) {
        it(`${q} updates its groups to the reference's final result (threads ${threads})`, async () => {
          const { rows, batches } = await runQuery(q, 100_000, 'bid', options);
          const expected = query(input);
          expect(batches).to.be.greaterThan(3);
          expect(rows.length).to.be.at.least(expected.length);
          expect(reference.sorted(reference.latest(rows, [...keys]))).to.deep.equal(reference.sorted(expected));
        });
      }
    }
  });

  it('gives the same results in worker threads (q5, q7: a stateful operator after another, q7 a join after it)', async () => {
    for (const [q, query] of [
      ['q5', reference.q5],
      ['q7', reference.q7],
    ] as const) {
      const { rows } = await runQuery(q, 100_000, 'bid', { threads: 2, batchEvents: 25_000 });
      expect(reference.sorted(rows), q).to.deep.equal(reference.sorted(query(large)));
    }
  });
});
