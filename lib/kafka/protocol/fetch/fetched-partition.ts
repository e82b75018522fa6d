/**
 * One fetched partition's records, decoded by sluice's own record-batch decoder when it can (see
 * record-batch.ts) and by kafkajs' otherwise: compressed batches, the pre-0.11 message format, and
 * aborted transactions under read_committed.
 */
import { filterAbortedMessages, kafkajsDecodeRecordSet } from '../../kafkajs-internals.js';
import type { KafkaMessage } from '../../messages.js';
import { decodeRecordBatches } from '../record-batch.js';
import type { FetchV4Partition } from './v4.js';

/** What a fetch of one partition gives back. */
export interface FetchedPartition {
  highWatermark: number;
  /** Records in offset order, without control records (and aborted ones under read_committed). */
  messages: KafkaMessage[];
  /** The offset after the last complete record batch, or null when none was complete. */
  batchEnd: number | null;
}

/** Decodes one partition's record set (see the module comment for which decoder runs). */
export async function decodePartition(p: FetchV4Partition, readCommitted: boolean): Promise<FetchedPartition> {
  const fast = readCommitted && p.abortedTransactions.length > 0 ? null : decodeRecordBatches(p.recordSet);
  if (fast) return { highWatermark: p.highWatermark, ...fast };
  const all = await kafkajsDecodeRecordSet(p.recordSet);
  const kept =
    readCommitted && p.abortedTransactions.length > 0
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
  return {
    highWatermark: p.highWatermark,
    messages,
    batchEnd: last ? Number(last.firstOffset) + last.lastOffsetDelta + 1 : null,
  };
}
