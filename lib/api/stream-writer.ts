import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Table } from 'apache-arrow';
import { SluiceError } from '../errors.js';
import { InProcessExecutor } from '../exec/executor.js';
import { MicroBatchExecution, type Trigger } from '../exec/micro-batch-execution.js';
import { PoolExecutor } from '../exec/pool-executor.js';
import type { WorkerSetup } from '../exec/worker-protocol.js';
import { analyze } from '../plan/analyzer.js';
import { type PlanNode, walkPlan } from '../plan/logical-plan.js';
import { describePlan } from '../plan/plan-description.js';
import type { OutputMode } from '../sinks/output-mode.js';
import type { StreamSink } from '../sinks/sink.js';
import { createSink, type ForeachBatchFunction, sinkNeedsCheckpoint } from '../sinks/sink-factory.js';
import { DEFAULT_MAX_EVICTIONS_PER_BATCH, type StateStoreSettings } from '../state/state-store-cache.js';
import { STATE_STORE_PROVIDERS, type StateStoreProvider } from '../state/versioned-state-store.js';
import { parseDuration } from '../util/duration.js';
import { OptionsBuilder, type OptionValue, stringOptions } from './options-builder.js';
import type { SessionState } from './session-state.js';
import { StreamingQuery } from './streaming-query.js';

/** Trigger as users write it: `{ processingTime: '1 second' }`, `{ once: true }` or `{ availableNow: true }`. */
export type TriggerSpec = { processingTime: string | number } | { once: true } | { availableNow: true };

const MODES: readonly OutputMode[] = ['append', 'update', 'complete'];

/**
 * Describes where and how a Dataset is written, like Spark's DataStreamWriter; `start()` runs it. Options are
 * the sink's and the query's (`checkpointLocation`, `path`, `numRows`, ...).
 */
export class DataStreamWriter<T> extends OptionsBuilder {
  private fmt = 'console';
  private mode: OutputMode = 'append';
  private trig: Trigger = { processingTimeMs: 0 };
  private name?: string;
  private batchFn?: ForeachBatchFunction;
  private sinkInstance?: StreamSink;
  private lateSinkSpec?: { format: string; options: Record<string, string> };
  private output?: string;

  /** @internal */
  constructor(
    private readonly session: SessionState,
    private readonly plan: PlanNode,
  ) {
    super();
  }

  /** Sink format: console, memory, file, parquet, kafka, noop (or use foreachBatch). */
  format(name: string): this {
    this.fmt = name;
    return this;
  }

  /** append (new rows only), update (changed rows), complete (the whole result every batch). */
  outputMode(mode: OutputMode): this {
    if (!MODES.includes(mode))
      throw new SluiceError('BAD_OPTION', `unknown output mode '${mode}'`, `use one of: ${MODES.join(', ')}`);
    this.mode = mode;
    return this;
  }

  /** When batches run; the default starts the next batch as soon as the previous one is done. */
  trigger(spec: TriggerSpec): this {
    if ('processingTime' in spec)
      this.trig = { processingTimeMs: parseDuration(spec.processingTime, 'trigger processingTime') };
    else if ('once' in spec && spec.once) this.trig = { once: true };
    else if ('availableNow' in spec && spec.availableNow) this.trig = { availableNow: true };
    else
      throw new SluiceError(
        'BAD_OPTION',
        `unknown trigger ${JSON.stringify(spec)}`,
        "use { processingTime: '1 second' }, { once: true } or { availableNow: true }",
      );
    return this;
  }

  /** Names the query (progress, memory sink table name). */
  queryName(name: string): this {
    this.name = name;
    return this;
  }

  /**
   * Calls `fn(batch rows, batchId, Arrow table)` for every batch; it must be idempotent per batchId for
   * exactly-once. The rows have the Dataset's row type.
   */
  foreachBatch(fn: (rows: T[], batchId: number, table: Table) => unknown): this {
    this.batchFn = fn as ForeachBatchFunction;
    this.fmt = 'foreachBatch';
    return this;
  }

  /** Writes to a sink object of your own (anything implementing StreamSink). */
  sink(sink: StreamSink): this {
    this.sinkInstance = sink;
    return this;
  }

  /** Sends rows that arrive behind the watermark to a second sink instead of dropping them. */
  lateData(format: string, options: Record<string, OptionValue> = {}): this {
    this.lateSinkSpec = { format, options: stringOptions(options) };
    return this;
  }

  /** @internal The app output this query writes (worker threads rebuild it by this name). */
  appOutput(name: string): this {
    this.output = name;
    return this;
  }

  /** Checks the query, opens its checkpoint, sources and sink, and starts running batches. */
  async start(path_?: string): Promise<StreamingQuery> {
    const { query, begin } = await this.open(path_);
    begin();
    return query;
  }

