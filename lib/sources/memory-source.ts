import type { RecordBatch, Schema } from 'apache-arrow';
import { batchFromRows } from '../arrow/columns.js';
import { inferSchema, type SchemaSpec, schemaFromSpec } from '../arrow/schema.js';
import { SluiceError } from '../errors.js';
import { DataSignal } from './data-signal.js';
import type { ReadTask, StreamSource } from './source.js';

/**
 * Rows added from code, one batch per `addData` call (Spark's MemoryStream). Offsets count the calls, so
 * each query over the stream reads every call's rows exactly once, in order.
 */
export class MemoryData {
  readonly batches: RecordBatch[] = [];
  /** Notified as rows are added. */
  readonly arrival = new DataSignal();
  private fixedSchema: Schema | null;

  constructor(schema?: SchemaSpec | Schema) {
    this.fixedSchema = schema ? schemaFromSpec(schema) : null;
  }

  /** The rows' schema: the one given, or inferred from the first rows added. */
  get schema(): Schema | null {
    return this.fixedSchema;
  }

  /** Adds rows as the next batch and returns its offset. */
  add(rows: Record<string, unknown>[]): number {
    this.fixedSchema ??= inferSchema(rows);
    this.batches.push(batchFromRows(rows, this.fixedSchema));
    this.arrival.notify();
    return this.batches.length;
  }
}

/** A query's reader over MemoryData. */
export class MemorySource implements StreamSource {
  readonly description: string;
  /** How many of the stream's batches the last latestOffset saw. */
  private seen = 0;

  constructor(
    private readonly data: MemoryData,
    name = 'MemoryStream',
  ) {
    this.description = name;
  }

  async initialize(): Promise<void> {}

  schema(): Schema {
    const s = this.data.schema;
    if (!s)
      throw new SluiceError(
        'NO_SCHEMA',
        'the memory stream has no schema yet',
        'pass a schema to new MemoryStream(session, schema), or addData before starting the query',
      );
    return s;
  }

  /** Null while no rows were ever added, so a query runs no batch until there is data (as Spark's MemoryStream). */
  async latestOffset(start: unknown): Promise<unknown> {
    this.seen = this.data.batches.length;
    return this.data.batches.length === 0 ? start : this.data.batches.length;
  }

  waitForData(signal: AbortSignal): Promise<void> {
    return this.data.batches.length > this.seen ? Promise.resolve() : this.data.arrival.wait(signal);
  }

  async planRead(start: unknown, end: unknown): Promise<ReadTask[]> {
    return [{ batches: this.data.batches.slice((start as number | null) ?? 0, end as number) }];
  }

  rowCount(start: unknown, end: unknown): number {
    return this.data.batches.slice((start as number | null) ?? 0, end as number).reduce((n, b) => n + b.numRows, 0);
  }

  async commit(): Promise<void> {}

  async stop(): Promise<void> {}
}
