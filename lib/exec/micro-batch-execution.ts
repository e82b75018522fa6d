import { randomUUID } from 'node:crypto';
import { isDeepStrictEqual } from 'node:util';
import { RecordBatch, type Schema, Table } from 'apache-arrow';
import { batchFromRows, compactBatches, countRows, emptyBatch, inferSchema, rowsFromBatch } from '../arrow/index.js';
import { Checkpoint, type PreparedWrite } from '../checkpoint/checkpoint.js';
import type { ClaimOptions } from '../checkpoint/checkpoint-claim.js';
import type { OffsetEntry } from '../checkpoint/offset-log.js';
import { SluiceError } from '../errors.js';
import type { Analysis } from '../plan/analyzer.js';
import { type ColumnPruning, pruneColumns } from '../plan/column-pruning.js';
import { explainPlan } from '../plan/explain.js';
import { nodeName, type PlanNode, type SourceNode, type StatefulNode } from '../plan/logical-plan.js';
import type { Broadcasts } from '../plan/operators/stream-static-join.js';
import { withInputSide } from '../plan/stateful-operator.js';
import type { StreamSink } from '../sinks/sink.js';
import type { ReadLimit, SourceOffset, StreamSource } from '../sources/source.js';
import { type Clock, SystemClock, sleep } from '../util/clock.js';
import { type CrashPoint, crashPoint } from '../util/crash-points.js';
import { notice } from '../util/notices.js';
import { settleAll } from '../util/settle-all.js';
import type { BatchContext, EventTimeStats, FragmentSpec } from './batch-context.js';
import { broadcastStaticSides, loadRelations } from './broadcast-exchange.js';
import type { Executor, FragmentJob } from './executor.js';
import type { LaneStage } from './lane-profile.js';
import type { QueryProgress, TriggerDurations } from './progress.js';
import { type BatchMetrics, type BatchPhase, ProgressReporter, type TriggerTiming } from './progress-reporter.js';
import type { FragmentResult, StatefulResult } from './task-runner.js';
import { WatermarkTracker } from './watermark-tracker.js';
import type { StoreRef } from './worker-protocol.js';

/**
 * How long a query with trigger interval 0 waits before asking its sources again when they had no new data
 * (Spark's spark.sql.streaming.pollingDelay): new data waits at most this long for its batch to start.
 */
const IDLE_POLL_MS = 10;

/**
 * The longest a query whose sources all wake it on new data ({@link StreamSource.waitForData}) waits between
 * batches without asking them again: a safety net, not a polling interval.
 */
const IDLE_WAKE_MAX_MS = 1000;

/**
 * Batches between purges of what the checkpoint no longer needs (log entries and state files older than the
 * retained batches), as Spark does maintenance now and then rather than in every batch.
 */
const PURGE_EVERY_BATCHES = 10;

/** When batches run: every interval, once, or until the data available now is processed. */
export type Trigger = { processingTimeMs: number } | { once: true } | { availableNow: true };

/** Everything one query run needs; built by DataStreamWriter.start(). */
export interface QueryConfig {
  name?: string;
  root: PlanNode;
  analysis: Analysis;
  sink: StreamSink;
  /** Where late rows go, when the user asked for a late-data output. */
  lateSink?: StreamSink;
  trigger: Trigger;
  checkpointDir: string;
  /** Timing of the checkpoint's claim (see CheckpointClaim). */
  checkpointClaim?: ClaimOptions;
  numStatePartitions: number;
  /** Keep this many committed batches in the logs (and the state versions they need). */
  retainBatches: number;
  limits: ReadLimit[];
  clock: Clock;
  /**
   * Creates the executor once the plan is known (in-process or worker pool), with the hashed static sides of
   * the query's stream-static joins, which it hands to its threads once.
   */
  makeExecutor: (broadcasts: Broadcasts) => Executor;
  /** Called with each batch's progress. */
  onProgress: (p: QueryProgress) => void;
  /** Real-time poll interval while no data arrives (trigger intervals use the clock). */
  idlePollMs?: number;
}

/** Status as Spark's StreamingQueryStatus. */
export interface QueryStatus {
  message: string;
  isDataAvailable: boolean;
  isTriggerActive: boolean;
}

interface Waiter {
  resolve: () => void;
  reject: (e: unknown) => void;
}

/**
 * The micro-batch driver (Spark's MicroBatchExecution). Each batch: plan offsets, write offsets/N, run the
 * batch's tasks, hand the output to the sink, write commits/N. On start it re-runs a batch that was
 * planned but not committed, with exactly its logged offsets, processing time and watermark.
 */
export class MicroBatchExecution {
  readonly runId = randomUUID();
  id = '';
  private baseStatus: QueryStatus = { message: 'Initializing sources', isDataAvailable: false, isTriggerActive: false };
  exception: Error | null = null;
  private checkpoint!: Checkpoint;
  private sources: { node: SourceNode; source: StreamSource }[] = [];
  /** Which columns sources build and exchanges move, worked out when the query opens. */
  private pruning: ColumnPruning = { sources: new Map(), exchanges: new Map() };
  private executor!: Executor;
  private progress!: ProgressReporter;
  private readonly watermark: WatermarkTracker;
  private committed: SourceOffset[] = [];
  private nextProcessingTimeoutMs = Infinity;
  private nextBatchId = 0;
  private readonly abort = new AbortController();
  private stopping = false;
  private finished = false;
  private readonly terminationWaiters: Waiter[] = [];
  private idleWaiters: Waiter[] = [];
  private loopDone: Promise<void> = Promise.resolve();
  private lastTriggerStart: number | null = null;
  private begun = false;
  /**
   * The durable part of the last batch's commit (its state, commits/N, the sources' commits), still being
   * written while the next trigger asks its sources for offsets and reads.
   */
  private pendingCommit: Promise<void> | null = null;
  /**
   * Settles once the last batch is complete: its output handed to the sink and its state durable (the commit of
   * the batch before it was durable before its sink ran). offsets/N+1 waits for this, not for commits/N, which
   * is written meanwhile; batch N+1's stateful tasks and sink wait for both.
   */
  private lastComplete: Promise<unknown> = Promise.resolve();
  /**
   * How long the last batch read before it needed its offsets durable (from its trigger's start), and how long
   * after its sink the last batch became complete: see {@link completeBeforeRead}.
   */
  private lastReadSpanMs = Infinity;
  private lastCompleteMs = 0;

