/**
 * The AddPartitionsToTxn request, versions 1 to 3 (flexible from v3): a producer adds partitions to its open
 * transaction before it writes to them, so the coordinator can commit or abort them together.
 */
import { encodedRequest, type KjsRequest, kafkajsProtocolError } from '../../kafkajs-internals.js';
import { ADD_PARTITIONS_TO_TXN_API_KEY, isFlexible } from '../api-versions.js';
import { RequestWriter } from '../request-writer.js';
import { ResponseReader } from '../response-reader.js';
import type { ProducerEpoch } from './init-producer-id.js';

/** Each partition's error code, by topic. */
type Results = Array<{ topic: string; partitions: Array<{ partition: number; errorCode: number }> }>;

/** An AddPartitionsToTxn request (`version` 1 to 3) for the partitions of `topics`; fails with the first refusal. */
export function addPartitionsToTxnRequest(
  version: number,
  transactionalId: string,
  producer: ProducerEpoch,
  topics: Map<string, number[]>,
): KjsRequest<Results, Results> {
  if (version < 1 || version > 3) throw new RangeError(`AddPartitionsToTxn v${version} is not spoken (1 to 3 are)`);
  const flexible = isFlexible(ADD_PARTITIONS_TO_TXN_API_KEY, version);
  const w = new RequestWriter(flexible);
  w.string(transactionalId).int64(producer.producerId).int16(producer.epoch).arrayLength(topics.size);
  for (const [topic, partitions] of topics) {
    w.string(topic).arrayLength(partitions.length);
    for (const p of partitions) w.int32(p);
    w.taggedFields();
  }
  const body = w.taggedFields().finish();
  return {
    request: encodedRequest(ADD_PARTITIONS_TO_TXN_API_KEY, 'AddPartitionsToTxn', version, body),
    response: {
      decode: async (raw: Buffer) => {
        const r = new ResponseReader(raw, flexible);
        r.skip(4); // throttle time
        const results: Results = [];
        for (let n = r.arrayLength(), t = 0; t < n; t++) {
          const topic = r.string() ?? '';
          const partitions: Results[number]['partitions'] = [];
          for (let m = r.arrayLength(), i = 0; i < m; i++) {
            partitions.push({ partition: r.int32(), errorCode: r.int16() });
            r.taggedFields();
          }
          r.taggedFields();
          results.push({ topic, partitions });
        }
        return results;
      },
      parse: async (results) => {
        // A refused partition makes the others OPERATION_NOT_ATTEMPTED (55): the refusal is the news.
        const failed = results
          .flatMap((t) => t.partitions)
          .filter((p) => p.errorCode !== 0)
          .sort((a, b) => (a.errorCode === 55 ? 1 : 0) - (b.errorCode === 55 ? 1 : 0));
        if (failed.length > 0) throw kafkajsProtocolError(failed[0].errorCode);
        return results;
      },
    },
  };
}
