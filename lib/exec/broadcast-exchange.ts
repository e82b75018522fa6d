import type { RecordBatch, Schema } from 'apache-arrow';
import { batchFromRows, emptyBatch, rowsFromBatch } from '../arrow/index.js';
import { SluiceError } from '../errors.js';
import type { Analysis } from '../plan/analyzer.js';
import { bindExpression } from '../plan/expression-eval.js';
import { resolveJoin } from '../plan/join.js';
import { type LoadedRelation, nodeName, type PlanNode, walkPlan } from '../plan/logical-plan.js';
import { HashedRelation } from '../plan/operators/hashed-relation.js';
import type { Broadcasts } from '../plan/operators/stream-static-join.js';
import type { BatchContext } from './batch-context.js';
import { runFragment } from './task-runner.js';

/** Loads every static relation of a query (once per query start), by node id. */
export async function loadRelations(analysis: Analysis): Promise<Map<number, LoadedRelation>> {
  const out = new Map<number, LoadedRelation>();
  for (const r of analysis.relations) out.set(r.id, await r.load());
  return out;
}

/** The static side's operators, bottom up, above the relation it reads. */
function staticChain(right: PlanNode): { relation: number; chain: number[] } {
  const chain: number[] = [];
  let n = right;
  while (n.kind !== 'relation') {
    chain.unshift(n.id);
    n = (n as Extract<PlanNode, { input: PlanNode }>).input;
  }
  return { relation: n.id, chain };
}

/** One batch of `schema` holding every row of `batches`. */
function oneBatch(schema: Schema, batches: RecordBatch[]): RecordBatch {
  const nonEmpty = batches.filter((b) => b.numRows > 0);
  if (nonEmpty.length === 0) return emptyBatch(schema);
  if (nonEmpty.length === 1) return nonEmpty[0];
  return batchFromRows(
    nonEmpty.flatMap((b) => rowsFromBatch(b)),
    schema,
  );
}

/**
 * Evaluates the static side of every stream-static join once, in the driver, and hashes it on the join keys
 * (Spark's BroadcastExchangeExec): the executor then hands the tables to its threads once. `ctx` is the
 * first batch's context, for expressions such as current_timestamp().
 */
export async function broadcastStaticSides(
  analysis: Analysis,
  root: PlanNode,
  relations: ReadonlyMap<number, LoadedRelation>,
  ctx: BatchContext,
): Promise<Broadcasts> {
  const index = new Map(walkPlan(root).map((n) => [n.id, n]));
  const out = new Map<number, HashedRelation>();
  for (const j of analysis.streamStaticJoins) {
    const { relation, chain } = staticChain(j.right);
    const loaded = relations.get(relation)!;
    const res = await runFragment(index, { chain }, loaded.batches, ctx);
    const schema = analysis.schemaOf(j.right.id) ?? res.batches[0]?.schema ?? loaded.schema;
    const rows = oneBatch(schema, res.batches);
    const left = analysis.schemaOf(j.left.id);
    if (!left) {
      throw new SluiceError(
        'ANALYSIS',
        `${nodeName(j)}: the stream side of a join needs a known schema, but a map or flatMap below it has none`,
        'give the map or flatMap its output schema, e.g. map(fn, { user: "string", amount: "double" })',
      );
    }
    const keys = resolveJoin(j, left, schema).rightKeys;
    out.set(
      j.id,
      HashedRelation.build(
        rows,
        keys.map((k) => bindExpression(k, schema).evaluate(rows, ctx)),
      ),
    );
  }
  return out;
}
