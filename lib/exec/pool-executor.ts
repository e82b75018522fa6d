import { fileURLToPath } from 'node:url';
import { makeData, RecordBatch, Schema, Struct } from 'apache-arrow';
import type { SharedHashedRelation } from '../plan/operators/hashed-relation.js';
import type { Broadcasts } from '../plan/operators/stream-static-join.js';
import type { BatchContext } from './batch-context.js';
import { decodeBatch, decodeBatches, encodeBatches, transferListOf } from './batch-transfer.js';
import type { Executor, FragmentJob } from './executor.js';
import type { FragmentResult, StatefulResult } from './task-runner.js';
import { acquireLanes, destroyLanes, type Lane, releaseLanes } from './worker-pool.js';
import {
  type HeldBatch,
  reviveWorkerError,
  type WorkerMessage,
  type WorkerReply,
  type WorkerSetup,
} from './worker-protocol.js';

/** The module the pool's threads run. */
const POOL_WORKER_FILE = fileURLToPath(new URL('./pool-worker.js', import.meta.url));

let queryIds = 0;

/** Where the rows behind a batch returned for an exchange partition are. */
type Rows = { lane: number; held: number } | { bytes: Uint8Array };

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
 * Runs tasks in worker threads, one lane (thread) per thread asked for, so that state partition p always
 * runs on lane p mod N and keeps its state in that thread's memory between batches; stateless fragments
 * are spread over the lanes in turn. Lanes come from the process's idle lanes when a query closed before
 * (see worker-pool.ts) and go back there when this query closes.
 */
export class PoolExecutor implements Executor {
  private readonly lanes: Lane[];
  private readonly query = ++queryIds;
  private next = 0;
  private closed = false;
  /** Exchange partitions as the fragments returned them, for the stateful tasks they are sent to next. */
  private readonly rowsOf = new WeakMap<RecordBatch, Rows>();
  /** The static sides of stream-static joins in shared memory, and the lanes that have them already. */
  private readonly broadcasts: [number, SharedHashedRelation][];
  private readonly hasBroadcasts = new Set<number>();

  constructor(
    readonly threads: number,
    private readonly setup: WorkerSetup,
    broadcasts: Broadcasts = new Map(),
  ) {
    this.lanes = acquireLanes(threads, POOL_WORKER_FILE);
    this.broadcasts = [...broadcasts].map(([id, r]) => [id, r.toShared()]);
  }

  private async call(lane: number, msg: WorkerMessage, transfer: ArrayBuffer[]): Promise<WorkerReply> {
    if ((msg.kind === 'fragment' || msg.kind === 'stateful') && !this.hasBroadcasts.has(lane)) {
      msg.broadcasts = this.broadcasts;
      this.hasBroadcasts.add(lane);
    }
    const reply = (await this.lanes[lane].run(msg, { transferList: transfer })) as WorkerReply;
    if (reply.kind === 'error') throw reviveWorkerError(reply.error);
    return reply;
  }

  /**
   * Runs fragments in turn on the lanes. A fragment that ends in an exchange keeps the partitions whose
   * stateful task runs on its own lane in that thread (the driver gets placeholders with their row
   * counts) and returns the others as IPC bytes, which runStateful forwards without encoding them again.
   */
  async runFragments(jobs: FragmentJob[], ctx: BatchContext): Promise<FragmentResult[]> {
    return Promise.all(
      jobs.map(async (job) => {
        const input = encodeBatches(job.input);
        const lane = this.next++ % this.lanes.length;
        const msg: WorkerMessage = {
          kind: 'fragment',
          query: this.query,
          setup: this.setup,
          spec: job.spec,
          input,
          ctx,
          keep: { lane, lanes: this.lanes.length },
        };
        const reply = await this.call(lane, msg, transferListOf(input));
        if (reply.kind !== 'fragment') throw new Error(`worker answered a fragment task with ${reply.kind}`);
        return {
          batches: decodeBatches(reply.batches),
          partitions: reply.partitions?.map((rows) => rows.map((r) => this.partitionBatch(lane, r))),
          metrics: reply.metrics,
          lane,
        };
      }),
    );
  }

  private partitionBatch(lane: number, r: Uint8Array | HeldBatch): RecordBatch {
    if (r instanceof Uint8Array) {
      const b = decodeBatch(r);
      this.rowsOf.set(b, { bytes: r });
      return b;
    }
    const b = heldPlaceholder(r.numRows);
    this.rowsOf.set(b, { lane, held: r.held });
    return b;
  }

  /**
   * Runs state partition p on lane p mod N. Takes ownership of the partition batches that runFragments
   * returned: their bytes are transferred to the worker, so they are unreadable here afterwards.
   */
  async runStateful(nodeId: number, partitions: RecordBatch[][], ctx: BatchContext): Promise<StatefulResult[]> {
    return Promise.all(
      partitions.map(async (rows, p) => {
        const lane = p % this.lanes.length;
        const input = rows.map((b) => this.statefulInput(lane, b));
        const msg: WorkerMessage = {
          kind: 'stateful',
          query: this.query,
          setup: this.setup,
          nodeId,
          partition: p,
          input,
          ctx,
        };
        const reply = await this.call(lane, msg, transferListOf(input));
        if (reply.kind !== 'stateful') throw new Error(`worker answered a stateful task with ${reply.kind}`);
        return {
          batches: decodeBatches(reply.batches),
          late: decodeBatches(reply.late),
          metrics: reply.metrics,
          lane,
        };
      }),
    );
  }

  private statefulInput(lane: number, b: RecordBatch): Uint8Array | HeldBatch {
    const rows = this.rowsOf.get(b);
    if (!rows) return encodeBatches([b])[0];
    this.rowsOf.delete(b);
    if ('bytes' in rows) return rows.bytes;
    if (rows.lane !== lane)
      throw new Error(`rows held by worker lane ${rows.lane} were sent to a stateful task on lane ${lane}`);
    return { held: rows.held, numRows: b.numRows };
  }

  async resetState(): Promise<void> {
    await Promise.all(this.lanes.map((_, i) => this.call(i, { kind: 'reset', query: this.query }, [])));
  }

  /** Drops the query from its lanes and hands them back for reuse; lanes that fail to answer are ended. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const forgot = await Promise.allSettled(
      this.lanes.map((_, i) => this.call(i, { kind: 'close', query: this.query }, [])),
    );
    releaseLanes(this.lanes.filter((_, i) => forgot[i].status === 'fulfilled'));
    await destroyLanes(this.lanes.filter((_, i) => forgot[i].status === 'rejected'));
  }
}