  /**
   * @internal Checks the query and opens its checkpoint, sources and sink without running a batch; `begin`
   * starts it. An app opens every output first, so a mistake in any output stops the run before one writes.
   */
  async open(path_?: string): Promise<{ query: StreamingQuery; begin: () => void }> {
    const session = this.session;
    const options = { ...this.opts };
    if (path_ !== undefined) options.path = path_;
    const analysis = analyze(this.plan, {
      outputMode: this.mode,
      multipleWatermarkPolicy: options.multipleWatermarkPolicy === 'max' ? 'max' : 'min',
    });
    const threads = session.threads;
    const stateStore = stateStoreSettings(options, session.snapshotInterval);
    const workerSetup: WorkerSetup | null =
      threads === 0
        ? null
        : session.app && this.output !== undefined
          ? { ...session.app, output: this.output, stateStore }
          : { plan: describePlan(this.plan), stateStore };
    let checkpointDir = options.checkpointLocation;
    if (!checkpointDir) {
      if (!this.sinkInstance && sinkNeedsCheckpoint(this.fmt)) {
        throw new SluiceError(
          'NO_CHECKPOINT',
          `the ${this.fmt} sink needs a checkpoint location for exactly-once output`,
          ".option('checkpointLocation', 'ckpt/<query>') on the writer, or --checkpoint DIR on the command line",
        );
      }
      checkpointDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-ckpt-'));
    }
    const queryName = this.name;
    const sink =
      this.sinkInstance ??
      (await createSink(this.fmt, options, {
        memoryTables: session.memoryTables,
        queryName,
        foreachBatch: this.batchFn,
      }));
    const lateSink = this.lateSinkSpec
      ? await createSink(this.lateSinkSpec.format, this.lateSinkSpec.options, {
          memoryTables: session.memoryTables,
          queryName: queryName && `${queryName}_late`,
        })
      : undefined;
    const index = new Map(walkPlan(this.plan).map((n) => [n.id, n]));
    const execution = new MicroBatchExecution({
      name: queryName,
      root: this.plan,
      analysis,
      sink,
      lateSink,
      trigger: this.trig,
      checkpointDir,
      checkpointClaim: session.checkpointClaim,
      numStatePartitions: session.statePartitions,
      retainBatches: session.retainBatches,
      limits: [],
      clock: session.clock,
      makeExecutor: (broadcasts) =>
        workerSetup
          ? new PoolExecutor(threads, workerSetup, index, broadcasts, session.lanes)
          : new InProcessExecutor(index, stateStore, broadcasts),
      onProgress: (p) => query.recordProgress(p),
    });
    const query: StreamingQuery = new StreamingQuery(execution, session.streams);
    await execution.open();
    return {
      query,
      begin: () => {
        execution.begin();
        session.streams.started(query);
      },
    };
  }
}

/**
 * The state store options of a query: `stateStore` ('memory' or 'disk'), `stateCacheMb` (the disk store's hot
 * keys per state partition), `stateLocalDir` (where the disk store keeps its working databases) and
 * `stateMaxEvictionsPerBatch` (the most keys an operator closes per state partition in one batch).
 */
function stateStoreSettings(options: Record<string, string>, snapshotInterval: number): StateStoreSettings {
  const provider = options.stateStore ?? 'memory';
  if (!STATE_STORE_PROVIDERS.includes(provider as StateStoreProvider)) {
    throw new SluiceError(
      'BAD_OPTION',
      `stateStore must be ${STATE_STORE_PROVIDERS.join(' or ')}, got ${JSON.stringify(provider)}`,
      "'disk' keeps committed state on local disk, for state larger than memory; 'memory' is the default",
    );
  }
  const settings: StateStoreSettings = { provider: provider as StateStoreProvider, snapshotInterval };
  if (options.stateCacheMb !== undefined) {
    const mb = Number(options.stateCacheMb);
    if (!Number.isInteger(mb) || mb < 0 || mb > 1 << 20) {
      throw new SluiceError(
        'BAD_OPTION',
        `stateCacheMb must be an integer number of MiB from 0 to 1048576, got ${JSON.stringify(options.stateCacheMb)}`,
        'the default is 64 (per state partition); 0 reads every key from the database',
      );
    }
    settings.cacheMb = mb;
  }
  if (options.stateLocalDir !== undefined) settings.localDir = options.stateLocalDir;
  if (options.stateMaxEvictionsPerBatch !== undefined) {
    const n = Number(options.stateMaxEvictionsPerBatch);
    if (!Number.isInteger(n) || n < 1) {
      throw new SluiceError(
        'BAD_OPTION',
        `stateMaxEvictionsPerBatch must be a positive integer, got ${JSON.stringify(options.stateMaxEvictionsPerBatch)}`,
        `the default is ${DEFAULT_MAX_EVICTIONS_PER_BATCH} keys per state partition; the rest close in the next batches`,
      );
    }
    settings.maxEvictionsPerBatch = n;
  }
  return settings;
}
