import type { RecordBatch, Schema } from 'apache-arrow';

/**
 * The watermark once every source has reached its end: the largest instant a JS Date holds
 * (+275760-09-13), so every event time is before it and it still prints as a timestamp.
 */
export const END_OF_INPUT_WATERMARK_MS = 8_640_000_000_000_000;

/** A source's position, written into offsets/N as JSON. Each source defines its own shape. */
export type SourceOffset = unknown;

/** Per-trigger admission limits (Spark's ReadLimit). */
export interface ReadLimit {
  /** At most this many records in one batch (maxOffsetsPerTrigger, rowsPerBatch ...). */
  maxRows?: number;
  /** At most this many files in one batch (maxFilesPerTrigger). */
  maxFiles?: number;
}

/** What a source gets when a query starts. */
export interface SourceContext {
  /** `<checkpoint>/sources/<i>`: where the source keeps what it needs to replay (receive logs, file lists, schema). */
  dir: string;
  /** Index of this source in the query (its `<i>`). */
  index: number;
  /** The query's id from `<checkpoint>/metadata`. */
  queryId: string;
}

/**
 * A unit of reading that the driver or a worker runs. `reader` names an entry of the reader registry
 * (lib/sources/readers.ts) and `spec` is its JSON-serialisable argument, so a worker thread can run it.
 * Sources whose data already sits in the driver (memory, socket, rate) return `batches` instead.
 */
export type ReadTask =
  | { reader: string; spec: unknown; batches?: undefined }
  | { reader?: undefined; spec?: undefined; batches: RecordBatch[] };

/** What a read task produced. */
export interface ReadResult {
  batches: RecordBatch[];
  /** Malformed records: kept with nulls (PERMISSIVE), dropped (DROPMALFORMED) or written to badRecordsPath. */
  numMalformed?: number;
  /** Source-specific counters (e.g. Kafka's `dataLossOffsets`), summed over a batch's tasks into its progress. */
  metrics?: Record<string, number>;
}

/**
 * A streaming source (Spark's MicroBatchStream): offsets are planned in the driver, data is read for a
 * fixed range (start, end], and the same range always yields the same rows.
 */
export interface StreamSource {
  /** Short description for progress reports, e.g. `FileSource[data/in]`. */
  readonly description: string;
  /** Opens the source; called once before the first `latestOffset`. */
  initialize(ctx: SourceContext): Promise<void>;
  /** Output schema of the rows this source produces (after initialize). */
  schema(): Schema;
  /**
   * Column pruning (Spark's SupportsPushDownRequiredColumns): the query reads only `columns` (names of
   * {@link schema}'s fields, in its order), so the source may build only those; {@link schema} then gives
   * them. Called after initialize, before the first batch is planned.
   */
  pruneColumns?(columns: readonly string[]): void;
  /**
   * The offset a batch starting at `start` may read up to now, bounded by `limit`.
   * Returns `start` itself (deep-equal) when nothing new is available. `start` is null before the first batch.
   */
  latestOffset(start: SourceOffset | null, limit: ReadLimit): Promise<SourceOffset | null>;
  /**
   * Resolves once data beyond what the last {@link latestOffset} call saw may have arrived (at once when it
   * already has), or when `signal` aborts. A query with trigger interval 0 and nothing new waits on it
   * instead of asking every few ms, so new data starts a batch as it arrives; sources without it are polled.
   */
  waitForData?(signal: AbortSignal): Promise<void>;
  /** Tasks that read exactly the rows in (start, end]. Must be deterministic for replay. */
  planRead(start: SourceOffset | null, end: SourceOffset, batchId: number): Promise<ReadTask[]>;
  /** Number of rows in (start, end] when the source knows it cheaply (for progress); otherwise undefined. */
  rowCount?(start: SourceOffset | null, end: SourceOffset): number | undefined;
  /**
   * Bounded sources only: whether `offset` is the source's end, past the last row it will ever have (e.g.
   * `nexmark:?events=N` after event N). When every source of a query has reached its end, no row can
   * arrive late any more, so the watermark moves to {@link END_OF_INPUT_WATERMARK_MS} and one last batch
   * fires every open event-time window, session and timeout, as a bounded Flink job ends. Sources that
   * can always grow (files, Kafka, sockets) leave this out. Must be a pure function of `offset`.
   */
  reachedEnd?(offset: SourceOffset): boolean;
  /** Data up to `end` is committed and will never be read again: receive logs may be trimmed. */
  commit(end: SourceOffset): Promise<void>;
  /**
   * Called once before the first batch of a `trigger({ availableNow: true })` run: from then on the source
   * must not offer data that arrived later, so the run ends (Spark's SupportsTriggerAvailableNow).
   */
  prepareForTriggerAvailableNow?(): Promise<void>;
  /** Source-specific figures for this batch's progress (Spark's SourceProgress.metrics), e.g. offsets behind latest. */
  metrics?(): Record<string, number>;
  /** Why the source is stalled right now (e.g. retrying an unreachable broker), or null; shown in the query status. */
  stallMessage?(): string | null;
  /** Closes connections and files. */
  stop(): Promise<void>;
}
