import { randomUUID } from 'node:crypto';
import { isDeepStrictEqual } from 'node:util';
import { RecordBatch, Schema, Table } from 'apache-arrow';
import { batchFromRows, compactBatches, countRows, inferSchema, rowsFromBatch } from '../arrow/index.js';
import { Checkpoint } from '../checkpoint/checkpoint.js';
import type { OffsetEntry } from '../checkpoint/offset-log.js';
import type { Analysis } from '../plan/analyzer.js';
import type { PlanNode, SourceNode, StatefulNode } from '../plan/logical-plan.js';
import { nodeName } from '../plan/logical-plan.js';
import type { StreamSink } from '../sinks/sink.js';
import { END_OF_INPUT_WATERMARK_MS, type ReadLimit, type SourceOffset, type StreamSource } from '../sources/source.js';
import type { BatchContext, EventTimeStats } from './batch-context.js';
import { sleep, type Clock } from '../util/clock.js';
import { crashPoint } from '../util/crash-points.js';
import type { Executor, FragmentJob } from './executor.js';
import type { QueryProgress, SourceProgress, StateOperatorProgress } from './progress.js';
import type { StatefulResult } from './task-runner.js';

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
  numStatePartitions: number;
  /** Keep this many committed batches in the logs (and the state versions they need). */
  retainBatches: number;
  limits: ReadLimit[];
  clock: Clock;
  /** Creates the executor once the plan is known (in-process or worker pool). */
  makeExecutor: () => Executor;
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

