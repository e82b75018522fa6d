import { SluiceError } from '../errors.js';

/**
 * The JSON form of column expressions: node types, their validation and their Spark-like text. The api's
 * Column builds these trees; analysis and evaluation (expression-bind.ts, expression-eval.ts) read them.
 */

/** Target types of `cast` (Spark's names; 'bigint', 'integer', 'float', 'bool', 'varchar' are accepted too). */
export type CastTypeName = 'string' | 'double' | 'long' | 'int' | 'boolean' | 'timestamp';

export type ArithmeticOp = '+' | '-' | '*' | '/' | '%';
export type ComparisonOp = '=' | '!=' | '<' | '<=' | '>' | '>=' | '<=>';
export type LogicalOp = 'AND' | 'OR';
export type BinaryOp = ArithmeticOp | ComparisonOp | LogicalOp;
export type FunctionName =
  | 'coalesce'
  | 'to_timestamp'
  | 'timestamp_seconds'
  | 'timestamp_millis'
  | 'unix_timestamp'
  | 'unix_millis'
  | 'current_timestamp'
  | 'concat'
  | 'lower'
  | 'upper'
  | 'length'
  | 'abs'
  | 'round'
  | 'date_format'
  | 'hour'
  | 'regexp_extract'
  | 'split_part'
  | 'struct'
  | 'window'
  | 'isin';
export type LiteralType = 'int' | 'long' | 'double' | 'string' | 'boolean' | 'timestamp' | 'interval' | 'null';

/** The JSON form of an expression. Longs are decimal strings, timestamps epoch milliseconds, intervals milliseconds. */
export type ExprNode =
  | { kind: 'col'; name: string }
  | { kind: 'lit'; type: LiteralType; value: string | number | boolean | null }
  | { kind: 'op'; op: BinaryOp; left: ExprNode; right: ExprNode }
  | { kind: 'not'; child: ExprNode }
  | { kind: 'isNull'; child: ExprNode; negated: boolean }
  | { kind: 'cast'; child: ExprNode; to: CastTypeName }
  | { kind: 'alias'; child: ExprNode; name: string }
  | { kind: 'field'; child: ExprNode; name: string }
  | { kind: 'case'; branches: { when: ExprNode; then: ExprNode }[]; otherwise: ExprNode | null }
  | { kind: 'call'; fn: FunctionName; args: ExprNode[] }
  | { kind: 'udf'; name: string; fn: UserFunction; returnType: CastTypeName; args: ExprNode[] };

/** The function of a user-defined column function: JS values in (null never), one JS value out. */
export type UserFunction = (...args: never[]) => unknown;

/** A column expression as plan nodes hold it: the api's Column is one; the plan reads only its frozen tree. */
export interface Expression {
  readonly expr: ExprNode;
}

const CAST_ALIASES: Record<string, CastTypeName> = {
  string: 'string',
  varchar: 'string',
  text: 'string',
  double: 'double',
  float: 'double',
  long: 'long',
  bigint: 'long',
  int: 'int',
  integer: 'int',
  boolean: 'boolean',
  bool: 'boolean',
  timestamp: 'timestamp',
};

const ARITHMETIC: readonly string[] = ['+', '-', '*', '/', '%'];
const COMPARISON: readonly string[] = ['=', '!=', '<', '<=', '>', '>=', '<=>'];
const FUNCTIONS: readonly string[] = [
  'coalesce',
  'to_timestamp',
  'timestamp_seconds',
  'timestamp_millis',
  'unix_timestamp',
  'unix_millis',
  'current_timestamp',
  'concat',
  'lower',
  'upper',
  'length',
  'abs',
  'round',
  'date_format',
  'hour',
  'regexp_extract',
  'split_part',
  'struct',
  'window',
  'isin',
];

/** True for arithmetic operators. */
export function isArithmeticOp(op: BinaryOp): op is ArithmeticOp {
  return ARITHMETIC.includes(op);
}

/** True for comparison operators. */
export function isComparisonOp(op: BinaryOp): op is ComparisonOp {
  return COMPARISON.includes(op);
}

/** Normalises a user's cast type name, or throws naming the accepted ones. */
export function castTypeName(type: string): CastTypeName {
  const t = CAST_ALIASES[String(type).toLowerCase()];
  if (!t) {
    throw new SluiceError(
      'BAD_EXPRESSION',
      `cannot cast to unknown type '${type}'`,
      "use one of 'string', 'double', 'long', 'int', 'boolean', 'timestamp'",
    );
  }
  return t;
}

