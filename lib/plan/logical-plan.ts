import type { RecordBatch, Schema } from 'apache-arrow';
import type { StreamSource } from '../sources/source.js';
import type { Expression } from './expression.js';
import type { JoinType } from './join-type.js';
import type { StatefulOperator } from './stateful-operator.js';

/** A user function over one row; it runs wherever the batch is (driver or worker). */
export type RowFunction = (row: Record<string, unknown>) => unknown;

interface NodeBase {
  /** Operator id: the position of the node in the order the query was built, the same in every thread. */
  readonly id: number;
  /** Output schema the user declared (map/flatMap); others are derived when the query starts. */
  readonly schema?: Schema;
}

/**
 * Reads one source. The node holds a factory, not a source: every query started from a plan opens its own
 * source instance with its own offsets (as Spark instantiates a StreamingRelation per query).
 */
export interface SourceNode extends NodeBase {
  kind: 'source';
  description: string;
  create: () => StreamSource;
}
/** Row-at-a-time function: one output row per input row (map) or any number (flatMap). */
export interface MapNode extends NodeBase {
  kind: 'map' | 'flatMap';
  input: PlanNode;
  fn: RowFunction;
}
/** Keeps rows where a row predicate or a boolean column expression is true. */
export interface FilterNode extends NodeBase {
  kind: 'filter';
  input: PlanNode;
  fn?: RowFunction;
  condition?: Expression;
}
/**
 * Vectorised projection. `select` gives exactly `columns`; `withColumn` (keepInput) keeps the input's columns,
 * replacing a same-named one in place and appending new ones.
 */
export interface ProjectNode extends NodeBase {
  kind: 'project';
  input: PlanNode;
  columns: Expression[];
  keepInput: boolean;
}
/** Concatenation of streams with the same columns. */
export interface UnionNode extends NodeBase {
  kind: 'union';
  inputs: PlanNode[];
}
/** Declares an event-time column and how late its rows may arrive. */
export interface WatermarkNode extends NodeBase {
  kind: 'watermark';
  input: PlanNode;
  column: string;
  delayMs: number;
}
/**
 * A stateful operator; rows are hash-partitioned by key into state partitions first. A two-input operator (a
 * stream-stream join) has a `right` input too: its rows reach the operator tagged with their side.
 */
export interface StatefulNode extends NodeBase {
  kind: 'stateful';
  input: PlanNode;
  right?: PlanNode;
  operator: StatefulOperator;
}

/** Rows of a static relation, as a batch reader (`session.read`) loads them. */
export interface LoadedRelation {
  schema: Schema;
  batches: RecordBatch[];
}

/**
 * A static (batch) relation read by `session.read`: loaded once per query when the query starts, so a changed
 * file takes effect on the next start, as with Spark's static DataFrames in a stream-static join.
 */
export interface RelationNode extends NodeBase {
  kind: 'relation';
  description: string;
  load: () => Promise<LoadedRelation>;
}

/**
 * Spark's logical Join of two datasets, on using-columns (`using`, each kept once in the output) or on a
 * boolean `condition`. Which physical join runs depends on whether the right side is streaming.
 */
export interface JoinNode extends NodeBase {
  kind: 'join';
  left: PlanNode;
  right: PlanNode;
  joinType: JoinType;
  using?: string[];
  condition?: Expression;
  /** Names given by `Dataset.alias`, which qualify columns in the condition (`col('bid.price')`). */
  leftAlias?: string;
  rightAlias?: string;
  /**
   * The user put the static side on the left (`static.join(stream, ...)`, inner or right outer): the node holds the
   * stream on the left as every stream-static join does, and outputs the static side's columns first.
   */
  staticFirst?: boolean;
}

export type PlanNode =
  | SourceNode
  | RelationNode
  | MapNode
  | FilterNode
  | ProjectNode
  | UnionNode
  | WatermarkNode
  | StatefulNode
  | JoinNode;

/** Direct inputs of a node. */
export function inputsOf(node: PlanNode): PlanNode[] {
  switch (node.kind) {
    case 'source':
    case 'relation':
      return [];
    case 'union':
      return node.inputs;
    case 'join':
      return [node.left, node.right];
    case 'stateful':
      return node.right ? [node.input, node.right] : [node.input];
    default:
      return [node.input];
  }
}

/** All nodes below and including `root`, each once, inputs before the nodes that use them. */
export function walkPlan(root: PlanNode): PlanNode[] {
  const seen = new Set<number>();
  const out: PlanNode[] = [];
  const visit = (n: PlanNode): void => {
    if (seen.has(n.id)) return;
    seen.add(n.id);
    for (const i of inputsOf(n)) visit(i);
    out.push(n);
  };
  visit(root);
  return out;
}

/** Whether rows of `node` come from a streaming source (otherwise it is a static relation, read once). */
export function isStreaming(node: PlanNode): boolean {
  return walkPlan(node).some((n) => n.kind === 'source');
}

/** Short operator name for messages and progress, e.g. `map#3`. */
export function nodeName(node: PlanNode): string {
  return node.kind === 'stateful' ? `${node.operator.name}#${node.id}` : `${node.kind}#${node.id}`;
}

/** The batches flowing out of a node in one micro-batch. */
export type Batches = RecordBatch[];