  constructor(private readonly config: QueryConfig) {
    this.watermark = new WatermarkTracker(config.analysis.watermarks, config.analysis.multipleWatermarkPolicy);
  }

  /** The driver's status, with what a source or the sink says it is stalled on (e.g. a broker it retries). */
  get status(): QueryStatus {
    const stalls = [...this.sources.map((s) => s.source.stallMessage?.()), this.config.sink.stallMessage?.()].filter(
      (m) => m,
    );
    return stalls.length === 0
      ? this.baseStatus
      : { ...this.baseStatus, message: `${this.baseStatus.message}; stalled: ${stalls.join('; ')}` };
  }

  set status(s: QueryStatus) {
    this.baseStatus = s;
  }

  /** Opens the checkpoint, sources and sink, then starts the batch loop in the background. */
  async start(): Promise<void> {
    await this.open();
    this.begin();
  }

  /**
   * Opens the checkpoint, sources and sink and checks the plan against the sources' schemas, without running
   * a batch: an app with several outputs opens them all before any of them writes (see {@link begin}).
   */
  async open(): Promise<void> {
    const c = this.config;
    this.checkpoint = await Checkpoint.open(
      c.checkpointDir,
      { numStatePartitions: c.numStatePartitions },
      { claim: c.checkpointClaim },
    );
    this.id = this.checkpoint.queryId;
    try {
      const first = await this.checkpoint.nextBatch();
      this.sources = c.analysis.sources.map((node) => ({ node, source: node.create() }));
      this.progress = new ProgressReporter(
        { id: this.id, runId: this.runId, name: c.name ?? null },
        this.sources.map((s) => s.source),
        c.sink,
        c.analysis.statefulNodes,
        c.analysis.watermarks.length > 0,
        c.onProgress,
      );
      for (let i = 0; i < this.sources.length; i++) {
        await this.sources[i].source.initialize({ dir: this.checkpoint.sourceDir(i), index: i, queryId: this.id });
      }
      const relations = await loadRelations(c.analysis);
      const relationSchemas = new Map([...relations].map(([id, r]) => [id, r.schema]));
      c.analysis.check(
        this.sources.map((s) => s.source.schema()),
        relationSchemas,
      );
      this.pruning = pruneColumns(c.root, (id) => c.analysis.schemaOf(id), { lateOutput: c.lateSink !== undefined });
      let narrowed = false;
      for (const { node, source } of this.sources) {
        const columns = this.pruning.sources.get(node.id);
        if (columns && source.pruneColumns) {
          source.pruneColumns(columns);
          narrowed = true;
        }
      }
      // The operators above a pruned source see its narrower rows.
      if (narrowed)
        c.analysis.check(
          this.sources.map((s) => s.source.schema()),
          relationSchemas,
        );
      const sinkCtx = {
        queryId: this.id,
        queryName: c.name,
        checkpointDir: this.checkpoint.sinkDir(),
        outputMode: c.analysis.outputMode,
        verifyOwner: () => this.checkpoint.verifyOwner(),
      };
      await c.sink.initialize(sinkCtx);
      await c.lateSink?.initialize({
        ...sinkCtx,
        checkpointDir: `${this.checkpoint.sinkDir()}-late`,
        outputMode: 'append',
      });
      const broadcasts = await broadcastStaticSides(c.analysis, c.root, relations, {
        batchId: first.batchId,
        batchTimestampMs: c.clock.now(),
        watermarkMs: 0,
        checkpointDir: this.checkpoint.dir,
        numStatePartitions: c.numStatePartitions,
        outputMode: c.analysis.outputMode,
        eventTimeColumns: {},
        operatorOutputModes: {},
        lateOutput: false,
        minStateVersionToKeep: 0,
      });
      this.executor = c.makeExecutor(broadcasts);
      // The state the first batch reads is loaded now, in the threads that run it, and so checked before any
      // query of an app runs a batch (an app whose second query has a damaged checkpoint stops first); the
      // first batch then finds it in memory instead of reading the files again.
      if (first.batchId > 0) {
        const stores = c.analysis.statefulNodes.flatMap((node) =>
          Array.from({ length: c.numStatePartitions }, (_, p): StoreRef => [node.id, p]),
        );
        await this.executor.openState(this.checkpoint.dir, stores, first.batchId);
      }
    } catch (err) {
      const reported = await this.causeOf(err);
      await this.closeAll();
      throw reported;
    }
  }

  /**
   * What a failed run reports: when another process has taken the checkpoint over meanwhile (this one was
   * paused, and its successor started), that is the cause of whatever failed after it (the successor removes
   * the temporary files this process was writing), so the takeover is reported instead of its consequence.
   */
  private async causeOf(err: unknown): Promise<Error> {
    const failure = err instanceof Error ? err : new Error(String(err));
    if (!this.checkpoint || (failure instanceof SluiceError && failure.code === 'CHECKPOINT_IN_USE')) return failure;
    try {
      await this.checkpoint.verifyOwner();
    } catch (lost) {
      if (lost instanceof SluiceError && lost.code === 'CHECKPOINT_IN_USE') return lost;
    }
    return failure;
  }

