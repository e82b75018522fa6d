import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { expect } from 'chai';
import { Session } from '../../lib/api/session.js';
import { KafkaClient } from '../../lib/kafka/client.js';
import { FETCH_API_KEY, LIST_OFFSETS_API_KEY, METADATA_API_KEY } from '../../lib/kafka/protocol/api-versions.js';
import type { KafkaRetryEvent } from '../../lib/kafka/retry.js';
import { onNotice } from '../../lib/util/notices.js';
import { consumeWithKcat, startBroker, type TestBroker } from '../support/kafka-broker.js';
import { type KafkaProxy, startKafkaProxy } from '../support/kafka-proxy.js';

/**
 * Leader epochs (KIP-320) against librdkafka 2.15.1's mock cluster, which answers Metadata v12 with each
 * partition's leader epoch, bumps the epoch on every leader move and checks the epoch a Fetch carries.
 */
describe('kafka leader epochs', function () {
  this.timeout(60_000);
  let broker: TestBroker;
  let proxy: KafkaProxy;
  let client: KafkaClient;
  const retries: KafkaRetryEvent[] = [];
  let topicNo = 0;

  before(async () => {
    broker = await startBroker({ recent: true, brokers: 2 });
    proxy = await startKafkaProxy({ upstream: broker.brokers });
    client = await KafkaClient.connect(proxy.brokers, {
      retry: { initialMs: 10, maxMs: 100 },
      onRetry: (e) => retries.push(e),
    });
  });

  after(async () => {
    await client?.close();
    await proxy?.close();
    await broker?.stop();
  });

  beforeEach(() => {
    retries.length = 0;
  });

  /** A new one-partition topic led by broker 1, holding `count` records `r0`, `r1`, ... */
  async function topicWith(count: number): Promise<{ topic: string; values: string[] }> {
    const topic = `epochs-${++topicNo}`;
    await broker.command(`topic ${topic} 1`);
    await broker.command(`leader ${topic} 0 1`);
    const values = Array.from({ length: count }, (_, i) => `r${i}`);
    await client.produce(
      topic,
      values.map((value) => ({ partition: 0, value })),
    );
    return { topic, values };
  }

  const valuesOf = (messages: Array<{ value: Buffer | null }>) => messages.map((m) => String(m.value));
  const messagesOf = (e: KafkaRetryEvent) => e.error.message;

  it('a leader that moved away and back fences the epoch read before: metadata is asked again and the read goes on exactly', async () => {
    const { topic, values } = await topicWith(300);
    expect(valuesOf(await client.fetchRange(topic, 0, 0, 100))).to.deep.equal(values.slice(0, 100));
    await broker.command(`leader ${topic} 0 2`);
    await broker.command(`leader ${topic} 0 1`);
    const metadataBefore = proxy.requests.filter((r) => r.apiKey === METADATA_API_KEY).length;
    expect(valuesOf(await client.fetchRange(topic, 0, 100, 300))).to.deep.equal(values.slice(100));
    expect(retries.map(messagesOf)).to.deep.equal([
      'The leader epoch in the request is older than the epoch on the broker',
    ]);
    expect(proxy.requests.filter((r) => r.apiKey === METADATA_API_KEY).length).to.be.greaterThan(metadataBefore);
    expect(consumeWithKcat(broker.bootstrap, topic).map((r) => r.value)).to.deep.equal(values);
  });

  it('a leader that moved to another broker: NOT_LEADER_OR_FOLLOWER, then the new leader serves the rest', async () => {
    const { topic, values } = await topicWith(200);
    expect(valuesOf(await client.fetchRange(topic, 0, 0, 50))).to.deep.equal(values.slice(0, 50));
    await broker.command(`leader ${topic} 0 2`);
    const before = proxy.requests.length;
    expect(valuesOf(await client.fetchRange(topic, 0, 50, 200))).to.deep.equal(values.slice(50));
    expect(retries.map(messagesOf)).to.deep.equal(['This server is not the leader for that topic-partition']);
    const fetches = proxy.requests.slice(before).filter((r) => r.apiKey === FETCH_API_KEY);
    expect(fetches.at(-1)?.broker, 'the last fetch went to broker 2').to.equal(1);
  });

  it('metadata ahead of the leader (an epoch it does not know yet): UNKNOWN_LEADER_EPOCH, asked again, read exactly', async () => {
    const { topic, values } = await topicWith(120);
    // The next Metadata answer names broker 1 with an epoch the broker has not reached.
    await broker.command(`leader-answer ${topic} 0 1 1000`);
    expect(valuesOf(await client.fetchRange(topic, 0, 0, 120))).to.deep.equal(values);
    expect(retries.map(messagesOf)).to.deep.equal([
      'The leader epoch in the request is newer than the epoch on the broker',
    ]);
  });

  it('offsets listed after a leader moved away and back: ListOffsets is fenced too, asked again, exact', async () => {
    const { topic } = await topicWith(80);
    const start = Date.now();
    expect(await client.fetchOffsets(topic)).to.deep.equal([{ topic, partition: 0, low: 0, high: 80 }]);
    await broker.command(`leader ${topic} 0 2`);
    await broker.command(`leader ${topic} 0 1`);
    expect(await client.fetchOffsets(topic)).to.deep.equal([{ topic, partition: 0, low: 0, high: 80 }]);
    expect(retries.map(messagesOf)).to.include('The leader epoch in the request is older than the epoch on the broker');
    // By time: the mock looks up no offset by timestamp (it answers -1), so only the request's path is shown here.
    expect(await client.offsetsForTimes(topic, [{ partition: 0, timestamp: start }])).to.deep.equal([
      { partition: 0, offset: null },
    ]);
    const versions = new Set(proxy.requests.filter((r) => r.apiKey === LIST_OFFSETS_API_KEY).map((r) => r.apiVersion));
    expect([...versions]).to.deep.equal([7]);
  });

  it('a broker that announces Fetch below v9 gets no epoch: the same moves go unchecked and the read is still exact', async () => {
    const capped = await startKafkaProxy({
      upstream: broker.brokers,
      maxVersions: [{ [FETCH_API_KEY]: 8 }, { [FETCH_API_KEY]: 8 }],
    });
    const old = await KafkaClient.connect(capped.brokers, {
      retry: { initialMs: 10 },
      onRetry: (e) => retries.push(e),
    });
    try {
      const { topic, values } = await topicWith(100);
      expect(valuesOf(await old.fetchRange(topic, 0, 0, 50))).to.deep.equal(values.slice(0, 50));
      await broker.command(`leader ${topic} 0 2`);
      await broker.command(`leader ${topic} 0 1`);
      expect(valuesOf(await old.fetchRange(topic, 0, 50, 100))).to.deep.equal(values.slice(50));
      expect(retries).to.deep.equal([]);
      expect([
        ...new Set(capped.requests.filter((r) => r.apiKey === FETCH_API_KEY).map((r) => r.apiVersion)),
      ]).to.deep.equal([8]);
    } finally {
      await old.close();
      await capped.close();
    }
  });

  it('a running query whose leaders keep moving reads every record exactly once', async () => {
    const topic = `epochs-${++topicNo}`;
    await broker.command(`topic ${topic} 3`);
    const written = Array.from({ length: 3000 }, (_, i) => ({
      partition: i % 3,
      value: `${i % 3}-${Math.floor(i / 3)}`,
    }));
    await client.produce(topic, written);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-epochs-'));
    const notices: string[] = [];
    const unsubscribe = onNotice((m) => notices.push(m));
    const session = Session.local({ threads: 0 });
    const query = await session.readStream
      .format('kafka')
      .option('kafka.bootstrap.servers', broker.bootstrap)
      .option('subscribe', topic)
      .option('startingOffsets', 'earliest')
      .option('maxOffsetsPerTrigger', '150')
      .load()
      .writeStream.format('memory')
      .queryName('moving')
      .option('checkpointLocation', path.join(dir, 'ckpt'))
      .trigger({ processingTime: 10 })
      .start();
    try {
      // Every move bumps the partition's epoch; moving back and forth fences whatever the reader knew.
      for (let move = 0; move < 20 && session.table('moving').length < written.length; move++) {
        await broker.command(`leader ${topic} ${move % 3} ${1 + (move % 2)}`);
        await new Promise((resolve) => setTimeout(resolve, 60));
      }
      const deadline = Date.now() + 30_000;
      while (session.table('moving').length < written.length && Date.now() < deadline)
        await query.processAllAvailable();
      const rows = session.table('moving') as Array<{ partition: number; offset: number; value: string }>;
      expect(rows.map((r) => r.value).sort()).to.deep.equal(written.map((w) => w.value).sort());
      for (const p of [0, 1, 2]) {
        const offsets = rows.filter((r) => r.partition === p).map((r) => r.offset);
        expect(offsets).to.deep.equal(Array.from({ length: 1000 }, (_, i) => i));
      }
      expect(query.recentProgress.length, 'several batches').to.be.greaterThan(5);
      // The source's own client noticed moves through the epochs it sent (its read tasks' clients retry quietly).
      expect(
        notices.some((m) => /leader epoch in the request|not the leader/.test(m)),
        notices.join('\n'),
      ).to.equal(true);
    } finally {
      unsubscribe();
      await query.stop();
      await session.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
