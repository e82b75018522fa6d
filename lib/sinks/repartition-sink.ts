/**
 * The writing side of a repartition topic (see lib/group/repartition-topic.ts): a stage-1 task's rows, each
 * sent to the partition of its key, and after them one control record per partition with the task's
 * event-time watermark. The records go through the Kafka sink, so they are written exactly once with its
 * idempotent replay: a replayed batch has the same rows and the same watermark (read from the batch's plan).
 */
import * as path from 'node:path';
import { Field, Float64, Int32, type RecordBatch, Schema, Table } from 'apache-arrow';
import { dataFromValues } from '../arrow/columns.js';
import { batchOf, int64ToNumbers } from '../arrow/index.js';
import { OffsetLog } from '../checkpoint/offset-log.js';
import { UPSTREAM_COLUMN, UPSTREAM_WATERMARK_COLUMN } from '../group/repartition-topic.js';
import type { SinkContext, StreamSink } from './sink.js';

/** How a {@link RepartitionSink} writes. */
export interface RepartitionSinkOptions {
  /** The Kafka sink of the repartition topic. */
  kafka: StreamSink;
  /** The topic's partition count. */
  numPartitions: number;
  /** The partition of each row: the engine's key hash of the operator's key, mod `numPartitions`. */
  partitionsOf(batch: RecordBatch, numPartitions: number): Int32Array;
  /** The stage-1 task writing (its input partition). */
  upstream: number;
  /** The event-time column and watermark delay below the operator, when it reads the watermark. */
  eventTime?: { column: string; delayMs: number };
}

/** Input columns that would steer the Kafka sink instead of travelling as row values. */
const KAFKA_ROUTING = new Set(['partition', 'topic', 'headers']);

/** Writes a stage-1 task's rows and watermark into the repartition topic. */
export class RepartitionSink implements StreamSink {
  readonly description: string;
  private offsets!: OffsetLog;

  constructor(private readonly opts: RepartitionSinkOptions) {
    this.description = `Repartition[${opts.kafka.description}]`;
  }

  async initialize(ctx: SinkContext): Promise<void> {
    this.offsets = new OffsetLog(path.join(ctx.checkpointDir, '..', 'offsets'));
    await this.opts.kafka.initialize(ctx);
  }

  async addBatch(batchId: number, data: Table): Promise<void> {
    const { numPartitions, upstream, eventTime } = this.opts;
    const kept = data.schema.fields.filter((f) => !KAFKA_ROUTING.has(f.name));
    const schema = new Schema([
      ...kept,
      new Field('partition', new Int32(), false),
      new Field(UPSTREAM_COLUMN, new Int32(), false),
      new Field(UPSTREAM_WATERMARK_COLUMN, new Float64(), true),
    ]);
    const out: RecordBatch[] = [];
    let maxEventTime = -Infinity;
    for (const b of data.batches) {
      if (b.numRows === 0) continue;
      const n = b.numRows;
      const children = kept.map((f) => b.getChild(f.name)!.data[0]);
      const parts = this.opts.partitionsOf(b, numPartitions);
      children.push(
        dataFromValues(new Int32(), parts),
        dataFromValues(new Int32(), new Int32Array(n).fill(upstream)),
        dataFromValues(new Float64(), new Array(n).fill(null)),
      );
      out.push(batchOf(schema, children, n));
      if (eventTime) maxEventTime = Math.max(maxEventTime, columnMax(b, eventTime.column));
    }
    if (eventTime) {
      // The watermark the task reaches with this batch: the one it ran with, moved by this batch's event times.
      const entry = await this.offsets.get(batchId);
      const ran = entry?.batchWatermarkMs ?? 0;
      const reached = Math.max(ran, maxEventTime - eventTime.delayMs);
      const columns = schema.fields.map((f) => {
        if (f.name === 'partition') return Array.from({ length: numPartitions }, (_, p) => p);
        if (f.name === UPSTREAM_COLUMN) return new Array(numPartitions).fill(upstream);
        if (f.name === UPSTREAM_WATERMARK_COLUMN) return new Array(numPartitions).fill(reached);
        return new Array(numPartitions).fill(null);
      });
      out.push(
        batchOf(
          schema,
          schema.fields.map((f, i) => dataFromValues(f.type, columns[i])),
          numPartitions,
        ),
      );
    }
    await this.opts.kafka.addBatch(batchId, out.length > 0 ? new Table(out) : new Table(schema));
  }

  prepareBatch(batchId: number): Promise<void> {
    return this.opts.kafka.prepareBatch?.(batchId) ?? Promise.resolve();
  }

  stallMessage(): string | null {
    return this.opts.kafka.stallMessage?.() ?? null;
  }

  close(): Promise<void> {
    return this.opts.kafka.close();
  }
}

/** The largest value of a numeric or timestamp column (ms), -Infinity when it has none. */
function columnMax(batch: RecordBatch, column: string): number {
  const data = batch.getChild(column)?.data[0];
  if (!data) return -Infinity;
  const raw = data.values as ArrayLike<number> | BigInt64Array;
  const vals = raw instanceof BigInt64Array ? int64ToNumbers(raw, 1, batch.numRows) : raw;
  let max = -Infinity;
  for (let r = 0; r < batch.numRows; r++) {
    if (data.nullCount > 0 && !data.getValid(r)) continue;
    if (vals[r] > max) max = vals[r];
  }
  return max;
}
