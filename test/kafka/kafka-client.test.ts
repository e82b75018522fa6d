import { spawnSync } from 'node:child_process';
import { expect } from 'chai';
import kafkajs from 'kafkajs';
import { KafkaClient } from '../../lib/kafka/client.js';
import { consumeWithKcat, produceWithKcat, startBroker, type TestBroker } from '../support/kafka-broker.js';

describe('kafka client: metadata, range reads, produce', () => {
  let broker: TestBroker;
  let client: KafkaClient;

  before(async () => {
    broker = await startBroker({
      brokers: 2,
      topics: { 'in-a': 3, 'in-b': 1, 'out-a': 2, 'out-h': 1, idem: 1, other: 1 },
    });
    client = await KafkaClient.connect(broker.brokers);
  });

  after(async () => {
    await client?.close();
    await broker?.stop();
  });

  it('lists partitions of named topics and of a pattern, leaving out missing topics', async () => {
    expect(await client.listPartitions(['in-b', 'in-a', 'missing'])).to.deep.equal([
      { topic: 'in-a', partition: 0 },
      { topic: 'in-a', partition: 1 },
      { topic: 'in-a', partition: 2 },
      { topic: 'in-b', partition: 0 },
    ]);
    const outs = await client.listPartitions(/^out-/g);
    expect(outs.map((p) => `${p.topic}/${p.partition}`)).to.deep.equal(['out-a/0', 'out-a/1', 'out-h/0']);
    // Listing must not create the missing topic (the mock auto-creates topics named in Metadata requests).
    expect(await client.listPartitions(/^missing$/)).to.deep.equal([]);
  });

  it('picks up a topic created while running', async () => {
    await broker.command('topic late 2');
    expect(await client.listPartitions(['late'])).to.have.length(2);
  });

  it('reads exactly the requested offset range of what kcat produced', async () => {
    // Several kcat runs give several record sets per partition, so ranges cross set boundaries.
    const lines = Array.from({ length: 300 }, (_, i) => `{"n":${i}}`);
    for (let i = 0; i < 3; i++) produceWithKcat(broker.bootstrap, 'in-b', lines.slice(i * 100, (i + 1) * 100), 0);
    const [offsets] = await client.fetchOffsets('in-b');
    expect(offsets).to.deep.equal({ topic: 'in-b', partition: 0, low: 0, high: 300 });

    for (const [from, until] of [
      [0, 300],
      [0, 1],
      [99, 101],
      [150, 251],
      [299, 300],
      [42, 42],
    ]) {
      const got = await client.fetchRange('in-b', 0, from, until);
      expect(
        got.map((m) => m.offset),
        `[${from}, ${until})`,
      ).to.deep.equal(range(from, until));
      expect(got.map((m) => m.value?.toString())).to.deep.equal(lines.slice(from, until));
    }
    const [m] = await client.fetchRange('in-b', 0, 7, 8);
    expect(m.key).to.equal(null);
    expect(m.headers).to.equal(undefined);
    expect(m.timestamp).to.be.within(Date.now() - 60_000, Date.now() + 1000);
  });

  it('reads every partition of a multi-partition topic without loss or duplicates', async () => {
    const lines = Array.from({ length: 900 }, (_, i) => `v${i}`);
    produceWithKcat(broker.bootstrap, 'in-a', lines);
    const offsets = await client.fetchOffsets(['in-a']);
    expect(offsets.reduce((s, o) => s + o.high - o.low, 0)).to.equal(900);
    const read = await Promise.all(offsets.map((o) => client.fetchRange('in-a', o.partition, o.low, o.high)));
    const values = read.flat().map((m) => m.value?.toString());
    expect(values.sort()).to.deep.equal([...lines].sort());
  });

  it('produces with keys and explicit partitions, and kcat reads back exactly that', async () => {
    const msgs = Array.from({ length: 2500 }, (_, i) => ({ key: `k${i % 7}`, value: `value-${i}`, partition: i % 2 }));
    const res = await client.produce('out-a', msgs);
    expect(res.length).to.be.greaterThan(0);
    const seen = consumeWithKcat(broker.bootstrap, 'out-a');
    expect(seen).to.have.length(2500);
    for (const p of [0, 1]) {
      const inPart = seen.filter((r) => r.partition === p).sort((a, b) => a.offset - b.offset);
      const expected = msgs.filter((m) => m.partition === p);
      expect(inPart.map((r) => r.value)).to.deep.equal(expected.map((m) => m.value));
      expect(inPart.map((r) => r.key)).to.deep.equal(expected.map((m) => m.key));
      expect(inPart.map((r) => r.offset)).to.deep.equal(range(0, expected.length));
    }
  });

  it('round-trips headers, binary values, nulls and timestamps through produce and fetchRange', async () => {
    const bin = Buffer.from([0, 255, 10, 9, 128]);
    await client.produce('out-h', [
      {
        key: Buffer.from('k'),
        value: bin,
        headers: { trace: 'abc', bin: Buffer.from([1, 2]) },
        timestamp: 1_700_000_000_123,
      },
      { value: null },
      { key: 'only-key', value: '' },
    ]);
    const got = await client.fetchRange('out-h', 0, 0, 3);
    expect(got).to.have.length(3);
    expect(got[0].value).to.deep.equal(bin);
    expect(got[0].key?.toString()).to.equal('k');
    expect(got[0].timestamp).to.equal(1_700_000_000_123);
    expect(got[0].headers?.trace).to.deep.equal(Buffer.from('abc'));
    expect(got[0].headers?.bin).to.deep.equal(Buffer.from([1, 2]));
    expect(got[1].value).to.equal(null);
    expect(got[1].key).to.equal(null);
    expect(got[2].value).to.deep.equal(Buffer.alloc(0));
  });

  it('encodes record batches librdkafka accepts with CRCs checked: utf8, repeated headers, far-apart timestamps', async () => {
    await broker.command('topic enc 1');
    await client.produce('enc', [
      { key: 'ключ', value: 'välue ✓', headers: { h: ['a', 'b'], ü: 'x' }, timestamp: 1 },
      { key: null, value: 'late', timestamp: 1_700_000_000_000 },
      { value: 'now' },
    ]);
    const got = await client.fetchRange('enc', 0, 0, 3);
    expect(got.map((m) => [m.key?.toString() ?? null, m.value?.toString()])).to.deep.equal([
      ['ключ', 'välue ✓'],
      [null, 'late'],
      [null, 'now'],
    ]);
    expect(got[0].headers).to.deep.equal({ h: [Buffer.from('a'), Buffer.from('b')], ü: Buffer.from('x') });
    expect(got.slice(0, 2).map((m) => m.timestamp)).to.deep.equal([1, 1_700_000_000_000]);
    expect(Math.abs(got[2].timestamp - Date.now()), 'no timestamp: the time it was sent').to.be.below(60_000);
    const r = spawnSync(
      'kcat',
      [
        '-b',
        broker.bootstrap,
        '-C',
        '-t',
        'enc',
        '-o',
        'beginning',
        '-e',
        '-q',
        '-X',
        'check.crcs=true',
        '-f',
        '%k|%h|%s|%T\n',
      ],
      { encoding: 'utf8', timeout: 30_000 },
    );
    expect(r.stderr, 'kcat reports no error (a bad CRC is one)').to.equal('');
    expect(r.stdout.split('\n').slice(0, 2)).to.deep.equal(['ключ|h=a,h=b,ü=x|välue ✓|1', '||late|1700000000000']);
  });

  it('reads gzip record sets between uncompressed ones, in offset order', async () => {
    await broker.command('topic mixed 1');
    // Compressible values: librdkafka sends a batch uncompressed when gzip would not make it smaller.
    const pad = '-'.repeat(300);
    const gzip = (lines: string[]): void => {
      const r = spawnSync('kcat', ['-b', broker.bootstrap, '-P', '-t', 'mixed', '-p', '0', '-z', 'gzip'], {
        input: `${lines.join('\n')}\n`,
        encoding: 'utf8',
        timeout: 30_000,
      });
      expect(r.status, r.stderr).to.equal(0);
    };
    gzip(['g0', 'g1', 'g2'].map((v) => v + pad));
    await client.produce('mixed', [{ value: 'p0', headers: { h: 'x' } }, { value: 'p1' }]);
    gzip(['g3', 'g4'].map((v) => v + pad));
    const got = await client.fetchRange('mixed', 0, 1, 7);
    expect(got.map((m) => [m.offset, m.value?.toString().replace(pad, '')])).to.deep.equal([
      [1, 'g1'],
      [2, 'g2'],
      [3, 'p0'],
      [4, 'p1'],
      [5, 'g3'],
      [6, 'g4'],
    ]);
    expect(got[2].headers).to.deep.equal({ h: Buffer.from('x') });
    expect(got[3].headers).to.equal(undefined);
  });

  it("puts keyed messages where kafkajs' (Java's) murmur2 partitioner does, and spreads keyless ones", async () => {
    await broker.command('topic keyed 5');
    const keys = Array.from({ length: 40 }, (_, i) => `user-${i}`);
    await client.produce('keyed', [
      ...keys.map((key) => ({ key, value: key })),
      ...Array.from({ length: 20 }, () => ({ value: 'no key' })),
    ]);
    const partitioner = kafkajs.Partitioners.DefaultPartitioner();
    const partitionMetadata = [0, 1, 2, 3, 4].map((partitionId) => ({
      partitionId,
      leader: 1,
      partitionErrorCode: 0,
      replicas: [1],
      isr: [1],
    }));
    const seen = consumeWithKcat(broker.bootstrap, 'keyed');
    for (const key of keys) {
      expect(seen.find((r) => r.key === key)?.partition, key).to.equal(
        partitioner({ topic: 'keyed', partitionMetadata, message: { key, value: key } }),
      );
    }
    expect(new Set(seen.filter((r) => r.value === 'no key').map((r) => r.partition)).size).to.equal(5);
  });

  it('partitions messages without a partition by key: one key, one partition', async () => {
    await client.produce('out-a', [
      { key: 'same', value: 'x1' },
      { key: 'same', value: 'x2' },
    ]);
    const seen = consumeWithKcat(broker.bootstrap, 'out-a').filter((r) => r.key === 'same');
    expect(seen).to.have.length(2);
    expect(seen[0].partition).to.equal(seen[1].partition);
  });

  it('refuses offsets of, and writes to, a topic that does not exist, without creating it', async () => {
    for (const attempt of [
      () => client.fetchOffsets('nope-topic'),
      () => client.produce('nope-topic', [{ value: 'x' }]),
    ]) {
      try {
        await attempt();
        expect.fail('expected an error');
      } catch (err) {
        expect((err as { code?: string }).code).to.equal('KAFKA_UNKNOWN_TOPIC');
        expect((err as Error).message).to.contain('nope-topic');
      }
    }
    expect(await client.listPartitions(['nope-topic'])).to.deep.equal([]);
  });

  it('commits consumer-group offsets that a group client can read back', async () => {
    await client.commitGroupOffsets('sluice-lag', [
      { topic: 'in-a', partition: 0, offset: 5 },
      { topic: 'in-a', partition: 2, offset: 9 },
    ]);
    expect(await client.fetchGroupOffsets('sluice-lag', 'in-a')).to.deep.equal([
      { partition: 0, offset: 5 },
      { partition: 1, offset: -1 },
      { partition: 2, offset: 9 },
    ]);
  });

  it('runs the idempotent producer against the mock (controller-id fallback)', async () => {
    const idem = await KafkaClient.connect(broker.bootstrap, { idempotent: true, retry: { retries: 1 } });
    try {
      await idem.produce('idem', [{ value: 'a' }, { value: 'b' }]);
    } finally {
      await idem.close();
    }
    const got = await client.fetchRange('idem', 0, 0, 2);
    expect(got.map((m) => m.value?.toString())).to.deep.equal(['a', 'b']);
  });
});

function range(from: number, until: number): number[] {
  return Array.from({ length: Math.max(0, until - from) }, (_, i) => from + i);
}
