import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { expect } from 'chai';
import type { Dataset } from '../../lib/api/dataset.js';
import { col, count, interval, session_window, sum, window } from '../../lib/api/functions.js';
import type { GroupState } from '../../lib/api/group-state.js';
import { Session } from '../../lib/api/session.js';
import {
  type ExpiredTimerInfo,
  StatefulProcessor,
  type TimerValues,
  type ValueState,
} from '../../lib/api/stateful-processor.js';
import { describeState } from '../../lib/cli/checkpoint-command.js';
import { findOperator, inspectCheckpoint, readStateRows } from '../../lib/cli/checkpoint-inspector.js';
import { ManualClock, MemoryStream } from '../../lib/testing/index.js';

type Ev = { user: string; amount: number; ts: Date };
const SCHEMA = { user: 'string', amount: 'double', ts: 'timestamp' } as const;
const T0 = Date.parse('2024-05-01T10:00:00Z');
const BATCHES = 8;
/** The query stops after this batch and a new one continues from the checkpoint. */
const RESTART_AFTER = 3;

/** Deterministic events of batch `b`: 40 rows over 12 users, event time moving on about 40 s per batch with disorder. */
function batch(b: number, stream: number): Ev[] {
  const rows: Ev[] = [];
  let seed = b * 7919 + stream * 104729 + 1;
  const rnd = () => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed / 2147483648;
  };
  for (let i = 0; i < 40; i++) {
    const u = Math.floor(rnd() * 12);
    rows.push({
      user: `u${u}`,
      amount: Math.floor(rnd() * 100) / 4,
      ts: new Date(T0 + b * 40_000 + Math.floor(rnd() * 60_000) - 20_000),
    });
  }
  return rows;
}

/** Sums per user with a processing-time timer that reports and clears idle users. */
class IdleSums extends StatefulProcessor<string, Ev, { user: string; what: string; n: number }> {
  total!: ValueState<number>;

  init(): void {
    this.total = this.getHandle().getValueState<number>('total');
  }

  *handleInputRows(user: string, rows: Ev[], tv: TimerValues): Iterable<{ user: string; what: string; n: number }> {
    const n = (this.total.get() ?? 0) + rows.reduce((a, r) => a + r.amount, 0);
    this.total.update(n);
    for (const t of this.getHandle().listTimers()) this.getHandle().deleteTimer(t);
    this.getHandle().registerTimer(tv.getCurrentProcessingTimeInMs() + 25_000);
    yield { user, what: 'sum', n };
  }

  override *handleExpiredTimer(user: string): Iterable<{ user: string; what: string; n: number }> {
    yield { user, what: 'idle', n: this.total.get() ?? 0 };
    this.total.clear();
  }
}

/**
 * Counts rows per user with event-time timers at 30 s window ends, and one at the watermark itself, which fires in
 * the same batch.
 */
class WindowEnds extends StatefulProcessor<string, Ev, { user: string; what: string; n: number }> {
  total!: ValueState<number>;

  init(): void {
    this.total = this.getHandle().getValueState<number>('total');
  }

  *handleInputRows(user: string, rows: Ev[], tv: TimerValues): Iterable<{ user: string; what: string; n: number }> {
    const n = (this.total.get() ?? 0) + rows.length;
    this.total.update(n);
    for (const r of rows) this.getHandle().registerTimer(Math.floor(r.ts.getTime() / 30_000) * 30_000 + 30_000);
    this.getHandle().registerTimer(Math.max(0, tv.getCurrentWatermarkInMs()));
    yield { user, what: 'rows', n };
  }

  override *handleExpiredTimer(
    user: string,
    _tv: TimerValues,
    info: ExpiredTimerInfo,
  ): Iterable<{ user: string; what: string; n: number }> {
    yield { user, what: `timer ${info.getExpiryTimeInMs()}`, n: this.total.get() ?? 0 };
  }
}

type Build = (a: Dataset<Ev>, b: Dataset<Ev>) => Dataset<unknown>;