function bad(where: string, what: string): never {
  throw new SluiceError(
    'BAD_EXPRESSION',
    `not a sluice column expression at ${where}: ${what}`,
    'build expressions with col(), lit() and the Column methods, and ship them with JSON.stringify',
  );
}

/** The expression tree in `n` (parsed JSON), checked node by node; throws naming the first bad node. */
export function checkExprNode(n: unknown, where: string): ExprNode {
  if (!n || typeof n !== 'object') bad(where, 'expected an object');
  const o = n as Record<string, unknown>;
  const str = (k: string): string =>
    typeof o[k] === 'string' ? (o[k] as string) : bad(where, `'${k}' must be a string`);
  const child = (k: string): ExprNode => checkExprNode(o[k], `${where}.${k}`);
  switch (o.kind) {
    case 'col':
      return { kind: 'col', name: str('name') };
    case 'lit': {
      const type = o.type as LiteralType;
      const v = o.value;
      const ok =
        (type === 'null' && v === null) ||
        (type === 'string' && typeof v === 'string') ||
        (type === 'boolean' && typeof v === 'boolean') ||
        (type === 'int' && Number.isInteger(v)) ||
        (type === 'long' && typeof v === 'string' && /^-?\d+$/.test(v)) ||
        (type === 'double' && (typeof v === 'number' || v === 'NaN' || v === 'Infinity' || v === '-Infinity')) ||
        ((type === 'timestamp' || type === 'interval') && typeof v === 'number');
      if (!ok) bad(where, `literal of type ${String(type)} with value ${JSON.stringify(v)}`);
      return { kind: 'lit', type, value: v as string | number | boolean | null };
    }
    case 'op': {
      const op = o.op as BinaryOp;
      if (!ARITHMETIC.includes(op) && !COMPARISON.includes(op) && op !== 'AND' && op !== 'OR')
        bad(where, `unknown operator ${String(op)}`);
      return { kind: 'op', op, left: child('left'), right: child('right') };
    }
    case 'not':
      return { kind: 'not', child: child('child') };
    case 'isNull':
      if (typeof o.negated !== 'boolean') bad(where, "'negated' must be a boolean");
      return { kind: 'isNull', child: child('child'), negated: o.negated as boolean };
    case 'cast':
      return { kind: 'cast', child: child('child'), to: castTypeName(str('to')) };
    case 'alias':
      return { kind: 'alias', child: child('child'), name: str('name') };
    case 'field':
      return { kind: 'field', child: child('child'), name: str('name') };
    case 'case': {
      if (!Array.isArray(o.branches) || o.branches.length === 0) bad(where, 'a case needs at least one branch');
      const branches = (o.branches as unknown[]).map((b, i) => {
        const br = (b ?? {}) as Record<string, unknown>;
        return {
          when: checkExprNode(br.when, `${where}.branches[${i}].when`),
          // biome-ignore lint/suspicious/noThenProperty: CASE WHEN's THEN, an expression, never a function
          then: checkExprNode(br.then, `${where}.branches[${i}].then`),
        };
      });
      return { kind: 'case', branches, otherwise: o.otherwise === null ? null : child('otherwise') };
    }
    case 'call': {
      const fn = o.fn as FunctionName;
      if (!FUNCTIONS.includes(fn)) bad(where, `unknown function ${String(fn)}`);
      if (!Array.isArray(o.args)) bad(where, "'args' must be an array");
      return { kind: 'call', fn, args: (o.args as unknown[]).map((a, i) => checkExprNode(a, `${where}.args[${i}]`)) };
    }
    case 'udf':
      return bad(where, `user-defined function ${String(o.name)} cannot be rebuilt from its JSON form`);
    default:
      return bad(where, `unknown kind ${JSON.stringify(o.kind)}`);
  }
}

