/**
 * A serialisable form of a logical plan built only of column expressions, watermarks, unions, joins,
 * deduplication, `groupBy(...).agg(...)` and `groupByKey(column).count()`: worker threads rebuild such a query from this description, so it runs on the pool
 * without an app module. Row functions written inline (map, flatMap, filter with a function, the functions of
 * groupByKey) cannot cross a thread boundary; describing a plan that has one fails naming the operator.
 */
import { SluiceError } from '../errors.js';
import { type AggregateName, type AggregateOptions, aggregateFunction } from './aggregates/aggregate-functions.js';
import { checkExprNode, type Expression, type ExprNode, userFunctionIn } from './expression.js';
import type { JoinType } from './join-type.js';
import { isStreaming, type PlanNode, walkPlan } from './logical-plan.js';
import { AggregateOperator } from './operators/aggregate.js';
import { DeduplicateOperator, type DeduplicateSpec } from './operators/deduplicate.js';
import { COUNT_FOLD, KeyedAggregateOperator } from './operators/keyed-aggregate.js';
import { type StreamJoinSpec, StreamStreamJoinOperator } from './operators/stream-stream-join.js';
import type { Grouping } from './windows.js';

/** A grouping of `groupBy`, its expressions in their JSON form. */
export type GroupingDescription =
  | { kind: 'key'; column: ExprNode }
  | { kind: 'window'; time: ExprNode; sizeMs: number; slideMs: number; offsetMs: number; name: string }
  | { kind: 'session'; time: ExprNode; gapMs?: number; gap?: ExprNode; name: string }
  | { kind: 'bucket'; column: ExprNode; buckets: number; name: string };

/** One aggregate call: the built-in function's name, its options and arguments. */
export interface AggregateCallDescription {
  name: AggregateName;
  options: AggregateOptions;
  args: ExprNode[];
  alias?: string;
}

/** One operator; inputs are named by operator id. */
export type NodeDescription =
  | { kind: 'source'; id: number; description: string }
  | { kind: 'relation'; id: number; description: string }
  | {
      kind: 'join';
      id: number;
      left: number;
      right: number;
      joinType: JoinType;
      using?: string[];
      condition?: ExprNode;
      leftAlias?: string;
      rightAlias?: string;
    }
  | { kind: 'filter'; id: number; input: number; condition: ExprNode }
  | { kind: 'project'; id: number; input: number; columns: ExprNode[]; keepInput: boolean }
  | { kind: 'union'; id: number; inputs: number[] }
  | { kind: 'watermark'; id: number; input: number; column: string; delayMs: number }
  | { kind: 'keyedCount'; id: number; input: number; column: string }
  | { kind: 'deduplicate'; id: number; input: number; spec: DeduplicateSpec }
  | {
      kind: 'streamJoin';
      id: number;
      input: number;
      right: number;
      spec: Omit<StreamJoinSpec, 'condition'> & { condition?: ExprNode };
    }
  | {
      kind: 'aggregate';
      id: number;
      input: number;
      groupings: GroupingDescription[];
      aggregates: AggregateCallDescription[];
      allowedLatenessMs: number;
      changelog: boolean;
      afterAggregation: boolean;
    };

/** A plan as plain data (structured-clone and JSON safe): its operators, inputs first, and the root's id. */
export interface PlanDescription {
  nodes: NodeDescription[];
  root: number;
}

/** The start of a row function's source, for messages: `x => ...` rather than its whole body. */
function functionText(fn: unknown): string {
  const text = String(fn).replace(/\s+/g, ' ').trim();
  return text.length <= 24 ? text : `${text.slice(0, 20).trimEnd()} ...`;
}

function notSerialisable(what: string, id: number, fn?: unknown): SluiceError {
  const message =
    fn === undefined
      ? `${what} at operator #${id} is an operator of groupByKey, which worker threads run only from an app module`
      : `${what} at operator #${id} (${functionText(fn)}) is a function written inline, which worker threads cannot run without an app module`;
  return new SluiceError(
    'INLINE_FUNCTIONS_IN_POOL',
    message,
    'define the query in an app module (defineApp) and run it with `sluice run <module>` or runApp(), or use Session.local({ threads: 0 }); column expressions (where, select, withColumn, groupBy().agg(), groupByKey(column).count()) need neither',
  );
}

