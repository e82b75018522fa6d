import { SluiceError } from '../errors.js';
import {
  type BinaryOp,
  type CastTypeName,
  castTypeName,
  checkExprNode,
  type Expression,
  type ExprNode,
  exprText,
  type FunctionName,
  type UserFunction,
} from '../plan/expression.js';
import { parseDuration } from '../util/duration.js';

/**
 * Spark-like column expressions. A Column is an immutable expression tree of plain JSON nodes (lib/plan/expression.ts), so a plan can be
 * shipped to worker threads (`JSON.stringify(column)` / `Column.fromJSON`). Types and names are resolved against a
 * schema by lib/plan/expression-eval.ts, which also evaluates them on Arrow record batches.
 */

/** A JS value usable as a literal: number (int if integral and 32-bit, long if a larger safe integer, else double), bigint (long), Date (timestamp). */
export type Literal = string | number | boolean | bigint | Date | null;
export type ColumnOrLiteral = Column | Literal;
/** Functions take a Column or a column name, as in PySpark. */
export type ColumnOrName = Column | string;

function deepFreeze<T>(node: T): T {
  if (node && typeof node === 'object' && !Object.isFrozen(node)) {
    for (const v of Object.values(node)) deepFreeze(v);
    Object.freeze(node);
  }
  return node;
}

/** The literal node of a JS value. */
function literalNode(value: Literal): ExprNode {
  if (value === null || value === undefined) return { kind: 'lit', type: 'null', value: null };
  switch (typeof value) {
    case 'string':
      return { kind: 'lit', type: 'string', value };
    case 'boolean':
      return { kind: 'lit', type: 'boolean', value };
    case 'bigint':
      if (value > 0x7fffffffffffffffn || value < -0x8000000000000000n) {
        throw new SluiceError(
          'BAD_EXPRESSION',
          `literal ${value} does not fit a long (64-bit)`,
          'use a smaller value or a double',
        );
      }
      return { kind: 'lit', type: 'long', value: value.toString() };
    case 'number':
      if (Number.isInteger(value) && !Object.is(value, -0)) {
        if (value >= -2147483648 && value <= 2147483647) return { kind: 'lit', type: 'int', value };
        if (Number.isSafeInteger(value)) return { kind: 'lit', type: 'long', value: String(value) };
      }
      return { kind: 'lit', type: 'double', value: Number.isFinite(value) ? value : String(value) };
    default:
      if (value instanceof Date) {
        const ms = value.getTime();
        if (Number.isNaN(ms))
          throw new SluiceError('BAD_EXPRESSION', 'literal is an invalid Date', 'pass a valid Date');
        return { kind: 'lit', type: 'timestamp', value: ms };
      }
      throw new SluiceError(
        'BAD_EXPRESSION',
        `cannot use ${Object.prototype.toString.call(value)} as a literal`,
        'use a string, number, boolean, bigint, Date, null or a Column',
      );
  }
}

function nodeOf(value: ColumnOrLiteral): ExprNode {
  return value instanceof Column ? value.expr : literalNode(value);
}

function nodeOfName(value: ColumnOrName): ExprNode {
  if (value instanceof Column) return value.expr;
  if (typeof value !== 'string') {
    throw new SluiceError(
      'BAD_EXPRESSION',
      `expected a Column or a column name, got ${typeof value}`,
      'wrap literals in lit(...), e.g. lit(1)',
    );
  }
  return { kind: 'col', name: value };
}

/** An immutable Spark-like column expression. */
export class Column implements Expression {
  /** The expression tree (frozen). */
  readonly expr: ExprNode;

  constructor(expr: ExprNode) {
    this.expr = deepFreeze(expr);
  }

  private op(op: BinaryOp, other: ColumnOrLiteral): Column {
    return new Column({ kind: 'op', op, left: this.expr, right: nodeOf(other) });
  }

  /** `this + other`. */
  plus(other: ColumnOrLiteral): Column {
    return this.op('+', other);
  }
  /** `this - other`. */
  minus(other: ColumnOrLiteral): Column {
    return this.op('-', other);
  }
  /** `this * other`. */
  multiply(other: ColumnOrLiteral): Column {
    return this.op('*', other);
  }
  /** `this / other`, always a double; division by zero gives null. */
  divide(other: ColumnOrLiteral): Column {
    return this.op('/', other);
  }
  /** Remainder with the sign of the dividend (Java's `%`); modulo zero gives null. */
  mod(other: ColumnOrLiteral): Column {
    return this.op('%', other);
  }

