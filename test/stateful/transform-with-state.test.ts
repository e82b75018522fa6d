import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { expect } from 'chai';
import { Session } from '../../lib/api/session.js';
import {
  type ExpiredTimerInfo,
  type ListState,
  type MapState,
  StatefulProcessor,
  StatefulProcessorWithInitialState,
  type StateTypeSpec,
  type TimeMode,
  type TimerValues,
  type ValueState,
} from '../../lib/api/stateful-processor.js';
import type { StreamingQuery } from '../../lib/api/streaming-query.js';
import { describeState } from '../../lib/cli/checkpoint-command.js';
import { findOperator, inspectCheckpoint, readStateRows } from '../../lib/cli/checkpoint-inspector.js';
import { StateStore } from '../../lib/state/state-store.js';
import { ManualClock, MemoryStream } from '../../lib/testing/index.js';

type Ev = { user: string; amount: number };
const EV_SCHEMA = { user: 'string', amount: 'double' } as const;
type Out = { user: string; what: string; n: number };

/**
 * Keeps a running sum (ValueState), the amounts (ListState) and a count per amount (MapState) per user;
 * registers a timer `timerMs` after each batch that has rows and reports each timer that fires.
 */
class Tally extends StatefulProcessor<string, Ev, Out> {
  sum!: ValueState<number>;
  amounts!: ListState<number>;
  counts!: MapState<number, number>;
  readonly log: string[] = [];

  constructor(
    private readonly timerMs: number,
    private readonly ttl?: string,
  ) {
    super();
  }

  init(_outputMode: 'append' | 'update', timeMode: TimeMode): void {
    const h = this.getHandle();
    const ttl = this.ttl === undefined ? undefined : { ttlDuration: this.ttl };
    this.sum = h.getValueState<number>('sum', { schema: 'double', ttl });
    this.amounts = h.getListState<number>('amounts');
    this.counts = h.getMapState<number, number>('counts');
    this.log.push(`init ${timeMode}`);
  }

  *handleInputRows(user: string, rows: Ev[], tv: TimerValues): Iterable<Out> {
    const sum = (this.sum.get() ?? 0) + rows.reduce((a, r) => a + r.amount, 0);
    this.sum.update(sum);
    this.amounts.appendList(rows.map((r) => r.amount));
    for (const r of rows) this.counts.updateValue(r.amount, (this.counts.getValue(r.amount) ?? 0) + 1);
    if (this.timerMs > 0) this.getHandle().registerTimer(tv.getCurrentProcessingTimeInMs() + this.timerMs);
    yield { user, what: 'sum', n: sum };
  }

  override *handleExpiredTimer(user: string, tv: TimerValues, info: ExpiredTimerInfo): Iterable<Out> {
    this.log.push(`${user} timer ${info.getExpiryTimeInMs()} at ${tv.getCurrentProcessingTimeInMs()}`);
    yield {
      user,
      what: `timer, ${this.amounts.get().length} amounts, ${this.counts.keys().length} distinct`,
      n: info.getExpiryTimeInMs(),
    };
  }
}

