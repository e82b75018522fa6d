import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { expect } from 'chai';
import { col, lit } from '../../lib/api/column.js';
import { Session } from '../../lib/api/session.js';
import type { QueryProgress } from '../../lib/exec/progress.js';
import { ManualClock, MemoryStream } from '../../lib/testing/index.js';

function tmpDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-engine-'));
}

type Ev = { user: string; amount: number };

describe('engine: a query batch by batch', () => {
  let dirs: string[] = [];
  const dir = (): string => {
    const d = tmpDir();
    dirs.push(d);
    return d;
  };
  afterEach(() => {
    for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
    dirs = [];
  });

  it('runs map and filter functions per batch into a memory sink, with progress', async () => {
    const session = Session.local();
    const input = new MemoryStream<Ev>(session, { user: 'string', amount: 'double' });
    const progress: QueryProgress[] = [];
    session.streams.addListener({ onQueryProgress: ({ progress: p }) => progress.push(p) });
    const q = await input
      .toDS()
      .filter((e) => e.amount > 1)
      .map((e) => ({ user: e.user.toUpperCase(), twice: e.amount * 2 }), { user: 'string', twice: 'double' })
      .writeStream.format('memory')
      .queryName('out')
      .start();
    input.addData([
      { user: 'a', amount: 1 },
      { user: 'b', amount: 2 },
    ]);
    await q.processAllAvailable();
    expect(session.table('out')).to.deep.equal([{ user: 'B', twice: 4 }]);
    input.addData([{ user: 'c', amount: 5 }]);
    await q.processAllAvailable();
    expect(session.table('out')).to.deep.equal([
      { user: 'B', twice: 4 },
      { user: 'C', twice: 10 },
    ]);
    await q.stop();
    expect(progress.map((p) => p.batchId)).to.deep.equal([0, 1]);
    expect(progress[0].numInputRows).to.equal(2);
    expect(progress[0].sink.numOutputRows).to.equal(1);
    expect(progress[1].sources[0].startOffset).to.equal(1);
    expect(progress[1].sources[0].endOffset).to.equal(2);
    expect(q.lastProgress?.batchId).to.equal(1);
    expect(q.recentProgress).to.have.length(2);
  });

  it('runs no batch until a memory stream has data, as Spark does', async () => {
    const session = Session.local();
    const input = new MemoryStream<Ev>(session, { user: 'string', amount: 'double' });
    const q = await input.toDS().writeStream.format('memory').queryName('empty').start();
    await q.processAllAvailable();
    await new Promise((r) => setTimeout(r, 100));
    await q.processAllAvailable();
    expect(q.recentProgress).to.deep.equal([]);
    expect(q.lastProgress).to.equal(null);
    input.addData([{ user: 'a', amount: 1 }]);
    await q.processAllAvailable();
    await q.stop();
    expect(q.recentProgress.map((p) => [p.batchId, p.numInputRows])).to.deep.equal([[0, 1]]);
    expect(q.recentProgress[0].sources[0].startOffset).to.equal(null);
  });

  it("reports each batch at the trigger clock's time when it started, and how long it took in wall time", async () => {
    const clock = new ManualClock(1_700_000_000_000);
    const session = Session.local({ clock });
    const input = new MemoryStream<Ev>(session, { user: 'string', amount: 'double' });
    const q = await input
      .toDS()
      .map(
        (e) => {
          // Busy for 30 ms of wall time per row while the manual clock stands still.
          const until = performance.now() + 30;
          while (performance.now() < until);
          return e;
        },
        { user: 'string', amount: 'double' },
      )
      .writeStream.format('memory')
      .queryName('timed')
      .start();
    input.addData([{ user: 'a', amount: 1 }]);
    await q.processAllAvailable();
    clock.advance(5_000);
    input.addData([{ user: 'b', amount: 1 }]);
    await q.processAllAvailable();
    await q.stop();
    const [p0, p1] = q.recentProgress;
    expect([p0.timestamp, p1.timestamp]).to.deep.equal([
      new Date(1_700_000_000_000).toISOString(),
      new Date(1_700_000_005_000).toISOString(),
    ]);
    for (const p of [p0, p1]) {
      const d = p.durationMs;
      expect(d.addBatch).to.be.at.least(29);
      expect(d.triggerExecution).to.be.at.least(
        d.latestOffset + d.getBatch + d.queryPlanning + d.walCommit + d.addBatch + d.commitOffsets,
      );
      expect(p.batchDuration).to.equal(Math.round(d.triggerExecution));
    }
  });

  it('evaluates select, withColumn and where on columns, with current_timestamp from the offset log', async () => {
    const clock = new ManualClock(1_700_000_000_000);
    const session = Session.local({ clock });
    const input = new MemoryStream<Ev>(session, { user: 'string', amount: 'double' });
    const q = await input
      .toDS()
      .where(col('amount').ge(lit(2)))
      .withColumn('cents', col('amount').multiply(100))
      .select('user', 'cents')
      .writeStream.format('memory')
      .queryName('cols')
      .start();
    input.addData([
      { user: 'a', amount: 1.5 },
      { user: 'b', amount: 2.25 },
    ]);
    await q.processAllAvailable();
    await q.stop();
    expect(session.table('cols')).to.deep.equal([{ user: 'b', cents: 225 }]);
  });

  it('unions two streams and flatMaps rows', async () => {
    const session = Session.local();
    const a = new MemoryStream<Ev>(session, { user: 'string', amount: 'double' });
    const b = new MemoryStream<Ev>(session, { user: 'string', amount: 'double' });
    const q = await a
      .toDS()
      .union(b.toDS())
      .flatMap((e) => Array.from({ length: e.amount }, (_, i) => ({ user: e.user, i })), { user: 'string', i: 'int' })
      .writeStream.format('memory')
      .queryName('u')
      .start();
    a.addData([{ user: 'a', amount: 2 }]);
    b.addData([{ user: 'b', amount: 1 }]);
    await q.processAllAvailable();
    await q.stop();
    expect(session.table('u')).to.deep.equal([
      { user: 'a', i: 0 },
      { user: 'a', i: 1 },
      { user: 'b', i: 0 },
    ]);
  });

  it('stops with the user error, commits nothing of that batch, and re-runs it on restart', async () => {
    const ckpt = dir();
    const session = Session.local();
    const input = new MemoryStream<Ev>(session, { user: 'string', amount: 'double' });
    let fail = true;
    const ds = input.toDS().map(
      (e) => {
        if (fail && e.user === 'bad') throw new Error('boom');
        return { user: e.user };
      },
      { user: 'string' },
    );
    input.addData([{ user: 'ok', amount: 1 }]);
    input.addData([{ user: 'bad', amount: 1 }]);
    const q = await ds.writeStream
      .format('memory')
      .queryName('f')
      .option('checkpointLocation', ckpt)
      .trigger({ once: true })
      .start();
    let err: Error | undefined;
    await q.awaitTermination().catch((e: Error) => {
      err = e;
    });
    expect(err?.message).to.match(/operator map#\d+ failed in batch 0: boom/);
    expect(fs.existsSync(path.join(ckpt, 'offsets', '0'))).to.equal(true);
    expect(fs.existsSync(path.join(ckpt, 'commits', '0'))).to.equal(false);
    fail = false;
    const q2 = await ds.writeStream
      .format('memory')
      .queryName('f2')
      .option('checkpointLocation', ckpt)
      .trigger({ once: true })
      .start();
    await q2.awaitTermination();
    expect(session.table('f2')).to.deep.equal([{ user: 'ok' }, { user: 'bad' }]);
    expect(q2.recentProgress.map((p) => p.batchId)).to.deep.equal([0]);
  });

  it('continues from the checkpoint after a stop: nothing read twice', async () => {
    const ckpt = dir();
    const session = Session.local();
    const input = new MemoryStream<Ev>(session, { user: 'string', amount: 'double' });
    const start = (name: string) =>
      input.toDS().writeStream.format('memory').queryName(name).option('checkpointLocation', ckpt).start();
    input.addData([{ user: 'a', amount: 1 }]);
    const q1 = await start('r1');
    await q1.processAllAvailable();
    await q1.stop();
    input.addData([{ user: 'b', amount: 2 }]);
    const q2 = await start('r2');
    await q2.processAllAvailable();
    await q2.stop();
    expect(session.table('r1').map((r) => r.user)).to.deep.equal(['a']);
    expect(session.table('r2').map((r) => r.user)).to.deep.equal(['b']);
    expect(q2.id).to.equal(q1.id);
    expect(q2.runId).to.not.equal(q1.runId);
  });

  it('runs processing-time triggers on the clock', async () => {
    const clock = new ManualClock(1000);
    const session = Session.local({ clock });
    const input = new MemoryStream<Ev>(session, { user: 'string', amount: 'double' });
    input.addData([{ user: 'a', amount: 1 }]);
    const q = await input
      .toDS()
      .writeStream.format('memory')
      .queryName('t')
      .trigger({ processingTime: '10 seconds' })
      .start();
    await q.processAllAvailable();
    input.addData([{ user: 'b', amount: 1 }]);
    await new Promise((r) => setTimeout(r, 50));
    expect(session.table('t')).to.have.length(1);
    clock.advance(10_000);
    await q.processAllAvailable();
    await q.stop();
    expect(session.table('t')).to.have.length(2);
  });

  it('passes each batch with its id to foreachBatch', async () => {
    const session = Session.local();
    const input = new MemoryStream<Ev>(session, { user: 'string', amount: 'double' });
    const seen: [number, string[]][] = [];
    const q = await input
      .toDS()
      .writeStream.foreachBatch((rows, id) => {
        seen.push([id, rows.map((r) => r.user as string)]);
      })
      .start();
    input.addData([{ user: 'a', amount: 1 }]);
    await q.processAllAvailable();
    input.addData([
      { user: 'b', amount: 1 },
      { user: 'c', amount: 1 },
    ]);
    await q.processAllAvailable();
    await q.stop();
    expect(seen).to.deep.equal([
      [0, ['a']],
      [1, ['b', 'c']],
    ]);
  });

  it('rejects queries it cannot run, with what to do', async () => {
    const session = Session.local({ threads: 2 });
    const input = new MemoryStream<Ev>(session, { user: 'string', amount: 'double' });
    let err: Error | undefined;
    await input
      .toDS()
      .map((e) => e)
      .writeStream.format('memory')
      .queryName('x')
      .start()
      .catch((e: Error) => {
        err = e;
      });
    expect(err?.message).to.match(/^map at operator #\d+ \(\(e\) => e\) is a function written inline/);
    const s0 = Session.local();
    const in0 = new MemoryStream<Ev>(s0, { user: 'string', amount: 'double' });
    await in0
      .toDS()
      .writeStream.format('memory')
      .queryName('y')
      .outputMode('complete')
      .start()
      .catch((e: Error) => {
        err = e;
      });
    expect(err?.message).to.match(/complete output mode is not supported when there are no streaming aggregations/);
    await in0
      .toDS()
      .select('nope')
      .writeStream.format('memory')
      .queryName('z')
      .start()
      .catch((e: Error) => {
        err = e;
      });
    expect(err?.message).to.match(/nope/);
    await in0
      .toDS()
      .writeStream.format('parquet')
      .start()
      .catch((e: Error) => {
        err = e;
      });
    expect(err?.message).to.match(/needs a checkpoint location/);
  });

  it('tracks the watermark from withWatermark and reports event-time stats', async () => {
    const session = Session.local();
    const input = new MemoryStream(session, { ts: 'timestamp', v: 'int' });
    const q = await input.toDS().withWatermark('ts', '10 seconds').writeStream.format('memory').queryName('w').start();
    input.addData([
      { ts: new Date(100_000), v: 1 },
      { ts: new Date(130_000), v: 2 },
    ]);
    await q.processAllAvailable();
    input.addData([{ ts: new Date(50_000), v: 3 }]);
    await q.processAllAvailable();
    await q.stop();
    const [p0, p1] = q.recentProgress;
    expect(p0.eventTime.watermark).to.equal(new Date(0).toISOString());
    expect(p0.eventTime.max).to.equal(new Date(130_000).toISOString());
    expect(p1.eventTime.watermark).to.equal(new Date(120_000).toISOString());
  });

  it('keeps a memory table of more rows than fit in one call frame', async () => {
    const session = Session.local();
    const input = new MemoryStream(session, { v: 'int' });
    const q = await input.toDS().writeStream.format('memory').queryName('big').start();
    input.addData(Array.from({ length: 200_000 }, (_, v) => ({ v })));
    await q.processAllAvailable();
    await q.stop();
    const t = session.table('big');
    expect(t).to.have.length(200_000);
    expect(t[199_999]).to.deep.equal({ v: 199_999 });
  });
});
