import type { Data, RecordBatch } from 'apache-arrow';
import { type Field, Schema } from 'apache-arrow';
import {
  batchFromRows,
  batchOf,
  countRows,
  inferSchema,
  int64ToNumbers,
  rowsFromBatch,
  takeRows,
} from '../arrow/index.js';
import { SluiceError, UserCodeError } from '../errors.js';
import { type BoundExpression, bindExpression, filterIndices } from '../plan/expression-eval.js';
import type { MapNode, PlanNode, ProjectNode, StatefulNode, WatermarkNode } from '../plan/logical-plan.js';
import { nodeName } from '../plan/logical-plan.js';
import { type Broadcasts, streamStaticJoin } from '../plan/operators/stream-static-join.js';
import { StateSchemaError } from '../plan/operators/transform-with-state-schema.js';
import { newOperatorMetrics, withInputSide } from '../plan/stateful-operator.js';
import { runReadTask } from '../sources/readers.js';
import { partitionOf } from '../state/state-partitioner.js';
import type { StateStoreCache } from '../state/state-store-cache.js';
import type { BatchContext, EventTimeStats, FragmentMetrics, FragmentSpec, StatefulMetrics } from './batch-context.js';

/** Plan nodes by operator id: the driver's own plan, or the plan a worker rebuilt from the app module. */
export type PlanIndex = ReadonlyMap<number, PlanNode>;

/** Output of a fragment: its rows, or its rows split by state partition when it ends in an exchange. */
export interface FragmentResult {
  batches: RecordBatch[];
  partitions?: RecordBatch[][];
  metrics: FragmentMetrics;
  /** The worker thread that ran it; absent when it ran in the driver's thread. */
  lane?: number;
  /** CPU and wall milliseconds of the task on its thread. */
  cpuMs?: number;
  wallMs?: number;
  /** CPU milliseconds of the worker thread that ran it since the thread started, as the task ended. */
  threadCpuMs?: number;
}

/** Output of one state partition of a stateful operator. */
export interface StatefulResult {
  batches: RecordBatch[];
  late: RecordBatch[];
  metrics: StatefulMetrics;
  /** The worker thread that ran it; absent when it ran in the driver's thread. */
  lane?: number;
  /** CPU and wall milliseconds of the task on its thread. */
  cpuMs?: number;
  wallMs?: number;
  /** CPU milliseconds of the worker thread that ran it since the thread started, as the task ended. */
  threadCpuMs?: number;
  /**
   * Resolves once the partition's state is durable, its commit figures then in `metrics`; absent when the state
   * was committed before the result was handed back (worker threads).
   */
  committed?: Promise<void>;
}

function lookup<K extends PlanNode['kind']>(index: PlanIndex, id: number, kind?: K): Extract<PlanNode, { kind: K }> {
  const node = index.get(id);
  if (!node || (kind && node.kind !== kind)) {
    throw new Error(
      `operator #${id} is not in this thread's plan: the app module built a different query here (its build function must be deterministic)`,
    );
  }
  return node as Extract<PlanNode, { kind: K }>;
}

function userCall<R>(node: PlanNode, ctx: BatchContext, f: () => R): R {
  try {
    return f();
  } catch (err) {
    throw new UserCodeError(nodeName(node), ctx.batchId, err);
  }
}

function applyRowFunction(node: MapNode, batch: RecordBatch, ctx: BatchContext): RecordBatch | null {
  const rows = rowsFromBatch(batch);
  const out: Record<string, unknown>[] = [];
  userCall(node, ctx, () => {
    if (node.kind === 'map') {
      for (const r of rows) out.push(node.fn(r) as Record<string, unknown>);
    } else {
      for (const r of rows) for (const o of node.fn(r) as Iterable<Record<string, unknown>>) out.push(o);
    }
  });
  if (out.length === 0) return null;
  return batchFromRows(out, node.schema ?? inferSchema(out.slice(0, 256)));
}

/** A projection bound to one input schema: output schema and column evaluators, built once per schema. */
interface BoundProject {
  schema: Schema;
  sources: (number | BoundExpression)[];
}

