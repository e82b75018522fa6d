import { RecordBatch, Schema } from 'apache-arrow';
import type { OutputMode } from '../sinks/output-mode.js';
import type { Expression } from './expression.js';

/** The state one operator keeps for one state partition; implemented by lib/state's StateStore. */
export interface KeyedState {
  get(key: unknown): unknown;
  has(key: unknown): boolean;
  put(key: unknown, value: unknown, timeoutMs?: number): void;
  remove(key: unknown): void;
  getTimeout(key: unknown): number;
  readonly size: number;
  entries(): Iterable<[unknown, unknown]>;
  sortedEntries(): Iterable<[unknown, unknown]>;
  /** Due keys in timeout order, then key order; the first `limit` of them when more are due. */
  keysWithTimeoutAtOrBefore(ts: number, limit?: number): unknown[];
  /** The earliest timeout of any key, or Infinity when none has one (without listing the keys). */
  earliestTimeout(): number;
}

/** Counters an operator reports per batch, summed over partitions into the query progress. */
export interface OperatorMetrics {
  numRowsDroppedByWatermark: number;
  numKeysTimedOut: number;
  numLateRows: number;
  /** The earliest processing-time timeout left in state, or Infinity: the driver runs a no-data batch when it is due. */
  nextProcessingTimeoutMs: number;
  /** The earliest event-time deadline left in state (timeouts, windows to close), or Infinity. */
  nextEventTimeDeadlineMs: number;
  /** Counters of one kind of operator (Spark's customMetrics), e.g. deduplication's numDroppedDuplicateRows. */
  customMetrics: Record<string, number>;
  /**
   * State rows when they are not the store's keys (a join buffers several rows per key); progress reports it as
   * numRowsTotal instead of the key count.
   */
  stateRows?: number;
}

/** What a stateful operator sees while it processes one state partition in one batch. */
export interface StatefulContext {
  batchId: number;
  partition: number;
  numPartitions: number;
  /** State as of the end of the previous batch; the task runner commits it as version batchId. */
  state: KeyedState;
  /** The batch's event-time watermark from the offset log. */
  watermarkMs: number;
  /** The event-time column declared by withWatermark below this operator, when it reaches it. */
  eventTimeColumn?: string;
  /** The batch's processing time from the offset log. */
  processingTimeMs: number;
  outputMode: OutputMode;
  metrics: OperatorMetrics;
  /** Rows an operator diverts to the late-data output, with the reason already in their columns. */
  late: RecordBatch[];
  /** Whether the query has a late-data output; when false, late rows are only counted, not built. */
  lateOutput: boolean;
  /** The most keys the operator closes in this partition and batch (see {@link keysToEvict}); default unbounded. */
  maxEvictions?: number;
}

/**
 * The keys whose windows or sessions the watermark `wm` closed, earliest first, at most `ctx.maxEvictions` of
 * them. When it may have left some, it asks for a no-data batch at once (a processing-time deadline already
 * passed), so they close in the batches that follow: each batch removes from state exactly the keys whose rows
 * it emits, and commits both together, so output stays exactly-once and, over the batches, the same rows.
 * Rows arriving meanwhile cannot reopen a key left due: they are behind the watermark, or start a new session.
 */
export function keysToEvict(ctx: StatefulContext, wm: number): unknown[] {
  const limit = ctx.maxEvictions ?? Infinity;
  const keys = ctx.state.keysWithTimeoutAtOrBefore(wm, limit);
  if (keys.length >= limit)
    ctx.metrics.nextProcessingTimeoutMs = Math.min(ctx.metrics.nextProcessingTimeoutMs, ctx.processingTimeMs);
  return keys;
}

/**
 * A stateful operator (mapGroupsWithState, aggregation, windows). The engine hash-partitions input rows by
 * `keysOf`, then calls `process` once per state partition with that partition's rows in source order.
 * Implementations must be deterministic: the same rows, state and context give the same output.
 */
