import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { Table } from 'apache-arrow';
import { expect } from 'chai';
import snappy from 'snappy';
import { Session } from '../../lib/api/session.js';
import { batchFromRows } from '../../lib/arrow/columns.js';
import { schemaFromSpec } from '../../lib/arrow/schema.js';
import { SluiceError } from '../../lib/errors.js';
import { KafkaClient } from '../../lib/kafka/client.js';
import { registerKafkajsCodecs } from '../../lib/kafka/kafkajs-codecs.js';
import { kafkajsDecodeRecordSet } from '../../lib/kafka/kafkajs-internals.js';
import type { ProduceMessage } from '../../lib/kafka/messages.js';
import { decodeLz4Frames } from '../../lib/kafka/protocol/codecs/lz4.js';
import { COMPRESSION_TYPES, codecById, codecByName } from '../../lib/kafka/protocol/compression.js';
import { compressRecordBatch, decodeRecordBatches, encodeRecordBatch } from '../../lib/kafka/protocol/record-batch.js';
import { KafkaSink } from '../../lib/sinks/kafka-sink.js';
import { parseSinkUri } from '../../lib/sinks/sink-factory.js';
import { runCli, TEST_APPS } from '../support/cli.js';
import { consumeWithKcat } from '../support/kafka-broker.js';
import { useKafkaFixture } from '../support/kafka-fixture.js';
import { storedBatches } from '../support/kafka-stored-batches.js';

const CODECS = ['gzip', 'snappy', 'lz4', 'zstd'] as const;
const CODEC_ID = { none: 0, gzip: 1, snappy: 2, lz4: 3, zstd: 4 } as const;

/** A record set as a Fetch response holds it: int32 size, then the batches. */
function recordSet(...batches: Buffer[]): Buffer {
  const size = Buffer.alloc(4);
  size.writeInt32BE(batches.reduce((a, b) => a + b.length, 0));
  return Buffer.concat([size, ...batches]);
}

/** Batches with base offsets set, as the broker assigns them. */
function atOffsets(batches: Buffer[]): Buffer[] {
  let offset = 0;
  return batches.map((b) => {
    const out = Buffer.from(b);
    out.writeBigInt64BE(BigInt(offset), 0);
    offset += out.readInt32BE(57);
    return out;
  });
}