  /** `this = other` (null if either side is null). */
  eq(other: ColumnOrLiteral): Column {
    return this.op('=', other);
  }
  /** `this != other` (null if either side is null). */
  ne(other: ColumnOrLiteral): Column {
    return this.op('!=', other);
  }
  /** `this < other`. */
  lt(other: ColumnOrLiteral): Column {
    return this.op('<', other);
  }
  /** `this <= other`. */
  le(other: ColumnOrLiteral): Column {
    return this.op('<=', other);
  }
  /** `this > other`. */
  gt(other: ColumnOrLiteral): Column {
    return this.op('>', other);
  }
  /** `this >= other`. */
  ge(other: ColumnOrLiteral): Column {
    return this.op('>=', other);
  }
  /** `lower <= this AND this <= upper` (Spark's BETWEEN, bounds included). */
  between(lower: ColumnOrLiteral, upper: ColumnOrLiteral): Column {
    return this.ge(lower).and(this.le(upper));
  }
  /** Null-safe equality (Spark's `<=>`): never null, null <=> null is true. */
  eqNullSafe(other: ColumnOrLiteral): Column {
    return this.op('<=>', other);
  }

  /** Three-valued AND: false if either side is false, else null if either is null. */
  and(other: ColumnOrLiteral): Column {
    return this.op('AND', other);
  }
  /** Three-valued OR: true if either side is true, else null if either is null. */
  or(other: ColumnOrLiteral): Column {
    return this.op('OR', other);
  }
  /** Boolean negation (null stays null). */
  not(): Column {
    return new Column({ kind: 'not', child: this.expr });
  }

  /** True where the value is null. */
  isNull(): Column {
    return new Column({ kind: 'isNull', child: this.expr, negated: false });
  }
  /** True where the value is not null. */
  isNotNull(): Column {
    return new Column({ kind: 'isNull', child: this.expr, negated: true });
  }

  /** Converts to `type`; values that cannot be converted (e.g. 'abc' to double) become null. */
  cast(type: CastTypeName | string): Column {
    return new Column({ kind: 'cast', child: this.expr, to: castTypeName(type) });
  }

  /** Names the result column. */
  alias(name: string): Column {
    if (typeof name !== 'string' || name === '') {
      throw new SluiceError('BAD_EXPRESSION', 'alias needs a non-empty name', "e.g. col('a').alias('b')");
    }
    return new Column({ kind: 'alias', child: this.expr, name });
  }

  /** Same as alias. */
  as(name: string): Column {
    return this.alias(name);
  }

  /** A field of a struct column (null where the struct is null). */
  getField(name: string): Column {
    return new Column({ kind: 'field', child: this.expr, name });
  }

  /**
   * True where the value equals one of `values` (Spark's `isin`, SQL's `IN`); null when it is null, or when
   * nothing matched and one of the values is null.
   */
  isin(...values: ColumnOrLiteral[]): Column {
    if (values.length === 0)
      throw new SluiceError('BAD_EXPRESSION', 'isin needs at least one value', "e.g. col('channel').isin('a', 'b')");
    return new Column({ kind: 'call', fn: 'isin', args: [this.expr, ...values.map(nodeOf)] });
  }

  /** Adds a branch to a `when(...)` expression. */
  when(condition: Column, value: ColumnOrLiteral): Column {
    const e = this.expr;
    if (e.kind !== 'case' || e.otherwise !== null) {
      throw new SluiceError(
        'BAD_EXPRESSION',
        '.when() can only follow when(...) or another .when(...)',
        'start with when(cond, value) and end with .otherwise(value)',
      );
    }
    return new Column({
      kind: 'case',
      // biome-ignore lint/suspicious/noThenProperty: CASE WHEN's THEN, an expression, never a function
      branches: [...e.branches, { when: condition.expr, then: nodeOf(value) }],
      otherwise: null,
    });
  }

  /** The value of a `when(...)` expression where no branch matched (null without it). */
  otherwise(value: ColumnOrLiteral): Column {
    const e = this.expr;
    if (e.kind !== 'case' || e.otherwise !== null) {
      throw new SluiceError(
        'BAD_EXPRESSION',
        '.otherwise() can only follow when(...) and only once',
        'write when(cond, a).otherwise(b)',
      );
    }
    return new Column({ kind: 'case', branches: e.branches, otherwise: nodeOf(value) });
  }

  /** The JSON form, used by JSON.stringify. */
  toJSON(): ExprNode {
    return this.expr;
  }

  /** Rebuilds a column from its JSON form, checking its shape. */
  static fromJSON(json: unknown): Column {
    return new Column(checkExprNode(typeof json === 'string' ? JSON.parse(json) : json, 'expression'));
  }

  /** Spark-like text of the expression, e.g. `((amount > 10) AND (event_type = click))`. */
  toString(): string {
    return exprText(this.expr);
  }
}

