import type { Schema } from 'apache-arrow';
import { Dataset } from '../api/dataset.js';
import type { Session } from '../api/session.js';
import type { SchemaSpec } from '../arrow/schema.js';
import { MemoryData, MemorySource } from '../sources/memory-source.js';

/**
 * A stream you feed from a test, batch by batch, like Spark's MemoryStream:
 * ```ts
 * const input = new MemoryStream(session, { user: 'string', amount: 'double' });
 * const query = await input.toDS().writeStream.format('memory').queryName('out').start();
 * input.addData([{ user: 'a', amount: 1 }]);
 * await query.processAllAvailable();
 * ```
 */
export class MemoryStream<T extends Record<string, unknown> = Record<string, unknown>> {
  private readonly data: MemoryData;

  constructor(
    private readonly session: Session,
    schema?: SchemaSpec | Schema,
    private readonly name = 'MemoryStream',
  ) {
    this.data = new MemoryData(schema);
  }

  /** Adds rows; they form one batch of input. Returns the stream's new offset. */
  addData(rows: T[]): number {
    return this.data.add(rows);
  }

  /** The stream as a Dataset. */
  toDS(): Dataset<T> {
    return Dataset.fromSource(
      this.session,
      this.name,
      () => new MemorySource(this.data, this.name),
    ) as unknown as Dataset<T>;
  }
}