/** Every stateful operator, each as a query over two streams of events. */
const QUERIES: Array<{ name: string; mode: 'append' | 'update'; build: Build }> = [
  {
    name: 'aggregation',
    mode: 'update',
    build: (a) => a.groupBy('user').agg(count('*').alias('n'), sum('amount').alias('total')) as Dataset<unknown>,
  },
  {
    name: 'tumbling windows',
    mode: 'append',
    build: (a) =>
      a
        .withWatermark('ts', '30 seconds')
        .groupBy(window('ts', '1 minute'), 'user')
        .agg(count('*').alias('n'), sum('amount').alias('total')) as Dataset<unknown>,
  },
  {
    name: 'session windows',
    mode: 'append',
    build: (a) =>
      a
        .withWatermark('ts', '30 seconds')
        .groupBy('user', session_window('ts', '20 seconds'))
        .agg(count('*').alias('n')) as Dataset<unknown>,
  },
  {
    name: 'mapGroupsWithState with timeouts',
    mode: 'update',
    build: (a) =>
      a
        .groupByKey((e) => e.user)
        .flatMapGroupsWithState(
          (user: string, rows: Ev[], state: GroupState<{ sum: number }>) => {
            if (state.hasTimedOut) {
              const closed = { user, sum: state.get().sum, closed: true };
              state.remove();
              return [closed];
            }
            const s = (state.getOption()?.sum ?? 0) + rows.reduce((x, r) => x + r.amount, 0);
            state.update({ sum: s });
            state.setTimeoutDuration('25 seconds');
            return [{ user, sum: s, closed: false }];
          },
          { outputMode: 'update', timeout: 'ProcessingTimeTimeout' },
        ) as Dataset<unknown>,
  },
  {
    name: 'transformWithState with timers',
    mode: 'update',
    build: (a) =>
      a.groupByKey((e) => e.user).transformWithState(new IdleSums(), 'ProcessingTime', 'update') as Dataset<unknown>,
  },
  {
    name: 'transformWithState with event-time timers',
    mode: 'update',
    build: (a) =>
      a
        .withWatermark('ts', '10 seconds')
        .groupByKey((e) => e.user)
        .transformWithState(new WindowEnds(), 'EventTime', 'update') as Dataset<unknown>,
  },
  {
    name: 'stream-stream join',
    mode: 'append',
    build: (a, b) =>
      a.withWatermark('ts', '30 seconds').join(
        b
          .select(col('user').alias('buyer'), col('amount').alias('paid'), col('ts').alias('paidAt'))
          .withWatermark('paidAt', '30 seconds'),
        col('user')
          .eq(col('buyer'))
          .and(col('paidAt').between(col('ts'), col('ts').plus(interval('10 seconds')))),
        'left_outer',
      ) as Dataset<unknown>,
  },
  {
    name: 'dropDuplicatesWithinWatermark',
    mode: 'append',
    build: (a) => a.withWatermark('ts', '30 seconds').dropDuplicatesWithinWatermark('user') as Dataset<unknown>,
  },
];

/** Runs `build` over the batches with `stateStore`, restarting once; returns every output row in order, as JSON. */
async function run(build: Build, mode: 'append' | 'update', stateStore: string, root: string, threads: number) {
  const clock = new ManualClock(T0);
  const session = Session.local({ clock, threads, statePartitions: 3 });
  const a = new MemoryStream<Ev>(session, SCHEMA);
  const b = new MemoryStream<Ev>(session, SCHEMA);
  const ds = build(a.toDS(), b.toDS());
  const start = (name: string) =>
    ds.writeStream
      .format('memory')
      .queryName(name)
      .outputMode(mode)
      .option('checkpointLocation', path.join(root, 'ckpt'))
      .option('stateStore', stateStore)
      .option('stateLocalDir', path.join(root, 'local'))
      .start();
  let query = await start('first');
  for (let i = 0; i < BATCHES; i++) {
    if (i === RESTART_AFTER) {
      await query.stop();
      query = await start('second');
    }
    a.addData(batch(i, 0));
    b.addData(batch(i, 1));
    await query.processAllAvailable();
    clock.advance(10_000);
  }
  // Idle time: timeouts and timers fire in no-data batches.
  for (let i = 0; i < 3; i++) {
    clock.advance(10_000);
    await query.processAllAvailable();
  }
  const rows = [...session.table('first'), ...session.table('second')].map((r) => JSON.stringify(r));
  await session.stop();
  return rows;
}

