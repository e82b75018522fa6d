import { expect } from 'chai';
import { col, session_window, window } from '../../lib/api/functions.js';
import { Session } from '../../lib/api/session.js';
import { ManualClock } from '../../lib/testing/manual-clock.js';
import { MemoryStream } from '../../lib/testing/memory-stream.js';

const T0 = Date.UTC(2024, 0, 1);
const at = (s: number): Date => new Date(T0 + s * 1000);
const WINDOW_S = 10;

type Row = Record<string, unknown>;
const text = (r: Row): string => JSON.stringify(r);
const sorted = (rows: Row[]): Row[] => [...rows].sort((a, b) => (text(a) < text(b) ? -1 : text(a) > text(b) ? 1 : 0));

type Person = { id: number; name: string; ts: Date };
type Auction = { seller: number; ats: Date };

/** The tumbling window of a time, as `window(ts, '10 seconds')` gives it. */
function windowOf(t: Date): { start: Date; end: Date } {
  const start = t.getTime() - (((t.getTime() % (WINDOW_S * 1000)) + WINDOW_S * 1000) % (WINDOW_S * 1000));
  return { start: new Date(start), end: new Date(start + WINDOW_S * 1000) };
}

/** Persons joined with the auctions their id opened in the window they registered in (q8's shape). */
async function windowJoin(how: string, threads = 0) {
  const session = Session.local({ clock: new ManualClock(), threads });
  const persons = new MemoryStream<Person>(session, { id: 'long', name: 'string', ts: 'timestamp' }, 'persons');
  const auctions = new MemoryStream<Auction>(session, { seller: 'long', ats: 'timestamp' }, 'auctions');
  const p = persons
    .toDS()
    .withWatermark('ts', '5 seconds')
    .select('id', 'name', 'ts', window('ts', `${WINDOW_S} seconds`));
  const a = auctions
    .toDS()
    .withWatermark('ats', '5 seconds')
    .select('seller', 'ats', window('ats', `${WINDOW_S} seconds`).alias('aw'));
  const joined = p.join(
    a,
    col('id')
      .eq(col('seller'))
      .and(col('window').eq(col('aw'))),
    how,
  );
  const query = await joined.writeStream.format('memory').queryName('out').outputMode('append').start();
  return { session, persons, auctions, query, out: () => session.table('out') as Row[] };
}

const joinedRow = (p: Person | null, a: Auction | null): Row => ({
  id: p?.id ?? null,
  name: p?.name ?? null,
  ts: p?.ts ?? null,
  window: p ? windowOf(p.ts) : null,
  seller: a?.seller ?? null,
  ats: a?.ats ?? null,
  aw: a ? windowOf(a.ats) : null,
});

/** What the join of everything gives, by brute force. */
function reference(how: string, ps: Person[], as: Auction[]): Row[] {
  const ok = (p: Person, a: Auction) =>
    p.id === a.seller && windowOf(p.ts).start.getTime() === windowOf(a.ats).start.getTime();
  const out: Row[] = [];
  for (const p of ps) for (const a of as) if (ok(p, a)) out.push(joinedRow(p, a));
  if (how === 'left_outer') for (const p of ps) if (!as.some((a) => ok(p, a))) out.push(joinedRow(p, null));
  return out;
}

/** Persons and auctions over 60 s, a little out of order, in batches; a last batch far ahead closes every window. */
function workload(): { ps: Person[][]; as: Auction[][] } {
  let s = 11;
  const rnd = (): number => {
    s = (s * 1103515245 + 12345) % 2147483648;
    return s / 2147483648;
  };
  const ps: Person[][] = [];
  const as: Auction[][] = [];
  for (let b = 0; b < 6; b++) {
    ps.push(
      Array.from({ length: 12 }, (_, i) => ({
        id: Math.floor(rnd() * 8),
        name: `p${b}-${i}`,
        ts: at(b * 10 + rnd() * 10),
      })),
    );
    as.push(Array.from({ length: 15 }, () => ({ seller: Math.floor(rnd() * 8), ats: at(b * 10 + rnd() * 12 - 1) })));
  }
  ps.push([{ id: 100, name: 'last', ts: at(1000) }]);
  as.push([{ seller: 100, ats: at(1001) }]);
  return { ps, as };
}

