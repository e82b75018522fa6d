import { expect } from 'chai';
import { KafkaClient } from '../../lib/kafka/client.js';
import { type DataLoss, KafkaDataLossError } from '../../lib/kafka/data-loss.js';
import type { KafkaRetryEvent } from '../../lib/kafka/retry.js';
import { produceWithKcat, startBroker, type TestBroker } from '../support/kafka-broker.js';

/** Kafka protocol numbers used with the broker's `error` command. */
const API_FETCH = 1;
const ERR_NOT_LEADER_FOR_PARTITION = 6;

describe('kafka client: faults and data loss', () => {
  let broker: TestBroker;
  let client: KafkaClient;
  const retries: KafkaRetryEvent[] = [];

  before(async () => {
    broker = await startBroker({ brokers: 2, topics: { steady: 1, moving: 1, big: 1 } });
    client = await KafkaClient.connect(broker.bootstrap, {
      retry: { retries: 30, initialMs: 50, maxMs: 300 },
      onRetry: (e) => retries.push(e),
    });
    produceWithKcat(
      broker.bootstrap,
      'steady',
      Array.from({ length: 200 }, (_, i) => `s${i}`),
      0,
    );
  });

  after(async () => {
    await client?.close();
    await broker?.stop();
  });

  beforeEach(() => {
    retries.length = 0;
  });

  it('stalls while the leader is down, then reads the whole range once it is back', async () => {
    const [{ partition }] = await client.listPartitions(['steady']);
    await broker.command('leader steady 0 1');
    await broker.command('down 1');
    const reading = client.fetchRange('steady', partition, 0, 200);
    await new Promise((resolve) => setTimeout(resolve, 800));
    expect(retries.length, 'retries while the broker is down').to.be.greaterThan(0);
    await broker.command('up 1');
    const got = await reading;
    expect(got.map((m) => m.value?.toString())).to.deep.equal(Array.from({ length: 200 }, (_, i) => `s${i}`));
    expect(retries.every((r) => r.delayMs > 0 && r.operation.length > 0)).to.equal(true);
  });

  it('retries fetch errors the broker injects and still returns exactly the range', async () => {
    await broker.command(`error ${API_FETCH} ${ERR_NOT_LEADER_FOR_PARTITION} 3`);
    const got = await client.fetchRange('steady', 0, 10, 20);
    expect(got.map((m) => m.offset)).to.deep.equal([10, 11, 12, 13, 14, 15, 16, 17, 18, 19]);
    expect(retries).to.have.length(3);
    expect(retries[0].error.message).to.match(/leader/i);
  });

  it('follows a partition whose leader moved to another broker', async () => {
    produceWithKcat(broker.bootstrap, 'moving', ['a', 'b', 'c'], 0);
    await broker.command('leader moving 0 1');
    expect((await client.fetchRange('moving', 0, 0, 3)).map((m) => m.value?.toString())).to.deep.equal(['a', 'b', 'c']);
    await broker.command('leader moving 0 2');
    expect((await client.fetchRange('moving', 0, 1, 3)).map((m) => m.value?.toString())).to.deep.equal(['b', 'c']);
  });

  it('gives up with KAFKA_UNAVAILABLE when the broker stays down past the retry budget', async () => {
    const impatient = await KafkaClient.connect(broker.bootstrap, { retry: { retries: 2, initialMs: 20, maxMs: 50 } });
    try {
      await impatient.fetchRange('steady', 0, 0, 1); // caches the leader while it is up
      await broker.command('leader steady 0 1');
      await broker.command('down 1');
      await impatient.fetchRange('steady', 0, 0, 10);
      expect.fail('expected KAFKA_UNAVAILABLE');
    } catch (err) {
      expect((err as { code?: string }).code).to.equal('KAFKA_UNAVAILABLE');
      expect((err as Error).message).to.match(/after 3 attempts/);
    } finally {
      await broker.command('up 1');
      await impatient.close();
    }
  });

  describe('offsets that are gone', () => {
    let low = 0;
    let high = 0;

    before(async () => {
      // The mock keeps at most 5 MiB per partition: 7 MiB in 14 record sets pushes the oldest ones out.
      const value = Buffer.alloc(100 * 1024, 'x');
      const writer = await KafkaClient.connect(broker.bootstrap, { produceBatchSize: 5 });
      try {
        await writer.produce(
          'big',
          Array.from({ length: 70 }, () => ({ value })),
        );
      } finally {
        await writer.close();
      }
      [{ low, high }] = await client.fetchOffsets('big');
    });

    it('the broker dropped the oldest records (precondition)', () => {
      expect(high).to.equal(70);
      expect(low).to.be.greaterThan(0);
    });

    it('throws KafkaDataLossError for a range starting below the low watermark', async () => {
      try {
        await client.fetchRange('big', 0, 0, high);
        expect.fail('expected a data-loss error');
      } catch (err) {
        expect(err).to.be.instanceOf(KafkaDataLossError);
        expect((err as KafkaDataLossError).code).to.equal('KAFKA_DATA_LOSS');
        expect((err as KafkaDataLossError).loss).to.deep.equal({
          topic: 'big',
          partition: 0,
          fromOffset: 0,
          untilOffset: low,
          reason: 'retention',
        });
        expect((err as Error).message).to.contain(`offsets 0..${low - 1} of big-0`);
      }
    });

    it('reports the lost offsets and returns the rest when given onDataLoss', async () => {
      const losses: DataLoss[] = [];
      const got = await client.fetchRange('big', 0, low - 1, low + 2, { onDataLoss: (l) => losses.push(l) });
      expect(losses).to.deep.equal([
        { topic: 'big', partition: 0, fromOffset: low - 1, untilOffset: low, reason: 'retention' },
      ]);
      expect(got.map((m) => m.offset)).to.deep.equal([low, low + 1]);
      expect(got[0].value?.length).to.equal(100 * 1024);
    });

    it('reads records larger than the fetch size it was given', async () => {
      const got = await client.fetchRange('big', 0, low, low + 6, { maxBytes: 1000 });
      expect(got.map((m) => m.offset)).to.deep.equal([low, low + 1, low + 2, low + 3, low + 4, low + 5]);
      expect(got.every((m) => m.value?.length === 100 * 1024)).to.equal(true);
    });

    it('reports a range that runs past the end of the partition as truncated', async () => {
      const losses: DataLoss[] = [];
      const got = await client.fetchRange('big', 0, high - 2, high + 3, { onDataLoss: (l) => losses.push(l) });
      expect(got.map((m) => m.offset)).to.deep.equal([high - 2, high - 1]);
      expect(losses).to.deep.equal([
        { topic: 'big', partition: 0, fromOffset: high, untilOffset: high + 3, reason: 'truncated' },
      ]);

      losses.length = 0;
      expect(
        await client.fetchRange('big', 0, high + 5, high + 9, { onDataLoss: (l) => losses.push(l) }),
      ).to.deep.equal([]);
      expect(losses).to.deep.equal([
        { topic: 'big', partition: 0, fromOffset: high + 5, untilOffset: high + 9, reason: 'truncated' },
      ]);
    });
  });
});
