import { fileURLToPath } from 'node:url';
import { makeData, RecordBatch, Schema, Struct } from 'apache-arrow';
import type { SharedHashedRelation } from '../plan/operators/hashed-relation.js';
import type { Broadcasts } from '../plan/operators/stream-static-join.js';
import type { BatchContext } from './batch-context.js';
import { BatchSender, receiveBatch, receiveBatches, type SentBatch, transferListOf } from './batch-transfer.js';
import { type Executor, type FragmentJob, InProcessExecutor } from './executor.js';
import type { FragmentResult, PlanIndex, StatefulResult } from './task-runner.js';
import {
  acquireLanes,
  destroyLanes,
  type Lane,
  releaseLanes,
  type SharedLanes,
  TASKS_SENT_AHEAD,
} from './worker-pool.js';
import {
  type HeldBatch,
  reviveWorkerError,
  type StoreRef,
  type WorkerMessage,
  type WorkerReply,
  type WorkerSetup,
} from './worker-protocol.js';

/** The module the pool's threads run. */
const POOL_WORKER_FILE = fileURLToPath(new URL('./pool-worker.js', import.meta.url));

let queryIds = 0;

/** Resolves once the event loop has handled what is pending (the workers' replies among it). */
function yieldToWorkers(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** Where the rows behind a batch returned for an exchange partition are. */
type Rows = { lane: number; held: number } | { sent: SentBatch };

/**
 * Stands for rows a worker held: the driver only counts and forwards exchange partitions, so it gets their
 * row count, and no columns, which any attempt to read would find missing instead of reading wrong data.
 */
function heldPlaceholder(numRows: number): RecordBatch {
  return new RecordBatch(
    new Schema([]),
    makeData({ type: new Struct([]), length: numRows, nullCount: 0, children: [] }),
  );
}

/**
 * Runs a query's tasks on `threads` lanes so that state partition p always runs on lane p mod N and keeps its
 * state in that lane's memory between batches; stateless fragments are spread over the lanes in turn. From two
 * threads on, lane 0 is the driver's own thread (as in-process) and the others are worker threads: the driver
 * mostly waits for its tasks, so a worker in its place would only add a thread's start-up (loading and compiling
 * the modules again), a heap to collect and a transfer for every partition that lane runs. With one thread the
 * lane is a worker, which keeps user code off the driver's thread. Worker lanes come from the process's idle
 * lanes when a query closed before (see worker-pool.ts) and go back there when this query closes; or, given
 * `shared` lanes, they are those the query's owner keeps for all its queries.
 */
export class PoolExecutor implements Executor {
  /** The worker threads: lane i is workers[i - 1] when the driver's thread is lane 0, else workers[i]. */
  private readonly workers: Lane[];
  /** Lane 0 when the driver's thread is a lane. */
  private readonly local: InProcessExecutor | null;
  private readonly lanes: number;
  readonly driverLane: boolean;
  private readonly query = ++queryIds;
  private closed = false;
  /** Exchange partitions as the fragments returned them, for the stateful tasks they are sent to next. */
  private readonly rowsOf = new WeakMap<RecordBatch, Rows>();
  /** The static sides of stream-static joins in shared memory, and the lanes that have them already. */
  private readonly broadcasts: [number, SharedHashedRelation][];
  private readonly hasBroadcasts = new Set<number>();

  /**
   * @param index the driver's plan, which lane 0 runs when `threads` is 2 or more
   * @param shared worker lanes other queries run on too, kept by their owner; by default the query takes its own
   */
  constructor(
    readonly threads: number,
    private readonly setup: WorkerSetup,
    index: PlanIndex,
    broadcasts: Broadcasts = new Map(),
    private readonly shared?: SharedLanes,
  ) {
    this.lanes = threads;
    this.local = threads >= 2 ? new InProcessExecutor(index, setup.stateStore, broadcasts) : null;
    this.driverLane = this.local !== null;
    const count = this.local ? threads - 1 : threads;
    this.workers = shared ? shared.take(count, POOL_WORKER_FILE) : acquireLanes(count, POOL_WORKER_FILE);
    this.broadcasts = [...broadcasts].map(([id, r]) => [id, r.toShared()]);
  }

  private worker(lane: number): Lane {
    return this.workers[this.local ? lane - 1 : lane];
  }

  private async call(lane: number, msg: WorkerMessage, transfer: ArrayBuffer[]): Promise<WorkerReply> {
    // The first task of a query in a thread sets up its context there, static sides included.
    if (msg.kind !== 'reset' && msg.kind !== 'close' && !this.hasBroadcasts.has(lane)) {
      msg.broadcasts = this.broadcasts;
      this.hasBroadcasts.add(lane);
    }
    const reply = (await this.worker(lane).run(msg, { transferList: transfer })) as WorkerReply;
    if (reply.kind === 'error') throw reviveWorkerError(reply.error);
    return reply;
  }

  /** The worker lanes' numbers. */
  private workerLanes(): number[] {
    return this.workers.map((_, i) => (this.local ? i + 1 : i));
  }

  /**
   * Runs fragments on whichever lane is free next: each worker has up to {@link TASKS_SENT_AHEAD} fragments sent to
   * it, so it never waits for the driver to hand it the next one, and the driver's lane takes one whenever it is
   * free, between its other work (planning, decoding the workers' results, the sink, the commit). A lane that is
   * slower (a worker's cold start, the driver's own duties) takes fewer fragments instead of holding the others
   * up at the end of the stage: once fewer fragments are left than there are lanes, a worker is sent one only
   * when it has none left to run, so the stage's last fragments go to lanes that are free, not behind a busy one.
   * Results come back in the order of the jobs, so output does not depend on which lane ran what. A fragment
   * that ends in an exchange keeps the partitions whose stateful task runs on its own lane in that thread (the
   * driver gets placeholders with their row counts) and hands the others over with their buffers, which
   * runStateful passes on to their lane as they came.
   */
  async runFragments(jobs: FragmentJob[], ctx: BatchContext): Promise<FragmentResult[]> {
    const results: FragmentResult[] = new Array(jobs.length);
    let next = 0;
    // A failed fragment fails the batch: no lane starts another one.
    let failed = false;
    const take = async (k: number, run: Promise<FragmentResult>): Promise<void> => {
      try {
        results[k] = await run;
      } catch (err) {
        failed = true;
        throw err;
      }
    };
    // A fragment sent ahead waits for its lane even when another lane is free, so a worker that still runs one
    // takes another only while at least one is left for every lane. Whichever of its slots ends its fragment
    // last finds the worker with none in flight, so a lane never stops while fragments are left.
    const inFlight = new Map<number, number>();
    const takes = (lane: number): boolean =>
      !failed && next < jobs.length && (!inFlight.get(lane) || jobs.length - next >= this.lanes);
    const workerTurns = this.workerLanes().flatMap((lane) =>
      Array.from({ length: TASKS_SENT_AHEAD }, async () => {
        while (takes(lane)) {
          const k = next++;
          inFlight.set(lane, (inFlight.get(lane) ?? 0) + 1);
          try {
            await take(k, this.runWorkerFragment(jobs[k], lane, ctx));
          } finally {
            inFlight.set(lane, (inFlight.get(lane) ?? 0) - 1);
          }
        }
      }),
    );
    const local = this.local;
    const driverTurn = async (): Promise<void> => {
      if (!local) return;
      // Lets the workers' replies in first, so that their next fragments are sent before the driver runs one.
      for (await yieldToWorkers(); next < jobs.length && !failed; await yieldToWorkers()) {
        const k = next++;
        await take(
          k,
          local.runFragments([jobs[k]], ctx).then(([r]) => ({ ...r, lane: 0 })),
        );
      }
    };
    await Promise.all([...workerTurns, driverTurn()]);
    return results;
  }

  private async runWorkerFragment(job: FragmentJob, lane: number, ctx: BatchContext): Promise<FragmentResult> {
    // The driver may read its input again (a source that keeps its rows for a replay): copied, not moved.
    const input = new BatchSender('copy').sendAll(job.input);
    const msg: WorkerMessage = {
      kind: 'fragment',
      query: this.query,
      setup: this.setup,
      spec: job.spec,
      input,
      ctx,
      keep: { lane, lanes: this.lanes },
    };
    const reply = await this.call(lane, msg, transferListOf(input));
    if (reply.kind !== 'fragment') throw new Error(`worker answered a fragment task with ${reply.kind}`);
    return {
      batches: receiveBatches(reply.batches),
      partitions: reply.partitions?.map((rows) => rows.map((r) => this.partitionBatch(lane, r))),
      metrics: reply.metrics,
      lane,
      cpuMs: reply.cpuMs,
      threadCpuMs: reply.threadCpuMs,
      wallMs: reply.wallMs,
    };
  }

  private partitionBatch(lane: number, r: SentBatch | HeldBatch): RecordBatch {
    if (!('held' in r)) {
      const b = receiveBatch(r);
      this.rowsOf.set(b, { sent: r });
      return b;
    }
    const b = heldPlaceholder(r.numRows);
    this.rowsOf.set(b, { lane, held: r.held });
    return b;
  }

  /**
   * Runs state partition p on lane p mod N. Takes ownership of the partition batches that runFragments
   * returned: their buffers are transferred to the worker, so they are unreadable here afterwards. The driver's
   * own partitions run after every worker's task is sent.
   */
  async runStateful(nodeId: number, partitions: RecordBatch[][], ctx: BatchContext): Promise<StatefulResult[]> {
    const results: Promise<StatefulResult>[] = [];
    const own: { partition: number; rows: RecordBatch[] }[] = [];
    partitions.forEach((rows, p) => {
      const lane = p % this.lanes;
      if (this.local && lane === 0) own.push({ partition: p, rows: rows.map((b) => this.driverInput(b)) });
      else results.push(this.runWorkerStateful(nodeId, p, lane, rows, ctx));
    });
    const local = this.local;
    if (!local) return Promise.all(results);
    const ownResults = Promise.resolve().then(() => local.runPartitions(nodeId, own, ctx));
    const [theirs, ours] = await Promise.all([Promise.all(results), ownResults]);
    // Back in partition order: the driver's lane has partitions 0, N, 2N, ...; the workers' come in order.
    let w = 0;
    let o = 0;
    return partitions.map((_, p) => (p % this.lanes === 0 ? { ...ours[o++], lane: 0 } : theirs[w++]));
  }

  private async runWorkerStateful(
    nodeId: number,
    partition: number,
    lane: number,
    rows: RecordBatch[],
    ctx: BatchContext,
  ): Promise<StatefulResult> {
    const input = rows.map((b) => this.workerInput(lane, b));
    const msg: WorkerMessage = {
      kind: 'stateful',
      query: this.query,
      setup: this.setup,
      nodeId,
      partition,
      input,
      ctx,
    };
    const reply = await this.call(lane, msg, transferListOf(input));
    if (reply.kind !== 'stateful') throw new Error(`worker answered a stateful task with ${reply.kind}`);
    return {
      batches: receiveBatches(reply.batches),
      late: receiveBatches(reply.late),
      metrics: reply.metrics,
      lane,
      cpuMs: reply.cpuMs,
      threadCpuMs: reply.threadCpuMs,
      wallMs: reply.wallMs,
    };
  }

  private workerInput(lane: number, b: RecordBatch): SentBatch | HeldBatch {
    const rows = this.rowsOf.get(b);
    // Rows of the driver's own lane may be its fragment's input as it was (a partition that got every row).
    if (!rows) return new BatchSender('copy').send(b);
    this.rowsOf.delete(b);
    if ('sent' in rows) return rows.sent;
    if (rows.lane !== lane)
      throw new Error(`rows held by worker lane ${rows.lane} were sent to a stateful task on lane ${lane}`);
    return { held: rows.held, numRows: b.numRows };
  }

  /**
   * Each lane loads the stores of the state partitions it runs (p mod N), the lanes in parallel: the driver's
   * lane in its own executor, the others in their worker threads.
   */
  async openState(checkpointDir: string, stores: readonly StoreRef[], version: number): Promise<void> {
    const mine = (lane: number) => stores.filter(([, p]) => p % this.lanes === lane);
    await Promise.all([
      this.local?.openState(checkpointDir, mine(0), version),
      ...this.workerLanes().map(async (lane) => {
        if (mine(lane).length === 0) return;
        const msg: WorkerMessage = {
          kind: 'openState',
          query: this.query,
          setup: this.setup,
          checkpointDir,
          stores: mine(lane),
          version,
        };
        const reply = await this.call(lane, msg, []);
        if (reply.kind !== 'openState') throw new Error(`worker answered a state load with ${reply.kind}`);
      }),
    ]);
  }

  /** A partition batch for the driver's lane: its own rows, or a worker's, already rebuilt over their buffers. */
  private driverInput(b: RecordBatch): RecordBatch {
    const rows = this.rowsOf.get(b);
    this.rowsOf.delete(b);
    if (rows && 'held' in rows)
      throw new Error(`rows held by worker lane ${rows.lane} were sent to a stateful task on lane 0`);
    return b;
  }

  async resetState(): Promise<void> {
    await Promise.all([
      this.local?.resetState(),
      ...this.workerLanes().map((lane) => this.call(lane, { kind: 'reset', query: this.query }, [])),
    ]);
  }

  /**
   * Drops the query from its lanes and hands the workers back for reuse; workers that fail to answer are ended.
   * Shared lanes stay with their owner.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.local?.close();
    const forgot = await Promise.allSettled(
      this.workerLanes().map((lane) => this.call(lane, { kind: 'close', query: this.query }, [])),
    );
    if (this.shared) return;
    releaseLanes(this.workers.filter((_, i) => forgot[i].status === 'fulfilled'));
    await destroyLanes(this.workers.filter((_, i) => forgot[i].status === 'rejected'));
  }
}
