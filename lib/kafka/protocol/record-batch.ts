/**
 * Record batches (magic 2), encoded and decoded by sluice itself; a compressed batch's records section goes
 * through its codec (compression.ts) and then the same record code.
 *
 * Encoding: kafkajs' producer encodes each record and each header into a zero-filled 512-byte buffer of its
 * own, which made producing cost ~40 µs per record on this machine; here sizes are computed first, then
 * every byte is written once into one exact allocation.
 *
 * Decoding: kafkajs decodes every record through 64-bit `Long` objects and offset strings, which took more
 * CPU than parsing the JSON values; here records are decoded into columns (record-columns.ts): offsets and
 * timestamps are plain numbers and keys and values are spans of the response buffer (or of the decompressed
 * records section), with no object per record; header values are views of the same buffer.
 */
import { SluiceError } from '../../errors.js';
import type { ProduceMessage } from '../messages.js';
import { RecordColumns } from '../record-columns.js';
import { type CompressionCodec, codecById } from './compression.js';
import { crc32c } from './crc32c.js';
import { readInt64, readVarLong, sizeOfVarLong, writeVarLong } from './primitives.js';

/** Bytes of a record batch before its records (Kafka's DefaultRecordBatch.RECORD_BATCH_OVERHEAD). */
const BATCH_OVERHEAD = 61;
/** Offset of the attributes field: the CRC covers the batch from there to its end. */
const ATTRIBUTES_OFFSET = 21;
const COMPRESSION_MASK = 0x07;
const LOG_APPEND_TIME = 0x08;
const TRANSACTIONAL = 0x10;
const CONTROL_BATCH = 0x20;

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

/** Length-prefixed bytes as a view of `buf` (null for length -1). */
function readBytes(buf: Buffer, at: { pos: number }): Buffer | null {
  const len = readVarLong(buf, at);
  if (len < 0) return null;
  const out = buf.subarray(at.pos, at.pos + len);
  at.pos += len;
  return out;
}

/**
 * Calls `visit` with each header name and value of `m` in record order (a repeated name once per value), and
 * returns how many there were; no pair is materialised, as most records carry one or two headers.
 */
function eachHeader(m: ProduceMessage, visit: (name: string, v: Bytes) => void): number {
  const h = m.headers;
  if (!h) return 0;
  if (Array.isArray(h)) {
    for (let i = 0; i < h.length; i++) visit(h[i][0], h[i][1]);
    return h.length;
  }
  let count = 0;
  for (const name in h) {
    const v = h[name];
    if (Array.isArray(v)) {
      for (let i = 0; i < v.length; i++) visit(name, v[i]);
      count += v.length;
    } else {
      visit(name, v);
      count++;
    }
  }
  return count;
}

/** The producer fields of a transactional record batch: who writes it, and the sequence of its first record. */
export interface BatchProducer {
  producerId: number;
  epoch: number;
  /** The partition's next sequence number for this producer id and epoch (from 0 per epoch). */
  baseSequence: number;
}

/**
 * One record batch of `messages` (magic 2, no compression), offsets relative to the batch. Messages without a
 * timestamp get `nowMs`. With `producer` the batch is transactional and carries its id, epoch and sequence;
 * without, it has no producer id.
 */
