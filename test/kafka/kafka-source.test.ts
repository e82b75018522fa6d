import * as path from 'node:path';
import { expect } from 'chai';
import { Session } from '../../lib/api/session.js';
import type { StreamingQuery } from '../../lib/api/streaming-query.js';
import { SluiceError } from '../../lib/errors.js';
import type { QueryProgress } from '../../lib/exec/progress.js';
import { KafkaClient } from '../../lib/kafka/client.js';
import type { ProduceMessage } from '../../lib/kafka/messages.js';
import { type KafkaReadSpec, READ_AHEAD_TASKS, readKafkaTask } from '../../lib/sources/kafka/kafka-read-task.js';
import { type KafkaOffsets, type KafkaSource, rateLimit, splitRanges } from '../../lib/sources/kafka/kafka-source.js';
import { createSource } from '../../lib/sources/source-uri.js';
import { useKafkaFixture } from '../support/kafka-fixture.js';

/** The Kafka source through the engine (in-process), one option at a time, against the mock broker. */
describe('kafka source', function () {
  this.timeout(60_000);

  let n = 0;
  const kafka = useKafkaFixture({ name: 'source' });

  const produce = (t: string, messages: ProduceMessage[]) => kafka.client.produce(t, messages);

  interface Run {
    rows: Record<string, unknown>[];
    progress: QueryProgress[];
    error: Error | null;
  }

  /**
   * Runs a query over `uri` with Trigger.AvailableNow into a memory table; `ckpt` names a checkpoint to
   * reuse. An error from start or from a batch is returned, not thrown.
   */
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
      return { rows: [], progress: [], error: err as Error };
    }
    let error: Error | null = null;
    await query.awaitTermination().catch((e: Error) => {
      error = e;
    });
    return { rows: session.table(name), progress: query.recentProgress, error };
  }

  const uriOf = (t: string, options = ''): string =>
    `kafka://${kafka.broker.bootstrap}/${t}?startingOffsets=earliest${options ? `&${options}` : ''}`;

  it('gives rows key, value, topic, partition, offset and timestamp (string values by default)', async () => {
    const t = await kafka.topic(2);
    await produce(t, [
      { key: 'a', value: 'first', partition: 0, timestamp: 1_700_000_000_000 },
      { key: null, value: 'second', partition: 1, timestamp: 1_700_000_001_000 },
      { key: 'c', value: null, partition: 0, timestamp: 1_700_000_002_000 },
    ]);
    const { rows, error } = await run(uriOf(t));
    expect(error).to.equal(null);
    expect(rows).to.deep.equal([
      { key: 'a', value: 'first', topic: t, partition: 0, offset: 0, timestamp: new Date(1_700_000_000_000) },
      { key: 'c', value: null, topic: t, partition: 0, offset: 1, timestamp: new Date(1_700_000_002_000) },
      { key: null, value: 'second', topic: t, partition: 1, offset: 0, timestamp: new Date(1_700_000_001_000) },
    ]);
  });

  it('reads values and keys as bytes, and headers with includeHeaders', async () => {
    const t = await kafka.topic(1);
    await produce(t, [
      { key: Buffer.from([1, 2]), value: Buffer.from([0, 255, 7]), headers: { h1: 'x', h2: Buffer.from([9]) } },
    ]);
    const { rows } = await run(uriOf(t, 'valueFormat=bytes&keyFormat=bytes&includeHeaders=true'));
    expect(rows).to.have.length(1);
    expect(Buffer.from(rows[0].key as Uint8Array)).to.deep.equal(Buffer.from([1, 2]));
    expect(Buffer.from(rows[0].value as Uint8Array)).to.deep.equal(Buffer.from([0, 255, 7]));
    const headers = (rows[0].headers as { key: string; value: Uint8Array }[]).map((h) => [h.key, [...h.value]]);
    expect(headers).to.deep.equal([
      ['h1', [0x78]],
      ['h2', [9]],
    ]);
  });

  describe('json values', () => {
    let t = '';
    before(async () => {
      t = await kafka.topic(1);
      await produce(t, [
        { key: 'u1', value: '{"user":"u1","amount":5,"timestamp":"2024-01-01T00:00:00Z"}' },
        { key: 'u2', value: 'not json' },
        { key: 'u3', value: '{"user":"u3","amount":"many"}' },
        { key: 'u4', value: null },
        { key: 'u5', value: '{"user":"u5","amount":7}' },
      ]);
    });
    const schema = encodeURIComponent('user STRING, amount LONG, timestamp TIMESTAMP, _corrupt_record STRING');

    it('PERMISSIVE (default) keeps malformed values as rows of nulls with the text in the corrupt-record column', async () => {
      const { rows, progress } = await run(uriOf(t, `valueFormat=json&schema=${schema}`));
      expect(rows.map((r) => [r.user, r.amount, r._corrupt_record, r.key, r.offset])).to.deep.equal([
        ['u1', 5, null, 'u1', 0],
        [null, null, 'not json', 'u2', 1],
        ['u3', null, '{"user":"u3","amount":"many"}', 'u3', 2],
        [null, null, null, 'u4', 3],
        ['u5', 7, null, 'u5', 4],
      ]);
      // A JSON field named like a Kafka column hides the Kafka column.
      expect(rows[0].timestamp).to.deep.equal(new Date('2024-01-01T00:00:00Z'));
      expect(Object.keys(rows[0])).to.deep.equal([
        'user',
        'amount',
        'timestamp',
        '_corrupt_record',
        'key',
        'topic',
        'partition',
        'offset',
      ]);
      // Kept rows count as malformed too: 'not json' and the string amount.
      expect(progress.reduce((a, p) => a + p.sources[0].numMalformedRows, 0)).to.equal(2);
    });

    it('DROPMALFORMED drops them and counts them in progress', async () => {
      const { rows, progress } = await run(
        uriOf(t, 'valueFormat=json&schema=user%20STRING,amount%20LONG&mode=DROPMALFORMED'),
      );
      expect(rows.map((r) => [r.user, r.amount, r.offset])).to.deep.equal([
        ['u1', 5, 0],
        [null, null, 3],
        ['u5', 7, 4],
      ]);
      expect(progress.reduce((a, p) => a + p.sources[0].numMalformedRows, 0)).to.equal(2);
    });

    it('FAILFAST stops the query naming the partition and offset', async () => {
      const { error } = await run(uriOf(t, 'valueFormat=json&schema=user%20STRING,amount%20LONG&mode=FAILFAST'));
      expect(error).to.be.instanceOf(SluiceError);
      expect(error!.message).to.contain(`Kafka ${t}-0 at offset 1`).and.contain('not json');
    });

    it('needs a schema', () => {
      expect(() =>
        createSource('kafka', { bootstrap: kafka.broker.bootstrap, topic: t, valueFormat: 'json' }),
      ).to.throw(SluiceError, /needs a schema/);
    });
  });

  describe('startingOffsets', () => {
    let t = '';
    before(async () => {
      t = await kafka.topic(2);
      await produce(
        t,
        [0, 1, 2, 3].map((i) => ({ value: `old${i}`, partition: i % 2 })),
      );
    });

    it('latest (the default) skips what is there when the query first starts, and keeps that start across restarts', async () => {
      const ckpt = `c${++n}`;
      const uri = `kafka://${kafka.broker.bootstrap}/${t}`;
      const first = await run(uri, ckpt);
      expect(first.rows).to.deep.equal([]);
      await produce(t, [
        { value: 'new0', partition: 0 },
        { value: 'new1', partition: 1 },
      ]);
      const second = await run(uri, ckpt);
      expect(second.rows.map((r) => r.value)).to.deep.equal(['new0', 'new1']);
    });

    it('earliest reads from the first stored offset', async () => {
      const { rows } = await run(uriOf(t));
      expect(rows.map((r) => r.value)).to.include.members(['old0', 'old1', 'old2', 'old3']);
    });

    it('JSON gives an offset per partition (-2 earliest, -1 latest)', async () => {
      const offsets = encodeURIComponent(JSON.stringify({ [t]: { 0: 1, 1: -2 } }));
      const { rows } = await run(`kafka://${kafka.broker.bootstrap}/${t}?startingOffsets=${offsets}`);
      expect(rows.filter((r) => r.partition === 0).map((r) => r.offset)[0]).to.equal(1);
      expect(rows.filter((r) => r.partition === 1).map((r) => r.offset)[0]).to.equal(0);
    });

    it('JSON must name every partition, and only existing ones', async () => {
      const missing = await run(
        `kafka://${kafka.broker.bootstrap}/${t}?startingOffsets=${encodeURIComponent(JSON.stringify({ [t]: { 0: 0 } }))}`,
      );
      expect(missing.error?.message).to.contain(`does not name ${t}-1`);
      const extra = await run(
        `kafka://${kafka.broker.bootstrap}/${t}?startingOffsets=${encodeURIComponent(JSON.stringify({ [t]: { 0: 0, 1: 0, 5: 0 } }))}`,
      );
      expect(extra.error?.message).to.contain(`names ${t}-5, which the query does not read`);
      expect(() => createSource('kafka', { bootstrap: 'x:1', topic: t, startingOffsets: 'soon' })).to.throw(
        SluiceError,
        /startingOffsets must be/,
      );
    });
  });

  it('maxOffsetsPerTrigger caps each batch and shares the cap by lag', async () => {
    const t = await kafka.topic(2);
    await produce(t, [
      ...Array.from({ length: 90 }, (_, i) => ({ value: `a${i}`, partition: 0 })),
      ...Array.from({ length: 30 }, (_, i) => ({ value: `b${i}`, partition: 1 })),
    ]);
    const { rows, progress } = await run(uriOf(t, 'maxOffsetsPerTrigger=40'));
    expect(rows).to.have.length(120);
    expect(progress.map((p) => p.numInputRows)).to.deep.equal([40, 40, 40]);
    // Batch 0: 90 and 30 behind, so 30 and 10 of the 40.
    expect(progress[0].sources[0].endOffset).to.deep.equal({ [t]: { 0: 30, 1: 10 } });
    expect(progress[0].sources[0].metrics).to.include({
      maxOffsetsBehindLatest: 60,
      minOffsetsBehindLatest: 20,
      totalOffsetsBehindLatest: 80,
    });
    expect(progress[2].sources[0].metrics).to.include({ maxOffsetsBehindLatest: 0, totalOffsetsBehindLatest: 0 });
  });

  it('rateLimit rounds small shares up so every partition with data moves', () => {
    const r = rateLimit(
      [
        { topic: 'x', partition: 0, from: 0, until: 1000 },
        { topic: 'x', partition: 1, from: 5, until: 6 },
      ],
      10,
    );
    expect(r.map((x) => x.until)).to.deep.equal([9, 6]);
    expect(rateLimit([{ topic: 'x', partition: 0, from: 0, until: 5 }], 10)[0].until).to.equal(5);
  });

  it('minPartitions splits large ranges into several read tasks that read every record once', async () => {
    const t = await kafka.topic(2);
    await produce(t, [
      ...Array.from({ length: 300 }, (_, i) => ({ value: `a${i}`, partition: 0 })),
      ...Array.from({ length: 100 }, (_, i) => ({ value: `b${i}`, partition: 1 })),
    ]);
    const ranges = splitRanges(
      [
        { topic: t, partition: 0, from: 0, until: 300 },
        { topic: t, partition: 1, from: 0, until: 100 },
      ],
      8,
    );
    expect(ranges.map((r) => [r.partition, r.from, r.until])).to.deep.equal([
      [0, 0, 50],
      [0, 50, 100],
      [0, 100, 150],
      [0, 150, 200],
      [0, 200, 250],
      [0, 250, 300],
      [1, 0, 50],
      [1, 50, 100],
    ]);
    const source = createSource('kafka', {
      bootstrap: kafka.broker.bootstrap,
      topic: t,
      startingOffsets: 'earliest',
      minPartitions: 5,
    }) as KafkaSource;
    const dir = kafka.path('src');
    await source.initialize({ dir, index: 0, queryId: 'q' });
    try {
      const end = await source.latestOffset(null, {});
      expect(await source.planRead(null, end!, 0)).to.have.length(5);
    } finally {
      await source.stop();
    }
    const { rows } = await run(uriOf(t, 'minPartitions=5'));
    expect(rows.map((r) => r.value)).to.have.members([
      ...Array.from({ length: 300 }, (_, i) => `a${i}`),
      ...Array.from({ length: 100 }, (_, i) => `b${i}`),
    ]);
  });

  it('a read task in the driver thread fetches the planned ranges after it ahead; each task reads exactly its own range', async () => {
    const t = await kafka.topic(3);
    await produce(
      t,
      [0, 1, 2].flatMap((p) => Array.from({ length: 60 }, (_, i) => ({ value: `p${p}-${i}`, partition: p }))),
    );
    // No retries: a fetch while the broker is down fails at once, so a task that succeeds then was prefetched.
    const source = createSource('kafka', {
      bootstrap: kafka.broker.bootstrap,
      topic: t,
      startingOffsets: 'earliest',
      minPartitions: READ_AHEAD_TASKS + 4,
      'kafka.retries': '0',
      'kafka.retry.backoff.ms': '10',
    }) as KafkaSource;
    await source.initialize({ dir: kafka.path('src'), index: 0, queryId: 'q' });
    const read = async (spec: KafkaReadSpec): Promise<string[]> =>
      (await readKafkaTask(spec, { batchId: 0 })).batches.flatMap((b) => b.getChild('value')!.toArray() as string[]);
    const expected = (spec: KafkaReadSpec): string[] =>
      Array.from({ length: spec.untilOffset - spec.fromOffset }, (_, i) => `p${spec.partition}-${spec.fromOffset + i}`);
    try {
      const specs = (await source.planRead(null, (await source.latestOffset(null, {}))!, 0)).map(
        (task) => task.spec as KafkaReadSpec,
      );
      const last = READ_AHEAD_TASKS + 1;
      expect(specs).to.have.length.at.least(last + 1);
      expect(specs.map((s) => s.following ?? null)).to.deep.equal(
        specs.map((_, i) =>
          i + 1 < specs.length
            ? specs.slice(i + 1, i + 1 + READ_AHEAD_TASKS).map((s) => ({
                topic: s.topic,
                partition: s.partition,
                fromOffset: s.fromOffset,
                untilOffset: s.untilOffset,
              }))
            : null,
        ),
      );
      expect(await read(specs[0])).to.deep.equal(expected(specs[0]));
      await new Promise((r) => setTimeout(r, 300));
      await kafka.broker.command('down 1');
      try {
        expect(await read(specs[1]), 'served by the prefetch').to.deep.equal(expected(specs[1]));
        expect(await read(specs[last - 1]), "served by the first task's prefetch").to.deep.equal(
          expected(specs[last - 1]),
        );
        const err = await read(specs[last]).then(
          () => null,
          (e: Error) => e,
        );
        expect(
          (err as SluiceError | null)?.code,
          'its prefetch failed while the broker was down, and so did its own fetch',
        ).to.equal('KAFKA_UNAVAILABLE');
      } finally {
        await kafka.broker.command('up 1');
      }
      for (const spec of specs.slice(2)) expect(await read(spec)).to.deep.equal(expected(spec));
    } finally {
      await source.stop();
    }
  });

  it('subscribePattern reads every matching topic, including one created while the query runs', async () => {
    const prefix = `pat${++n}`;
    await kafka.broker.command(`topic ${prefix}-a 1`);
    await kafka.broker.command(`topic other${n} 1`);
    await produce(`${prefix}-a`, [{ value: 'a0' }]);
    await produce(`other${n}`, [{ value: 'x' }]);
    const session = Session.local({ threads: 0 });
    const query = await session.readStream
      .format('kafka')
      .option('kafka.bootstrap.servers', kafka.broker.bootstrap)
      .option('subscribePattern', `${prefix}-.*`)
      .option('startingOffsets', 'earliest')
      .load()
      .writeStream.format('memory')
      .queryName('pattern')
      .option('checkpointLocation', kafka.path('c'))
      .trigger({ processingTime: 50 })
      .start();
    try {
      await query.processAllAvailable();
      expect(session.table('pattern').map((r) => r.value)).to.deep.equal(['a0']);
      await kafka.broker.command(`topic ${prefix}-b 2`);
      await produce(`${prefix}-b`, [
        { value: 'b0', partition: 0 },
        { value: 'b1', partition: 1 },
      ]);
      await produce(`${prefix}-a`, [{ value: 'a1' }]);
      const deadline = Date.now() + 10_000;
      while (session.table('pattern').length < 4 && Date.now() < deadline) await query.processAllAvailable();
      expect(session.table('pattern').map((r) => r.value)).to.have.members(['a0', 'a1', 'b0', 'b1']);
    } finally {
      await query.stop();
    }
  });

  it('resumes from the checkpoint offsets and commits them to groupId for lag tools', async () => {
    const t = await kafka.topic(2);
    const group = `lag-${n}`;
    const ckpt = `c${++n}`;
    await produce(t, [
      { value: 'a', partition: 0 },
      { value: 'b', partition: 1 },
      { value: 'c', partition: 1 },
    ]);
    const first = await run(uriOf(t, `kafka.group.id=${group}`), ckpt);
    expect(first.rows.map((r) => r.value)).to.deep.equal(['a', 'b', 'c']);
    expect(await kafka.client.fetchGroupOffsets(group, t)).to.deep.equal([
      { partition: 0, offset: 1 },
      { partition: 1, offset: 2 },
    ]);
    await produce(t, [{ value: 'd', partition: 0 }]);
    // A group offset moved back by someone else changes nothing: the checkpoint is the source of truth.
    await kafka.client.commitGroupOffsets(group, [
      { topic: t, partition: 0, offset: 0 },
      { topic: t, partition: 1, offset: 0 },
    ]);
    const second = await run(uriOf(t, `kafka.group.id=${group}`), ckpt);
    expect(second.rows.map((r) => r.value)).to.deep.equal(['d']);
    expect(await kafka.client.fetchGroupOffsets(group, t)).to.deep.equal([
      { partition: 0, offset: 2 },
      { partition: 1, offset: 2 },
    ]);
  });

  it('Trigger.AvailableNow stops at the offsets seen when it started', async () => {
    const t = await kafka.topic(1);
    await produce(t, [{ value: 'a' }, { value: 'b' }]);
    const source = createSource('kafka', {
      bootstrap: kafka.broker.bootstrap,
      topic: t,
      startingOffsets: 'earliest',
    }) as KafkaSource;
    await source.initialize({ dir: kafka.path('src'), index: 0, queryId: 'q' });
    try {
      await source.prepareForTriggerAvailableNow();
      await produce(t, [{ value: 'c' }]);
      const end = (await source.latestOffset(null, {})) as KafkaOffsets;
      expect(end).to.deep.equal({ [t]: { 0: 2 } });
      expect(await source.latestOffset(end, {})).to.deep.equal(end);
    } finally {
      await source.stop();
    }
  });

  describe('failOnDataLoss', () => {
    let t = '';
    const ckpts = { strict: `c${++n}`, lenient: `c${++n}` };
    let low = 0;

    before(async () => {
      t = await kafka.topic(1);
      await produce(t, [{ value: 's0' }, { value: 's1' }]);
      expect((await run(uriOf(t), ckpts.strict)).rows).to.have.length(2);
      expect((await run(uriOf(t, 'failOnDataLoss=false'), ckpts.lenient)).rows).to.have.length(2);
      // The mock keeps at most 5 MiB per partition: 7 MiB more pushes the first records out.
      const big = await KafkaClient.connect(kafka.broker.bootstrap, { produceBatchSize: 5 });
      try {
        await big.produce(
          t,
          Array.from({ length: 70 }, () => ({ value: Buffer.alloc(100 * 1024, 'x') })),
        );
        await big.produce(t, [{ value: 'tail' }]);
      } finally {
        await big.close();
      }
      [{ low }] = await kafka.client.fetchOffsets(t);
      expect(low, 'the broker dropped records the queries have not read').to.be.greaterThan(2);
    });

    it('true (default): the query stops with an error naming the lost offsets', async () => {
      const { error, rows } = await run(uriOf(t), ckpts.strict);
      expect(error).to.be.instanceOf(SluiceError);
      expect((error as SluiceError).code).to.equal('KAFKA_DATA_LOSS');
      expect(error!.message).to.contain(`offsets 2..${low - 1} of ${t}-0`);
      expect((error as SluiceError).hint).to.contain('failOnDataLoss=false');
      expect(rows).to.deep.equal([]);
    });

    it('false: the rest is read and the lost offsets are counted in progress', async () => {
      const { error, rows, progress } = await run(uriOf(t, 'failOnDataLoss=false'), ckpts.lenient);
      expect(error).to.equal(null);
      expect(rows.at(-1)!.value).to.equal('tail');
      expect(rows[0].offset).to.equal(low);
      expect(rows).to.have.length(73 - low);
      expect(progress.reduce((a, p) => a + (p.sources[0].metrics?.dataLossOffsets ?? 0), 0)).to.equal(low - 2);
    });
  });

  it('refuses unknown options and bad values with the accepted ones', () => {
    expect(() => createSource('kafka', { bootstrap: 'x:1', topic: 't', maxOffsetPerTrigger: 5 })).to.throw(
      SluiceError,
      /unknown option 'maxOffsetPerTrigger'/,
    );
    expect(() => createSource('kafka', { bootstrap: 'x:1', topic: 't', minPartitions: 0 })).to.throw(
      SluiceError,
      /minPartitions/,
    );
    expect(() => createSource('kafka', { bootstrap: 'x:1' })).to.throw(SluiceError, /needs a topic/);
    expect(() => createSource('kafka', { bootstrap: 'x:1', topic: 't', subscribePattern: 'a.*' })).to.throw(
      SluiceError,
      /one of subscribe, subscribePattern and assign, not subscribe and subscribePattern/,
    );
    expect(() =>
      createSource('kafka', { bootstrap: 'x:1', topic: 't', valueFormat: 'string', schema: 'a STRING' }),
    ).to.throw(SluiceError, /takes no schema/);
  });
});