  /** Starts the batch loop in the background, once {@link open} has succeeded. */
  begin(): void {
    this.begun = true;
    this.loopDone = this.runLoop();
  }

  private async runLoop(): Promise<void> {
    try {
      await this.recover();
      await this.triggerLoop();
      await this.settleCommit();
    } catch (err) {
      this.exception = await this.causeOf(err);
    } finally {
      // A commit still being written when the loop failed: nothing may write into the checkpoint after closeAll.
      await this.pendingCommit?.catch(() => undefined);
      await this.closeAll();
      this.finish();
    }
  }

  /**
   * Restores position and watermark from the logs; re-runs the latest planned batch first when it is not
   * committed (after a crash, or when its commit was deleted to run it again).
   */
  private async recover(): Promise<void> {
    const next = await this.checkpoint.nextBatch();
    this.nextBatchId = next.batchId;
    if (!next.rerun) {
      // As in Spark, a restart runs a batch only for new data, or for work the last batch left due.
      const commit = next.previousCommit;
      const nextWatermarkMs = commit?.nextWatermarkMs ?? 0;
      this.watermark.restore(nextWatermarkMs, nextWatermarkMs > (next.previousOffsets?.batchWatermarkMs ?? 0));
      if (this.config.analysis.statefulNodes.length > 0 && commit)
        // A commit from before timeouts were recorded says nothing: one batch finds out.
        this.nextProcessingTimeoutMs =
          commit.nextProcessingTimeoutMs === undefined ? -Infinity : (commit.nextProcessingTimeoutMs ?? Infinity);
      this.committed = this.sources.map((_, i) => next.previousOffsets?.sources[i]?.end ?? null);
      return;
    }
    const missing = next.missingCommits;
    const before = next.batchId - 1;
    if (missing.length === 1 && missing[0] === before) {
      // A batch is planned once the one before it is complete, whose commit is written meanwhile: the crash came
      // before that commit was, so it is written now, as that batch would have (its watermark is in the plan).
      await this.checkpoint.commitBatch(before, {
        batchId: before,
        nextWatermarkMs: next.offsets.batchWatermarkMs,
        committedAtMs: Date.now(),
        stateVersions: Object.fromEntries(this.config.analysis.statefulNodes.map((n) => [String(n.id), next.batchId])),
      });
    } else if (missing.length > 0) {
      const which =
        missing.length === 1 ? `batch ${missing[0]}` : `batches ${missing[0]}-${missing[missing.length - 1]}`;
      notice(
        `checkpoint ${this.checkpoint.dir}: the commits of ${which} are missing; re-running the latest planned ` +
          `batch ${next.batchId} from offsets/${next.batchId} (the batches before it are not run again)`,
      );
    }
    this.watermark.restore(next.offsets.batchWatermarkMs);
    this.committed = next.offsets.sources.map((s) => s.start);
    this.status = {
      message: `Re-running batch ${next.batchId} after a restart`,
      isDataAvailable: true,
      isTriggerActive: true,
    };
    await this.runBatch(next.offsets, this.progress.startTrigger(this.config.clock.now()), Promise.resolve());
    await this.settleCommit();
  }

  /** Waits until the last batch's commit is durable; throws if writing it failed. */
  private async settleCommit(): Promise<void> {
    const pending = this.pendingCommit;
    this.pendingCommit = null;
    await pending;
  }

  /** Asks every source how far a batch starting now could read. */
  private async pollSources(): Promise<{ ends: SourceOffset[]; hasData: boolean }> {
    const ends: SourceOffset[] = [];
    // Trigger.Once reads everything available in one batch, ignoring per-trigger limits, as Spark does.
    const unlimited: ReadLimit = { maxRows: Infinity, maxFiles: Infinity };
    for (let i = 0; i < this.sources.length; i++) {
      const limit = 'once' in this.config.trigger ? unlimited : (this.config.limits[i] ?? {});
      ends.push(await this.sources[i].source.latestOffset(this.committed[i], limit));
    }
    const hasData = ends.some((e, i) => e !== null && !isDeepStrictEqual(e, this.committed[i]));
    return { ends, hasData };
  }