/** The name of the first user-defined function in an expression, or undefined: such a tree cannot leave its thread. */
export function userFunctionIn(node: ExprNode): string | undefined {
  switch (node.kind) {
    case 'udf':
      return node.name;
    case 'col':
    case 'lit':
      return undefined;
    case 'op':
      return userFunctionIn(node.left) ?? userFunctionIn(node.right);
    case 'not':
    case 'isNull':
    case 'cast':
    case 'alias':
    case 'field':
      return userFunctionIn(node.child);
    case 'case':
      for (const b of node.branches) {
        const found = userFunctionIn(b.when) ?? userFunctionIn(b.then);
        if (found) return found;
      }
      return node.otherwise ? userFunctionIn(node.otherwise) : undefined;
    case 'call':
      for (const a of node.args) {
        const found = userFunctionIn(a);
        if (found) return found;
      }
      return undefined;
  }
}

const SQL_TYPE: Record<CastTypeName, string> = {
  string: 'STRING',
  double: 'DOUBLE',
  long: 'BIGINT',
  int: 'INT',
  boolean: 'BOOLEAN',
  timestamp: 'TIMESTAMP',
};

/** Text of a literal as Spark prints it in generated column names. */
function literalText(node: Extract<ExprNode, { kind: 'lit' }>): string {
  switch (node.type) {
    case 'null':
      return 'NULL';
    case 'interval':
      return `INTERVAL '${node.value} milliseconds'`;
    case 'timestamp':
      return `TIMESTAMP '${new Date(node.value as number)
        .toISOString()
        .replace('T', ' ')
        .replace(/\.000Z$|Z$/, '')}'`;
    default:
      return String(node.value);
  }
}

/**
 * Spark-like text of an expression, used as the generated name of an unnamed result column: `(a + 1)`,
 * `(NOT (a = b))`, `CAST((a + 1) AS STRING)`, `CASE WHEN (a > 1) THEN x ELSE y END`, `lower(name)`.
 * `nameOf` names column references (the evaluator passes the resolved name).
 */
export function exprText(
  node: ExprNode,
  nameOf: (n: Extract<ExprNode, { kind: 'col' }>) => string = defaultColName,
): string {
  const t = (n: ExprNode): string => exprText(n, nameOf);
  switch (node.kind) {
    case 'col':
      return nameOf(node);
    case 'lit':
      return literalText(node);
    case 'op':
      if (node.op === '!=') return `(NOT (${t(node.left)} = ${t(node.right)}))`;
      return `(${t(node.left)} ${node.op} ${t(node.right)})`;
    case 'not':
      return `(NOT ${t(node.child)})`;
    case 'isNull':
      return `(${t(node.child)} IS ${node.negated ? 'NOT ' : ''}NULL)`;
    case 'cast':
      return isNamed(node.child) ? t(node.child) : `CAST(${t(node.child)} AS ${SQL_TYPE[node.to]})`;
    case 'alias':
      return node.name;
    case 'field':
      return `${t(node.child)}.${node.name}`;
    case 'case': {
      const whens = node.branches.map((b) => ` WHEN ${t(b.when)} THEN ${t(b.then)}`).join('');
      return `CASE${whens}${node.otherwise ? ` ELSE ${t(node.otherwise)}` : ''} END`;
    }
    case 'call':
      if (node.fn === 'isin') return `(${t(node.args[0])} IN (${node.args.slice(1).map(t).join(', ')}))`;
      return `${node.fn}(${node.args.map(t).join(', ')})`;
    case 'udf':
      return `${node.name}(${node.args.map(t).join(', ')})`;
  }
}

/** Spark keeps the name of a cast's child when the child is a named column (so `col('value').cast('string')` is `value`). */
function isNamed(node: ExprNode): boolean {
  return node.kind === 'col' || node.kind === 'alias' || node.kind === 'field';
}

/** The last part of a dotted name, without backticks: `device.type` → `type`. */
function defaultColName(node: Extract<ExprNode, { kind: 'col' }>): string {
  const parts = splitColumnName(node.name);
  return parts[parts.length - 1];
}

/** Splits `a.b.c` into parts; backticks quote a part that contains dots (`` `a.b`.c ``). */
export function splitColumnName(name: string): string[] {
  if (!name.includes('`')) return name.split('.');
  const parts: string[] = [];
  let cur = '';
  let quoted = false;
  for (let i = 0; i < name.length; i++) {
    const c = name[i];
    if (c === '`') {
      if (quoted && name[i + 1] === '`') {
        cur += '`';
        i++;
      } else quoted = !quoted;
    } else if (c === '.' && !quoted) {
      parts.push(cur);
      cur = '';
    } else cur += c;
  }
  parts.push(cur);
  return parts;
}
