/**
 * The Produce request, versions 3 to 10, of record batches already encoded (see record-batch.ts). The
 * request layout is the same in all of them, in the flexible encoding (KIP-482) from v9; v10 only adds tagged
 * fields to the answer. The response grows: v5 adds the log start offset, v8 the records a broker refused and
 * why, which the thrown error carries.
 */
import { encodedRequest, type KjsRequest, kafkajsProtocolError } from '../../kafkajs-internals.js';
import { isFlexible, PRODUCE_API_KEY } from '../api-versions.js';
import { RequestWriter, sizeOfBytes } from '../request-writer.js';
import { ResponseReader } from '../response-reader.js';

/** One partition of a Produce response. */
export interface ProducedPartition {
  partition: number;
  errorCode: number;
  baseOffset: number;
  /** v8: the broker's reason, and the indexes of the records it refused, when it gave them. */
  errorMessage: string | null;
  recordErrors: Array<{ batchIndex: number; message: string | null }>;
}

/** A Produce response. */
export interface ProduceResponse {
  topics: Array<{ topicName: string; partitions: ProducedPartition[] }>;
}

/**
 * A Produce request (`version` 3 to 10) of record batches for partitions of one topic; `acks` -1 waits for every
 * in-sync replica. `transactionalId` names the transaction of transactional batches (null for others).
 */
export function produceRequest(
  version: number,
  topic: string,
  batches: Array<{ partition: number; batch: Buffer }>,
  timeoutMs: number,
  acks: -1 | 1,
  transactionalId: string | null = null,
): KjsRequest<ProduceResponse, ProduceResponse> {
  if (version < 3 || version > 10) throw new RangeError(`Produce v${version} is not spoken (3 to 10 are)`);
  const flexible = isFlexible(PRODUCE_API_KEY, version);
  let size = 32 + Buffer.byteLength(topic) + Buffer.byteLength(transactionalId ?? '');
  for (const b of batches) size += 8 + sizeOfBytes(b.batch.length, flexible);
  const w = new RequestWriter(flexible, size);
  w.string(transactionalId).int16(acks).int32(timeoutMs);
  w.arrayLength(1).string(topic).arrayLength(batches.length);
  for (const b of batches) w.int32(b.partition).bytes(b.batch).taggedFields();
  const body = w.taggedFields().taggedFields().finish();
  return {
    request: encodedRequest(PRODUCE_API_KEY, 'Produce', version, body),
    response: { decode: async (raw: Buffer) => decodeProduceResponse(raw, version), parse },
  };
}

/** Throws kafkajs' typed error for the first failed partition, with the broker's reasons (v8) in its message. */
async function parse(res: ProduceResponse): Promise<ProduceResponse> {
  for (const t of res.topics) {
    for (const p of t.partitions) {
      if (p.errorCode === 0) continue;
      const err = kafkajsProtocolError(p.errorCode);
      const reasons = [
        p.errorMessage,
        ...p.recordErrors.map((r) => `record ${r.batchIndex}${r.message ? `: ${r.message}` : ''}`),
      ].filter((r) => r);
      if (reasons.length > 0) err.message += ` (${reasons.join('; ')})`;
      throw err;
    }
  }
  return res;
}

function decodeProduceResponse(raw: Buffer, v: number): ProduceResponse {
  const r = new ResponseReader(raw, isFlexible(PRODUCE_API_KEY, v));
  const topics: ProduceResponse['topics'] = [];
  for (let topicCount = r.arrayLength(), t = 0; t < topicCount; t++) {
    const topicName = r.string() ?? '';
    const partitions: ProducedPartition[] = [];
    for (let count = r.arrayLength(), p = 0; p < count; p++) {
      const partition = r.int32();
      const errorCode = r.int16();
      const baseOffset = r.int64();
      r.skip(v >= 5 ? 16 : 8); // log append time, log start offset
      const recordErrors: ProducedPartition['recordErrors'] = [];
      let errorMessage: string | null = null;
      if (v >= 8) {
        for (let n = r.arrayLength(), i = 0; i < n; i++) {
          recordErrors.push({ batchIndex: r.int32(), message: r.string() });
          r.taggedFields();
        }
        errorMessage = r.string();
      }
      r.taggedFields();
      partitions.push({ partition, errorCode, baseOffset, errorMessage, recordErrors });
    }
    r.taggedFields();
    topics.push({ topicName, partitions });
  }
  return { topics };
}
