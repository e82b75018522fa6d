import { Field, Schema, type Struct, Type } from 'apache-arrow';
import { SluiceError } from '../errors.js';
import type { Expression, ExprNode } from './expression.js';
import { splitColumnName } from './expression.js';
import { resultField } from './expression-eval.js';
import { ltypeOf } from './expression-vectors.js';
import type { JoinNode } from './logical-plan.js';

/** What resolving a join needs of its node: the type, the using-columns or condition, and the sides' aliases. */
export type JoinDefinition = Pick<
  JoinNode,
  'joinType' | 'using' | 'condition' | 'leftAlias' | 'rightAlias' | 'staticFirst'
>;

/**
 * A join resolved against the schemas of its two sides (Spark's ExtractEquiJoinKeys): the equality keys it
 * hashes on, what remains of the condition, and which columns of each side make up its output.
 */
export interface ResolvedJoin {
  /** Key expressions over the left side's columns, each compared for equality with the same-index right key. */
  leftKeys: Expression[];
  rightKeys: Expression[];
  /** The non-equality rest of the condition, over `pairSchema` (left columns `_l<i>`, right columns `_r<i>`). */
  residual?: Expression;
  pairSchema: Schema;
  /** Output columns: left column indexes, then right column indexes (none for semi and anti joins). */
  leftOut: number[];
  rightOut: number[];
  /** The output's columns by side and index, in order: `leftOut` then `rightOut`, or the right's first. */
  columns: { side: 'left' | 'right'; index: number }[];
  schema: Schema;
}

function analysisError(message: string, hint: string): SluiceError {
  return new SluiceError('ANALYSIS', message, hint);
}

const names = (s: Schema) => s.fields.map((f) => f.name).join(', ');

/** The ANDed parts of a condition. */
function conjuncts(n: ExprNode): ExprNode[] {
  return n.kind === 'op' && n.op === 'AND' ? [...conjuncts(n.left), ...conjuncts(n.right)] : [n];
}

/** `n` with every column name replaced by `rename(name)`. */
function renameColumns(n: ExprNode, rename: (name: string) => string): ExprNode {
  const r = (c: ExprNode) => renameColumns(c, rename);
  switch (n.kind) {
    case 'col':
      return { kind: 'col', name: rename(n.name) };
    case 'lit':
      return n;
    case 'op':
      return { ...n, left: r(n.left), right: r(n.right) };
    case 'not':
    case 'isNull':
    case 'cast':
    case 'alias':
    case 'field':
      return { ...n, child: r(n.child) };
    case 'case':
      return {
        ...n,
        // biome-ignore lint/suspicious/noThenProperty: CASE WHEN's THEN, an expression, never a function
        branches: n.branches.map((b) => ({ when: r(b.when), then: r(b.then) })),
        otherwise: n.otherwise && r(n.otherwise),
      };
    case 'call':
    case 'udf':
      return { ...n, args: n.args.map(r) };
  }
}

function columnNames(n: ExprNode, out: string[] = []): string[] {
  renameColumns(n, (name) => {
    out.push(name);
    return name;
  });
  return out;
}

