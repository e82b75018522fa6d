/**
 * The Produce request, versions 3 to 8, of record batches already encoded (see record-batch.ts), written
 * into one buffer per request; the request layout is the same in all of them. The response grows: v5 adds
 * the log start offset, v8 the records a broker refused and why, which the thrown error carries.
 */
import { type KjsRequest, kafkajsEncoded, kafkajsProtocolError } from '../../kafkajs-internals.js';
import { PRODUCE_API_KEY } from '../api-versions.js';
import { readInt64 } from '../primitives.js';

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

/** A Produce request (`version` 3 to 8) of record batches for partitions of one topic; `acks` -1 waits for every in-sync replica. */
export function produceRequest(
  version: number,
  topic: string,
  batches: Array<{ partition: number; batch: Buffer }>,
  timeoutMs: number,
  acks: -1 | 1,
): KjsRequest<ProduceResponse, ProduceResponse> {
  if (version < 3 || version > 8) throw new RangeError(`Produce v${version} is not spoken (3 to 8 are)`);
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
      apiVersion: version,
      apiName: 'Produce',
      expectResponse: () => true,
      encode: async () => kafkajsEncoded(body),
    },
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

function decodeProduceResponse(buf: Buffer, v: number): ProduceResponse {
  const at = { pos: 0 };
  const int32 = () => {
    at.pos += 4;
    return buf.readInt32BE(at.pos - 4);
  };
  const string = (): string | null => {
    const len = buf.readInt16BE(at.pos);
    at.pos += 2;
    if (len < 0) return null;
    at.pos += len;
    return buf.toString('utf8', at.pos - len, at.pos);
  };
  const topics: ProduceResponse['topics'] = [];
  const topicCount = int32();
  for (let t = 0; t < topicCount; t++) {
    const topicName = string() ?? '';
    const partitions: ProducedPartition[] = [];
    const count = int32();
    for (let p = 0; p < count; p++) {
      const partition = int32();
      const errorCode = buf.readInt16BE(at.pos);
      const baseOffset = readInt64(buf, at.pos + 2);
      at.pos += 18 + (v >= 5 ? 8 : 0); // error code, base offset, log append time, log start offset
      const recordErrors: ProducedPartition['recordErrors'] = [];
      let errorMessage: string | null = null;
      if (v >= 8) {
        const n = int32();
        for (let i = 0; i < n; i++) recordErrors.push({ batchIndex: int32(), message: string() });
        errorMessage = string();
      }
      partitions.push({ partition, errorCode, baseOffset, errorMessage, recordErrors });
    }
    topics.push({ topicName, partitions });
  }
  return { topics };
}
