import { type Data, Field, type RecordBatch, Schema } from 'apache-arrow';
import { batchOf } from '../arrow/batch-ops.js';
import { mkData } from '../arrow/columns.js';
import { SluiceError } from '../errors.js';
import { type Expression, exprText } from './expression.js';
import { type Bound, bind, resolveColumn } from './expression-bind.js';
import {
  absolute,
  cast,
  changeCase,
  concatStrings,
  epochToTimestamp,
  formatTimestamps,
  hourOf,
  lengthOf,
  parseTimestamps,
  roundValue,
  unixMillis,
} from './expression-functions.js';
import { arithmetic, compare, isNull, logical, not, pickRows, truthy } from './expression-kernels.js';
import { regexpExtract, splitPart } from './expression-strings.js';
import { applyUserFunction } from './expression-udf.js';
import {
  andValid,
  type LType,
  loadData,
  materialise,
  scalarOf,
  toData,
  type Val,
  validOf,
  validOfData,
  withValidity,
} from './expression-vectors.js';

/**
 * Evaluation of column expressions on Arrow record batches. Analysis (name resolution, types, implicit casts)
 * runs once per expression and schema and is cached; evaluation runs vectorised kernels over whole columns.
 */

/** What an expression may read besides the batch: the batch's processing time from the offset log. */
export interface EvalContext {
  /** Processing time of the micro-batch (epoch ms), as written in offsets/N: current_timestamp() returns it. */
  batchTimestampMs: number;
}

/** An expression bound to one input schema: its output field and its evaluator. */
export interface BoundExpression {
  readonly column: Expression;
  readonly field: Field;
  /** The result column for every row of `batch` (which must have the bound schema). */
  evaluate(batch: RecordBatch, ctx: EvalContext): Data;
}

interface Analysed {
  tree: Bound;
  bound: BoundExpression;
}

const cache = new WeakMap<object, WeakMap<Schema, Analysed>>();

/** Binds once per expression tree and schema object; streaming batches share their schema object. */
function analyse(column: Expression, schema: Schema): Analysed {
  let bySchema = cache.get(column.expr);
  if (!bySchema) {
    bySchema = new WeakMap();
    cache.set(column.expr, bySchema);
  }
  let a = bySchema.get(schema);
  if (!a) {
    const tree = bind(column.expr, schema);
    const name = exprText(column.expr, (n) => resolveColumn(schema, n.name).field.name);
    const field = new Field(name, tree.arrow, true);
    a = { tree, bound: { column, field, evaluate: (batch, ctx) => evaluateBound(tree, batch, ctx) } };
    bySchema.set(schema, a);
  }
  return a;
}

/**
 * Analyses `column` against `schema` once (cached per expression and schema). Throws SluiceError('ANALYSIS')
 * naming the missing column and the available ones, or the type mismatch, before any data is read.
 */
export function bindExpression(column: Expression, schema: Schema): BoundExpression {
  return analyse(column, schema).bound;
}

/**
 * The output field of `column` over `schema`: its name (the alias, the column's name, or a Spark-like generated
 * name such as `(a + 1)`) and Arrow type. Computed once per query; throws SluiceError('ANALYSIS') when a
 * referenced column does not exist or types do not fit.
 */
export function resultField(column: Expression, schema: Schema): Field {
  return analyse(column, schema).bound.field;
}

/** The column of `column` evaluated over every row of `batch` (batch.numRows values). */
export function evaluate(column: Expression, batch: RecordBatch, ctx: EvalContext): Data {
  return analyse(column, batch.schema).bound.evaluate(batch, ctx);
}

/** The bound predicate, or an ANALYSIS error unless it is boolean. */
function predicateTree(predicate: Expression, schema: Schema): Bound {
  const { tree, bound } = analyse(predicate, schema);
  if (tree.type !== 'boolean' && tree.type !== 'null') {
    throw new SluiceError(
      'ANALYSIS',
      `filter condition '${bound.field.name}' is of type ${tree.type}, not boolean`,
      "compare the value, e.g. filter(col('amount').gt(10))",
    );
  }
  return tree;
}

/** Throws an ANALYSIS error unless `predicate` is a boolean expression over `schema`. */
export function checkPredicate(predicate: Expression, schema: Schema): void {
  predicateTree(predicate, schema);
}

/** Indices of the rows where `predicate` is true (null counts as false), ascending. */
export function filterIndices(predicate: Expression, batch: RecordBatch, ctx: EvalContext): Int32Array {
  const tree = predicateTree(predicate, batch.schema);
  return selectedRows(run(tree, batch, ctx, batch.numRows), batch.numRows);
}

function selectedRows(v: Val, n: number): Int32Array {
  const t = truthy(v, n);
  let count = 0;
  for (let i = 0; i < n; i++) count += t[i];
  // Branch-free: every row writes its index, only selected rows advance; the spare slot takes the rest.
  const out = new Int32Array(count + 1);
  let k = 0;
  for (let i = 0; i < n; i++) {
    out[k] = i;
    k += t[i];
  }
  return out.subarray(0, count);
}

