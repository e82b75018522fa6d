import { expect } from 'chai';
import { col, count, interval, max, window } from '../../lib/api/functions.js';
import { Session } from '../../lib/api/session.js';
import type { StreamingQuery } from '../../lib/api/streaming-query.js';
import { ManualClock } from '../../lib/testing/manual-clock.js';
import { MemoryStream } from '../../lib/testing/memory-stream.js';

const T0 = Date.UTC(2024, 0, 1);
const at = (s: number): Date => new Date(T0 + s * 1000);

type Row = Record<string, unknown>;
const key = (r: Row): string => JSON.stringify(r);
const sorted = (rows: Row[]): Row[] => [...rows].sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));

type Impression = {
  ad: number;
  shown: Date;
  page: string;
};
type Click = {
  adId: number;
  clicked: Date;
  button: string;
};

/** Impressions and clicks of ads joined as in Spark's guide: a click counts within 30 s after its impression. */
async function adJoin(how: string, threads = 0) {
  const session = Session.local({ clock: new ManualClock(), threads });
  const impressions = new MemoryStream<Impression>(session, { ad: 'long', shown: 'timestamp', page: 'string' });
  const clicks = new MemoryStream<Click>(session, { adId: 'long', clicked: 'timestamp', button: 'string' });
  const joined = impressions
    .toDS()
    .withWatermark('shown', '10 seconds')
    .alias('i')
    .join(
      clicks.toDS().withWatermark('clicked', '10 seconds').alias('c'),
      col('i.ad')
        .eq(col('c.adId'))
        .and(col('clicked').between(col('shown'), col('shown').plus(interval('30 seconds')))),
      how,
    );
  const query = await joined.writeStream.format('memory').queryName('out').outputMode('append').start();
  return { session, impressions, clicks, query, out: () => session.table('out') as Row[] };
}

const pair = (i: Impression | null, c: Click | null): Row => ({
  ad: i?.ad ?? null,
  shown: i?.shown ?? null,
  page: i?.page ?? null,
  adId: c?.adId ?? null,
  clicked: c?.clicked ?? null,
  button: c?.button ?? null,
});

/** What a join of everything gives, by brute force over all pairs. */
function reference(how: string, imps: Impression[], clks: Click[]): Row[] {
  const ok = (i: Impression, c: Click): boolean =>
    i.ad === c.adId && c.clicked.getTime() >= i.shown.getTime() && c.clicked.getTime() <= i.shown.getTime() + 30_000;
  const out: Row[] = [];
  for (const i of imps) for (const c of clks) if (ok(i, c)) out.push(pair(i, c));
  if (how === 'left_outer' || how === 'full_outer')
    for (const i of imps) if (!clks.some((c) => ok(i, c))) out.push(pair(i, null));
  if (how === 'right_outer' || how === 'full_outer')
    for (const c of clks) if (!imps.some((i) => ok(i, c))) out.push(pair(null, c));
  if (how === 'left_semi')
    return imps.filter((i) => clks.some((c) => ok(i, c))).map((i) => ({ ad: i.ad, shown: i.shown, page: i.page }));
  return out;
}

/** A deterministic pseudo-random stream of impressions and clicks, a little out of order, in batches. */
function workload(seed: number, batches: number): { imps: Impression[][]; clks: Click[][] } {
  let s = seed;
  const rnd = (): number => {
    s = (s * 1103515245 + 12345) % 2147483648;
    return s / 2147483648;
  };
  const imps: Impression[][] = [];
  const clks: Click[][] = [];
  let n = 0;
  for (let b = 0; b < batches; b++) {
    const bi: Impression[] = [];
    const bc: Click[] = [];
    for (let k = 0; k < 12; k++, n++) {
      const t = b * 15 + Math.floor(rnd() * 8);
      bi.push({ ad: Math.floor(rnd() * 6), shown: at(t), page: `p${n}` });
      bc.push({ adId: Math.floor(rnd() * 6), clicked: at(t + Math.floor(rnd() * 40) - 5), button: `b${n}` });
    }
    imps.push(bi);
    clks.push(bc);
  }
  return { imps, clks };
}