const boundProjects = new WeakMap<ProjectNode, WeakMap<Schema, BoundProject>>();

/** Binds a projection to `input` (cached: decoders reuse one Schema object per source, so this runs once). */
function bindProject(node: ProjectNode, input: Schema): BoundProject {
  let perSchema = boundProjects.get(node);
  if (!perSchema) {
    perSchema = new WeakMap();
    boundProjects.set(node, perSchema);
  }
  const hit = perSchema.get(input);
  if (hit) return hit;
  const fields: Field[] = node.keepInput ? [...input.fields] : [];
  const sources: (number | BoundExpression)[] = node.keepInput ? input.fields.map((_, i) => i) : [];
  for (const c of node.columns) {
    const b = bindExpression(c, input);
    const at = node.keepInput ? fields.findIndex((x) => x.name === b.field.name) : -1;
    if (at >= 0) {
      fields[at] = b.field;
      sources[at] = b;
    } else {
      fields.push(b.field);
      sources.push(b);
    }
  }
  const bound = { schema: new Schema(fields), sources };
  perSchema.set(input, bound);
  return bound;
}

function applyProject(node: ProjectNode, batch: RecordBatch, ctx: BatchContext): RecordBatch {
  const evalCtx = { batchTimestampMs: ctx.batchTimestampMs };
  const bound = bindProject(node, batch.schema);
  const children: Data[] = bound.sources.map((src) =>
    typeof src === 'number' ? batch.data.children[src] : src.evaluate(batch, evalCtx),
  );
  return batchOf(bound.schema, children, batch.numRows);
}

function observeEventTime(node: WatermarkNode, batch: RecordBatch, stats: Record<number, EventTimeStats>): void {
  const i = batch.schema.fields.findIndex((f) => f.name === node.column);
  if (i < 0) {
    throw new UserCodeError(
      nodeName(node),
      -1,
      new Error(
        `withWatermark column '${node.column}' is not in the rows (columns: ${batch.schema.fields.map((f) => f.name).join(', ')})`,
      ),
    );
  }
  const data = batch.data.children[i];
  const raw = data.values as ArrayLike<number> | BigInt64Array;
  const vals = raw instanceof BigInt64Array ? int64ToNumbers(raw, 1, batch.numRows) : raw;
  const checkValid = data.nullCount > 0;
  stats[node.id] ??= { max: -Infinity, min: Infinity, sum: 0, count: 0 };
  const s = stats[node.id];
  for (let r = 0; r < batch.numRows; r++) {
    if (checkValid && !data.getValid(r)) continue;
    const v = vals[r];
    if (v > s.max) s.max = v;
    if (v < s.min) s.min = v;
    s.sum += v;
    s.count++;
  }
}

function applyNode(
  node: PlanNode,
  batches: RecordBatch[],
  ctx: BatchContext,
  metrics: FragmentMetrics,
  broadcasts: Broadcasts,
): RecordBatch[] {
  const out: RecordBatch[] = [];
  for (const b of batches) {
    switch (node.kind) {
      case 'map':
      case 'flatMap': {
        const r = applyRowFunction(node, b, ctx);
        if (r) out.push(r);
        break;
      }
      case 'filter': {
        let idx: ArrayLike<number>;
        if (node.condition) idx = filterIndices(node.condition, b, { batchTimestampMs: ctx.batchTimestampMs });
        else {
          const rows = rowsFromBatch(b);
          const keep: number[] = [];
          userCall(node, ctx, () => {
            for (let i = 0; i < rows.length; i++) if (node.fn!(rows[i])) keep.push(i);
          });
          idx = keep;
        }
        if (idx.length === b.numRows) out.push(b);
        else if (idx.length > 0) out.push(takeRows(b, idx));
        break;
      }
      case 'project':
        out.push(applyProject(node, b, ctx));
        break;
      case 'watermark':
        observeEventTime(node, b, metrics.eventTime);
        out.push(b);
        break;
      case 'join': {
        const relation = broadcasts.get(node.id);
        if (!relation) throw new Error(`the static side of ${nodeName(node)} was not broadcast to this thread`);
        const r = streamStaticJoin(node, relation, b, { batchTimestampMs: ctx.batchTimestampMs });
        if (r.numRows > 0) out.push(r);
        break;
      }
      default:
        throw new Error(`operator ${nodeName(node)} cannot run inside a fragment`);
    }
  }
  return out;
}