export function encodeRecordBatch(messages: ProduceMessage[], nowMs: number, producer?: BatchProducer): Buffer {
  const n = messages.length;
  let first = Infinity;
  let max = -Infinity;
  for (const m of messages) {
    const t = m.timestamp ?? nowMs;
    if (t < first) first = t;
    if (t > max) max = t;
  }
  // Sizes first (byte lengths of strings are needed twice), so the batch is one exact allocation: per message its
  // body's, key's and value's lengths and header count, and the name and value lengths of every header in order.
  const lens = new Int32Array(n * 4);
  let headerLens = new Int32Array(2 * n + 2);
  let h = 0;
  let headerBytes = 0;
  const sizeHeader = (name: string, v: Bytes): void => {
    const nameLen = Buffer.byteLength(name);
    const vLen = byteLength(v);
    if (h + 2 > headerLens.length) {
      const grown = new Int32Array(headerLens.length * 2);
      grown.set(headerLens);
      headerLens = grown;
    }
    headerLens[h++] = nameLen;
    headerLens[h++] = vLen;
    headerBytes += sizeOfVarLong(nameLen) + nameLen + sizeOfVarLong(vLen) + Math.max(0, vLen);
  };
  let total = BATCH_OVERHEAD;
  for (let i = 0; i < n; i++) {
    const m = messages[i];
    const keyLen = byteLength(m.key);
    const valueLen = byteLength(m.value);
    headerBytes = 0;
    const headerCount = eachHeader(m, sizeHeader);
    const body =
      1 +
      sizeOfVarLong((m.timestamp ?? nowMs) - first) +
      sizeOfVarLong(i) +
      sizeOfVarLong(keyLen) +
      Math.max(0, keyLen) +
      sizeOfVarLong(valueLen) +
      Math.max(0, valueLen) +
      sizeOfVarLong(headerCount) +
      headerBytes;
    lens[i * 4] = body;
    lens[i * 4 + 1] = keyLen;
    lens[i * 4 + 2] = valueLen;
    lens[i * 4 + 3] = headerCount;
    total += sizeOfVarLong(body) + body;
  }
  const buf = Buffer.allocUnsafe(total);
  buf.writeBigInt64BE(0n, 0); // base offset: the broker assigns offsets
  buf.writeInt32BE(total - 12, 8); // batch length: the bytes after this field
  buf.writeInt32BE(-1, 12); // partition leader epoch: set by the broker
  buf.writeInt8(2, 16); // magic
  buf.writeInt16BE(producer ? TRANSACTIONAL : 0, ATTRIBUTES_OFFSET); // no compression, create time
  buf.writeInt32BE(n - 1, 23); // last offset delta
  buf.writeBigInt64BE(BigInt(first), 27);
  buf.writeBigInt64BE(BigInt(max), 35);
  buf.writeBigInt64BE(BigInt(producer?.producerId ?? -1), 43);
  buf.writeInt16BE(producer?.epoch ?? -1, 51);
  buf.writeInt32BE(producer?.baseSequence ?? -1, 53);
  buf.writeInt32BE(n, 57);
  let pos = BATCH_OVERHEAD;
  h = 0;
  const writeHeader = (name: string, v: Bytes): void => {
    pos = writeBytes(buf, pos, name, headerLens[h++]);
    pos = writeBytes(buf, pos, v, headerLens[h++]);
  };
  for (let i = 0; i < n; i++) {
    const m = messages[i];
    pos = writeVarLong(buf, pos, lens[i * 4]);
    buf[pos++] = 0; // record attributes
    pos = writeVarLong(buf, pos, (m.timestamp ?? nowMs) - first);
    pos = writeVarLong(buf, pos, i);
    pos = writeBytes(buf, pos, m.key, lens[i * 4 + 1]);
    pos = writeBytes(buf, pos, m.value, lens[i * 4 + 2]);
    pos = writeVarLong(buf, pos, lens[i * 4 + 3]);
    eachHeader(m, writeHeader);
  }
  if (pos !== total) throw new Error(`record batch encoding wrote ${pos} of ${total} bytes`);
  buf.writeUInt32BE(crc32c(buf.subarray(ATTRIBUTES_OFFSET)), 17);
  return buf;
}

/** `batch` (from {@link encodeRecordBatch}) with its records section compressed by `codec`. */
export async function compressRecordBatch(batch: Buffer, codec: CompressionCodec): Promise<Buffer> {
  const records = await codec.compress(batch.subarray(BATCH_OVERHEAD));
  const out = Buffer.allocUnsafe(BATCH_OVERHEAD + records.length);
  batch.copy(out, 0, 0, BATCH_OVERHEAD);
  records.copy(out, BATCH_OVERHEAD);
  out.writeInt32BE(out.length - 12, 8);
  out.writeInt16BE((batch.readInt16BE(ATTRIBUTES_OFFSET) & ~COMPRESSION_MASK) | codec.id, ATTRIBUTES_OFFSET);
  out.writeUInt32BE(crc32c(out.subarray(ATTRIBUTES_OFFSET)), 17);
  return out;
}

/**
 * Magic-2 record batches into record columns; null when the set holds anything else. A batch cut off at the end
 * of the set (the fetch size ends inside it) is left out, as Kafka's protocol allows.
 * @param set The record set with its int32 size in front, as a Fetch response holds it.
 */
