/**
 * Column pruning (Spark's ColumnPruning rule with a source's required schema): which columns each operator
 * reads, worked out from the sink down, so that a source builds only the columns the query reads and an
 * exchange moves only those its stateful operator reads. A query over Kafka JSON events that aggregates two
 * fields then decodes two fields, not every field and every Kafka column, and hashes two columns into state
 * partitions.
 *
 * An operator whose user function sees whole rows (map, flatMap, a filter or groupByKey with a row function,
 * mapGroupsWithState) needs every column of its input, and so does the sink, which writes whole rows, and a
 * join. A query with a late-data output needs every column at its stateful operators: late rows go out whole.
 */
import type { Schema } from 'apache-arrow';
import type { Expression, ExprNode } from './expression.js';
import { resolveColumn } from './expression-bind.js';
import { inputsOf, type PlanNode, walkPlan } from './logical-plan.js';

/** What column pruning decided for a query; a node absent from a map reads every column. */
export interface ColumnPruning {
  /** Source node id → the columns its rows need, in the source's order. */
  sources: Map<number, string[]>;
  /** Stateful node id → the input columns its exchange moves, in the input's order. */
  exchanges: Map<number, string[]>;
}

/** Column names read, or null for all of them. */
type Needed = Set<string> | null;

/** The top-level input columns `exprs` read, or null when one does not resolve against `input`. */
function columnsRead(exprs: readonly Expression[], input: Schema): Set<string> | null {
  const out = new Set<string>();
  const visit = (n: ExprNode): boolean => {
    switch (n.kind) {
      case 'col': {
        try {
          out.add(input.fields[resolveColumn(input, n.name).path[0]].name);
          return true;
        } catch {
          return false;
        }
      }
      case 'lit':
        return true;
      case 'op':
        return visit(n.left) && visit(n.right);
      case 'not':
      case 'isNull':
      case 'cast':
      case 'alias':
      case 'field':
        return visit(n.child);
      case 'case':
        return n.branches.every((b) => visit(b.when) && visit(b.then)) && (n.otherwise === null || visit(n.otherwise));
      case 'call':
      case 'udf':
        return n.args.every(visit);
    }
  };
  return exprs.every((e) => visit(e.expr)) ? out : null;
}

function union(a: Needed, b: Needed): Needed {
  if (a === null || b === null) return null;
  return new Set([...a, ...b]);
}

/** The columns `node` reads of each of its inputs, given the columns read of its own output. */
function neededOfInputs(
  node: PlanNode,
  out: Needed,
  schemaOf: (id: number) => Schema | null,
  lateOutput: boolean,
): Needed[] {
  const inputs = inputsOf(node);
  const input = inputs[0] ? schemaOf(inputs[0].id) : null;
  const all = inputs.map((): Needed => null);
  switch (node.kind) {
    case 'filter':
      if (!node.condition || !input) return all;
      return [union(out, columnsRead([node.condition], input))];
    case 'project': {
      if (!input) return all;
      const read = columnsRead(node.columns, input);
      if (!node.keepInput) return [read];
      if (out === null || read === null) return all;
      // withColumn: the columns it writes come from its expressions, the others pass through.
      const written = new Set(node.columns.map((c) => resultName(c, input)));
      return [union(new Set([...out].filter((c) => !written.has(c))), read)];
    }
    case 'union':
      return inputs.map(() => out);
    case 'watermark':
      return [out === null ? null : union(out, new Set([node.column]))];
    case 'stateful': {
      const exprs = node.operator.inputExpressions?.();
      if (!exprs || node.right || lateOutput || !input) return all;
      return [columnsRead(exprs, input)];
    }
    default:
      return all;
  }
}

/** The name of the column a projection's expression writes. */
function resultName(c: Expression, input: Schema): string {
  const n = c.expr;
  if (n.kind === 'alias') return n.name;
  if (n.kind === 'col') return input.fields[resolveColumn(input, n.name).path[0]]?.name ?? n.name;
  return '';
}

/** `needed` as a subset of `schema`'s columns in its order, or null when that is all of them. */
function pruned(schema: Schema | null, needed: Needed): string[] | null {
  if (!schema || needed === null) return null;
  const names = schema.fields.map((f) => f.name).filter((n) => needed.has(n));
  if (names.length === schema.fields.length) return null;
  // A query that reads no column (count(*) alone) still needs its rows: keep the first column.
  return names.length > 0 ? names : [schema.fields[0].name];
}

/**
 * Works out which columns each source builds and each exchange moves, once the analyzer has derived every
 * node's schema (`schemaOf`). `lateOutput`: the query has a late-data output, which gets whole input rows.
 */
export function pruneColumns(
  root: PlanNode,
  schemaOf: (nodeId: number) => Schema | null,
  opts: { lateOutput: boolean },
): ColumnPruning {
  const needed = new Map<number, Needed>([[root.id, null]]);
  const result: ColumnPruning = { sources: new Map(), exchanges: new Map() };
  for (const node of walkPlan(root).reverse()) {
    const out = needed.has(node.id) ? needed.get(node.id)! : null;
    if (node.kind === 'source') {
      const cols = pruned(schemaOf(node.id), out);
      if (cols) result.sources.set(node.id, cols);
      continue;
    }
    const inputs = inputsOf(node);
    const ofInputs = neededOfInputs(node, out, schemaOf, opts.lateOutput);
    inputs.forEach((input, i) => {
      const n = ofInputs[i];
      needed.set(input.id, needed.has(input.id) ? union(needed.get(input.id)!, n) : n);
    });
    if (node.kind === 'stateful' && !node.right) {
      const cols = pruned(schemaOf(node.input.id), ofInputs[0]);
      if (cols) result.exchanges.set(node.id, cols);
    }
  }
  return result;
}
