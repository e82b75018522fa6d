import { type DataType, Field, type Schema, Struct, Type } from 'apache-arrow';
import { SluiceError } from '../errors.js';
import {
  type ArithmeticOp,
  type CastTypeName,
  type ComparisonOp,
  type ExprNode,
  exprText,
  isArithmeticOp,
  isComparisonOp,
  type LogicalOp,
  splitColumnName,
  type UserFunction,
} from './expression.js';
import { type TimestampFormatter, timestampFormatter, timestampParser } from './expression-time.js';
import { canonicalArrow, type LType, ltypeOf, type Scalar } from './expression-vectors.js';

/**
 * Analysis of column expressions against a schema: resolves column names, infers types, inserts Spark's
 * implicit casts (int + double → double, string compared with a number → double, …) and rejects what cannot
 * run, all before any data is read. The evaluator then only follows the bound tree.
 */

interface BoundBase {
  /** Logical type of the result. */
  type: LType;
  /** Arrow type the result is written as: the source's type for column references, canonical otherwise. */
  arrow: DataType;
}

export type Bound = BoundBase &
  (
    | { k: 'ref'; path: number[] }
    | { k: 'lit'; value: Scalar }
    | { k: 'arith'; op: ArithmeticOp; l: Bound; r: Bound }
    | { k: 'cmp'; op: ComparisonOp; l: Bound; r: Bound; operandType: LType }
    | { k: 'logic'; op: LogicalOp; l: Bound; r: Bound }
    | { k: 'not'; c: Bound }
    | { k: 'isNull'; negated: boolean; c: Bound }
    | { k: 'cast'; c: Bound }
    | { k: 'alias'; c: Bound }
    | { k: 'field'; c: Bound; index: number }
    | { k: 'case'; branches: { when: Bound; then: Bound }[]; otherwise: Bound | null }
    | { k: 'coalesce'; args: Bound[] }
    | { k: 'parseTimestamp'; c: Bound; format: string | null }
    | { k: 'epochToTimestamp'; c: Bound; msPerUnit: number }
    | { k: 'unixMillis'; c: Bound }
    | { k: 'now' }
    | { k: 'concat'; args: Bound[] }
    | { k: 'changeCase'; upper: boolean; c: Bound }
    | { k: 'length'; c: Bound }
    | { k: 'abs'; c: Bound }
    | { k: 'round'; c: Bound; digits: number }
    | { k: 'dateFormat'; c: Bound; formatter: TimestampFormatter }
    | { k: 'hour'; c: Bound }
    | { k: 'regexpExtract'; c: Bound; re: RegExp; idx: number }
    | { k: 'splitPart'; c: Bound; delimiter: string; part: number }
    | { k: 'struct'; args: Bound[] }
    | { k: 'in'; c: Bound; values: Bound[]; operandType: LType }
    | { k: 'udf'; name: string; fn: UserFunction; args: Bound[] }
  );

const SCALAR_TYPES: readonly LType[] = ['string', 'double', 'long', 'int', 'boolean', 'timestamp'];
const NUMERIC: readonly LType[] = ['int', 'long', 'double'];

function analysisError(message: string, hint: string): never {
  throw new SluiceError('ANALYSIS', message, hint);
}

function make<T extends Bound['k']>(
  k: T,
  type: LType,
  rest: Omit<Extract<Bound, { k: T }>, 'k' | 'type' | 'arrow'>,
  arrow?: DataType,
): Bound {
  return { k, type, arrow: arrow ?? canonicalArrow(type), ...rest } as unknown as Bound;
}

function describeType(b: Bound): string {
  return b.type === 'other' ? String(b.arrow) : b.type;
}

/** Edit distance, for "did you mean" hints. */
function distance(a: string, b: string): number {
  const dp = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = dp[0];
    dp[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = dp[j];
      dp[j] = Math.min(dp[j] + 1, dp[j - 1] + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = tmp;
    }
  }
  return dp[b.length];
}

