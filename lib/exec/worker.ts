import { Piscina } from 'piscina';
import { toWorkerError, type QueryTask, type WorkerReply, type WorkerMessage } from './worker-protocol.js';
import { decodeBatches, encodeBatches, transferListOf } from './batch-transfer.js';
import { StateStoreCache } from './state-store-cache.js';
import { runFragment, runStatefulPartition, type PlanIndex } from './task-runner.js';

// A top-level await on purpose: piscina first tries require() on the worker file, and Node 20's require(esm)
// then shares the module graph with the app module's later import(), which intermittently trips an internal
// assertion ("imported again after being required", nodejs/node#59759). A module with top-level await cannot
// be required, so piscina loads it with import() and every module is loaded by the ESM loader alone.
const { rebuildAppPlan } = await import('../app/app-runner.js');

/** What this thread holds for one query it runs: the plan rebuilt from the app module, and its open state stores. */
interface QueryContext { plan: Promise<PlanIndex>; stores: StateStoreCache; }

const queries = new Map<number, QueryContext>();

function queryOf(task: QueryTask): QueryContext {
  let q = queries.get(task.query);
  if (!q) {
    q = { plan: rebuildAppPlan(task.setup), stores: new StateStoreCache({ snapshotInterval: task.setup.snapshotInterval }) };
    queries.set(task.query, q);
  }
  return q;
}

/** Wraps a reply so piscina transfers the buffers of its record batches instead of copying them. */
function transferable(reply: WorkerReply, encoded: Uint8Array[]): unknown {
  return Piscina.move({ [Piscina.transferableSymbol]: transferListOf(encoded), [Piscina.valueSymbol]: reply } as never);
}

/** The piscina task entry point. */
export default async function handle(msg: WorkerMessage): Promise<unknown> {
  try {
    if (msg.kind === 'reset') {
      queries.get(msg.query)?.stores.clear();
      return { kind: 'reset' } satisfies WorkerReply;
    }
    if (msg.kind === 'close') {
      queries.get(msg.query)?.stores.clear();
      queries.delete(msg.query);
      return { kind: 'close' } satisfies WorkerReply;
    }
    const q = queryOf(msg);
    const plan = await q.plan;
    if (msg.kind === 'fragment') {
      const res = await runFragment(plan, msg.spec, decodeBatches(msg.input), msg.ctx);
      const batches = encodeBatches(res.batches);
      const partitions = res.partitions?.map(encodeBatches);
      const reply: WorkerReply = { kind: 'fragment', batches, partitions, metrics: res.metrics };
      return transferable(reply, [...batches, ...(partitions ?? []).flat()]);
    }
    const res = await runStatefulPartition(plan, msg.nodeId, msg.partition, decodeBatches(msg.input), msg.ctx, q.stores);
    const batches = encodeBatches(res.batches);
    const late = encodeBatches(res.late);
    const reply: WorkerReply = { kind: 'stateful', batches, late, metrics: res.metrics };
    return transferable(reply, [...batches, ...late]);
  } catch (err) {
    return { kind: 'error', error: toWorkerError(err) } satisfies WorkerReply;
  }
}