export async function decodeRecordBatches(
  set: Buffer,
): Promise<{ records: RecordColumns; batchEnd: number | null } | null> {
  // Batch headers first: the records' count sizes the columns once, and anything not magic 2 returns early.
  let count = 0;
  let start = 4;
  while (start + BATCH_OVERHEAD <= set.length) {
    const end = start + 12 + set.readInt32BE(start + 8);
    if (end > set.length) break;
    if (set[start + 16] !== 2) return null;
    if ((set.readInt16BE(start + ATTRIBUTES_OFFSET) & CONTROL_BATCH) === 0) count += set.readInt32BE(start + 57);
    start = end;
  }
  const records = new RecordColumns(count);
  let batchEnd: number | null = null;
  let setChunk = -1;
  start = 4;
  while (start + BATCH_OVERHEAD <= set.length) {
    const end = start + 12 + set.readInt32BE(start + 8);
    if (end > set.length) break;
    const attributes = set.readInt16BE(start + ATTRIBUTES_OFFSET);
    const baseOffset = readInt64(set, start);
    batchEnd = baseOffset + set.readInt32BE(start + 23) + 1;
    if ((attributes & CONTROL_BATCH) === 0) {
      const header = {
        baseOffset,
        firstTimestamp: readInt64(set, start + 27),
        logAppendTime: (attributes & LOG_APPEND_TIME) !== 0 ? readInt64(set, start + 35) : -1,
        count: set.readInt32BE(start + 57),
      };
      const compression = attributes & COMPRESSION_MASK;
      if (compression === 0) {
        if (setChunk < 0) setChunk = records.addChunk(set);
        decodeRecords(set, setChunk, start + BATCH_OVERHEAD, header, records);
      } else {
        const codec = codecById(compression);
        let decompressed: Buffer;
        try {
          decompressed = await codec.decompress(set.subarray(start + BATCH_OVERHEAD, end));
        } catch (err) {
          throw new SluiceError(
            'KAFKA_CORRUPT_BATCH',
            `the ${codec.name} record batch at offset ${baseOffset} does not decompress: ${(err as Error).message}`,
            undefined,
            { cause: err },
          );
        }
        decodeRecords(decompressed, records.addChunk(decompressed), 0, header, records);
      }
    }
    start = end;
  }
  return { records, batchEnd };
}

/** What the records of a batch take from its header. */
interface BatchHeader {
  baseOffset: number;
  firstTimestamp: number;
  /** The batch's max timestamp when the topic uses log-append time, else -1. */
  logAppendTime: number;
  count: number;
}

/** Appends the `batch.count` records that start at `pos` of `buf` (chunk `chunk` of `out`) to `out`. */
function decodeRecords(buf: Buffer, chunk: number, pos: number, batch: BatchHeader, out: RecordColumns): void {
  const at = { pos };
  for (let i = 0; i < batch.count; i++) {
    readVarLong(buf, at); // record length
    at.pos++; // record attributes
    const timestampDelta = readVarLong(buf, at);
    const offset = batch.baseOffset + readVarLong(buf, at);
    const keyLen = readVarLong(buf, at);
    const keyStart = keyLen < 0 ? -1 : at.pos;
    if (keyLen > 0) at.pos += keyLen;
    const valueLen = readVarLong(buf, at);
    const valueStart = valueLen < 0 ? -1 : at.pos;
    if (valueLen > 0) at.pos += valueLen;
    out.push(
      offset,
      batch.logAppendTime >= 0 ? batch.logAppendTime : batch.firstTimestamp + timestampDelta,
      chunk,
      keyStart,
      keyStart + Math.max(0, keyLen),
      valueStart,
      valueStart + Math.max(0, valueLen),
    );
    const headerCount = readVarLong(buf, at);
    if (headerCount > 0) {
      const headers: Record<string, Buffer | Buffer[]> = {};
      for (let h = 0; h < headerCount; h++) {
        const nameLen = readVarLong(buf, at);
        const name = buf.toString('utf8', at.pos, at.pos + nameLen);
        at.pos += nameLen;
        // A null header value stays null, as kafkajs gives it.
        const v = readBytes(buf, at) as Buffer;
        const prev = headers[name];
        headers[name] = prev === undefined ? v : Array.isArray(prev) ? [...prev, v] : [prev, v];
      }
      out.setLastHeaders(headers);
    }
  }
}