describe('kafka compression: codecs and record batches', () => {
  const messages = (from: number, n: number): ProduceMessage[] =>
    Array.from({ length: n }, (_, j) => {
      const i = from + j;
      return {
        key: i % 3 === 0 ? null : `k${i}`,
        value: JSON.stringify({ n: i, text: 'é'.repeat(i % 50), pad: '-'.repeat(100) }),
        headers: i % 2 ? { h: ['a', `b${i}`], trace: Buffer.from([i & 0xff]) } : undefined,
        timestamp: 1_700_000_000_000 + i * 17,
      };
    });

  it('round-trips batches of every codec, mixed with uncompressed ones, through the fast decoder', async () => {
    const plain = [encodeRecordBatch(messages(0, 40), 0)];
    for (const [i, name] of CODECS.entries()) {
      const codec = codecByName(name)!;
      plain.push(await compressRecordBatch(encodeRecordBatch(messages(40 + i * 300, 300), 0), codec));
    }
    const batches = atOffsets(plain);
    for (const [i, name] of CODECS.entries()) {
      expect(batches[i + 1].readInt16BE(21) & 7, name).to.equal(CODEC_ID[name]);
      expect(batches[i + 1].length, `${name} made the batch smaller`).to.be.below(plain[0].length * 5);
    }
    const decoded = await decodeRecordBatches(recordSet(...batches));
    const want = messages(0, 40 + CODECS.length * 300);
    expect(decoded!.batchEnd).to.equal(want.length);
    expect(decoded!.records.toMessages().map((m) => m.offset)).to.deep.equal(want.map((_, i) => i));
    expect(decoded!.records.toMessages().map((m) => m.value!.toString())).to.deep.equal(want.map((m) => m.value));
    expect(decoded!.records.toMessages().map((m) => m.key?.toString() ?? null)).to.deep.equal(want.map((m) => m.key));
    expect(decoded!.records.toMessages().map((m) => m.timestamp)).to.deep.equal(want.map((m) => m.timestamp));
    const withHeaders = decoded!.records.message(1);
    expect(withHeaders.headers).to.deep.equal({ h: [Buffer.from('a'), Buffer.from('b1')], trace: Buffer.from([1]) });
  });

  it('registers the codecs with kafkajs, whose decoder (pre-0.11 record sets) then reads every codec', async () => {
    const batches = atOffsets([
      await compressRecordBatch(encodeRecordBatch(messages(0, 50), 0), codecByName('zstd')!),
      await compressRecordBatch(encodeRecordBatch(messages(50, 50), 0), codecByName('snappy')!),
      await compressRecordBatch(encodeRecordBatch(messages(100, 50), 0), codecByName('lz4')!),
    ]);
    registerKafkajsCodecs();
    const got = await kafkajsDecodeRecordSet(recordSet(...batches));
    expect(got.map((m) => m.value!.toString())).to.deep.equal(messages(0, 150).map((m) => m.value));
  });

  it('reads LZ4 frames with linked blocks, checksums and several frames, as other producers write them', async () => {
    const first = Buffer.from('abcdefghijklmnopqrstuvwxyz0123456789');
    // Block 2 is one match of 20 bytes reaching 36 bytes back, into block 1, then 5 literals.
    const second = Buffer.from([0x0f, 36, 0, 1, 0x50, ...Buffer.from('!!!!!')]);
    const frame = (flags: number): Buffer => {
      const sum = flags & 0x10 ? Buffer.alloc(4) : Buffer.alloc(0);
      const word = (n: number) => {
        const b = Buffer.alloc(4);
        b.writeUInt32LE(n >>> 0);
        return b;
      };
      return Buffer.concat([
        Buffer.from([0x04, 0x22, 0x4d, 0x18, 0x40 | flags, 0x40, 0]),
        word(0x80000000 | first.length),
        first,
        sum,
        word(second.length),
        second,
        sum,
        word(0),
        flags & 0x04 ? Buffer.alloc(4) : Buffer.alloc(0),
      ]);
    };
    const want = `${first}abcdefghijklmnopqrst!!!!!`;
    expect(decodeLz4Frames(frame(0)).toString()).to.equal(want);
    expect(decodeLz4Frames(frame(0x10 | 0x04)).toString(), 'block and content checksums').to.equal(want);
    expect(decodeLz4Frames(Buffer.concat([frame(0), frame(0x04)])).toString()).to.equal(want + want);
    expect(() => decodeLz4Frames(Buffer.from('not lz4 at all'))).to.throw(/malformed LZ4 frame/);
  });

  it("reads snappy-java's framing (the Java producer's) as well as raw snappy (librdkafka's)", async () => {
    const parts = ['{"a":1}'.repeat(50), '{"b":2}'.repeat(70)].map((s) => Buffer.from(s));
    const block = (b: Buffer) => {
      const c = snappy.compressSync(b);
      const len = Buffer.alloc(4);
      len.writeInt32BE(c.length);
      return Buffer.concat([len, c]);
    };
    const header = Buffer.from([0x82, 0x53, 0x4e, 0x41, 0x50, 0x50, 0x59, 0x00, 0, 0, 0, 1, 0, 0, 0, 1]);
    const java = Buffer.concat([header, ...parts.map(block)]);
    const codec = codecByName('snappy')!;
    expect((await codec.decompress(java)).toString()).to.equal(parts.join(''));
    expect((await codec.decompress(await codec.compress(parts[1]))).toString()).to.equal(parts[1].toString());
  });

  it('refuses an unknown compression id and a batch that does not decompress, naming the offset', async () => {
    expect(() => codecById(5)).to.throw(SluiceError, /compression id 5/);
    const good = atOffsets([await compressRecordBatch(encodeRecordBatch(messages(0, 20), 0), codecByName('zstd')!)]);
    const broken = Buffer.from(good[0]);
    broken.fill(0x41, 61 + 10);
    const err = await decodeRecordBatches(recordSet(broken)).catch((e: Error) => e);
    expect(err).to.be.instanceOf(SluiceError);
    expect((err as SluiceError).code).to.equal('KAFKA_CORRUPT_BATCH');
    expect((err as Error).message).to.match(/^the zstd record batch at offset 0 does not decompress: /);
  });

  it('the sink takes compression= or kafka.compression.type, case-insensitively, and refuses anything else', () => {
    const sink = (o: Record<string, unknown>) => new KafkaSink({ 'kafka.bootstrap.servers': 'h:1', topic: 't', ...o });
    expect(sink({}).compression).to.equal('none');
    expect(sink({ compression: 'ZSTD' }).compression).to.equal('zstd');
    expect(sink({ 'kafka.compression.type': 'lz4' }).compression).to.equal('lz4');
    expect(sink({ compression: 'gzip', 'kafka.compression.type': 'gzip' }).compression).to.equal('gzip');
    const { options } = parseSinkUri('kafka://h:1/t?kafka.compression.type=snappy');
    expect(new KafkaSink(options).compression).to.equal('snappy');
    expect(() => sink({ compression: 'brotli' })).to.throw(SluiceError, /one of none, gzip, snappy, lz4, zstd/);
    expect(() => sink({ compression: 'lz4', 'kafka.compression.type': 'zstd' })).to.throw(
      SluiceError,
      /compression=lz4 and kafka.compression.type=zstd/,
    );
    expect(COMPRESSION_TYPES).to.deep.equal(['none', 'gzip', 'snappy', 'lz4', 'zstd']);
  });
});

