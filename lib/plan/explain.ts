/**
 * The text of a started query's plan (Spark's `StreamingQuery.explain()`): one line per operator with the
 * columns it outputs, the sink's operator first and each input indented below the operator that reads it.
 * A source shows the columns it builds after column pruning (Spark's ReadSchema), and an exchange into a
 * stateful operator the columns it moves.
 */
import type { Schema } from 'apache-arrow';
import type { ColumnPruning } from './column-pruning.js';
import { inputsOf, nodeName, type PlanNode } from './logical-plan.js';

/** What {@link explainPlan} needs of a query that has opened its sources. */
export interface ExplainInput {
  root: PlanNode;
  schemaOf: (nodeId: number) => Schema | null;
  pruning: ColumnPruning;
  numStatePartitions: number;
  /** What an opened source calls itself (e.g. `KafkaSource[host:9092/events]`), else the plan's description. */
  sourceDescription?: (nodeId: number) => string | undefined;
}

function columnList(schema: Schema | null): string {
  return schema ? `[${schema.fields.map((f) => f.name).join(', ')}]` : '[decided by a row function]';
}

/** The plan as indented lines, e.g. `aggregate#2 [user_id, events]` over `exchange` over the source. */
export function explainPlan(q: ExplainInput): string {
  const lines: string[] = [];
  const add = (depth: number, text: string): void => {
    lines.push(depth === 0 ? text : `${'   '.repeat(depth - 1)}+- ${text}`);
  };
  const visit = (node: PlanNode, depth: number): void => {
    const columns = columnList(q.schemaOf(node.id));
    if (node.kind === 'source') {
      const description = q.sourceDescription?.(node.id) ?? node.description;
      add(depth, `${nodeName(node)} ${description} ReadSchema: ${columns}`);
      return;
    }
    add(depth, `${nodeName(node)} ${columns}`);
    let below = depth + 1;
    if (node.kind === 'stateful' && !node.right) {
      const moved = q.pruning.exchanges.get(node.id);
      add(
        below,
        `exchange into ${q.numStatePartitions} state partitions ${moved ? `[${moved.join(', ')}]` : columnList(q.schemaOf(node.input.id))}`,
      );
      below++;
    }
    for (const input of inputsOf(node)) visit(input, below);
  };
  visit(q.root, 0);
  return lines.join('\n');
}
