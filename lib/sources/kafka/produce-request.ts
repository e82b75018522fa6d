/**
 * The Produce request (version 3) with its record batches (magic 2, uncompressed), encoded by sluice itself
 * into one buffer per request. kafkajs' producer encodes each record and each header into a zero-filled
 * 512-byte buffer of its own and groups messages by partition in quadratic time, which made producing cost
 * ~40 µs per record on this machine; sizes are computed first here, then every byte is written once.
 * The response is decoded by kafkajs' own Produce v3 decoder (errors become kafkajs' typed errors).
 */
import { createRequire } from 'node:module';
import type { ProduceMessage } from './kafka-client.js';

const require = createRequire(import.meta.url);
/** CRC-32C of a buffer, unsigned (kafkajs/src/protocol/recordBatch/crc32C). */
const crc32C = require('kafkajs/src/protocol/recordBatch/crc32C') as (buf: Buffer) => number;
/** kafkajs' protocol encoder: what its connection expects `encode()` to return. */
const KjsEncoder = require('kafkajs/src/protocol/encoder') as new (size?: number) => { writeBuffer(b: Buffer): unknown };
/** Produce v3 response: `decode` reads it, `parse` throws kafkajs' error for the first failed partition. */
export const produceV3Response = require('kafkajs/src/protocol/requests/produce/v3/response') as {
  decode(raw: Buffer): Promise<unknown>;
  parse(data: unknown): Promise<ProduceV3Response>;
};

/** What the Produce v3 response holds. */
export interface ProduceV3Response {
  topics: Array<{ topicName: string; partitions: Array<{ partition: number; errorCode: number; baseOffset: string }> }>;
}

/** A request as kafkajs' connection sends it. */
export interface KjsProtocolRequest {
  request: { apiKey: number; apiVersion: number; apiName: string; expectResponse: () => boolean; encode: () => Promise<unknown> };
  response: typeof produceV3Response;
}

const PRODUCE_API_KEY = 0;
/** Bytes of a record batch before its records (Kafka's DefaultRecordBatch.RECORD_BATCH_OVERHEAD). */
const BATCH_OVERHEAD = 61;
/** Offset of the attributes field: the CRC covers the batch from there to its end. */
const ATTRIBUTES_OFFSET = 21;

/** Bytes of a zigzag varint of a safe integer. */
function sizeOfVarLong(v: number): number {
  let z = v >= 0 ? v * 2 : -v * 2 - 1;
  let n = 1;
  while (z >= 128) {
    z = Math.floor(z / 128);
    n++;
  }
  return n;
}

/** Writes a zigzag varint of a safe integer at `pos`; returns the position after it. */
function writeVarLong(buf: Buffer, pos: number, v: number): number {
  let z = v >= 0 ? v * 2 : -v * 2 - 1;
  while (z >= 128) {
    buf[pos++] = (z % 128) | 128;
    z = Math.floor(z / 128);
  }
  buf[pos++] = z;
  return pos;
}

type Bytes = Buffer | string | null | undefined;

function byteLength(v: Bytes): number {
  return v === null || v === undefined ? -1 : typeof v === 'string' ? Buffer.byteLength(v) : v.length;
}

/** Writes length-prefixed bytes (length -1 for null) whose byte length is `len`. */
function writeBytes(buf: Buffer, pos: number, v: Bytes, len: number): number {
  pos = writeVarLong(buf, pos, len);
  if (len <= 0) return pos;
  if (typeof v === 'string') buf.write(v, pos, len, 'utf8');
  else (v as Buffer).copy(buf, pos);
  return pos + len;
}

/** Header name/value pairs of a message, a repeated name once per value. */
function headerPairs(m: ProduceMessage): Array<[string, Bytes]> | null {
  const h = m.headers;
  if (!h) return null;
  const out: Array<[string, Bytes]> = [];
  for (const name in h) {
    const v = h[name];
    if (Array.isArray(v)) for (const x of v) out.push([name, x]);
    else out.push([name, v]);
  }
  return out;
}

/**
 * One record batch of `messages` (magic 2, no compression, no producer id), offsets relative to the batch.
 * Messages without a timestamp get `nowMs`.
 */
