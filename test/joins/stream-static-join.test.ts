import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { tableFromArrays } from 'apache-arrow';
import { expect } from 'chai';
import { col } from '../../lib/api/column.js';
import { Session } from '../../lib/api/session.js';
import { SluiceError } from '../../lib/errors.js';
import { encodeParquet } from '../../lib/sinks/parquet-sink.js';
import { ManualClock, MemoryStream } from '../../lib/testing/index.js';

type Order = { order: number; user: string | null; amount: number };
type User = { user: string; country: string; tier: number };

const USERS: User[] = [
  { user: 'ann', country: 'fr', tier: 1 },
  { user: 'bob', country: 'de', tier: 2 },
  { user: 'bob', country: 'at', tier: 3 },
  { user: 'cy', country: 'it', tier: 1 },
];

/** Three batches of orders: users with one, two and no static row, and a null user. */
function orderBatches(): Order[][] {
  const names = ['ann', 'bob', 'dan', null, 'cy'];
  return [0, 1, 2].map((b) =>
    Array.from({ length: 7 }, (_, i) => ({ order: b * 100 + i, user: names[(i + b) % 5], amount: (i * 7 + b) % 10 })),
  );
}

/** The join as nested loops over plain objects, in stream order then static order. */
function reference(orders: Order[], how: string): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  for (const o of orders) {
    const m = USERS.filter((u) => o.user !== null && u.user === o.user);
    if (how === 'left_semi') {
      if (m.length > 0) out.push({ ...o });
    } else if (how === 'left_anti') {
      if (m.length === 0) out.push({ ...o });
    } else {
      for (const u of m) out.push({ user: o.user, order: o.order, amount: o.amount, country: u.country, tier: u.tier });
      if (m.length === 0 && how === 'left_outer')
        out.push({ user: o.user, order: o.order, amount: o.amount, country: null, tier: null });
    }
  }
  return out;
}

