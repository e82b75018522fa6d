/**
 * The Fetch request (version 4) for one partition, and its record batches decoded by sluice itself.
 * kafkajs decodes every record through 64-bit `Long` objects and offset strings, which took more CPU than
 * parsing the JSON values; here offsets and timestamps are plain numbers and keys, values and header values
 * are views of the response buffer. Record sets this decoder does not handle (compressed batches, the
 * pre-0.11 message format, aborted transactions under read_committed) go through kafkajs' decoder instead.
 */
import { createRequire } from 'node:module';
import type { KafkaMessage } from './kafka-client.js';

const require = createRequire(import.meta.url);
const KjsEncoder = require('kafkajs/src/protocol/encoder') as new (size?: number) => { writeBuffer(b: Buffer): unknown };
const KjsDecoder = require('kafkajs/src/protocol/decoder') as new (buf: Buffer) => unknown;
/** kafkajs' record-set decoder (reads an int32 size, then record batches or a legacy message set). */
const kjsDecodeMessages = require('kafkajs/src/protocol/requests/fetch/v4/decodeMessages') as (decoder: unknown) => Promise<KjsRecord[]>;
/** Throws kafkajs' typed error (KafkaJSOffsetOutOfRange, retriable protocol errors) for a failed partition. */
const fetchV4Parse = (require('kafkajs/src/protocol/requests/fetch/v4/response') as { parse(data: unknown): Promise<unknown> }).parse;
const filterAbortedMessages = require('kafkajs/src/consumer/filterAbortedMessages') as (
  args: { messages: KjsRecord[]; abortedTransactions: unknown[] }) => KjsRecord[];

/** A record as kafkajs decodes it. */
interface KjsRecord {
  offset: string;
  timestamp: string;
  key: Buffer | null;
  value: Buffer | null;
  headers: Record<string, Buffer | Buffer[]>;
  isControlRecord: boolean;
  batchContext: { firstOffset: string; lastOffsetDelta: number };
}

/** One partition of a Fetch response, its records still encoded. */
interface RawPartition {
  partition: number;
  errorCode: number;
  highWatermark: number;
  abortedTransactions: Array<{ producerId: string; firstOffset: string }>;
  /** The record set with its int32 size in front (what kafkajs' decoder reads). */
  recordSet: Buffer;
}

/** What a fetch of one partition gives back. */
export interface FetchedPartition {
  highWatermark: number;
  /** Records in offset order, without control records (and aborted ones under read_committed). */
  messages: KafkaMessage[];
  /** The offset after the last complete record batch, or null when none was complete. */
  batchEnd: number | null;
}

const FETCH_API_KEY = 1;
/** Bytes of a record batch header up to and including the record count. */
const BATCH_OVERHEAD = 61;
const COMPRESSION_MASK = 0x07;
const LOG_APPEND_TIME = 0x08;
const CONTROL_BATCH = 0x20;

function readInt64(buf: Buffer, pos: number): number {
  return buf.readInt32BE(pos) * 4294967296 + buf.readUInt32BE(pos + 4);
}

/** A Fetch v4 request for `partition` of `topic` from `offset`. */
export function fetchRequest(topic: string, partition: number, offset: number, opts: {
  isolationLevel: number; maxWaitMs: number; maxBytes: number;
}): { request: object; response: { decode(raw: Buffer): Promise<{ responses: Array<{ topicName: string; partitions: RawPartition[] }> }>; parse(d: unknown): Promise<unknown> } } {
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
      apiKey: FETCH_API_KEY, apiVersion: 4, apiName: 'Fetch', expectResponse: () => true,
      encode: async () => {
        const e = new KjsEncoder(size);
        e.writeBuffer(body);
        return e;
      },
    },
    response: { decode: async (raw: Buffer) => decodeFetchV4(raw), parse: fetchV4Parse as (d: unknown) => Promise<unknown> },
  };
}