/** A column by name; `a.b` reaches field b of struct a (a literal column named `a.b` wins if it exists). */
export function col(name: string): Column {
  if (typeof name !== 'string' || name === '') {
    throw new SluiceError('BAD_EXPRESSION', 'col() needs a non-empty column name', "e.g. col('amount')");
  }
  return new Column({ kind: 'col', name });
}

/** Same as col. */
export const column = col;

/**
 * A time interval, Spark's `INTERVAL '10 seconds'`: added to or subtracted from a timestamp, e.g. the range
 * condition of a stream-stream join, `col('click.ts').between(col('ad.ts'), col('ad.ts').plus(interval('1 hour')))`.
 */
export function interval(duration: string | number): Column {
  return new Column({ kind: 'lit', type: 'interval', value: parseDuration(duration, 'interval') });
}

/** A literal value (a Column is returned unchanged). */
export function lit(value: ColumnOrLiteral): Column {
  return value instanceof Column ? value : new Column(literalNode(value));
}

/** `CASE WHEN condition THEN value`; chain `.when(...)` and end with `.otherwise(...)`. */
export function when(condition: Column, value: ColumnOrLiteral): Column {
  if (!(condition instanceof Column)) {
    throw new SluiceError('BAD_EXPRESSION', 'when() needs a Column condition', "e.g. when(col('a').gt(1), 'big')");
  }
  // biome-ignore lint/suspicious/noThenProperty: CASE WHEN's THEN, an expression, never a function
  return new Column({ kind: 'case', branches: [{ when: condition.expr, then: nodeOf(value) }], otherwise: null });
}

function call(fn: FunctionName, args: ExprNode[]): Column {
  return new Column({ kind: 'call', fn, args });
}

/** The first non-null argument per row. */
export function coalesce(...cols: ColumnOrName[]): Column {
  if (cols.length === 0)
    throw new SluiceError('BAD_EXPRESSION', 'coalesce needs at least one column', "e.g. coalesce(col('a'), lit(0))");
  return call('coalesce', cols.map(nodeOfName));
}

/**
 * Parses strings to timestamps. Without a format: ISO-8601 (`2024-05-01`, `2024-05-01T10:00:00.123Z`,
 * `2024-05-01 10:00:00+02:00`; no zone means UTC). With a format: a Java/Spark pattern such as
 * 'yyyy-MM-dd HH:mm:ss' or 'dd/MM/yyyy HH:mm', interpreted as UTC unless it holds a zone (X, Z). Unparsable → null.
 * Numbers are seconds since the epoch.
 */
export function to_timestamp(c: ColumnOrName, format?: string): Column {
  return call('to_timestamp', format === undefined ? [nodeOfName(c)] : [nodeOfName(c), literalNode(format)]);
}

/** Seconds since the epoch (int, long or double) to a timestamp. */
export function timestamp_seconds(c: ColumnOrName): Column {
  return call('timestamp_seconds', [nodeOfName(c)]);
}

/** Milliseconds since the epoch (int, long or double) to a timestamp, for JS-style epoch-ms fields. */
export function timestamp_millis(c: ColumnOrName): Column {
  return call('timestamp_millis', [nodeOfName(c)]);
}

/** Milliseconds since the epoch (long) of a timestamp. */
export function unix_millis(c: ColumnOrName): Column {
  return call('unix_millis', [nodeOfName(c)]);
}

/**
 * Seconds since the epoch (long) of a timestamp, or of a string parsed as by to_timestamp. Without arguments,
 * the batch's processing time.
 */
export function unix_timestamp(c?: ColumnOrName, format?: string): Column {
  if (c === undefined) return call('unix_timestamp', []);
  return call('unix_timestamp', format === undefined ? [nodeOfName(c)] : [nodeOfName(c), literalNode(format)]);
}

/** The batch's processing time as recorded in the offset log, so a replayed batch sees the same value. */
export function current_timestamp(): Column {
  return call('current_timestamp', []);
}

/** String concatenation; null if any argument is null. Non-strings are cast to string. */
export function concat(...cols: ColumnOrName[]): Column {
  return call('concat', cols.map(nodeOfName));
}

/** Lower case. */
export function lower(c: ColumnOrName): Column {
  return call('lower', [nodeOfName(c)]);
}
/** Upper case. */
export function upper(c: ColumnOrName): Column {
  return call('upper', [nodeOfName(c)]);
}
/** Number of characters of a string (bytes of a binary), as an int. */
export function length(c: ColumnOrName): Column {
  return call('length', [nodeOfName(c)]);
}
/** Absolute value. */
export function abs(c: ColumnOrName): Column {
  return call('abs', [nodeOfName(c)]);
}

