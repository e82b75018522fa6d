/**
 * One fetched partition's records, decoded by sluice's own record-batch decoder when it can (see
 * record-batch.ts), compressed batches included, and by kafkajs' otherwise (the pre-0.11 message format,
 * whose compressed messages kafkajs reads with sluice's codecs, see kafkajs-codecs.ts). Under
 * read_committed, records of aborted transactions are dropped (see aborted-transactions.ts); control
 * records never become records.
 */
import { kafkajsDecodeRecordSet } from '../../kafkajs-internals.js';
import type { KafkaMessage } from '../../messages.js';
import { RecordColumns } from '../../record-columns.js';
import { decodeRecordBatches } from '../record-batch.js';
import { abortedRanges, type OffsetRange } from './aborted-transactions.js';
import type { FetchResponsePartition } from './v16.js';

/** What a fetch of one partition gives back. */
export interface FetchedPartition {
  highWatermark: number;
  /** Records in offset order, without control records (and aborted ones under read_committed). */
  records: RecordColumns;
  /** The offset after the last complete record batch, or null when none was complete. */
  batchEnd: number | null;
}

/** Decodes one partition's record set (see the module comment for which decoder runs). */
export async function decodePartition(p: FetchResponsePartition, readCommitted: boolean): Promise<FetchedPartition> {
  const aborted =
    readCommitted && p.abortedTransactions.length > 0 ? abortedRanges(p.recordSet, p.abortedTransactions) : [];
  const fast = await decodeRecordBatches(p.recordSet);
  if (fast)
    return { highWatermark: p.highWatermark, records: withoutRanges(fast.records, aborted), batchEnd: fast.batchEnd };
  const all = await kafkajsDecodeRecordSet(p.recordSet);
  const records = new RecordColumns(all.length);
  for (const r of all) {
    if (r.isControlRecord) continue;
    const m: KafkaMessage = { offset: Number(r.offset), timestamp: Number(r.timestamp), key: r.key, value: r.value };
    for (const _ in r.headers) {
      m.headers = r.headers;
      break;
    }
    records.pushMessage(m);
  }
  const last = all.length > 0 ? all[all.length - 1].batchContext : null;
  return {
    highWatermark: p.highWatermark,
    records: withoutRanges(records, aborted),
    batchEnd: last ? Number(last.firstOffset) + last.lastOffsetDelta + 1 : null,
  };
}

/** `records` (in offset order) without those whose offsets fall in `ranges` (in offset order). */
function withoutRanges(records: RecordColumns, ranges: OffsetRange[]): RecordColumns {
  if (ranges.length === 0) return records;
  let r = 0;
  return records.filter((i) => {
    const offset = records.offsets[i];
    while (r < ranges.length && ranges[r].until <= offset) r++;
    return !(r < ranges.length && ranges[r].from <= offset);
  });
}