  private async triggerLoop(): Promise<void> {
    const { trigger, clock } = this.config;
    if ('availableNow' in trigger) for (const s of this.sources) await s.source.prepareForTriggerAvailableNow?.();
    const interval = 'processingTimeMs' in trigger ? trigger.processingTimeMs : 0;
    let ranOnce = false;
    while (!this.stopping) {
      if (interval > 0 && this.lastTriggerStart !== null) {
        this.status = { ...this.status, message: 'Waiting for next trigger', isTriggerActive: false };
        await this.settleCommit();
        if (this.idleWaiters.length > 0 && !(await this.pollSources()).hasData && !this.noDataBatchDue())
          this.releaseIdleWaiters();
        await clock.sleepUntil(this.lastTriggerStart + interval, this.abort.signal);
        if (this.stopping) break;
      }
      // A test clock moves when the test hears that a batch ended, so with one the next batch starts, and takes
      // its time, only after the last one is committed and reported, as without the pipelined commit.
      if (!(clock instanceof SystemClock)) await this.settleCommit();
      // A failure shows in the batch that waits for it to write its offsets.
      else if (this.completeBeforeRead()) await this.lastComplete.catch(() => undefined);
      this.lastTriggerStart = clock.now();
      this.status = { message: 'Getting offsets from sources', isDataAvailable: false, isTriggerActive: true };
      const timing = this.progress.startTrigger(this.lastTriggerStart);
      const { ends, hasData } = await this.progress.timed('latestOffset', () => this.pollSources());
      const noDataBatchDue = this.noDataBatchDue();
      if ('once' in trigger && ranOnce) break;
      if (!hasData && !noDataBatchDue) {
        await this.settleCommit();
        this.status = { message: 'Waiting for data to arrive', isDataAvailable: false, isTriggerActive: false };
        this.releaseIdleWaiters();
        if (!('processingTimeMs' in trigger)) break;
        if (interval === 0) await this.waitForData();
        continue;
      }
      const entry: OffsetEntry = {
        batchId: this.nextBatchId,
        sources: ends.map((end, i) => ({
          start: this.committed[i],
          end: end ?? this.committed[i],
          description: this.sources[i].source.description,
        })),
        batchTimestampMs: Math.max(0, Math.floor(clock.now())),
        batchWatermarkMs: Math.max(0, Math.floor(this.watermark.watermarkMs)),
        conf: { numStatePartitions: this.config.numStatePartitions },
        operators: this.config.analysis.statefulNodes.map(nodeName),
      };
      this.status = {
        message: `Processing new data (batch ${entry.batchId})`,
        isDataAvailable: hasData,
        isTriggerActive: true,
      };
      // The batch reads while the last batch's state and commit and its own offsets are written; its stateful
      // tasks and its sink wait until offsets/N, written once batch N-1 is complete, and commits/N-1 are durable.
      // The plan's bytes are synced meanwhile, so that only putting the file in place waits for batch N-1.
      const planned = this.writeAfter(
        this.lastComplete,
        this.checkpoint.preparePlan(entry.batchId, entry),
        'before-offsets',
        entry.batchId,
      ).then(() => crashPoint('after-offsets', entry.batchId));
      const durable = settleAll([planned, this.pendingCommit]);
      await this.runBatch(entry, timing, durable);
      ranOnce = true;
    }
  }

  /**
   * Between batches of a trigger-0 query with nothing new: until a source has new data, when every source
   * wakes the query on its own and the clock is the system's (a test clock moves without telling), at most
   * until the next processing-time timeout is due; otherwise for the polling delay.
   */
  private async waitForData(): Promise<void> {
    const c = this.config;
    const pollMs = c.idlePollMs ?? IDLE_POLL_MS;
    const waking = this.sources.every((s) => s.source.waitForData) && c.clock instanceof SystemClock;
    if (this.sources.length === 0 || !waking) return sleep(pollMs, this.abort.signal);
    const woken = new AbortController();
    const stop = (): void => woken.abort();
    this.abort.signal.addEventListener('abort', stop, { once: true });
    const untilTimeoutMs = this.nextProcessingTimeoutMs - c.clock.now();
    try {
      await Promise.race([
        ...this.sources.map((s) => s.source.waitForData!(woken.signal)),
        sleep(Math.max(0, Math.min(IDLE_WAKE_MAX_MS, untilTimeoutMs)), woken.signal),
      ]);
    } finally {
      woken.abort();
      this.abort.signal.removeEventListener('abort', stop);
    }
  }

  /**
   * Whether the next batch asks its sources for offsets only once the last batch is complete (see
   * {@link lastComplete}). Its offsets are written only then, and its stateful tasks and sink wait for them, so
   * starting earlier pays only when reading takes longer; otherwise it would fix the batch's end earlier than
   * needed, and data arriving meanwhile would wait for the batch after.
   */
  private completeBeforeRead(): boolean {
    return this.lastReadSpanMs < this.lastCompleteMs;
  }

  /** Whether a batch without new data must run: the watermark moved past something, or a timeout is due. */
  private noDataBatchDue(): boolean {
    const a = this.config.analysis;
    if (a.statefulNodes.length === 0) return false;
    if (this.watermark.movedInLastBatch && a.usesWatermark) return true;
    return this.nextProcessingTimeoutMs <= this.config.clock.now();
  }

