import { workerData } from 'node:worker_threads';
import { Piscina } from 'piscina';
import { toWorkerError, type WorkerReply, type WorkerMessage, type WorkerSetup } from './worker-protocol.js';
import { decodeBatches, encodeBatches, transferListOf } from './batch-transfer.js';
import { StateStoreCache } from './state-store-cache.js';
import { runFragment, runStatefulPartition, type PlanIndex } from './task-runner.js';

const setup = workerData as WorkerSetup;
const stores = new StateStoreCache({ snapshotInterval: setup?.snapshotInterval });
let index: Promise<PlanIndex> | null = null;

// A top-level await on purpose: piscina first tries require() on the worker file, and Node 20's require(esm)
// then shares the module graph with the app module's later import(), which intermittently trips an internal
// assertion ("imported again after being required", nodejs/node#59759). A module with top-level await cannot
// be required, so piscina loads it with import() and every module is loaded by the ESM loader alone.
const { rebuildAppPlan } = await import('../app/app-runner.js');

function planIndex(): Promise<PlanIndex> {
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
