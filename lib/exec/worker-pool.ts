import type { RecordBatch } from 'apache-arrow';
import type { BatchContext } from './batch-context.js';
import { decodeBatches, encodeBatches, transferListOf } from './batch-transfer.js';
import type { Executor, FragmentJob } from './executor.js';
import { acquireLanes, destroyLanes, releaseLanes, type Lane } from './lanes.js';
import type { FragmentResult, StatefulResult } from './task-runner.js';
import { reviveWorkerError, type WorkerMessage, type WorkerReply, type WorkerSetup } from './worker-protocol.js';

let queryIds = 0;

/**
 * Runs tasks in worker threads, one lane (thread) per thread asked for, so that state partition p always
 * runs on lane p mod N and keeps its state in that thread's memory between batches; stateless fragments
 * are spread over the lanes in turn. Lanes come from the process's idle lanes when a query closed before
 * (see lanes.ts) and go back there when this query closes.
 */
export class PoolExecutor implements Executor {
  private readonly lanes: Lane[];
  private readonly query = ++queryIds;
  private next = 0;
  private closed = false;

  constructor(readonly threads: number, private readonly setup: WorkerSetup) {
    this.lanes = acquireLanes(threads);
  }

  private async call(lane: number, msg: WorkerMessage, transfer: ArrayBuffer[]): Promise<WorkerReply> {
    const reply = await this.lanes[lane].run(msg, { transferList: transfer }) as WorkerReply;
    if (reply.kind === 'error') throw reviveWorkerError(reply.error);
    return reply;
  }

  async runFragments(jobs: FragmentJob[], ctx: BatchContext): Promise<FragmentResult[]> {
    return Promise.all(jobs.map(async (job) => {
      const input = encodeBatches(job.input);
      const lane = this.next++ % this.lanes.length;
      const msg: WorkerMessage = { kind: 'fragment', query: this.query, setup: this.setup, spec: job.spec, input, ctx };
      const reply = await this.call(lane, msg, transferListOf(input));
      if (reply.kind !== 'fragment') throw new Error('worker answered a fragment task with ' + reply.kind);
      return {
        batches: decodeBatches(reply.batches),
        partitions: reply.partitions?.map(decodeBatches),
        metrics: reply.metrics,
      };
    }));
  }

  async runStateful(nodeId: number, partitions: RecordBatch[][], ctx: BatchContext): Promise<StatefulResult[]> {
    return Promise.all(partitions.map(async (rows, p) => {
      const input = encodeBatches(rows);
      const msg: WorkerMessage = { kind: 'stateful', query: this.query, setup: this.setup, nodeId, partition: p, input, ctx };
      const reply = await this.call(p % this.lanes.length, msg, transferListOf(input));
      if (reply.kind !== 'stateful') throw new Error('worker answered a stateful task with ' + reply.kind);
      return { batches: decodeBatches(reply.batches), late: decodeBatches(reply.late), metrics: reply.metrics };
    }));
  }

  async resetState(): Promise<void> {
    await Promise.all(this.lanes.map((_, i) => this.call(i, { kind: 'reset', query: this.query }, [])));
  }

  /** Drops the query from its lanes and hands them back for reuse; lanes that fail to answer are ended. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const forgot = await Promise.allSettled(this.lanes.map((_, i) => this.call(i, { kind: 'close', query: this.query }, [])));
    releaseLanes(this.lanes.filter((_, i) => forgot[i].status === 'fulfilled'));
    await destroyLanes(this.lanes.filter((_, i) => forgot[i].status === 'rejected'));
  }
}