  /**
   * Runs the batch of `entry` once `durable` (its offsets written) allows: reads and stateless work at once,
   * stateful tasks and the sink after. Leaves the durable part of its commit pending (see pendingCommit).
   */
  private async runBatch(entry: OffsetEntry, timing: TriggerTiming, durable: Promise<void>): Promise<void> {
    // Awaited below; a failure while the batch still reads must not count as unhandled meanwhile.
    durable.catch(() => undefined);
    const c = this.config;
    const batchId = entry.batchId;
    const ctx: BatchContext = {
      batchId,
      batchTimestampMs: entry.batchTimestampMs,
      watermarkMs: entry.batchWatermarkMs,
      checkpointDir: this.checkpoint.dir,
      numStatePartitions: c.numStatePartitions,
      outputMode: c.analysis.outputMode,
      eventTimeColumns: c.analysis.eventTimeColumns,
      operatorOutputModes: c.analysis.operatorOutputModes,
      lateOutput: c.lateSink !== undefined,
      // State files are purged with the logs: listing each state partition's directory in every batch's commit
      // cost more than the few extra versions kept between purges.
      minStateVersionToKeep: batchId % PURGE_EVERY_BATCHES === 0 ? Math.max(0, batchId - c.retainBatches) : 0,
    };
    // walCommit is what the offset log's write adds to the batch: the part that reading did not hide, timed
    // from when the batch first needs it (its first stateful task, or else its sink).
    let untilDurable: Promise<void> | null = null;
    const whenDurable = (): Promise<void> => {
      if (untilDurable) return untilDurable;
      this.lastReadSpanMs = performance.now() - timing.startedAt;
      untilDurable = this.progress.timed('walCommit', () => durable, timing);
      return untilDurable;
    };
    const run = new BatchRun(
      this.sources,
      entry,
      ctx,
      this.executor,
      (id) => c.analysis.schemaOf(id),
      this.pruning.exchanges,
      whenDurable,
    );
    // The sink prepares while the batch reads; a failed preparation leaves its work to addBatch, which reports it.
    const prepared = c.sink.prepareBatch?.(batchId).catch(() => undefined);
    let output: RecordBatch[];
    try {
      const walBefore = timing.durations.walCommit;
      output = await this.progress.timed('addBatch', () => run.evaluate(c.root), timing);
      // addBatch is the batch's own work: a wait for its offsets before its stateful tasks is walCommit's.
      timing.durations.addBatch -= timing.durations.walCommit - walBefore;
      await whenDurable();
    } catch (err) {
      await Promise.all([durable.catch(() => undefined), prepared]);
      await this.executor.resetState();
      throw err;
    }
    const numOutputRows = await this.progress.timed(
      'addBatch',
      () => this.progress.timed('sink', () => this.addBatch(batchId, output, run.late, prepared), timing),
      timing,
    );
    const sourceMetrics = this.progress.sourceMetricsNow();
    const t0 = performance.now();
    // The batch is complete once its state is durable (the driver's thread writes it while the sink sends);
    // commits/N follows, while the next batch writes its offsets.
    const complete = run.stateDurable().then(() => {
      this.lastCompleteMs = performance.now() - t0;
    });
    // Awaited by the next batch and by this batch's commit; until then a failure must not count as unhandled.
    complete.catch(() => undefined);
    this.lastComplete = complete;
    const commit = this.commitBatch(entry, run, settleAll([complete, this.pendingCommit])).then(() => {
      timing.durations.commitOffsets += performance.now() - t0;
      this.progress.finishBatch(run, entry, numOutputRows, sourceMetrics, timing);
    });
    commit.catch(() => undefined);
    this.pendingCommit = commit;
  }

  /**
   * Hands the batch's output (and late rows) to the sinks once the sink's preparation is over; returns the
   * number of output rows.
   */
  private async addBatch(
    batchId: number,
    batches: RecordBatch[],
    late: RecordBatch[],
    prepared: Promise<void> | undefined,
  ): Promise<number> {
    const c = this.config;
    const output = unifySchemas(batches);
    const schema = output[0]?.schema ?? c.analysis.outputSchema;
    if (c.lateSink && late.length > 0) await c.lateSink.addBatch(batchId, new Table(unifySchemas(late)));
    const table = schema ? new Table(compactBatches(schema, output)) : new Table(output);
    await prepared;
    await c.sink.addBatch(batchId, table);
    crashPoint('after-sink', batchId);
    return countRows(output);
  }

  /**
   * Moves past the batch at once (the next batch's start offsets, watermark and timeouts are known now), and
   * returns the durable part, once `complete` settles: commits/N with the next watermark, then the sources'
   * commits. The commit's bytes are synced meanwhile, so that only putting the file in place waits.
   */
  private commitBatch(entry: OffsetEntry, run: BatchRun, complete: Promise<unknown>): Promise<void> {
    const c = this.config;
    const batchId = entry.batchId;
    const ends = entry.sources.map((s) => s.end);
    const newWatermark = this.watermark.update(entry.batchWatermarkMs, run.eventTime, this.inputEnded(ends));
    this.committed = ends;
    this.nextBatchId = batchId + 1;
    this.nextProcessingTimeoutMs = run.nextProcessingTimeoutMs;
    const prepared = this.checkpoint.prepareCommit(batchId, {
      batchId,
      nextWatermarkMs: Math.floor(newWatermark),
      committedAtMs: Date.now(),
      stateVersions: Object.fromEntries(c.analysis.statefulNodes.map((n) => [String(n.id), batchId + 1])),
      ...(c.analysis.statefulNodes.length > 0 && {
        nextProcessingTimeoutMs: Number.isFinite(run.nextProcessingTimeoutMs)
          ? Math.ceil(run.nextProcessingTimeoutMs)
          : null,
      }),
    });
    return this.writeAfter(complete, prepared, null, batchId).then(async () => {
      crashPoint('after-commit', batchId);
      for (let i = 0; i < this.sources.length; i++) await this.sources[i].source.commit(ends[i]);
      if (batchId % PURGE_EVERY_BATCHES === 0) await this.checkpoint.purge(c.retainBatches);
    });
  }

  /**
   * Puts a file written ahead in place once `after` settles (at crash point `point` just before); removes it
   * instead when `after` fails.
   */
  private async writeAfter(
    after: Promise<unknown>,
    prepared: Promise<PreparedWrite>,
    point: CrashPoint | null,
    batchId: number,
  ): Promise<void> {
    // Awaited below, once the file is prepared; a failure before that must not count as unhandled meanwhile.
    after.catch(() => undefined);
    let file: PreparedWrite;
    try {
      file = await prepared;
    } catch (err) {
      // What `after` waits for still writes into the checkpoint: the failure shows once it is over.
      await after.catch(() => undefined);
      throw err;
    }
    try {
      await after;
    } catch (err) {
      await file.discard();
      throw err;
    }
    if (point) crashPoint(point, batchId);
    await file.write();
  }