/** The JSON form of an operator's expression; a user-defined function in it cannot cross a thread boundary. */
function exprOf(e: Expression, operator: string, id: number): ExprNode {
  const udf = userFunctionIn(e.expr);
  if (udf !== undefined)
    throw new SluiceError(
      'INLINE_FUNCTIONS_IN_POOL',
      `${operator} at operator #${id} calls the user-defined function ${udf}, which worker threads cannot run without an app module`,
      'define the query in an app module (defineApp) and run it with `sluice run <module>` or runApp(), or use Session.local({ threads: 0 })',
    );
  return e.expr;
}

function describeGrouping(g: Grouping, id: number): GroupingDescription {
  const e = (x: Expression): ExprNode => exprOf(x, 'groupBy', id);
  switch (g.kind) {
    case 'key':
      return { kind: 'key', column: e(g.column) };
    case 'window':
      return { ...g, time: e(g.time) };
    case 'session':
      return { ...g, time: e(g.time), gap: g.gap && e(g.gap) };
    case 'bucket':
      return { ...g, column: e(g.column) };
  }
}

/** `groupByKey(column).count()`: no user function, so a worker can rebuild it from the column's name. */
function isColumnCount(op: unknown): op is KeyedAggregateOperator & { grouping: { column: string } } {
  return (
    op instanceof KeyedAggregateOperator &&
    op.fold === COUNT_FOLD &&
    op.grouping.column !== undefined &&
    op.grouping.toValue === undefined
  );
}

function describeNode(n: PlanNode): NodeDescription {
  switch (n.kind) {
    case 'source':
      return { kind: 'source', id: n.id, description: n.description };
    case 'relation':
      return { kind: 'relation', id: n.id, description: n.description };
    case 'join':
      return {
        kind: 'join',
        id: n.id,
        left: n.left.id,
        right: n.right.id,
        joinType: n.joinType,
        using: n.using,
        condition: n.condition && exprOf(n.condition, 'join', n.id),
        leftAlias: n.leftAlias,
        rightAlias: n.rightAlias,
      };
    case 'map':
    case 'flatMap':
      throw notSerialisable(n.kind, n.id, n.fn);
    case 'filter':
      if (!n.condition) throw notSerialisable('filter', n.id, n.fn);
      return { kind: 'filter', id: n.id, input: n.input.id, condition: exprOf(n.condition, 'filter', n.id) };
    case 'project':
      return {
        kind: 'project',
        id: n.id,
        input: n.input.id,
        columns: n.columns.map((c) => exprOf(c, 'select', n.id)),
        keepInput: n.keepInput,
      };
    case 'union':
      return { kind: 'union', id: n.id, inputs: n.inputs.map((i) => i.id) };
    case 'watermark':
      return { kind: 'watermark', id: n.id, input: n.input.id, column: n.column, delayMs: n.delayMs };
    case 'stateful': {
      const op = n.operator;
      if (isColumnCount(op)) return { kind: 'keyedCount', id: n.id, input: n.input.id, column: op.grouping.column };
      if (op instanceof DeduplicateOperator) return { kind: 'deduplicate', id: n.id, input: n.input.id, spec: op.spec };
      if (op instanceof StreamStreamJoinOperator && n.right) {
        const { condition, ...rest } = op.spec;
        return {
          kind: 'streamJoin',
          id: n.id,
          input: n.input.id,
          right: n.right.id,
          spec: { ...rest, condition: condition?.expr },
        };
      }
      if (!(op instanceof AggregateOperator)) throw notSerialisable(op.name, n.id, n.operator.userFunction);
      return {
        kind: 'aggregate',
        id: n.id,
        input: n.input.id,
        groupings: op.def.groupings.map((g) => describeGrouping(g, n.id)),
        aggregates: op.def.aggregates.map((a) => ({
          name: a.name,
          options: a.options,
          args: a.args.map((x) => exprOf(x, 'agg', n.id)),
          alias: a.alias,
        })),
        allowedLatenessMs: op.def.allowedLatenessMs,
        changelog: op.def.changelog,
        afterAggregation: op.def.afterAggregation ?? false,
      };
    }
  }
}

/**
 * Describes the plan below `root`. Throws INLINE_FUNCTIONS_IN_POOL naming the first operator that holds a
 * row function (nearest the source), since only an app module can give a worker thread that function. The
 * static side of a stream-static join is described as one relation: the driver evaluates and hashes it, so
 * its operators (row functions included) never run in a worker.
 */
