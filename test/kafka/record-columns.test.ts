import { expect } from 'chai';
import type { ProduceMessage } from '../../lib/kafka/messages.js';
import { decodeRecordBatches, encodeRecordBatch } from '../../lib/kafka/protocol/record-batch.js';
import type { RecordColumns } from '../../lib/kafka/record-columns.js';

/** One record batch of `messages` with the int32 size in front, as a Fetch response holds it, decoded. */
async function decoded(messages: ProduceMessage[]): Promise<RecordColumns> {
  const batch = encodeRecordBatch(messages, 1_700_000_000_000);
  const size = Buffer.alloc(4);
  size.writeInt32BE(batch.length);
  return (await decodeRecordBatches(Buffer.concat([size, batch])))!.records;
}

describe('Kafka record columns', () => {
  const messages: ProduceMessage[] = Array.from({ length: 20_001 }, (_, i) => ({
    key: i % 3 === 0 ? null : `k${i}`,
    value: i % 7 === 0 ? null : JSON.stringify({ account: `a${i % 13}`, amount: i }),
    timestamp: 1_700_000_000_000 + i,
    headers: i % 5 === 0 ? { h: `v${i}` } : undefined,
  }));

  it('keeps every record of a decoded batch: offsets, timestamps, keys, values, headers', async () => {
    const records = await decoded(messages);
    expect(records.length).to.equal(messages.length);
    for (const i of [0, 1, 5, 7, 8191, 8192, 20_000]) {
      const m = records.message(i);
      expect(m.offset, `offset ${i}`).to.equal(i);
      expect(m.timestamp).to.equal(messages[i].timestamp);
      expect(m.key?.toString() ?? null).to.equal(messages[i].key);
      expect(m.value?.toString() ?? null).to.equal(messages[i].value);
      expect(m.headers).to.deep.equal(i % 5 === 0 ? { h: Buffer.from(`v${i}`) } : undefined);
    }
  });
});