describe('transformWithState', () => {
  let dirs: string[] = [];
  const tmp = (): string => {
    const d = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-'));
    dirs.push(d);
    return d;
  };
  let queries: StreamingQuery[] = [];
  const track = (q: StreamingQuery): StreamingQuery => {
    queries.push(q);
    return q;
  };
  afterEach(async () => {
    for (const q of queries) await q.stop();
    queries = [];
    for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
    dirs = [];
  });

  const failure = (q: StreamingQuery): Promise<string | null> =>
    q.awaitTermination().then(
      () => null,
      (e: Error) => e.message,
    );

  it('keeps value, list and map state per key and fires several processing-time timers per key in no-data batches', async () => {
    const clock = new ManualClock(1_000_000);
    const session = Session.local({ clock, statePartitions: 1 });
    const input = new MemoryStream<Ev>(session, EV_SCHEMA);
    const tally = new Tally(10_000);
    const q = track(
      await input
        .toDS()
        .groupByKey((e) => e.user)
        .transformWithState(tally, 'ProcessingTime', 'update')
        .writeStream.format('memory')
        .queryName('tally')
        .outputMode('update')
        .start(),
    );
    input.addData([
      { user: 'a', amount: 1 },
      { user: 'b', amount: 2 },
      { user: 'a', amount: 1 },
    ]);
    await q.processAllAvailable();
    clock.advance(4_000);
    input.addData([{ user: 'a', amount: 5 }]);
    await q.processAllAvailable();
    expect(session.table('tally')).to.deep.equal([
      { user: 'a', what: 'sum', n: 2 },
      { user: 'b', what: 'sum', n: 2 },
      { user: 'a', what: 'sum', n: 7 },
    ]);
    // a has timers at 1_010_000 and 1_014_000, b at 1_010_000: the first two fire with no new data, by time then key.
    clock.advance(6_000);
    await q.processAllAvailable();
    expect(session.table('tally').slice(3)).to.deep.equal([
      { user: 'a', what: 'timer, 3 amounts, 2 distinct', n: 1_010_000 },
      { user: 'b', what: 'timer, 1 amounts, 1 distinct', n: 1_010_000 },
    ]);
    expect(q.lastProgress!.numInputRows).to.equal(0);
    expect(q.lastProgress!.stateOperators[0].numKeysTimedOut).to.equal(2);
    clock.advance(4_000);
    await q.processAllAvailable();
    expect(session.table('tally').slice(5)).to.deep.equal([
      { user: 'a', what: 'timer, 3 amounts, 2 distinct', n: 1_014_000 },
    ]);
    const batches = q.recentProgress.length;
    clock.advance(60_000);
    await q.processAllAvailable();
    expect(q.recentProgress.length, 'no batch without data or due timers').to.equal(batches);
    expect(tally.log.filter((l) => l.startsWith('init'))).to.include('init ProcessingTime');
  });

  it('lists and deletes timers, refuses them in timeMode None, and reports processor mistakes in one line', async () => {
    const clock = new ManualClock(0);
    const session = Session.local({ clock, statePartitions: 1 });
    const input = new MemoryStream<Ev>(session, EV_SCHEMA);
    class Timers extends StatefulProcessor<string, Ev, Out> {
      init(): void {}
      handleInputRows(user: string, rows: Ev[]): Out[] {
        const h = this.getHandle();
        for (const r of rows) h.registerTimer(r.amount * 1000);
        h.deleteTimer(2000);
        return [{ user, what: h.listTimers().join(','), n: h.listTimers().length }];
      }
    }
    const q = track(
      await input
        .toDS()
        .groupByKey((e) => e.user)
        .transformWithState(new Timers(), 'ProcessingTime', 'append')
        .writeStream.format('memory')
        .queryName('timers')
        .start(),
    );
    input.addData([
      { user: 'a', amount: 3 },
      { user: 'a', amount: 2 },
      { user: 'a', amount: 9 },
      { user: 'a', amount: 3 },
    ]);
    await q.processAllAvailable();
    expect(session.table('timers')).to.deep.equal([{ user: 'a', what: '3000,9000', n: 2 }]);

    const none = track(
      await input
        .toDS()
        .groupByKey((e) => e.user)
        .transformWithState(new Timers(), 'None', 'append')
        .writeStream.format('memory')
        .queryName('none')
        .start(),
    );
    expect(await failure(none)).to.match(
      /transformWithState#\d+ failed in batch 0: registerTimer: the transformWithState runs with timeMode 'None', which has no timers/,
    );
    class Late extends StatefulProcessor<string, Ev, Out> {
      init(): void {}
      handleInputRows(): Out[] {
        this.getHandle().getValueState('late');
        return [];
      }
    }
    const late = track(
      await input
        .toDS()
        .groupByKey((e) => e.user)
        .transformWithState(new Late(), 'None', 'append')
        .writeStream.format('memory')
        .queryName('late')
        .start(),
    );
    expect(await failure(late)).to.match(/getValueState\('late'\) outside init/);
    expect(() =>
      input
        .toDS()
        .groupByKey((e) => e.user)
        .transformWithState(new Timers(), 'Sometimes' as TimeMode, 'append'),
    ).to.throw(/unknown timeMode "Sometimes"/);
  });

  it('fires event-time timers as the watermark passes them and drops late rows', async () => {
    const session = Session.local({ statePartitions: 1 });
    const input = new MemoryStream<{ user: string; ts: Date }>(session, { user: 'string', ts: 'timestamp' });
    class Gap extends StatefulProcessor<string, { user: string; ts: Date }, { user: string; end: number }> {
      last!: ValueState<number>;
      init(): void {
        this.last = this.getHandle().getValueState<number>('last');
      }
      handleInputRows(_user: string, rows: { ts: Date }[]): { user: string; end: number }[] {
        const h = this.getHandle();
        const before = this.last.get();
        if (before !== undefined) h.deleteTimer(before + 5000);
        const last = Math.max(before ?? 0, ...rows.map((r) => r.ts.getTime()));
        this.last.update(last);
        h.registerTimer(last + 5000);
        return [];
      }
      override handleExpiredTimer(
        user: string,
        tv: TimerValues,
        info: ExpiredTimerInfo,
      ): { user: string; end: number }[] {
        this.last.clear();
        return [{ user, end: info.getExpiryTimeInMs() / 1000 + tv.getCurrentWatermarkInMs() / 1e6 }];
      }
    }
    const q = track(
      await input
        .toDS()
        .withWatermark('ts', '10 seconds')
        .groupByKey((e) => e.user)
        .transformWithState(new Gap(), 'EventTime', 'append')
        .writeStream.format('memory')
        .queryName('gaps')
        .start(),
    );
    const t = (s: number): Date => new Date(s * 1000);
    input.addData([
      { user: 'a', ts: t(105) },
      { user: 'b', ts: t(120) },
      { user: 'c', ts: t(100) },
    ]);
    await q.processAllAvailable();
    // Watermark 110 s: c's timer (105) then a's (110) fire in the no-data batch; b's (125) waits.
    expect(session.table('gaps')).to.deep.equal([
      { user: 'c', end: 105.11 },
      { user: 'a', end: 110.11 },
    ]);
    input.addData([
      { user: 'a', ts: t(100) },
      { user: 'b', ts: t(140) },
    ]);
    await q.processAllAvailable();
    expect(q.recentProgress.some((p) => p.stateOperators[0].numRowsDroppedByWatermark === 1)).to.equal(true);
    expect(session.table('gaps').slice(2)).to.deep.equal([]);
    const err = await input
      .toDS()
      .groupByKey((e) => e.user)
      .transformWithState(new Gap(), 'EventTime', 'append')
      .writeStream.format('memory')
      .queryName('nowm')
      .start()
      .then(
        () => null,
        (e: Error) => e.message,
      );
    expect(err).to.match(/timeMode 'EventTime' needs a watermark/);
  });

  it('expires state by its TTL in processing time, in a batch without new data too', async () => {
    const clock = new ManualClock(0);
    const session = Session.local({ clock, statePartitions: 1 });
    const input = new MemoryStream<Ev>(session, EV_SCHEMA);
    const q = track(
      await input
        .toDS()
        .groupByKey((e) => e.user)
        .transformWithState(new Tally(0, '1 minute'), 'None', 'update')
        .writeStream.format('memory')
        .queryName('ttl')
        .outputMode('update')
        .start(),
    );
    input.addData([
      { user: 'a', amount: 1 },
      { user: 'b', amount: 1 },
    ]);
    await q.processAllAvailable();
    clock.advance(40_000);
    input.addData([{ user: 'a', amount: 1 }]);
    await q.processAllAvailable();
    expect(q.lastProgress!.stateOperators[0].numRowsTotal).to.equal(2); // a row per key: a and b
    clock.advance(30_000); // b's sum (written at 0) expires at 60 s; a's (40 s) at 100 s
    await q.processAllAvailable();
    expect(q.lastProgress!.numInputRows).to.equal(0);
    // The batch without data rewrote b's row without its sum; b keeps its list and map.
    expect(q.lastProgress!.stateOperators[0].numRowsUpdated).to.equal(1);
    expect(q.lastProgress!.stateOperators[0].numRowsTotal).to.equal(2);
    input.addData([
      { user: 'a', amount: 1 },
      { user: 'b', amount: 1 },
    ]);
    await q.processAllAvailable();
    expect(session.table('ttl').slice(-2)).to.deep.equal([
      { user: 'a', what: 'sum', n: 3 },
      { user: 'b', what: 'sum', n: 1 },
    ]);
  });

  it('hands the initial state to handleInitialState in the first batch only, and keeps state and timers across a restart', async () => {
    const ckpt = tmp();
    const clock = new ManualClock(0);
    const session = Session.local({ clock, statePartitions: 3 });
    const input = new MemoryStream<Ev>(session, EV_SCHEMA);
    class Seeded extends StatefulProcessorWithInitialState<string, Ev, Out, number> {
      sum!: ValueState<number>;
      init(): void {
        this.sum = this.getHandle().getValueState<number>('sum');
      }
      handleInitialState(_user: string, initial: number, tv: TimerValues): void {
        this.sum.update(initial);
        this.getHandle().registerTimer(tv.getCurrentProcessingTimeInMs() + 60_000);
      }
      handleInputRows(user: string, rows: Ev[]): Out[] {
        const n = (this.sum.get() ?? 0) + rows.reduce((a, r) => a + r.amount, 0);
        this.sum.update(n);
        return [{ user, what: 'sum', n }];
      }
      override handleExpiredTimer(user: string): Out[] {
        return [{ user, what: 'expired', n: this.sum.get() ?? -1 }];
      }
    }
    const ds = input
      .toDS()
      .groupByKey((e) => e.user)
      .transformWithState(new Seeded(), 'ProcessingTime', 'update', {
        initialState: new Map([
          ['a', 100],
          ['z', 50],
        ]),
      });
    const start = (name: string) =>
      ds.writeStream.format('memory').queryName(name).outputMode('update').option('checkpointLocation', ckpt).start();
    const q1 = track(await start('s1'));
    input.addData([{ user: 'a', amount: 1 }]);
    await q1.processAllAvailable();
    await q1.stop();
    expect(session.table('s1')).to.deep.equal([{ user: 'a', what: 'sum', n: 101 }]);
    input.addData([{ user: 'a', amount: 1 }]);
    const q2 = track(await start('s2'));
    await q2.processAllAvailable();
    clock.advance(60_000);
    await q2.processAllAvailable();
    expect(session.table('s2')).to.deep.equal([
      { user: 'a', what: 'sum', n: 102 },
      { user: 'a', what: 'expired', n: 102 },
      { user: 'z', what: 'expired', n: 50 },
    ]);
    class NoInitial extends StatefulProcessor<string, Ev, Out> {
      init(): void {}
      handleInputRows(): Out[] {
        return [];
      }
    }
    const wrong = track(
      await input
        .toDS()
        .groupByKey((e) => e.user)
        .transformWithState(new NoInitial(), 'None', 'update', { initialState: [['a', 1]] })
        .writeStream.format('memory')
        .queryName('wrong')
        .outputMode('update')
        .start(),
    );
    input.addData([{ user: 'a', amount: 1 }]);
    expect(await failure(wrong)).to.match(/its processor has no handleInitialState/);
  });

  it('shows its state per variable and key, TTL expiries and timers, in sluice checkpoint --state', async () => {
    const ckpt = tmp();
    const clock = new ManualClock(0);
    const session = Session.local({ clock, statePartitions: 2 });
    const input = new MemoryStream<Ev>(session, EV_SCHEMA);
    const q = track(
      await input
        .toDS()
        .groupByKey((e) => e.user)
        .transformWithState(new Tally(30_000, '1 minute'), 'ProcessingTime', 'update')
        .writeStream.format('memory')
        .queryName('shown')
        .outputMode('update')
        .option('checkpointLocation', ckpt)
        .start(),
    );
    input.addData([
      { user: 'a', amount: 2 },
      { user: 'b', amount: 1 },
      { user: 'a', amount: 3 },
    ]);
    await q.processAllAvailable();
    await q.stop();
    const [query] = await inspectCheckpoint(ckpt);
    const contents = await readStateRows(query, findOperator(query, 'transformWithState'));
    expect(contents.variables).to.deep.equal({
      sum: { kind: 'value', schema: 'double', ttlMs: 60_000 },
      amounts: { kind: 'list' },
      counts: { kind: 'map' },
    });
    expect(contents.rows.map((r) => [r.key, r.variable, r.value, r.timeoutMs])).to.deep.equal([
      ['a', 'amounts', [2, 3], null],
      [
        'a',
        'counts',
        new Map([
          [2, 1],
          [3, 1],
        ]),
        null,
      ],
      ['a', 'sum', 5, 60_000],
      ['a', '(timers)', [new Date(30_000)], null],
      ['b', 'amounts', [1], null],
      ['b', 'counts', new Map([[1, 1]]), null],
      ['b', 'sum', 1, 60_000],
      ['b', '(timers)', [new Date(30_000)], null],
    ]);
    expect(query.stateOperators[0].numRows).to.equal(2); // a row per key
    const text = describeState(
      await readStateRows(query, findOperator(query, 'transformWithState'), { key: 'b' }),
    ).join('\n');
    expect(text).to.contain(
      'variables: sum (ValueState double, TTL 60 s), amounts (ListState), counts (MapState); timers are listed per key as (timers)',
    );
    expect(text.split('\n').slice(2)).to.deep.equal([
      'partition  key  variable  value                         expires',
      '        0  b    amounts   [1]',
      '        0  b    counts    [[1,1]]',
      '        0  b    sum       1                             1970-01-01T00:01:00.000Z',
      '        0  b    (timers)  ["1970-01-01T00:00:30.000Z"]',
    ]);
  });

  it('continues a checkpoint whose state was kept as a row per variable and key, as earlier versions kept it', async () => {
    const ckpt = tmp();
    const clock = new ManualClock(0);
    const session = Session.local({ clock, statePartitions: 1 });
    const input = new MemoryStream<Ev>(session, EV_SCHEMA);
    // One plan for both runs, so that the operator keeps its id and state directory.
    const ds = input
      .toDS()
      .groupByKey((e) => e.user)
      .transformWithState(new Tally(30_000, '1 minute'), 'ProcessingTime', 'update');
    const start = (name: string) =>
      ds.writeStream.format('memory').queryName(name).outputMode('update').option('checkpointLocation', ckpt).start();
    let q = track(await start('before'));
    input.addData([
      { user: 'a', amount: 2 },
      { user: 'b', amount: 1 },
      { user: 'a', amount: 3 },
    ]);
    await q.processAllAvailable();
    await q.stop();
    // Rewrite the committed state as the earlier layout wrote the same batch: a row per variable and key
    // ('variable NUL key' for string keys), timers under '\u0000timers', declarations in their own row.
    let [query] = await inspectCheckpoint(ckpt);
    const operator = findOperator(query, 'transformWithState');
    const dir = path.join(ckpt, 'state', operator.id, '0');
    fs.rmSync(dir, { recursive: true });
    const legacy = await StateStore.load(dir, 0);
    legacy.put(['\u0000sluice:state-variables'], {
      sum: { kind: 'value', schema: 'double', ttlMs: 60_000 },
      amounts: { kind: 'list' },
      counts: { kind: 'map' },
    });
    for (const [user, amounts] of [
      ['a', [2, 3]],
      ['b', [1]],
    ] as const) {
      legacy.put(`sum\u0000${user}`, amounts[0] + (amounts[1] ?? 0), 60_000);
      legacy.put(`amounts\u0000${user}`, [...amounts]);
      legacy.put(`counts\u0000${user}`, new Map(amounts.map((n) => [n, 1])));
      legacy.put(`\u0000timers\u0000${user}`, [30_000], 30_000);
    }
    await legacy.commit(operator.version);

    const shown = async () =>
      (await readStateRows(query, findOperator(query, 'transformWithState'), { key: 'a' })).rows.map((r) => [
        r.variable,
        r.value,
        r.timeoutMs,
      ]);
    const rowsOfA = [
      ['amounts', [2, 3], null],
      [
        'counts',
        new Map([
          [2, 1],
          [3, 1],
        ]),
        null,
      ],
      ['sum', 5, 60_000],
      ['(timers)', [new Date(30_000)], null],
    ];
    expect(await shown()).to.deep.equal(rowsOfA);

    clock.advance(30_000);
    q = track(await start('after'));
    input.addData([{ user: 'a', amount: 4 }]);
    await q.processAllAvailable();
    await q.stop();
    expect(session.table('after')).to.deep.equal([
      { user: 'a', what: 'sum', n: 9 },
      { user: 'a', what: 'timer, 3 amounts, 3 distinct', n: 30_000 },
      { user: 'b', what: 'timer, 1 amounts, 1 distinct', n: 30_000 },
    ]);
    [query] = await inspectCheckpoint(ckpt);
    expect(query.stateOperators[0].numRows).to.equal(2);
    expect(await shown()).to.deep.equal([
      ['amounts', [2, 3, 4], null],
      [
        'counts',
        new Map([
          [2, 1],
          [3, 1],
          [4, 1],
        ]),
        null,
      ],
      ['sum', 9, 90_000],
      ['(timers)', [new Date(60_000)], null],
    ]);
  });

  it('drops a variable of every key with deleteIfExists in a later version of the processor', async () => {
    const ckpt = tmp();
    const clock = new ManualClock(0);
    const session = Session.local({ clock, statePartitions: 2 });
    const input = new MemoryStream<Ev>(session, EV_SCHEMA);
    /** Tally that, once `withoutCounts`, no longer has its map and deletes what earlier runs stored in it. */
    class Versioned extends Tally {
      withoutCounts = false;
      override init(outputMode: 'append' | 'update', timeMode: TimeMode): void {
        if (!this.withoutCounts) {
          super.init(outputMode, timeMode);
          return;
        }
        const h = this.getHandle();
        this.sum = h.getValueState<number>('sum', { schema: 'double' });
        this.amounts = h.getListState<number>('amounts');
        h.deleteIfExists('counts');
      }
      override *handleInputRows(user: string, rows: Ev[], tv: TimerValues): Iterable<Out> {
        if (!this.withoutCounts) return yield* super.handleInputRows(user, rows, tv);
        const sum = (this.sum.get() ?? 0) + rows.reduce((a, r) => a + r.amount, 0);
        this.sum.update(sum);
        this.amounts.appendList(rows.map((r) => r.amount));
        yield { user, what: 'sum', n: sum };
      }
    }
    const processor = new Versioned(0);
    const ds = input
      .toDS()
      .groupByKey((e) => e.user)
      .transformWithState(processor, 'None', 'update');
    const start = (name: string) =>
      ds.writeStream.format('memory').queryName(name).outputMode('update').option('checkpointLocation', ckpt).start();
    let q = track(await start('v1'));
    input.addData([
      { user: 'a', amount: 2 },
      { user: 'b', amount: 1 },
    ]);
    await q.processAllAvailable();
    await q.stop();
    processor.withoutCounts = true;
    q = track(await start('v2'));
    input.addData([{ user: 'a', amount: 5 }]);
    await q.processAllAvailable();
    await q.stop();
    expect(session.table('v2')).to.deep.equal([{ user: 'a', what: 'sum', n: 7 }]);
    const [query] = await inspectCheckpoint(ckpt);
    const contents = await readStateRows(query, findOperator(query, 'transformWithState'));
    expect(contents.variables).to.deep.equal({ sum: { kind: 'value', schema: 'double' }, amounts: { kind: 'list' } });
    expect(contents.rows.map((r) => [r.key, r.variable, r.value])).to.deep.equal([
      ['a', 'amounts', [2, 5]],
      ['a', 'sum', 7],
      ['b', 'amounts', [1]],
      ['b', 'sum', 1],
    ]);
  });

  it('keys state and timers by number and composite grouping keys as by strings', async () => {
    const ckpt = tmp();
    const clock = new ManualClock(0);
    const session = Session.local({ clock, statePartitions: 1 });
    const input = new MemoryStream<Ev>(session, EV_SCHEMA);
    class ByKey extends StatefulProcessor<unknown, Ev, Out> {
      count!: ValueState<number>;
      init(): void {
        this.count = this.getHandle().getValueState<number>('count');
      }
      handleInputRows(key: unknown, rows: Ev[], tv: TimerValues): Out[] {
        const n = (this.count.get() ?? 0) + rows.length;
        this.count.update(n);
        this.getHandle().registerTimer(tv.getCurrentProcessingTimeInMs() + 1000);
        return [{ user: JSON.stringify(key), what: 'count', n }];
      }
      override handleExpiredTimer(key: unknown): Out[] {
        return [{ user: JSON.stringify(key), what: 'timer', n: this.count.get() ?? -1 }];
      }
    }
    const start = async (name: string, keyOf: (e: Ev) => unknown) =>
      track(
        await input
          .toDS()
          .groupByKey(keyOf)
          .transformWithState(new ByKey(), 'ProcessingTime', 'update')
          .writeStream.format('memory')
          .queryName(name)
          .outputMode('update')
          .option('checkpointLocation', path.join(ckpt, name))
          .start(),
      );
    const byNumber = await start('num', (e) => e.amount);
    const byPair = await start('pair', (e) => [e.user, e.amount]);
    input.addData([
      { user: 'a', amount: 1 },
      { user: 'a', amount: 2 },
      { user: 'b', amount: 1 },
    ]);
    await byNumber.processAllAvailable();
    await byPair.processAllAvailable();
    clock.advance(1000);
    await byNumber.processAllAvailable();
    await byPair.processAllAvailable();
    expect(session.table('num')).to.deep.equal([
      { user: '1', what: 'count', n: 2 },
      { user: '2', what: 'count', n: 1 },
      { user: '1', what: 'timer', n: 2 },
      { user: '2', what: 'timer', n: 1 },
    ]);
    expect(session.table('pair').map((r) => `${r.user} ${r.what} ${r.n}`)).to.deep.equal([
      '["a",1] count 1',
      '["a",2] count 1',
      '["b",1] count 1',
      '["a",1] timer 1',
      '["a",2] timer 1',
      '["b",1] timer 1',
    ]);
    await byPair.stop();
    const [query] = await inspectCheckpoint(path.join(ckpt, 'pair'));
    const rows = (await readStateRows(query, findOperator(query, 'transformWithState'), { key: '["a",2]' })).rows;
    expect(rows.map((r) => [r.key, r.variable, r.value])).to.deep.equal([[['a', 2], 'count', 1]]);
  });

  describe('state schema changes on restart', () => {
    /** Stores `value` in a value state declared with `schema`, and reports what the state held before. */
    class Typed extends StatefulProcessor<string, Ev, { user: string; before: string }> {
      v!: ValueState<Record<string, unknown>>;
      constructor(
        public schema: StateTypeSpec,
        public value: (r: Ev) => Record<string, unknown>,
      ) {
        super();
      }
      init(): void {
        this.v = this.getHandle().getValueState('account', { schema: this.schema });
      }
      handleInputRows(user: string, rows: Ev[]): { user: string; before: string }[] {
        const before = JSON.stringify(this.v.get() ?? null);
        this.v.update(this.value(rows[rows.length - 1]));
        return [{ user, before }];
      }
    }

    /**
     * A query of `processor` on `ckpt`: each `run(schema, value, rows)` declares the state as `schema`, adds the rows
     * and runs them, returning the output as JSON or why the query failed. (One plan for every run, so the
     * operator keeps its id and state directory.)
     */
    function typedQuery(ckpt: string) {
      const session = Session.local({ statePartitions: 2 });
      const input = new MemoryStream<Ev>(session, EV_SCHEMA);
      const processor = new Typed('double', () => ({}));
      const ds = input
        .toDS()
        .groupByKey((e) => e.user)
        .transformWithState(processor, 'None', 'update');
      let runs = 0;
      return async (
        schema: StateTypeSpec,
        value: (r: Ev) => Record<string, unknown>,
        rows: Ev[],
      ): Promise<string | null> => {
        processor.schema = schema;
        processor.value = value;
        input.addData(rows);
        const name = `typed${runs++}`;
        const q = track(
          await ds.writeStream
            .format('memory')
            .queryName(name)
            .outputMode('update')
            .option('checkpointLocation', ckpt)
            .start(),
        );
        const failed = q.awaitTermination().then(
          () => null,
          (e: Error) => e.message,
        );
        const done = await q.processAllAvailable().then(
          () => 'ok',
          () => 'failed',
        );
        if (done === 'failed') return failed;
        await q.stop();
        return JSON.stringify(session.table(name));
      };
    }

    it('allows adding an optional field, and refuses a changed type or a new required field naming the operator and field', async () => {
      const run = typedQuery(tmp());
      expect(await run({ balance: 'double' }, (r) => ({ balance: r.amount }), [{ user: 'a', amount: 5 }])).to.equal(
        '[{"user":"a","before":"null"}]',
      );
      const v2: StateTypeSpec = { balance: 'double', 'note?': 'string' };
      expect(await run(v2, (r) => ({ balance: r.amount, note: 'v2' }), [{ user: 'a', amount: 6 }])).to.equal(
        '[{"user":"a","before":"{\\"balance\\":5}"}]',
      );
      expect(
        await run({ balance: 'string', 'note?': 'string' }, (r) => ({ balance: String(r.amount) }), [
          { user: 'a', amount: 7 },
        ]),
      ).to.match(
        /^transformWithState#\d+: state variable 'account' \(ValueState\): field 'balance' was stored as double and is now declared string$/,
      );
      expect(
        await run(
          { balance: 'double', 'note?': 'string', owner: 'string' },
          (r) => ({ balance: r.amount, owner: 'x' }),
          [],
        ),
      ).to.match(/field 'owner' is new and required, but the stored values do not have it$/);
      expect(await run({ 'note?': 'string' }, () => ({}), [])).to.match(
        /field 'balance' was removed, but the stored values have it$/,
      );
      // The refused runs committed nothing: the compatible declaration still reads the state.
      expect(await run(v2, (r) => ({ balance: r.amount }), [])).to.equal(
        '[{"user":"a","before":"{\\"balance\\":6,\\"note\\":\\"v2\\"}"}]',
      );
    });

    it('refuses a write that does not fit the declared type, naming the field', async () => {
      const run = typedQuery(tmp());
      expect(
        await run({ balance: 'double' }, (r) => ({ balance: `${r.amount}` }), [{ user: 'a', amount: 1 }]),
      ).to.match(/ValueState 'account'.update\(\): the string "1" at 'balance' is not a double/);
    });
  });
});