function suggestion(name: string, candidates: string[]): string {
  let best = '';
  let bestD = Infinity;
  for (const c of candidates) {
    const d = distance(name.toLowerCase(), c.toLowerCase());
    if (d < bestD) {
      bestD = d;
      best = c;
    }
  }
  return best && bestD <= Math.max(2, Math.floor(name.length / 3)) ? `did you mean '${best}'? ` : '';
}

/** Index of `name` among fields: exact first, then case-insensitive (Spark's default) when unambiguous. */
function findField(fields: readonly Field[], name: string): number {
  const exact = fields.findIndex((f) => f.name === name);
  if (exact >= 0) return exact;
  const lower = name.toLowerCase();
  const matches = fields.flatMap((f, i) => (f.name.toLowerCase() === lower ? [i] : []));
  if (matches.length > 1) {
    analysisError(
      `column name '${name}' is ambiguous: it matches ${matches.map((i) => `'${fields[i].name}'`).join(' and ')}`,
      'use the exact spelling',
    );
  }
  return matches.length === 1 ? matches[0] : -1;
}

/** `problem` is the complete first phrase, e.g. "column 'x' does not exist". */
function missingField(problem: string, name: string, fields: readonly Field[]): never {
  const names = fields.map((f) => f.name);
  analysisError(
    `${problem}; available: ${names.length ? names.join(', ') : '(none)'}`,
    `${suggestion(name, names)}check the spelling against the schema`,
  );
}

/** Resolves a (possibly dotted) column name to a path of child indices and its field. */
export function resolveColumn(schema: Schema, name: string): { path: number[]; field: Field } {
  const top = name.includes('`') ? -1 : schema.fields.findIndex((f) => f.name === name);
  if (top >= 0) return { path: [top], field: schema.fields[top] };
  const parts = splitColumnName(name);
  const first = findField(schema.fields, parts[0]);
  if (first < 0) {
    const missing = parts.length > 1 ? parts[0] : name;
    missingField(`column '${missing}' does not exist`, missing, schema.fields);
  }
  const path = [first];
  let field = schema.fields[first];
  for (let i = 1; i < parts.length; i++) {
    if (field.type.typeId !== Type.Struct) {
      analysisError(
        `cannot take field '${parts[i]}' of column '${parts.slice(0, i).join('.')}' of type ${ltypeOf(field.type)}`,
        'only struct columns have fields',
      );
    }
    const children = (field.type as Struct).children;
    const j = findField(children, parts[i]);
    if (j < 0) missingField(`struct '${parts.slice(0, i).join('.')}' has no field '${parts[i]}'`, parts[i], children);
    path.push(j);
    field = children[j];
  }
  return { path, field };
}

/** The implicit cast of `b` to `t` (invisible in generated names, as in Spark). */
function coerce(b: Bound, t: LType, context: string): Bound {
  if (b.type === t) return b;
  checkCast(b, t, context);
  if (b.k === 'lit' && b.value === null) return make('lit', t, { value: null });
  return make('cast', t, { c: b });
}

function checkCast(b: Bound, to: LType, context: string): void {
  const from = b.type;
  const ok =
    from === to ||
    from === 'null' ||
    (from === 'binary' && to === 'string') ||
    (SCALAR_TYPES.includes(from) && SCALAR_TYPES.includes(to) && !(from === 'boolean' && to === 'timestamp'));
  if (!ok) {
    analysisError(
      `cannot convert ${describeType(b)} to ${to} in ${context}`,
      from === 'timestamp'
        ? 'use unix_timestamp(col) for seconds since the epoch'
        : 'cast to a compatible type first, or pick another column',
    );
  }
}

function widerNumeric(a: LType, b: LType): LType {
  if (a === 'double' || b === 'double') return 'double';
  if (a === 'long' || b === 'long') return 'long';
  return 'int';
}

