import { type RecordBatch, Table, tableFromIPC, tableToIPC } from 'apache-arrow';
import { emptyBatch } from '../arrow/columns.js';

/**
 * Record batches cross threads as Arrow IPC bytes whose ArrayBuffers are transferred, not cloned or
 * turned into JSON. Each batch is its own IPC stream because batches of one list may differ in schema
 * (rows a user function returned without a declared schema).
 */
export function encodeBatches(batches: readonly RecordBatch[]): Uint8Array[] {
  return batches.map((b) => tableToIPC(new Table([b]), 'stream'));
}

/** Inverse of encodeBatches for one batch: a zero-copy view over the received bytes. */
export function decodeBatch(bytes: Uint8Array): RecordBatch {
  const t = tableFromIPC(bytes);
  return t.batches[0] ?? emptyBatch(t.schema);
}

/** Inverse of encodeBatches; the batches are zero-copy views over the received bytes. */
export function decodeBatches(encoded: readonly Uint8Array[]): RecordBatch[] {
  return encoded.map(decodeBatch);
}

/** The buffers to transfer with a message holding `encoded` (entries that are not bytes are skipped). */
export function transferListOf(encoded: readonly unknown[]): ArrayBuffer[] {
  const seen = new Set<ArrayBuffer>();
  for (const e of encoded) if (e instanceof Uint8Array) seen.add(e.buffer as ArrayBuffer);
  return [...seen];
}
