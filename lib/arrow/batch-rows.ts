import type { RecordBatch } from 'apache-arrow';

/**
 * Row objects already made for a batch, kept for the next step that wants them instead of being made again.
 * An exchange by a key function makes every row to call the function on; the state partition that groups the
 * same rows for a user function takes them from here (rows are the largest cost of a keyed operator that calls
 * user code: a JS value per cell and an object per row, and the garbage they leave). Taking rows of a batch
 * ({@link takeRows}) carries the picked rows over to the new batch. Rows are handed on once: the taker removes
 * them, so a batch read a second time (a retried partition) gets new rows, untouched by user code.
 */
const made = new WeakMap<RecordBatch, Record<string, unknown>[]>();

/** Keeps `rows` (one per row of `batch`, in order) for the next {@link takeMadeRows} of `batch`. */
export function keepMadeRows(batch: RecordBatch, rows: Record<string, unknown>[]): void {
  made.set(batch, rows);
}

/** The rows kept for `batch`, removed from it; undefined when none were. */
export function takeMadeRows(batch: RecordBatch): Record<string, unknown>[] | undefined {
  const rows = made.get(batch);
  if (rows !== undefined) made.delete(batch);
  return rows;
}

/** Keeps for `to` the rows `indices` of those kept for `from`, when any were (see {@link takeRows}). */
export function carryMadeRows(from: RecordBatch, to: RecordBatch, indices: ArrayLike<number>): void {
  const rows = made.get(from);
  if (rows === undefined) return;
  const picked = new Array<Record<string, unknown>>(indices.length);
  for (let i = 0; i < indices.length; i++) picked[i] = rows[indices[i]];
  made.set(to, picked);
}
