import type { RecordBatch } from 'apache-arrow';
import type { Broadcasts } from '../plan/operators/stream-static-join.js';
import { StateStoreCache, type StateStoreSettings } from '../state/state-store-cache.js';
import { threadCpuMs } from '../util/thread-cpu.js';
import type { BatchContext, FragmentSpec } from './batch-context.js';
import type { FragmentResult, PlanIndex, StatefulResult } from './task-runner.js';
import { processStatefulPartition, runFragment } from './task-runner.js';
import type { StoreRef } from './worker-protocol.js';

/** A fragment to run with the rows it starts from (empty when it reads from a source). */
export interface FragmentJob {
  spec: FragmentSpec;
  input: RecordBatch[];
}

/**
 * Where the tasks of a batch run: in the driver's thread (threads: 0) or in the worker pool. Results come
 * back in the order of the jobs, whatever order the tasks finish in, so output never depends on timing.
 */
export interface Executor {
  /** Threads doing the work (0 = the driver itself). */
  readonly threads: number;
  /** Whether lane 0 is the driver's own thread. */
  readonly driverLane: boolean;
  runFragments(jobs: FragmentJob[], ctx: BatchContext): Promise<FragmentResult[]>;
  /**
   * Runs every state partition of stateful node `nodeId`; `partitions[p]` are partition p's rows. The
   * executor takes the batches over: the pool transfers their bytes to the workers (or finds them held
   * there, when runFragments returned row-count placeholders), so callers must not read them afterwards.
   */
  runStateful(nodeId: number, partitions: RecordBatch[][], ctx: BatchContext): Promise<StatefulResult[]>;
  /**
   * Loads state stores at `version` in the threads whose batches will use them, so that the first batch of a
   * restarted query finds its state in memory; throws what loading throws (a missing or damaged file).
   */
  openState(checkpointDir: string, stores: readonly StoreRef[], version: number): Promise<void>;
  /** Forgets in-memory state after a failed batch, so the replay reloads committed state. */
  resetState(): Promise<void>;
  close(): Promise<void>;
}

/** Runs every task in the driver's thread. */
export class InProcessExecutor implements Executor {
  readonly threads = 0;
  readonly driverLane = true;
  private readonly stores: StateStoreCache;
  /** State commits handed back unfinished by {@link runPartitions}: settled before the stores are reset or closed. */
  private committing: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly index: PlanIndex,
    options: StateStoreSettings = {},
    private readonly broadcasts: Broadcasts = new Map(),
  ) {
    this.stores = new StateStoreCache(options);
  }

  async runFragments(jobs: FragmentJob[], ctx: BatchContext): Promise<FragmentResult[]> {
    const out: FragmentResult[] = [];
    for (const j of jobs) {
      const cpu0 = threadCpuMs();
      const t0 = performance.now();
      const r = await runFragment(this.index, j.spec, j.input, ctx, this.broadcasts);
      out.push({ ...r, cpuMs: threadCpuMs() - cpu0, wallMs: performance.now() - t0 });
    }
    return out;
  }

  async runStateful(nodeId: number, partitions: RecordBatch[][], ctx: BatchContext): Promise<StatefulResult[]> {
    return this.runPartitions(
      nodeId,
      partitions.map((rows, p) => ({ partition: p, rows })),
      ctx,
    );
  }

  /**
   * Processes the given state partitions one after the other, each one's state commit going on while the next
   * is processed: the commits' file writes and syncs overlap instead of adding up. Returns once every partition
   * is processed, each result's `committed` settling when its state is durable, so that the caller may hand the
   * output on meanwhile. The pool runs the partitions of the driver's own lane through here.
   */
  async runPartitions(
    nodeId: number,
    partitions: { partition: number; rows: RecordBatch[] }[],
    ctx: BatchContext,
  ): Promise<StatefulResult[]> {
    const results: StatefulResult[] = [];
    const commits: Promise<void>[] = [];
    // A partition's CPU includes whatever commits of earlier partitions ran meanwhile.
    let cpu = threadCpuMs();
    let t = performance.now();
    try {
      for (const { partition, rows } of partitions) {
        const { result, commit } = await processStatefulPartition(
          this.index,
          nodeId,
          partition,
          rows,
          ctx,
          this.stores,
        );
        const committed = commit();
        // Awaited by the caller; without this a commit failing while the next partition runs is unhandled.
        committed.catch(() => undefined);
        commits.push(committed);
        results.push({ ...result, committed, cpuMs: threadCpuMs() - cpu, wallMs: performance.now() - t });
        cpu = threadCpuMs();
        t = performance.now();
      }
    } catch (err) {
      // A failed partition fails the batch; commits already started finish before the state is reset.
      await Promise.allSettled(commits);
      throw err;
    }
    this.committing = Promise.allSettled([this.committing, ...commits]);
    return results;
  }

  async openState(checkpointDir: string, stores: readonly StoreRef[], version: number): Promise<void> {
    await this.committing;
    for (const [nodeId, partition] of stores) await this.stores.open(checkpointDir, nodeId, partition, version);
  }

  async resetState(): Promise<void> {
    await this.committing;
    this.stores.clear();
  }

  async close(): Promise<void> {
    await this.committing;
    await this.stores.close();
  }
}
