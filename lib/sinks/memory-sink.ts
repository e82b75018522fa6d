import type { Table } from 'apache-arrow';
import { rowsFromBatch } from '../arrow/columns.js';
import type { OutputMode } from './output-mode.js';
import type { SinkContext, StreamSink } from './sink.js';

/**
 * Keeps output rows in memory under the query name (Spark's memory sink, for tests and notebooks).
 * Idempotent per batch: a replayed batch id replaces that batch's rows. In complete mode the table
 * holds only the last batch's result.
 */
export class MemorySink implements StreamSink {
  readonly description: string;
  private mode: OutputMode = 'append';
  private readonly byBatch = new Map<number, Record<string, unknown>[]>();

  /** `table` is the array the session exposes through `session.table(name)`; it is rewritten after each batch. */
  constructor(
    name: string,
    private readonly table: Record<string, unknown>[],
  ) {
    this.description = `MemorySink[${name}]`;
  }

  async initialize(ctx: SinkContext): Promise<void> {
    this.mode = ctx.outputMode;
  }

  async addBatch(batchId: number, data: Table): Promise<void> {
    const rows = data.batches.flatMap((b) => rowsFromBatch(b));
    if (this.mode === 'complete') this.byBatch.clear();
    this.byBatch.set(batchId, rows);
    // Rebuilt in place (the session hands out this array); push row by row, as spreading 100k+ rows overflows the stack.
    this.table.length = 0;
    for (const k of [...this.byBatch.keys()].sort((a, b) => a - b))
      for (const r of this.byBatch.get(k)!) this.table.push(r);
  }

  async close(): Promise<void> {}
}
