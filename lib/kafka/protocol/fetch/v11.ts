/**
 * The Fetch request, versions 4 to 11, for one partition, without a fetch session (each request is a full
 * one: the client fetches one partition per request, so a session would save nothing). From v9 the request
 * carries the leader epoch the client knows, so a broker that moved on answers FENCED_LEADER_EPOCH instead
 * of serving a stale leader's log. The response's record sets are left encoded, so the caller picks their
 * decoder (see fetched-partition.ts).
 */
import { type KjsRequest, kafkajsEncoded, kafkajsProtocolError, parseFetchResponse } from '../../kafkajs-internals.js';
import { FETCH_API_KEY } from '../api-versions.js';
import { readInt64 } from '../primitives.js';

/** One partition of a Fetch response, its records still encoded. */
export interface FetchResponsePartition {
  partition: number;
  errorCode: number;
  highWatermark: number;
  abortedTransactions: Array<{ producerId: string; firstOffset: string }>;
  /** The record set with its int32 size in front (what kafkajs' decoder reads). */
  recordSet: Buffer;
}

/** A Fetch response. */
export interface FetchResponse {
  errorCode: number;
  responses: Array<{ topicName: string; partitions: FetchResponsePartition[] }>;
}

/** A Fetch request (`version` 4 to 11) for `partition` of `topic` from `offset`. */
export function fetchRequest(
  topic: string,
  partition: number,
  offset: number,
  opts: {
    version: number;
    isolationLevel: number;
    maxWaitMs: number;
    maxBytes: number;
    /** The partition leader's epoch as metadata last told it; -1 (unknown) skips the broker's check. */
    currentLeaderEpoch?: number;
  },
): KjsRequest<FetchResponse, FetchResponse> {
  const v = opts.version;
  if (v < 4 || v > 11) throw new RangeError(`Fetch v${v} is not spoken (4 to 11 are)`);
  const topicLen = Buffer.byteLength(topic);
  const size =
    4 + 4 + 4 + 4 + 1 + (v >= 7 ? 8 : 0) + 4 + 2 + topicLen + 4 + 4 + (v >= 9 ? 4 : 0) + 8 + (v >= 5 ? 8 : 0) + 4;
  const body = Buffer.allocUnsafe(size + (v >= 7 ? 4 : 0) + (v >= 11 ? 2 : 0));
  let pos = body.writeInt32BE(-1, 0); // replica id: a client
  pos = body.writeInt32BE(opts.maxWaitMs, pos);
  pos = body.writeInt32BE(1, pos); // min bytes
  pos = body.writeInt32BE(opts.maxBytes, pos);
  pos = body.writeInt8(opts.isolationLevel, pos);
  if (v >= 7) {
    pos = body.writeInt32BE(0, pos); // session id: none
    pos = body.writeInt32BE(-1, pos); // session epoch: a full fetch that opens no session
  }
  pos = body.writeInt32BE(1, pos);
  pos = body.writeInt16BE(topicLen, pos);
  pos += body.write(topic, pos, 'utf8');
  pos = body.writeInt32BE(1, pos);
  pos = body.writeInt32BE(partition, pos);
  if (v >= 9) pos = body.writeInt32BE(opts.currentLeaderEpoch ?? -1, pos);
  pos = body.writeBigInt64BE(BigInt(offset), pos);
  if (v >= 5) pos = body.writeBigInt64BE(-1n, pos); // log start offset: only followers send one
  pos = body.writeInt32BE(opts.maxBytes, pos);
  if (v >= 7) pos = body.writeInt32BE(0, pos); // no forgotten topics
  if (v >= 11) body.writeInt16BE(0, pos); // rack id: empty
  return {
    request: {
      apiKey: FETCH_API_KEY,
      apiVersion: v,
      apiName: 'Fetch',
      expectResponse: () => true,
      encode: async () => kafkajsEncoded(body),
    },
    response: { decode: async (raw: Buffer) => decodeFetchResponse(raw, v), parse },
  };
}

/** Throws kafkajs' typed error for a failed request (v7+) or its first failed partition. */
async function parse(res: FetchResponse): Promise<FetchResponse> {
  if (res.errorCode !== 0) throw kafkajsProtocolError(res.errorCode);
  return parseFetchResponse(res);
}

function decodeFetchResponse(buf: Buffer, v: number): FetchResponse {
  let pos = 4; // throttle time
  let errorCode = 0;
  if (v >= 7) {
    errorCode = buf.readInt16BE(pos);
    pos += 6; // error code, session id
  }
  const responses: FetchResponse['responses'] = [];
  const topics = buf.readInt32BE(pos);
  pos += 4;
  for (let t = 0; t < topics; t++) {
    const nameLen = buf.readInt16BE(pos);
    const topicName = buf.toString('utf8', pos + 2, pos + 2 + nameLen);
    pos += 2 + nameLen;
    const count = buf.readInt32BE(pos);
    pos += 4;
    const partitions: FetchResponsePartition[] = [];
    for (let p = 0; p < count; p++) {
      const partition = buf.readInt32BE(pos);
      const partitionError = buf.readInt16BE(pos + 4);
      const highWatermark = readInt64(buf, pos + 6);
      pos += 22 + (v >= 5 ? 8 : 0); // partition, error code, high watermark, last stable offset, log start offset
      const aborted = buf.readInt32BE(pos); // -1 (null) reads as none
      pos += 4;
      const abortedTransactions: FetchResponsePartition['abortedTransactions'] = [];
      for (let a = 0; a < aborted; a++) {
        abortedTransactions.push({
          producerId: buf.readBigInt64BE(pos).toString(),
          firstOffset: buf.readBigInt64BE(pos + 8).toString(),
        });
        pos += 16;
      }
      if (v >= 11) pos += 4; // preferred read replica: sluice reads from leaders
      const setSize = Math.max(0, buf.readInt32BE(pos));
      const recordSet = buf.subarray(pos, Math.min(buf.length, pos + 4 + setSize));
      pos += 4 + setSize;
      partitions.push({ partition, errorCode: partitionError, highWatermark, abortedTransactions, recordSet });
    }
    responses.push({ topicName, partitions });
  }
  return { errorCode, responses };
}