function decodeFetchV4(buf: Buffer): { responses: Array<{ topicName: string; partitions: RawPartition[] }> } {
  let pos = 4; // throttle time
  const responses: Array<{ topicName: string; partitions: RawPartition[] }> = [];
  const topics = buf.readInt32BE(pos);
  pos += 4;
  for (let t = 0; t < topics; t++) {
    const nameLen = buf.readInt16BE(pos);
    const topicName = buf.toString('utf8', pos + 2, pos + 2 + nameLen);
    pos += 2 + nameLen;
    const count = buf.readInt32BE(pos);
    pos += 4;
    const partitions: RawPartition[] = [];
    for (let p = 0; p < count; p++) {
      const partition = buf.readInt32BE(pos);
      const errorCode = buf.readInt16BE(pos + 4);
      const highWatermark = readInt64(buf, pos + 6);
      pos += 22; // partition, error code, high watermark, last stable offset
      const aborted = buf.readInt32BE(pos);
      pos += 4;
      const abortedTransactions: RawPartition['abortedTransactions'] = [];
      for (let a = 0; a < aborted; a++) {
        abortedTransactions.push({ producerId: buf.readBigInt64BE(pos).toString(), firstOffset: buf.readBigInt64BE(pos + 8).toString() });
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

/** Decodes one partition's record set (see the module comment for which decoder runs). */
export async function decodePartition(p: RawPartition, readCommitted: boolean): Promise<FetchedPartition> {
  const fast = readCommitted && p.abortedTransactions.length > 0 ? null : decodeRecordBatches(p.recordSet);
  if (fast) return { highWatermark: p.highWatermark, ...fast };
  const all = await kjsDecodeMessages(new KjsDecoder(p.recordSet));
  const kept = readCommitted && p.abortedTransactions.length > 0
    ? filterAbortedMessages({ messages: all, abortedTransactions: p.abortedTransactions })
    : all;
  const messages: KafkaMessage[] = [];
  for (const r of kept) {
    if (r.isControlRecord) continue;
    const m: KafkaMessage = { offset: Number(r.offset), timestamp: Number(r.timestamp), key: r.key, value: r.value };
    for (const _ in r.headers) {
      m.headers = r.headers;
      break;
    }
    messages.push(m);
  }
  const last = all.length > 0 ? all[all.length - 1].batchContext : null;
  return { highWatermark: p.highWatermark, messages, batchEnd: last ? Number(last.firstOffset) + last.lastOffsetDelta + 1 : null };
}

/** Reads a zigzag varint (up to 64 bits, as a safe number) at `at.pos`. */
function readVarLong(buf: Buffer, at: { pos: number }): number {
  let z = 0;
  let mul = 1;
  let b: number;
  do {
    b = buf[at.pos++];
    z += (b & 0x7f) * mul;
    mul *= 128;
  } while (b & 0x80);
  return z % 2 === 0 ? z / 2 : -(z + 1) / 2;
}

/** Length-prefixed bytes as a view of `buf` (null for length -1). */
function readBytes(buf: Buffer, at: { pos: number }): Buffer | null {
  const len = readVarLong(buf, at);
  if (len < 0) return null;
  const out = buf.subarray(at.pos, at.pos + len);
  at.pos += len;
  return out;
}

/**
 * Uncompressed magic-2 record batches into messages; null when the set holds anything else. A batch cut off
 * at the end of the set (the fetch size ends inside it) is left out, as Kafka's protocol allows.
 */
export function decodeRecordBatches(set: Buffer): { messages: KafkaMessage[]; batchEnd: number | null } | null {
  const messages: KafkaMessage[] = [];
  let batchEnd: number | null = null;
  let start = 4;
  const at = { pos: 0 };
  while (start + BATCH_OVERHEAD <= set.length) {
    const end = start + 12 + set.readInt32BE(start + 8);
    if (end > set.length) break;
    const attributes = set.readInt16BE(start + 21);
    if (set[start + 16] !== 2 || (attributes & COMPRESSION_MASK) !== 0) return null;
    const baseOffset = readInt64(set, start);
    batchEnd = baseOffset + set.readInt32BE(start + 23) + 1;
    if ((attributes & CONTROL_BATCH) === 0) {
      const firstTimestamp = readInt64(set, start + 27);
      const logAppendTime = (attributes & LOG_APPEND_TIME) !== 0 ? readInt64(set, start + 35) : -1;
      const count = set.readInt32BE(start + 57);
      at.pos = start + BATCH_OVERHEAD;
      for (let i = 0; i < count; i++) {
        readVarLong(set, at); // record length
        at.pos++; // record attributes
        const timestampDelta = readVarLong(set, at);
        const offset = baseOffset + readVarLong(set, at);
        const key = readBytes(set, at);
        const value = readBytes(set, at);
        const m: KafkaMessage = { offset, timestamp: logAppendTime >= 0 ? logAppendTime : firstTimestamp + timestampDelta, key, value };
        const headerCount = readVarLong(set, at);
        if (headerCount > 0) {
          const headers: Record<string, Buffer | Buffer[]> = {};
          for (let h = 0; h < headerCount; h++) {
            const nameLen = readVarLong(set, at);
            const name = set.toString('utf8', at.pos, at.pos + nameLen);
            at.pos += nameLen;
            // A null header value stays null, as kafkajs gives it.
            const v = readBytes(set, at) as Buffer;
            const prev = headers[name];
            headers[name] = prev === undefined ? v : Array.isArray(prev) ? [...prev, v] : [prev, v];
          }
          m.headers = headers;
        }
        messages.push(m);
      }
    }
    start = end;
  }
  return { messages, batchEnd };
}