/** A dotted name again from its parts, quoting parts that hold dots. */
function joinName(parts: string[]): string {
  return parts.map((p) => (p.includes('.') || p.includes('`') ? `\`${p.replaceAll('`', '``')}\`` : p)).join('.');
}

type Side = 'left' | 'right';

/** Which side a column of the condition names, and its name there (without the side's alias). */
function sideOf(node: JoinDefinition, left: Schema, right: Schema, name: string): { side: Side; name: string } {
  const parts = splitColumnName(name);
  if (parts.length > 1 && node.leftAlias !== node.rightAlias) {
    if (parts[0] === node.leftAlias) return { side: 'left', name: joinName(parts.slice(1)) };
    if (parts[0] === node.rightAlias) return { side: 'right', name: joinName(parts.slice(1)) };
  }
  const top = name.includes('`') ? parts[0] : left.fields.some((f) => f.name === name) ? name : parts[0];
  const inLeft = left.fields.some((f) => f.name === top);
  const inRight = right.fields.some((f) => f.name === top || f.name === name);
  if (inLeft && inRight) {
    throw analysisError(
      `column '${name}' in the join condition is ambiguous: both sides have it`,
      `name each side with alias() and qualify the column, e.g. left.alias('l').join(right.alias('r'), col('l.${name}').eq(col('r.${name}'))), or join on ['${name}']`,
    );
  }
  if (inLeft) return { side: 'left', name };
  if (inRight) return { side: 'right', name };
  throw analysisError(
    `column '${name}' of the join condition is on neither side; left: ${names(left)}; right: ${names(right)}`,
    node.leftAlias || node.rightAlias
      ? `qualify columns with the sides' aliases (${[node.leftAlias, node.rightAlias].filter(Boolean).join(', ')}), e.g. col('${node.leftAlias ?? node.rightAlias}.x')`
      : 'check the spelling against the schemas',
  );
}

/** The keys of an equality between one side's columns and the other's, or null when `n` is not one. */
function equiKeys(node: JoinDefinition, left: Schema, right: Schema, n: ExprNode): [ExprNode, ExprNode] | null {
  if (n.kind !== 'op' || n.op !== '=') return null;
  const sides = (e: ExprNode) => new Set(columnNames(e).map((c) => sideOf(node, left, right, c).side));
  const a = sides(n.left);
  const b = sides(n.right);
  if (a.size !== 1 || b.size !== 1) return null;
  const [sa] = a;
  const [sb] = b;
  if (sa === sb) return null;
  const strip = (e: ExprNode) => renameColumns(e, (c) => sideOf(node, left, right, c).name);
  return sa === 'left' ? [strip(n.left), strip(n.right)] : [strip(n.right), strip(n.left)];
}

const NUMERIC = new Set(['int', 'long', 'double', 'timestamp']);

/**
 * `keys` with every struct-valued key replaced by its fields in order (a window's start and end), so that a
 * join on struct columns, e.g. two streams' windows, hashes and compares plain values.
 */
export function expandStructKeys(keys: readonly Expression[], schema: Schema): Expression[] {
  return keys.flatMap((k) => {
    const f = resultField(k, schema);
    if (f.type.typeId !== Type.Struct) return [k];
    const fields = (f.type as Struct).children.map((c) => ({
      expr: { kind: 'field' as const, child: k.expr, name: c.name },
    }));
    return expandStructKeys(fields, schema);
  });
}

/** Key pairs must compare as numbers, strings or booleans on both sides (sluice does not cast join keys). */
function checkKeyTypes(l: Expression, r: Expression, left: Schema, right: Schema): void {
  const lf = resultField(l, left);
  const rf = resultField(r, right);
  const lt = ltypeOf(lf.type);
  const rt = ltypeOf(rf.type);
  const kind = (t: string) => (NUMERIC.has(t) ? 'number' : t === 'string' || t === 'boolean' ? t : null);
  if (kind(lt) === null || kind(rt) === null) {
    throw analysisError(
      `join key ${lf.name} (${lt}) = ${rf.name} (${rt}) has a type a join cannot hash`,
      'join on number, timestamp, string or boolean columns',
    );
  }
  if (kind(lt) !== kind(rt)) {
    throw analysisError(
      `join key ${lf.name} is ${lt} on the left but ${rf.name} is ${rt} on the right`,
      `cast one side first, e.g. col('${rf.name}').cast('${lt}')`,
    );
  }
}

/**
 * Resolves `node` against its sides' schemas: using-columns appear once, first, taken from the left side (as
 * Spark does for inner and left outer joins); with a condition the output is every left column then every
 * right column. Semi and anti joins give the left columns only. An output with two columns of one name is
 * refused, where Spark would make later references to it ambiguous.
 */
export function resolveJoin(node: JoinDefinition, left: Schema, right: Schema): ResolvedJoin {
  const leftKeys: Expression[] = [];
  const rightKeys: Expression[] = [];
  const rest: ExprNode[] = [];
  let leftOut = left.fields.map((_, i) => i);
  let rightOut = right.fields.map((_, i) => i);
  if (node.using) {
    for (const u of node.using) {
      const li = left.fields.findIndex((f) => f.name === u);
      const ri = right.fields.findIndex((f) => f.name === u);
      if (li < 0 || ri < 0) {
        throw analysisError(
          `using column '${u}' is not on the ${li < 0 ? 'left' : 'right'} side of the join; it has: ${names(li < 0 ? left : right)}`,
          "join on columns both sides have, or give a condition, e.g. col('l.id').eq(col('r.user_id'))",
        );
      }
      leftKeys.push({ expr: { kind: 'col', name: `\`${u.replaceAll('`', '``')}\`` } });
      rightKeys.push({ expr: { kind: 'col', name: `\`${u.replaceAll('`', '``')}\`` } });
    }
    const usingIdx = node.using.map((u) => left.fields.findIndex((f) => f.name === u));
    leftOut = [...usingIdx, ...leftOut.filter((i) => !usingIdx.includes(i))];
    rightOut = rightOut.filter((i) => !node.using!.includes(right.fields[i].name));
  } else if (node.condition) {
    for (const c of conjuncts(node.condition.expr)) {
      const keys = equiKeys(node, left, right, c);
      if (keys) {
        leftKeys.push({ expr: keys[0] });
        rightKeys.push({ expr: keys[1] });
      } else rest.push(c);
    }
  }
  if (leftKeys.length === 0) {
    throw analysisError(
      'a join needs an equality between a column of each side in its condition',
      "join on column names (join(right, ['id'])) or on an equality, e.g. col('l.id').eq(col('r.id'))",
    );
  }
  for (let k = leftKeys.length - 1; k >= 0; k--) {
    const l = expandStructKeys([leftKeys[k]], left);
    const r = expandStructKeys([rightKeys[k]], right);
    if (l.length !== r.length) {
      throw analysisError(
        `join key ${resultField(leftKeys[k], left).name} has ${l.length} fields on the left but ${resultField(rightKeys[k], right).name} has ${r.length} on the right`,
        'join structs of the same fields, e.g. windows of the same duration',
      );
    }
    leftKeys.splice(k, 1, ...l);
    rightKeys.splice(k, 1, ...r);
  }
  for (let k = 0; k < leftKeys.length; k++) checkKeyTypes(leftKeys[k], rightKeys[k], left, right);
  if (node.joinType === 'left_semi' || node.joinType === 'left_anti') rightOut = [];
  const nullableRight = node.joinType === 'left_outer';
  const lefts = leftOut.map((index) => ({ side: 'left' as const, index }));
  const rights = rightOut.map((index) => ({ side: 'right' as const, index }));
  // With the static side first, using-columns still lead, then the static side's columns, then the stream's.
  const usingCount = node.using?.length ?? 0;
  const columns = node.staticFirst
    ? [...lefts.slice(0, usingCount), ...rights, ...lefts.slice(usingCount)]
    : [...lefts, ...rights];
  const fields = columns.map(({ side, index }) => {
    if (side === 'left') return left.fields[index];
    const f = right.fields[index];
    return nullableRight && !f.nullable ? new Field(f.name, f.type, true, f.metadata) : f;
  });
  const seen = new Set<string>();
  for (const f of fields) {
    if (seen.has(f.name)) {
      throw analysisError(
        `both sides of the join have a column '${f.name}', so the join's output would have it twice`,
        `join on ['${f.name}'] to keep it once, or rename one side's column first, e.g. right.select(col('${f.name}').alias('right_${f.name}'), ...)`,
      );
    }
    seen.add(f.name);
  }
  const pairSchema = new Schema([
    ...left.fields.map((f, i) => new Field(`_l${i}`, f.type, true)),
    ...right.fields.map((f, i) => new Field(`_r${i}`, f.type, true)),
  ]);
  let residual: Expression | undefined;
  if (rest.length > 0) {
    const toPair = (name: string) => {
      const s = sideOf(node, left, right, name);
      const schema = s.side === 'left' ? left : right;
      const parts = splitColumnName(s.name);
      const exact = schema.fields.findIndex((f) => f.name === s.name);
      const at = exact >= 0 ? exact : schema.fields.findIndex((f) => f.name === parts[0]);
      const tail = exact >= 0 ? [] : parts.slice(1);
      return joinName([`_${s.side === 'left' ? 'l' : 'r'}${at}`, ...tail]);
    };
    const expr = rest
      .map((c) => renameColumns(c, toPair))
      .reduce((a, b) => ({ kind: 'op', op: 'AND', left: a, right: b }));
    residual = { expr };
    resultField(residual, pairSchema);
  }
  return { leftKeys, rightKeys, residual, pairSchema, leftOut, rightOut, columns, schema: new Schema(fields) };
}
