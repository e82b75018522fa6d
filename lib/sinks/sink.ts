import type { Table } from 'apache-arrow';
import type { OutputMode } from './output-mode.js';

/** What a sink gets when a query starts. */
export interface SinkContext {
  queryId: string;
  queryName?: string;
  /** `<checkpoint>/sinks`: a sink may keep its own commit state here. */
  checkpointDir: string;
  outputMode: OutputMode;
  /**
   * Throws when another process has taken the query's checkpoint over (a paused process that lost its task in a
   * consumer group). A sink that writes in several requests calls it before each, so that such a process stops
   * writing as soon as it wakes, rather than adding rows its successor already wrote.
   */
  verifyOwner?: () => Promise<void>;
}

/**
 * A streaming sink. `addBatch` must be idempotent per batchId: after a crash the driver calls it again
 * for the last planned batch with exactly the same data, and the result must be as if it ran once.
 */
export interface StreamSink {
  /** Short description for progress reports, e.g. `FileSink[out]`. */
  readonly description: string;
  initialize(ctx: SinkContext): Promise<void>;
  /** Writes one micro-batch's output. `data` may have zero rows (its schema is still meaningful). */
  addBatch(batchId: number, data: Table): Promise<void>;
  /**
   * Called as batch `batchId` starts, while its input is still being read and possibly before its offsets are
   * durable: the sink may do the part of {@link addBatch}'s work that does not depend on the output (the Kafka
   * sink writes its replay marker), so the output becomes visible sooner. Nothing may be made visible here.
   */
  prepareBatch?(batchId: number): Promise<void>;
  /** Why the sink is stalled right now (e.g. retrying an unreachable broker), or null; shown in the query status. */
  stallMessage?(): string | null;
  /** Releases resources (connections, file handles). */
  close(): Promise<void>;
}
