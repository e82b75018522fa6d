import * as fs from 'node:fs';
import { expect } from 'chai';
import type { Dataset } from '../../lib/api/dataset.js';
import { col, collect_list, count, session_window, sum, when } from '../../lib/api/functions.js';
import { Session } from '../../lib/api/session.js';
import { MemoryStream } from '../../lib/testing/index.js';
import { at, Harness, iso, tmpDir } from './support.js';

type Ev = { user: string; ts: number; amount: number; gap?: string | null };
const schema = { user: 'string', ts: 'timestamp', amount: 'double', gap: 'string' } as const;

/** Sessions as `user start..end n`, times as HH:MM:SS(.mmm), sorted. */
function text(rows: Record<string, unknown>[]): string[] {
  const t = (v: unknown): string =>
    iso(v)
      .slice(11, 23)
      .replace(/\.000$/, '');
  return rows
    .map((r) => {
      const w = r.session_window as { start: Date; end: Date };
      return [r.user, `${t(w.start)}..${t(w.end)}`, r.n, r.change].filter((x) => x !== undefined).join(' ');
    })
    .sort();
}

const sessions =
  (gap: string, lateness = '0s') =>
  (ds: Dataset<Ev>): Dataset<Record<string, unknown>> =>
    ds
      .withWatermark('ts', '0 seconds')
      .groupBy('user', session_window('ts', gap))
      .allowedLateness(lateness)
      .agg(count('*').alias('n'));

