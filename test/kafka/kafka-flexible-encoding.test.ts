import { expect } from 'chai';
import { decodePartition } from '../../lib/kafka/protocol/fetch/fetched-partition.js';
import { fetchRequest } from '../../lib/kafka/protocol/fetch/v16.js';
import { listOffsetsRequest } from '../../lib/kafka/protocol/list-offsets/v7.js';
import { decodeMetadataResponse, metadataRequest } from '../../lib/kafka/protocol/metadata/v12.js';
import { produceRequest } from '../../lib/kafka/protocol/produce/v10.js';
import { encodeRecordBatch } from '../../lib/kafka/protocol/record-batch.js';

/**
 * Flexible versions (KIP-482) byte for byte, against layouts written out from Kafka's message definitions
 * (clients/src/main/resources/common/message/*.json): an independent check of what the librdkafka mock
 * accepts in the protocol tests, which could share a misreading with the client.
 */
describe('kafka flexible versions, byte for byte', () => {
  const hex = (s: string) => Buffer.from(s.replace(/[^0-9a-f]/g, ''), 'hex');
  /** The body a request encodes (what follows the client id of the request header). */
  const body = async (r: { request: { encode: () => Promise<unknown> } }) =>
    ((await r.request.encode()) as { buffer: Buffer }).buffer;

  it('Fetch v12 request: header tags, compact topic name, leader and last fetched epochs, empty forgotten topics and rack', async () => {
    const req = fetchRequest('t', 3, 42, {
      version: 12,
      isolationLevel: 1,
      maxWaitMs: 500,
      maxBytes: 1 << 20,
      currentLeaderEpoch: 7,
    });
    expect((await body(req)).toString('hex')).to.equal(
      hex(`00
        ffffffff 000001f4 00000001 00100000 01 00000000 ffffffff
        02 0274
          02 00000003 00000007 000000000000002a ffffffff ffffffffffffffff 00100000 00
        00
        01 01 00`).toString('hex'),
    );
  });

  it('Fetch v15 request: no replica id, the topic named by its id', async () => {
    const id = hex('000102030405060708090a0b0c0d0e0f');
    const req = fetchRequest('t', 0, 5, { version: 15, isolationLevel: 0, maxWaitMs: 1, maxBytes: 16, topicId: id });
    expect((await body(req)).toString('hex')).to.equal(
      hex(`00
        00000001 00000001 00000010 00 00000000 ffffffff
        02 000102030405060708090a0b0c0d0e0f
          02 00000000 ffffffff 0000000000000005 ffffffff ffffffffffffffff 00000010 00
        00
        01 01 00`).toString('hex'),
    );
  });

  it('Fetch v12 response: tagged fields skipped, aborted transactions and compact records decoded', async () => {
    const batch = encodeRecordBatch(
      [
        { key: 'a', value: 'one', timestamp: 1000 },
        { key: 'b', value: 'two', timestamp: 1001 },
      ],
      0,
    );
    batch.writeBigInt64BE(40n, 0); // base offset
    expect(batch.length + 1, 'a one-byte length').to.be.below(128);
    const raw = Buffer.concat([
      hex(`00 00000000 0000 00000000
        02 0274
          02 00000003 0000 0000000000000064 0000000000000064 0000000000000000
            02 00000000000003e8 000000000000000a 00
            ffffffff`),
      Buffer.from([batch.length + 1]),
      batch,
      // Partition tags: CurrentLeader (tag 1, 9 bytes), which sluice does not need.
      hex(`01 01 09 00000002 00000005 00
        00
        00`),
    ]);
    const res = await fetchRequest('t', 3, 40, {
      version: 12,
      isolationLevel: 0,
      maxWaitMs: 1,
      maxBytes: 1,
    }).response.decode(raw);
    const p = res.responses[0].partitions[0];
    expect(res.responses[0].topicName).to.equal('t');
    expect(p).to.include({ partition: 3, errorCode: 0, highWatermark: 100 });
    expect(p.abortedTransactions).to.deep.equal([{ producerId: '1000', firstOffset: '10' }]);
    const decoded = await decodePartition(p, false);
    expect(decoded.records.toMessages().map((m) => `${m.offset}:${m.key}=${m.value}@${m.timestamp}`)).to.deep.equal([
      '40:a=one@1000',
      '41:b=two@1001',
    ]);
    expect(decoded.batchEnd).to.equal(42);
  });

  it('Produce v9 request: compact null transactional id, compact records, tags at every level', async () => {
    const batch = hex('c0ffee');
    const req = produceRequest(9, 't', [{ partition: 1, batch }], 30000, -1);
    expect((await body(req)).toString('hex')).to.equal(
      hex(`00 00 ffff 00007530 02 0274 02 00000001 04 c0ffee 00 00 00`).toString('hex'),
    );
  });

  it('Metadata v12: request by name with a zero topic id; response with topic ids and leader epochs', async () => {
    expect((await body(metadataRequest(12, ['t']))).toString('hex')).to.equal(
      hex(`00 02 00000000000000000000000000000000 0274 00 00 00 00`).toString('hex'),
    );
    const raw = hex(`00 00000000
      02 00000001 0a 6c6f63616c686f7374 00002384 00 00
      05 636c7573 00000001
      02 0000 0274 000102030405060708090a0b0c0d0e0f 00
        02 0000 00000000 00000001 00000006 02 00000001 02 00000001 01 00
        80000000 00
      00`);
    expect(decodeMetadataResponse(raw, 12)).to.deep.equal({
      brokers: [{ nodeId: 1, host: 'localhost', port: 9092 }],
      controllerId: 1,
      topics: [
        {
          name: 't',
          errorCode: 0,
          topicId: hex('000102030405060708090a0b0c0d0e0f'),
          partitions: [{ partition: 0, errorCode: 0, leader: 1, leaderEpoch: 6 }],
        },
      ],
    });
  });

  it('ListOffsets v6 request and response: the leader epoch per partition, flexible', async () => {
    const req = listOffsetsRequest(6, 't', 1, [{ partition: 2, timestamp: -2, currentLeaderEpoch: 4 }]);
    expect((await body(req)).toString('hex')).to.equal(
      hex(`00 ffffffff 01 02 0274 02 00000002 00000004 fffffffffffffffe 00 00 00`).toString('hex'),
    );
    const raw = hex(`00 00000000 02 0274 02 00000002 0000 ffffffffffffffff 0000000000000011 00000004 00 00 00`);
    expect(await req.response.parse(await req.response.decode(raw))).to.deep.equal([{ partition: 2, offset: 17 }]);
  });
});