describe('state store providers: every stateful operator gives the same output on memory and disk', function () {
  this.timeout(120_000);
  let root: string;
  beforeEach(() => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-providers-'));
  });
  afterEach(() => fs.rmSync(root, { recursive: true, force: true }));

  for (const q of QUERIES) {
    it(`${q.name}: same rows in the same order, across a restart`, async () => {
      const memory = await run(q.build, q.mode, 'memory', path.join(root, 'memory'), 0);
      const disk = await run(q.build, q.mode, 'disk', path.join(root, 'disk'), 0);
      expect(memory.length).to.be.greaterThan(10);
      expect(disk).to.deep.equal(memory);
    });
  }

  it('mapGroupsWithState timeouts set at a watermark that stands still, behind the keys the last batch closed', async () => {
    /** A user's event at `s` seconds; its key's timeout is `hold` seconds later, or the watermark with `hold` -1. */
    type Tick = { user: string; ts: Date; hold: number };
    const at = (s: number) => new Date(T0 + s * 1000);
    const tick = (user: string, s: number, hold = 5): Tick => ({ user, ts: at(s), hold });
    const users = (prefix: string, n: number, s: number, hold = 5) =>
      Array.from({ length: n }, (_, i) => tick(`${prefix}${i}`, s, hold));
    // The watermark (10 s behind the latest event) stands at 90 s from batch 3 on: batch 3 closes every key due by
    // it, and in batch 4 new keys set their timeouts to that same watermark, which sorts them before the closed ones.
    // The z keys stay open throughout, more than the keys closed, so that their records stay behind the tombstone.
    const batches: Tick[][] = [
      [...users('a', 8, 60), ...users('z', 40, 60, 1000)],
      users('b', 8, 61),
      [tick('c', 100)],
      [tick('d', 95)],
      users('e', 6, 96, -1),
      [tick('f', 130)],
      [tick('g', 200)],
    ];
    const runTicks = async (stateStore: string, dir: string) => {
      const session = Session.local({ clock: new ManualClock(T0), statePartitions: 2 });
      const input = new MemoryStream<Tick>(session, { user: 'string', ts: 'timestamp', hold: 'double' });
      const ds = input
        .toDS()
        .withWatermark('ts', '10 seconds')
        .groupByKey((t) => t.user)
        .flatMapGroupsWithState(
          (user: string, rows: Tick[], state: GroupState<{ n: number }>) => {
            if (state.hasTimedOut) {
              const n = state.get().n;
              state.remove();
              return [{ user, n, closedAt: state.getCurrentWatermarkMs() - T0 }];
            }
            state.update({ n: (state.getOption()?.n ?? 0) + rows.length });
            const last = Math.max(...rows.map((r) => r.ts.getTime()));
            state.setTimeoutTimestamp(rows[0].hold < 0 ? state.getCurrentWatermarkMs() : last + rows[0].hold * 1000);
            return [];
          },
          { outputMode: 'append', timeout: 'EventTimeTimeout' },
        );
      const start = (name: string) =>
        ds.writeStream
          .format('memory')
          .queryName(name)
          .outputMode('append')
          .option('checkpointLocation', path.join(dir, 'ckpt'))
          .option('stateStore', stateStore)
          .option('stateLocalDir', path.join(dir, 'local'))
          .start();
      let query = await start('first');
      for (const [i, ticks] of batches.entries()) {
        // A restart after the timeouts at the watermark: the disk store writes its database as it stops.
        if (i === 5) {
          await query.stop();
          query = await start('second');
        }
        input.addData(ticks);
        await query.processAllAvailable();
      }
      const rows = [...session.table('first'), ...session.table('second')].map((r) => JSON.stringify(r));
      await session.stop();
      return rows;
    };
    const memory = await runTicks('memory', path.join(root, 'memory'));
    const disk = await runTicks('disk', path.join(root, 'disk'));
    // Every key but the z keys closes once: the e keys by their timeouts at the standing watermark.
    expect(memory).to.have.length(8 + 8 + 1 + 1 + 6 + 1);
    expect(memory.some((r) => r.includes('"user":"z'))).to.equal(false);
    expect(memory.filter((r) => r.includes('"user":"e')).map((r) => JSON.parse(r).closedAt)).to.deep.equal(
      Array(6).fill(90_000),
    );
    expect(disk).to.deep.equal(memory);
  });

  it('in worker threads too (tumbling and session windows, threads 2)', async () => {
    for (const q of [QUERIES[1], QUERIES[2]]) {
      const memory = await run(q.build, q.mode, 'memory', path.join(root, `${q.name}-memory`), 0);
      const disk = await run(q.build, q.mode, 'disk', path.join(root, `${q.name}-disk`), 2);
      expect(disk, q.name).to.deep.equal(memory);
    }
  });

  it('switching provider on an existing checkpoint carries the state over (both write the same files)', async () => {
    const q = QUERIES[3];
    const reference = await run(q.build, q.mode, 'memory', path.join(root, 'ref'), 0);
    // The same run, but every restart switches provider: memory, then disk.
    const clock = new ManualClock(T0);
    const session = Session.local({ clock, statePartitions: 3 });
    const a = new MemoryStream<Ev>(session, SCHEMA);
    const b = new MemoryStream<Ev>(session, SCHEMA);
    const ds = q.build(a.toDS(), b.toDS());
    const start = (name: string, stateStore: string) =>
      ds.writeStream
        .format('memory')
        .queryName(name)
        .outputMode(q.mode)
        .option('checkpointLocation', path.join(root, 'switch'))
        .option('stateStore', stateStore)
        .option('stateLocalDir', path.join(root, 'switch-local'))
        .start();
    let query = await start('first', 'memory');
    for (let i = 0; i < BATCHES; i++) {
      if (i === RESTART_AFTER) {
        await query.stop();
        query = await start('second', 'disk');
      }
      a.addData(batch(i, 0));
      b.addData(batch(i, 1));
      await query.processAllAvailable();
      clock.advance(10_000);
    }
    for (let i = 0; i < 3; i++) {
      clock.advance(10_000);
      await query.processAllAvailable();
    }
    const rows = [...session.table('first'), ...session.table('second')].map((r) => JSON.stringify(r));
    await session.stop();
    expect(rows).to.deep.equal(reference);
  });

  it("sluice checkpoint --state reads the disk store's checkpoint as the memory store's", async () => {
    const q = QUERIES[4];
    const shown: string[] = [];
    for (const stateStore of ['memory', 'disk']) {
      await run(q.build, q.mode, stateStore, path.join(root, stateStore), 0);
      const [query] = await inspectCheckpoint(path.join(root, stateStore, 'ckpt'));
      shown.push(describeState(await readStateRows(query, findOperator(query, 'transformWithState'))).join('\n'));
    }
    expect(shown[0]).to.match(/total/);
    expect(shown[1]).to.equal(shown[0]);
  });

  it('refuses an unknown provider in one line', async () => {
    const session = Session.local();
    const a = new MemoryStream<Ev>(session, SCHEMA);
    let err: Error | undefined;
    try {
      await a
        .toDS()
        .groupBy('user')
        .agg(count('*'))
        .writeStream.format('memory')
        .queryName('x')
        .outputMode('update')
        .option('stateStore', 'rocksdb')
        .start();
    } catch (e) {
      err = e as Error;
    }
    await session.stop();
    expect(err?.message).to.equal('stateStore must be memory or disk, got "rocksdb"');
  });
});