/** A projection compiled once per input schema: evaluates each column and assembles a batch. */
export interface Projection {
  readonly schema: Schema;
  apply(batch: RecordBatch, ctx: EvalContext): RecordBatch;
}

/** Binds `columns` to `schema` and returns the output schema with an evaluator for whole batches. */
export function compileProjection(columns: readonly Expression[], schema: Schema): Projection {
  const bound = columns.map((c) => bindExpression(c, schema));
  const out = new Schema(bound.map((b) => b.field));
  return {
    schema: out,
    apply: (batch, ctx) =>
      batchOf(
        out,
        bound.map((b) => b.evaluate(batch, ctx)),
        batch.numRows,
      ),
  };
}

/** A filter compiled once per input schema: rows where the predicate is true. */
export interface CompiledFilter {
  indices(batch: RecordBatch, ctx: EvalContext): Int32Array;
}

/** Binds and checks a predicate once; evaluation then skips analysis. */
export function compileFilter(predicate: Expression, schema: Schema): CompiledFilter {
  const tree = predicateTree(predicate, schema);
  return { indices: (batch, ctx) => selectedRows(run(tree, batch, ctx, batch.numRows), batch.numRows) };
}

function evaluateBound(tree: Bound, batch: RecordBatch, ctx: EvalContext): Data {
  return dataOf(tree, batch, ctx, batch.numRows);
}

/**
 * A value as an Arrow column: a column reference is the column as it is, neither read nor copied (a struct of
 * columns does not read their bytes, which an exchange may have left in the column they came from).
 */
function dataOf(tree: Bound, batch: RecordBatch, ctx: EvalContext, n: number): Data {
  let node = tree;
  while (node.k === 'alias') node = node.c;
  if (node.k === 'ref') return refData(batch, node.path);
  return toData(run(tree, batch, ctx, n), tree.type, tree.arrow, n);
}

/** The data of a column path; a field is null where an enclosing struct is null. */
function refData(batch: RecordBatch, path: number[]): Data {
  let d = batch.data.children[path[0]];
  let parents = null as Uint8Array | null;
  for (let i = 1; i < path.length; i++) {
    parents = andValid(parents, validOfData(d), d.length);
    d = d.children[path[i]];
  }
  return withValidity(d, parents);
}

/** Applies a kernel to values of which all may be scalars: then it runs on one row and stays a scalar. */
function fold(args: Val[], types: LType[], kernel: (vals: Val[], n: number) => Val, n: number): Val {
  if (args.every((a) => a.k === 'scalar')) {
    return {
      k: 'scalar',
      v: scalarOf(
        kernel(
          args.map((a, i) => materialise(a, types[i], 1)),
          1,
        ),
      ),
    };
  }
  return kernel(args, n);
}

/** The string functions worth computing once per batch however often a batch's expressions use them. */
const SHARED_KINDS: ReadonlySet<Bound['k']> = new Set(['changeCase', 'regexpExtract', 'splitPart', 'dateFormat']);

/**
 * Values of shared subexpressions (one Bound node, see bind) for the batch evaluated last: a projection's or a
 * CASE's repeated `lower(col)` or `regexp_extract(...)` is computed once per batch. Evaluation is synchronous,
 * so one batch at a time is enough; the next batch replaces it.
 */
let sharedBatch: RecordBatch | null = null;
let sharedVals = new Map<Bound, Val>();

function run(b: Bound, batch: RecordBatch, ctx: EvalContext, n: number): Val {
  if (!SHARED_KINDS.has(b.k)) return compute(b, batch, ctx, n);
  if (sharedBatch !== batch) {
    sharedBatch = batch;
    sharedVals = new Map();
  }
  let v = sharedVals.get(b);
  if (v === undefined) {
    v = compute(b, batch, ctx, n);
    sharedVals.set(b, v);
  }
  return v;
}

