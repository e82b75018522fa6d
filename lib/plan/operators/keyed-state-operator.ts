/**
 * The loop that mapGroupsWithState and transformWithState share (as Spark's FlatMapGroupsWithStateExec and
 * TransformWithStateExec share theirs). Per state partition and batch:
 * 1. {@link KeyedStateOperator.beginPartition}: the operator's own set-up (e.g. declaring state variables);
 * 2. with event-time timeouts or timers, rows at or behind the watermark are dropped and counted;
 * 3. the first batch of a checkpoint hands the partition's initial state to {@link KeyedStateOperator.seed};
 * 4. {@link KeyedStateOperator.handleRows} once per key with rows, keys in order of first appearance, each
 *    with its rows in source order;
 * 5. {@link KeyedStateOperator.fireDue} with the time at or before which timeouts or timers are due (the
 *    processing time, or the watermark with event time), in batches without new data too;
 * 6. {@link KeyedStateOperator.endPartition} (e.g. reporting the next timeout), then, whether the batch got
 *    this far or failed, {@link KeyedStateOperator.releasePartition}.
 * What the calls return ({@link KeyedStateOperator.emit}, {@link KeyedStateOperator.emitAll}) becomes the
 * output batch.
 */
import type { RecordBatch, Schema } from 'apache-arrow';
import { SluiceError } from '../../errors.js';
import type { OutputMode } from '../../sinks/output-mode.js';
import type { StatefulContext, StatefulOperator } from '../stateful-operator.js';
import {
  type Group,
  type Grouping,
  groupBatches,
  initialEntriesOf,
  keysOfBatch,
  outputBatch,
  partitionsOfBatch,
} from './grouping.js';
import type { KeyIndex } from './key-index.js';

/** The clock an operator's timeouts or timers follow: none, the batch processing time, or the watermark. */
export type StateClock = 'none' | 'processing' | 'event';

/** Whether a user function's result can be iterated for its rows. */
export function isIterable(v: unknown): v is Iterable<unknown> {
  return (
    v !== null && typeof v === 'object' && typeof (v as { [Symbol.iterator]?: unknown })[Symbol.iterator] === 'function'
  );
}

/** Whether a user function returned a Promise (or any thenable), which stateful functions must not. */
export function isThenable(v: unknown): boolean {
  return v !== null && typeof v === 'object' && typeof (v as { then?: unknown }).then === 'function';
}

/** A grouping key as messages show it. */
export function describeKey(key: unknown): string {
  try {
    return JSON.stringify(key, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v)) ?? String(key);
  } catch {
    return String(key);
  }
}

/** Which rows of `batch` are after the watermark (1) or late (0, counted as dropped); null when all are kept. */
export function notLateRows(batch: RecordBatch, column: string, ctx: StatefulContext): Uint8Array | null {
  const i = batch.schema.fields.findIndex((f) => f.name === column);
  if (i < 0) return null;
  const data = batch.data.children[i];
  const values = data.values as ArrayLike<number | bigint>;
  const wm = ctx.watermarkMs;
  const keep = new Uint8Array(batch.numRows);
  for (let r = 0; r < batch.numRows; r++) {
    if (data.getValid(r) && Number(values[r]) <= wm) ctx.metrics.numRowsDroppedByWatermark++;
    else keep[r] = 1;
  }
  return keep;
}

/** What a keyed state operator is built from, besides its per-key calls. */
export interface KeyedStateOperatorSpec {
  grouping: Grouping;
  /** The output schema, or null when it is inferred from the rows the calls return. */
  schema: Schema | null;
  clock: StateClock;
  outputMode: OutputMode;
  outputModeHint: string;
  /** Why the query is refused when the clock is event time and there is no watermark. */
  watermarkHint: string;
  /** Validated [key, state] pairs handed to {@link KeyedStateOperator.seed} by the first batch of a checkpoint. */
  initialState: readonly (readonly [unknown, unknown])[];
  /** What the user wrote, as messages name it: `function` or `processor`. */
  userCode: 'function' | 'processor';
}

/** The per-key loop of a stateful operator that calls user code per grouping key; see the file's comment. */
export abstract class KeyedStateOperator implements StatefulOperator {
  abstract readonly name: string;
  readonly outputSchema: Schema | null;
  readonly outputModes: readonly OutputMode[];
  readonly outputModeHint: string;

  protected constructor(private readonly keyed: KeyedStateOperatorSpec) {
    this.outputSchema = keyed.schema;
    this.outputModes = [keyed.outputMode];
    this.outputModeHint = keyed.outputModeHint;
  }

  usesWatermark(): boolean {
    return this.keyed.clock === 'event';
  }

