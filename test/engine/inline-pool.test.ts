import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { expect } from 'chai';
import { col } from '../../lib/api/column.js';
import {
  count,
  count_distinct,
  date_format,
  hour,
  max,
  max_by,
  regexp_extract,
  split_part,
  struct,
  sum,
  udf,
  when,
  window,
} from '../../lib/api/functions.js';
import { Session } from '../../lib/api/session.js';
import { idleLaneCount } from '../../lib/exec/worker-pool.js';
import { ManualClock, MemoryStream } from '../../lib/testing/index.js';

type Click = { user: string; amount: number; ts: Date };
const SCHEMA = { user: 'string', amount: 'double', ts: 'timestamp' } as const;

/** Input batches: three users, amounts some of which the query filters out, event time moving a minute a batch. */
function batches(): Click[][] {
  const out: Click[][] = [];
  for (let b = 0; b < 5; b++) {
    const rows: Click[] = [];
    for (let i = 0; i < 40; i++) {
      const t = b * 60_000 + ((i * 7919) % 90_000) - 15_000;
      rows.push({ user: `u${(i * 31 + b) % 3}`, amount: ((i * 13 + b * 5) % 11) - 3, ts: new Date(Math.max(0, t)) });
    }
    out.push(rows);
  }
  return out;
}

/**
 * Runs the inline query over the batches at `threads`, stopping after the third batch and going on with a
 * new query on the same checkpoint; returns everything both wrote.
 */
async function run(threads: number, ckpt: string): Promise<Record<string, unknown>[]> {
  const clock = new ManualClock(0);
  const session = Session.local({ threads, clock, statePartitions: 3 });
  const input = new MemoryStream<Click>(session, SCHEMA);
  const ds = input
    .toDS()
    .where(col('amount').gt(0))
    .withColumn('cents', col('amount').multiply(100))
    .select('user', 'cents', 'ts')
    .withWatermark('ts', '30 seconds')
    .groupBy(window('ts', '1 minute'), 'user')
    .agg(count('*').alias('n'), sum('cents').alias('cents'), max('cents').alias('top'));
  const start = (name: string) =>
    ds.writeStream.format('memory').queryName(name).outputMode('append').option('checkpointLocation', ckpt).start();
  const all = batches();
  const q1 = await start('first');
  for (const rows of all.slice(0, 3)) {
    input.addData(rows);
    clock.advance(1000);
    await q1.processAllAvailable();
  }
  await q1.stop();
  const q2 = await start('second');
  for (const rows of all.slice(3)) {
    input.addData(rows);
    clock.advance(1000);
    await q2.processAllAvailable();
  }
  await session.stop();
  return [...session.table('first'), ...session.table('second')];
}