/** The state partition of each row of `b`, by the operator's own (vectorised) partitioning when it has one. */
function partitionsOfRows(node: StatefulNode, b: RecordBatch, numPartitions: number, ctx: BatchContext): Int32Array {
  const op = node.operator;
  if (op.partitionsOf) return userCall(node, ctx, () => op.partitionsOf!(b, numPartitions));
  const keys = userCall(node, ctx, () => op.keysOf(b));
  const parts = new Int32Array(keys.length);
  for (let i = 0; i < keys.length; i++) parts[i] = partitionOf(keys[i], numPartitions);
  return parts;
}

/** A schema narrowed to some of its columns, and where they are in it. */
interface Narrowed {
  schema: Schema;
  indices: number[];
}

const narrowed = new WeakMap<Schema, Map<string, Narrowed | null>>();

/**
 * `batch` with only `columns` (column pruning), its schema made once per input schema so that operators'
 * caches keyed by schema keep working; the batch itself when it has no other column.
 */
function selectColumns(batch: RecordBatch, columns: readonly string[]): RecordBatch {
  let perSchema = narrowed.get(batch.schema);
  if (!perSchema) {
    perSchema = new Map();
    narrowed.set(batch.schema, perSchema);
  }
  const key = columns.join('\u0000');
  let n = perSchema.get(key);
  if (n === undefined) {
    const indices = batch.schema.fields.flatMap((f, i) => (columns.includes(f.name) ? [i] : []));
    n =
      indices.length === batch.schema.fields.length
        ? null
        : {
            schema: new Schema(
              indices.map((i) => batch.schema.fields[i]),
              batch.schema.metadata,
            ),
            indices,
          };
    perSchema.set(key, n);
  }
  if (n === null) return batch;
  return batchOf(
    n.schema,
    n.indices.map((i) => batch.data.children[i]),
    batch.numRows,
  );
}

/**
 * Splits rows by the state partition of their grouping key, keeping their order within each partition; only
 * `columns` move when column pruning gave them.
 */
function exchange(
  node: StatefulNode,
  batches: RecordBatch[],
  numPartitions: number,
  ctx: BatchContext,
  columns?: readonly string[],
): RecordBatch[][] {
  const parts: RecordBatch[][] = Array.from({ length: numPartitions }, () => []);
  for (const whole of batches) {
    if (whole.numRows === 0) continue;
    const b = columns ? selectColumns(whole, columns) : whole;
    const of = partitionsOfRows(node, b, numPartitions, ctx);
    const counts = new Int32Array(numPartitions);
    for (let i = 0; i < of.length; i++) counts[of[i]]++;
    const idx = Array.from(counts, (c) => new Int32Array(c));
    const fill = new Int32Array(numPartitions);
    for (let i = 0; i < of.length; i++) idx[of[i]][fill[of[i]]++] = i;
    for (let p = 0; p < numPartitions; p++) {
      if (counts[p] === b.numRows) parts[p].push(b);
      // Wide string columns are most of the bytes, and an operator may read few of its rows' (max_by's winners).
      else if (counts[p] > 0) parts[p].push(takeRows(b, idx[p], true));
    }
  }
  return parts;
}

/**
 * Runs one fragment: read (or take the given input), apply the stateless chain, partition if asked.
 * `broadcasts` holds the hashed static sides of the query's stream-static joins.
 */
