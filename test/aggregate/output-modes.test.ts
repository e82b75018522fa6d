import { expect } from 'chai';
import type { Dataset } from '../../lib/api/dataset.js';
import { col, count, session_window, sum, window } from '../../lib/api/functions.js';
import { Session } from '../../lib/api/session.js';
import { SluiceError } from '../../lib/errors.js';
import type { OutputMode } from '../../lib/sinks/output-mode.js';
import { MemoryStream } from '../../lib/testing/index.js';
import { at, Harness } from '../windows/support.js';

type Ev = { user: string; amount: number; ts: number; other: number; loc?: { city: string } };
const schema = {
  user: 'string',
  amount: 'double',
  ts: 'timestamp',
  other: 'timestamp',
  loc: { city: 'string' },
} as const;

/** The error a query start throws, or null. */
async function startError(
  mode: OutputMode,
  build: (ds: Dataset<Ev>) => Dataset<Record<string, unknown>>,
): Promise<SluiceError | null> {
  const session = Session.local();
  const input = new MemoryStream<Ev>(session, schema);
  try {
    const q = await build(input.toDS()).writeStream.format('memory').queryName('q').outputMode(mode).start();
    await q.stop();
    return null;
  } catch (err) {
    expect(err).to.be.instanceOf(SluiceError);
    return err as SluiceError;
  }
}

