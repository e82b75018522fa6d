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

/** One batch's progress, shaped like Spark's StreamingQueryProgress (times as ISO-8601 strings). */
export interface QueryProgress {
  id: string;
  runId: string;
  name: string | null;
  timestamp: string;
  batchId: number;
  numInputRows: number;
  inputRowsPerSecond: number;
  processedRowsPerSecond: number;
  durationMs: { latestOffset: number; walCommit: number; addBatch: number; commit: number; triggerExecution: number };
  eventTime: { watermark: string; min?: string; max?: string; avg?: string };
  stateOperators: StateOperatorProgress[];
  sources: SourceProgress[];
  sink: { description: string; numOutputRows: number };
}