  analyze(info: { outputMode: OutputMode; hasWatermark: boolean }): string | null {
    return this.keyed.clock === 'event' && !info.hasWatermark ? this.keyed.watermarkHint : null;
  }

  keysOf(batch: RecordBatch): unknown[] {
    return keysOfBatch(this.keyed.grouping, batch);
  }

  partitionsOf(batch: RecordBatch, numPartitions: number): Int32Array {
    return partitionsOfBatch(this.keyed.grouping, batch, numPartitions);
  }

  process(input: RecordBatch[], ctx: StatefulContext): RecordBatch[] {
    const { keyed } = this;
    const out: Record<string, unknown>[] = [];
    this.beginPartition(ctx);
    try {
      const eventTime = keyed.clock === 'event' ? ctx.eventTimeColumn : undefined;
      const keep = eventTime === undefined ? undefined : input.map((b) => notLateRows(b, eventTime, ctx));
      const groups = groupBatches(keyed.grouping, input, keep);
      if (ctx.batchId === 0 && keyed.initialState.length > 0) {
        this.seed(initialEntriesOf(keyed.initialState, ctx.partition, ctx.numPartitions), groups, ctx, out);
      }
      for (const g of groups.values()) this.handleRows(g.key, g.values, ctx, out);
      const due = this.dueThreshold(ctx);
      if (due !== undefined) this.fireDue(due, groups, ctx, out);
      this.endPartition(ctx);
    } finally {
      this.releasePartition();
    }
    return outputBatch(out, keyed.schema);
  }

  /** Timeouts or timers at or before this time are due; undefined when there are none to look for. */
  private dueThreshold(ctx: StatefulContext): number | undefined {
    switch (this.keyed.clock) {
      case 'processing':
        return ctx.processingTimeMs;
      case 'event':
        return ctx.eventTimeColumn === undefined ? undefined : ctx.watermarkMs;
      default:
        return undefined;
    }
  }

  /** Set-up of a partition's batch, before any row is looked at. */
  protected beginPartition(_ctx: StatefulContext): void {}

  /** The partition's initial state, first batch of a checkpoint only, before the keys with rows are handled. */
  protected abstract seed(
    entries: Iterable<readonly [unknown, unknown]>,
    groups: KeyIndex<Group>,
    ctx: StatefulContext,
    out: Record<string, unknown>[],
  ): void;

  /** Calls the user code for one key and its rows. */
  protected abstract handleRows(
    key: unknown,
    values: unknown[],
    ctx: StatefulContext,
    out: Record<string, unknown>[],
  ): void;

  /** Calls the user code for what is due at `threshold`; `groups` are the keys that had rows in this batch. */
  protected abstract fireDue(
    threshold: number,
    groups: KeyIndex<Group>,
    ctx: StatefulContext,
    out: Record<string, unknown>[],
  ): void;

  /** The partition's calls are done. */
  protected endPartition(_ctx: StatefulContext): void {}

  /** The partition's batch is over, done or failed. */
  protected releasePartition(): void {}

  /** Adds what one call returned (an array of rows or any iterable) to the output. */
  protected emitAll(result: unknown, key: unknown, out: Record<string, unknown>[]): void {
    this.checkSynchronous(result, key);
    if (!isIterable(result)) {
      throw new SluiceError(
        'USER_CODE',
        `${this.name} ${this.keyed.userCode} returned ${result === null ? 'null' : typeof result} for key ${describeKey(key)}`,
        'return an array of rows (possibly empty) or any iterable, e.g. a generator',
      );
    }
    for (const row of result) out.push(this.checkRow(row, key, 'each row must be an object, e.g. { id, total }'));
  }

  /** Adds the one row a call returned to the output; `hint` says what to return instead of a non-row. */
  protected emit(result: unknown, key: unknown, out: Record<string, unknown>[], hint: string): void {
    this.checkSynchronous(result, key);
    out.push(this.checkRow(result, key, hint));
  }

  private checkSynchronous(result: unknown, key: unknown): void {
    if (isThenable(result)) {
      const what = this.keyed.userCode;
      throw new SluiceError(
        'USER_CODE',
        `${this.name} ${what} returned a Promise for key ${describeKey(key)}`,
        `the ${what} must be synchronous: do the async work before groupByKey or in foreachBatch`,
      );
    }
  }

  private checkRow(row: unknown, key: unknown, hint: string): Record<string, unknown> {
    if (row === null || typeof row !== 'object' || Array.isArray(row)) {
      throw new SluiceError(
        'USER_CODE',
        `${this.name} ${this.keyed.userCode} produced ${row === null ? 'null' : Array.isArray(row) ? 'an array' : typeof row} as a row for key ${describeKey(key)}`,
        hint,
      );
    }
    return row as Record<string, unknown>;
  }
}
