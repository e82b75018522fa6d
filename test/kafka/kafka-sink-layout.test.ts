import * as crypto from 'node:crypto';
import { Table } from 'apache-arrow';
import { expect } from 'chai';
import { batchFromRows } from '../../lib/arrow/columns.js';
import { type SchemaSpec, schemaFromSpec } from '../../lib/arrow/schema.js';
import { SluiceError } from '../../lib/errors.js';
import { sendRequest, type shareConnects } from '../../lib/kafka/kafkajs-internals.js';
import { fetchRequest } from '../../lib/kafka/protocol/fetch/v16.js';
import { KafkaSink } from '../../lib/sinks/kafka-sink.js';
import { consumeWithKcat } from '../support/kafka-broker.js';
import { useKafkaFixture } from '../support/kafka-fixture.js';

/** The Kafka sink's record layout with Spark's columns, record batch sizes and producer settings. */
describe('kafka sink record layout', function () {
  this.timeout(60_000);

  const kafka = useKafkaFixture({ name: 'layout' });

  const table = (rows: Record<string, unknown>[], spec: SchemaSpec): Table =>
    new Table([batchFromRows(rows, schemaFromSpec(spec))]);

  /** Writes `data` as batch 0 of a new sink with `options`; an error is returned, not thrown. */
  async function write(options: Record<string, unknown>, data: Table): Promise<Error | null> {
    const s = new KafkaSink({ 'kafka.bootstrap.servers': kafka.broker.bootstrap, ...options });
    try {
      await s.initialize({ queryId: 'q', checkpointDir: kafka.path('ck'), outputMode: 'append' });
      await s.addBatch(0, data);
      return null;
    } catch (err) {
      return err as Error;
    } finally {
      await s.close();
    }
  }

  /** Each record batch of partition 0 as [first offset, record count, bytes] (the mock answers one batch per fetch). */
  async function batches(t: string): Promise<Array<[number, number, number]>> {
    const [{ high }] = await kafka.client.fetchOffsets(t);
    const out: Array<[number, number, number]> = [];
    const client = kafka.client as unknown as {
      leaderOf(t: string, p: number): Promise<Parameters<typeof shareConnects>[0]>;
    };
    const leader = await client.leaderOf(t, 0);
    for (let offset = 0; offset < high; ) {
      const res = await sendRequest(
        leader,
        fetchRequest(t, 0, offset, { version: 11, isolationLevel: 0, maxWaitMs: 10, maxBytes: 1 }),
      );
      const set = res.responses[0].partitions[0].recordSet;
      const bytes = 12 + set.readInt32BE(4 + 8);
      const count = set.readInt32BE(4 + 57);
      out.push([offset, count, bytes]);
      offset += count;
    }
    return out;
  }

  it('keys records by the key column, routes by the partition column, keeps repeated headers in order (read by kcat)', async () => {
    const t = await kafka.topic(3);
    const headers = (pairs: Array<[string, string]>) =>
      pairs.map(([key, value]) => ({ key, value: Buffer.from(value) }));
    const err = await write(
      { topic: t },
      table(
        [
          {
            key: 'acct-1',
            value: 'a',
            partition: 2,
            headers: headers([
              ['h', '1'],
              ['x', 'y'],
              ['h', '2'],
            ]),
          },
          { key: 'acct-2', value: 'b', partition: null, headers: headers([['h', '3']]) },
          { key: 'acct-2', value: 'c', partition: null, headers: [] },
        ],
        { key: 'string', value: 'string', partition: 'int', headers: [{ key: 'string', value: 'binary' }] },
      ),
    );
    expect(err).to.equal(null);
    const records = consumeWithKcat(kafka.broker.bootstrap, t);
    const a = records.find((r) => r.value === 'a')!;
    expect([a.key, a.partition]).to.deep.equal(['acct-1', 2]);
    expect(a.headers).to.equal('h=1,x=y,h=2,sluice=q:0:0');
    const acct2 = records.filter((r) => r.key === 'acct-2');
    expect(acct2.map((r) => r.value)).to.deep.equal(['b', 'c']);
    expect(acct2[0].partition, 'one key, one partition').to.equal(acct2[1].partition);
    expect(acct2[0].headers).to.equal('h=3,sluice=q:0:1');
  });

  it('refuses a partition the topic does not have, before writing anything', async () => {
    const t = await kafka.topic(2);
    const err = await write(
      { topic: t },
      table(
        [
          { value: 'a', partition: 0 },
          { value: 'b', partition: 5 },
        ],
        { value: 'string', partition: 'int' },
      ),
    );
    expect(err).to.be.instanceOf(SluiceError);
    expect(err!.message).to.equal(`row 1 of batch 0 has partition 5, but topic ${t} has 2 partitions`);
    expect((await kafka.client.fetchOffsets(t)).map((p) => p.high)).to.deep.equal([0, 0]);
  });

  it('cuts batches under the size limit: three 900 KB values go as three batches under 1 MB', async () => {
    const t = await kafka.topic(1);
    const big = (c: string) => c.repeat(900_000);
    const err = await write(
      { topic: t },
      table([{ value: big('a') }, { value: big('b') }, { value: big('c') }], { value: 'string' }),
    );
    expect(err).to.equal(null);
    const written = await batches(t);
    expect(written.map(([offset, count]) => [offset, count])).to.deep.equal([
      [0, 1],
      [1, 1],
      [2, 1],
    ]);
    for (const [, , bytes] of written) expect(bytes).to.be.at.most(1 << 20);
    const values = (await kafka.client.fetchRange(t, 0, 0, 3)).map((m) => m.value!.toString()[0]);
    expect(values).to.deep.equal(['a', 'b', 'c']);
  });

  it('takes the limit from kafka.max.message.bytes where the broker does not report the topic config', async () => {
    const t = await kafka.topic(1);
    const rows = Array.from({ length: 20 }, (_, i) => ({ value: `${i}`.padStart(500, '.') }));
    expect(await write({ topic: t, 'kafka.max.message.bytes': '2000' }, table(rows, { value: 'string' }))).to.equal(
      null,
    );
    const written = await batches(t);
    expect(written.reduce((a, [, count]) => a + count, 0)).to.equal(20);
    expect(written.length).to.be.above(5);
    for (const [, , bytes] of written) expect(bytes).to.be.at.most(2000);
  });

  it('a record over the limit stops the batch naming its size and the limit, and nothing is written', async () => {
    const t = await kafka.topic(1);
    const err = await write(
      { topic: t, 'kafka.max.request.size': 10_000 },
      table([{ value: 'small' }, { value: 'x'.repeat(20_000) }], { value: 'string' }),
    );
    expect(err).to.be.instanceOf(SluiceError);
    expect((err as SluiceError).code).to.equal('KAFKA_RECORD_TOO_LARGE');
    expect(err!.message).to.match(
      /^row 1 of batch 0 makes a Kafka record batch of 20\d{3} bytes, over the limit of 10000 bytes \(option kafka.max.request.size\)$/,
    );
    expect((await kafka.client.fetchOffsets(t))[0].high).to.equal(0);
  });

  it('bounds compressed batches by their compressed size: 20 rows of 50 KB that compress well go several to a batch under 100 KB', async () => {
    const t = await kafka.topic(1);
    const rows = Array.from({ length: 20 }, (_, i) => ({ value: String.fromCharCode(97 + i).repeat(50_000) }));
    const limit = 100_000;
    expect(
      await write(
        { topic: t, compression: 'zstd', 'kafka.max.message.bytes': limit },
        table(rows, { value: 'string' }),
      ),
    ).to.equal(null);
    const written = await batches(t);
    // Cut by their uncompressed size they would go one row to a batch.
    expect(written.length).to.be.at.most(4);
    expect(written.reduce((a, [, count]) => a + count, 0)).to.equal(20);
    for (const [, , bytes] of written) expect(bytes).to.be.at.most(limit);
    const values = (await kafka.client.fetchRange(t, 0, 0, 20)).map((m) => m.value!.toString());
    expect(values).to.deep.equal(rows.map((r) => r.value));
  });

  it('splits compressed batches that are still over the limit: 40 rows of 30 KB random bytes with lz4 under 100 KB', async () => {
    const t = await kafka.topic(1);
    const rows = Array.from({ length: 40 }, () => ({ value: crypto.randomBytes(30_000).toString('base64') }));
    const limit = 100_000;
    expect(
      await write({ topic: t, compression: 'lz4', 'kafka.max.message.bytes': limit }, table(rows, { value: 'string' })),
    ).to.equal(null);
    const written = await batches(t);
    expect(written.reduce((a, [, count]) => a + count, 0)).to.equal(40);
    for (const [, , bytes] of written) expect(bytes).to.be.at.most(limit);
    // 40 KB of base64 per row, which lz4 hardly shrinks: two rows to a batch, sometimes one.
    expect(written.length).to.be.within(20, 26);
    const values = (await kafka.client.fetchRange(t, 0, 0, 40)).map((m) => m.value!.toString());
    expect(values).to.deep.equal(rows.map((r) => r.value));
  });

  it('a record over the limit goes when it fits compressed; one that does not fit compressed stops the batch', async () => {
    const t = await kafka.topic(1);
    const limit = 100_000;
    const options = { topic: t, compression: 'lz4', 'kafka.max.message.bytes': limit };
    expect(await write(options, table([{ value: 'x'.repeat(500_000) }], { value: 'string' }))).to.equal(null);
    expect((await kafka.client.fetchRange(t, 0, 0, 1))[0].value!.length).to.equal(500_000);
    const random = crypto.randomBytes(150_000);
    const err = await write(options, table([{ value: random }], { value: 'binary' }));
    expect(err).to.be.instanceOf(SluiceError);
    expect(err!.message).to.match(
      /^row 0 of batch 0 makes a Kafka record batch of 150\d{3} bytes \(lz4-compressed\), over the limit of 100000 bytes \(option kafka.max.message.bytes\)$/,
    );
    expect((await kafka.client.fetchOffsets(t))[0].high).to.equal(1);
  });

  it('maps kafka.acks, refuses kafka.linger.ms saying why, and names the settings it takes for any other', async () => {
    const t = await kafka.topic(1);
    const rows = table([{ value: 'a' }], { value: 'string' });
    expect(await write({ topic: t, 'kafka.acks': '1' }, rows)).to.equal(null);
    expect((await kafka.client.fetchOffsets(t))[0].high).to.equal(1);
    expect(() => new KafkaSink({ 'kafka.bootstrap.servers': 'x:1', topic: t, 'kafka.linger.ms': '5' }))
      .to.throw(SluiceError, "the kafka sink does not take the Kafka setting 'kafka.linger.ms'")
      .with.property('hint')
      .that.matches(/sends each micro-batch's records at once/);
    expect(() => new KafkaSink({ 'kafka.bootstrap.servers': 'x:1', topic: t, 'kafka.acks': '0' })).to.throw(
      SluiceError,
      /kafka.acks of the kafka sink must be all, -1 or 1/,
    );
    let err: unknown;
    try {
      new KafkaSink({ 'kafka.bootstrap.servers': 'x:1', topic: t, 'kafka.batch.sise': '10' });
    } catch (e) {
      err = e;
    }
    expect(err).to.be.instanceOf(SluiceError);
    expect((err as SluiceError).message).to.equal("the kafka sink does not take the Kafka setting 'kafka.batch.sise'");
    expect((err as SluiceError).hint).to.contain('kafka.acks, kafka.max.request.size');
  });
});
