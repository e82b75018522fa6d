import { expect } from 'chai';
import { KafkaClient } from '../../lib/kafka/client.js';
import {
  chooseVersion,
  commonVersion,
  FETCH_API_KEY,
  METADATA_API_KEY,
  PRODUCE_API_KEY,
} from '../../lib/kafka/protocol/api-versions.js';
import { produceRequest } from '../../lib/kafka/protocol/produce/v10.js';
import type { KafkaRetryEvent } from '../../lib/kafka/retry.js';
import { consumeWithKcat, startBroker, type TestBroker } from '../support/kafka-broker.js';
import { type KafkaProxy, startKafkaProxy } from '../support/kafka-proxy.js';

const API_METADATA = 3;

/** Fetch and Produce versions negotiated per broker from its ApiVersions answer. */
describe('kafka protocol versions', function () {
  this.timeout(60_000);
  let broker: TestBroker;

  before(async () => {
    broker = await startBroker({ brokers: 2, topics: { mixed: 2, fenced: 1 } });
    // One partition led by each broker, so each broker's own versions are used for its partition.
    await broker.command('leader mixed 0 1');
    await broker.command('leader mixed 1 2');
  });

  after(async () => {
    await broker?.stop();
  });

  /** The versions of `apiKey` the client sent to each listener of `proxy`. */
  const versionsSeen = (proxy: KafkaProxy, apiKey: number): string[][] =>
    proxy.brokers.map((_, i) => [
      ...new Set(proxy.requests.filter((r) => r.broker === i && r.apiKey === apiKey).map((r) => `v${r.apiVersion}`)),
    ]);

  it('picks the highest version both sides speak, and the floor for older or unknown brokers', () => {
    expect(chooseVersion(FETCH_API_KEY, { [FETCH_API_KEY]: { minVersion: 0, maxVersion: 17 } })).to.equal(16);
    expect(chooseVersion(FETCH_API_KEY, { [FETCH_API_KEY]: { minVersion: 4, maxVersion: 9 } })).to.equal(9);
    expect(chooseVersion(PRODUCE_API_KEY, { [PRODUCE_API_KEY]: { minVersion: 3, maxVersion: 12 } })).to.equal(10);
    expect(chooseVersion(PRODUCE_API_KEY, { [PRODUCE_API_KEY]: { minVersion: 0, maxVersion: 2 } })).to.equal(3);
    expect(chooseVersion(FETCH_API_KEY, {})).to.equal(4);
    // Metadata has no floor: below v7 (no leader epochs) kafkajs' own Metadata serves.
    expect(commonVersion(METADATA_API_KEY, { [METADATA_API_KEY]: { minVersion: 0, maxVersion: 13 } })).to.equal(12);
    expect(commonVersion(METADATA_API_KEY, { [METADATA_API_KEY]: { minVersion: 0, maxVersion: 2 } })).to.equal(null);
  });

  it("reads a Produce v8 answer's per-record errors into the error it throws", async () => {
    // The test broker speaks Produce up to v7, so this v8 answer is written out field by field.
    const str = (v: string | null) => {
      if (v === null) return Buffer.from([0xff, 0xff]);
      const b = Buffer.alloc(2 + Buffer.byteLength(v));
      b.writeInt16BE(Buffer.byteLength(v), 0);
      b.write(v, 2);
      return b;
    };
    const int = (bytes: number, v: number) => {
      const b = Buffer.alloc(bytes);
      if (bytes === 2) b.writeInt16BE(v);
      else if (bytes === 4) b.writeInt32BE(v);
      else b.writeBigInt64BE(BigInt(v));
      return b;
    };
    const answer = (errorCode: number) =>
      Buffer.concat([
        int(4, 1),
        str('t'),
        int(4, 1),
        int(4, 3), // partition
        int(2, errorCode),
        int(8, errorCode ? -1 : 42), // base offset
        int(8, -1), // log append time
        int(8, 0), // log start offset
        int(4, errorCode ? 1 : 0),
        ...(errorCode ? [int(4, 2), str('timestamp out of range')] : []),
        str(errorCode ? 'One or more records have been rejected' : null),
        int(4, 0), // throttle time
      ]);
    const { request, response } = produceRequest(8, 't', [{ partition: 3, batch: Buffer.alloc(0) }], 1000, -1);
    expect(request.apiVersion).to.equal(8);
    const ok = await response.parse(await response.decode(answer(0)));
    expect(ok.topics[0].partitions[0]).to.include({ partition: 3, errorCode: 0, baseOffset: 42 });
    let thrown: Error | undefined;
    await response.parse(await response.decode(answer(87))).catch((e: Error) => {
      thrown = e;
    });
    expect(thrown?.name).to.equal('KafkaJSProtocolError');
    expect(thrown?.message).to.match(/One or more records have been rejected; record 2: timestamp out of range\)$/);
  });

  it('speaks each broker its own highest versions: Fetch v11 and Produce v7 to the Debian mock, v4 and v3 to a capped one', async () => {
    // The first listener answers ApiVersions like a broker that knows only Fetch v4 and Produce v3.
    const proxy = await startKafkaProxy({
      upstream: broker.brokers,
      maxVersions: [{ [FETCH_API_KEY]: 4, [PRODUCE_API_KEY]: 3 }],
    });
    const client = await KafkaClient.connect(proxy.brokers);
    try {
      const written = Array.from({ length: 200 }, (_, i) => ({ partition: i % 2, key: `k${i}`, value: `v${i}` }));
      const results = await client.produce('mixed', written);
      expect(results.map((r) => r.partition).sort()).to.include.members([0, 1]);
      for (const p of [0, 1]) {
        const read = await client.fetchRange('mixed', p, 0, 100);
        expect(read.map((m) => `${m.key}=${m.value}`)).to.deep.equal(
          written.filter((w) => w.partition === p).map((w) => `${w.key}=${w.value}`),
        );
      }
      expect(versionsSeen(proxy, FETCH_API_KEY)).to.deep.equal([['v4'], ['v11']]);
      expect(versionsSeen(proxy, PRODUCE_API_KEY)).to.deep.equal([['v3'], ['v7']]);
      const kcat = consumeWithKcat(broker.bootstrap, 'mixed');
      expect(kcat.map((r) => `${r.partition}:${r.key}=${r.value}`).sort()).to.deep.equal(
        written.map((w) => `${w.partition}:${w.key}=${w.value}`).sort(),
      );
    } finally {
      await client.close();
      await proxy.close();
    }
  });

  it('refreshes metadata on FENCED_LEADER_EPOCH and UNKNOWN_LEADER_EPOCH and reads on', async () => {
    const proxy = await startKafkaProxy({ upstream: broker.brokers });
    const retries: KafkaRetryEvent[] = [];
    const client = await KafkaClient.connect(proxy.brokers, {
      retry: { initialMs: 10 },
      onRetry: (e) => retries.push(e),
    });
    try {
      await client.produce(
        'fenced',
        Array.from({ length: 50 }, (_, i) => ({ value: `f${i}` })),
      );
      await broker.command(`error ${FETCH_API_KEY} 74 1`);
      await broker.command(`error ${FETCH_API_KEY} 75 1`);
      const metadataBefore = proxy.requests.filter((r) => r.apiKey === API_METADATA).length;
      const read = await client.fetchRange('fenced', 0, 0, 50);
      expect(read.map((m) => String(m.value))).to.deep.equal(Array.from({ length: 50 }, (_, i) => `f${i}`));
      expect(retries.map((r) => r.error.message)).to.deep.equal([
        'The leader epoch in the request is older than the epoch on the broker',
        'The leader epoch in the request is newer than the epoch on the broker',
      ]);
      expect(proxy.requests.filter((r) => r.apiKey === API_METADATA).length - metadataBefore).to.be.at.least(2);
    } finally {
      await client.close();
      await proxy.close();
    }
  });

  describe('against librdkafka 2.15.1, which speaks flexible versions', () => {
    let recent: TestBroker;
    let topics = 0;

    before(async () => {
      recent = await startBroker({ recent: true, brokers: 2 });
    });

    after(async () => {
      await recent?.stop();
    });

    /**
     * Writes 300 keyed records to each partition of a new topic (partition 0 led by broker 1, partition 1 by
     * broker 2), reads them back, and checks them with kcat; gives the proxy's log.
     */
    async function roundTrip(maxVersions: Array<Record<number, number> | undefined>): Promise<KafkaProxy> {
      const topic = `flex-${++topics}`;
      await recent.command(`topic ${topic} 2`);
      await recent.command(`leader ${topic} 0 1`);
      await recent.command(`leader ${topic} 1 2`);
      const proxy = await startKafkaProxy({ upstream: recent.brokers, maxVersions });
      const client = await KafkaClient.connect(proxy.brokers);
      try {
        const written = Array.from({ length: 600 }, (_, i) => ({ partition: i % 2, key: `k${i}`, value: `v${i}` }));
        await client.produce(topic, written);
        for (const p of [0, 1]) {
          const read = await client.fetchRange(topic, p, 0, 300);
          expect(read.map((m) => `${m.offset}:${m.key}=${m.value}`)).to.deep.equal(
            written.filter((w) => w.partition === p).map((w, i) => `${i}:${w.key}=${w.value}`),
          );
        }
        const kcat = consumeWithKcat(recent.bootstrap, topic);
        expect(kcat.map((r) => `${r.partition}:${r.key}=${r.value}`).sort()).to.deep.equal(
          written.map((w) => `${w.partition}:${w.key}=${w.value}`).sort(),
        );
        return proxy;
      } finally {
        await client.close();
        await proxy.close();
      }
    }

    it('Metadata v12, Fetch v16 (topic ids) and Produce v10 with the broker, v12 and v9 with one capped there', async () => {
      const proxy = await roundTrip([{ [FETCH_API_KEY]: 12, [PRODUCE_API_KEY]: 9 }, undefined]);
      expect(versionsSeen(proxy, FETCH_API_KEY)).to.deep.equal([['v12'], ['v16']]);
      expect(versionsSeen(proxy, PRODUCE_API_KEY)).to.deep.equal([['v9'], ['v10']]);
      expect(versionsSeen(proxy, METADATA_API_KEY).flat()).to.include('v12');
    });

    it('without topic ids (Metadata capped at v9) Fetch stays at v12, the last version that names topics', async () => {
      const proxy = await roundTrip([{ [METADATA_API_KEY]: 9 }, { [METADATA_API_KEY]: 9 }]);
      expect(versionsSeen(proxy, FETCH_API_KEY)).to.deep.equal([['v12'], ['v12']]);
      expect(versionsSeen(proxy, PRODUCE_API_KEY)).to.deep.equal([['v10'], ['v10']]);
    });

    it("a broker whose Metadata has no leader epochs (below v7): kafkajs' leaders, Fetch v12, classic Produce v8", async () => {
      const capped = { [METADATA_API_KEY]: 6, [PRODUCE_API_KEY]: 8 };
      const proxy = await roundTrip([capped, capped]);
      expect(versionsSeen(proxy, FETCH_API_KEY)).to.deep.equal([['v12'], ['v12']]);
      expect(versionsSeen(proxy, PRODUCE_API_KEY)).to.deep.equal([['v8'], ['v8']]);
      expect(
        Math.max(...proxy.requests.filter((r) => r.apiKey === METADATA_API_KEY).map((r) => r.apiVersion)),
      ).to.equal(6);
    });
  });
});