function compute(b: Bound, batch: RecordBatch, ctx: EvalContext, n: number): Val {
  switch (b.k) {
    case 'ref':
      return loadData(refData(batch, b.path), b.type);
    case 'lit':
      return { k: 'scalar', v: b.value };
    case 'now':
      return { k: 'scalar', v: ctx.batchTimestampMs };
    case 'alias':
      return run(b.c, batch, ctx, n);
    case 'arith':
      return fold(
        [run(b.l, batch, ctx, n), run(b.r, batch, ctx, n)],
        [b.l.type, b.r.type],
        ([l, r], m) => arithmetic(b.op, b.type, l, r, m),
        n,
      );
    case 'cmp':
      if (b.operandType === 'null') return { k: 'scalar', v: b.op === '<=>' ? true : null };
      return fold(
        [run(b.l, batch, ctx, n), run(b.r, batch, ctx, n)],
        [b.operandType, b.operandType],
        ([l, r], m) => compare(b.op, b.operandType, l, r, m),
        n,
      );
    case 'logic':
      return fold(
        [run(b.l, batch, ctx, n), run(b.r, batch, ctx, n)],
        ['boolean', 'boolean'],
        ([l, r], m) => logical(b.op, l, r, m),
        n,
      );
    case 'not':
      return not(run(b.c, batch, ctx, n), n);
    case 'isNull':
      return isNull(run(b.c, batch, ctx, n), b.negated, n);
    case 'cast':
      return cast(run(b.c, batch, ctx, n), b.c.type, b.type, n);
    case 'field': {
      const parent = run(b.c, batch, ctx, n);
      if (parent.k === 'scalar') return { k: 'scalar', v: null };
      if (parent.k !== 'data') throw new Error('internal: field of a non-struct value');
      const struct = parent.data;
      return loadData(withValidity(struct.children[b.index], validOfData(struct)), b.type);
    }
    case 'case':
      return caseWhen(b, batch, ctx, n);
    case 'coalesce': {
      const vals = b.args.map((a) => run(a, batch, ctx, n));
      const types = b.args.map(() => b.type);
      return fold(
        vals,
        types,
        (vs, m) => {
          const pick = new Int32Array(m).fill(-1);
          for (let k = vs.length - 1; k >= 0; k--) {
            const valid = validOf(vs[k], m);
            for (let i = 0; i < m; i++) if (!valid || valid[i]) pick[i] = k;
          }
          return pickRows(vs, pick, b.type, b.arrow, m);
        },
        n,
      );
    }
    case 'parseTimestamp':
      return parseTimestamps(run(b.c, batch, ctx, n), b.format, n);
    case 'epochToTimestamp':
      return epochToTimestamp(run(b.c, batch, ctx, n), b.msPerUnit, n);
    case 'unixMillis':
      return unixMillis(run(b.c, batch, ctx, n), n);
    case 'concat':
      return concatStrings(
        b.args.map((a) => run(a, batch, ctx, n)),
        n,
      );
    case 'changeCase':
      return changeCase(run(b.c, batch, ctx, n), b.upper, n);
    case 'length':
      return lengthOf(run(b.c, batch, ctx, n), b.c.type, n);
    case 'abs':
      return absolute(run(b.c, batch, ctx, n), b.type, n);
    case 'round':
      return roundValue(run(b.c, batch, ctx, n), b.type, b.digits, n);
    case 'dateFormat':
      return formatTimestamps(run(b.c, batch, ctx, n), b.formatter, n);
    case 'hour':
      return hourOf(run(b.c, batch, ctx, n), n);
    case 'regexpExtract':
      return regexpExtract(run(b.c, batch, ctx, n), b.re, b.idx, n);
    case 'splitPart':
      return splitPart(run(b.c, batch, ctx, n), b.delimiter, b.part, n);
    case 'struct': {
      const children = b.args.map((a) => dataOf(a, batch, ctx, n));
      return { k: 'data', data: mkData({ type: b.arrow, length: n, nullCount: 0, children }) };
    }
    case 'in':
      return isIn(b, batch, ctx, n);
    case 'udf':
      return applyUserFunction(
        b.name,
        b.fn,
        b.args.map((a) => ({ v: run(a, batch, ctx, n), t: a.type })),
        b.type,
        n,
      );
  }
}

/** IN: the value, computed once, compared with each candidate; the comparisons ORed (three-valued). */
function isIn(b: Extract<Bound, { k: 'in' }>, batch: RecordBatch, ctx: EvalContext, n: number): Val {
  const c = run(b.c, batch, ctx, n);
  const t = b.operandType;
  let acc: Val | null = null;
  for (const v of b.values) {
    const eq = fold([c, run(v, batch, ctx, n)], [t, t], ([l, r], m) => compare('=', t, l, r, m), n);
    acc = acc === null ? eq : fold([acc, eq], ['boolean', 'boolean'], ([l, r], m) => logical('OR', l, r, m), n);
  }
  return acc as Val;
}

/** CASE WHEN: the first branch whose condition is true picks the row's value. */
function caseWhen(b: Extract<Bound, { k: 'case' }>, batch: RecordBatch, ctx: EvalContext, n: number): Val {
  const conds = b.branches.map((br) => run(br.when, batch, ctx, n));
  const values = [
    ...b.branches.map((br) => run(br.then, batch, ctx, n)),
    ...(b.otherwise ? [run(b.otherwise, batch, ctx, n)] : []),
  ];
  const all = [...conds, ...values];
  const types: LType[] = [...conds.map((): LType => 'boolean'), ...values.map(() => b.type)];
  return fold(
    all,
    types,
    (vs, m) => {
      const pick = new Int32Array(m).fill(b.otherwise ? b.branches.length : -1);
      const done = new Uint8Array(m);
      for (let k = 0; k < b.branches.length; k++) {
        const t = truthy(vs[k], m);
        for (let i = 0; i < m; i++)
          if (t[i] && !done[i]) {
            pick[i] = k;
            done[i] = 1;
          }
      }
      return pickRows(vs.slice(b.branches.length), pick, b.type, b.arrow, m);
    },
    n,
  );
}
