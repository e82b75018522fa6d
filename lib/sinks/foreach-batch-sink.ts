import type { Table } from 'apache-arrow';
import { rowsFromBatch } from '../arrow/columns.js';
import { UserCodeError } from '../errors.js';
import type { StreamSink } from './sink.js';

/** The user function of foreachBatch: the batch's rows (and the Arrow table) plus its id. */
export type ForeachBatchFunction = (
  rows: Record<string, unknown>[],
  batchId: number,
  table: Table,
) => unknown | Promise<unknown>;

/**
 * Hands each batch to a user function (Spark's foreachBatch). After a crash the same batch id may be
 * passed again with the same rows: the function makes its writes idempotent by batch id for exactly-once.
 */
export class ForeachBatchSink implements StreamSink {
  readonly description = 'ForeachBatchSink';

  constructor(private readonly fn: ForeachBatchFunction) {}

  async initialize(): Promise<void> {}

  async addBatch(batchId: number, data: Table): Promise<void> {
    const rows = data.batches.flatMap((b) => rowsFromBatch(b));
    try {
      await this.fn(rows, batchId, data);
    } catch (err) {
      throw new UserCodeError('foreachBatch', batchId, err);
    }
  }

  async close(): Promise<void> {}
}

/** Discards everything (for benchmarks); counts rows so progress stays meaningful. */
export class NoopSink implements StreamSink {
  readonly description = 'NoopSink';
  rows = 0;

  async initialize(): Promise<void> {}

  async addBatch(_batchId: number, data: Table): Promise<void> {
    this.rows += data.numRows;
  }

  async close(): Promise<void> {}
}