/** Spark's common type of values that meet in CASE WHEN or coalesce. */
function commonValueType(args: Bound[], context: string): { type: LType; arrow?: DataType } {
  const typed = args.filter((a) => a.type !== 'null');
  if (typed.length === 0) return { type: 'null' };
  const first = typed[0];
  if (typed.every((a) => a.type === first.type)) {
    if (SCALAR_TYPES.includes(first.type)) return { type: first.type };
    if (typed.every((a) => String(a.arrow) === String(first.arrow))) return { type: first.type, arrow: first.arrow };
  } else if (typed.every((a) => NUMERIC.includes(a.type))) {
    return { type: typed.map((a) => a.type).reduce(widerNumeric) };
  } else if (typed.some((a) => a.type === 'string') && typed.every((a) => SCALAR_TYPES.includes(a.type))) {
    return { type: 'string' };
  }
  return analysisError(
    `${context} mixes incompatible types: ${[...new Set(typed.map(describeType))].join(', ')}`,
    "cast the values to one type, e.g. .cast('string')",
  );
}

/** The type both sides of a comparison are converted to. */
function comparisonType(l: Bound, r: Bound, context: string): LType {
  const a = l.type;
  const b = r.type;
  if (a === 'null') return b === 'null' ? 'null' : comparable(r, context);
  if (b === 'null') return comparable(l, context);
  if (a === b) return comparable(l, context);
  if (NUMERIC.includes(a) && NUMERIC.includes(b)) return widerNumeric(a, b);
  const pair = (x: LType, y: LType): boolean => (a === x && b === y) || (a === y && b === x);
  if (NUMERIC.some((t) => pair('timestamp', t)) || pair('timestamp', 'string')) return 'timestamp';
  if (NUMERIC.some((t) => pair('string', t))) return 'double';
  if (pair('string', 'boolean')) return 'boolean';
  return analysisError(
    `cannot compare ${describeType(l)} with ${describeType(r)} in ${context}`,
    'cast one side to the type of the other',
  );
}

function comparable(b: Bound, context: string): LType {
  if (!SCALAR_TYPES.includes(b.type)) {
    analysisError(
      `cannot compare values of type ${describeType(b)} in ${context}`,
      "compare a field of it, e.g. col('s.field')",
    );
  }
  return b.type;
}

/** Bound subexpressions by schema and expression node: a node used twice in a tree binds to one Bound. */
const boundNodes = new WeakMap<Schema, WeakMap<ExprNode, Bound>>();

/**
 * Binds an expression to a schema: resolution, type inference and implicit casts. A subexpression object used
 * more than once (e.g. `const c = lower(col('channel'))` compared in several branches) binds to one Bound
 * node, which evaluation computes once per batch.
 */
export function bind(node: ExprNode, schema: Schema): Bound {
  let byNode = boundNodes.get(schema);
  if (!byNode) {
    byNode = new WeakMap();
    boundNodes.set(schema, byNode);
  }
  let b = byNode.get(node);
  if (!b) {
    b = bindNode(node, schema);
    byNode.set(node, b);
  }
  return b;
}

