import type { RecordBatch } from 'apache-arrow';
import { Piscina } from 'piscina';
import { fileURLToPath } from 'node:url';
import type { BatchContext } from './batch-context.js';
import { decodeBatches, encodeBatches, transferListOf } from './batch-transfer.js';
import type { Executor, FragmentJob } from './executor.js';
import type { FragmentResult, StatefulResult } from './task-runner.js';
import { reviveWorkerError, type WorkerMessage, type WorkerReply, type WorkerSetup } from './worker-protocol.js';

const WORKER_FILE = fileURLToPath(new URL('./worker.js', import.meta.url));

/**
 * Runs tasks in worker threads. Each thread is its own single-thread piscina pool (a "lane") so that state
 * partition p always runs on lane p mod N and keeps its state in that thread's memory between batches;
 * stateless fragments are spread over the lanes in turn.
 */
export class PoolExecutor implements Executor {
  private readonly lanes: Piscina[];
  private next = 0;

  constructor(readonly threads: number, setup: WorkerSetup) {
    this.lanes = Array.from({ length: threads }, () => new Piscina({
      filename: WORKER_FILE, minThreads: 1, maxThreads: 1, idleTimeout: Infinity, workerData: setup,
    }));
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
      const reply = await this.call(lane, { kind: 'fragment', spec: job.spec, input, ctx }, transferListOf(input));
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
      const reply = await this.call(p % this.lanes.length, { kind: 'stateful', nodeId, partition: p, input, ctx }, transferListOf(input));
      if (reply.kind !== 'stateful') throw new Error('worker answered a stateful task with ' + reply.kind);
      return { batches: decodeBatches(reply.batches), late: decodeBatches(reply.late), metrics: reply.metrics };
    }));
  }

  async resetState(): Promise<void> {
    await Promise.all(this.lanes.map((_, i) => this.call(i, { kind: 'reset' }, [])));
  }

  async close(): Promise<void> {
    await Promise.all(this.lanes.map((l) => l.destroy()));
  }
}
