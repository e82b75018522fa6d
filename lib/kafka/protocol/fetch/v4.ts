/**
 * The Fetch request, version 4, for one partition. The response's record sets are left encoded, so the
 * caller picks their decoder (see fetched-partition.ts); kafkajs' own Fetch v4 parser only checks error codes.
 */
import { type KjsRequest, kafkajsEncoded, parseFetchV4Response } from '../../kafkajs-internals.js';
import { readInt64 } from '../primitives.js';

const FETCH_API_KEY = 1;

/** One partition of a Fetch response, its records still encoded. */
export interface FetchV4Partition {
  partition: number;
  errorCode: number;
  highWatermark: number;
  abortedTransactions: Array<{ producerId: string; firstOffset: string }>;
  /** The record set with its int32 size in front (what kafkajs' decoder reads). */
  recordSet: Buffer;
}

/** A Fetch v4 response. */
export interface FetchV4Response {
  responses: Array<{ topicName: string; partitions: FetchV4Partition[] }>;
}

/** A Fetch v4 request for `partition` of `topic` from `offset`. */
export function fetchRequest(
  topic: string,
  partition: number,
  offset: number,
  opts: {
    isolationLevel: number;
    maxWaitMs: number;
    maxBytes: number;
  },
): KjsRequest<FetchV4Response, FetchV4Response> {
  const topicLen = Buffer.byteLength(topic);
  const size = 4 + 4 + 4 + 4 + 1 + 4 + 2 + topicLen + 4 + 4 + 8 + 4;
  const body = Buffer.allocUnsafe(size);
  let pos = body.writeInt32BE(-1, 0); // replica id: a client
  pos = body.writeInt32BE(opts.maxWaitMs, pos);
  pos = body.writeInt32BE(1, pos); // min bytes
  pos = body.writeInt32BE(opts.maxBytes, pos);
  pos = body.writeInt8(opts.isolationLevel, pos);
  pos = body.writeInt32BE(1, pos);
  pos = body.writeInt16BE(topicLen, pos);
  pos += body.write(topic, pos, 'utf8');
  pos = body.writeInt32BE(1, pos);
  pos = body.writeInt32BE(partition, pos);
  pos = body.writeBigInt64BE(BigInt(offset), pos);
  body.writeInt32BE(opts.maxBytes, pos);
  return {
    request: {
      apiKey: FETCH_API_KEY,
      apiVersion: 4,
      apiName: 'Fetch',
      expectResponse: () => true,
      encode: async () => kafkajsEncoded(body),
    },
    response: { decode: async (raw: Buffer) => decodeFetchV4(raw), parse: parseFetchV4Response },
  };
}

function decodeFetchV4(buf: Buffer): FetchV4Response {
  let pos = 4; // throttle time
  const responses: FetchV4Response['responses'] = [];
  const topics = buf.readInt32BE(pos);
  pos += 4;
  for (let t = 0; t < topics; t++) {
    const nameLen = buf.readInt16BE(pos);
    const topicName = buf.toString('utf8', pos + 2, pos + 2 + nameLen);
    pos += 2 + nameLen;
    const count = buf.readInt32BE(pos);
    pos += 4;
    const partitions: FetchV4Partition[] = [];
    for (let p = 0; p < count; p++) {
      const partition = buf.readInt32BE(pos);
      const errorCode = buf.readInt16BE(pos + 4);
      const highWatermark = readInt64(buf, pos + 6);
      pos += 22; // partition, error code, high watermark, last stable offset
      const aborted = buf.readInt32BE(pos);
      pos += 4;
      const abortedTransactions: FetchV4Partition['abortedTransactions'] = [];
      for (let a = 0; a < aborted; a++) {
        abortedTransactions.push({
          producerId: buf.readBigInt64BE(pos).toString(),
          firstOffset: buf.readBigInt64BE(pos + 8).toString(),
        });
        pos += 16;
      }
      const setSize = Math.max(0, buf.readInt32BE(pos));
      const recordSet = buf.subarray(pos, Math.min(buf.length, pos + 4 + setSize));
      pos += 4 + setSize;
      partitions.push({ partition, errorCode, highWatermark, abortedTransactions, recordSet });
    }
    responses.push({ topicName, partitions });
  }
  return { responses };
}