function bindNode(node: ExprNode, schema: Schema): Bound {
  const text = (n: ExprNode): string => exprText(n);
  switch (node.kind) {
    case 'col': {
      const { path, field } = resolveColumn(schema, node.name);
      return make('ref', ltypeOf(field.type), { path }, field.type);
    }
    case 'lit':
      if (node.type === 'interval') {
        return analysisError(
          `${text(node)} is an interval: it can only be added to or subtracted from a timestamp`,
          "e.g. col('ts').minus(interval('10 seconds'))",
        );
      }
      return make('lit', node.type as LType, { value: literalValue(node) });
    case 'op': {
      if ((node.op === '+' || node.op === '-') && node.right.kind === 'lit' && node.right.type === 'interval')
        return shiftTimestamp(node, bind(node.left, schema), node.right.value as number);
      if (node.op === '+' && node.left.kind === 'lit' && node.left.type === 'interval')
        return shiftTimestamp(node, bind(node.right, schema), node.left.value as number);
      const l = bind(node.left, schema);
      const r = bind(node.right, schema);
      const where = `'${text(node)}'`;
      if (isArithmeticOp(node.op)) {
        const operand = (b: Bound): LType => {
          if (NUMERIC.includes(b.type) || b.type === 'null') return b.type;
          if (b.type === 'string') return 'double';
          return analysisError(
            `${node.op} needs numbers, got ${describeType(b)} in ${where}`,
            b.type === 'timestamp'
              ? 'use unix_timestamp(col) (seconds) or timestamp_seconds() to do arithmetic on timestamps'
              : 'cast the operand to a number',
          );
        };
        const lt = operand(l);
        const rt = operand(r);
        const t =
          node.op === '/'
            ? 'double'
            : lt === 'null'
              ? rt === 'null'
                ? 'double'
                : rt
              : rt === 'null'
                ? lt
                : widerNumeric(lt, rt);
        return make('arith', t, { op: node.op, l: coerce(l, t, where), r: coerce(r, t, where) });
      }
      if (isComparisonOp(node.op)) {
        const t = comparisonType(l, r, where);
        return make('cmp', 'boolean', { op: node.op, l: coerce(l, t, where), r: coerce(r, t, where), operandType: t });
      }
      return make('logic', 'boolean', {
        op: node.op as LogicalOp,
        l: booleanOperand(l, node.op, where),
        r: booleanOperand(r, node.op, where),
      });
    }
    case 'not':
      return make('not', 'boolean', { c: booleanOperand(bind(node.child, schema), 'NOT', `'${text(node)}'`) });
    case 'isNull':
      return make('isNull', 'boolean', { negated: node.negated, c: bind(node.child, schema) });
    case 'cast': {
      const c = bind(node.child, schema);
      checkCast(c, node.to, `'${text(node)}'`);
      return make('cast', node.to as CastTypeName, { c });
    }
    case 'alias': {
      const c = bind(node.child, schema);
      return make('alias', c.type, { c }, c.arrow);
    }
    case 'field': {
      const c = bind(node.child, schema);
      if (c.arrow.typeId !== Type.Struct) {
        analysisError(
          `cannot take field '${node.name}' of '${text(node.child)}' of type ${describeType(c)}`,
          'only struct columns have fields',
        );
      }
      const children = (c.arrow as Struct).children;
      const index = findField(children, node.name);
      if (index < 0) missingField(`struct '${text(node.child)}' has no field '${node.name}'`, node.name, children);
      return make('field', ltypeOf(children[index].type), { c, index }, children[index].type);
    }
    case 'case': {
      const where = `'${text(node)}'`;
      const branches = node.branches.map((b) => ({
        when: booleanOperand(bind(b.when, schema), 'WHEN', where),
        // biome-ignore lint/suspicious/noThenProperty: CASE WHEN's THEN, an expression, never a function
        then: bind(b.then, schema),
      }));
      const otherwise = node.otherwise ? bind(node.otherwise, schema) : null;
      const values = [...branches.map((b) => b.then), ...(otherwise ? [otherwise] : [])];
      const common = commonValueType(values, `CASE WHEN ${where}`);
      return make(
        'case',
        common.type,
        {
          // biome-ignore lint/suspicious/noThenProperty: CASE WHEN's THEN, an expression, never a function
          branches: branches.map((b) => ({ when: b.when, then: coerce(b.then, common.type, where) })),
          otherwise: otherwise ? coerce(otherwise, common.type, where) : null,
        },
        common.arrow,
      );
    }
    case 'call':
      return bindCall(node, schema);
    case 'udf':
      return make('udf', node.returnType, {
        name: node.name,
        fn: node.fn,
        args: node.args.map((a) => bind(a, schema)),
      });
  }
}

function literalValue(node: Extract<ExprNode, { kind: 'lit' }>): Scalar {
  if (node.type === 'long') {
    const big = BigInt(node.value as string);
    return big >= -(2n ** 53n) && big <= 2n ** 53n ? Number(big) : big;
  }
  if (node.type === 'double') return Number(node.value);
  return node.value;
}

