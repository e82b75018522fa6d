/**
 * The Produce request, version 3, of record batches already encoded (see record-batch.ts), written
 * into one buffer per request. The response is decoded by kafkajs' own Produce v3 decoder, so failed
 * partitions become kafkajs' typed errors.
 */
import { type KjsRequest, kafkajsEncoded, type ProduceV3Response, produceV3Response } from '../../kafkajs-internals.js';

const PRODUCE_API_KEY = 0;

/** A Produce v3 request of record batches for partitions of one topic; `acks` -1 waits for every in-sync replica. */
export function produceRequest(
  topic: string,
  batches: Array<{ partition: number; batch: Buffer }>,
  timeoutMs: number,
  acks: -1 | 1,
): KjsRequest<unknown, ProduceV3Response> {
  const topicLen = Buffer.byteLength(topic);
  let size = 2 + 2 + 4 + 4 + 2 + topicLen + 4;
  for (const b of batches) size += 4 + 4 + b.batch.length;
  const body = Buffer.allocUnsafe(size);
  let pos = body.writeInt16BE(-1, 0); // transactional id: null
  pos = body.writeInt16BE(acks, pos);
  pos = body.writeInt32BE(timeoutMs, pos);
  pos = body.writeInt32BE(1, pos); // one topic
  pos = body.writeInt16BE(topicLen, pos);
  pos += body.write(topic, pos, 'utf8');
  pos = body.writeInt32BE(batches.length, pos);
  for (const b of batches) {
    pos = body.writeInt32BE(b.partition, pos);
    pos = body.writeInt32BE(b.batch.length, pos);
    pos += b.batch.copy(body, pos);
  }
  return {
    request: {
      apiKey: PRODUCE_API_KEY,
      apiVersion: 3,
      apiName: 'Produce',
      expectResponse: () => true,
      encode: async () => kafkajsEncoded(body),
    },
    response: produceV3Response,
  };
}
