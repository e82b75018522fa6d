import * as fs from 'node:fs';
import * as path from 'node:path';
import { expect } from 'chai';
import { count, window } from '../../lib/api/functions.js';
import { Session } from '../../lib/api/session.js';
import type { StreamingQuery } from '../../lib/api/streaming-query.js';
import { SluiceError } from '../../lib/errors.js';
import type { QueryProgress } from '../../lib/exec/progress.js';
import type { KafkaClient } from '../../lib/kafka/client.js';
import type { ProduceMessage } from '../../lib/kafka/messages.js';
import { resolveStartingOffsets } from '../../lib/sources/kafka/kafka-offset-range-limit.js';
import { createSource } from '../../lib/sources/source-uri.js';
import { runCli } from '../support/cli.js';
import { useKafkaFixture } from '../support/kafka-fixture.js';

/** Spark's Kafka source options beyond subscribe and startingOffsets, through source URIs, against the mock broker. */
describe('kafka source options', function () {
  this.timeout(60_000);

  let n = 0;
  const kafka = useKafkaFixture({ name: 'options' });

  const produce = (t: string, messages: ProduceMessage[]) => kafka.client.produce(t, messages);
  const values = (rows: Record<string, unknown>[]) => rows.map((r) => r.value);

  interface Run {
    rows: Record<string, unknown>[];
    progress: QueryProgress[];
    error: Error | null;
    queryId: string;
  }

  /** Runs a query over `uri` with Trigger.AvailableNow into a memory table; errors are returned. */
  async function run(uri: string, ckpt = `c${++n}`): Promise<Run> {
    const session = Session.local({ threads: 0 });
    const name = `q${++n}`;
    let query: StreamingQuery;
    try {
      query = await session.readStream
        .load(uri)
        .writeStream.format('memory')
        .queryName(name)
        .option('checkpointLocation', path.join(kafka.root, ckpt))
        .trigger({ availableNow: true })
        .start();
    } catch (err) {
      return { rows: [], progress: [], error: err as Error, queryId: '' };
    }
    let error: Error | null = null;
    await query.awaitTermination().catch((e: Error) => {
      error = e;
    });
    return { rows: session.table(name), progress: query.recentProgress, error, queryId: query.id };
  }

  const sum = (progress: QueryProgress[], metric: string): number =>
    progress.reduce((a, p) => a + (p.sources[0].metrics?.[metric] ?? 0), 0);

  describe('assign and subscribePattern', () => {
    it('assign reads only the named partitions', async () => {
      const t = await kafka.topic(3);
      await produce(
        t,
        [0, 1, 2, 3, 4, 5].map((i) => ({ value: `v${i}`, partition: i % 3 })),
      );
      const assign = encodeURIComponent(JSON.stringify({ [t]: [0, 2] }));
      const { rows, error } = await run(`kafka://${kafka.broker.bootstrap}?assign=${assign}&startingOffsets=earliest`);
      expect(error).to.equal(null);
      expect(rows.map((r) => [r.partition, r.value])).to.have.deep.members([
        [0, 'v0'],
        [0, 'v3'],
        [2, 'v2'],
        [2, 'v5'],
      ]);
    });

    it('sluice run takes subscribePattern in the source URI, with no topic in it', async () => {
      const [a, b] = [await kafka.topic(1, 'dep-'), await kafka.topic(1, 'dep-')];
      await produce(a, [{ value: 's1,2.5' }, { value: 's1,1,true' }]);
      await produce(b, [{ value: 's2,4' }]);
      const out = kafka.path('out');
      const res = await runCli([
        'run',
        'deposit-sessions',
        '--source',
        `kafka://${kafka.broker.bootstrap}?subscribePattern=dep-.*&startingOffsets=earliest`,
        '--sink',
        `file:${out}`,
        '--checkpoint',
        kafka.path('c'),
        '--trigger',
        'available-now',
        '--quiet',
      ]);
      expect(res.code, res.stderr).to.equal(0);
      const rows = (fs.readdirSync(out) as string[])
        .filter((f) => f.endsWith('.jsonl'))
        .flatMap((f) => fs.readFileSync(path.join(out, f), 'utf8').trim().split('\n'))
        .map((l) => JSON.parse(l) as { sessionId: string });
      expect([...new Set(rows.map((r) => r.sessionId))].sort()).to.deep.equal(['s1', 's2']);
    });

    it('assign of a partition that does not exist, or with subscribe, is a clear error', async () => {
      const t = await kafka.topic(1);
      const missing = await run(
        `kafka://${kafka.broker.bootstrap}?assign=${encodeURIComponent(JSON.stringify({ [t]: [0, 4] }))}`,
      );
      expect(missing.error).to.be.instanceOf(SluiceError);
      expect(missing.error!.message).to.contain(`assign names ${t}-4, which does not exist`);
      expect(() => createSource('kafka', { bootstrap: 'x:1', topic: t, assign: `{"${t}":[0]}` })).to.throw(
        SluiceError,
        /one of subscribe, subscribePattern and assign, not subscribe and assign/,
      );
      expect(() => createSource('kafka', { bootstrap: 'x:1', assign: '{"t":"0"}' })).to.throw(
        SluiceError,
        /assign must be JSON naming topics and their partitions/,
      );
    });

    it('subscribePattern works in the URI form without a topic, and reads topics created later', async () => {
      const a = await kafka.topic(1, 'pat-');
      await produce(a, [{ value: 'a0' }]);
      const ckpt = `c${++n}`;
      const uri = `kafka://${kafka.broker.bootstrap}?subscribePattern=pat-.*&startingOffsets=earliest`;
      const first = await run(uri, ckpt);
      expect(first.error).to.equal(null);
      expect(values(first.rows)).to.deep.equal(['a0']);
      const b = await kafka.topic(1, 'pat-');
      await produce(b, [{ value: 'b0' }]);
      // The run that finds the new topic joins it at its earliest offset, then reads it.
      expect(values((await run(uri, ckpt)).rows)).to.deep.equal(['b0']);
    });
  });

  describe('starting by timestamp', () => {
    it('resolves each partition to the offset the broker finds for its time, by the strategy where it finds none', async () => {
      const ends = [
        { topic: 't', partition: 0, low: 0, high: 10 },
        { topic: 't', partition: 1, low: 0, high: 20 },
      ];
      const asked: Array<{ partition: number; timestamp: number }> = [];
      const client = {
        offsetsForTimes: async (_t: string, times: Array<{ partition: number; timestamp: number }>) => {
          asked.push(...times);
          return times.map((x) => ({ partition: x.partition, offset: x.partition === 0 ? 4 : null }));
        },
      } as unknown as KafkaClient;
      const byTimestamp = { kind: 'byTimestamp' as const, timestamps: { t: { '0': 1000, '1': 2000 } } };
      expect(await resolveStartingOffsets(client, ends, byTimestamp, 'latest')).to.deep.equal({
        t: { '0': 4, '1': 20 },
      });
      expect(asked).to.deep.equal([
        { partition: 0, timestamp: 1000 },
        { partition: 1, timestamp: 2000 },
      ]);
      let err: unknown;
      await resolveStartingOffsets(client, ends, { kind: 'timestamp', timestamp: 1000 }, 'error').catch((e) => {
        err = e;
      });
      expect(err).to.be.instanceOf(SluiceError);
      expect((err as Error).message).to.contain('no record of t-1 (1970-01-01T00:00:01.000Z)');
    });

    it('startingTimestamp asks the broker (the mock finds no offset for any time): error, or latest by the strategy', async () => {
      const t = await kafka.topic(2);
      await produce(t, [
        { value: 'old0', partition: 0, timestamp: 1_000 },
        { value: 'old1', partition: 1, timestamp: 2_000 },
      ]);
      const failed = await run(`kafka://${kafka.broker.bootstrap}/${t}?startingTimestamp=2024-01-01T00:00:00Z`);
      expect(failed.error).to.be.instanceOf(SluiceError);
      expect(failed.error!.message).to.contain(`no record of ${t}-0 (2024-01-01T00:00:00.000Z), ${t}-1`);
      expect((failed.error as SluiceError).hint).to.contain('startingOffsetsByTimestampStrategy=latest');
      const ckpt = `c${++n}`;
      const uri = `kafka://${kafka.broker.bootstrap}/${t}?startingTimestamp=1700000000000&startingOffsetsByTimestampStrategy=latest`;
      expect((await run(uri, ckpt)).rows).to.deep.equal([]);
      await produce(t, [{ value: 'new0', partition: 0 }]);
      expect(values((await run(uri, ckpt)).rows)).to.deep.equal(['new0']);
    });

    it('startingOffsetsByTimestamp must name every partition', async () => {
      const t = await kafka.topic(2);
      const spec = encodeURIComponent(JSON.stringify({ [t]: { '0': 1000 } }));
      const { error } = await run(`kafka://${kafka.broker.bootstrap}/${t}?startingOffsetsByTimestamp=${spec}`);
      expect(error).to.be.instanceOf(SluiceError);
      expect(error!.message).to.contain(`startingOffsetsByTimestamp does not name ${t}-1`);
    });
  });

  describe('endingOffsets', () => {
    /** Counts per 10-second window of JSON events `{ts}`, in append mode: a window is written once it is closed. */
    async function windows(
      uri: string,
      ckpt: string,
    ): Promise<{ rows: Record<string, unknown>[]; error: Error | null }> {
      const session = Session.local({ threads: 0 });
      const name = `w${++n}`;
      const q = await session.readStream
        .load(uri)
        .withWatermark('ts', '5 seconds')
        .groupBy(window('ts', '10 seconds'))
        .agg(count('*').alias('n'))
        .writeStream.format('memory')
        .queryName(name)
        .outputMode('append')
        .option('checkpointLocation', path.join(kafka.root, ckpt))
        .trigger({ availableNow: true })
        .start();
      let error: Error | null = null;
      await q.awaitTermination().catch((e: Error) => {
        error = e;
      });
      return { rows: session.table(name), error };
    }
    const event = (s: number): ProduceMessage => ({ value: JSON.stringify({ ts: new Date(s * 1000).toISOString() }) });

    it('a bounded run reads up to the partition ends of its first start, then the last batch closes every window', async () => {
      const t = await kafka.topic(1);
      await produce(t, [event(1), event(2), event(11), event(12), event(18)]);
      const base = `kafka://${kafka.broker.bootstrap}/${t}?startingOffsets=earliest&valueFormat=json&schema=ts%20TIMESTAMP`;
      // Unbounded, the window [10, 20) is still open when the input runs out (the watermark is at 13 s).
      const open = await windows(base, `c${++n}`);
      expect(open.rows.map((r) => r.n)).to.deep.equal([2]);
      const ckpt = `c${++n}`;
      const bounded = await windows(`${base}&endingOffsets=latest`, ckpt);
      expect(bounded.error).to.equal(null);
      expect(bounded.rows.map((r) => r.n)).to.deep.equal([2, 3]);
      // Records written after the first start are past the end: a restart reads nothing more.
      await produce(t, [event(21), event(40)]);
      expect((await windows(`${base}&endingOffsets=latest`, ckpt)).rows).to.deep.equal([]);
    });

    it('JSON ending offsets stop each partition where they say; -1 is the end at the first start', async () => {
      const t = await kafka.topic(2);
      await produce(
        t,
        [0, 1, 2, 3, 4, 5].map((i) => ({ value: `v${i}`, partition: i % 2 })),
      );
      const ending = encodeURIComponent(JSON.stringify({ [t]: { '0': 2, '1': -1 } }));
      const { rows, error } = await run(
        `kafka://${kafka.broker.bootstrap}/${t}?startingOffsets=earliest&endingOffsets=${ending}`,
      );
      expect(error).to.equal(null);
      expect(values(rows)).to.have.members(['v0', 'v2', 'v1', 'v3', 'v5']);
      expect(() => createSource('kafka', { bootstrap: 'x:1', topic: t, endingOffsets: `{"${t}":{"0":-2}}` })).to.throw(
        SluiceError,
        /endingOffsets must be latest or JSON/,
      );
    });
  });

  it('minOffsetsPerTrigger waits for enough records, but no longer than maxTriggerDelay', async () => {
    const t = await kafka.topic(1);
    const session = Session.local({ threads: 0 });
    const q = await session.readStream
      .load(`kafka://${kafka.broker.bootstrap}/${t}?startingOffsets=earliest&minOffsetsPerTrigger=5&maxTriggerDelay=3s`)
      .writeStream.format('memory')
      .queryName(`m${++n}`)
      .option('checkpointLocation', kafka.path('c'))
      .trigger({ processingTime: '100 milliseconds' })
      .start();
    try {
      const batches = () => q.recentProgress.filter((p) => p.numInputRows > 0).map((p) => p.numInputRows);
      const until = async (cond: () => boolean, ms: number) => {
        const end = Date.now() + ms;
        while (!cond() && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
      };
      // The first trigger never waits; with nothing to read it runs no batch.
      await new Promise((r) => setTimeout(r, 300));
      await produce(
        t,
        [1, 2, 3].map((i) => ({ value: `a${i}` })),
      );
      await new Promise((r) => setTimeout(r, 1000));
      expect(batches(), '3 records are fewer than 5').to.deep.equal([]);
      await produce(
        t,
        [4, 5].map((i) => ({ value: `a${i}` })),
      );
      await until(() => batches().length === 1, 2000);
      expect(batches(), '5 records run at once').to.deep.equal([5]);
      await produce(t, [{ value: 'b1' }]);
      const start = Date.now();
      await until(() => batches().length === 2, 10_000);
      expect(batches()).to.deep.equal([5, 1]);
      expect(Date.now() - start, 'one record waits for maxTriggerDelay').to.be.above(1500);
    } finally {
      await q.stop();
    }
  });

  it('groupIdPrefix commits progress to <prefix>-<query id>; kafka.group.id to that group', async () => {
    const t = await kafka.topic(2);
    await produce(t, [
      { value: 'a', partition: 0 },
      { value: 'b', partition: 1 },
      { value: 'c', partition: 1 },
    ]);
    const prefixed = await run(`kafka://${kafka.broker.bootstrap}/${t}?startingOffsets=earliest&groupIdPrefix=monitor`);
    expect(prefixed.error).to.equal(null);
    expect(await kafka.client.fetchGroupOffsets(`monitor-${prefixed.queryId}`, t)).to.deep.equal([
      { partition: 0, offset: 1 },
      { partition: 1, offset: 2 },
    ]);
    const named = await run(`kafka://${kafka.broker.bootstrap}/${t}?startingOffsets=earliest&kafka.group.id=lag-${t}`);
    expect(named.error).to.equal(null);
    expect((await kafka.client.fetchGroupOffsets(`lag-${t}`, t)).map((o) => o.offset)).to.deep.equal([1, 2]);
  });

  it('passes kafka.* consumer settings to the client and names the accepted ones for any other', async () => {
    const t = await kafka.topic(1);
    const big = 'x'.repeat(5000);
    await produce(t, [{ value: big }, { value: big }, { value: 'last' }]);
    // A fetch size below one record still reads every record (Kafka's rule: the first batch comes whole).
    const small = await run(
      `kafka://${kafka.broker.bootstrap}/${t}?startingOffsets=earliest&kafka.max.partition.fetch.bytes=100&kafka.fetch.max.wait.ms=10&kafka.isolation.level=read_committed`,
    );
    expect(small.error).to.equal(null);
    expect(values(small.rows)).to.deep.equal([big, big, 'last']);
    const unknown = await run(`kafka://${kafka.broker.bootstrap}/${t}?kafka.fetch.min.bytez=1`);
    expect(unknown.error).to.be.instanceOf(SluiceError);
    expect(unknown.error!.message).to.equal("the kafka source does not take the Kafka setting 'kafka.fetch.min.bytez'");
    expect((unknown.error as SluiceError).hint).to.contain('kafka.isolation.level, kafka.max.partition.fetch.bytes');
    expect(() => createSource('kafka', { bootstrap: 'x:1', topic: t, 'kafka.auto.offset.reset': 'earliest' })).to.throw(
      SluiceError,
      /does not take the Kafka setting 'kafka.auto.offset.reset'/,
    );
    expect(() =>
      createSource('kafka', { bootstrap: 'x:1', topic: t, 'kafka.isolation.level': 'serializable' }),
    ).to.throw(SluiceError, /read_committed or read_uncommitted/);
  });

  describe('tombstones and badRecordsPath', () => {
    it('a tombstone is a row with a null value (null value columns for JSON), counted as numTombstones', async () => {
      const t = await kafka.topic(1);
      await produce(t, [
        { key: 'k1', value: '{"user":"u1","amount":5}' },
        { key: 'k1', value: null },
        { key: 'k2', value: '{"user":"u2","amount":7}' },
      ]);
      const json = await run(
        `kafka://${kafka.broker.bootstrap}/${t}?startingOffsets=earliest&valueFormat=json&schema=user%20STRING,amount%20LONG`,
      );
      expect(json.rows.map((r) => [r.key, r.user, r.amount, r.offset])).to.deep.equal([
        ['k1', 'u1', 5, 0],
        ['k1', null, null, 1],
        ['k2', 'u2', 7, 2],
      ]);
      expect(sum(json.progress, 'numTombstones')).to.equal(1);
      expect(json.progress.reduce((a, p) => a + p.sources[0].numMalformedRows, 0)).to.equal(0);
      const text = await run(`kafka://${kafka.broker.bootstrap}/${t}?startingOffsets=earliest`);
      expect(text.rows.map((r) => r.value)).to.deep.equal([
        '{"user":"u1","amount":5}',
        null,
        '{"user":"u2","amount":7}',
      ]);
      expect(sum(text.progress, 'numTombstones')).to.equal(1);
    });

    it('badRecordsPath sets malformed values aside with their partition, offset and reason', async () => {
      const t = await kafka.topic(1);
      await produce(t, [
        { value: '{"user":"u1","amount":5}' },
        { value: 'not json' },
        { value: '{"user":"u3","amount":"many"}' },
        { value: '{"user":"u4","amount":9}' },
      ]);
      const dir = kafka.path('bad');
      const { rows, progress, error } = await run(
        `kafka://${kafka.broker.bootstrap}/${t}?startingOffsets=earliest&valueFormat=json&schema=user%20STRING,amount%20LONG&badRecordsPath=${encodeURIComponent(dir)}`,
      );
      expect(error).to.equal(null);
      expect(rows.map((r) => r.user)).to.deep.equal(['u1', 'u4']);
      expect(progress.reduce((a, p) => a + p.sources[0].numMalformedRows, 0)).to.equal(2);
      const files = (fs.readdirSync(dir, { recursive: true }) as string[]).filter((f) => f.endsWith('.json'));
      expect(files).to.have.length(1);
      const bad = fs
        .readFileSync(path.join(dir, files[0]), 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as { path: string; offset: number; record: string; reason: string });
      expect(bad.map((b) => [b.path, b.offset, b.record])).to.deep.equal([
        [`Kafka ${t}-0`, 1, 'not json'],
        [`Kafka ${t}-0`, 2, '{"user":"u3","amount":"many"}'],
      ]);
      expect(bad[1].reason).to.contain("field 'amount'");
    });
  });
});