  /**
   * Whether every source has reached the end of a bounded input at `ends`, for a query whose stateful
   * operators wait on the watermark: nothing can arrive late any more, so what they hold can be finished.
   */
  private inputEnded(ends: SourceOffset[]): boolean {
    if (!this.config.analysis.usesWatermark || this.sources.length === 0) return false;
    return this.sources.every((s, i) => ends[i] !== null && s.source.reachedEnd?.(ends[i]) === true);
  }

  private releaseIdleWaiters(): void {
    const ws = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of ws) w.resolve();
  }

  private async closeAll(): Promise<void> {
    const closing: Promise<unknown>[] = [];
    for (const s of this.sources) closing.push(s.source.stop());
    closing.push(this.config.sink.close());
    if (this.config.lateSink) closing.push(this.config.lateSink.close());
    if (this.executor) closing.push(this.executor.close());
    const results = await Promise.allSettled(closing);
    // Given up last, once nothing of this run writes into the checkpoint any more.
    if (this.checkpoint) results.push(...(await Promise.allSettled([this.checkpoint.close()])));
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed && !this.exception)
      this.exception = failed.reason instanceof Error ? failed.reason : new Error(String(failed.reason));
  }

  private finish(): void {
    this.finished = true;
    this.status = {
      message: this.exception ? `Terminated with exception: ${this.exception.message}` : 'Stopped',
      isDataAvailable: false,
      isTriggerActive: false,
    };
    for (const w of this.terminationWaiters.splice(0)) this.exception ? w.reject(this.exception) : w.resolve();
    for (const w of this.idleWaiters.splice(0)) this.exception ? w.reject(this.exception) : w.resolve();
  }

  /** The plan with the columns each operator outputs and each exchange moves, after column pruning. */
  explain(): string {
    const c = this.config;
    return explainPlan({
      root: c.root,
      schemaOf: (id) => c.analysis.schemaOf(id),
      pruning: this.pruning,
      numStatePartitions: c.numStatePartitions,
      sourceDescription: (id) => this.sources.find((s) => s.node.id === id)?.source.description,
    });
  }

  /** The query name given with queryName(), or null. */
  get name(): string | null {
    return this.config.name ?? null;
  }

  /** True while batches may still run. */
  get isActive(): boolean {
    return !this.finished;
  }

  /** Stops after the batch in progress (which completes, so nothing is half-written); resolves when closed. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.abort.abort();
    if (!this.begun && !this.finished) {
      // Opened but never begun (another output of its app failed to open): only the opened resources to close.
      await this.closeAll();
      this.finish();
    }
    await this.loopDone;
  }

  /** Resolves when the query stops; rejects with the error that stopped it. */
  awaitTermination(): Promise<void> {
    if (this.finished) return this.exception ? Promise.reject(this.exception) : Promise.resolve();
    return new Promise((resolve, reject) => this.terminationWaiters.push({ resolve, reject }));
  }

  /** Resolves once everything the sources had when called is processed and committed (the loop found nothing new). */
  processAllAvailable(): Promise<void> {
    if (this.finished) return this.exception ? Promise.reject(this.exception) : Promise.resolve();
    return new Promise((resolve, reject) => this.idleWaiters.push({ resolve, reject }));
  }
}

/**
 * Batches whose schemas were inferred separately (a user function without a declared schema, run in
 * several tasks) may disagree, e.g. a column all null in one task; they are re-inferred together. Schemas
 * that agree in names and types but are separate objects (one built by a partition that had rows, one read
 * back from state by a partition that only closed windows) may still differ in details Arrow's Table
 * compares, such as a struct child's nullability: those batches take the first one's schema.
 */
function unifySchemas(batches: RecordBatch[]): RecordBatch[] {
  const first = batches[0]?.schema;
  const same = (x: Schema): boolean =>
    x === first ||
    (x.fields.length === first.fields.length &&
      x.fields.every((f, i) => f.name === first.fields[i].name && String(f.type) === String(first.fields[i].type)));
  if (batches.length < 2) return batches;
  if (batches.every((b) => same(b.schema)))
    return batches.map((b) => (b.schema === first ? b : new RecordBatch(first, b.data)));
  const rows = batches.flatMap((b) => rowsFromBatch(b));
  return [batchFromRows(rows, inferSchema(rows))];
}

/** One batch's evaluation of the plan: fragments through the executor, exchanges, stateful partitions. */
class BatchRun implements BatchMetrics {
  readonly numInputRows: number[];
  readonly numMalformed: number[];
  readonly sourceMetrics: Record<string, number>[];
  readonly eventTime = new Map<number, EventTimeStats>();
  readonly late: RecordBatch[] = [];
  nextProcessingTimeoutMs = Infinity;
  readonly stateResults = new Map<number, StatefulResult[]>();
  /** State commits still being written as the stateful tasks hand back their output (see stateDurable). */
  private readonly stateCommits: Promise<void>[] = [];
  private readonly sourceIndex: Map<number, number>;
  private getBatchMs = 0;
  private queryPlanningMs = 0;
  /** Time spent outside planning while planning fragments (read tasks asked of sources, upstream stateful runs). */
  private notPlanningMs = 0;
  /** Each stage's CPU per lane, and each worker lane's thread CPU so far (see lane-profile.ts). */
  readonly laneStages: LaneStage[] = [];
  readonly laneTotalMs: number[] = [];
  /** Task time per thread (index 0 is the driver's thread at threads 0). */
  private readonly busy: Record<'read' | 'exchange' | 'stateCommit', number[]> = {
    read: [],
    exchange: [],
    stateCommit: [],
  };

