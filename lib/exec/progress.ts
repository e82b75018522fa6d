/** Progress of one source in one batch (Spark's SourceProgress). */
export interface SourceProgress {
  description: string;
  startOffset: unknown;
  endOffset: unknown;
  numInputRows: number;
  /** Malformed rows: kept with nulls (PERMISSIVE), dropped (DROPMALFORMED) or set aside (badRecordsPath). */
  numMalformedRows: number;
  inputRowsPerSecond: number;
  processedRowsPerSecond: number;
  /** Source-specific figures (Spark's SourceProgress.metrics), e.g. Kafka's maxOffsetsBehindLatest; absent when none. */
  metrics?: Record<string, number>;
}

/** Progress of one stateful operator in one batch (Spark's StateOperatorProgress). */
export interface StateOperatorProgress {
  operatorName: string;
  numRowsTotal: number;
  numRowsUpdated: number;
  numRowsRemoved: number;
  numKeysTimedOut: number;
  numRowsDroppedByWatermark: number;
  numLateRows: number;
  memoryUsedBytes: number;
  commitTimeMs: number;
  /** Time spent loading state from the checkpoint, summed over partitions: non-zero after a restart (recovery time). */
  stateLoadTimeMs: number;
  numShufflePartitions: number;
  /** The operator's own counters (Spark's customMetrics), e.g. numDroppedDuplicateRows of deduplication; absent when none. */
  customMetrics?: Record<string, number>;
}

/**
 * Where one trigger's time went, in milliseconds of a monotonic clock (Spark's `durationMs`, plus sluice's own
 * breakdown of addBatch). The driver's phases `latestOffset`, `getBatch`, `queryPlanning`, `walCommit`, `addBatch`
 * and `commitOffsets` follow each other, so they add up to about `triggerExecution`, the whole trigger. `read`,
 * `exchange` and `sink` are parts of `addBatch`; `stateCommit` runs beside the sink in the driver's thread, its
 * part after the sink's end in `commitOffsets`.
 */
export interface TriggerDurations {
  /** Asking the sources how far the batch reads. */
  latestOffset: number;
  /** Asking the sources for the batch's read tasks (listing files, locating Kafka offsets). */
  getBatch: number;
  /** Turning the plan into the batch's tasks (fragments, exchanges, stateful partitions). */
  queryPlanning: number;
  /**
   * Writing the batch's plan to the offset log, as far as it held the batch up: the write (which follows the
   * previous batch's commit) goes on while the batch reads, and stateful tasks and the sink wait for it.
   */
  walCommit: number;
  /** Running the batch: reading its input through the operators and state stores, then writing the output (as Spark's addBatch, where its lazy plan runs). */
  addBatch: number;
  /**
   * From the sink's end: the state becoming durable, then writing the commit log and committing the sources,
   * while the next trigger already asks for offsets and reads.
   */
  commitOffsets: number;
  triggerExecution: number;
  /**
   * Reading and decoding the input, on the busiest thread: the read tasks' time summed per thread, largest sum.
   * Threads read in parallel, so this is the part of addBatch that reading holds up (all of it at threads 0).
   */
  read: number;
  /** Splitting rows by state partition before stateful operators, on the busiest thread (as `read`). */
  exchange: number;
  /**
   * Committing the state stores (writing their deltas and snapshots): the longest commit in the driver's thread,
   * where partitions commit side by side and beside the sink, else the busiest thread's (as `read`).
   */
  stateCommit: number;
  /** Handing the output to the sink (and late rows to the late-data output) until it has them durably. */
  sink: number;
}

/** One batch's progress, shaped like Spark's StreamingQueryProgress (times as ISO-8601 strings). */
export interface QueryProgress {
  id: string;
  runId: string;
  name: string | null;
  /**
   * When the trigger that ran the batch started, by the query's clock (a ManualClock's time in tests), as Spark
   * reports it.
   */
  timestamp: string;
  batchId: number;
  /**
   * How long the batch took: `durationMs.triggerExecution` in whole milliseconds (Spark's batchDuration, which
   * Spark reads off the trigger clock; this is wall time, so it shows the processing time under a ManualClock too).
   */
  batchDuration: number;
  numInputRows: number;
  inputRowsPerSecond: number;
  processedRowsPerSecond: number;
  durationMs: TriggerDurations;
  /** `watermark` only for a query with an event-time watermark (withWatermark); min/max/avg only for a batch that read event times. */
  eventTime: { watermark?: string; min?: string; max?: string; avg?: string };
  stateOperators: StateOperatorProgress[];
  sources: SourceProgress[];
  sink: { description: string; numOutputRows: number };
}