/** Feeds the workload batch by batch, then a row far in the future on each side so the watermark passes everything. */
async function runWorkload(how: string, threads: number): Promise<{ rows: Row[]; query: StreamingQuery }> {
  const { session, impressions, clicks, query, out } = await adJoin(how, threads);
  const { imps, clks } = workload(7, 8);
  for (let b = 0; b < imps.length; b++) {
    impressions.addData(imps[b]);
    clicks.addData(clks[b]);
    await query.processAllAvailable();
  }
  impressions.addData([{ ad: 99, shown: at(10_000), page: 'end' }]);
  clicks.addData([{ adId: 98, clicked: at(10_000), button: 'end' }]);
  await query.processAllAvailable();
  impressions.addData([{ ad: 97, shown: at(20_000), page: 'end2' }]);
  clicks.addData([{ adId: 96, clicked: at(20_000), button: 'end2' }]);
  await query.processAllAvailable();
  const rows = out().filter((r) => !String(r.page ?? r.button).startsWith('end'));
  await session.stop();
  return { rows, query };
}

describe('stream-stream joins', function () {
  this.timeout(120_000);

  it('inner join emits each matching pair once, in the batch where its later row arrives', async () => {
    const { session, impressions, clicks, query, out } = await adJoin('inner');
    const home = { ad: 1, shown: at(0), page: 'home' };
    impressions.addData([home, { ad: 2, shown: at(1), page: 'news' }]);
    const buy = { adId: 1, clicked: at(5), button: 'buy' };
    clicks.addData([buy]);
    await query.processAllAvailable();
    expect(out()).to.deep.equal([pair(home, buy)]);
    clicks.addData([
      { adId: 2, clicked: at(40), button: 'out of range' },
      { adId: 2, clicked: at(20), button: 'in range' },
    ]);
    await query.processAllAvailable();
    expect(out().map((r) => r.button)).to.deep.equal(['buy', 'in range']);
    const op = query.lastProgress!.stateOperators[0];
    expect(op.operatorName).to.match(/^symmetricHashJoin#/);
    expect(op.customMetrics).to.include({ leftNumRowsTotal: 2, rightNumRowsTotal: 3 });
    expect(op.numRowsTotal).to.equal(5);
    await session.stop();
  });

  for (const how of ['inner', 'left_outer', 'right_outer', 'full_outer', 'left_semi']) {
    it(`${how}: the same rows as a join of everything, at threads 0 and 2`, async () => {
      const { imps, clks } = workload(7, 8);
      const expected = sorted(reference(how, imps.flat(), clks.flat()));
      expect(expected.length).to.be.greaterThan(10);
      const t0 = await runWorkload(how, 0);
      expect(sorted(t0.rows)).to.deep.equal(expected);
      const t2 = await runWorkload(how, 2);
      expect(sorted(t2.rows)).to.deep.equal(expected);
    });
  }

  it('drops buffered rows once the watermark shows no match can come, and emits unmatched outer rows then', async () => {
    const { session, impressions, clicks, query, out } = await adJoin('left_outer');
    impressions.addData([{ ad: 1, shown: at(0), page: 'lonely' }]);
    clicks.addData([{ adId: 5, clicked: at(1), button: 'other' }]);
    await query.processAllAvailable();
    expect(out()).to.deep.equal([]);
    // Watermark 100 - 10 = 90 s: no click later than 90 s can be within 30 s of the impression at 0 s.
    impressions.addData([{ ad: 2, shown: at(100), page: 'later' }]);
    clicks.addData([{ adId: 3, clicked: at(100), button: 'later' }]);
    await query.processAllAvailable();
    expect(out()).to.deep.equal([pair({ ad: 1, shown: at(0), page: 'lonely' }, null)]);
    const op = query.lastProgress!.stateOperators[0];
    expect(op.customMetrics).to.include({ leftNumRowsTotal: 1, rightNumRowsTotal: 1 });
    clicks.addData([{ adId: 1, clicked: at(10), button: 'late' }]);
    await query.processAllAvailable();
    expect(query.lastProgress!.stateOperators[0].numRowsDroppedByWatermark).to.equal(1);
    await session.stop();
  });

  it('joins on a column both sides have, kept once', async () => {
    const session = Session.local({ clock: new ManualClock() });
    const a = new MemoryStream(session, { id: 'long', x: 'string' });
    const b = new MemoryStream(session, { id: 'long', y: 'string' });
    const query = await a.toDS().join(b.toDS(), 'id').writeStream.format('memory').queryName('u').start();
    a.addData([
      { id: 1, x: 'a1' },
      { id: 2, x: 'a2' },
    ]);
    b.addData([{ id: 2, y: 'b2' }]);
    await query.processAllAvailable();
    b.addData([{ id: 1, y: 'b1' }]);
    await query.processAllAvailable();
    expect(session.table('u')).to.deep.equal([
      { id: 2, x: 'a2', y: 'b2' },
      { id: 1, x: 'a1', y: 'b1' },
    ]);
    await session.stop();
  });

  it('an aggregation after an inner join emits each group once, when the watermark passes the column it closes by', async () => {
    const session = Session.local({ clock: new ManualClock() });
    const offers = new MemoryStream(session, { id: 'long', opened: 'timestamp', closes: 'timestamp' });
    const bids = new MemoryStream(session, { offer: 'long', price: 'long', ts: 'timestamp' });
    const best = offers
      .toDS()
      .withWatermark('opened', '5 seconds')
      .join(
        bids.toDS().withWatermark('ts', '5 seconds'),
        col('id')
          .eq(col('offer'))
          .and(col('ts').between(col('opened'), col('closes'))),
      )
      .withWatermark('closes', '5 seconds')
      .groupBy('id', 'closes')
      .agg(max('price').alias('best'), count('*').alias('bids'));
    const query = await best.writeStream.format('memory').queryName('best').outputMode('append').start();
    const batches: Row[][] = [];
    const step = async (o: Row[], b: Row[]) => {
      offers.addData(o);
      bids.addData(b);
      await query.processAllAvailable();
      batches.push([...(session.table('best') as Row[])]);
    };
    await step(
      [
        { id: 1, opened: at(0), closes: at(20) },
        { id: 2, opened: at(1), closes: at(40) },
      ],
      [
        { offer: 1, price: 5, ts: at(2) },
        { offer: 2, price: 7, ts: at(3) },
      ],
    );
    // A bid after its offer closed does not join; the offers' watermark holds the query's back.
    await step(
      [],
      [
        { offer: 1, price: 9, ts: at(30) },
        { offer: 2, price: 8, ts: at(29) },
      ],
    );
    // Watermark 00:00:26 afterwards closes offer 1 (closes 00:00:20); a bid joins offer 2 after its first ones.
    await step([{ id: 3, opened: at(31), closes: at(50) }], [{ offer: 2, price: 6, ts: at(31) }]);
    // Watermark 00:01:05 (the least of the three withWatermark columns' marks) closes offer 2; offer 3 had no bid.
    await step([{ id: 4, opened: at(70), closes: at(90) }], [{ offer: 4, price: 1, ts: at(70) }]);
    expect(batches[0]).to.deep.equal([]);
    expect(batches[2]).to.deep.equal([{ id: 1, closes: at(20), best: 5, bids: 1 }]);
    expect(sorted(batches[3])).to.deep.equal(
      sorted([
        { id: 1, closes: at(20), best: 5, bids: 1 },
        { id: 2, closes: at(40), best: 8, bids: 3 },
      ]),
    );
    expect(query.lastProgress?.stateOperators.map((s) => s.numRowsDroppedByWatermark)).to.deep.equal([0, 0]);
    await session.stop();
  });

  describe('analysis, one line each', () => {
    const start = async (
      build: (a: MemoryStream, b: MemoryStream) => ReturnType<MemoryStream['toDS']>,
      mode = 'append',
    ) => {
      const session = Session.local({ clock: new ManualClock() });
      const a = new MemoryStream(session, { id: 'long', ts: 'timestamp' }, 'a');
      const b = new MemoryStream(session, { id2: 'long', ts2: 'timestamp' }, 'b');
      try {
        const q = await build(a, b)
          .writeStream.format('memory')
          .queryName('x')
          .outputMode(mode as 'append')
          .start();
        await q.stop();
        return null;
      } catch (err) {
        return (err as Error).message;
      } finally {
        await session.stop();
      }
    };
    const range = col('a.ts').between(col('b.ts2').minus(interval('1 minute')), col('b.ts2'));
    const same = col('a.id').eq(col('b.id2'));

    it('an outer join needs a watermark on both sides', async () => {
      const msg = await start((a, b) =>
        a.toDS().withWatermark('ts', '1 minute').alias('a').join(b.toDS().alias('b'), same.and(range), 'left_outer'),
      );
      expect(msg).to.match(/left_outer join needs a watermark on both sides; the right side has none/);
    });

    it('an outer join needs a time constraint', async () => {
      const msg = await start((a, b) =>
        a
          .toDS()
          .withWatermark('ts', '1 minute')
          .alias('a')
          .join(b.toDS().withWatermark('ts2', '1 minute').alias('b'), same, 'full_outer'),
      );
      expect(msg).to.match(/full_outer join needs a time constraint/);
    });

    it('joins run in append mode only', async () => {
      const msg = await start((a, b) => a.toDS().alias('a').join(b.toDS().alias('b'), same), 'update');
      expect(msg).to.match(/update output mode is not supported by symmetricHashJoin#\d+/);
    });

    it('a column both sides have needs the sides named', async () => {
      const msg = await start((a) => a.toDS().join(a.toDS().where(col('id').gt(0)), col('id').eq(col('id'))));
      expect(msg).to.match(/column 'id' in the join condition is ambiguous: both sides have it/);
    });

    it('a join needs an equality between the sides', async () => {
      const msg = await start((a, b) => a.toDS().alias('a').join(b.toDS().alias('b'), range));
      expect(msg).to.match(/a join needs an equality between a column of each side in its condition/);
    });

    it('mapGroupsWithState after a join is refused', async () => {
      const msg = await start(
        (a, b) =>
          a
            .toDS()
            .alias('a')
            .join(b.toDS().alias('b'), same)
            .groupByKey<number>('a.id')
            .mapGroupsWithState((k: number) => ({ k }), {}) as never,
        'update',
      );
      expect(msg).to.match(/after the stream-stream join symmetricHashJoin#\d+ is not supported/);
    });

    it('an aggregation after an outer join is refused: the join emits rows behind the watermark', async () => {
      const msg = await start((a, b) =>
        a
          .toDS()
          .withWatermark('ts', '1 minute')
          .alias('a')
          .join(b.toDS().withWatermark('ts2', '1 minute').alias('b'), same.and(range), 'left_outer')
          .withWatermark('ts', '1 minute')
          .groupBy(window('ts', '1 minute'))
          .agg(count('*')),
      );
      expect(msg).to.match(
        /windowAggregate#\d+ after the stream-stream join symmetricHashJoin#\d+ is not supported: a left_outer join emits rows the watermark has already passed/,
      );
    });

    it("an aggregation after a join may not close its groups by one side's event time alone", async () => {
      const joined = (a: MemoryStream, b: MemoryStream) =>
        a
          .toDS()
          .withWatermark('ts', '1 minute')
          .alias('a')
          .join(b.toDS().withWatermark('ts2', '1 minute').alias('b'), same.and(range));
      const msg = await start((a, b) => joined(a, b).groupBy(window('ts2', '1 minute')).agg(count('*')));
      expect(msg).to.match(
        /closes its state by 'ts2', the event time of one side of the join, but the join emits a pair when its later row arrives/,
      );
      // Joined on equal event times, a pair's rows share them: the same aggregation is fine.
      const equal = await start((a, b) =>
        a
          .toDS()
          .withWatermark('ts', '1 minute')
          .alias('a')
          .join(b.toDS().withWatermark('ts2', '1 minute').alias('b'), same.and(col('a.ts').eq(col('b.ts2'))))
          .groupBy(window('ts2', '1 minute'))
          .agg(count('*')),
      );
      expect(equal).to.equal(null);
    });

    it('an unknown join type names the supported ones', async () => {
      const msg = await start((a, b) =>
        a
          .toDS()
          .alias('a')
          .join(b.toDS().alias('b'), same, 'bogus' as 'inner'),
      );
      expect(msg).to.match(/unsupported join type 'bogus'/);
    });
  });
});