/** `timestamp ± interval`: a timestamp moved by the interval's milliseconds. */
function shiftTimestamp(node: Extract<ExprNode, { kind: 'op' }>, ts: Bound, intervalMs: number): Bound {
  if (ts.type !== 'timestamp' && ts.type !== 'null') {
    analysisError(
      `an interval can only be added to or subtracted from a timestamp, got ${describeType(ts)} in '${exprText(node)}'`,
      "e.g. col('ts').minus(interval('10 seconds')), or convert the column with to_timestamp() first",
    );
  }
  const ms = make('lit', 'long', { value: node.op === '-' ? -intervalMs : intervalMs });
  const sum = make('arith', 'long', { op: '+', l: make('unixMillis', 'long', { c: ts }), r: ms });
  return make('epochToTimestamp', 'timestamp', { c: sum, msPerUnit: 1 });
}

function booleanOperand(b: Bound, op: string, where: string): Bound {
  if (b.type === 'boolean') return b;
  if (b.type === 'null') return coerce(b, 'boolean', where);
  return analysisError(
    `${op} needs a boolean, got ${describeType(b)} in ${where}`,
    "compare the value first, e.g. col('x').gt(0)",
  );
}

function arity(node: Extract<ExprNode, { kind: 'call' }>, min: number, max: number): void {
  if (node.args.length < min || node.args.length > max) {
    throw new SluiceError(
      'BAD_EXPRESSION',
      `${node.fn} takes ${min === max ? min : `${min} to ${max}`} arguments, got ${node.args.length}`,
      'see the column functions in lib/api/column.ts',
    );
  }
}

/** The value of a literal argument of type `type`, or an ANALYSIS error naming the function and an example. */
function literalArg(
  node: ExprNode | undefined,
  type: 'string' | 'int' | 'long',
  what: string,
  example: string,
): string | number {
  if (node === undefined || node.kind !== 'lit' || node.type !== type)
    analysisError(`${what} must be ${type === 'string' ? 'a string' : 'an integer'} literal`, `e.g. ${example}`);
  return node.value as string | number;
}

/** Timestamps, and strings and numbers read as timestamps (the argument of date_format, hour). */
function timestampOperand(c: Bound, fn: string, where: string): Bound {
  if (c.type === 'timestamp') return c;
  if (c.type === 'null') return coerce(c, 'timestamp', where);
  if (c.type === 'string' || c.type === 'binary') return toTimestamp(c, null, where);
  return analysisError(
    `${fn} needs a timestamp, got ${describeType(c)} in ${where}`,
    'convert it first with to_timestamp() or timestamp_millis()',
  );
}

function stringLiteralArg(node: ExprNode | undefined, fn: string): string | null {
  if (node === undefined) return null;
  if (node.kind !== 'lit' || node.type !== 'string') {
    analysisError(
      `the format of ${fn} must be a string literal`,
      "e.g. to_timestamp(col('ts'), 'yyyy-MM-dd HH:mm:ss')",
    );
  }
  timestampParser(node.value as string);
  return node.value as string;
}

/** Strings, timestamps and numbers to a timestamp, as to_timestamp does. */
function toTimestamp(c: Bound, format: string | null, where: string): Bound {
  if (c.type === 'timestamp') return make('cast', 'timestamp', { c });
  if (c.type === 'string' || c.type === 'binary') {
    return make('parseTimestamp', 'timestamp', { c: coerce(c, 'string', where), format });
  }
  if (NUMERIC.includes(c.type) || c.type === 'null') return coerce(c, 'timestamp', where);
  return analysisError(
    `to_timestamp needs a string, number or timestamp, got ${describeType(c)} in ${where}`,
    'pass a string column',
  );
}

function numericOperand(b: Bound, fn: string, where: string): Bound {
  if (NUMERIC.includes(b.type)) return b;
  if (b.type === 'string' || b.type === 'null') return coerce(b, 'double', where);
  return analysisError(
    `${fn} needs a number, got ${describeType(b)} in ${where}`,
    b.type === 'timestamp' ? 'use unix_timestamp(col) for seconds since the epoch' : 'cast the value to a number',
  );
}