  constructor(
    private readonly sources: { node: SourceNode; source: StreamSource }[],
    private readonly entry: OffsetEntry,
    private readonly ctx: BatchContext,
    private readonly executor: Executor,
    private readonly schemaOf: (nodeId: number) => Schema | null,
    private readonly exchangeColumns: ColumnPruning['exchanges'],
    /** Resolves once the batch's offsets are durable: its stateful tasks wait for it, they commit state. */
    private readonly durable: () => Promise<void>,
  ) {
    this.numInputRows = sources.map(() => 0);
    this.numMalformed = sources.map(() => 0);
    this.sourceMetrics = sources.map(() => ({}));
    this.sourceIndex = new Map(sources.map((s, i) => [s.node.id, i]));
  }

  get driverLane(): boolean {
    return this.executor.driverLane;
  }

  get lanes(): number {
    return Math.max(1, this.executor.threads);
  }

  /** The durations this run measured: the busiest thread's task time, and the driver's planning. */
  get durations(): Pick<TriggerDurations, BatchPhase> {
    const busiest = (perLane: number[]): number => perLane.reduce((a, b) => Math.max(a, b), 0);
    return {
      getBatch: this.getBatchMs,
      queryPlanning: this.queryPlanningMs,
      read: busiest(this.busy.read),
      exchange: busiest(this.busy.exchange),
      stateCommit: busiest(this.busy.stateCommit),
    };
  }

  private addBusy(part: keyof BatchRun['busy'], lane: number | undefined, ms: number): void {
    const perLane = this.busy[part];
    perLane[lane ?? 0] = (perLane[lane ?? 0] ?? 0) + ms;
  }

  /** Adds a stage whose tasks ran on every lane, with each task's CPU on its lane. */
  private addLaneStage(
    kind: LaneStage['kind'],
    startedAt: number,
    results: readonly (FragmentResult | StatefulResult)[],
  ): void {
    const laneMs: number[] = [];
    const laneTasks: number[] = [];
    const laneWallMs: number[] = [];
    for (const r of results) {
      const lane = r.lane ?? 0;
      laneMs[lane] = (laneMs[lane] ?? 0) + (r.cpuMs ?? 0);
      laneWallMs[lane] = (laneWallMs[lane] ?? 0) + (r.wallMs ?? 0);
      laneTasks[lane] = (laneTasks[lane] ?? 0) + 1;
      if (r.threadCpuMs !== undefined) this.laneTotalMs[lane] = Math.max(this.laneTotalMs[lane] ?? 0, r.threadCpuMs);
    }
    this.laneStages.push({ kind, laneMs, laneTasks, wallMs: performance.now() - startedAt, laneWallMs });
  }

  /** Output rows of `root` for this batch, in a deterministic order. */
  async evaluate(root: PlanNode): Promise<RecordBatch[]> {
    if (root.kind === 'stateful') return this.evaluateStateful(root);
    const jobs = await this.plan(root, undefined);
    const results = await this.runJobs(jobs);
    return results.flatMap((r) => r.batches);
  }

  /**
   * The fragments of `node`, timing the planning apart from the sources' read tasks and upstream stateful runs;
   * a two-input stateful node as `node` gives the fragments of both its sides.
   */
  private async plan(node: PlanNode, exchange: number | undefined): Promise<{ job: FragmentJob; source: number }[]> {
    const t0 = performance.now();
    const notPlanningBefore = this.notPlanningMs;
    const jobs =
      exchange !== undefined && node.kind === 'stateful' && node.id === exchange && node.right
        ? await this.twoSidedFragments(node as StatefulNode & { right: PlanNode })
        : await this.fragments(node, [], exchange);
    this.queryPlanningMs += performance.now() - t0 - (this.notPlanningMs - notPlanningBefore);
    return jobs;
  }

  /**
   * Fragments feeding both sides of a two-input operator. When both sides are stateless chains over one source
   * (a self-join, e.g. persons and auctions of one event stream), each read task runs once and forks where the
   * chains part; otherwise each side has its own fragments.
   */
  private async twoSidedFragments(
    node: StatefulNode & { right: PlanNode },
  ): Promise<{ job: FragmentJob; source: number }[]> {
    const left = chainToSource(node.input);
    const right = chainToSource(node.right);
    if (left && right && left.source === right.source) {
      let shared = 0;
      while (shared < left.chain.length && shared < right.chain.length && left.chain[shared] === right.chain[shared])
        shared++;
      return this.fragments(left.source, left.chain.slice(0, shared), node.id, [
        { chain: left.chain.slice(shared), side: 'left' },
        { chain: right.chain.slice(shared), side: 'right' },
      ]);
    }
    return [
      ...(await this.fragments(node.input, [], node.id, [{ chain: [], side: 'left' }])),
      ...(await this.fragments(node.right, [], node.id, [{ chain: [], side: 'right' }])),
    ];
  }

