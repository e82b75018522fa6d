import type { OffsetEntry } from '../checkpoint/offset-log.js';
import { nodeName, type StatefulNode } from '../plan/logical-plan.js';
import type { StreamSink } from '../sinks/sink.js';
import type { StreamSource } from '../sources/source.js';
import { threadCpuMs } from '../util/thread-cpu.js';
import type { EventTimeStats } from './batch-context.js';
import { type LaneStage, reportLaneCpu } from './lane-profile.js';
import type { QueryProgress, SourceProgress, StateOperatorProgress, TriggerDurations } from './progress.js';
import type { StatefulResult } from './task-runner.js';

/** What one batch's run counted, as the progress report reads it. */
export interface BatchMetrics {
  /** Per source: rows read, malformed rows, and the counters its read tasks reported. */
  readonly numInputRows: readonly number[];
  readonly numMalformed: readonly number[];
  readonly sourceMetrics: readonly Record<string, number>[];
  /** Event-time statistics per withWatermark node id. */
  readonly eventTime: ReadonlyMap<number, EventTimeStats>;
  /** Results of each stateful node's partitions, by node id. */
  readonly stateResults: ReadonlyMap<number, StatefulResult[]>;
  /** The parts of the trigger's durations the batch's run measured itself. */
  readonly durations: Pick<TriggerDurations, BatchPhase>;
  /** Each stage's CPU per lane, each worker lane's thread CPU so far, and whether lane 0 is the driver's thread. */
  readonly laneStages: LaneStage[];
  readonly laneTotalMs: number[];
  readonly driverLane: boolean;
  readonly lanes: number;
}

/** The identity a query's progress reports carry. */
export interface ProgressIdentity {
  id: string;
  runId: string;
  name: string | null;
}

/** Parts of a trigger's durations that a batch's run measures in its tasks and planning. */
export type BatchPhase = 'getBatch' | 'queryPlanning' | 'read' | 'exchange' | 'stateCommit';

/** Phases of a trigger the driver times around what it awaits; triggerExecution spans the whole trigger. */
export type TriggerPhase = Exclude<keyof TriggerDurations, 'triggerExecution' | BatchPhase>;

/**
 * Progress bookkeeping of a query (Spark's ProgressReporter): times the phases of each trigger, and after
 * each batch builds its StreamingQueryProgress from what the batch counted and hands it on.
 */
export class ProgressReporter {
  private trigger: TriggerTiming = noTiming();
  private lastProgressAt = 0;
  /** The driver thread's CPU when the last batch was reported (see finishBatch). */
  private reportedCpuAt = 0;

  constructor(
    private readonly query: ProgressIdentity,
    private readonly sources: readonly StreamSource[],
    private readonly sink: StreamSink,
    private readonly statefulNodes: readonly StatefulNode[],
    /** Whether the query has an event-time watermark (a withWatermark): only then does progress report one, as in Spark. */
    private readonly hasWatermark: boolean,
    private readonly onProgress: (p: QueryProgress) => void,
  ) {}

  /**
   * Starts timing a trigger that began at `clockMs` on the query's clock (its progress' timestamp): phases
   * timed before its batch (polling the sources, the offset log) count towards it. Returns the trigger's
   * timing, which a batch whose commit outlasts the start of the next trigger goes on timing into.
   */
  startTrigger(clockMs: number): TriggerTiming {
    this.trigger = { ...noTiming(), startedAt: performance.now(), timestampMs: clockMs, cpuAt: threadCpuMs() };
    return this.trigger;
  }

  /** Runs `body` and adds the time it took to `phase` of `trigger` (by default the current one). */
  async timed<T>(phase: TriggerPhase, body: () => Promise<T>, trigger = this.trigger): Promise<T> {
    const t0 = performance.now();
    const cpu0 = threadCpuMs();
    const result = await body();
    trigger.durations[phase] += performance.now() - t0;
    trigger.phaseCpu[phase] += threadCpuMs() - cpu0;
    return result;
  }

  /**
   * The sources' own figures as the batch ends: taken before the next batch asks the sources for offsets,
   * which its progress, reported once the commit is durable, may come after.
   */
  sourceMetricsNow(): Record<string, number>[] {
    return this.sources.map((source) => source.metrics?.() ?? {});
  }

  /**
   * Reports the progress of the batch of `entry`, timed by `trigger`, once it is committed; `sourceMetrics`
   * from {@link sourceMetricsNow} at the batch's end.
   */
  finishBatch(
    run: BatchMetrics,
    entry: OffsetEntry,
    numOutputRows: number,
    sourceMetrics: Record<string, number>[],
    trigger = this.trigger,
  ): void {
    const durationMs = {
      ...trigger.durations,
      ...run.durations,
      addBatch: trigger.durations.addBatch - run.durations.getBatch - run.durations.queryPlanning,
      triggerExecution: performance.now() - trigger.startedAt,
    };
    reportLaneCpu(() => ({
      batchId: entry.batchId,
      lanes: run.lanes,
      driverLane: run.driverLane,
      // A batch whose commit outlasts the start of the next trigger overlaps it: each batch counts the driver's
      // CPU from its trigger's start or the previous report, whichever is later, so the batches add up to the
      // driver's CPU.
      driverMs: threadCpuMs() - Math.max(trigger.cpuAt, this.reportedCpuAt),
      phaseMs: { ...trigger.phaseCpu },
      stages: run.laneStages,
      laneTotalMs: run.laneTotalMs,
    }));
    this.reportedCpuAt = threadCpuMs();
    this.onProgress(this.progress(run, entry, durationMs, numOutputRows, sourceMetrics, trigger.timestampMs));
  }

