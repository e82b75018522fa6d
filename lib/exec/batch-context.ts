import type { InputSide, OperatorMetrics } from '../plan/stateful-operator.js';
import type { OutputMode } from '../sinks/output-mode.js';
import type { ReadTask } from '../sources/source.js';
import type { StateCommitStats } from '../state/state-store-cache.js';

/** What every task of batch N needs to know; all of it comes from the offset log, so replays match. */
export interface BatchContext {
  batchId: number;
  batchTimestampMs: number;
  watermarkMs: number;
  checkpointDir: string;
  numStatePartitions: number;
  outputMode: OutputMode;
  /** Stateful operator id → the event-time column it sees (from withWatermark), if any. */
  eventTimeColumns: Record<number, string>;
  /** Stateful operator id → the output mode it runs in (the query's, or append for one feeding another). */
  operatorOutputModes: Record<number, OutputMode>;
  /** Whether late rows go to a late-data output (otherwise operators only count them). */
  lateOutput: boolean;
  /** Keep state versions from this one on (older ones may be purged). */
  minStateVersionToKeep: number;
}

/**
 * A pipeline of stateless operators over one input: rows from a read task or from batches of an upstream
 * stateful operator, through `chain` (node ids, applied in order), optionally hash-partitioned by the key of
 * stateful node `exchange` at the end.
 */
export interface FragmentSpec {
  read?: ReadTask;
  chain: number[];
  exchange?: number;
  /** The columns the exchange moves, when column pruning found that `exchange` reads only these; else all. */
  columns?: string[];
  /**
   * For an exchange into a two-input operator: after `chain`, each branch applies its own chain and partitions
   * its rows tagged with its side, so one read feeds both sides of a self-join (both branches, or one).
   */
  sides?: { chain: number[]; side: InputSide }[];
}

/** Event-time statistics of one withWatermark node over one fragment. */
export interface EventTimeStats {
  max: number;
  min: number;
  sum: number;
  count: number;
}

/** What a fragment task reports besides its rows. */
export interface FragmentMetrics {
  /** Rows read from the source (before any operator), when the fragment starts at a source. */
  numInputRows: number;
  numMalformed: number;
  /** The read task's source-specific counters (ReadResult.metrics). */
  sourceMetrics?: Record<string, number>;
  /** withWatermark node id → event-time stats. */
  eventTime: Record<number, EventTimeStats>;
  /** Time the fragment spent reading and decoding its input, in milliseconds. */
  readMs: number;
  /** Time the fragment spent splitting its rows by state partition, in milliseconds. */
  exchangeMs: number;
}

/** What a stateful partition task reports: the operator's counters and its state commit's figures. */
export type StatefulMetrics = OperatorMetrics & StateCommitStats;