describe('aggregation: output modes and analysis errors', () => {
  it("append mode needs a watermark (Spark's rule and message)", async () => {
    const err = await startError('append', (ds) => ds.groupBy(window('ts', '1 minute')).agg(count('*')));
    expect(err?.code).to.equal('ANALYSIS');
    expect(err?.message).to.match(
      /Append output mode not supported when there are streaming aggregations on streaming Datasets without watermark/,
    );
    expect(err?.message).to.match(/withWatermark/);
  });

  it('append mode needs an event-time window or the event-time column itself in the grouping', async () => {
    const err = await startError('append', (ds) => ds.withWatermark('ts', '1 minute').groupBy('user').agg(count('*')));
    expect(err?.message).to.match(/Append output mode needs an event-time window or the event-time column 'ts' itself/);
    const other = await startError('append', (ds) =>
      ds.withWatermark('ts', '1 minute').groupBy('user', 'other').agg(count('*')),
    );
    expect(other?.message).to.match(/Append output mode needs/);
    for (const grouping of ['ts', col('ts').alias('t')]) {
      expect(
        await startError('append', (ds) =>
          ds.withWatermark('ts', '1 minute').groupBy('user', grouping).agg(count('*')),
        ),
      ).to.equal(null);
    }
  });

  it("update mode is refused for session windows (Spark's rule), naming append, complete and a changelog", async () => {
    const err = await startError('update', (ds) =>
      ds.withWatermark('ts', '1 minute').groupBy('user', session_window('ts', '5 minutes')).agg(count('*')),
    );
    expect(err?.code).to.equal('ANALYSIS');
    expect(err?.message)
      .to.match(/Update output mode not supported for session window/)
      .and.match(/outputMode\('append'\)/)
      .and.match(/outputMode\('complete'\)/)
      .and.match(/changelog\(\)/);
    for (const mode of ['append', 'complete'] as const) {
      expect(
        await startError(mode, (ds) =>
          ds.withWatermark('ts', '1 minute').groupBy('user', session_window('ts', '5 minutes')).agg(count('*')),
        ),
      ).to.equal(null);
    }
    expect(
      await startError('update', (ds) =>
        ds
          .withWatermark('ts', '1 minute')
          .groupBy('user', session_window('ts', '5 minutes'))
          .changelog()
          .agg(count('*')),
      ),
    ).to.equal(null);
  });

  it("a window must be over the watermark's column", async () => {
    const err = await startError('update', (ds) =>
      ds.withWatermark('ts', '1 minute').groupBy(session_window('other', '5 minutes')).agg(count('*')),
    );
    expect(err?.message).to.match(/session_window is over 'other' but the watermark is defined on 'ts'/);
  });

  it('unknown columns, unfit types and clashing names are errors when the query starts, not in a batch', async () => {
    const unknown = await startError('update', (ds) => ds.groupBy('usr').agg(count('*')));
    expect(unknown?.message).to.match(/'usr' does not exist/);
    expect(unknown?.hint).to.match(/did you mean 'user'/);
    expect((await startError('update', (ds) => ds.groupBy('user').agg(sum('amout'))))?.message).to.match(
      /'amout' does not exist/,
    );
    expect((await startError('complete', (ds) => ds.groupBy('user').agg(count('*').alias('user'))))?.message).to.match(
      /two output columns named 'user'/,
    );
    expect((await startError('update', (ds) => ds.groupBy('user').agg(sum('loc'))))?.message).to.match(
      /sum: cannot aggregate a column of type Struct/,
    );
    expect(
      await startError('update', (ds) =>
        ds.groupBy('user').agg(sum(col('loc.city')), count(col('ts').eq(col('other')))),
      ),
    ).to.equal(null);
  });

  it('a second aggregation over one that re-emits groups is refused outside append mode; over a changelog it is allowed', async () => {
    const twice = (ds: Dataset<Ev>) => ds.groupBy('user').agg(count('*').alias('n')).groupBy('n').agg(count('*'));
    expect((await startError('update', twice))?.message).to.match(
      /Multiple streaming aggregations are not supported with update output mode/,
    );
    expect((await startError('complete', twice))?.message).to.match(/changelog/);
    expect(
      await startError('update', (ds) =>
        ds
          .groupBy('user')
          .changelog()
          .agg(count('*').alias('n'))
          .groupBy()
          .agg(sum(col('n').multiply(col('change'))).alias('rows')),
      ),
    ).to.equal(null);
  });

  it('builder mistakes fail at once with a hint', () => {
    const session = Session.local();
    const ds = new MemoryStream<Ev>(session, schema).toDS();
    expect(() => ds.groupBy('user').allowedLateness('1 minute')).to.throw(
      SluiceError,
      /allowedLateness\(\) needs an event-time window/,
    );
    expect(() => ds.groupBy(window('ts', '1 minute'), session_window('ts', '1 minute')).agg(count('*'))).to.throw(
      SluiceError,
      /more than one window/,
    );
    expect(() => ds.groupBy('user').agg()).to.throw(SluiceError, /at least one aggregate/);
    expect(() => ds.groupBy('user').agg(col('amount') as never)).to.throw(
      SluiceError,
      /agg\(\) takes aggregate functions/,
    );
    expect(() => window('ts', '1 minute', '2 minutes')).to.throw(SluiceError, /slide/);
    expect(() => window('ts', '0s')).to.throw(SluiceError, /longer than zero/);
  });

  it('update mode emits the groups a batch changed; complete mode all groups, in the same order every time', async () => {
    const rows = (n: number) =>
      Array.from({ length: n }, (_, i) => ({ user: `u${(i * 7) % 11}`, amount: i, ts: at('00:00:00') + i, other: 0 }));
    const u = await Harness.start<Ev>({
      schema,
      mode: 'update',
      build: (ds) => ds.groupBy('user').agg(count('*').alias('n')),
    });
    expect((await u.step(rows(11))).length).to.equal(11);
    expect((await u.step([{ user: 'u3', amount: 1, ts: 0, other: 0 }])).map((r) => [r.user, r.n])).to.deep.equal([
      ['u3', 2],
    ]);
    await u.stop();
    const orders: string[][] = [];
    for (const split of [[50], [10, 40], [1, 1, 48]]) {
      const c = await Harness.start<Ev>({
        schema,
        mode: 'complete',
        statePartitions: 3,
        build: (ds) => ds.groupBy('user').agg(sum('amount').alias('s')),
      });
      const all = rows(50);
      let out: Record<string, unknown>[] = [];
      let at0 = 0;
      for (const k of split) {
        out = await c.step(all.slice(at0, at0 + k));
        at0 += k;
      }
      await c.stop();
      orders.push(out.map((r) => `${r.user}=${r.s}`));
    }
    expect(orders[1]).to.deep.equal(orders[0]);
    expect(orders[2]).to.deep.equal(orders[0]);
    expect(orders[0]).to.have.length(11);
  });
});