/** Compressed topics against the test broker: written by kcat and by the broker's own producer, read by sluice. */
describe('kafka compression: topics other clients wrote, and what the sink writes', function () {
  this.timeout(120_000);
  const EVENTS = 3000;
  const events = Array.from({ length: EVENTS }, (_, i) =>
    JSON.stringify({ id: i, user: `u${i % 7}`, amount: (i % 9) - 2, note: 'x'.repeat(i % 40) }),
  );

  let n = 0;
  const kafka = useKafkaFixture({ name: 'compression' });

  /** Every value of `t` read by a sluice query (Kafka source, memory sink, Trigger.AvailableNow). */
  async function readWithSluice(t: string, options = ''): Promise<Record<string, unknown>[]> {
    const session = Session.local({ threads: 0 });
    const name = `q${++n}`;
    const query = await session.readStream
      .load(`kafka://${kafka.broker.bootstrap}/${t}?startingOffsets=earliest&maxOffsetsPerTrigger=1000${options}`)
      .writeStream.format('memory')
      .queryName(name)
      .option('checkpointLocation', path.join(kafka.root, name))
      .trigger({ availableNow: true })
      .start();
    await query.awaitTermination();
    return session.table(name);
  }

  function kcatProduce(t: string, codec: string, lines: string[], partition: number): void {
    const r = spawnSync(
      'kcat',
      ['-b', kafka.broker.bootstrap, '-P', '-t', t, '-p', String(partition), '-z', codec, '-X', 'linger.ms=20'],
      { input: lines.map((l) => `${l}\n`).join(''), encoding: 'utf8', timeout: 30_000 },
    );
    expect(r.status, r.stderr).to.equal(0);
  }

  for (const codec of CODECS) {
    it(`reads a ${codec} topic kcat wrote, every record once and in order`, async () => {
      const t = await kafka.topic(2);
      kcatProduce(t, codec, events.slice(0, 2000), 0);
      kcatProduce(t, codec, events.slice(2000), 1);
      for (const p of [0, 1]) {
        const batches = await storedBatches(kafka.broker.bootstrap, t, p);
        expect(batches.reduce((a, b) => a + b.records, 0)).to.equal(p === 0 ? 2000 : EVENTS - 2000);
        // librdkafka sends a batch that compression would not make smaller (a lone first record) as it is.
        const compressed = batches.filter((b) => b.compression === CODEC_ID[codec]);
        expect(
          compressed.reduce((a, b) => a + b.records, 0),
          `${codec} records on partition ${p}`,
        ).to.be.above(990);
        expect(batches.filter((b) => b.compression !== CODEC_ID[codec] && b.records > 5)).to.deep.equal([]);
      }
      const rows = (await readWithSluice(t)).sort(
        (a, b) => (a.partition as number) - (b.partition as number) || (a.offset as number) - (b.offset as number),
      );
      expect(rows.map((r) => r.value)).to.deep.equal(events);
      expect(rows.map((r) => `${r.partition}:${r.offset}`)).to.deep.equal(
        events.map((_, i) => (i < 2000 ? `0:${i}` : `1:${i - 2000}`)),
      );
    });
  }

  it("reads what the test broker's own producer (librdkafka) wrote with each codec, mixed in one partition", async () => {
    const t = await kafka.topic(1);
    const order = ['none', ...CODECS, 'lz4', 'none', 'zstd'];
    for (const codec of order) await kafka.broker.command(`produce ${t} 0 ${codec} 700`);
    const batches = await storedBatches(kafka.broker.bootstrap, t, 0);
    const seen = [...new Set(batches.map((b) => b.compression))].sort();
    expect(seen, 'every codec is on the topic').to.deep.equal([0, 1, 2, 3, 4]);
    const rows = await readWithSluice(t, '&includeHeaders=true');
    expect(rows).to.have.length(order.length * 700);
    const values = rows.map((r) => JSON.parse(r.value as string) as { n: number; codec: string });
    expect(values.map((v) => `${v.codec}:${v.n}`)).to.deep.equal(
      order.flatMap((c) => Array.from({ length: 700 }, (_, i) => `${c}:${i}`)),
    );
    expect(rows.map((r) => r.offset)).to.deep.equal(rows.map((_, i) => i));
    expect(rows[701].key).to.equal('k1');
    expect(
      (rows[701].headers as { key: string; value: Uint8Array }[]).map((h) => [h.key, Buffer.from(h.value).toString()]),
    ).to.deep.equal([['src', 'mockbroker']]);
  });

  for (const codec of CODECS) {
    it(`the sink writes ${codec} batches with compression=${codec} that kcat reads back exactly`, async () => {
      const t = await kafka.topic(2);
      const sink = new KafkaSink({ 'kafka.bootstrap.servers': kafka.broker.bootstrap, topic: t, compression: codec });
      await sink.initialize({ queryId: 'q', checkpointDir: kafka.path('sink'), outputMode: 'append' });
      const rows = events.map((e, i) => ({ key: `k${i % 11}`, value: e }));
      try {
        await sink.addBatch(0, new Table([batchFromRows(rows, schemaFromSpec({ key: 'string', value: 'string' }))]));
      } finally {
        await sink.close();
      }
      for (const p of [0, 1]) {
        const batches = await storedBatches(kafka.broker.bootstrap, t, p);
        expect(batches.length).to.be.above(0);
        expect(
          batches.every((b) => b.compression === CODEC_ID[codec]),
          `${codec} batches on partition ${p}`,
        ).to.equal(true);
      }
      const read = consumeWithKcat(kafka.broker.bootstrap, t);
      expect(read.map((r) => r.value).sort()).to.deep.equal([...events].sort());
      expect(read.map((r) => r.headers).sort()).to.deep.equal(events.map((_, i) => `sluice=q:0:${i}`).sort());
      expect(
        new Set(read.filter((r) => r.key === 'k3').map((r) => r.partition)).size,
        'a key on one partition',
      ).to.equal(1);
    });
  }

  it('the CLI reads a zstd topic and writes lz4 with ?kafka.compression.type=lz4; kcat reads the output', async () => {
    const input = await kafka.topic(2);
    kcatProduce(input, 'zstd', events.slice(0, 1500), 0);
    kcatProduce(input, 'zstd', events.slice(1500), 1);
    const output = await kafka.topic(3);
    const res = await runCli([
      'run',
      path.join(TEST_APPS, 'enrich.js'),
      '--source',
      `kafka://${kafka.broker.bootstrap}/${input}?startingOffsets=earliest&maxOffsetsPerTrigger=1000`,
      '--sink',
      `kafka://${kafka.broker.bootstrap}/${output}?kafka.compression.type=lz4`,
      '--checkpoint',
      kafka.path('cli'),
      '--trigger',
      'available-now',
      '--quiet',
    ]);
    expect(res.code, res.stderr).to.equal(0);
    const want = events
      .map((e) => JSON.parse(e) as { id: number; user: string; amount: number })
      .filter((e) => e.amount > 0)
      .map((e) => e.id);
    const got = consumeWithKcat(kafka.broker.bootstrap, output).map((r) => (JSON.parse(r.value) as { id: number }).id);
    expect(got.sort((a, b) => a - b)).to.deep.equal(want);
    for (const p of [0, 1, 2]) {
      const batches = await storedBatches(kafka.broker.bootstrap, output, p);
      expect(batches.every((b) => b.compression === CODEC_ID.lz4)).to.equal(true);
    }
  });

  it('a producer of the client compresses what the idempotent producer (kafkajs) sends too', async () => {
    const t = await kafka.topic(1);
    const client = await KafkaClient.connect(kafka.broker.bootstrap, { compression: 'zstd', idempotent: true });
    try {
      await client.produce(
        t,
        events.slice(0, 500).map((value) => ({ value })),
      );
    } finally {
      await client.close();
    }
    const batches = await storedBatches(kafka.broker.bootstrap, t, 0);
    expect(batches.map((b) => b.compression)).to.deep.equal(batches.map(() => CODEC_ID.zstd));
    expect(consumeWithKcat(kafka.broker.bootstrap, t).map((r) => r.value)).to.deep.equal(events.slice(0, 500));
  });
});
