import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { expect } from 'chai';
import kafkajs from 'kafkajs';
import { Session } from '../../lib/api/session.js';
import { KafkaClient } from '../../lib/kafka/client.js';
import { createCluster, sendRequest, shareConnects } from '../../lib/kafka/kafkajs-internals.js';
import { decodePartition } from '../../lib/kafka/protocol/fetch/fetched-partition.js';
import { fetchRequest } from '../../lib/kafka/protocol/fetch/v16.js';
import { produceRequest } from '../../lib/kafka/protocol/produce/v10.js';
import { startBroker, type TestBroker } from '../support/kafka-broker.js';
import { recordSet, transactionalBatch, transactionMarker } from '../support/transaction-batches.js';

/** kafka.isolation.level=read_committed: aborted transactions and transaction markers. */
describe('kafka read_committed', function () {
  this.timeout(60_000);

  describe('on encoded record sets with the aborted transactions a broker lists', () => {
    const A = 1001n;
    const B = 2002n;
    const value = (s: string) => ({ value: s });
    // A aborts its first transaction and commits its second; B commits one that interleaves with A's abort.
    const set = recordSet([
      transactionalBatch([value('a-aborted-1'), value('a-aborted-2')], A, 0),
      transactionalBatch([value('b-committed-1'), value('b-committed-2')], B, 2),
      transactionMarker(A, false, 4),
      transactionalBatch([value('b-committed-3')], B, 5),
      transactionMarker(B, true, 6),
      transactionalBatch([value('a-committed')], A, 7),
      transactionMarker(A, true, 8),
      transactionalBatch([value('not-transactional')], -1n, 9),
    ]);
    const partition = {
      partition: 0,
      errorCode: 0,
      highWatermark: 10,
      abortedTransactions: [{ producerId: String(A), firstOffset: '0' }],
      recordSet: set,
    };
    const read = async (readCommitted: boolean) =>
      (await decodePartition(partition, readCommitted)).records
        .toMessages()
        .map((m) => [m.offset, m.value?.toString()]);

    it('drops the aborted transaction up to its ABORT marker and every marker, and keeps the rest in order', async () => {
      expect(await read(true)).to.deep.equal([
        [2, 'b-committed-1'],
        [3, 'b-committed-2'],
        [5, 'b-committed-3'],
        [7, 'a-committed'],
        [9, 'not-transactional'],
      ]);
      const decoded = await decodePartition(partition, true);
      expect(decoded.batchEnd, 'reading continues after the last batch').to.equal(10);
    });

    it('read_uncommitted keeps aborted records and drops only the markers', async () => {
      expect((await read(false)).map(([o]) => o)).to.deep.equal([0, 1, 2, 3, 5, 7, 9]);
    });
  });

  describe('through a query against the test broker', () => {
    let broker: TestBroker;
    let root: string;
    before(async () => {
      broker = await startBroker({ brokers: 1, topics: { tx: 1 } });
      root = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-kafka-txn-'));
    });
    after(async () => {
      await broker?.stop();
      fs.rmSync(root, { recursive: true, force: true });
    });

    it('reads what a transactional producer committed, without its transaction markers', async () => {
      const kafka = new kafkajs.Kafka({ brokers: broker.brokers, logLevel: kafkajs.logLevel.NOTHING });
      const cluster = createCluster(kafka, {});
      const producer = kafka.producer({ transactionalId: 'sluice-test', idempotent: true, maxInFlightRequests: 1 });
      await producer.connect();
      await cluster.connect();
      await cluster.addMultipleTargetTopics(['tx']);
      const leader = shareConnects(await cluster.findBroker({ nodeId: '1' }));
      try {
        for (const [batch, markerOffset] of [
          [['c1', 'c2'], 2],
          [['c3', 'c4', 'c5'], 6],
        ] as const) {
          const tx = await producer.transaction();
          await tx.send({ topic: 'tx', messages: batch.map((v) => ({ value: v, partition: 0 })) });
          await tx.commit();
          // The librdkafka 2.0.2 mock's EndTxn writes no marker: append the COMMIT marker a coordinator writes,
          // for the producer id the broker gave the transactional producer.
          const fetched = await sendRequest(
            leader,
            fetchRequest('tx', 0, 0, { version: 11, isolationLevel: 1, maxWaitMs: 10, maxBytes: 1 << 20 }),
          );
          const first = fetched.responses[0].partitions[0].recordSet;
          expect(first.readInt16BE(4 + 21) & 0x10, 'the producer wrote transactional batches').to.equal(0x10);
          const marker = transactionMarker(first.readBigInt64BE(4 + 43), true);
          const res = await sendRequest(leader, produceRequest(7, 'tx', [{ partition: 0, batch: marker }], 5000, -1));
          expect(Number(res.topics[0].partitions[0].baseOffset)).to.equal(markerOffset);
        }
      } finally {
        await producer.disconnect();
        await cluster.disconnect();
      }
      const reader = await KafkaClient.connect(broker.bootstrap);
      const [{ high }] = await reader.fetchOffsets('tx');
      await reader.close();
      expect(high, 'five records and two markers').to.equal(7);
      const session = Session.local({ threads: 0 });
      const q = await session.readStream
        .load(`kafka://${broker.bootstrap}/tx?startingOffsets=earliest&kafka.isolation.level=read_committed`)
        .writeStream.format('memory')
        .queryName('committed')
        .option('checkpointLocation', path.join(root, 'ckpt'))
        .trigger({ availableNow: true })
        .start();
      await q.awaitTermination();
      expect(session.table('committed').map((r) => r.value)).to.deep.equal(['c1', 'c2', 'c3', 'c4', 'c5']);
      expect(q.recentProgress.reduce((a, p) => a + p.numInputRows, 0)).to.equal(5);
    });
  });
});