describe('stream-static joins', function () {
  this.timeout(60_000);
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-join-'));
    fs.writeFileSync(path.join(dir, 'users.jsonl'), USERS.map((u) => JSON.stringify(u)).join('\n'));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  async function runJoin(how: string, threads = 0): Promise<Record<string, unknown>[]> {
    const session = Session.local({ threads, clock: new ManualClock() });
    const orders = new MemoryStream<Order>(session, { order: 'long', user: 'string', amount: 'double' });
    const users = session.read.schema('user STRING, country STRING, tier INT').json(path.join(dir, 'users.jsonl'));
    const q = await orders.toDS().join(users, 'user', how).writeStream.format('memory').queryName('out').start();
    for (const b of orderBatches()) {
      orders.addData(b);
      await q.processAllAvailable();
    }
    await session.stop();
    return session.table('out');
  }

  for (const how of ['inner', 'left_outer', 'left_semi', 'left_anti']) {
    it(`${how} on a using column gives each stream row's matches, the using column once`, async () => {
      expect(await runJoin(how)).to.deep.equal(reference(orderBatches().flat(), how));
    });
  }

  for (const how of ['inner', 'right_outer']) {
    it(`${how} with the static side on the left gives the same rows, the static side's columns first (threads 0 and 2)`, async () => {
      for (const threads of [0, 2]) {
        const session = Session.local({ threads, clock: new ManualClock() });
        const orders = new MemoryStream<Order>(session, { order: 'long', user: 'string', amount: 'double' });
        const users = session.read.schema('user STRING, country STRING, tier INT').json(path.join(dir, 'users.jsonl'));
        const q = await users.join(orders.toDS(), 'user', how).writeStream.format('memory').queryName('out').start();
        for (const b of orderBatches()) {
          orders.addData(b);
          await q.processAllAvailable();
        }
        await session.stop();
        const expected = reference(orderBatches().flat(), how === 'inner' ? 'inner' : 'left_outer').map((r) => ({
          user: r.user,
          country: r.country,
          tier: r.tier,
          order: r.order,
          amount: r.amount,
        }));
        expect(session.table('out'), `threads ${threads}`).to.deep.equal(expected);
      }
    });
  }

  it('gives the same output at threads 2 as at threads 0', async () => {
    for (const how of ['inner', 'left_outer', 'left_anti']) {
      const pooled = await runJoin(how, 2);
      expect(pooled).to.deep.equal(await runJoin(how, 0));
      expect(pooled.length).to.be.greaterThan(0);
    }
  });

  it('evaluates a row function of the static side in the driver, so an inline query with one runs at threads 2', async () => {
    const session = Session.local({ threads: 2, clock: new ManualClock() });
    const orders = new MemoryStream<Order>(session, { order: 'long', user: 'string', amount: 'double' });
    const users = session.read
      .json(path.join(dir, 'users.jsonl'))
      .map((u) => ({ user: String(u.user), region: `eu-${String(u.country)}` }), { user: 'string', region: 'string' });
    const q = await orders
      .toDS()
      .join(users, 'user', 'left_semi')
      .join(users, 'user')
      .writeStream.format('memory')
      .queryName('r')
      .start();
    orders.addData(orderBatches()[0]);
    await q.processAllAvailable();
    await session.stop();
    const expected = reference(orderBatches()[0], 'inner').map((r) => ({
      user: r.user,
      order: r.order,
      amount: r.amount,
      region: `eu-${r.country}`,
    }));
    expect(session.table('r')).to.deep.equal(expected);
  });

  it('joins on a condition over aliased sides, with an expression key and a non-equality rest', async () => {
    const session = Session.local({ clock: new ManualClock() });
    const bids = new MemoryStream(session, { auction: 'long', price: 'double', bidder: 'string' });
    const side = session.read.json(path.join(dir, 'users.jsonl'));
    const joined = bids
      .toDS()
      .alias('b')
      .join(
        side.alias('s'),
        col('b.auction')
          .mod(10)
          .eq(col('s.tier'))
          .and(col('b.price').gt(col('s.tier').multiply(10))),
        'left',
      )
      .select('auction', 'price', 'country');
    const q = await joined.writeStream.format('memory').queryName('bids').start();
    const rows = [11, 12, 13, 22, 21].map((auction, i) => ({ auction, price: i * 10 + 5, bidder: 'x' }));
    bids.addData(rows);
    await q.processAllAvailable();
    await session.stop();
    const expected = rows.flatMap((r): Record<string, unknown>[] => {
      const m = USERS.filter((u) => r.auction % 10 === u.tier && r.price > u.tier * 10);
      return m.length > 0
        ? m.map((u) => ({ auction: r.auction, price: r.price, country: u.country }))
        : [{ auction: r.auction, price: r.price, country: null }];
    });
    expect(session.table('bids')).to.deep.equal(expected);
  });

  it('reads the static side when the query starts: a changed file takes effect on restart', async () => {
    const session = Session.local({ clock: new ManualClock() });
    const orders = new MemoryStream<Order>(session, { order: 'long', user: 'string', amount: 'double' });
    const users = session.read.format('csv').option('header', true).load(path.join(dir, 'users.csv'));
    fs.writeFileSync(path.join(dir, 'users.csv'), 'user,country\nann,fr\n');
    const ds = orders.toDS().join(users, ['user']).select('order', 'country');
    const ckpt = path.join(dir, 'ckpt');
    const start = (name: string) =>
      ds.writeStream.format('memory').queryName(name).option('checkpointLocation', ckpt).start();
    let q = await start('first');
    orders.addData([{ order: 1, user: 'ann', amount: 1 }]);
    await q.processAllAvailable();
    fs.writeFileSync(path.join(dir, 'users.csv'), 'user,country\nann,es\n');
    orders.addData([{ order: 2, user: 'ann', amount: 1 }]);
    await q.processAllAvailable();
    await q.stop();
    q = await start('second');
    orders.addData([{ order: 3, user: 'ann', amount: 1 }]);
    await q.processAllAvailable();
    await session.stop();
    expect(session.table('first')).to.deep.equal([
      { order: 1, country: 'fr' },
      { order: 2, country: 'fr' },
    ]);
    expect(session.table('second')).to.deep.equal([{ order: 3, country: 'es' }]);
  });

  it('reads a Parquet static side, joining on a number and on a dictionary-encoded string', async () => {
    const file = path.join(dir, 'side.parquet');
    fs.writeFileSync(
      file,
      encodeParquet(tableFromArrays({ key: Int32Array.from([1, 2, 3]), label: ['one', 'two', 'three'] })),
    );
    const session = Session.local({ clock: new ManualClock() });
    const input = new MemoryStream(session, { key: 'long', v: 'string' });
    const byKey = await input
      .toDS()
      .join(session.read.parquet(file), 'key')
      .writeStream.format('memory')
      .queryName('pq')
      .start();
    const byLabel = await input
      .toDS()
      .select(col('v').alias('label'))
      .join(session.read.parquet(file), 'label', 'left_outer')
      .writeStream.format('memory')
      .queryName('labels')
      .start();
    input.addData([
      { key: 2, v: 'three' },
      { key: 4, v: 'four' },
      { key: 3, v: 'one' },
    ]);
    await byKey.processAllAvailable();
    await byLabel.processAllAvailable();
    await session.stop();
    expect(session.table('pq')).to.deep.equal([
      { key: 2, v: 'three', label: 'two' },
      { key: 3, v: 'one', label: 'three' },
    ]);
    expect(session.table('labels')).to.deep.equal([
      { label: 'three', key: 3 },
      { label: 'four', key: null },
      { label: 'one', key: 1 },
    ]);
  });

  describe('analysis errors, where Spark refuses too', () => {
    async function startError(build: (s: Session, stream: MemoryStream) => unknown): Promise<SluiceError> {
      const session = Session.local({ clock: new ManualClock() });
      const stream = new MemoryStream(session, { user: 'string', country: 'string', n: 'long' });
      try {
        const ds = build(session, stream) as { writeStream: { format(f: string): { start(): Promise<unknown> } } };
        await ds.writeStream.format('noop').start();
      } catch (err) {
        return err as SluiceError;
      } finally {
        await session.stop();
      }
      throw new Error('the query started');
    }
    const users = (s: Session) => s.read.json(path.join(dir, 'users.jsonl'));

    it('refuses full and right outer joins of a stream with a static side', async () => {
      let err = await startError((s, st) => st.toDS().join(users(s), 'user', 'full_outer'));
      expect(err).to.be.instanceOf(SluiceError);
      expect(err.message).to.match(/^Full outer joins with a streaming DataFrame\/Dataset on the left/);
      err = await startError((s, st) => st.toDS().join(users(s), 'user', 'right'));
      expect(err.message).to.match(/^Right outer join with a streaming DataFrame\/Dataset on the left/);
    });

    it('refuses left outer, semi, anti and full outer joins of a static side with a stream on the right', async () => {
      for (const [how, spark] of [
        ['left_outer', 'LeftOuter'],
        ['left_semi', 'LeftSemi'],
        ['left_anti', 'LeftAnti'],
        ['full_outer', 'FullOuter'],
      ]) {
        const err = await startError((s, st) => users(s).join(st.toDS(), 'user', how));
        expect(err.message).to.equal(
          `${spark} join with a streaming DataFrame/Dataset on the right and a static DataFrame/Dataset on the left is not supported`,
        );
        expect(err.hint).to.match(/'inner' or 'right_outer'/);
      }
    });

    it('refuses an unknown join type and a cross join when the Dataset is built', async () => {
      const session = Session.local();
      const st = new MemoryStream(session, { user: 'string' });
      expect(() => st.toDS().join(users(session), 'user', 'sideways')).to.throw(
        SluiceError,
        /unsupported join type 'sideways'/,
      );
      expect(() => st.toDS().join(users(session), 'user', 'cross')).to.throw(SluiceError, /cross joins/);
    });

    it('names an ambiguous column of the condition, and a column both sides would output', async () => {
      let err = await startError((s, st) => st.toDS().join(users(s), col('user').eq(col('user'))));
      expect(err.message).to.match(/column 'user' in the join condition is ambiguous/);
      expect(err.hint).to.match(/alias/);
      err = await startError((s, st) =>
        st
          .toDS()
          .alias('o')
          .join(users(s).alias('u'), col('o.user').eq(col('u.user'))),
      );
      expect(err.message).to.match(/both sides of the join have a column 'user'/);
    });

    it('refuses keys of different kinds and a condition without an equality', async () => {
      let err = await startError((s, st) =>
        st
          .toDS()
          .alias('o')
          .join(users(s).alias('u'), col('o.n').eq(col('u.country'))),
      );
      expect(err.message).to.match(/join key n is long on the left but country is string on the right/);
      err = await startError((s, st) =>
        st
          .toDS()
          .alias('o')
          .join(users(s).alias('u'), col('o.n').gt(col('u.tier'))),
      );
      expect(err.message).to.match(/needs an equality between a column of each side/);
    });

    it('refuses writeStream on static data, and a static side that is missing', async () => {
      let err = await startError((s) => users(s));
      expect(err.message).to.match(/^writeStream can be called only on a streaming Dataset/);
      err = await startError((s, st) => st.toDS().join(s.read.json(path.join(dir, 'nope.jsonl')), 'user'));
      expect(err.message).to.match(/nope.jsonl does not exist/);
    });
  });
});