function bindCall(node: Extract<ExprNode, { kind: 'call' }>, schema: Schema): Bound {
  const where = `'${exprText(node)}'`;
  const args = (): Bound[] => node.args.map((a) => bind(a, schema));
  switch (node.fn) {
    case 'coalesce': {
      arity(node, 1, Infinity);
      const bs = args();
      const common = commonValueType(bs, where);
      return make('coalesce', common.type, { args: bs.map((b) => coerce(b, common.type, where)) }, common.arrow);
    }
    case 'to_timestamp': {
      arity(node, 1, 2);
      return toTimestamp(bind(node.args[0], schema), stringLiteralArg(node.args[1], 'to_timestamp'), where);
    }
    case 'unix_timestamp': {
      arity(node, 0, 2);
      if (node.args.length === 0) return make('cast', 'long', { c: make('now', 'timestamp', {}) });
      const c = bind(node.args[0], schema);
      if (c.type !== 'string' && c.type !== 'binary' && c.type !== 'timestamp' && c.type !== 'null') {
        analysisError(
          `unix_timestamp needs a string or timestamp, got ${describeType(c)} in ${where}`,
          'pass a timestamp or a date string',
        );
      }
      return make('cast', 'long', { c: toTimestamp(c, stringLiteralArg(node.args[1], 'unix_timestamp'), where) });
    }
    case 'timestamp_seconds':
    case 'timestamp_millis':
      arity(node, 1, 1);
      return make('epochToTimestamp', 'timestamp', {
        c: numericOperand(bind(node.args[0], schema), node.fn, where),
        msPerUnit: node.fn === 'timestamp_seconds' ? 1000 : 1,
      });
    case 'unix_millis': {
      arity(node, 1, 1);
      const c = bind(node.args[0], schema);
      if (c.type !== 'timestamp' && c.type !== 'null') {
        analysisError(
          `unix_millis needs a timestamp, got ${describeType(c)} in ${where}`,
          'convert it first with to_timestamp()',
        );
      }
      return make('unixMillis', 'long', { c: coerce(c, 'timestamp', where) });
    }
    case 'current_timestamp':
      arity(node, 0, 0);
      return make('now', 'timestamp', {});
    case 'concat':
      return make('concat', 'string', { args: args().map((b) => coerce(b, 'string', where)) });
    case 'lower':
    case 'upper':
      arity(node, 1, 1);
      return make('changeCase', 'string', {
        upper: node.fn === 'upper',
        c: coerce(bind(node.args[0], schema), 'string', where),
      });
    case 'length': {
      arity(node, 1, 1);
      const c = bind(node.args[0], schema);
      return make('length', 'int', { c: c.type === 'binary' ? c : coerce(c, 'string', where) });
    }
    case 'abs': {
      arity(node, 1, 1);
      const c = numericOperand(bind(node.args[0], schema), 'abs', where);
      return make('abs', c.type, { c });
    }
    case 'round': {
      arity(node, 1, 2);
      const c = numericOperand(bind(node.args[0], schema), 'round', where);
      const d = node.args[1];
      if (d && (d.kind !== 'lit' || d.type !== 'int'))
        analysisError(`the digits of round must be an integer literal in ${where}`, 'e.g. round(col, 2)');
      return make('round', c.type, { c, digits: d ? (d.value as number) : 0 });
    }
    case 'date_format': {
      arity(node, 2, 2);
      const c = timestampOperand(bind(node.args[0], schema), 'date_format', where);
      const pattern = literalArg(
        node.args[1],
        'string',
        'the pattern of date_format',
        "date_format('ts', 'yyyy-MM-dd')",
      );
      return make('dateFormat', 'string', { c, formatter: timestampFormatter(pattern as string) });
    }
    case 'hour':
      arity(node, 1, 1);
      return make('hour', 'int', { c: timestampOperand(bind(node.args[0], schema), 'hour', where) });
    case 'regexp_extract': {
      arity(node, 3, 3);
      const example = "regexp_extract('url', 'id=([0-9]+)', 1)";
      const pattern = literalArg(node.args[1], 'string', 'the pattern of regexp_extract', example) as string;
      const idx = literalArg(node.args[2], 'int', 'the group index of regexp_extract', example) as number;
      let re: RegExp;
      try {
        re = new RegExp(pattern);
      } catch (err) {
        return analysisError(`regexp_extract: ${(err as Error).message}`, 'check the regular expression');
      }
      const groups = (new RegExp(`${pattern}|`).exec('') as RegExpExecArray).length - 1;
      if (idx > groups)
        analysisError(
          `regexp_extract: the pattern '${pattern}' has ${groups} group(s), so it has no group ${idx} in ${where}`,
          'number groups from 1 in the order of their opening parenthesis (0 is the whole match)',
        );
      return make('regexpExtract', 'string', { c: coerce(bind(node.args[0], schema), 'string', where), re, idx });
    }
    case 'split_part': {
      arity(node, 3, 3);
      const example = "split_part('url', '/', 4)";
      return make('splitPart', 'string', {
        c: coerce(bind(node.args[0], schema), 'string', where),
        delimiter: literalArg(node.args[1], 'string', 'the delimiter of split_part', example) as string,
        part: literalArg(node.args[2], 'int', 'the part number of split_part', example) as number,
      });
    }
    case 'struct': {
      arity(node, 1, Infinity);
      const bs = args();
      const fields = bs.map(
        (b, i) =>
          new Field(
            exprText(node.args[i], (n) => resolveColumn(schema, n.name).field.name),
            b.arrow,
            true,
          ),
      );
      return make('struct', 'struct', { args: bs }, new Struct(fields));
    }
    case 'window': {
      // window(time, size, slide, offset): the tumbling window of each row, a struct of its start and end.
      arity(node, 4, 4);
      const example = "select(window('ts', '1 minute'))";
      const [size, slide, offset] = node.args
        .slice(1)
        .map((a) => Number(literalArg(a, 'long', 'the durations of window', example)));
      if (slide !== size) {
        analysisError(
          `a sliding window cannot be a column in ${where}: each row is in several windows`,
          "group by it (groupBy(window('ts', '10 minutes', '5 minutes'))), or select a tumbling window",
        );
      }
      const time = bind(node.args[0], schema);
      const arg = node.args[0];
      const ms: ExprNode =
        time.type === 'string' || time.type === 'binary'
          ? { kind: 'call', fn: 'unix_millis', args: [{ kind: 'call', fn: 'to_timestamp', args: [arg] }] }
          : time.type === 'timestamp' || time.type === 'null'
            ? { kind: 'call', fn: 'unix_millis', args: [arg] }
            : arg;
      const long = (v: number): ExprNode => ({ kind: 'lit', type: 'long', value: String(v) });
      // Java's % keeps the dividend's sign: add the size once more so times before the epoch fall right.
      const into: ExprNode = {
        kind: 'op',
        op: '%',
        left: {
          kind: 'op',
          op: '+',
          left: {
            kind: 'op',
            op: '%',
            left: { kind: 'op', op: '-', left: ms, right: long(offset) },
            right: long(size),
          },
          right: long(size),
        },
        right: long(size),
      };
      const start: ExprNode = { kind: 'op', op: '-', left: ms, right: into };
      const bs = [start, { kind: 'op', op: '+', left: start, right: long(size) } as ExprNode].map((e) =>
        bind({ kind: 'call', fn: 'timestamp_millis', args: [e] }, schema),
      );
      const fields = ['start', 'end'].map((name, i) => new Field(name, bs[i].arrow, true));
      return make('struct', 'struct', { args: bs }, new Struct(fields));
    }
    case 'isin': {
      arity(node, 2, Infinity);
      const [c, ...values] = args();
      const t = values.reduce<LType>((acc, v) => (acc === 'null' ? comparisonType(c, v, where) : acc), 'null');
      if (t === 'null') return make('lit', 'boolean', { value: null });
      return make('in', 'boolean', {
        c: coerce(c, t, where),
        values: values.map((v) => coerce(v, t, where)),
        operandType: t,
      });
    }
  }
}