/** Rounds half away from zero (Spark's HALF_UP) to `digits` decimals; negative digits round to tens, hundreds… */
export function round(c: ColumnOrName, digits = 0): Column {
  if (!Number.isInteger(digits))
    throw new SluiceError('BAD_EXPRESSION', `round() digits must be an integer, got ${digits}`, 'e.g. round(col, 2)');
  return call('round', [nodeOfName(c), literalNode(digits)]);
}

/**
 * Text of a timestamp in a Java/Spark datetime pattern, in UTC: `date_format(col('ts'), 'yyyy-MM-dd')` gives
 * `2024-05-01`, 'HH:mm' gives `10:30`. Letters: y M d H h m s S a E (and text in single quotes). Strings are
 * read as timestamps first, as to_timestamp does.
 */
export function date_format(c: ColumnOrName, format: string): Column {
  if (typeof format !== 'string' || format === '')
    throw new SluiceError('BAD_EXPRESSION', 'date_format needs a pattern', "e.g. date_format('ts', 'yyyy-MM-dd')");
  return call('date_format', [nodeOfName(c), literalNode(format)]);
}

/** The hour of the day (0-23, UTC) of a timestamp, as an int. */
export function hour(c: ColumnOrName): Column {
  return call('hour', [nodeOfName(c)]);
}

/**
 * Group `idx` of the first match of the regular expression `pattern` in a string (0: the whole match), as
 * Spark's regexp_extract: an empty string when the pattern does not match or the group took part in no
 * match, null when the string is null. The pattern is a JavaScript regular expression, which agrees with
 * Java's for the usual syntax (classes, groups, anchors, quantifiers).
 */
export function regexp_extract(c: ColumnOrName, pattern: string, idx = 1): Column {
  if (!Number.isInteger(idx) || idx < 0)
    throw new SluiceError(
      'BAD_EXPRESSION',
      `regexp_extract needs a group index of 0 or more, got ${idx}`,
      "e.g. regexp_extract('url', 'id=([0-9]+)', 1)",
    );
  return call('regexp_extract', [nodeOfName(c), literalNode(pattern), literalNode(idx)]);
}

/**
 * Part `partNum` (from 1; negative counts from the end) of a string split at every `delimiter`, as Spark's
 * split_part: an empty string when there is no such part, the whole string when the delimiter is empty,
 * null when the string is null. `split_part(col('url'), '/', 4)` is the first directory of a URL.
 */
export function split_part(c: ColumnOrName, delimiter: string, partNum: number): Column {
  if (!Number.isInteger(partNum) || partNum === 0)
    throw new SluiceError(
      'BAD_EXPRESSION',
      `split_part needs a part number other than 0, got ${partNum}`,
      "parts count from 1 (or from -1 at the end), e.g. split_part('url', '/', 4)",
    );
  return call('split_part', [nodeOfName(c), literalNode(delimiter), literalNode(partNum)]);
}

/**
 * A struct column of the given columns, its fields named after them (a column name, or an alias):
 * `struct('price', 'dateTime')`, e.g. to keep a whole row with `max_by(struct(...), 'dateTime')`.
 */
export function struct(...cols: ColumnOrName[]): Column {
  if (cols.length === 0)
    throw new SluiceError('BAD_EXPRESSION', 'struct needs at least one column', "e.g. struct('price', 'dateTime')");
  return call('struct', cols.map(nodeOfName));
}

/**
 * A user-defined column function, Spark's `udf(f, returnType)`: call the result with columns (or column
 * names) to get a column whose rows are `fn` applied to the rows' values (strings, numbers, booleans, Date for
 * timestamps). A row with a null argument gives null without calling `fn`, and so does a result of null or
 * undefined. The column is named after the function (`count_char(extra, c)`; `udf(...)` for an anonymous
 * one). The function runs on whatever thread evaluates the expression: in an app module it runs in worker
 * threads too, while an inline query that uses one runs at threads 0 only.
 *
 * ```ts
 * const countChar = udf((s: string, c: string) => s.split(c).length - 1, 'long');
 * bids.select('auction', countChar('extra', lit('c')).alias('c_counts'));
 * ```
 */
export function udf<A extends never[]>(
  fn: (...args: A) => unknown,
  returnType: CastTypeName | string,
): (...cols: ColumnOrName[]) => Column {
  if (typeof fn !== 'function')
    throw new SluiceError('BAD_EXPRESSION', 'udf needs a function', "e.g. udf((s: string) => s.length, 'int')");
  const type = castTypeName(returnType);
  const name = fn.name || 'udf';
  return (...cols) =>
    new Column({ kind: 'udf', name, fn: fn as UserFunction, returnType: type, args: cols.map(nodeOfName) });
}
