/**
 * How many bytes records take in a record batch, and cutting a produce into batches under a byte limit: a
 * broker refuses a batch larger than the topic's `max.message.bytes` (1 MB by default) as a whole. The limit
 * applies to the batch as it goes on the wire, so to the compressed batch when the producer compresses.
 */
import type { ProduceMessage } from './messages.js';
import type { CompressionCodec } from './protocol/compression.js';
import { compressRecordBatch, encodeRecordBatch } from './protocol/record-batch.js';

/** Bytes of a record batch before its records (Kafka's DefaultRecordBatch.RECORD_BATCH_OVERHEAD). */
export const RECORD_BATCH_OVERHEAD = 61;

/** Most bytes of the varints around a record's fields: length, timestamp and offset deltas, key, value, header count. */
const RECORD_VARINTS = 5 + 10 + 5 + 5 + 5 + 5;

function bytesOf(v: Buffer | string | null | undefined): number {
  return v === null || v === undefined ? 0 : typeof v === 'string' ? Buffer.byteLength(v) : v.length;
}

/** An upper bound of the bytes `m` takes in an uncompressed record batch (exact up to varint widths). */
export function recordSizeBound(m: ProduceMessage): number {
  let n = 1 + RECORD_VARINTS + bytesOf(m.key) + bytesOf(m.value);
  const h = m.headers;
  if (Array.isArray(h)) {
    for (const [name, v] of h) n += 10 + Buffer.byteLength(name) + bytesOf(v);
  } else if (h) {
    for (const name in h) {
      const v = h[name];
      if (Array.isArray(v)) for (const x of v) n += 10 + Buffer.byteLength(name) + bytesOf(x);
      else n += 10 + Buffer.byteLength(name) + bytesOf(v);
    }
  }
  return n;
}

/**
 * `messages` in order, cut into runs of at most `maxCount` messages whose records, with a batch's overhead,
 * take at most `maxBytes` in all, so no partition's batch of a run can exceed it. A message too large for a
 * batch of its own is a run of its own: the caller checks sizes first (see {@link recordSizeBound}).
 */
export function produceRuns(messages: ProduceMessage[], maxCount: number, maxBytes: number): ProduceMessage[][] {
  const runs: ProduceMessage[][] = [];
  if (maxBytes === Infinity) {
    for (let i = 0; i < messages.length; i += maxCount) runs.push(messages.slice(i, i + maxCount));
    return runs;
  }
  let run: ProduceMessage[] = [];
  let bytes = RECORD_BATCH_OVERHEAD;
  for (const m of messages) {
    const size = recordSizeBound(m);
    if (run.length > 0 && (run.length >= maxCount || bytes + size > maxBytes)) {
      runs.push(run);
      run = [];
      bytes = RECORD_BATCH_OVERHEAD;
    }
    run.push(m);
    bytes += size;
  }
  if (run.length > 0) runs.push(run);
  return runs;
}

/**
 * The bytes a record batch of `messages` takes on the wire: exact, compressed by `codec` when one is given
 * (for a record whose {@link recordSizeBound} is over a limit, to tell whether it fits once compressed).
 */
export async function wireBatchSize(messages: ProduceMessage[], codec: CompressionCodec | null): Promise<number> {
  const batch = encodeRecordBatch(messages, Date.now());
  return codec ? (await compressRecordBatch(batch, codec)).length : batch.length;
}