export function describePlan(root: PlanNode): PlanDescription {
  const nodes = walkPlan(root);
  const staticRoots = new Set<PlanNode>();
  const staticBelow = new Set<PlanNode>();
  for (const n of nodes) {
    if (n.kind !== 'join' || isStreaming(n.right)) continue;
    staticRoots.add(n.right);
    for (const s of walkPlan(n.right)) if (s !== n.right) staticBelow.add(s);
  }
  return {
    nodes: nodes
      .filter((n) => !staticBelow.has(n))
      .map((n) =>
        staticRoots.has(n) ? { kind: 'relation', id: n.id, description: `static side #${n.id}` } : describeNode(n),
      ),
    root: root.id,
  };
}

function expression(n: ExprNode): Expression {
  return { expr: checkExprNode(n, 'plan description') };
}

function rebuildGrouping(g: GroupingDescription): Grouping {
  switch (g.kind) {
    case 'key':
      return { kind: 'key', column: expression(g.column) };
    case 'window':
      return { ...g, time: expression(g.time) };
    case 'session':
      return { ...g, time: expression(g.time), gap: g.gap && expression(g.gap) };
    case 'bucket':
      return { ...g, column: expression(g.column) };
  }
}

/**
 * The plan a description was made from, by operator id. Its sources cannot be opened: a worker thread runs
 * operators on batches the driver read.
 */
export function rebuildPlan(desc: PlanDescription): Map<number, PlanNode> {
  const nodes = new Map<number, PlanNode>();
  const node = (id: number): PlanNode => {
    const n = nodes.get(id);
    if (!n) throw new Error(`plan description names operator #${id} before describing it`);
    return n;
  };
  for (const d of desc.nodes) {
    let n: PlanNode;
    switch (d.kind) {
      case 'source':
        n = {
          kind: 'source',
          id: d.id,
          description: d.description,
          create: () => {
            throw new Error(`source ${d.description} is read by the driver, not by worker threads`);
          },
        };
        break;
      case 'relation':
        n = {
          kind: 'relation',
          id: d.id,
          description: d.description,
          load: () => {
            throw new Error(`relation ${d.description} is read by the driver, not by worker threads`);
          },
        };
        break;
      case 'join':
        n = {
          ...d,
          left: node(d.left),
          right: node(d.right),
          condition: d.condition && expression(d.condition),
        };
        break;
      case 'filter':
        n = { kind: 'filter', id: d.id, input: node(d.input), condition: expression(d.condition) };
        break;
      case 'project':
        n = { ...d, input: node(d.input), columns: d.columns.map(expression) };
        break;
      case 'union':
        n = { kind: 'union', id: d.id, inputs: d.inputs.map(node) };
        break;
      case 'watermark':
        n = { ...d, input: node(d.input) };
        break;
      case 'keyedCount': {
        const column = d.column;
        n = {
          kind: 'stateful',
          id: d.id,
          input: node(d.input),
          operator: new KeyedAggregateOperator({ keyOf: (row) => row[column], column }, COUNT_FOLD),
        };
        break;
      }
      case 'deduplicate':
        n = { kind: 'stateful', id: d.id, input: node(d.input), operator: new DeduplicateOperator(d.spec) };
        break;
      case 'streamJoin':
        n = {
          kind: 'stateful',
          id: d.id,
          input: node(d.input),
          right: node(d.right),
          operator: new StreamStreamJoinOperator({
            ...d.spec,
            condition: d.spec.condition && expression(d.spec.condition),
          }),
        };
        break;
      case 'aggregate':
        n = {
          kind: 'stateful',
          id: d.id,
          input: node(d.input),
          operator: new AggregateOperator({
            groupings: d.groupings.map(rebuildGrouping),
            aggregates: d.aggregates.map((a) => ({
              name: a.name,
              options: a.options,
              fn: aggregateFunction(a.name, a.args.length, a.options),
              args: a.args.map(expression),
              alias: a.alias,
            })),
            allowedLatenessMs: d.allowedLatenessMs,
            changelog: d.changelog,
            afterAggregation: d.afterAggregation,
          }),
        };
        break;
    }
    nodes.set(d.id, n);
  }
  node(desc.root);
  return nodes;
}
