import * as fs from 'node:fs';
import { expect } from 'chai';
import type { Dataset } from '../../lib/api/dataset.js';
import { col, count, sum, window } from '../../lib/api/functions.js';
import { Session } from '../../lib/api/session.js';
import { MemoryStream } from '../../lib/testing/index.js';
import { at, Harness, iso, tmpDir } from './support.js';

type Ev = { user: string; amount: number; ts: number };
const schema = { user: 'string', amount: 'double', ts: 'timestamp' } as const;

/** Output rows as compact text: `start..end user n total`, sorted. */
function text(rows: Record<string, unknown>[]): string[] {
  return rows
    .map((r) => {
      const w = r.window as { start: Date; end: Date };
      return [`${iso(w.start).slice(11, 19)}..${iso(w.end).slice(11, 19)}`, r.user, r.n, r.total, r.change]
        .filter((x) => x !== undefined && x !== null)
        .join(' ');
    })
    .sort();
}

describe('windows: tumbling and sliding', () => {
  const dirs: string[] = [];
  after(() => {
    for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
  });

  it('append mode emits each window once, when the watermark reaches its end; an event exactly at a window end opens the next window', async () => {
    const h = await Harness.start<Ev>({
      schema,
      mode: 'append',
      build: (ds) =>
        ds
          .withWatermark('ts', '30 seconds')
          .groupBy(window('ts', '1 minute'), 'user')
          .agg(count('*').alias('n'), sum('amount').alias('total')),
    });
    expect(
      await h.step([
        { user: 'a', amount: 1, ts: at('00:00:10') },
        { user: 'a', amount: 2, ts: at('00:00:59.999') },
        { user: 'a', amount: 4, ts: at('00:01:00') },
      ]),
    ).to.deep.equal([]);
    // Watermark now 00:00:30: nothing closed. Each step also runs the no-data batch its new watermark makes due:
    // this one moves it to 00:01:00, the end of [00:00, 00:01).
    expect(text(await h.step([{ user: 'b', amount: 8, ts: at('00:01:30') }]))).to.deep.equal([
      '00:00:00..00:01:00 a 2 3',
    ]);
    expect(await h.step([{ user: 'b', amount: 16, ts: at('00:01:31') }])).to.deep.equal([]);
    // Moving the watermark far ahead closes the rest, each exactly once.
    expect(text(await h.step([{ user: 'c', amount: 1, ts: at('00:10:00') }]))).to.deep.equal([
      '00:01:00..00:02:00 a 1 4',
      '00:01:00..00:02:00 b 2 24',
    ]);
    expect(await h.step()).to.deep.equal([]);
    await h.stop();
  });

  it('sliding windows: a row counts in every window that contains it', async () => {
    const h = await Harness.start<Ev>({
      schema,
      mode: 'complete',
      build: (ds) => ds.groupBy(window('ts', '3 minutes', '1 minute')).agg(count('*').alias('n')),
    });
    const out = await h.step([
      { user: 'a', amount: 1, ts: at('00:02:30') },
      { user: 'a', amount: 1, ts: at('00:03:00') },
    ]);
    expect(text(out)).to.deep.equal([
      '00:00:00..00:03:00 1',
      '00:01:00..00:04:00 2',
      '00:02:00..00:05:00 2',
      '00:03:00..00:06:00 1',
    ]);
    await h.stop();
  });

  it('start offsets shift the windows', async () => {
    const h = await Harness.start<Ev>({
      schema,
      mode: 'complete',
      build: (ds) => ds.groupBy(window('ts', '1 hour', '1 hour', '15 minutes')).agg(count('*').alias('n')),
    });
    expect(
      text(
        await h.step([
          { user: 'a', amount: 1, ts: at('00:14:59') },
          { user: 'a', amount: 1, ts: at('00:15:00') },
        ]),
      ),
    ).to.deep.equal(['00:15:00..01:15:00 1', '23:15:00..00:15:00 1']);
    await h.stop();
  });

  it('drops rows whose windows are closed, counts them, and sends them to the late output with the reason and watermark', async () => {
    const h = await Harness.start<Ev>({
      schema,
      mode: 'update',
      late: true,
      build: (ds) => ds.withWatermark('ts', '10 seconds').groupBy(window('ts', '1 minute')).agg(count('*').alias('n')),
    });
    await h.step([{ user: 'a', amount: 1, ts: at('00:02:10') }]);
    // Watermark 00:02:00: the window [00:01, 00:02) is closed, [00:02, 00:03) is open.
    const out = await h.step([
      { user: 'late', amount: 1, ts: at('00:01:59.999') },
      { user: 'behind-but-open', amount: 1, ts: at('00:02:00') },
    ]);
    expect(text(out)).to.deep.equal(['00:02:00..00:03:00 2']);
    const late = h.newLate();
    expect(late).to.have.length(1);
    expect(late[0].user).to.equal('late');
    expect(iso(late[0].late_watermark)).to.equal('2024-01-01T00:02:00.000Z');
    expect(late[0].late_reason).to.match(/behind the watermark.*00:01:59\.999.*ended 2024-01-01T00:02:00\.000Z/);
    const p = h.progress[h.progress.length - 1];
    expect(p.stateOperators[0].numRowsDroppedByWatermark).to.equal(1);
    expect(p.stateOperators[0].numLateRows).to.equal(1);
    await h.stop();
  });

  it('allowed lateness keeps a closed window for late rows and emits it again in update mode, then evicts it', async () => {
    const h = await Harness.start<Ev>({
      schema,
      mode: 'update',
      late: true,
      build: (ds) =>
        ds
          .withWatermark('ts', '0 seconds')
          .groupBy(window('ts', '1 minute'))
          .allowedLateness('2 minutes')
          .agg(count('*').alias('n')),
    });
    expect(text(await h.step([{ user: 'a', amount: 1, ts: at('00:00:30') }]))).to.deep.equal(['00:00:00..00:01:00 1']);
    await h.step([{ user: 'a', amount: 1, ts: at('00:02:30') }]);
    // Watermark 00:02:30: [00:00, 00:01) ended but is kept until 00:03:00.
    expect(text(await h.step([{ user: 'late-but-allowed', amount: 1, ts: at('00:00:40') }]))).to.deep.equal([
      '00:00:00..00:01:00 2',
    ]);
    expect(h.newLate()).to.deep.equal([]);
    await h.step([{ user: 'a', amount: 1, ts: at('00:03:00') }]);
    // Watermark 00:03:00 = end + lateness: evicted; a row for it is now late.
    expect(await h.step([{ user: 'too-late', amount: 1, ts: at('00:00:50') }])).to.deep.equal([]);
    expect(h.newLate().map((r) => r.user)).to.deep.equal(['too-late']);
    await h.stop();
  });

  it('append mode with allowed lateness emits the final window once, after the lateness', async () => {
    const h = await Harness.start<Ev>({
      schema,
      mode: 'append',
      build: (ds) =>
        ds
          .withWatermark('ts', '0 seconds')
          .groupBy(window('ts', '1 minute'))
          .allowedLateness('1 minute')
          .agg(count('*').alias('n')),
    });
    await h.step([{ user: 'a', amount: 1, ts: at('00:00:30') }]);
    expect(await h.step([{ user: 'a', amount: 1, ts: at('00:01:30') }])).to.deep.equal([]);
    expect(await h.step([{ user: 'late', amount: 1, ts: at('00:00:45') }])).to.deep.equal([]);
    expect(text(await h.step([{ user: 'a', amount: 1, ts: at('00:02:00') }]))).to.deep.equal(['00:00:00..00:01:00 2']);
    await h.stop();
  });

  it('closes the windows of keys that went idle when other keys move the watermark', async () => {
    const h = await Harness.start<Ev>({
      schema,
      mode: 'append',
      statePartitions: 4,
      build: (ds) =>
        ds.withWatermark('ts', '0 seconds').groupBy(window('ts', '1 minute'), 'user').agg(count('*').alias('n')),
    });
    await h.step([
      { user: 'idle', amount: 1, ts: at('00:00:05') },
      { user: 'busy', amount: 1, ts: at('00:00:06') },
    ]);
    let out: string[] = [];
    for (let m = 1; m <= 3; m++)
      out = out.concat(text(await h.step([{ user: 'busy', amount: 1, ts: at(`00:0${m}:06`) }])));
    expect(out).to.deep.equal([
      '00:00:00..00:01:00 busy 1',
      '00:00:00..00:01:00 idle 1',
      '00:01:00..00:02:00 busy 1',
      '00:02:00..00:03:00 busy 1',
    ]);
    await h.stop();
  });

  it('keeps windows across a restart and finishes them exactly once', async () => {
    const ckpt = tmpDir();
    dirs.push(ckpt);
    const build = (ds: Dataset<Ev>): Dataset =>
      ds
        .withWatermark('ts', '0 seconds')
        .groupBy(window('ts', '1 minute'), 'user')
        .agg(count('*').alias('n'), sum(col('amount')).alias('total'));
    const h1 = await Harness.start<Ev>({ schema, mode: 'append', checkpoint: ckpt, build });
    await h1.step([{ user: 'a', amount: 1, ts: at('00:00:10') }]);
    await h1.step([{ user: 'a', amount: 2, ts: at('00:00:20') }]);
    await h1.stop();
    // A new memory stream continues after the checkpoint's offsets (two batches): give it two empty ones first.
    const session = Session.local({ statePartitions: 2 });
    const input = new MemoryStream<Ev>(session, schema);
    input.addData([]);
    input.addData([]);
    const h2 = await Harness.start<Ev>({ schema, mode: 'append', checkpoint: ckpt, build, session, input });
    expect(text(await h2.step([{ user: 'a', amount: 4, ts: at('00:01:10') }]))).to.deep.equal([
      '00:00:00..00:01:00 a 2 3',
    ]);
    await h2.stop();
  });

  it('changelog: +1 rows for results, -1 for the results they replace and for windows that close', async () => {
    const h = await Harness.start<Ev>({
      schema,
      mode: 'update',
      build: (ds) =>
        ds.withWatermark('ts', '0 seconds').groupBy(window('ts', '1 minute')).changelog().agg(count('*').alias('n')),
    });
    expect(text(await h.step([{ user: 'a', amount: 1, ts: at('00:00:10') }]))).to.deep.equal([
      '00:00:00..00:01:00 1 1',
    ]);
    expect(text(await h.step([{ user: 'a', amount: 1, ts: at('00:00:20') }]))).to.deep.equal([
      '00:00:00..00:01:00 1 -1',
      '00:00:00..00:01:00 2 1',
    ]);
    // The watermark moves to 00:01:00: the first window closes and leaves the changelog.
    expect(text(await h.step([{ user: 'a', amount: 1, ts: at('00:01:00') }]))).to.deep.equal([
      '00:00:00..00:01:00 2 -1',
      '00:01:00..00:02:00 1 1',
    ]);
    expect(await h.step()).to.deep.equal([]);
    await h.stop();
  });
});
