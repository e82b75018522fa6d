/**
 * Which records of a fetched record set belong to aborted transactions, for read_committed (Kafka's
 * consumer rule): the Fetch response lists, per producer, the first offset of each aborted transaction
 * in the range; a transactional batch of such a producer is aborted from that offset on until the
 * producer's ABORT marker (a control batch). Only batch headers are read, so compressed batches cost
 * nothing to check.
 */
import { readInt64 } from '../primitives.js';

/** One aborted transaction of a Fetch response: its producer and first offset. */
export interface AbortedTransaction {
  producerId: string;
  firstOffset: string;
}

/** A range of offsets [from, until). */
export interface OffsetRange {
  from: number;
  until: number;
}

const BATCH_OVERHEAD = 61;
const ATTRIBUTES_OFFSET = 21;
const TRANSACTIONAL = 0x10;
const CONTROL = 0x20;
/** A control record's key is (version: int16, type: int16); type 0 ends a transaction as aborted. */
const ABORT_MARKER = 0;

/** The control type of a control batch's record (its key's second int16), or -1 when it cannot be read. */
function controlType(set: Buffer, start: number, end: number): number {
  let pos = start + BATCH_OVERHEAD;
  // Record length, then one attribute byte, the timestamp and offset deltas, and the key length: varints.
  const skipVarint = (): void => {
    while (pos < end && set[pos] & 0x80) pos++;
    pos++;
  };
  skipVarint();
  pos++;
  skipVarint();
  skipVarint();
  skipVarint();
  return pos + 4 <= end ? set.readInt16BE(pos + 2) : -1;
}

/**
 * The offset ranges of the batches in `set` (a record set with its int32 size in front) that belong to
 * aborted transactions, in offset order. Control batches are not listed: decoders drop them anyway.
 */
export function abortedRanges(set: Buffer, aborted: readonly AbortedTransaction[]): OffsetRange[] {
  const pending = aborted
    .map((a) => ({ producerId: a.producerId, firstOffset: Number(a.firstOffset) }))
    .sort((a, b) => a.firstOffset - b.firstOffset);
  const abortedProducers = new Set<string>();
  const out: OffsetRange[] = [];
  let next = 0;
  for (let start = 4; start + BATCH_OVERHEAD <= set.length; ) {
    const end = start + 12 + set.readInt32BE(start + 8);
    if (end > set.length) break;
    const attributes = set.readInt16BE(start + ATTRIBUTES_OFFSET);
    if (attributes & TRANSACTIONAL) {
      const base = readInt64(set, start);
      const last = base + set.readInt32BE(start + 23);
      while (next < pending.length && pending[next].firstOffset <= last)
        abortedProducers.add(pending[next++].producerId);
      const producerId = set.readBigInt64BE(start + 43).toString();
      if (attributes & CONTROL) {
        if (controlType(set, start, end) === ABORT_MARKER) abortedProducers.delete(producerId);
      } else if (abortedProducers.has(producerId)) {
        const prev = out[out.length - 1];
        if (prev && prev.until === base) prev.until = last + 1;
        else out.push({ from: base, until: last + 1 });
      }
    }
    start = end;
  }
  return out;
}