export function encodeRecordBatch(messages: ProduceMessage[], nowMs: number): Buffer {
  const n = messages.length;
  let first = Infinity;
  let max = -Infinity;
  for (const m of messages) {
    const t = m.timestamp ?? nowMs;
    if (t < first) first = t;
    if (t > max) max = t;
  }
  // Sizes first (byte lengths of strings are needed twice), so the batch is one exact allocation.
  const lens = new Int32Array(n * 3);
  const headers = new Array<Array<[string, Bytes]> | null>(n);
  const headerLens: number[] = [];
  let total = BATCH_OVERHEAD;
  for (let i = 0; i < n; i++) {
    const m = messages[i];
    const keyLen = byteLength(m.key);
    const valueLen = byteLength(m.value);
    const pairs = headerPairs(m);
    headers[i] = pairs;
    let body = 1 + sizeOfVarLong((m.timestamp ?? nowMs) - first) + sizeOfVarLong(i) +
      sizeOfVarLong(keyLen) + Math.max(0, keyLen) + sizeOfVarLong(valueLen) + Math.max(0, valueLen) +
      sizeOfVarLong(pairs ? pairs.length : 0);
    if (pairs) {
      for (const [name, v] of pairs) {
        const nameLen = Buffer.byteLength(name);
        const vLen = byteLength(v);
        headerLens.push(nameLen, vLen);
        body += sizeOfVarLong(nameLen) + nameLen + sizeOfVarLong(vLen) + Math.max(0, vLen);
      }
    }
    lens[i * 3] = body;
    lens[i * 3 + 1] = keyLen;
    lens[i * 3 + 2] = valueLen;
    total += sizeOfVarLong(body) + body;
  }
  const buf = Buffer.allocUnsafe(total);
  buf.writeBigInt64BE(0n, 0); // base offset: the broker assigns offsets
  buf.writeInt32BE(total - 12, 8); // batch length: the bytes after this field
  buf.writeInt32BE(-1, 12); // partition leader epoch: set by the broker
  buf.writeInt8(2, 16); // magic
  buf.writeInt16BE(0, ATTRIBUTES_OFFSET); // no compression, create time, not transactional
  buf.writeInt32BE(n - 1, 23); // last offset delta
  buf.writeBigInt64BE(BigInt(first), 27);
  buf.writeBigInt64BE(BigInt(max), 35);
  buf.writeBigInt64BE(-1n, 43); // producer id: none
  buf.writeInt16BE(-1, 51); // producer epoch
  buf.writeInt32BE(-1, 53); // base sequence
  buf.writeInt32BE(n, 57);
  let pos = BATCH_OVERHEAD;
  let h = 0;
  for (let i = 0; i < n; i++) {
    const m = messages[i];
    pos = writeVarLong(buf, pos, lens[i * 3]);
    buf[pos++] = 0; // record attributes
    pos = writeVarLong(buf, pos, (m.timestamp ?? nowMs) - first);
    pos = writeVarLong(buf, pos, i);
    pos = writeBytes(buf, pos, m.key, lens[i * 3 + 1]);
    pos = writeBytes(buf, pos, m.value, lens[i * 3 + 2]);
    const pairs = headers[i];
    pos = writeVarLong(buf, pos, pairs ? pairs.length : 0);
    if (pairs) {
      for (const [name, v] of pairs) {
        pos = writeBytes(buf, pos, name, headerLens[h++]);
        pos = writeBytes(buf, pos, v, headerLens[h++]);
      }
    }
  }
  if (pos !== total) throw new Error(`record batch encoding wrote ${pos} of ${total} bytes`);
  buf.writeUInt32BE(crc32C(buf.subarray(ATTRIBUTES_OFFSET)), 17);
  return buf;
}

/** A Produce v3 request of record batches for partitions of one topic, acks=all. */
export function produceRequest(topic: string, batches: Array<{ partition: number; batch: Buffer }>, timeoutMs: number): KjsProtocolRequest {
  const topicLen = Buffer.byteLength(topic);
  let size = 2 + 2 + 4 + 4 + 2 + topicLen + 4;
  for (const b of batches) size += 4 + 4 + b.batch.length;
  const body = Buffer.allocUnsafe(size);
  let pos = body.writeInt16BE(-1, 0); // transactional id: null
  pos = body.writeInt16BE(-1, pos); // acks: all in-sync replicas
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
      apiKey: PRODUCE_API_KEY, apiVersion: 3, apiName: 'Produce', expectResponse: () => true,
      encode: async () => {
        const e = new KjsEncoder(size);
        e.writeBuffer(body);
        return e;
      },
    },
    response: produceV3Response,
  };
}
