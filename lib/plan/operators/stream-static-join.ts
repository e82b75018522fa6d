import type { RecordBatch } from 'apache-arrow';
import { batchOf, takeData, takeDataOrNull } from '../../arrow/index.js';
import { bindExpression, type EvalContext, filterIndices } from '../expression-eval.js';
import { type ResolvedJoin, resolveJoin } from '../join.js';
import type { JoinNode } from '../logical-plan.js';
import { type HashedRelation, type JoinPairs, keyVector } from './hashed-relation.js';

/** The hashed static side of each stream-static join of a query, by join node id: built once per query. */
export type Broadcasts = ReadonlyMap<number, HashedRelation>;

const resolved = new WeakMap<JoinNode, WeakMap<object, ResolvedJoin>>();

/** The join resolved for a stream batch schema (cached: decoders reuse one Schema object per source). */
function resolveFor(node: JoinNode, relation: HashedRelation, batch: RecordBatch): ResolvedJoin {
  let perSchema = resolved.get(node);
  if (!perSchema) {
    perSchema = new WeakMap();
    resolved.set(node, perSchema);
  }
  let r = perSchema.get(batch.schema);
  if (!r) {
    r = resolveJoin(node, batch.schema, relation.schema);
    perSchema.set(batch.schema, r);
  }
  return r;
}

/** The pairs for which the residual condition holds, evaluated over the paired rows' columns. */
function filterPairs(
  join: ResolvedJoin,
  batch: RecordBatch,
  relation: HashedRelation,
  pairs: JoinPairs,
  ctx: EvalContext,
): JoinPairs {
  const l = pairs.left.subarray(0, pairs.length);
  const r = pairs.right.subarray(0, pairs.length);
  const paired = batchOf(
    join.pairSchema,
    [...batch.data.children.map((c) => takeData(c, l)), ...relation.rows.data.children.map((c) => takeData(c, r))],
    pairs.length,
  );
  const keep = filterIndices(join.residual!, paired, ctx);
  return {
    left: keep.map((k) => l[k]),
    right: keep.map((k) => r[k]),
    length: keep.length,
  };
}

/** Rows of `batch` with (semi) or without (anti) a pair, in batch order. */
function leftRows(pairs: JoinPairs, n: number, matched: boolean): Int32Array {
  const has = new Uint8Array(n);
  for (let k = 0; k < pairs.length; k++) has[pairs.left[k]] = 1;
  const want = matched ? 1 : 0;
  let count = 0;
  for (let i = 0; i < n; i++) if (has[i] === want) count++;
  const out = new Int32Array(count);
  let j = 0;
  for (let i = 0; i < n; i++) if (has[i] === want) out[j++] = i;
  return out;
}

/** The pairs plus a (row, -1) pair for each batch row without one, in batch order. */
function withUnmatched(pairs: JoinPairs, n: number): { left: Int32Array; right: Int32Array } {
  const has = new Uint8Array(n);
  for (let k = 0; k < pairs.length; k++) has[pairs.left[k]] = 1;
  let unmatched = 0;
  for (let i = 0; i < n; i++) unmatched += has[i] ^ 1;
  const left = new Int32Array(pairs.length + unmatched);
  const right = new Int32Array(left.length);
  let k = 0;
  let o = 0;
  for (let i = 0; i < n; i++) {
    if (!has[i]) {
      left[o] = i;
      right[o++] = -1;
      continue;
    }
    while (k < pairs.length && pairs.left[k] === i) {
      left[o] = i;
      right[o++] = pairs.right[k++];
    }
  }
  return { left, right };
}

/** Whether `rows` is 0, 1, ..., n - 1: each stream row once, in order, so its columns are reused as they are. */
function isIdentity(rows: Int32Array): boolean {
  for (let i = 0; i < rows.length; i++) if (rows[i] !== i) return false;
  return true;
}

/**
 * Joins one batch of the stream with the static side's hash table (Spark's BroadcastHashJoinExec with the stream
 * on the probe side): no state, so it runs inside a stateless fragment on any thread. Output rows follow the
 * stream batch's row order, and a stream row's matches follow the static side's row order. A join the user
 * wrote with the static side on the left (inner or right outer) runs the same way, as inner or left outer
 * with the sides swapped, and outputs the static side's columns first.
 */
export function streamStaticJoin(
  node: JoinNode,
  relation: HashedRelation,
  batch: RecordBatch,
  ctx: EvalContext,
): RecordBatch {
  const join = resolveFor(node, relation, batch);
  const n = batch.numRows;
  const keys = join.leftKeys.map((k) => keyVector(bindExpression(k, batch.schema).evaluate(batch, ctx)));
  let pairs = relation.probe(keys, n);
  if (join.residual && pairs.length > 0) pairs = filterPairs(join, batch, relation, pairs, ctx);
  let left: Int32Array;
  let right: Int32Array | null = null;
  switch (node.joinType) {
    case 'left_semi':
      left = leftRows(pairs, n, true);
      break;
    case 'left_anti':
      left = leftRows(pairs, n, false);
      break;
    case 'left_outer':
      ({ left, right } = withUnmatched(pairs, n));
      break;
    default:
      left = pairs.left.subarray(0, pairs.length);
      right = pairs.right.subarray(0, pairs.length);
  }
  const sameRows = left.length === n && isIdentity(left);
  const columns = join.columns.map(({ side, index }) =>
    side === 'right'
      ? takeDataOrNull(relation.rows.data.children[index], right!)
      : sameRows
        ? batch.data.children[index]
        : takeData(batch.data.children[index], left),
  );
  return batchOf(join.schema, columns, left.length);
}