  private progress(
    run: BatchMetrics,
    entry: OffsetEntry,
    durationMs: TriggerDurations,
    numOutputRows: number,
    sourceMetrics: Record<string, number>[],
    timestampMs: number,
  ): QueryProgress {
    const secs = Math.max(durationMs.triggerExecution, 0.001) / 1000;
    const sinceLast = this.lastProgressAt > 0 ? (performance.now() - this.lastProgressAt) / 1000 : secs;
    this.lastProgressAt = performance.now();
    const numInputRows = run.numInputRows.reduce((a, b) => a + b, 0);
    const ev = [...run.eventTime.values()].reduce(
      (acc, s) => ({
        max: Math.max(acc.max, s.max),
        min: Math.min(acc.min, s.min),
        sum: acc.sum + s.sum,
        count: acc.count + s.count,
      }),
      { max: -Infinity, min: Infinity, sum: 0, count: 0 },
    );
    const iso = (ms: number): string => new Date(ms).toISOString();
    const sources: SourceProgress[] = this.sources.map((source, i) => ({
      description: source.description,
      startOffset: entry.sources[i].start,
      endOffset: entry.sources[i].end,
      numInputRows: run.numInputRows[i],
      numMalformedRows: run.numMalformed[i],
      inputRowsPerSecond: run.numInputRows[i] / sinceLast,
      processedRowsPerSecond: run.numInputRows[i] / secs,
      ...withMetrics(run.sourceMetrics[i], sourceMetrics[i]),
    }));
    const stateOperators = this.statefulNodes.map((n) => stateProgress(n, run.stateResults.get(n.id) ?? []));
    return {
      id: this.query.id,
      runId: this.query.runId,
      name: this.query.name,
      timestamp: iso(timestampMs),
      batchId: entry.batchId,
      batchDuration: Math.round(durationMs.triggerExecution),
      numInputRows,
      inputRowsPerSecond: numInputRows / sinceLast,
      processedRowsPerSecond: numInputRows / secs,
      durationMs,
      eventTime: {
        ...(this.hasWatermark ? { watermark: iso(entry.batchWatermarkMs) } : {}),
        ...(ev.count > 0 ? { min: iso(ev.min), max: iso(ev.max), avg: iso(ev.sum / ev.count) } : {}),
      },
      stateOperators,
      sources,
      sink: { description: this.sink.description, numOutputRows },
    };
  }
}

/** The phases timed so far of one trigger, when it started (monotonic ms) and its progress timestamp. */
export interface TriggerTiming {
  durations: Record<TriggerPhase, number>;
  startedAt: number;
  timestampMs: number;
  /** The driver thread's CPU per phase, and at the trigger's start (see lane-profile.ts). */
  phaseCpu: Record<TriggerPhase, number>;
  cpuAt: number;
}

function noTiming(): TriggerTiming {
  return { durations: noDurations(), startedAt: 0, timestampMs: 0, phaseCpu: noDurations(), cpuAt: 0 };
}

function noDurations(): Record<TriggerPhase, number> {
  return { latestOffset: 0, walCommit: 0, addBatch: 0, commitOffsets: 0, sink: 0 };
}

/** Progress of one stateful operator, summed over its partitions. */
function stateProgress(node: StatefulNode, rs: StatefulResult[]): StateOperatorProgress {
  const sum = (f: (r: StatefulResult) => number): number => rs.reduce((a, r) => a + f(r), 0);
  const custom: Record<string, number> = {};
  for (const r of rs) for (const [k, v] of Object.entries(r.metrics.customMetrics)) custom[k] = (custom[k] ?? 0) + v;
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
    ...(Object.keys(custom).length > 0 ? { customMetrics: custom } : {}),
  };
}

/**
 * `{ metrics }` when there are any, so progress without source metrics keeps its shape: the source's own
 * figures plus its read tasks' counters (a counter both report, e.g. lost offsets, adds up).
 */
function withMetrics(
  fromTasks: Record<string, number>,
  fromSource: Record<string, number>,
): { metrics?: Record<string, number> } {
  const metrics = { ...fromSource };
  for (const [k, v] of Object.entries(fromTasks)) metrics[k] = (metrics[k] ?? 0) + v;
  return Object.keys(metrics).length > 0 ? { metrics } : {};
}
