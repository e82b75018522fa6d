import type { MicroBatchExecution, QueryStatus } from '../exec/micro-batch-execution.js';
import type { QueryProgress } from '../exec/progress.js';

/** Events a listener receives (Spark's StreamingQueryListener). */
export interface StreamingQueryListener {
  onQueryStarted?(event: { id: string; runId: string; name: string | null }): void;
  onQueryProgress?(event: { progress: QueryProgress }): void;
  onQueryTerminated?(event: { id: string; runId: string; exception: string | null }): void;
}

const RECENT = 100;

/** A running query: stop it, wait for it, read its progress. */
export class StreamingQuery {
  private readonly recent: QueryProgress[] = [];

  /** @internal */
  constructor(
    private readonly execution: MicroBatchExecution,
    private readonly manager: StreamingQueryManager,
  ) {
    void execution
      .awaitTermination()
      .catch(() => undefined)
      .finally(() => manager.terminated(this));
  }

  /** Stable id of the query, kept in the checkpoint across restarts. */
  get id(): string {
    return this.execution.id;
  }
  /** Id of this run (new on every start). */
  get runId(): string {
    return this.execution.runId;
  }
  get name(): string | null {
    return this.execution.name;
  }
  get isActive(): boolean {
    return this.execution.isActive;
  }
  get status(): QueryStatus {
    return this.execution.status;
  }
  /** The error that stopped the query, if any. */
  get exception(): Error | null {
    return this.execution.exception;
  }
  /** Progress of the last completed batch. */
  get lastProgress(): QueryProgress | null {
    return this.recent[this.recent.length - 1] ?? null;
  }
  /** Progress of the last 100 batches, oldest first. */
  get recentProgress(): QueryProgress[] {
    return [...this.recent];
  }

  /**
   * The plan as it runs (Spark's `explain()`): each operator with the columns it outputs, the columns each
   * source builds after column pruning (`ReadSchema`) and those each exchange into state partitions moves.
   */
  explain(): string {
    return this.execution.explain();
  }

  /** Stops after the batch in progress completes. */
  stop(): Promise<void> {
    return this.execution.stop();
  }
  /** Resolves when the query stops; rejects with the error that stopped it. */
  awaitTermination(): Promise<void> {
    return this.execution.awaitTermination();
  }
  /** Resolves once all data available now in the sources is processed and committed. */
  processAllAvailable(): Promise<void> {
    return this.execution.processAllAvailable();
  }

  /** @internal */
  recordProgress(p: QueryProgress): void {
    this.recent.push(p);
    if (this.recent.length > RECENT) this.recent.shift();
    this.manager.progress(p);
  }
}

/** The session's running queries and listeners. */
export class StreamingQueryManager {
  private readonly listeners = new Set<StreamingQueryListener>();
  private readonly queries = new Set<StreamingQuery>();

  addListener(l: StreamingQueryListener): void {
    this.listeners.add(l);
  }
  removeListener(l: StreamingQueryListener): void {
    this.listeners.delete(l);
  }
  /** Queries that are still running. */
  get active(): StreamingQuery[] {
    return [...this.queries].filter((q) => q.isActive);
  }

  /** @internal */
  started(q: StreamingQuery): void {
    this.queries.add(q);
    for (const l of this.listeners) l.onQueryStarted?.({ id: q.id, runId: q.runId, name: q.name });
  }

  /** @internal */
  progress(p: QueryProgress): void {
    for (const l of this.listeners) l.onQueryProgress?.({ progress: p });
  }

  /** @internal */
  terminated(q: StreamingQuery): void {
    for (const l of this.listeners)
      l.onQueryTerminated?.({ id: q.id, runId: q.runId, exception: q.exception?.message ?? null });
  }
}
