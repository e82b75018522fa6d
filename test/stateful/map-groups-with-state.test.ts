import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { expect } from 'chai';
import type { GroupState } from '../../lib/api/group-state.js';
import { Session } from '../../lib/api/session.js';
import type { StreamingQuery } from '../../lib/api/streaming-query.js';
import { ManualClock, MemoryStream } from '../../lib/testing/index.js';

type Ev = { user: string; amount: number };
const EV_SCHEMA = { user: 'string', amount: 'double' } as const;

/** What a test function saw in one call. */
type Call = { key: string; values: number[]; timedOut: boolean; existed: boolean };

describe('mapGroupsWithState / flatMapGroupsWithState', () => {
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

  /** A running sum per user that records every call. */
  function runningSum(calls: Call[], onCall?: (key: string, state: GroupState<{ sum: number }>) => void) {
    return (key: string, values: Ev[], state: GroupState<{ sum: number }>) => {
      calls.push({ key, values: values.map((v) => v.amount), timedOut: state.hasTimedOut, existed: state.exists });
      const sum = (state.getOption()?.sum ?? 0) + values.reduce((a, v) => a + v.amount, 0);
      state.update({ sum });
      onCall?.(key, state);
      return { user: key, sum, timedOut: state.hasTimedOut };
    };
  }

  it('calls the function once per key, keys in order of first appearance, rows in source order', async () => {
    const session = Session.local({ statePartitions: 1 });
    const input = new MemoryStream<Ev>(session, EV_SCHEMA);
    const calls: Call[] = [];
    const q = track(
      await input
        .toDS()
        .groupByKey((e) => e.user)
        .mapGroupsWithState(runningSum(calls), { schema: { user: 'string', sum: 'double', timedOut: 'boolean' } })
        .writeStream.format('memory')
        .queryName('sums')
        .outputMode('update')
        .start(),
    );
    input.addData([
      { user: 'b', amount: 1 },
      { user: 'a', amount: 2 },
      { user: 'b', amount: 3 },
      { user: 'c', amount: 4 },
      { user: 'a', amount: 5 },
    ]);
    await q.processAllAvailable();
    expect(calls).to.deep.equal([
      { key: 'b', values: [1, 3], timedOut: false, existed: false },
      { key: 'a', values: [2, 5], timedOut: false, existed: false },
      { key: 'c', values: [4], timedOut: false, existed: false },
    ]);
    input.addData([{ user: 'a', amount: 10 }]);
    await q.processAllAvailable();
    expect(calls[3]).to.deep.equal({ key: 'a', values: [10], timedOut: false, existed: true });
    expect(session.table('sums')).to.deep.equal([
      { user: 'b', sum: 4, timedOut: false },
      { user: 'a', sum: 7, timedOut: false },
      { user: 'c', sum: 4, timedOut: false },
      { user: 'a', sum: 17, timedOut: false },
    ]);
    const p = q.lastProgress!;
    expect(p.stateOperators[0].operatorName).to.match(/^mapGroupsWithState#\d+$/);
    expect(p.stateOperators[0].numRowsTotal).to.equal(3);
    expect(p.stateOperators[0].numRowsUpdated).to.equal(1);
  });

  it('enforces the output-mode rules when the query starts', async () => {
    const session = Session.local();
    const input = new MemoryStream<Ev>(session, EV_SCHEMA);
    const grouped = input.toDS().groupByKey((e) => e.user);
    const fail = async (start: () => Promise<unknown>): Promise<string> => {
      try {
        await start();
      } catch (e) {
        return `${(e as Error).message} / ${(e as { hint?: string }).hint ?? ''}`;
      }
      return 'started';
    };
    const mapped = grouped.mapGroupsWithState((k: string) => ({ k }));
    expect(await fail(() => mapped.writeStream.format('memory').queryName('m1').outputMode('append').start())).to.match(
      /append output mode is not supported by mapGroupsWithState#\d+ \/ .*outputMode\('update'\)/,
    );
    expect(
      await fail(() => mapped.writeStream.format('memory').queryName('m2').outputMode('complete').start()),
    ).to.match(/complete output mode is not supported by mapGroupsWithState/);
    const flatAppend = grouped.flatMapGroupsWithState((k: string) => [{ k }], { outputMode: 'append' });
    expect(
      await fail(() => flatAppend.writeStream.format('memory').queryName('f1').outputMode('update').start()),
    ).to.match(
      /update output mode is not supported by flatMapGroupsWithState#\d+ \/ .*declared with outputMode 'append'/,
    );
    const flatUpdate = grouped.flatMapGroupsWithState((k: string) => [{ k }], { outputMode: 'update' });
    expect(
      await fail(() => flatUpdate.writeStream.format('memory').queryName('f2').outputMode('append').start()),
    ).to.match(/append output mode is not supported by flatMapGroupsWithState/);
    const eventTime = grouped.mapGroupsWithState((k: string) => ({ k }), { timeout: 'EventTimeTimeout' });
    expect(
      await fail(() => eventTime.writeStream.format('memory').queryName('e1').outputMode('update').start()),
    ).to.match(/EventTimeTimeout needs a watermark/);
    expect(() => grouped.flatMapGroupsWithState((k: string) => [{ k }], {} as never)).to.throw(
      /outputMode must be 'append' or 'update'/,
    );
    expect(() => grouped.mapGroupsWithState((k: string) => ({ k }), { timeout: 'Sometimes' as never })).to.throw(
      /unknown timeout 'Sometimes'/,
    );
    const q = track(await flatAppend.writeStream.format('memory').queryName('f3').outputMode('append').start());
    input.addData([{ user: 'x', amount: 1 }]);
    await q.processAllAvailable();
    expect(session.table('f3')).to.deep.equal([{ k: 'x' }]);
  });

  it('fires a processing-time timeout with no new data, once the clock reaches it', async () => {
    const clock = new ManualClock(1_000_000);
    const session = Session.local({ clock, statePartitions: 1 });
    const input = new MemoryStream<Ev>(session, EV_SCHEMA);
    const calls: Call[] = [];
    const q = track(
      await input
        .toDS()
        .groupByKey((e) => e.user)
        .flatMapGroupsWithState(
          (key: string, values: Ev[], state: GroupState<{ sum: number }>) => {
            calls.push({
              key,
              values: values.map((v) => v.amount),
              timedOut: state.hasTimedOut,
              existed: state.exists,
            });
            if (state.hasTimedOut) {
              const closed = { user: key, sum: state.get().sum, closed: true };
              state.remove();
              return [closed];
            }
            const sum = (state.getOption()?.sum ?? 0) + values.reduce((a, v) => a + v.amount, 0);
            state.update({ sum });
            state.setTimeoutDuration('10 seconds');
            return [{ user: key, sum, closed: false }];
          },
          { outputMode: 'update', timeout: 'ProcessingTimeTimeout' },
        )
        .writeStream.format('memory')
        .queryName('to')
        .outputMode('update')
        .start(),
    );
    input.addData([
      { user: 'a', amount: 1 },
      { user: 'b', amount: 2 },
    ]);
    await q.processAllAvailable();
    clock.advance(5_000);
    input.addData([{ user: 'b', amount: 3 }]);
    await q.processAllAvailable();
    expect(calls.filter((c) => c.timedOut)).to.deep.equal([]);
    clock.advance(5_000); // a's timeout (1_010_000) is due; b's (1_015_000) is not
    await q.processAllAvailable();
    expect(calls.slice(3)).to.deep.equal([{ key: 'a', values: [], timedOut: true, existed: true }]);
    const p = q.lastProgress!;
    expect(p.numInputRows).to.equal(0);
    expect(p.stateOperators[0].numKeysTimedOut).to.equal(1);
    expect(p.stateOperators[0].numRowsRemoved).to.equal(1);
    expect(p.stateOperators[0].numRowsTotal).to.equal(1);
    clock.advance(60_000);
    await q.processAllAvailable();
    expect(session.table('to')).to.deep.equal([
      { user: 'a', sum: 1, closed: false },
      { user: 'b', sum: 2, closed: false },
      { user: 'b', sum: 5, closed: false },
      { user: 'a', sum: 1, closed: true },
      { user: 'b', sum: 5, closed: true },
    ]);
    const batches = q.recentProgress.length;
    clock.advance(60_000);
    await q.processAllAvailable();
    expect(q.recentProgress.length, 'no batch without data or due timeouts').to.equal(batches);
  });

  it('calls a key that timed out but also has data with its data, not as a timeout', async () => {
    const clock = new ManualClock(1_000_000);
    const session = Session.local({ clock, statePartitions: 1 });
    const input = new MemoryStream<Ev>(session, EV_SCHEMA);
    const calls: Call[] = [];
    const q = track(
      await input
        .toDS()
        .groupByKey((e) => e.user)
        .mapGroupsWithState(
          runningSum(calls, (_k, s) => s.setTimeoutDuration(1_000)),
          { timeout: 'ProcessingTimeTimeout' },
        )
        .writeStream.format('memory')
        .queryName('td')
        .outputMode('update')
        .trigger({ processingTime: '5 seconds' })
        .start(),
    );
    input.addData([
      { user: 'a', amount: 1 },
      { user: 'b', amount: 1 },
    ]);
    await q.processAllAvailable();
    input.addData([{ user: 'a', amount: 2 }]);
    clock.advance(5_000);
    await q.processAllAvailable();
    expect(calls.slice(2)).to.deep.equal([
      { key: 'a', values: [2], timedOut: false, existed: true },
      { key: 'b', values: [], timedOut: true, existed: true },
    ]);
    expect(q.lastProgress!.stateOperators[0].numKeysTimedOut).to.equal(1);
  });

  it('keeps a timeout without a value: the key times out later with no state', async () => {
    const clock = new ManualClock(0);
    const session = Session.local({ clock });
    const input = new MemoryStream<Ev>(session, EV_SCHEMA);
    const seen: string[] = [];
    const q = track(
      await input
        .toDS()
        .groupByKey((e) => e.user)
        .flatMapGroupsWithState(
          (key: string, _values: Ev[], state: GroupState<number>) => {
            seen.push(`${key}:${state.hasTimedOut ? 'timeout' : 'data'}:${state.exists}`);
            if (!state.hasTimedOut) state.setTimeoutDuration('1s');
            return [];
          },
          { outputMode: 'update', timeout: 'ProcessingTimeTimeout' },
        )
        .writeStream.format('memory')
        .queryName('tonly')
        .outputMode('update')
        .start(),
    );
    input.addData([{ user: 'a', amount: 1 }]);
    await q.processAllAvailable();
    expect(q.lastProgress!.stateOperators[0].numRowsTotal).to.equal(1);
    clock.advance(1_000);
    await q.processAllAvailable();
    expect(seen).to.deep.equal(['a:data:false', 'a:timeout:false']);
    expect(q.lastProgress!.stateOperators[0].numRowsTotal).to.equal(0);
  });

  it('remove then update in one call keeps the updated state', async () => {
    const session = Session.local();
    const input = new MemoryStream<Ev>(session, EV_SCHEMA);
    const q = track(
      await input
        .toDS()
        .groupByKey((e) => e.user)
        .mapGroupsWithState((key: string, values: Ev[], state: GroupState<{ n: number }>) => {
          const before = state.getOption()?.n ?? 0;
          state.remove();
          state.update({ n: before + values.length });
          return { user: key, n: state.get().n };
        })
        .writeStream.format('memory')
        .queryName('ru')
        .outputMode('update')
        .start(),
    );
    input.addData([
      { user: 'a', amount: 1 },
      { user: 'a', amount: 1 },
    ]);
    await q.processAllAvailable();
    input.addData([{ user: 'a', amount: 1 }]);
    await q.processAllAvailable();
    expect(session.table('ru')).to.deep.equal([
      { user: 'a', n: 2 },
      { user: 'a', n: 3 },
    ]);
    expect(q.lastProgress!.stateOperators[0].numRowsTotal).to.equal(1);
  });

  it('fires event-time timeouts in timeout order as the watermark passes them, and drops late rows', async () => {
    const session = Session.local({ statePartitions: 1 });
    const input = new MemoryStream<{ user: string; ts: Date }>(session, { user: 'string', ts: 'timestamp' });
    const seen: string[] = [];
    const q = track(
      await input
        .toDS()
        .withWatermark('ts', '10 seconds')
        .groupByKey((e) => e.user)
        .flatMapGroupsWithState(
          (key: string, values: { ts: Date }[], state: GroupState<{ last: number }>) => {
            if (state.hasTimedOut) {
              seen.push(`${key} timed out at ${state.getCurrentWatermarkMs() / 1000}`);
              state.remove();
              return [{ user: key, end: state.getCurrentWatermarkMs() }];
            }
            const last = Math.max(state.getOption()?.last ?? 0, ...values.map((v) => v.ts.getTime()));
            state.update({ last });
            state.setTimeoutTimestamp(last, '5 seconds');
            seen.push(`${key} data at ${state.getCurrentWatermarkMs() / 1000}`);
            return [];
          },
          { outputMode: 'append', timeout: 'EventTimeTimeout' },
        )
        .writeStream.format('memory')
        .queryName('ev')
        .outputMode('append')
        .start(),
    );
    const t = (s: number): Date => new Date(s * 1000);
    // Timeouts: a at 110 s, b at 125 s, c at 105 s. The watermark becomes 120 - 10 = 110 s after this batch,
    // so a no-data batch follows and fires c then a (timeout order, not key or arrival order); b stays.
    input.addData([
      { user: 'a', ts: t(105) },
      { user: 'b', ts: t(120) },
      { user: 'c', ts: t(100) },
    ]);
    await q.processAllAvailable();
    expect(seen).to.deep.equal([
      'a data at 0',
      'b data at 0',
      'c data at 0',
      'c timed out at 110',
      'a timed out at 110',
    ]);
    expect(q.lastProgress!.numInputRows).to.equal(0);
    expect(q.lastProgress!.stateOperators[0].numKeysTimedOut).to.equal(2);
    seen.length = 0;
    // Watermark 110 s -> 120 s: b (125 s) is not due yet.
    input.addData([{ user: 'd', ts: t(130) }]);
    await q.processAllAvailable();
    expect(seen).to.deep.equal(['d data at 110']);
    seen.length = 0;
    // Watermark -> 130 s: b fires, d (135 s) does not. Rows at or behind the watermark (130 s) are dropped.
    input.addData([{ user: 'e', ts: t(140) }]);
    await q.processAllAvailable();
    input.addData([
      { user: 'a', ts: t(129) },
      { user: 'f', ts: t(130) },
      { user: 'g', ts: t(131) },
    ]);
    await q.processAllAvailable();
    expect(seen).to.deep.equal(['e data at 120', 'b timed out at 130', 'g data at 130']);
    expect(q.lastProgress!.stateOperators[0].numRowsDroppedByWatermark).to.equal(2);
    expect(session.table('ev')).to.deep.equal([
      { user: 'c', end: 110_000 },
      { user: 'a', end: 110_000 },
      { user: 'b', end: 130_000 },
    ]);
  });

  it('writes state changed by a generator while it is consumed', async () => {
    const session = Session.local();
    const input = new MemoryStream<Ev>(session, EV_SCHEMA);
    const q = track(
      await input
        .toDS()
        .groupByKey((e) => e.user)
        .flatMapGroupsWithState(
          function* (key: string, values: Ev[], state: GroupState<{ seen: number }>) {
            for (const v of values) {
              const seen = (state.getOption()?.seen ?? 0) + 1;
              state.update({ seen });
              yield { user: key, amount: v.amount, seen };
            }
          },
          { outputMode: 'append' },
        )
        .writeStream.format('memory')
        .queryName('gen')
        .outputMode('append')
        .start(),
    );
    input.addData([
      { user: 'a', amount: 1 },
      { user: 'a', amount: 2 },
    ]);
    await q.processAllAvailable();
    input.addData([{ user: 'a', amount: 3 }]);
    await q.processAllAvailable();
    expect(session.table('gen')).to.deep.equal([
      { user: 'a', amount: 1, seen: 1 },
      { user: 'a', amount: 2, seen: 2 },
      { user: 'a', amount: 3, seen: 3 },
    ]);
  });

  it('seeds initialState in the first batch only, calling keys found only there with no rows', async () => {
    const ckpt = tmp();
    const session = Session.local({ statePartitions: 2 });
    const input = new MemoryStream<Ev>(session, EV_SCHEMA);
    const calls: Call[] = [];
    const ds = input
      .toDS()
      .groupByKey((e) => e.user)
      .mapGroupsWithState(runningSum(calls), {
        initialState: new Map([
          ['a', { sum: 100 }],
          ['z', { sum: 50 }],
        ]),
      });
    const start = (name: string) =>
      ds.writeStream.format('memory').queryName(name).outputMode('update').option('checkpointLocation', ckpt).start();
    const q1 = track(await start('i1'));
    input.addData([
      { user: 'a', amount: 1 },
      { user: 'b', amount: 2 },
    ]);
    await q1.processAllAvailable();
    await q1.stop();
    const byKey = (rows: Record<string, unknown>[]) =>
      [...rows].sort((x, y) => String(x.user).localeCompare(String(y.user)));
    expect(byKey(session.table('i1'))).to.deep.equal([
      { user: 'a', sum: 101, timedOut: false },
      { user: 'b', sum: 2, timedOut: false },
      { user: 'z', sum: 50, timedOut: false },
    ]);
    expect(calls.find((c) => c.key === 'z')).to.deep.equal({ key: 'z', values: [], timedOut: false, existed: true });
    input.addData([{ user: 'a', amount: 1 }]);
    const q2 = track(await start('i2'));
    await q2.processAllAvailable();
    expect(session.table('i2')).to.deep.equal([{ user: 'a', sum: 102, timedOut: false }]);
    expect(() =>
      input
        .toDS()
        .groupByKey((e) => e.user)
        .mapGroupsWithState(runningSum([]), {
          initialState: [
            ['a', { sum: 1 }],
            ['a', { sum: 2 }],
          ],
        }),
    ).to.throw(/initialState has key "a" more than once/);
    expect(() =>
      input
        .toDS()
        .groupByKey((e) => e.user)
        .mapGroupsWithState(runningSum([]), { initialState: [['a', null as never]] }),
    ).to.throw(/initial state of key "a" is null/);
  });

  it('keeps state and timeouts across a restart on the same checkpoint', async () => {
    const ckpt = tmp();
    const clock = new ManualClock(0);
    const session = Session.local({ clock, statePartitions: 4 });
    const input = new MemoryStream<Ev>(session, EV_SCHEMA);
    const calls: Call[] = [];
    const ds = input
      .toDS()
      .groupByKey((e) => e.user)
      .mapGroupsWithState(
        runningSum(calls, (_k, s) => {
          if (!s.hasTimedOut) s.setTimeoutDuration('1 minute');
        }),
        { timeout: 'ProcessingTimeTimeout' },
      );
    const start = (name: string) =>
      ds.writeStream.format('memory').queryName(name).outputMode('update').option('checkpointLocation', ckpt).start();
    const q1 = track(await start('r1'));
    input.addData([
      { user: 'a', amount: 1 },
      { user: 'b', amount: 2 },
      { user: 'c', amount: 3 },
    ]);
    await q1.processAllAvailable();
    clock.advance(30_000);
    input.addData([{ user: 'a', amount: 10 }]);
    await q1.processAllAvailable();
    await q1.stop();
    input.addData([{ user: 'b', amount: 20 }]);
    const q2 = track(await start('r2'));
    await q2.processAllAvailable();
    expect(session.table('r2')).to.deep.equal([{ user: 'b', sum: 22, timedOut: false }]);
    clock.advance(30_000); // c's timeout (60 s) is due; a (90 s) and b (120 s) are not
    await q2.processAllAvailable();
    expect(session.table('r2').slice(1)).to.deep.equal([{ user: 'c', sum: 3, timedOut: true }]);
    expect(calls.filter((c) => c.timedOut).map((c) => c.key)).to.deep.equal(['c']);
  });

  it('reports a user error from GroupState with the operator and batch', async () => {
    const session = Session.local();
    const input = new MemoryStream<Ev>(session, EV_SCHEMA);
    const q = await input
      .toDS()
      .groupByKey((e) => e.user)
      .mapGroupsWithState((key: string, _v: Ev[], state: GroupState<number>) => ({ user: key, n: state.get() }))
      .writeStream.format('memory')
      .queryName('err')
      .outputMode('update')
      .start();
    input.addData([{ user: 'a', amount: 1 }]);
    const err = await q.awaitTermination().then(
      () => null,
      (e: Error) => e,
    );
    expect(err?.message).to.match(
      /operator mapGroupsWithState#\d+ failed in batch 0: GroupState.get\(\): this key has no state/,
    );
  });

  it('rejects functions that return the wrong thing, naming the key', async () => {
    const session = Session.local();
    const input = new MemoryStream<Ev>(session, EV_SCHEMA);
    const run = async (
      ds: {
        writeStream: {
          format(f: string): {
            queryName(n: string): { outputMode(m: 'update'): { start(): Promise<StreamingQuery> } };
          };
        };
      },
      name: string,
    ) => {
      const q = await ds.writeStream.format('memory').queryName(name).outputMode('update').start();
      input.addData([{ user: 'k1', amount: 1 }]);
      return q.awaitTermination().then(
        () => 'ok',
        (e: Error) => e.message,
      );
    };
    const grouped = input.toDS().groupByKey((e) => e.user);
    expect(
      await run(
        grouped.mapGroupsWithState(() => undefined as never),
        'w1',
      ),
    ).to.match(/produced undefined as a row for key "k1"/);
    expect(
      await run(
        grouped.flatMapGroupsWithState(() => undefined as never, { outputMode: 'update' }),
        'w2',
      ),
    ).to.match(/returned undefined for key "k1"/);
    expect(
      await run(
        grouped.mapGroupsWithState(async () => ({})),
        'w3',
      ),
    ).to.match(/returned a Promise for key "k1"/);
  });

  it('groups by a column name and by composite keys; mapValues, reduceGroups and count', async () => {
    const session = Session.local({ statePartitions: 2 });
    const input = new MemoryStream<{ user: string; kind: string; amount: number }>(session, {
      user: 'string',
      kind: 'string',
      amount: 'double',
    });
    const ds = input.toDS();
    const byCol = track(
      await ds
        .groupByKey<string>('user')
        .mapValues((r) => r.amount)
        .mapGroupsWithState((key: string, amounts: number[]) => ({ user: key, amounts: amounts.join('+') }))
        .writeStream.format('memory')
        .queryName('col')
        .outputMode('update')
        .start(),
    );
    const composite = track(
      await ds
        .groupByKey((r) => [r.user, r.kind])
        .count()
        .writeStream.format('memory')
        .queryName('cnt')
        .outputMode('complete')
        .start(),
    );
    const reduced = track(
      await ds
        .groupByKey((r) => r.user)
        .mapValues((r) => ({ total: r.amount }))
        .reduceGroups((a, b) => ({ total: a.total + b.total }))
        .writeStream.format('memory')
        .queryName('red')
        .outputMode('update')
        .start(),
    );
    input.addData([
      { user: 'a', kind: 'x', amount: 1 },
      { user: 'b', kind: 'x', amount: 2 },
      { user: 'a', kind: 'y', amount: 3 },
      { user: 'a', kind: 'x', amount: 4 },
    ]);
    for (const q of [byCol, composite, reduced]) await q.processAllAvailable();
    input.addData([{ user: 'b', kind: 'x', amount: 5 }]);
    for (const q of [byCol, composite, reduced]) await q.processAllAvailable();
    const sorted = (rows: Record<string, unknown>[]) => rows.map((r) => JSON.stringify(r)).sort();
    expect(sorted(session.table('col'))).to.deep.equal(
      sorted([
        { user: 'a', amounts: '1+3+4' },
        { user: 'b', amounts: '2' },
        { user: 'b', amounts: '5' },
      ]),
    );
    expect(sorted(session.table('cnt'))).to.deep.equal(
      sorted([
        { key: ['a', 'x'], count: 2 },
        { key: ['a', 'y'], count: 1 },
        { key: ['b', 'x'], count: 2 },
      ]),
    );
    expect(sorted(session.table('red'))).to.deep.equal(
      sorted([
        { key: 'a', value: { total: 8 } },
        { key: 'b', value: { total: 2 } },
        { key: 'b', value: { total: 7 } },
      ]),
    );
    let err = '';
    await ds
      .groupByKey((r) => r.user)
      .count()
      .writeStream.format('memory')
      .queryName('cnt2')
      .outputMode('append')
      .start()
      .catch((e: Error & { hint?: string }) => {
        err = `${e.message} / ${e.hint}`;
      });
    expect(err).to.match(
      /append output mode is not supported by count#\d+ \/ .*outputMode\('update'\) or outputMode\('complete'\)/,
    );
  });
});
