/**
 * The reading side of a repartition topic (see lib/group/repartition-topic.ts): one partition, read as a Kafka
 * source of JSON rows, with the stage-2 watermark added to every record as the column
 * {@link COMBINED_WATERMARK_COLUMN}: the minimum over the upstream tasks of the latest watermark each has
 * published in this partition, null until every one has published.
 *
 * The latest watermark of each upstream task is a function of every record read so far, so the source keeps
 * it per batch in `<checkpoint>/sources/<i>/upstream-watermarks/<N>` (written when batch N is read): a replay
 * of batch N starts from what the batches before it left, and gives the same column.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Field, Float64, type RecordBatch, Schema } from 'apache-arrow';
import { dataFromValues } from '../arrow/columns.js';
import { batchOf, int64ToNumbers } from '../arrow/index.js';
import { isRecord } from '../checkpoint/fields.js';
import { readVersioned, writeVersioned } from '../checkpoint/versioned-file.js';
import { COMBINED_WATERMARK_COLUMN, UPSTREAM_COLUMN, UPSTREAM_WATERMARK_COLUMN } from '../group/repartition-topic.js';
import { createDirectory } from '../util/create-directory.js';
import { runReadTask } from './readers.js';
import type { ReadLimit, ReadTask, SourceContext, SourceOffset, StreamSource } from './source.js';

/** Watermark files of this many batches before the newest are kept (a replay needs only the one before it). */
const KEPT = 3;

/** Reads one partition of a repartition topic and combines its upstream tasks' watermarks. */
export class RepartitionSource implements StreamSource {
  readonly description: string;
  private dir = '';

  /**
   * @param kafka the Kafka source of the partition, JSON values with the columns the stage-1 tasks write
   * @param upstreams how many stage-1 tasks write into the topic (the input's partition count)
   */
  constructor(
    private readonly kafka: StreamSource,
    private readonly upstreams: number,
  ) {
    this.description = `Repartition[${kafka.description}]`;
  }

  async initialize(ctx: SourceContext): Promise<void> {
    this.dir = path.join(ctx.dir, 'upstream-watermarks');
    await createDirectory(this.dir);
    await this.kafka.initialize(ctx);
  }

  schema(): Schema {
    const inner = this.kafka.schema();
    return new Schema([...inner.fields, new Field(COMBINED_WATERMARK_COLUMN, new Float64(), true)]);
  }

  latestOffset(start: SourceOffset | null, limit: ReadLimit): Promise<SourceOffset | null> {
    return this.kafka.latestOffset(start, limit);
  }

  /** Reads the range here, in the driver, because each record's column depends on the records before it. */
  async planRead(start: SourceOffset | null, end: SourceOffset, batchId: number): Promise<ReadTask[]> {
    const latest = await this.load(batchId);
    const schema = this.schema();
    const out: RecordBatch[] = [];
    for (const task of await this.kafka.planRead(start, end, batchId)) {
      const { batches } = await runReadTask(task, { batchId });
      for (const b of batches) out.push(this.withCombined(b, latest, schema));
    }
    await writeVersioned(this.fileOf(batchId), { latest: Object.fromEntries(latest) });
    return [{ batches: out }];
  }

  rowCount(start: SourceOffset | null, end: SourceOffset): number | undefined {
    return this.kafka.rowCount?.(start, end);
  }

  async commit(end: SourceOffset): Promise<void> {
    await this.kafka.commit(end);
    const ids = this.batchIds();
    for (const id of ids.slice(0, Math.max(0, ids.length - KEPT))) fs.rmSync(this.fileOf(id), { force: true });
  }

  prepareForTriggerAvailableNow(): Promise<void> {
    return this.kafka.prepareForTriggerAvailableNow?.() ?? Promise.resolve();
  }

  metrics(): Record<string, number> {
    return this.kafka.metrics?.() ?? {};
  }

  stallMessage(): string | null {
    return this.kafka.stallMessage?.() ?? null;
  }

  stop(): Promise<void> {
    return this.kafka.stop();
  }

  private fileOf(batchId: number): string {
    return path.join(this.dir, String(batchId));
  }

  /** The batch ids with a watermark file, in order. */
  private batchIds(): number[] {
    return fs
      .readdirSync(this.dir)
      .map(Number)
      .filter((n) => Number.isInteger(n))
      .sort((a, b) => a - b);
  }

  /**
   * The latest watermark of each upstream task before batch `batchId`: from the file of the newest batch before
   * it that read this source (a batch without new data reads nothing and writes no file); none before the first.
   */
  private async load(batchId: number): Promise<Map<number, number>> {
    const before = this.batchIds().filter((id) => id < batchId);
    if (before.length === 0) return new Map();
    const { latest } = await readVersioned<{ latest: Record<string, number> }>(this.fileOf(before.at(-1)!), (b) =>
      isRecord(b) && isRecord(b.latest) ? null : 'field "latest" must be an object',
    );
    return new Map(Object.entries(latest).map(([u, w]) => [Number(u), w]));
  }

  /** The batch with the combined watermark after each record, updating `latest` with its control records. */
  private withCombined(b: RecordBatch, latest: Map<number, number>, schema: Schema): RecordBatch {
    const n = b.numRows;
    const ups = numbers(b, UPSTREAM_COLUMN);
    const wms = b.getChild(UPSTREAM_WATERMARK_COLUMN)?.data[0];
    const combined = new Array<number | null>(n);
    for (let r = 0; r < n; r++) {
      if (ups && wms && (wms.nullCount === 0 || wms.getValid(r))) {
        const w = Number((wms.values as Float64Array)[r]);
        latest.set(ups[r], Math.max(latest.get(ups[r]) ?? -Infinity, w));
      }
      combined[r] = this.minimum(latest);
    }
    return batchOf(schema, [...b.data.children, dataFromValues(new Float64(), combined)], n);
  }

  private minimum(latest: Map<number, number>): number | null {
    if (latest.size < this.upstreams) return null;
    let min = Infinity;
    for (const w of latest.values()) if (w < min) min = w;
    return min;
  }
}

function numbers(b: RecordBatch, column: string): ArrayLike<number> | null {
  const data = b.getChild(column)?.data[0];
  if (!data) return null;
  const raw = data.values as ArrayLike<number> | BigInt64Array;
  return raw instanceof BigInt64Array ? int64ToNumbers(raw, 1, b.numRows) : raw;
}