export interface StatefulOperator {
  /** Operator name for messages and progress, e.g. `mapGroupsWithState`. */
  readonly name: string;
  /** The row function the user wrote for it, if any: messages show its start. */
  readonly userFunction?: unknown;
  /** Output schema, or null when it is inferred from what a user function returns. */
  readonly outputSchema: Schema | null;
  /**
   * Whether the operator reads the event-time watermark when the withWatermark column `eventTimeColumn` reaches
   * it (it then needs a no-data batch when the watermark moves).
   */
  usesWatermark(eventTimeColumn: string | undefined): boolean;
  /** Output modes it supports; the analyzer rejects the others with `outputModeHint`. */
  readonly outputModes: readonly OutputMode[];
  /** Why an unsupported output mode is rejected and what to use instead. */
  readonly outputModeHint?: string;
  /**
   * Checks done when the query starts (e.g. append mode needs a watermark): returns an error message or null.
   * `appendsBelow`: every stateful operator below this one emits each row once (runs in append mode).
   */
  analyze?(info: {
    outputMode: OutputMode;
    hasWatermark: boolean;
    eventTimeColumn?: string;
    appendsBelow?: boolean;
  }): string | null;
  /**
   * Output schema for a known input schema, checked when the query starts (e.g. an aggregation whose result
   * types follow its input columns); throws SluiceError('ANALYSIS') for columns that do not exist or fit.
   */
  resolveOutputSchema?(input: Schema, right?: Schema): Schema | null;
  /**
   * Grouping key of each row, as primitives or arrays of primitives (hashed into state partitions); a
   * two-input operator reads the batch's side with {@link inputSideOf}.
   */
  keysOf(batch: RecordBatch): unknown[];
  /**
   * The state partition of each row, when the operator computes it faster than hashing `keysOf` (e.g. from
   * the key column's buffers); it must equal `partitionOf(keysOf(batch)[i], numPartitions)` for every row.
   */
  partitionsOf?(batch: RecordBatch, numPartitions: number): Int32Array;
  /**
   * The expressions it evaluates over its input rows, when they are all it reads of them (an aggregation's
   * grouping and argument columns); absent when it needs whole rows (its functions see rows, or it passes
   * rows on). Column pruning moves only the columns they read through the exchange.
   */
  inputExpressions?(): Expression[];
  /** Processes one partition's rows (may be empty: a no-data batch still fires timeouts and evictions). */
  process(input: RecordBatch[], ctx: StatefulContext): RecordBatch[] | Promise<RecordBatch[]>;
  /** Schema of rows diverted to the late-data output, when the operator has one. */
  readonly lateSchema?: Schema;
  /** State rows the operator keeps for itself in a partition (not per key): left out of progress' numRowsTotal. */
  internalRows?(state: KeyedState): number;
}

/** Fresh counters for one partition and batch. */
export function newOperatorMetrics(): OperatorMetrics {
  return {
    numRowsDroppedByWatermark: 0,
    numKeysTimedOut: 0,
    numLateRows: 0,
    nextProcessingTimeoutMs: Infinity,
    nextEventTimeDeadlineMs: Infinity,
    customMetrics: {},
  };
}

/** Which input of a two-input operator (a stream-stream join) a batch comes from. */
export type InputSide = 'left' | 'right';

const SIDE_METADATA = 'sluice.input.side';
const tagged = { left: new WeakMap<Schema, Schema>(), right: new WeakMap<Schema, Schema>() };

/**
 * The batch with its side in its schema's metadata, which crosses threads with the batch (Arrow IPC keeps it);
 * one tagged schema per input schema, so caches keyed by schema keep working.
 */
export function withInputSide(batch: RecordBatch, side: InputSide): RecordBatch {
  let schema = tagged[side].get(batch.schema);
  if (!schema) {
    const metadata = new Map(batch.schema.metadata);
    metadata.set(SIDE_METADATA, side);
    schema = new Schema(batch.schema.fields, metadata);
    tagged[side].set(batch.schema, schema);
  }
  return new RecordBatch(schema, batch.data);
}

/** The side a batch was tagged with by {@link withInputSide}, or undefined. */
export function inputSideOf(batch: RecordBatch): InputSide | undefined {
  return batch.schema.metadata.get(SIDE_METADATA) as InputSide | undefined;
}