describe('windows: session windows', () => {
  const dirs: string[] = [];
  after(() => {
    for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
  });

  it('an event exactly `gap` after the previous one joins the session; one millisecond more starts a new one', async () => {
    const h = await Harness.start<Ev>({ schema, mode: 'append', build: sessions('10 minutes') });
    const out = await h.step([
      { user: 'a', ts: at('00:00:00'), amount: 1 },
      { user: 'a', ts: at('00:10:00'), amount: 1 },
      { user: 'a', ts: at('00:20:00.001'), amount: 1 },
    ]);
    out.push(...(await h.step([{ user: 'b', ts: at('02:00:00'), amount: 1 }])));
    expect(text(out)).to.deep.equal(['a 00:00:00..00:20:00 2', 'a 00:20:00.001..00:30:00.001 1']);
    await h.stop();
  });

  it('a session is complete only when the watermark reaches last event + gap', async () => {
    const h = await Harness.start<Ev>({ schema, mode: 'append', build: sessions('10 minutes') });
    await h.step([{ user: 'a', ts: at('00:00:00'), amount: 1 }]);
    // Watermark 00:09:59.999: an on-time event at 00:10:00 could still join.
    expect(await h.step([{ user: 'b', ts: at('00:09:59.999'), amount: 1 }])).to.deep.equal([]);
    expect(text(await h.step([{ user: 'b', ts: at('00:10:00'), amount: 1 }]))).to.deep.equal([
      'a 00:00:00..00:10:00 1',
    ]);
    await h.stop();
  });

  it('merges two sessions when a later batch brings an event that bridges them', async () => {
    const h = await Harness.start<Ev>({
      schema,
      mode: 'append',
      build: (ds) =>
        ds
          .withWatermark('ts', '1 hour')
          .groupBy('user', session_window('ts', '10 minutes'))
          .agg(count('*').alias('n'), collect_list('amount', { orderBy: 'ts' }).alias('amounts')),
    });
    await h.step([
      { user: 'a', ts: at('00:00:00'), amount: 1 },
      { user: 'a', ts: at('00:15:00'), amount: 3 },
    ]);
    expect(await h.step([{ user: 'a', ts: at('00:07:00'), amount: 2 }])).to.deep.equal([]);
    const merged = await h.step([{ user: 'b', ts: at('01:30:00'), amount: 1 }]);
    expect(text(merged)).to.deep.equal(['a 00:00:00..00:25:00 3']);
    expect(merged[0].amounts).to.deep.equal([1, 2, 3]);
    await h.stop();
  });

  it('a late event within the allowed lateness merges two sessions, which append mode then emits once', async () => {
    const h = await Harness.start<Ev>({
      schema,
      mode: 'append',
      late: true,
      build: sessions('10 minutes', '10 minutes'),
    });
    await h.step([{ user: 'a', ts: at('00:00:00'), amount: 1 }]);
    await h.step([{ user: 'a', ts: at('00:15:00'), amount: 1 }]);
    // Watermark 00:15:00: the first session [00:00, 00:10] has ended, but is kept until 00:20.
    expect(await h.step([{ user: 'a', ts: at('00:07:00'), amount: 1 }])).to.deep.equal([]);
    expect(h.newLate()).to.deep.equal([]);
    expect(text(await h.step([{ user: 'z', ts: at('01:00:00'), amount: 1 }]))).to.deep.equal([
      'a 00:00:00..00:25:00 3',
    ]);
    await h.stop();
  });

  it('an event for a session evicted after its allowed lateness goes to the late output', async () => {
    const h = await Harness.start<Ev>({
      schema,
      mode: 'append',
      late: true,
      build: sessions('10 minutes', '5 minutes'),
    });
    await h.step([{ user: 'a', ts: at('00:00:00'), amount: 1 }]);
    expect(text(await h.step([{ user: 'b', ts: at('00:15:00'), amount: 1 }]))).to.deep.equal([
      'a 00:00:00..00:10:00 1',
    ]);
    expect(await h.step([{ user: 'a', ts: at('00:04:00'), amount: 1 }])).to.deep.equal([]);
    const late = h.newLate();
    expect(late.map((r) => [r.user, iso(r.ts), iso(r.late_watermark)])).to.deep.equal([
      ['a', '2024-01-01T00:04:00.000Z', '2024-01-01T00:15:00.000Z'],
    ]);
    expect(late[0].late_reason).to.equal(
      'behind the watermark: event time 2024-01-01T00:04:00.000Z is at or before 2024-01-01T00:10:00.000Z' +
        ' (the watermark minus the allowed lateness of 300000 ms)',
    );
    await h.stop();
  });

  it('merges with sessions restored from the checkpoint after a restart', async () => {
    const ckpt = tmpDir();
    dirs.push(ckpt);
    const build = (ds: Dataset<Ev>): Dataset<Record<string, unknown>> =>
      ds
        .withWatermark('ts', '1 hour')
        .groupBy('user', session_window('ts', '10 minutes'))
        .agg(count('*').alias('n'), sum('amount').alias('total'));
    const h1 = await Harness.start<Ev>({ schema, mode: 'append', checkpoint: ckpt, build });
    await h1.step([
      { user: 'a', ts: at('00:00:00'), amount: 1 },
      { user: 'a', ts: at('00:15:00'), amount: 2 },
    ]);
    await h1.stop();
    const session = Session.local({ statePartitions: 2 });
    const input = new MemoryStream<Ev>(session, schema);
    input.addData([]);
    const h2 = await Harness.start<Ev>({ schema, mode: 'append', checkpoint: ckpt, build, session, input });
    await h2.step([{ user: 'a', ts: at('00:08:00'), amount: 4 }]);
    const out = await h2.step([{ user: 'z', ts: at('03:00:00'), amount: 0 }]);
    expect(out.map((r) => [r.user, r.n, r.total])).to.deep.equal([['a', 3, 7]]);
    await h2.stop();
  });

  it('takes the gap per row from a column; rows without a valid gap go to the late output with the reason', async () => {
    const h = await Harness.start<Ev>({
      schema,
      mode: 'append',
      late: true,
      build: (ds) =>
        ds
          .withWatermark('ts', '0 seconds')
          .groupBy('user', session_window('ts', when(col('user').eq('vip'), '30 minutes').otherwise(col('gap'))))
          .agg(count('*').alias('n')),
    });
    const out = await h.step([
      { user: 'vip', ts: at('00:00:00'), amount: 1, gap: null },
      { user: 'vip', ts: at('00:25:00'), amount: 1, gap: null },
      { user: 'x', ts: at('00:00:00'), amount: 1, gap: '5 minutes' },
      { user: 'x', ts: at('00:06:00'), amount: 1, gap: '300000' },
      { user: 'y', ts: at('00:01:00'), amount: 1, gap: 'soon' },
    ]);
    out.push(...(await h.step([{ user: 'w', ts: at('02:00:00'), amount: 1, gap: '1m' }])));
    expect(text(out)).to.deep.equal(['vip 00:00:00..00:55:00 2', 'x 00:00:00..00:05:00 1', 'x 00:06:00..00:11:00 1']);
    expect(h.lateRows().map((r) => [r.user, r.late_reason])).to.deep.equal([
      ['y', 'session gap is null, not a duration, or not positive'],
    ]);
    await h.stop();
  });

  it('changelog: a merge retracts both old sessions and adds the merged one; closing retracts it', async () => {
    const h = await Harness.start<Ev>({
      schema,
      mode: 'update',
      build: (ds) =>
        ds
          .withWatermark('ts', '30 minutes')
          .groupBy('user', session_window('ts', '10 minutes'))
          .changelog()
          .agg(count('*').alias('n')),
    });
    await h.step([
      { user: 'a', ts: at('00:00:00'), amount: 1 },
      { user: 'a', ts: at('00:15:00'), amount: 1 },
    ]);
    expect(text(await h.step([{ user: 'a', ts: at('00:07:00'), amount: 1 }]))).to.deep.equal([
      'a 00:00:00..00:10:00 1 -1',
      'a 00:00:00..00:25:00 3 1',
      'a 00:15:00..00:25:00 1 -1',
    ]);
    expect(text(await h.step([{ user: 'b', ts: at('01:00:00'), amount: 1 }]))).to.deep.equal([
      'a 00:00:00..00:25:00 3 -1',
      'b 01:00:00..01:10:00 1 1',
    ]);
    await h.stop();
  });

  it('complete mode lists every session of every key, without evicting', async () => {
    const h = await Harness.start<Ev>({ schema, mode: 'complete', build: sessions('10 minutes') });
    await h.step([
      { user: 'a', ts: at('00:00:00'), amount: 1 },
      { user: 'b', ts: at('00:00:00'), amount: 1 },
    ]);
    const out = await h.step([{ user: 'a', ts: at('01:00:00'), amount: 1 }]);
    expect(text(out.slice(-3))).to.deep.equal([
      'a 00:00:00..00:10:00 1',
      'a 01:00:00..01:10:00 1',
      'b 00:00:00..00:10:00 1',
    ]);
    await h.stop();
  });
});