describe('window-equality stream-stream joins', function () {
  this.timeout(120_000);

  it('window() is a column: a struct of each row’s tumbling window start and end', async () => {
    const session = Session.local({ clock: new ManualClock() });
    const s = new MemoryStream(session, { id: 'long', ts: 'timestamp' });
    const q = await s
      .toDS()
      .select('id', 'ts', window('ts', '10 seconds'))
      .withColumn('w5', window('ts', '5 seconds', undefined, '2 seconds'))
      .writeStream.format('memory')
      .queryName('w')
      .start();
    s.addData([
      { id: 1, ts: at(3) },
      { id: 2, ts: new Date(T0 - 1500) },
    ]);
    await q.processAllAvailable();
    expect(session.table('w')).to.deep.equal([
      { id: 1, ts: at(3), window: { start: at(0), end: at(10) }, w5: { start: at(2), end: at(7) } },
      { id: 2, ts: at(-1.5), window: { start: at(-10), end: at(0) }, w5: { start: at(-3), end: at(2) } },
    ]);
    await session.stop();
  });

  for (const how of ['inner', 'left_outer']) {
    it(`${how}: the same rows as a join of everything, at threads 0 and 2, and the watermark empties the state`, async () => {
      const { ps, as } = workload();
      const expected = sorted(reference(how, ps.flat(), as.flat()));
      expect(expected.length).to.be.greaterThan(10);
      for (const threads of [0, 2]) {
        const { session, persons, auctions, query, out } = await windowJoin(how, threads);
        for (let b = 0; b < ps.length; b++) {
          persons.addData(ps[b]);
          auctions.addData(as[b]);
          await query.processAllAvailable();
        }
        expect(sorted(out())).to.deep.equal(expected);
        // The last batch's watermark (995 s) has passed every window but the last: only its two rows are left.
        const op = query.lastProgress!.stateOperators[0];
        expect(op.customMetrics).to.include({ leftNumRowsTotal: 1, rightNumRowsTotal: 1 });
        await session.stop();
      }
    });
  }

  it('a left outer join emits an unmatched row null-padded once the watermark passes its window', async () => {
    const { session, persons, auctions, query, out } = await windowJoin('left_outer');
    const ann = { id: 1, name: 'ann', ts: at(1) };
    const bob = { id: 2, name: 'bob', ts: at(2) };
    const annAuction = { seller: 1, ats: at(8) };
    persons.addData([ann, bob]);
    auctions.addData([annAuction, { seller: 2, ats: at(12) }]);
    await query.processAllAvailable();
    expect(out()).to.deep.equal([joinedRow(ann, annAuction)]);
    // Watermark 21 - 5 = 16 s on both inputs: no row of window [0 s, 10 s) can come any more.
    persons.addData([{ id: 3, name: 'cy', ts: at(21) }]);
    auctions.addData([{ seller: 9, ats: at(21) }]);
    await query.processAllAvailable();
    expect(out()).to.deep.equal([joinedRow(ann, annAuction), joinedRow(bob, null)]);
    auctions.addData([{ seller: 2, ats: at(3) }]);
    await query.processAllAvailable();
    expect(query.lastProgress!.stateOperators[0].numRowsDroppedByWatermark).to.equal(1);
    await session.stop();
  });

  describe('analysis, one line each', () => {
    const start = async (select: (ds: ReturnType<MemoryStream['toDS']>) => ReturnType<MemoryStream['toDS']>) => {
      const session = Session.local({ clock: new ManualClock() });
      const s = new MemoryStream(session, { id: 'long', ts: 'timestamp' });
      try {
        const q = await select(s.toDS()).writeStream.format('memory').queryName('x').start();
        await q.stop();
        return null;
      } catch (err) {
        return (err as Error).message;
      } finally {
        await session.stop();
      }
    };

    it('a sliding window is not a column', async () => {
      const msg = await start((ds) => ds.select('id', window('ts', '10 seconds', '5 seconds')));
      expect(msg).to.match(/a sliding window cannot be a column .*: each row is in several windows/);
    });

    it('a session window is not a column', async () => {
      const msg = await start((ds) => ds.select('id', session_window('ts', '10 seconds')));
      expect(msg).to.match(/session_window\(\.\.\.\) cannot be a column: it only exists in a groupBy/);
    });
  });
});
