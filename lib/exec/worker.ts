import { workerData } from 'node:worker_threads';
import { Piscina } from 'piscina';
import { SluiceError, UserCodeError } from '../errors.js';
import type { BatchContext, FragmentMetrics, FragmentSpec, StatefulMetrics } from './batch-context.js';
import { decodeBatches, encodeBatches, transferListOf } from './batch-transfer.js';
import { StateStoreCache } from './state-store-cache.js';
import { runFragment, runStatefulPartition, type PlanIndex } from './task-runner.js';

/** How a worker finds the query: it imports the app module and builds the same output again. */
export interface WorkerSetup {
  /** URL of the app module. */
  module: string;
  /** The app's option values, as the driver parsed them. */
  options: Record<string, unknown>;
  /** Source URIs the driver resolved per input name (so inputs build identically). */
  inputs: Record<string, string>;
  /** Which of the app's outputs this query writes. */
  output: string;
  snapshotInterval?: number;
}

export type WorkerMessage =
  | { kind: 'fragment'; spec: FragmentSpec; input: Uint8Array[]; ctx: BatchContext }
  | { kind: 'stateful'; nodeId: number; partition: number; input: Uint8Array[]; ctx: BatchContext }
  | { kind: 'reset' };

/** An error as it crosses the thread boundary: structured clone would drop its class and fields. */
export interface WorkerError { name: string; message: string; code?: string; hint?: string; operator?: string; batchId?: number; stack?: string; }

export type WorkerReply =
  | { kind: 'fragment'; batches: Uint8Array[]; partitions?: Uint8Array[][]; metrics: FragmentMetrics }
  | { kind: 'stateful'; batches: Uint8Array[]; late: Uint8Array[]; metrics: StatefulMetrics }
  | { kind: 'reset' }
  | { kind: 'error'; error: WorkerError };

/** Rebuilds the error a worker reported, with its class, so the driver reports it like an in-process one. */
export function reviveWorkerError(e: WorkerError): Error {
  if (e.name === 'UserCodeError' && e.operator !== undefined) {
    const err = new UserCodeError(e.operator, e.batchId ?? -1, new Error(e.message.replace(/^.*? failed in batch \d+: /, '')));
    return err;
  }
  if (e.code) return new SluiceError(e.code, e.message, e.hint);
  const err = new Error(e.message);
  err.stack = e.stack;
  return err;
}

function toWorkerError(err: unknown): WorkerError {
  if (err instanceof UserCodeError) return { name: 'UserCodeError', message: err.message, code: err.code, operator: err.operator, batchId: err.batchId };
  if (err instanceof SluiceError) return { name: err.name, message: err.message, code: err.code, hint: err.hint };
  const e = err instanceof Error ? err : new Error(String(err));
  return { name: e.name, message: e.message, stack: e.stack };
}

const setup = workerData as WorkerSetup;
const stores = new StateStoreCache({ snapshotInterval: setup?.snapshotInterval });
let index: Promise<PlanIndex> | null = null;

async function planIndex(): Promise<PlanIndex> {
  const { rebuildAppPlan } = await import('../app/app-runner.js');
  return rebuildAppPlan(setup);
}

/** Wraps a reply so piscina transfers the buffers of its record batches instead of copying them. */
function transferable(reply: WorkerReply, encoded: Uint8Array[]): unknown {
  return Piscina.move({ [Piscina.transferableSymbol]: transferListOf(encoded), [Piscina.valueSymbol]: reply } as never);
}

/** The piscina task entry point. */
export default async function handle(msg: WorkerMessage): Promise<unknown> {
  try {
    if (msg.kind === 'reset') {
      stores.clear();
      return { kind: 'reset' } satisfies WorkerReply;
    }
    index ??= planIndex();
    const plan = await index;
    if (msg.kind === 'fragment') {
      const res = await runFragment(plan, msg.spec, decodeBatches(msg.input), msg.ctx);
      const batches = encodeBatches(res.batches);
      const partitions = res.partitions?.map(encodeBatches);
      const reply: WorkerReply = { kind: 'fragment', batches, partitions, metrics: res.metrics };
      return transferable(reply, [...batches, ...(partitions ?? []).flat()]);
    }
    const res = await runStatefulPartition(plan, msg.nodeId, msg.partition, decodeBatches(msg.input), msg.ctx, stores);
    const batches = encodeBatches(res.batches);
    const late = encodeBatches(res.late);
    const reply: WorkerReply = { kind: 'stateful', batches, late, metrics: res.metrics };
    return transferable(reply, [...batches, ...late]);
  } catch (err) {
    return { kind: 'error', error: toWorkerError(err) } satisfies WorkerReply;
  }
}