describe('engine: inline column-only queries on the worker pool', () => {
  let dirs: string[] = [];
  const dir = (): string => {
    const d = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-inline-pool-'));
    dirs.push(d);
    return d;
  };
  afterEach(() => {
    for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
    dirs = [];
  });

  it('gives the same windows at threads 2 as at threads 0, across a restart on the same checkpoint', async () => {
    const inProcess = await run(0, dir());
    const pooled = await run(2, dir());
    expect(idleLaneCount(), 'worker lanes the pooled run released').to.be.at.least(1);
    expect(pooled).to.deep.equal(inProcess);
    // Every window that closed is there, built of exactly the rows the filter keeps.
    const kept = batches()
      .flat()
      .filter((r) => r.amount > 0);
    const closed = inProcess.reduce((n, r) => n + (r.n as number), 0);
    expect(inProcess.length).to.be.greaterThan(5);
    expect(closed).to.be.greaterThan(kept.length / 2);
    expect(closed).to.be.at.most(kept.length);
  });

  it('runs groupByKey(column).count() at threads 2 as at threads 0', async () => {
    const counts = async (threads: number): Promise<Record<string, unknown>[]> => {
      const session = Session.local({ threads, statePartitions: 3 });
      const input = new MemoryStream<Click>(session, SCHEMA);
      const q = await input
        .toDS()
        .groupByKey('user')
        .count()
        .writeStream.format('memory')
        .queryName('perUser')
        .outputMode('complete')
        .option('checkpointLocation', dir())
        .start();
      for (const rows of batches()) {
        input.addData(rows);
        await q.processAllAvailable();
      }
      const rows = [...session.table('perUser')];
      await session.stop();
      return rows;
    };
    const inProcess = await counts(0);
    const pooled = await counts(2);
    expect(pooled).to.deep.equal(inProcess);
    // Complete mode: every batch lists every user with the rows seen so far; the last three are the totals.
    const totals = new Map<string, number>();
    for (const r of batches().flat()) totals.set(r.user, (totals.get(r.user) ?? 0) + 1);
    const last = pooled.slice(-totals.size).map((r) => [r.key, r.count]);
    expect(Object.fromEntries(last)).to.deep.equal(Object.fromEntries(totals));
  });

  it('refuses an inline map at threads 2 in one line naming the operator and its function', async () => {
    const session = Session.local({ threads: 2 });
    const input = new MemoryStream<Click>(session, SCHEMA);
    const err = await input
      .toDS()
      .where(col('amount').gt(0))
      .map((c) => ({ user: c.user.toUpperCase() }), { user: 'string' })
      .writeStream.format('memory')
      .queryName('upper')
      .start()
      .then(
        () => undefined,
        (e: Error & { code?: string; hint?: string }) => e,
      );
    const keyed = await input
      .toDS()
      .groupByKey((c) => c.user)
      .count()
      .writeStream.format('memory')
      .queryName('perUser')
      .outputMode('update')
      .start()
      .then(
        () => undefined,
        (e: Error) => e,
      );
    await session.stop();
    expect(keyed?.message).to.match(
      /^count at operator #\d+ is an operator of groupByKey, which worker threads run only from an app module$/,
    );
    expect(err?.code).to.equal('INLINE_FUNCTIONS_IN_POOL');
    expect(err?.message).to.match(
      /^map at operator #\d+ \(\(c\) => \(\{ user: c\.\S* \.\.\.\) is a function written inline/,
    );
    expect(err?.message).to.not.include('\n');
    expect(err?.hint).to.match(/app module.*threads: 0/);
  });

  it('runs the text, date, struct and top-k functions at threads 2 as at threads 0; refuses a udf there in one line', async () => {
    const run = async (threads: number): Promise<Record<string, unknown>[]> => {
      const session = Session.local({ threads, statePartitions: 3 });
      const input = new MemoryStream<Click>(session, SCHEMA);
      const q = await input
        .toDS()
        .withColumn('link', regexp_extract('user', 'u([0-9])', 1))
        .where(col('user').isin('u0', 'u2'))
        .groupBy(date_format('ts', 'HH:mm').alias('minute'), split_part('user', 'u', 2).alias('n'))
        .agg(
          max_by(struct('amount', 'link'), 'ts', 2).alias('latest'),
          count_distinct(when(hour('ts').eq(0), col('amount'))).alias('amounts'),
        )
        .writeStream.format('memory')
        .queryName('perMinute')
        .outputMode('complete')
        .option('checkpointLocation', dir())
        .start();
      for (const rows of batches()) {
        input.addData(rows);
        await q.processAllAvailable();
      }
      const rows = [...session.table('perMinute')];
      await session.stop();
      return rows;
    };
    const inProcess = await run(0);
    expect(inProcess.length).to.be.greaterThan(5);
    expect(inProcess[0].latest).to.have.length(2);
    expect(await run(2)).to.deep.equal(inProcess);

    const session = Session.local({ threads: 2 });
    const input = new MemoryStream<Click>(session, SCHEMA);
    const shout = udf(function shout(s: string) {
      return s.toUpperCase();
    }, 'string');
    const err = await input
      .toDS()
      .select(shout('user').alias('user'))
      .writeStream.format('memory')
      .queryName('shout')
      .start()
      .then(
        () => undefined,
        (e: Error & { code?: string }) => e,
      );
    await session.stop();
    expect(err?.code).to.equal('INLINE_FUNCTIONS_IN_POOL');
    expect(err?.message).to.match(
      /^select at operator #\d+ calls the user-defined function shout, which worker threads/,
    );
  });
});
