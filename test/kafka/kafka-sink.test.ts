import * as fs from 'node:fs';
import * as path from 'node:path';
import { Table } from 'apache-arrow';
import { expect } from 'chai';
import { Session } from '../../lib/api/session.js';
import { batchFromRows } from '../../lib/arrow/columns.js';
import { type SchemaSpec, schemaFromSpec } from '../../lib/arrow/schema.js';
import { SluiceError } from '../../lib/errors.js';
import type { KafkaMessage } from '../../lib/kafka/messages.js';
import { KafkaSink, parseSluiceHeader, SLUICE_HEADER } from '../../lib/sinks/kafka-sink.js';
import { MemoryStream } from '../../lib/testing/memory-stream.js';
import { useKafkaFixture } from '../support/kafka-fixture.js';

interface Out {
  partition: number;
  key: string | null;
  value: string | null;
  headers: Record<string, string>;
}

/** The Kafka sink: record layout, exactly-once replay of a batch, and failures that must not commit. */
describe('kafka sink', function () {
  this.timeout(60_000);

  let n = 0;
  const kafka = useKafkaFixture({ name: 'sink' });

  /** Every record of a topic, partition by partition. */
  async function readTopic(t: string): Promise<Out[]> {
    const out: Out[] = [];
    for (const p of await kafka.client.fetchOffsets(t)) {
      const messages: KafkaMessage[] = await kafka.client.fetchRange(t, p.partition, p.low, p.high);
      for (const m of messages) {
        const headers: Record<string, string> = {};
        for (const [k, v] of Object.entries(m.headers ?? {})) headers[k] = (Array.isArray(v) ? v[0] : v).toString();
        out.push({
          partition: p.partition,
          key: m.key?.toString() ?? null,
          value: m.value?.toString() ?? null,
          headers,
        });
      }
    }
    return out;
  }

  /** Where a record the sink wrote comes from, by its sluice header. */
  function origin(o: Out): { queryId: string; batchId: number; seq: number } {
    const parsed = parseSluiceHeader(o.headers[SLUICE_HEADER] ?? '');
    if (!parsed) throw new Error(`record ${JSON.stringify(o)} has no sluice header`);
    return parsed;
  }

  function table(rows: Record<string, unknown>[], spec: SchemaSpec): Table {
    return new Table([batchFromRows(rows, schemaFromSpec(spec))]);
  }

  /** A sink initialised as query `queryId` with its own (or a given) checkpoint directory. */
  async function sink(
    options: Record<string, unknown>,
    queryId = 'query-1',
    dir = kafka.path('ck'),
  ): Promise<KafkaSink> {
    const s = new KafkaSink({ 'kafka.bootstrap.servers': kafka.broker.bootstrap, ...options });
    await s.initialize({ queryId, checkpointDir: dir, outputMode: 'append' });
    return s;
  }

  it('writes the value and key columns, user headers and one sluice header <query>:<batch>:<seq>', async () => {
    const t = await kafka.topic(1);
    const s = await sink({ topic: t });
    try {
      await s.addBatch(
        4,
        table(
          [
            { key: 'k1', value: 'v1', headers: [{ key: 'trace', value: Buffer.from('abc') }] },
            { key: null, value: 'v2', headers: null },
          ],
          { key: 'string', value: 'string', headers: [{ key: 'string', value: 'binary' }] },
        ),
      );
    } finally {
      await s.close();
    }
    expect(await readTopic(t)).to.deep.equal([
      { partition: 0, key: 'k1', value: 'v1', headers: { trace: 'abc', sluice: 'query-1:4:0' } },
      { partition: 0, key: null, value: 'v2', headers: { sluice: 'query-1:4:1' } },
    ]);
  });

  it('writes whole rows as JSON when there is no value column, keyed by keyColumn', async () => {
    const t = await kafka.topic(3);
    const s = await sink({ topic: t, keyColumn: 'user' });
    try {
      await s.addBatch(
        0,
        table(
          [
            { user: 'ann', total: 3, at: new Date(0) },
            { user: 'bob', total: 4.5, at: null },
            { user: 'ann', total: 1, at: null },
          ],
          { user: 'string', total: 'double', at: 'timestamp' },
        ),
      );
    } finally {
      await s.close();
    }
    const out = await readTopic(t);
    expect(out.map((o) => o.value)).to.have.members([
      '{"user":"ann","total":3,"at":"1970-01-01T00:00:00.000Z"}',
      '{"user":"bob","total":4.5,"at":null}',
      '{"user":"ann","total":1,"at":null}',
    ]);
    const ann = out.filter((o) => o.key === 'ann');
    expect(ann).to.have.length(2);
    expect(ann[0].partition, 'one key, one partition').to.equal(ann[1].partition);
  });

  it('spreads keyless rows over the partitions by position', async () => {
    const t = await kafka.topic(3);
    const s = await sink({ topic: t });
    try {
      await s.addBatch(
        0,
        table(
          Array.from({ length: 9 }, (_, i) => ({ value: `v${i}` })),
          { value: 'string' },
        ),
      );
    } finally {
      await s.close();
    }
    const out = await readTopic(t);
    for (const o of out) expect(o.partition).to.equal(origin(o).seq % 3);
  });

  it('routes rows by a topic column, and refuses rows without a topic', async () => {
    const [a, b] = [await kafka.topic(1), await kafka.topic(1)];
    const s = await sink({});
    try {
      await s.addBatch(
        0,
        table(
          [
            { topic: a, value: 'to a' },
            { topic: b, value: 'to b' },
            { topic: a, value: 'a again' },
          ],
          { topic: 'string', value: 'string' },
        ),
      );
      const err = await s
        .addBatch(1, table([{ topic: null, value: 'x' }], { topic: 'string', value: 'string' }))
        .catch((e) => e);
      expect(err).to.be.instanceOf(SluiceError);
      expect(err.message).to.contain('row 0 of batch 1 has no topic');
      const noColumn = await s.addBatch(2, table([{ value: 'x' }], { value: 'string' })).catch((e) => e);
      expect(noColumn.message).to.contain('set the topic option or give the rows a topic column');
    } finally {
      await s.close();
    }
    expect((await readTopic(a)).map((o) => o.value)).to.deep.equal(['to a', 'a again']);
    expect((await readTopic(b)).map((o) => o.value)).to.deep.equal(['to b']);
  });

  it('checks its options', () => {
    expect(() => new KafkaSink({ topic: 'x' })).to.throw(SluiceError, /needs kafka.bootstrap.servers/);
    expect(() => new KafkaSink({ bootstrap: 'h:1', topik: 'x' })).to.throw(SluiceError, /no option 'topik'/);
    expect(() => new KafkaSink({ bootstrap: 'h:1', valueFormat: 'avro' })).to.throw(SluiceError, /valueFormat/);
  });

  it('valueFormat=string writes the value column as text and needs one', async () => {
    const t = await kafka.topic(1);
    const s = await sink({ topic: t, valueFormat: 'string' });
    try {
      await s.addBatch(0, table([{ value: 42 }], { value: 'long' }));
      const err = await s.addBatch(1, table([{ v: 'x' }], { v: 'string' })).catch((e) => e);
      expect(err.message).to.contain('needs a value column');
    } finally {
      await s.close();
    }
    expect((await readTopic(t)).map((o) => o.value)).to.deep.equal(['42']);
  });

  describe('exactly once', () => {
    const rows = (k: number) => Array.from({ length: k }, (_, i) => ({ key: `k${i % 4}`, value: `v${i}` }));
    const spec = { key: 'string', value: 'string' } as const;

    it('a batch handed over again is not written again', async () => {
      const t = await kafka.topic(2);
      const dir = kafka.path('ck');
      for (let attempt = 0; attempt < 3; attempt++) {
        const s = await sink({ topic: t }, 'q', dir);
        try {
          await s.addBatch(7, table(rows(20), spec));
        } finally {
          await s.close();
        }
      }
      const out = await readTopic(t);
      expect(out.map((o) => o.value)).to.have.members(rows(20).map((r) => r.value));
    });

    it('a replay after a partial write sends only the missing rows', async () => {
      const t = await kafka.topic(3);
      const dir = kafka.path('ck');
      const first = await sink({ topic: t }, 'q', dir);
      try {
        // The first attempt died after the first 7 of 30 rows (same rows, same positions).
        await first.addBatch(0, table(rows(7), spec));
      } finally {
        await first.close();
      }
      const second = await sink({ topic: t }, 'q', dir);
      try {
        await second.addBatch(0, table(rows(30), spec));
        await second.addBatch(1, table([{ key: 'k0', value: 'next' }], spec));
      } finally {
        await second.close();
      }
      const out = await readTopic(t);
      expect(out.map((o) => o.value)).to.have.members([...rows(30).map((r) => r.value), 'next']);
      expect(
        out
          .filter((o) => origin(o).batchId === 0)
          .map((o) => origin(o).seq)
          .sort((x, y) => x - y),
      ).to.deep.equal(Array.from({ length: 30 }, (_, i) => i));
    });

    it('only headers of this query and batch, with a seq, count as written (any of a repeated header)', async () => {
      const t = await kafka.topic(1);
      const dir = kafka.path('ck');
      const first = await sink({ topic: t }, 'q', dir);
      try {
        await first.addBatch(1, table(rows(2), spec));
      } finally {
        await first.close();
      }
      // After the marker: near misses of 'q:1:<seq>' (another batch, no seq, another query, the old header
      // names), and seq 3 claimed in the second value of a repeated header.
      await kafka.client.produce(t, [
        { value: 'x', headers: { sluice: 'q:11:2' } },
        { value: 'x', headers: { sluice: 'q:1:' } },
        { value: 'x', headers: { sluice: 'q:1:2x' } },
        { value: 'x', headers: { sluice: 'qq:1:2' } },
        { value: 'x', headers: { sluice: 'q:1:2:2' } },
        { value: 'x', headers: { 'sluice.query': 'q', 'sluice.batch': '1', 'sluice.seq': '2' } },
        { value: 'claims 3', headers: { sluice: ['other:0:0', 'q:1:3'] } },
      ]);
      const second = await sink({ topic: t }, 'q', dir);
      try {
        await second.addBatch(1, table(rows(4), spec));
      } finally {
        await second.close();
      }
      const values = (await readTopic(t)).map((o) => o.value);
      expect(values.filter((v) => v !== 'x')).to.deep.equal(['v0', 'v1', 'claims 3', 'v2']);
    });

    it('parseSluiceHeader reads the header back, and refuses other values', () => {
      expect(parseSluiceHeader('0b9e-4f:12:345')).to.deep.equal({ queryId: '0b9e-4f', batchId: 12, seq: 345 });
      expect(parseSluiceHeader(Buffer.from('q:0:0'))).to.deep.equal({ queryId: 'q', batchId: 0, seq: 0 });
      for (const bad of ['q:1', 'q:1:', 'q:x:1', 'q:1:2x', '']) expect(parseSluiceHeader(bad), bad).to.equal(null);
    });

    it('records of another query in the same topic do not count as written', async () => {
      const t = await kafka.topic(1);
      const other = await sink({ topic: t }, 'other-query');
      const mine = await sink({ topic: t }, 'my-query');
      try {
        await other.addBatch(0, table(rows(5), spec));
        await mine.addBatch(0, table(rows(5), spec));
        await mine.addBatch(0, table(rows(5), spec));
      } finally {
        await other.close();
        await mine.close();
      }
      const out = await readTopic(t);
      expect(out.filter((o) => origin(o).queryId === 'my-query')).to.have.length(5);
      expect(out.filter((o) => origin(o).queryId === 'other-query')).to.have.length(5);
    });
  });

  it('a topic that does not exist fails the batch, commits nothing, and the restart writes it once', async () => {
    const t = `missing${++n}`;
    const ckpt = kafka.path('ck');
    const runQuery = async () => {
      const session = Session.local({ threads: 0 });
      const input = new MemoryStream<{ value: string }>(session, { value: 'string' });
      input.addData([{ value: 'a' }, { value: 'b' }]);
      const q = await input
        .toDS()
        .writeStream.format('kafka')
        .option('kafka.bootstrap.servers', kafka.broker.bootstrap)
        .option('topic', t)
        .option('checkpointLocation', ckpt)
        .trigger({ availableNow: true })
        .start();
      return q.awaitTermination().then(
        () => null,
        (e: Error) => e,
      );
    };
    const err = await runQuery();
    expect(err).to.be.instanceOf(SluiceError);
    expect(err!.message).to.contain(`Kafka topic ${t} does not exist`);
    expect(fs.existsSync(path.join(ckpt, 'offsets', '0')), 'batch 0 was planned').to.equal(true);
    expect(fs.existsSync(path.join(ckpt, 'commits', '0')), 'batch 0 is not committed').to.equal(false);
    expect(await kafka.client.listPartitions([t]), 'the sink did not create the topic').to.deep.equal([]);
    await kafka.broker.command(`topic ${t} 2`);
    expect(await runQuery()).to.equal(null);
    expect(fs.existsSync(path.join(ckpt, 'commits', '0'))).to.equal(true);
    expect((await readTopic(t)).map((o) => o.value)).to.have.members(['a', 'b']);
  });
});
