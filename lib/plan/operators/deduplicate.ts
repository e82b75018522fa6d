import type { RecordBatch, Schema } from 'apache-arrow';
import { fieldIndex, int64ToNumbers, takeRows, valuesOf } from '../../arrow/index.js';
import { SluiceError } from '../../errors.js';
import type { OutputMode } from '../../sinks/output-mode.js';
import type { StatefulContext, StatefulOperator } from '../stateful-operator.js';
import { makeKey } from './aggregate-keys.js';

/** What {@link DeduplicateOperator} does, as Dataset.dropDuplicates and dropDuplicatesWithinWatermark ask. */
export interface DeduplicateSpec {
  /** The columns that make rows duplicates; absent for every column. */
  columns?: string[];
  /**
   * Spark 3.5's dropDuplicatesWithinWatermark: a key's first row is remembered until the watermark passes its
   * event time plus `delayMs` (the withWatermark delay), whatever the columns.
   */
  withinWatermark?: { delayMs: number };
}

/**
 * Streaming deduplication (Spark's StreamingDeduplicateExec and StreamingDeduplicateWithinWatermarkExec): the
 * first row of each key passes, later rows of the key are dropped and counted in `numDroppedDuplicateRows`.
 * State is one entry per key in the versioned state store, with the time it may be forgotten as its timeout:
 * with the event-time column among the columns, the row's event time, dropped once the watermark reaches it
 * (rows at or behind the watermark are dropped as late, as in Spark); within the watermark, event time plus
 * the watermark delay, dropped once the watermark passes it. Without either, a key is remembered forever.
 */
export class DeduplicateOperator implements StatefulOperator {
  readonly name: string;
  readonly outputSchema: Schema | null = null;
  readonly outputModes: readonly OutputMode[] = ['append', 'update'];
  readonly outputModeHint = 'deduplication emits each first row once: use outputMode append (or update)';

  constructor(readonly spec: DeduplicateSpec) {
    this.name = spec.withinWatermark ? 'dedupeWithinWatermark' : 'dedupe';
  }

  usesWatermark(eventTimeColumn: string | undefined): boolean {
    return this.evictionColumn(eventTimeColumn) !== undefined;
  }

  /** The event-time column whose value (plus the delay, within the watermark) is a key's expiry, if any. */
  private evictionColumn(eventTimeColumn: string | undefined): string | undefined {
    if (eventTimeColumn === undefined) return undefined;
    if (this.spec.withinWatermark || !this.spec.columns || this.spec.columns.includes(eventTimeColumn))
      return eventTimeColumn;
    return undefined;
  }

  analyze(info: { hasWatermark: boolean }): string | null {
    return this.spec.withinWatermark && !info.hasWatermark
      ? 'dropDuplicatesWithinWatermark is not supported on streaming Datasets without a watermark: call withWatermark(column, delay) before it'
      : null;
  }

  resolveOutputSchema(input: Schema): Schema {
    for (const c of this.spec.columns ?? []) {
      if (fieldIndex(input, c) < 0) {
        throw new SluiceError(
          'ANALYSIS',
          `dropDuplicates column '${c}' does not exist`,
          `use one of: ${input.fields.map((f) => f.name).join(', ')}`,
        );
      }
    }
    return input;
  }

  keysOf(batch: RecordBatch): unknown[] {
    const names = this.spec.columns ?? batch.schema.fields.map((f) => f.name);
    const columns = names.map((c) => valuesOf(batch.data.children[fieldIndex(batch.schema, c)]));
    const keys = new Array<unknown>(batch.numRows);
    for (let r = 0; r < batch.numRows; r++) keys[r] = makeKey(columns.map((c) => c[r] ?? null));
    return keys;
  }

  process(input: RecordBatch[], ctx: StatefulContext): RecordBatch[] {
    const state = ctx.state;
    const column = this.evictionColumn(ctx.eventTimeColumn);
    const delayMs = this.spec.withinWatermark?.delayMs ?? 0;
    const wm = ctx.watermarkMs;
    let dropped = 0;
    const out: RecordBatch[] = [];
    for (const batch of input) {
      const keys = this.keysOf(batch);
      let times: ArrayLike<number> | null = null;
      const timeData = column === undefined ? undefined : batch.data.children[fieldIndex(batch.schema, column)];
      if (timeData) {
        const raw = timeData.values as ArrayLike<number> | BigInt64Array;
        times = raw instanceof BigInt64Array ? int64ToNumbers(raw, 1, batch.numRows) : raw;
      }
      const keep: number[] = [];
      for (let r = 0; r < batch.numRows; r++) {
        const valid = times !== null && timeData!.getValid(r);
        if (valid && times![r] <= wm) {
          ctx.metrics.numRowsDroppedByWatermark++;
          continue;
        }
        const key = keys[r];
        if (state.has(key)) {
          dropped++;
          continue;
        }
        state.put(key, null, valid ? Math.max(0, times![r] + delayMs) : undefined);
        keep.push(r);
      }
      if (keep.length === batch.numRows) out.push(batch);
      else if (keep.length > 0) out.push(takeRows(batch, keep));
    }
    if (column !== undefined) {
      // Spark forgets a key once the watermark reaches its event time, or passes its expiry within the watermark.
      for (const key of state.keysWithTimeoutAtOrBefore(this.spec.withinWatermark ? wm - 1 : wm)) state.remove(key);
      ctx.metrics.nextEventTimeDeadlineMs = state.earliestTimeout();
    }
    ctx.metrics.customMetrics.numDroppedDuplicateRows =
      (ctx.metrics.customMetrics.numDroppedDuplicateRows ?? 0) + dropped;
    return out;
  }
}