  /**
   * Fragments that produce `node`'s rows, each ending with `chainAbove` (and the exchange of `exchange`, through
   * the side branches `sides` for a two-input operator).
   */
  private async fragments(
    node: PlanNode,
    chainAbove: number[],
    exchange: number | undefined,
    sides?: FragmentSpec['sides'],
  ): Promise<{ job: FragmentJob; source: number }[]> {
    switch (node.kind) {
      case 'source': {
        const i = this.sourceIndex.get(node.id)!;
        const { start, end } = this.entry.sources[i];
        if (isDeepStrictEqual(start, end)) return [];
        // The batch reads while the last batch's commit and its own offsets may still be written.
        crashPoint('in-read', this.ctx.batchId);
        const t0 = performance.now();
        const tasks = await this.sources[i].source.planRead(start, end, this.ctx.batchId);
        const ms = performance.now() - t0;
        this.getBatchMs += ms;
        this.notPlanningMs += ms;
        const spec = this.fragmentSpec(chainAbove, exchange, sides);
        return tasks.map((t) =>
          t.batches
            ? { job: { spec, input: t.batches }, source: i }
            : { job: { spec: { ...spec, read: t }, input: [] }, source: i },
        );
      }
      case 'union': {
        const all: { job: FragmentJob; source: number }[] = [];
        for (const input of node.inputs) all.push(...(await this.fragments(input, chainAbove, exchange, sides)));
        return all;
      }
      case 'join':
        // The static side was hashed when the query started; the stream side flows through the join.
        return this.fragments(node.left, [node.id, ...chainAbove], exchange, sides);
      case 'relation':
        throw new Error(`${nodeName(node)} is static: only the static side of a join reads it`);
      case 'stateful': {
        const t0 = performance.now();
        const notPlanningBefore = this.notPlanningMs;
        const rows = await this.evaluateStateful(node);
        this.notPlanningMs = notPlanningBefore + performance.now() - t0;
        return [{ job: { spec: this.fragmentSpec(chainAbove, exchange, sides), input: rows }, source: -1 }];
      }
      default:
        return this.fragments(node.input, [node.id, ...chainAbove], exchange, sides);
    }
  }

  /** A fragment's spec; an exchange into a one-input operator moves only the columns pruning left it. */
  private fragmentSpec(chain: number[], exchange: number | undefined, sides: FragmentSpec['sides']): FragmentSpec {
    const columns = exchange === undefined || sides ? undefined : this.exchangeColumns.get(exchange);
    return columns ? { chain, exchange, sides, columns } : { chain, exchange, sides };
  }

  private async runJobs(
    jobs: { job: FragmentJob; source: number }[],
  ): Promise<{ batches: RecordBatch[]; partitions?: RecordBatch[][] }[]> {
    for (const j of jobs) if (!j.job.spec.read && j.source >= 0) this.numInputRows[j.source] += countRows(j.job.input);
    const startedAt = performance.now();
    const results = await this.executor.runFragments(
      jobs.map((j) => j.job),
      this.ctx,
    );
    this.addLaneStage('fragments', startedAt, results);
    results.forEach((r, k) => {
      this.addBusy('read', r.lane, r.metrics.readMs);
      this.addBusy('exchange', r.lane, r.metrics.exchangeMs);
      const src = jobs[k].source;
      if (src >= 0) {
        this.numInputRows[src] += r.metrics.numInputRows;
        this.numMalformed[src] += r.metrics.numMalformed;
        for (const [k, v] of Object.entries(r.metrics.sourceMetrics ?? {}))
          this.sourceMetrics[src][k] = (this.sourceMetrics[src][k] ?? 0) + v;
      }
      for (const [id, s] of Object.entries(r.metrics.eventTime)) {
        const acc = this.eventTime.get(Number(id)) ?? { max: -Infinity, min: Infinity, sum: 0, count: 0 };
        this.eventTime.set(Number(id), {
          max: Math.max(acc.max, s.max),
          min: Math.min(acc.min, s.min),
          sum: acc.sum + s.sum,
          count: acc.count + s.count,
        });
      }
    });
    return results;
  }

  private async evaluateStateful(node: StatefulNode): Promise<RecordBatch[]> {
    // A two-input node plans both its sides itself.
    const jobs = await this.plan(node.right ? node : node.input, node.id);
    const results = await this.runJobs(jobs);
    const parts: RecordBatch[][] = Array.from({ length: this.ctx.numStatePartitions }, () => []);
    if (node.right) {
      // Every partition of a join learns both sides' columns, to build rows of a side it has no new rows of.
      const left = this.schemaOf(node.input.id);
      const right = this.schemaOf(node.right.id);
      for (const p of parts) {
        if (left) p.push(withInputSide(emptyBatch(left), 'left'));
        if (right) p.push(withInputSide(emptyBatch(right), 'right'));
      }
    }
    for (const r of results) {
      r.partitions?.forEach((p, i) => {
        parts[i].push(...p.filter((b) => b.numRows > 0));
      });
    }
    await this.durable();
    const startedAt = performance.now();
    const out = await this.executor.runStateful(node.id, parts, this.ctx);
    this.addLaneStage('stateful', startedAt, out);
    this.stateResults.set(node.id, out);
    for (const r of out) {
      if (r.committed) this.stateCommits.push(r.committed);
      this.late.push(...r.late.filter((b) => b.numRows > 0));
      this.nextProcessingTimeoutMs = Math.min(this.nextProcessingTimeoutMs, r.metrics.nextProcessingTimeoutMs);
    }
    return out.flatMap((r) => r.batches.filter((b) => b.numRows > 0));
  }

  /**
   * Resolves once every state partition the batch wrote is durable (the driver's thread commits its partitions
   * while the output goes to the sink); throws what a commit threw. The commits' times are known then.
   */
  async stateDurable(): Promise<void> {
    await settleAll(this.stateCommits);
    // A worker commits its partitions one after the other; the driver's thread commits them side by side.
    for (const out of this.stateResults.values())
      for (const [p, r] of out.entries()) this.addBusy('stateCommit', r.lane ?? p, r.metrics.commitTimeMs);
  }
}

/** The stateless operators from `node` down to its source (ids in the order they apply), when it is such a chain. */
function chainToSource(node: PlanNode): { source: SourceNode; chain: number[] } | null {
  const chain: number[] = [];
  let n = node;
  while (n.kind !== 'source') {
    if (n.kind === 'union' || n.kind === 'stateful' || n.kind === 'relation') return null;
    chain.unshift(n.id);
    n = n.kind === 'join' ? n.left : n.input;
  }
  return { source: n, chain };
}