interface Waiter { resolve: () => void; reject: (e: unknown) => void; }

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
  private executor!: Executor;
  private committed: SourceOffset[] = [];
  private watermarkMs = 0;
  private maxEventTime = new Map<number, number>();
  private nextProcessingTimeoutMs = Infinity;
  private watermarkMoved = false;
  private nextBatchId = 0;
  private readonly abort = new AbortController();
  private stopping = false;
  private finished = false;
  private readonly terminationWaiters: Waiter[] = [];
  private idleWaiters: Waiter[] = [];
  private loopDone: Promise<void> = Promise.resolve();
  private lastTriggerStart: number | null = null;
  private begun = false;

  constructor(private readonly config: QueryConfig) {}

  /** The driver's status, with what a source or the sink says it is stalled on (e.g. a broker it retries). */
  get status(): QueryStatus {
    const stalls = [...this.sources.map((s) => s.source.stallMessage?.()), this.config.sink.stallMessage?.()].filter((m) => m);
    return stalls.length === 0 ? this.baseStatus : { ...this.baseStatus, message: `${this.baseStatus.message}; stalled: ${stalls.join('; ')}` };
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
    this.checkpoint = await Checkpoint.open(c.checkpointDir, { numStatePartitions: c.numStatePartitions });
    this.id = this.checkpoint.queryId;
    this.sources = c.analysis.sources.map((node) => ({ node, source: node.create() }));
    try {
      for (let i = 0; i < this.sources.length; i++) {
        await this.sources[i].source.initialize({ dir: this.checkpoint.sourceDir(i), index: i, queryId: this.id });
      }
      c.analysis.check(this.sources.map((s) => s.source.schema()));
      const sinkCtx = { queryId: this.id, queryName: c.name, checkpointDir: this.checkpoint.sinkDir(), outputMode: c.analysis.outputMode };
      await c.sink.initialize(sinkCtx);
      await c.lateSink?.initialize({ ...sinkCtx, checkpointDir: this.checkpoint.sinkDir() + '-late', outputMode: 'append' });
      this.executor = c.makeExecutor();
    } catch (err) {
      await this.closeAll();
      throw err;
    }
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
    } catch (err) {
      this.exception = err instanceof Error ? err : new Error(String(err));
    } finally {
      await this.closeAll();
      this.finish();
    }
  }

  /** Restores position and watermark from the logs; re-runs an uncommitted batch first. */
  private async recover(): Promise<void> {
    const next = await this.checkpoint.nextBatch();
    this.nextBatchId = next.batchId;
    this.watermarkMs = next.previousCommit?.nextWatermarkMs ?? 0;
    if (this.config.analysis.statefulNodes.length > 0 && next.previousCommit) this.nextProcessingTimeoutMs = -Infinity;
    const prior = next.rerun ? next.offsets : next.previousOffsets;
    if (next.rerun) {
      const startOffsets = next.offsets.sources.map((s) => s.start);
      this.committed = startOffsets;
      this.status = { message: `Re-running batch ${next.batchId} after a restart`, isDataAvailable: true, isTriggerActive: true };
      await this.runBatch(next.offsets, 0);
    } else {
      this.committed = this.sources.map((_, i) => prior?.sources[i]?.end ?? null);
    }
  }

  /** Asks every source how far a batch starting now could read. */
  private async pollSources(): Promise<{ ends: SourceOffset[]; hasData: boolean; latestOffsetMs: number }> {
    const t0 = performance.now();
    const ends: SourceOffset[] = [];
    // Trigger.Once reads everything available in one batch, ignoring per-trigger limits, as Spark does.
    const unlimited: ReadLimit = { maxRows: Infinity, maxFiles: Infinity };
    for (let i = 0; i < this.sources.length; i++) {
      const limit = 'once' in this.config.trigger ? unlimited : this.config.limits[i] ?? {};
      ends.push(await this.sources[i].source.latestOffset(this.committed[i], limit));
    }
    const hasData = ends.some((e, i) => e !== null && !isDeepStrictEqual(e, this.committed[i]));
    return { ends, hasData, latestOffsetMs: performance.now() - t0 };
  }

  private async triggerLoop(): Promise<void> {
    const { trigger, clock } = this.config;
    if ('availableNow' in trigger) for (const s of this.sources) await s.source.prepareForTriggerAvailableNow?.();
    const interval = 'processingTimeMs' in trigger ? trigger.processingTimeMs : 0;
    let ranOnce = false;
    while (!this.stopping) {
      if (interval > 0 && this.lastTriggerStart !== null) {
        this.status = { ...this.status, message: 'Waiting for next trigger', isTriggerActive: false };
        if (this.idleWaiters.length > 0 && !(await this.pollSources()).hasData && !this.noDataBatchDue()) this.releaseIdleWaiters();
        await clock.sleepUntil(this.lastTriggerStart + interval, this.abort.signal);
        if (this.stopping) break;
      }
      this.lastTriggerStart = clock.now();
      this.status = { message: 'Getting offsets from sources', isDataAvailable: false, isTriggerActive: true };
      const { ends, hasData, latestOffsetMs } = await this.pollSources();
      const noDataBatchDue = this.noDataBatchDue();
      if ('once' in trigger && ranOnce) break;
      if (!hasData && !noDataBatchDue) {
        this.status = { message: 'Waiting for data to arrive', isDataAvailable: false, isTriggerActive: false };
        this.releaseIdleWaiters();
        if (!('processingTimeMs' in trigger)) break;
        if (interval === 0) await sleep(this.config.idlePollMs ?? 50, this.abort.signal);
        continue;
      }
      const entry: OffsetEntry = {
        batchId: this.nextBatchId,
        sources: ends.map((end, i) => ({ start: this.committed[i], end: end ?? this.committed[i] })),
        batchTimestampMs: Math.max(0, Math.floor(clock.now())),
        batchWatermarkMs: Math.max(0, Math.floor(this.watermarkMs)),
        conf: { numStatePartitions: this.config.numStatePartitions },
      };
      this.status = { message: `Processing new data (batch ${entry.batchId})`, isDataAvailable: hasData, isTriggerActive: true };
      const w0 = performance.now();
      crashPoint('before-offsets', entry.batchId);
      await this.checkpoint.offsets.add(entry.batchId, entry);
      crashPoint('after-offsets', entry.batchId);
      await this.runBatch(entry, latestOffsetMs, performance.now() - w0);
      ranOnce = true;
    }
  }

  /** Whether a batch without new data must run: the watermark moved past something, or a timeout is due. */
  private noDataBatchDue(): boolean {
    const a = this.config.analysis;
    if (a.statefulNodes.length === 0) return false;
    if (this.watermarkMoved && a.usesWatermark) return true;
    return this.nextProcessingTimeoutMs <= this.config.clock.now();
  }

  private async runBatch(entry: OffsetEntry, latestOffsetMs: number, walCommitMs = 0): Promise<void> {
    const c = this.config;
    const started = performance.now();
    const batchId = entry.batchId;
    const ctx: BatchContext = {
      batchId, batchTimestampMs: entry.batchTimestampMs, watermarkMs: entry.batchWatermarkMs,
      checkpointDir: this.checkpoint.dir, numStatePartitions: c.numStatePartitions, outputMode: c.analysis.outputMode,
      eventTimeColumns: c.analysis.eventTimeColumns, lateOutput: c.lateSink !== undefined, minStateVersionToKeep: Math.max(0, batchId - c.retainBatches),
    };
    const run = new BatchRun(this.sources, entry, ctx, this.executor);
    let output: RecordBatch[];
    try {
      output = await run.evaluate(c.root);
    } catch (err) {
      await this.executor.resetState();
      throw err;
    }
    const a0 = performance.now();
    output = unifySchemas(output);
    const schema = output[0]?.schema ?? c.analysis.outputSchema;
    if (c.lateSink && run.late.length > 0) await c.lateSink.addBatch(batchId, new Table(unifySchemas(run.late)));
    const table = schema ? new Table(compactBatches(schema, output)) : new Table(output);
    await c.sink.addBatch(batchId, table);
    crashPoint('after-sink', batchId);
    const addBatchMs = performance.now() - a0;

    const c0 = performance.now();
    const ends = entry.sources.map((s) => s.end);
    const newWatermark = this.inputEnded(ends) ? END_OF_INPUT_WATERMARK_MS : this.advanceWatermark(run.eventTime);
    this.watermarkMoved = newWatermark > entry.batchWatermarkMs;
    this.watermarkMs = newWatermark;
    await this.checkpoint.commits.add(batchId, {
      batchId, nextWatermarkMs: Math.floor(newWatermark), committedAtMs: Date.now(),
      stateVersions: Object.fromEntries(c.analysis.statefulNodes.map((n) => [String(n.id), batchId + 1])),
    });
    crashPoint('after-commit', batchId);
    for (let i = 0; i < this.sources.length; i++) await this.sources[i].source.commit(ends[i]);
    this.committed = ends;
    this.nextBatchId = batchId + 1;
    this.nextProcessingTimeoutMs = run.nextProcessingTimeoutMs;
    if (batchId % 10 === 0) await this.checkpoint.purge(c.retainBatches);
    const commitMs = performance.now() - c0;
    c.onProgress(this.progress(run, entry, {
      latestOffset: latestOffsetMs, walCommit: walCommitMs, addBatch: addBatchMs, commit: commitMs,
      triggerExecution: performance.now() - started + latestOffsetMs + walCommitMs,
    }, countRows(output)));
  }

  /**
   * Whether every source has reached the end of a bounded input at `ends`, for a query whose stateful
   * operators wait on the watermark: nothing can arrive late any more, so what they hold can be finished.
   */
  private inputEnded(ends: SourceOffset[]): boolean {
    if (!this.config.analysis.usesWatermark || this.sources.length === 0) return false;
    return this.sources.every((s, i) => ends[i] !== null && s.source.reachedEnd?.(ends[i]) === true);
  }

  /** The next watermark: the smallest (policy min) of each withWatermark's max event time minus its delay; it never goes back. */
  private advanceWatermark(stats: Map<number, EventTimeStats>): number {
    for (const [id, s] of stats) {
      if (s.count > 0) this.maxEventTime.set(id, Math.max(this.maxEventTime.get(id) ?? -Infinity, s.max));
    }
    const candidates: number[] = [];
    for (const w of this.config.analysis.watermarks) {
      const max = this.maxEventTime.get(w.id);
      if (max !== undefined) candidates.push(max - w.delayMs);
    }
    if (candidates.length === 0) return this.watermarkMs;
    const policy = this.config.analysis.multipleWatermarkPolicy === 'max' ? Math.max : Math.min;
    return Math.max(this.watermarkMs, policy(...candidates));
  }

  private progress(run: BatchRun, entry: OffsetEntry, durationMs: QueryProgress['durationMs'], numOutputRows: number): QueryProgress {
    const secs = Math.max(durationMs.triggerExecution, 0.001) / 1000;
    const sinceLast = this.lastProgressAt > 0 ? (performance.now() - this.lastProgressAt) / 1000 : secs;
    this.lastProgressAt = performance.now();
    const numInputRows = run.numInputRows.reduce((a, b) => a + b, 0);
    const ev = [...run.eventTime.values()].reduce((acc, s) => ({
      max: Math.max(acc.max, s.max), min: Math.min(acc.min, s.min), sum: acc.sum + s.sum, count: acc.count + s.count,
    }), { max: -Infinity, min: Infinity, sum: 0, count: 0 });
    const iso = (ms: number): string => new Date(ms).toISOString();
    const sources: SourceProgress[] = this.sources.map((s, i) => ({
      description: s.source.description,
      startOffset: entry.sources[i].start,
      endOffset: entry.sources[i].end,
      numInputRows: run.numInputRows[i],
      numMalformedRows: run.numMalformed[i],
      inputRowsPerSecond: run.numInputRows[i] / sinceLast,
      processedRowsPerSecond: run.numInputRows[i] / secs,
      ...withMetrics(run.sourceMetrics[i], s.source.metrics?.() ?? {}),
    }));
    const stateOperators: StateOperatorProgress[] = this.config.analysis.statefulNodes.map((n) => run.stateProgress(n));
    return {
      id: this.id, runId: this.runId, name: this.config.name ?? null, timestamp: iso(Date.now()), batchId: entry.batchId,
      numInputRows, inputRowsPerSecond: numInputRows / sinceLast, processedRowsPerSecond: numInputRows / secs,
      durationMs,
      eventTime: {
        watermark: iso(entry.batchWatermarkMs),
        ...(ev.count > 0 ? { min: iso(ev.min), max: iso(ev.max), avg: iso(ev.sum / ev.count) } : {}),
      },
      stateOperators, sources,
      sink: { description: this.config.sink.description, numOutputRows },
    };
  }

  private lastProgressAt = 0;

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
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed && !this.exception) this.exception = failed.reason instanceof Error ? failed.reason : new Error(String(failed.reason));
  }

  private finish(): void {
    this.finished = true;
    this.status = { message: this.exception ? `Terminated with exception: ${this.exception.message}` : 'Stopped', isDataAvailable: false, isTriggerActive: false };
    for (const w of this.terminationWaiters.splice(0)) (this.exception ? w.reject(this.exception) : w.resolve());
    for (const w of this.idleWaiters.splice(0)) (this.exception ? w.reject(this.exception) : w.resolve());
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
 * `{ metrics }` when there are any, so progress without source metrics keeps its shape: the source's own
 * figures plus its read tasks' counters (a counter both report, e.g. lost offsets, adds up).
 */
function withMetrics(fromTasks: Record<string, number>, fromSource: Record<string, number>): { metrics?: Record<string, number> } {
  const metrics = { ...fromSource };
  for (const [k, v] of Object.entries(fromTasks)) metrics[k] = (metrics[k] ?? 0) + v;
  return Object.keys(metrics).length > 0 ? { metrics } : {};
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
  const same = (x: Schema): boolean => x === first || (x.fields.length === first.fields.length
    && x.fields.every((f, i) => f.name === first.fields[i].name && String(f.type) === String(first.fields[i].type)));
  if (batches.length < 2) return batches;
  if (batches.every((b) => same(b.schema))) return batches.map((b) => (b.schema === first ? b : new RecordBatch(first, b.data)));
  const rows = batches.flatMap((b) => rowsFromBatch(b));
  return [batchFromRows(rows, inferSchema(rows))];
}

/** One batch's evaluation of the plan: fragments through the executor, exchanges, stateful partitions. */
class BatchRun {
  readonly numInputRows: number[];
  readonly numMalformed: number[];
  readonly sourceMetrics: Record<string, number>[];
  readonly eventTime = new Map<number, EventTimeStats>();
  readonly late: RecordBatch[] = [];
  nextProcessingTimeoutMs = Infinity;
  private readonly stateResults = new Map<number, StatefulResult[]>();
  private readonly sourceIndex: Map<number, number>;

  constructor(
    private readonly sources: { node: SourceNode; source: StreamSource }[],
    private readonly entry: OffsetEntry,
    private readonly ctx: BatchContext,
    private readonly executor: Executor,
  ) {
    this.numInputRows = sources.map(() => 0);
    this.numMalformed = sources.map(() => 0);
    this.sourceMetrics = sources.map(() => ({}));
    this.sourceIndex = new Map(sources.map((s, i) => [s.node.id, i]));
  }

  /** Output rows of `root` for this batch, in a deterministic order. */
  async evaluate(root: PlanNode): Promise<RecordBatch[]> {
    if (root.kind === 'stateful') return this.evaluateStateful(root);
    const jobs = await this.fragments(root, [], undefined);
    const results = await this.runJobs(jobs);
    return results.flatMap((r) => r.batches);
  }

  /** Fragments that produce `node`'s rows, each ending with `chainAbove` (and the exchange of `exchange`). */
  private async fragments(node: PlanNode, chainAbove: number[], exchange: number | undefined): Promise<{ job: FragmentJob; source: number }[]> {
    switch (node.kind) {
      case 'source': {
        const i = this.sourceIndex.get(node.id)!;
        const { start, end } = this.entry.sources[i];
        if (isDeepStrictEqual(start, end)) return [];
        const tasks = await this.sources[i].source.planRead(start, end, this.ctx.batchId);
        return tasks.map((t) => (t.batches
          ? { job: { spec: { chain: chainAbove, exchange }, input: t.batches }, source: i }
          : { job: { spec: { read: t, chain: chainAbove, exchange }, input: [] }, source: i }));
      }
      case 'union': {
        const all: { job: FragmentJob; source: number }[] = [];
        for (const input of node.inputs) all.push(...await this.fragments(input, chainAbove, exchange));
        return all;
      }
      case 'stateful': {
        const rows = await this.evaluateStateful(node);
        return [{ job: { spec: { chain: chainAbove, exchange }, input: rows }, source: -1 }];
      }
      default:
        return this.fragments(node.input, [node.id, ...chainAbove], exchange);
    }
  }

  private async runJobs(jobs: { job: FragmentJob; source: number }[]): Promise<{ batches: RecordBatch[]; partitions?: RecordBatch[][] }[]> {
    for (const j of jobs) if (!j.job.spec.read && j.source >= 0) this.numInputRows[j.source] += countRows(j.job.input);
    const results = await this.executor.runFragments(jobs.map((j) => j.job), this.ctx);
    results.forEach((r, k) => {
      const src = jobs[k].source;
      if (src >= 0) {
        this.numInputRows[src] += r.metrics.numInputRows;
        this.numMalformed[src] += r.metrics.numMalformed;
        for (const [k, v] of Object.entries(r.metrics.sourceMetrics ?? {})) this.sourceMetrics[src][k] = (this.sourceMetrics[src][k] ?? 0) + v;
      }
      for (const [id, s] of Object.entries(r.metrics.eventTime)) {
        const acc = this.eventTime.get(Number(id)) ?? { max: -Infinity, min: Infinity, sum: 0, count: 0 };
        this.eventTime.set(Number(id), { max: Math.max(acc.max, s.max), min: Math.min(acc.min, s.min), sum: acc.sum + s.sum, count: acc.count + s.count });
      }
    });
    return results;
  }

  private async evaluateStateful(node: StatefulNode): Promise<RecordBatch[]> {
    const jobs = await this.fragments(node.input, [], node.id);
    const results = await this.runJobs(jobs);
    const parts: RecordBatch[][] = Array.from({ length: this.ctx.numStatePartitions }, () => []);
    for (const r of results) r.partitions?.forEach((p, i) => parts[i].push(...p.filter((b) => b.numRows > 0)));
    const out = await this.executor.runStateful(node.id, parts, this.ctx);
    this.stateResults.set(node.id, out);
    for (const r of out) {
      this.late.push(...r.late.filter((b) => b.numRows > 0));
      this.nextProcessingTimeoutMs = Math.min(this.nextProcessingTimeoutMs, r.metrics.nextProcessingTimeoutMs);
    }
    return out.flatMap((r) => r.batches.filter((b) => b.numRows > 0));
  }

  /** Progress of one stateful operator, summed over its partitions. */
  stateProgress(node: StatefulNode): StateOperatorProgress {
    const rs = this.stateResults.get(node.id) ?? [];
    const sum = (f: (r: StatefulResult) => number): number => rs.reduce((a, r) => a + f(r), 0);
    return {
      operatorName: nodeName(node),
      numRowsTotal: sum((r) => r.metrics.numRowsTotal),
      numRowsUpdated: sum((r) => r.metrics.numRowsUpdated),
      numRowsRemoved: sum((r) => r.metrics.numRowsRemoved),
      numKeysTimedOut: sum((r) => r.metrics.numKeysTimedOut),
      numRowsDroppedByWatermark: sum((r) => r.metrics.numRowsDroppedByWatermark),
      numLateRows: sum((r) => r.metrics.numLateRows),
      memoryUsedBytes: sum((r) => r.metrics.memoryUsedBytes),
      commitTimeMs: sum((r) => r.metrics.commitTimeMs),
      stateLoadTimeMs: sum((r) => r.metrics.stateLoadTimeMs),
      numShufflePartitions: rs.length,
    };
  }
}
