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
}

/**
 * Wall time of the phases of one trigger, in milliseconds (Spark's `durationMs`); the phases add up to about
 * `triggerExecution`, the whole trigger.
 */
export interface TriggerDurations {
  /** Asking the sources how far the batch reads. */
  latestOffset: number;
  /** Writing the batch's plan to the offset log. */
  walCommit: number;
  /**
   * Reading the batch's input and running it through the operators and state stores (Spark counts this in
   * addBatch, where its lazy plan runs).
   */
  execution: number;
  /** Handing the output to the sink. */
  addBatch: number;
  /** Writing the commit log and committing the sources. */
  commit: number;
  triggerExecution: number;
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
