/**
 * The Fetch request, versions 4 to 16, without a fetch session (each request is a full one: the client reads a
 * planned range one partition per request, and waits for new records of several at once, so a session would
 * save little). From v9 the request
 * carries the leader epoch the client knows, so a broker that moved on answers FENCED_LEADER_EPOCH instead
 * of serving a stale leader's log; v12+ are flexible (KIP-482); v13+ name the topic by its id instead of its
 * name; v15 drops the replica id (consumers never had one). The response's record sets are left encoded, so
 * the caller picks their decoder (see fetched-partition.ts).
 */
import { encodedRequest, type KjsRequest, kafkajsProtocolError, parseFetchResponse } from '../../kafkajs-internals.js';
import { FETCH_API_KEY, isFlexible } from '../api-versions.js';
import { RequestWriter } from '../request-writer.js';
import { ResponseReader } from '../response-reader.js';

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
  /** Per topic; from v13 the topic is named by id, and `topicName` is the requested name when the id matches. */
  responses: Array<{ topicName: string; partitions: FetchResponsePartition[] }>;
}

/** The first Fetch version that names topics by id. */
export const FETCH_BY_TOPIC_ID = 13;

/** Where a Fetch reads one partition: from `offset`, with the leader epoch the client knows (-1: unknown). */
export interface FetchPosition {
  partition: number;
  offset: number;
  currentLeaderEpoch?: number;
}

/** Options of a Fetch request. */
export interface FetchOptions {
  version: number;
  isolationLevel: number;
  maxWaitMs: number;
  /** The most bytes of each partition (and of the response, per partition asked). */
  maxBytes: number;
  /** The partition leader's epoch as metadata last told it; -1 (unknown) skips the broker's check. */
  currentLeaderEpoch?: number;
  /** The topic's id (16 bytes), required from v13. */
  topicId?: Buffer | null;
}

/** A Fetch request (`version` 4 to 16) for `partition` of `topic` from `offset`. */
export function fetchRequest(
  topic: string,
  partition: number,
  offset: number,
  opts: FetchOptions,
): KjsRequest<FetchResponse, FetchResponse> {
  return fetchPartitionsRequest(topic, [{ partition, offset, currentLeaderEpoch: opts.currentLeaderEpoch }], opts);
}

/**
 * A Fetch request for several partitions of `topic`, each from its own position: the broker answers once any
 * of them has a record (min bytes 1) or `maxWaitMs` has passed.
 */
export function fetchPartitionsRequest(
  topic: string,
  positions: readonly FetchPosition[],
  opts: FetchOptions,
): KjsRequest<FetchResponse, FetchResponse> {
  const v = opts.version;
  if (v < 4 || v > 16) throw new RangeError(`Fetch v${v} is not spoken (4 to 16 are)`);
  const topicId = opts.topicId ?? null;
  if (v >= FETCH_BY_TOPIC_ID && !topicId) throw new RangeError(`Fetch v${v} needs the topic id of ${topic}`);
  const w = new RequestWriter(isFlexible(FETCH_API_KEY, v), 64 + Buffer.byteLength(topic) + 40 * positions.length);
  if (v <= 14) w.int32(-1); // replica id: a consumer
  // min bytes 1; the response's byte limit covers every partition's
  w.int32(opts.maxWaitMs)
    .int32(1)
    .int32(opts.maxBytes * positions.length)
    .int8(opts.isolationLevel);
  if (v >= 7) w.int32(0).int32(-1); // session id none, session epoch -1: a full fetch that opens no session
  w.arrayLength(1);
  if (v >= FETCH_BY_TOPIC_ID) w.uuid(topicId!);
  else w.string(topic);
  w.arrayLength(positions.length);
  for (const p of positions) {
    w.int32(p.partition);
    if (v >= 9) w.int32(p.currentLeaderEpoch ?? -1);
    w.int64(p.offset);
    if (v >= 12) w.int32(-1); // last fetched epoch: unknown, no divergence check
    if (v >= 5) w.int64(-1); // log start offset: only followers send one
    w.int32(opts.maxBytes).taggedFields();
  }
  w.taggedFields();
  if (v >= 7) w.arrayLength(0); // no forgotten topics
  if (v >= 11) w.string(''); // rack id
  const body = w.taggedFields().finish();
  return {
    request: encodedRequest(FETCH_API_KEY, 'Fetch', v, body),
    response: { decode: async (raw: Buffer) => decodeFetchResponse(raw, v, topic, topicId), parse },
  };
}

/** Throws kafkajs' typed error for a failed request (v7+) or its first failed partition. */
async function parse(res: FetchResponse): Promise<FetchResponse> {
  if (res.errorCode !== 0) throw kafkajsProtocolError(res.errorCode);
  return parseFetchResponse(res);
}

/**
 * Decodes a Fetch response of version `v`; `topic` and `topicId` are the request's. A flexible answer's record
 * set (its length an unsigned varint) gets its int32 size written into the four bytes before it, which hold
 * fields already read, so record sets of every version reach the decoders alike without a copy.
 */
export function decodeFetchResponse(raw: Buffer, v: number, topic: string, topicId: Buffer | null): FetchResponse {
  const r = new ResponseReader(raw, isFlexible(FETCH_API_KEY, v));
  r.skip(4); // throttle time
  let errorCode = 0;
  if (v >= 7) {
    errorCode = r.int16();
    r.skip(4); // session id
  }
  const responses: FetchResponse['responses'] = [];
  for (let topics = r.arrayLength(), t = 0; t < topics; t++) {
    let topicName: string;
    if (v >= FETCH_BY_TOPIC_ID) {
      const id = r.uuid();
      topicName = topicId?.equals(id) ? topic : id.toString('hex');
    } else {
      topicName = r.string() ?? '';
    }
    const partitions: FetchResponsePartition[] = [];
    for (let count = r.arrayLength(), p = 0; p < count; p++) {
      const partition = r.int32();
      const partitionError = r.int16();
      const highWatermark = r.int64();
      r.skip(v >= 5 ? 16 : 8); // last stable offset, log start offset
      const abortedTransactions: FetchResponsePartition['abortedTransactions'] = [];
      for (let aborted = r.arrayLength(), a = 0; a < aborted; a++) {
        abortedTransactions.push({ producerId: r.int64String(), firstOffset: r.int64String() });
        r.taggedFields();
      }
      if (v >= 11) r.skip(4); // preferred read replica: sluice reads from leaders
      const { start, length } = r.bytesAt();
      const size = Math.max(0, length);
      if (r.flexible) raw.writeInt32BE(size, start - 4);
      const recordSet = raw.subarray(start - 4, Math.min(raw.length, start + size));
      r.taggedFields();
      partitions.push({ partition, errorCode: partitionError, highWatermark, abortedTransactions, recordSet });
    }
    r.taggedFields();
    responses.push({ topicName, partitions });
  }
  return { errorCode, responses };
}
