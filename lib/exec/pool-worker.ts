import type { RecordBatch } from 'apache-arrow';
import { Piscina } from 'piscina';
import { HashedRelation } from '../plan/operators/hashed-relation.js';
import { StateStoreCache } from '../state/state-store-cache.js';
import { threadCpuMs } from '../util/thread-cpu.js';
import {
  BatchSender,
  buffersOf,
  receiveBatch,
  receiveBatches,
  type SentBatch,
  transferListOf,
} from './batch-transfer.js';
import { type PlanIndex, runFragment, runStatefulPartition } from './task-runner.js';
import {
  type AppQuerySetup,
  type HeldBatch,
  type QueryTask,
  toWorkerError,
  type WorkerMessage,
  type WorkerReply,
} from './worker-protocol.js';

// A top-level await on purpose: piscina first tries require() on the worker file, and Node 20's require(esm)
// then shares the module graph with the app module's later import(), which intermittently trips an internal
// assertion ("imported again after being required", nodejs/node#59759). A module with top-level await cannot
// be required, so piscina loads it with import() and every module is loaded by the ESM loader alone.
const { rebuildPlan } = await import('../plan/plan-description.js');

/** Rebuilds an app query's plan with the plan builder the app layer named in the setup (its module URL). */
async function rebuildAppPlan(setup: AppQuerySetup): Promise<PlanIndex> {
  const builder = (await import(setup.planBuilder)) as { rebuildAppPlan(s: AppQuerySetup): Promise<PlanIndex> };
  return builder.rebuildAppPlan(setup);
}

/**
 * What this thread holds for one query it runs: the plan rebuilt from the app module or the plan's description,
 * its open state
 * stores, and the exchange partitions it kept for its own stateful tasks, by handle, with their batch id.
 */
interface QueryContext {
  plan: Promise<PlanIndex>;
  broadcasts: Map<number, HashedRelation>;
  stores: StateStoreCache;
  held: Map<number, { batch: RecordBatch; batchId: number }>;
}

const queries = new Map<number, QueryContext>();
let heldIds = 0;

function queryOf(task: QueryTask): QueryContext {
  let q = queries.get(task.query);
  if (!q) {
    q = {
      plan: 'plan' in task.setup ? Promise.resolve(rebuildPlan(task.setup.plan)) : rebuildAppPlan(task.setup),
      broadcasts: new Map((task.broadcasts ?? []).map(([id, r]) => [id, HashedRelation.fromShared(r)])),
      stores: new StateStoreCache(task.setup.stateStore),
      held: new Map(),
    };
    queries.set(task.query, q);
  }
  return q;
}

function hold(q: QueryContext, batch: RecordBatch, batchId: number): HeldBatch {
  const held = ++heldIds;
  q.held.set(held, { batch, batchId });
  return { held, numRows: batch.numRows };
}

/** A stateful task's input: batches received, and the batches this thread held, taken back in order. */
function statefulInput(q: QueryContext, input: (SentBatch | HeldBatch)[]): RecordBatch[] {
  return input.map((x) => {
    if (!('held' in x)) return receiveBatch(x);
    const h = q.held.get(x.held);
    if (!h)
      throw new Error(
        `held batch ${x.held} is not in this thread (its query was reset, or the task was sent to another thread)`,
      );
    q.held.delete(x.held);
    return h.batch;
  });
}

/** Forgets held batches of earlier batches that no stateful task took (their batch failed). */
function dropStale(q: QueryContext, batchId: number): void {
  for (const [id, h] of q.held) if (h.batchId < batchId) q.held.delete(id);
}

/** Wraps a reply so piscina transfers the buffers of its record batches instead of copying them. */
function transferable(reply: WorkerReply, sent: unknown[]): unknown {
  return Piscina.move({ [Piscina.transferableSymbol]: transferListOf(sent), [Piscina.valueSymbol]: reply } as never);
}

/** The task this thread runs or ran last: tasks sent ahead wait for it. */
let running: Promise<unknown> = Promise.resolve();

/**
 * The piscina task entry point. The driver sends tasks ahead (TASKS_SENT_AHEAD), but they run one at a time, in
 * the order sent, as on a thread that received them one by one: no task's awaits let another one's work in.
 */
export default function handle(msg: WorkerMessage): Promise<unknown> {
  const task = running.then(() => run(msg));
  running = task;
  return task;
}

async function run(msg: WorkerMessage): Promise<unknown> {
  try {
    if (msg.kind === 'reset') {
      const q = queries.get(msg.query);
      q?.stores.clear();
      q?.held.clear();
      return { kind: 'reset' } satisfies WorkerReply;
    }
    if (msg.kind === 'close') {
      await queries.get(msg.query)?.stores.close();
      queries.delete(msg.query);
      return { kind: 'close' } satisfies WorkerReply;
    }
    const q = queryOf(msg);
    const plan = await q.plan;
    if (msg.kind === 'openState') {
      for (const [nodeId, partition] of msg.stores)
        await q.stores.open(msg.checkpointDir, nodeId, partition, msg.version);
      return { kind: 'openState' } satisfies WorkerReply;
    }
    const cpu0 = threadCpuMs();
    const t0 = performance.now();
    if (msg.kind === 'fragment') {
      dropStale(q, msg.ctx.batchId);
      const res = await runFragment(plan, msg.spec, receiveBatches(msg.input), msg.ctx, q.broadcasts);
      const keep = msg.keep;
      const mine = (p: number): boolean => keep !== undefined && p % keep.lanes === keep.lane;
      // The fragment's rows are this task's own (read, or received for it), so they move to the driver, but
      // for buffers the partitions this thread holds share.
      const sender = new BatchSender('move', buffersOf((res.partitions ?? []).filter((_, p) => mine(p)).flat()));
      const batches = sender.sendAll(res.batches);
      const partitions = res.partitions?.map((rows, p) =>
        mine(p) ? rows.map((b) => hold(q, b, msg.ctx.batchId)) : sender.sendAll(rows),
      );
      const threadCpu = threadCpuMs();
      const reply: WorkerReply = {
        kind: 'fragment',
        batches,
        partitions,
        metrics: res.metrics,
        cpuMs: threadCpu - cpu0,
        threadCpuMs: threadCpu,
        wallMs: performance.now() - t0,
      };
      return transferable(reply, [...batches, ...(partitions ?? []).flat()]);
    }
    const res = await runStatefulPartition(
      plan,
      msg.nodeId,
      msg.partition,
      statefulInput(q, msg.input),
      msg.ctx,
      q.stores,
    );
    // A stateful operator's output may be views of its state, which it keeps.
    const sender = new BatchSender('copy');
    const batches = sender.sendAll(res.batches);
    const late = sender.sendAll(res.late);
    const threadCpu = threadCpuMs();
    const reply: WorkerReply = {
      kind: 'stateful',
      batches,
      late,
      metrics: res.metrics,
      cpuMs: threadCpu - cpu0,
      threadCpuMs: threadCpu,
      wallMs: performance.now() - t0,
    };
    return transferable(reply, [...batches, ...late]);
  } catch (err) {
    return { kind: 'error', error: toWorkerError(err) } satisfies WorkerReply;
  }
}