export async function runFragment(
  index: PlanIndex,
  spec: FragmentSpec,
  input: RecordBatch[],
  ctx: BatchContext,
  broadcasts: Broadcasts = new Map(),
): Promise<FragmentResult> {
  const metrics: FragmentMetrics = { numInputRows: 0, numMalformed: 0, eventTime: {}, readMs: 0, exchangeMs: 0 };
  let batches = input;
  if (spec.read) {
    const t0 = performance.now();
    const res = await runReadTask(spec.read, { batchId: ctx.batchId });
    metrics.readMs = performance.now() - t0;
    batches = res.batches;
    metrics.numInputRows = countRows(batches);
    metrics.numMalformed = res.numMalformed ?? 0;
    if (res.metrics) metrics.sourceMetrics = res.metrics;
  }
  for (const id of spec.chain) batches = applyNode(lookup(index, id), batches, ctx, metrics, broadcasts);
  if (spec.exchange === undefined) return { batches, metrics };
  const node = lookup(index, spec.exchange, 'stateful');
  if (!spec.sides) {
    const t0 = performance.now();
    const partitions = exchange(node, batches, ctx.numStatePartitions, ctx, spec.columns);
    metrics.exchangeMs = performance.now() - t0;
    return { batches: [], partitions, metrics };
  }
  const partitions: RecordBatch[][] = Array.from({ length: ctx.numStatePartitions }, () => []);
  for (const branch of spec.sides) {
    let rows = batches;
    for (const id of branch.chain) rows = applyNode(lookup(index, id), rows, ctx, metrics, broadcasts);
    const t0 = performance.now();
    const parts = exchange(
      node,
      rows.map((b) => withInputSide(b, branch.side)),
      ctx.numStatePartitions,
      ctx,
    );
    metrics.exchangeMs = (metrics.exchangeMs ?? 0) + performance.now() - t0;
    parts.forEach((p, i) => {
      partitions[i].push(...p);
    });
  }
  return { batches: [], partitions, metrics };
}

/** Runs one state partition of a stateful operator and commits its state as version batchId + 1. */
export async function runStatefulPartition(
  ...task: Parameters<typeof processStatefulPartition>
): Promise<StatefulResult> {
  const { result, commit } = await processStatefulPartition(...task);
  await commit();
  return result;
}

/**
 * Runs one state partition of a stateful operator and returns its output with the commit of its state as
 * version batchId + 1, to call next: a caller may process the next partition, or hand the output to the sink,
 * while this one's state files are written and synced. The commit adds its figures to the result's metrics.
 */
export async function processStatefulPartition(
  index: PlanIndex,
  nodeId: number,
  partition: number,
  input: RecordBatch[],
  ctx: BatchContext,
  stores: StateStoreCache,
): Promise<{ result: StatefulResult; commit: () => Promise<void> }> {
  const node = lookup(index, nodeId, 'stateful');
  // Store version N is the state after N batches (version 0 is empty): batch B reads B and writes B + 1.
  const store = await stores.open(ctx.checkpointDir, nodeId, partition, ctx.batchId);
  const metrics = newOperatorMetrics();
  const late: RecordBatch[] = [];
  let batches: RecordBatch[];
  try {
    batches = await node.operator.process(input, {
      batchId: ctx.batchId,
      partition,
      numPartitions: ctx.numStatePartitions,
      state: store,
      watermarkMs: ctx.watermarkMs,
      eventTimeColumn: ctx.eventTimeColumns[nodeId],
      processingTimeMs: ctx.batchTimestampMs,
      outputMode: ctx.operatorOutputModes[nodeId] ?? ctx.outputMode,
      metrics,
      late,
      lateOutput: ctx.lateOutput,
      maxEvictions: stores.maxEvictionsPerBatch,
    });
  } catch (err) {
    stores.discard(nodeId, partition);
    if (err instanceof StateSchemaError) throw new SluiceError(err.code, `${nodeName(node)}: ${err.message}`, err.hint);
    throw err instanceof UserCodeError ? err : new UserCodeError(nodeName(node), ctx.batchId, err);
  }
  // The commit's figures join the metrics in place, so that copies of the result made meanwhile see them too.
  const result: StatefulResult = { batches, late, metrics: metrics as StatefulMetrics };
  const commit = async (): Promise<void> => {
    const stats = await stores.commit(nodeId, partition, ctx.batchId + 1, ctx.minStateVersionToKeep);
    const numRowsTotal = metrics.stateRows ?? stats.numRowsTotal - (node.operator.internalRows?.(store) ?? 0);
    Object.assign(metrics, stats, { numRowsTotal });
  };
  return { result, commit };
}
