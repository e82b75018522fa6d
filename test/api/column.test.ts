import {
  DateDay,
  Dictionary,
  Field,
  Float32,
  Int32,
  type RecordBatch,
  Schema,
  type Struct,
  Table,
  TimestampMicrosecond,
  Type,
  tableFromIPC,
  tableToIPC,
  Utf8,
  vectorFromArray,
} from 'apache-arrow';
import { expect } from 'chai';
import {
  abs,
  Column,
  coalesce,
  col,
  concat,
  current_timestamp,
  date_format,
  hour,
  length,
  lit,
  lower,
  regexp_extract,
  round,
  split_part,
  struct,
  timestamp_millis,
  timestamp_seconds,
  to_timestamp,
  udf,
  unix_millis,
  unix_timestamp,
  upper,
  when,
} from '../../lib/api/column.js';
import {
  batchFromRows,
  batchOf,
  mkData,
  rowsFromBatch,
  schemaFromSpec,
  schemaToSpec,
  valuesOf,
} from '../../lib/arrow/index.js';
import { SluiceError } from '../../lib/errors.js';
import {
  bindExpression,
  checkPredicate,
  compileFilter,
  compileProjection,
  evaluate,
  filterIndices,
  resultField,
} from '../../lib/plan/expression-eval.js';

const ctx = { batchTimestampMs: Date.UTC(2024, 4, 1, 12, 0, 0) };

const spec = {
  a: 'int',
  b: 'double',
  s: 'string',
  l: 'long',
  t: 'timestamp',
  ok: 'boolean',
  dev: { type: 'string', os: { name: 'string' } },
} as const;
const schema = schemaFromSpec(spec as never);
const rows = [
  { a: 1, b: 1.5, s: 'click', l: 10, t: new Date(1000), ok: true, dev: { type: 'mobile', os: { name: 'ios' } } },
  { a: null, b: 0, s: 'view', l: 2 ** 40, t: null, ok: false, dev: null },
  { a: 3, b: null, s: null, l: null, t: new Date(5000), ok: null, dev: { type: null, os: null } },
  { a: -4, b: -2.5, s: 'Ünï', l: -7, t: new Date(-1500), ok: true, dev: { type: 'web', os: { name: 'linux' } } },
];
const batch = batchFromRows(rows, schema);

/** Values of `c` over `b` as JS values (longs as numbers, timestamps as Dates). */
function values(c: Column, b: RecordBatch = batch): unknown[] {
  const data = evaluate(c, b, ctx);
  expect(data.length).to.equal(b.numRows);
  expect(String(data.type)).to.equal(String(resultField(c, b.schema).type));
  return valuesOf(data);
}

function one(c: Column): unknown {
  return values(c)[0];
}

function expectError(fn: () => unknown, code: string, pattern: RegExp): SluiceError {
  try {
    fn();
  } catch (e) {
    expect(e).to.be.instanceOf(SluiceError);
    expect((e as SluiceError).code).to.equal(code);
    expect((e as SluiceError).message).to.match(pattern);
    return e as SluiceError;
  }
  throw new Error(`expected a ${code} error matching ${pattern}`);
}

function typeOf(c: Column, s: Schema = schema): string {
  const spec = schemaToSpec(new Schema([resultField(c, s)]));
  return String(Object.values(spec)[0]);
}

describe('column expressions', () => {
  describe('arithmetic', () => {
    it('follows Spark result types: int op int is int, / is double, literals are typed by value', () => {
      expect(typeOf(col('a').plus(1))).to.equal('int');
      expect(typeOf(col('a').plus(1.5))).to.equal('double');
      expect(typeOf(col('a').plus(col('l')))).to.equal('long');
      expect(typeOf(col('a').divide(2))).to.equal('double');
      expect(typeOf(col('a').plus(2 ** 40))).to.equal('long');
      expect(typeOf(col('a').plus(10n))).to.equal('long');
      expect(typeOf(col('s').plus(1))).to.equal('double');
    });

    it('computes + - * / % with null in, null out', () => {
      expect(values(col('a').plus(1))).to.deep.equal([2, null, 4, -3]);
      expect(values(col('a').minus(col('b')))).to.deep.equal([-0.5, null, null, -1.5]);
      expect(values(col('a').multiply(3))).to.deep.equal([3, null, 9, -12]);
      expect(values(col('a').divide(2))).to.deep.equal([0.5, null, 1.5, -2]);
      expect(values(col('a').mod(2))).to.deep.equal([1, null, 1, 0]);
      expect(values(col('b').mod(2))).to.deep.equal([1.5, 0, null, -0.5]);
      expect(values(lit(7).mod(col('a')))).to.deep.equal([0, null, 1, 3]);
    });

    it('gives null for division and modulo by zero', () => {
      expect(values(col('b').divide(0))).to.deep.equal([null, null, null, null]);
      expect(values(lit(1).divide(col('b')))).to.deep.equal([1 / 1.5, null, null, -0.4]);
      expect(values(col('a').mod(col('b')))).to.deep.equal([1, null, null, -1.5]);
    });

    it('wraps int overflow like Java and keeps longs exact beyond 2^53', () => {
      expect(one(lit(2147483647).plus(1))).to.equal(-2147483648);
      expect(one(lit(65536).multiply(65536))).to.equal(0);
      const big = evaluate(col('l').multiply(1_000_000), batch, ctx);
      expect(big.values[1]).to.equal(2n ** 40n * 1_000_000n);
      expect(big.values[0]).to.equal(10_000_000n);
      expect(evaluate(lit(2n ** 62n).plus(lit(2n ** 62n)), batch, ctx).values[0]).to.equal(-(2n ** 63n));
      expect(evaluate(lit(2n ** 53n).plus(1), batch, ctx).values[0]).to.equal(2n ** 53n + 1n);
    });

    it('casts strings to double in arithmetic', () => {
      expect(values(col('s').plus(1))).to.deep.equal([null, null, null, null]);
      expect(one(lit('2.5').multiply(2))).to.equal(5);
    });
  });

  describe('comparisons', () => {
    it('compares numbers, strings and booleans with null propagation', () => {
      expect(values(col('a').gt(1))).to.deep.equal([false, null, true, false]);
      expect(values(col('a').le(col('b')))).to.deep.equal([true, null, null, true]);
      expect(values(col('s').eq('click'))).to.deep.equal([true, false, null, false]);
      expect(values(col('s').ne('click'))).to.deep.equal([false, true, null, true]);
      expect(values(lit('view').eq(col('s')))).to.deep.equal([false, true, null, false]);
      expect(values(col('s').lt('d'))).to.deep.equal([true, false, null, false]);
      expect(values(col('s').ge(col('s')))).to.deep.equal([true, true, null, true]);
      expect(values(col('ok').eq(true))).to.deep.equal([true, false, null, true]);
      expect(values(col('ok').lt(true))).to.deep.equal([false, true, null, false]);
      expect(values(col('a').eq(lit(null)))).to.deep.equal([null, null, null, null]);
    });

    it('compares strings with multibyte characters by bytes', () => {
      expect(values(col('s').eq('Ünï'))).to.deep.equal([false, false, null, true]);
      expect(values(col('s').eq('Ün'))).to.deep.equal([false, false, null, false]);
    });

    it('treats NaN as equal to NaN and larger than any number, as Spark does', () => {
      const nan = lit(NaN);
      expect(one(nan.eq(NaN))).to.equal(true);
      expect(values(col('b').lt(NaN))).to.deep.equal([true, true, null, true]);
      expect(values(col('b').gt(NaN))).to.deep.equal([false, false, null, false]);
      expect(values(nan.gt(col('b')))).to.deep.equal([true, true, null, true]);
    });

    it('applies the NaN rules between two columns too', () => {
      const nb = batchFromRows(
        [
          { x: NaN, y: NaN },
          { x: 1, y: NaN },
          { x: NaN, y: 1 },
          { x: 1, y: 2 },
        ],
        schemaFromSpec({ x: 'double', y: 'double' }),
      );
      expect(values(col('x').eq(col('y')), nb)).to.deep.equal([true, false, false, false]);
      expect(values(col('x').ne(col('y')), nb)).to.deep.equal([false, true, true, true]);
      expect(values(col('x').lt(col('y')), nb)).to.deep.equal([false, true, false, true]);
      expect(values(col('x').le(col('y')), nb)).to.deep.equal([true, true, false, true]);
      expect(values(col('x').gt(col('y')), nb)).to.deep.equal([false, false, true, false]);
      expect(values(col('x').ge(col('y')), nb)).to.deep.equal([true, false, true, false]);
    });

    it('null-safe equality is never null', () => {
      expect(values(col('a').eqNullSafe(3))).to.deep.equal([false, false, true, false]);
      expect(values(col('a').eqNullSafe(lit(null)))).to.deep.equal([false, true, false, false]);
      expect(values(col('s').eqNullSafe(col('s')))).to.deep.equal([true, true, true, true]);
    });

    it('compares timestamps with timestamps, numbers (epoch seconds) and strings', () => {
      expect(values(col('t').gt(lit(new Date(2000))))).to.deep.equal([false, null, true, false]);
      expect(values(col('t').ge(1))).to.deep.equal([true, null, true, false]);
      expect(values(col('t').lt('1970-01-01T00:00:02Z'))).to.deep.equal([true, null, false, true]);
      expect(values(col('t').eq(col('t')))).to.deep.equal([true, null, true, true]);
      expect(values(current_timestamp().gt(col('t')))).to.deep.equal([true, null, true, true]);
    });

    it('compares longs beyond 2^53 exactly', () => {
      const s = schemaFromSpec({ x: 'long' });
      const data = batchOf(s, [batchFromRows([{ x: 0 }], s).data.children[0]], 1);
      const big = evaluate(lit(2n ** 53n + 1n), data, ctx);
      const b = batchOf(s, [big], 1);
      expect(values(col('x').eq(lit(2n ** 53n)), b)).to.deep.equal([false]);
      expect(values(col('x').gt(lit(2n ** 53n)), b)).to.deep.equal([true]);
      expect(values(col('x').eq(lit(2n ** 53n + 1n)), b)).to.deep.equal([true]);
    });
  });

  describe('boolean logic', () => {
    const tv = schemaFromSpec({ p: 'boolean', q: 'boolean' });
    const vals = [true, false, null];
    const pairs = vals.flatMap((p) => vals.map((q) => ({ p, q })));
    const tb = batchFromRows(pairs, tv);

    it('AND and OR are three-valued', () => {
      const and = (p: boolean | null, q: boolean | null): boolean | null =>
        p === false || q === false ? false : p === null || q === null ? null : true;
      const or = (p: boolean | null, q: boolean | null): boolean | null =>
        p === true || q === true ? true : p === null || q === null ? null : false;
      expect(values(col('p').and(col('q')), tb)).to.deep.equal(pairs.map(({ p, q }) => and(p, q)));
      expect(values(col('p').or(col('q')), tb)).to.deep.equal(pairs.map(({ p, q }) => or(p, q)));
      expect(values(col('p').and(lit(null)), tb)).to.deep.equal(pairs.map(({ p }) => and(p, null)));
      expect(values(col('p').or(true), tb)).to.deep.equal(pairs.map(() => true));
    });

    it('NOT keeps null', () => {
      expect(values(col('p').not(), tb)).to.deep.equal(pairs.map(({ p }) => (p === null ? null : !p)));
    });

    it('isNull and isNotNull are never null, also for structs and literals', () => {
      expect(values(col('a').isNull())).to.deep.equal([false, true, false, false]);
      expect(values(col('s').isNotNull())).to.deep.equal([true, true, false, true]);
      expect(values(col('dev').isNull())).to.deep.equal([false, true, false, false]);
      expect(values(col('dev.type').isNull())).to.deep.equal([false, true, true, false]);
      expect(values(lit(null).isNull())).to.deep.equal([true, true, true, true]);
    });
  });

  describe('casts', () => {
    const strs = ['1.5', ' 2 ', 'abc', '', '0x10', 'NaN', '-Infinity', '1e3', '12.7', '2147483648', null];
    const sb = batchFromRows(
      strs.map((v) => ({ v })),
      schemaFromSpec({ v: 'string' }),
    );

    it('string to double and int: failures are null', () => {
      expect(values(col('v').cast('double'), sb)).to.deep.equal([
        1.5,
        2,
        null,
        null,
        null,
        NaN,
        -Infinity,
        1000,
        12.7,
        2147483648,
        null,
      ]);
      expect(values(col('v').cast('int'), sb)).to.deep.equal([
        1,
        2,
        null,
        null,
        null,
        null,
        null,
        null,
        12,
        null,
        null,
      ]);
    });

    it('string to long keeps 64-bit precision and rejects out-of-range values', () => {
      const lb = batchFromRows(
        [{ v: '9007199254740993' }, { v: '-9223372036854775808' }, { v: '9223372036854775808' }, { v: '42' }],
        schemaFromSpec({ v: 'string' }),
      );
      const d = evaluate(col('v').cast('bigint'), lb, ctx);
      expect(Array.from(d.values as BigInt64Array).slice(0, 2)).to.deep.equal([
        9007199254740993n,
        -9223372036854775808n,
      ]);
      expect(d.values[3]).to.equal(42n);
      expect(valuesOf(d)[2]).to.equal(null);
    });

    it('string to boolean and timestamp', () => {
      const bb = batchFromRows(
        ['true', 'F', ' yes ', '1', 'maybe'].map((v) => ({ v })),
        schemaFromSpec({ v: 'string' }),
      );
      expect(values(col('v').cast('boolean'), bb)).to.deep.equal([true, false, true, true, null]);
      expect(one(lit('2024-05-01 10:30:00').cast('timestamp'))).to.deep.equal(new Date(Date.UTC(2024, 4, 1, 10, 30)));
      expect(one(lit('not a date').cast('timestamp'))).to.equal(null);
    });

    it('numbers between types: truncation, JVM saturation, wrap-around', () => {
      const db = batchFromRows(
        [1.9, -1.9, NaN, 1e10, -1e10].map((v) => ({ v })),
        schemaFromSpec({ v: 'double' }),
      );
      expect(values(col('v').cast('int'), db)).to.deep.equal([1, -1, 0, 2147483647, -2147483648]);
      expect(values(col('v').cast('long'), db)).to.deep.equal([1, -1, 0, 1e10, -1e10]);
      expect(values(col('l').cast('int'))).to.deep.equal([10, 0, null, -7]);
      expect(values(col('ok').cast('int'))).to.deep.equal([1, 0, null, 1]);
      expect(values(col('b').cast('boolean'))).to.deep.equal([true, false, null, true]);
    });

    it('to string as Spark prints values', () => {
      expect(values(col('b').cast('string'))).to.deep.equal(['1.5', '0.0', null, '-2.5']);
      expect(one(lit(12345678.9).cast('string'))).to.equal('1.23456789E7');
      expect(values(col('b').multiply(1e7).cast('string'))).to.deep.equal(['1.5E7', '0.0', null, '-2.5E7']);
      expect(one(lit(0.0001).cast('string'))).to.equal('1.0E-4');
      expect(values(col('a').cast('string'))).to.deep.equal(['1', null, '3', '-4']);
      expect(values(col('ok').cast('string'))).to.deep.equal(['true', 'false', null, 'true']);
      expect(values(col('t').cast('string'))).to.deep.equal([
        '1970-01-01 00:00:01',
        null,
        '1970-01-01 00:00:05',
        '1969-12-31 23:59:58.5',
      ]);
      expect(one(lit(2n ** 60n).cast('string'))).to.equal('1152921504606846976');
    });

    it('timestamps and numbers convert through epoch seconds', () => {
      expect(values(col('t').cast('long'))).to.deep.equal([1, null, 5, -2]);
      expect(values(col('t').cast('double'))).to.deep.equal([1, null, 5, -1.5]);
      expect(one(lit(1.5).cast('timestamp'))).to.deep.equal(new Date(1500));
      expect(one(col('l').cast('timestamp'))).to.deep.equal(new Date(10_000));
    });

    it('binary to string decodes utf8', () => {
      const s = schemaFromSpec({ value: 'binary' });
      const bb = batchFromRows([{ value: new TextEncoder().encode('héllo') }, { value: null }], s);
      expect(values(col('value').cast('string'), bb)).to.deep.equal(['héllo', null]);
      expect(resultField(col('value').cast('string'), s).name).to.equal('value');
    });

    it('rejects unknown target types and impossible casts before any data', () => {
      expectError(() => col('a').cast('decimal'), 'BAD_EXPRESSION', /unknown type 'decimal'/);
      expectError(() => resultField(col('dev').cast('int'), schema), 'ANALYSIS', /cannot convert struct to int/);
      expectError(
        () => resultField(col('ok').cast('timestamp'), schema),
        'ANALYSIS',
        /cannot convert boolean to timestamp/,
      );
    });
  });

  describe('names and types of results', () => {
    it('uses the alias, the column name or a Spark-like generated name', () => {
      const name = (c: Column): string => resultField(c, schema).name;
      expect(name(col('a'))).to.equal('a');
      expect(name(col('a').plus(1).alias('a1'))).to.equal('a1');
      expect(name(col('a').plus(1).as('a2'))).to.equal('a2');
      expect(name(col('b').gt(10).and(col('s').eq('click')))).to.equal('((b > 10) AND (s = click))');
      expect(name(col('a').ne(1))).to.equal('(NOT (a = 1))');
      expect(name(col('a').isNull())).to.equal('(a IS NULL)');
      expect(name(col('a').cast('string'))).to.equal('a');
      expect(name(col('a').plus(1).cast('string'))).to.equal('CAST((a + 1) AS STRING)');
      expect(name(col('dev.type'))).to.equal('type');
      expect(name(col('dev').getField('type'))).to.equal('dev.type');
      expect(name(when(col('a').gt(1), 'x').otherwise(lit(null)))).to.equal('CASE WHEN (a > 1) THEN x ELSE NULL END');
      expect(name(round(col('b'), 1))).to.equal('round(b, 1)');
      expect(name(col('A'))).to.equal('a');
    });

    it('keeps the Arrow type of column references and writes computed values in canonical types', () => {
      const dict = vectorFromArray(['x', 'y', 'x'], new Dictionary(new Utf8(), new Int32()));
      const f32 = vectorFromArray([1.5, 2, 3], new Float32());
      const s = new Schema([new Field('d', dict.type, true), new Field('f', f32.type, true)]);
      const b = batchOf(s, [dict.data[0], f32.data[0]], 3);
      expect(evaluate(col('d'), b, ctx)).to.equal(b.data.children[0]);
      expect(resultField(col('d'), s).type.typeId).to.equal(Type.Dictionary);
      expect(values(col('d').eq('x'), b)).to.deep.equal([true, false, true]);
      expect(values(upper(col('d')), b)).to.deep.equal(['X', 'Y', 'X']);
      expect(values(col('d').cast('string'), b)).to.deep.equal(['x', 'y', 'x']);
      expect(values(concat(col('d'), lit('!')), b)).to.deep.equal(['x!', 'y!', 'x!']);
      expect(values(col('f').multiply(2), b)).to.deep.equal([3, 4, 6]);
      expect(String(resultField(col('f').cast('double'), s).type)).to.equal('Float64');
      expect(values(col('f').cast('double'), b)).to.deep.equal([1.5, 2, 3]);
    });

    it('reads dates and timestamps of any unit as millisecond timestamps', () => {
      const day = vectorFromArray([new Date(Date.UTC(2024, 4, 1)), null], new DateDay());
      const us = mkData({
        type: new TimestampMicrosecond(),
        length: 2,
        nullCount: 0,
        data: BigInt64Array.of(90_000_000n, 1500n),
      });
      const s = new Schema([new Field('d', day.type, true), new Field('us', us.type, true)]);
      const b = batchOf(s, [day.data[0], us], 2);
      expect(values(col('d').cast('string'), b)).to.deep.equal(['2024-05-01 00:00:00', null]);
      expect(values(unix_timestamp(col('us')), b)).to.deep.equal([90, 0]);
      expect(values(col('us').gt(col('d')), b)).to.deep.equal([false, null]);
      expect(values(coalesce(col('d'), col('us')), b)).to.deep.equal([new Date(Date.UTC(2024, 4, 1)), new Date(1)]);
    });

    it('writes a bare null literal as a string column of nulls', () => {
      expect(typeOf(lit(null))).to.equal('string');
      expect(values(lit(null))).to.deep.equal([null, null, null, null]);
    });
  });

  describe('nested fields', () => {
    it('reaches struct fields by dotted name and getField, null where the struct is null', () => {
      expect(values(col('dev.type'))).to.deep.equal(['mobile', null, null, 'web']);
      expect(values(col('dev').getField('os').getField('name'))).to.deep.equal(['ios', null, null, 'linux']);
      expect(values(col('dev.os.name').eq('ios'))).to.deep.equal([true, null, null, false]);
      expect(values(upper(col('DEV.Type')))).to.deep.equal(['MOBILE', null, null, 'WEB']);
    });

    it('masks fields of null structs even when the child has a value there', () => {
      const s = schemaFromSpec({ p: { x: 'int' } });
      const b = batchFromRows([{ p: { x: 1 } }, { p: { x: 2 } }], s);
      const struct = b.data.children[0];
      const nulled = struct.clone(
        struct.type,
        0,
        2,
        1,
        [undefined, undefined, new Uint8Array([1])] as never,
        struct.children,
      );
      const nb = batchOf(s, [nulled], 2);
      expect(values(col('p.x'), nb)).to.deep.equal([1, null]);
      expect(values(col('p.x').plus(1), nb)).to.deep.equal([2, null]);
    });

    it('prefers a column whose name contains the dot, and backticks quote one', () => {
      const s = schemaFromSpec({ 'a.b': 'int', a: { b: 'int' } });
      const b = batchFromRows([{ 'a.b': 1, a: { b: 2 } }], s);
      expect(values(col('a.b'), b)).to.deep.equal([1]);
      expect(values(col('`a`.b'), b)).to.deep.equal([2]);
    });

    it('names the missing field and the fields that exist', () => {
      const e = expectError(
        () => resultField(col('dev.tpye'), schema),
        'ANALYSIS',
        /struct 'dev' has no field 'tpye'; available: type, os/,
      );
      expect(e.hint).to.match(/did you mean 'type'/);
      expectError(() => resultField(col('a.x'), schema), 'ANALYSIS', /cannot take field 'x' of column 'a' of type int/);
      expectError(() => resultField(col('s').getField('x'), schema), 'ANALYSIS', /cannot take field 'x' of 's'/);
    });
  });

  describe('when / otherwise and coalesce', () => {
    it('takes the first branch whose condition is true; null conditions fall through', () => {
      const c = when(col('a').gt(2), 'big').when(col('a').ge(1), 'small').otherwise('other');
      expect(values(c)).to.deep.equal(['small', 'other', 'big', 'other']);
      expect(values(when(col('ok'), 1))).to.deep.equal([1, null, null, 1]);
    });

    it('widens branch types as Spark does', () => {
      expect(typeOf(when(col('ok'), 1).otherwise(2.5))).to.equal('double');
      expect(values(when(col('ok'), 1).otherwise(2.5))).to.deep.equal([1, 2.5, 2.5, 1]);
      expect(typeOf(when(col('ok'), 1).otherwise(col('l')))).to.equal('long');
      expect(values(when(col('ok'), col('a')).otherwise('none'))).to.deep.equal(['1', 'none', 'none', '-4']);
      expect(values(when(col('ok'), col('dev')).otherwise(lit(null)).getField('type'))).to.deep.equal([
        'mobile',
        null,
        null,
        'web',
      ]);
      expectError(
        () => resultField(when(col('ok'), col('t')).otherwise(1), schema),
        'ANALYSIS',
        /mixes incompatible types: timestamp, int/,
      );
      expectError(() => resultField(when(col('a'), 1), schema), 'ANALYSIS', /WHEN needs a boolean, got int/);
    });

    it('only chains after when()', () => {
      expectError(() => col('a').when(col('ok'), 1), 'BAD_EXPRESSION', /can only follow when/);
      expectError(() => when(col('ok'), 1).otherwise(2).otherwise(3), 'BAD_EXPRESSION', /only once/);
    });

    it('coalesce returns the first non-null value per row', () => {
      expect(values(coalesce(col('a'), col('l'), lit(0)))).to.deep.equal([1, 2 ** 40, 3, -4]);
      expect(values(coalesce('s', lit('?')))).to.deep.equal(['click', 'view', '?', 'Ünï']);
      expect(values(coalesce(col('b'), col('a')))).to.deep.equal([1.5, 0, 3, -2.5]);
      expect(values(coalesce(lit(null), lit(5)))).to.deep.equal([5, 5, 5, 5]);
    });
  });

  describe('timestamps', () => {
    const tsb = batchFromRows(
      [
        '2024-05-01',
        '2024-05-01T10:00:00Z',
        '2024-05-01 10:00:00.123',
        '2024-05-01T12:00:00+02:00',
        '2024-5-1 9:05',
        ' 2024-05-01T10:00:00.123456-0130 ',
        '2024-02-30',
        'yesterday',
        null,
      ].map((v) => ({ v })),
      schemaFromSpec({ v: 'string' }),
    );
    const utc = (...p: [number, number, number, number?, number?, number?, number?]): Date => new Date(Date.UTC(...p));

    it('to_timestamp parses ISO-8601 as UTC unless a zone is given; unparsable is null', () => {
      expect(values(to_timestamp(col('v')), tsb)).to.deep.equal([
        utc(2024, 4, 1),
        utc(2024, 4, 1, 10),
        utc(2024, 4, 1, 10, 0, 0, 123),
        utc(2024, 4, 1, 10),
        utc(2024, 4, 1, 9, 5),
        utc(2024, 4, 1, 11, 30, 0, 123),
        null,
        null,
        null,
      ]);
    });

    it('to_timestamp with a pattern', () => {
      expect(one(to_timestamp(lit('2024-05-01 10:20:30'), 'yyyy-MM-dd HH:mm:ss'))).to.deep.equal(
        utc(2024, 4, 1, 10, 20, 30),
      );
      expect(one(to_timestamp(lit('01/05/2024 7:05 PM'), 'dd/MM/yyyy h:mm a'))).to.deep.equal(utc(2024, 4, 1, 19, 5));
      expect(one(to_timestamp(lit('2024-05-01T10:20:30.5+0100'), "yyyy-MM-dd'T'HH:mm:ss.SSSX"))).to.deep.equal(
        utc(2024, 4, 1, 9, 20, 30, 500),
      );
      expect(one(to_timestamp(lit('May 1, 2024'), 'MMM d, yyyy'))).to.deep.equal(utc(2024, 4, 1));
      expect(one(to_timestamp(lit('2024-05-01 10:20'), 'yyyy-MM-dd HH:mm:ss'))).to.equal(null);
      expect(one(to_timestamp(lit('2024-05-01 10:20:30 extra'), 'yyyy-MM-dd HH:mm:ss'))).to.equal(null);
      expect(one(to_timestamp(lit('2024-13-01'), 'yyyy-MM-dd'))).to.equal(null);
      expectError(
        () => resultField(to_timestamp(col('s'), 'yyyy-QQ'), schema),
        'ANALYSIS',
        /unsupported pattern letter 'Q'/,
      );
      expectError(() => resultField(to_timestamp(col('s'), "yyyy'T"), schema), 'ANALYSIS', /unterminated quote/);
    });

    it('to_timestamp of numbers is epoch seconds, of timestamps the same instant', () => {
      expect(values(to_timestamp(col('a')))).to.deep.equal([new Date(1000), null, new Date(3000), new Date(-4000)]);
      expect(values(to_timestamp(col('t')))).to.deep.equal(values(col('t')));
    });

    it('timestamp_seconds, timestamp_millis, unix_timestamp and unix_millis convert between epoch numbers and timestamps', () => {
      expect(values(timestamp_seconds(col('b')))).to.deep.equal([new Date(1500), new Date(0), null, new Date(-2500)]);
      expect(values(unix_timestamp(col('t')))).to.deep.equal([1, null, 5, -2]);
      expect(values(timestamp_millis(col('l')))).to.deep.equal([new Date(10), new Date(2 ** 40), null, new Date(-7)]);
      expect(values(unix_millis(col('t')))).to.deep.equal([1000, null, 5000, -1500]);
      expect(values(unix_millis(timestamp_millis(col('b'))))).to.deep.equal([1, 0, null, -3]);
      expectError(
        () => resultField(unix_millis(col('l')), schema),
        'ANALYSIS',
        /unix_millis needs a timestamp, got long/,
      );
      expect(typeOf(unix_timestamp(col('t')))).to.equal('long');
      expect(one(unix_timestamp(lit('2024-05-01 00:00:00')))).to.equal(Date.UTC(2024, 4, 1) / 1000);
      expect(one(unix_timestamp(lit('01.05.2024'), 'dd.MM.yyyy'))).to.equal(Date.UTC(2024, 4, 1) / 1000);
      expect(one(unix_timestamp())).to.equal(ctx.batchTimestampMs / 1000);
      expectError(
        () => resultField(unix_timestamp(col('a')), schema),
        'ANALYSIS',
        /unix_timestamp needs a string or timestamp, got int/,
      );
    });

    it('current_timestamp is the batch time from the context, identical when a batch is replayed', () => {
      const c = current_timestamp();
      expect(values(c)).to.deep.equal([0, 1, 2, 3].map(() => new Date(ctx.batchTimestampMs)));
      const replay = evaluate(c, batch, { batchTimestampMs: ctx.batchTimestampMs });
      expect(valuesOf(replay)).to.deep.equal(values(c));
      expect(valuesOf(evaluate(c, batch, { batchTimestampMs: 0 }))[0]).to.deep.equal(new Date(0));
    });

    it('rejects arithmetic on timestamps with a hint', () => {
      const e = expectError(() => resultField(col('t').plus(1), schema), 'ANALYSIS', /\+ needs numbers, got timestamp/);
      expect(e.hint).to.match(/unix_timestamp/);
    });
  });

  describe('string and math functions', () => {
    it('concat: null if any input is null, other types cast to string', () => {
      expect(values(concat(col('s'), lit(':'), col('a')))).to.deep.equal(['click:1', null, null, 'Ünï:-4']);
      expect(values(concat('s', 's'))).to.deep.equal(['clickclick', 'viewview', null, 'ÜnïÜnï']);
      expect(values(concat(lit('x'), col('b')))).to.deep.equal(['x1.5', 'x0.0', null, 'x-2.5']);
      expect(one(concat(lit('a'), lit('b')))).to.equal('ab');
    });

    it('lower and upper on ASCII and non-ASCII text', () => {
      expect(values(upper(col('s')))).to.deep.equal(['CLICK', 'VIEW', null, 'ÜNÏ']);
      expect(values(lower('s'))).to.deep.equal(['click', 'view', null, 'ünï']);
      const ab = batchFromRows([{ v: 'AbC' }, { v: 'xY' }], schemaFromSpec({ v: 'string' }));
      expect(values(lower(col('v')), ab.slice(1, 2))).to.deep.equal(['xy']);
    });

    it('length counts characters (code points) of strings and bytes of binaries', () => {
      const lb = batchFromRows(
        [
          { v: 'ü€😀', w: new Uint8Array([1, 2, 3]) },
          { v: '', w: null },
        ],
        schemaFromSpec({ v: 'string', w: 'binary' }),
      );
      expect(values(length(col('v')), lb)).to.deep.equal([3, 0]);
      expect(values(length(col('w')), lb)).to.deep.equal([3, null]);
      expect(values(length(col('s')))).to.deep.equal([5, 4, null, 3]);
      expect(typeOf(length(col('s')))).to.equal('int');
    });

    it('abs keeps the type; round is half-up with negative digits', () => {
      expect(values(abs(col('a')))).to.deep.equal([1, null, 3, 4]);
      expect(one(abs(lit(-2147483648)))).to.equal(-2147483648);
      expect(values(abs(col('b')))).to.deep.equal([1.5, 0, null, 2.5]);
      expect(values(round(col('b')))).to.deep.equal([2, 0, null, -3]);
      expect(one(round(lit(2.675), 2))).to.equal(2.68);
      expect(one(round(lit(1.005), 2))).to.equal(1.01);
      expect(one(round(lit(-0.125), 2))).to.equal(-0.13);
      expect(one(round(lit(1234.5678), -2))).to.equal(1200);
      expect(one(round(lit(1250), -2))).to.equal(1300);
      expect(typeOf(round(col('a'), -1))).to.equal('int');
      expect(values(round(col('a'), -1))).to.deep.equal([0, null, 0, 0]);
      expect(values(round(col('a').multiply(10), -1))).to.deep.equal([10, null, 30, -40]);
      expectError(() => resultField(abs(col('t')), schema), 'ANALYSIS', /abs needs a number, got timestamp/);
    });
  });

  describe('JSON form', () => {
    const complex = when(
      col('b').gt(10).and(col('s').eq('click')),
      upper(concat(col('s'), lit('-'), col('a').cast('string'))),
    )
      .when(col('t').lt(lit(new Date(3000))), coalesce(col('dev.type'), lit('none')))
      .otherwise(to_timestamp(lit('2024-01-01'), 'yyyy-MM-dd').cast('string'))
      .alias('out');
    const others = [
      col('l')
        .plus(2n ** 60n)
        .mod(7),
      round(abs(col('b').minus(0.5)), 1),
      unix_timestamp(),
      current_timestamp(),
      timestamp_seconds(col('a')),
      unix_millis(timestamp_millis(col('l'))),
      length(lower(col('s'))),
      col('ok').not().or(lit(null)).isNotNull(),
      lit(NaN).eqNullSafe(Infinity),
    ];

    it('round-trips through JSON.stringify and Column.fromJSON with identical results', () => {
      for (const c of [complex, ...others]) {
        const back = Column.fromJSON(JSON.parse(JSON.stringify(c)));
        expect(back.toJSON()).to.deep.equal(c.toJSON());
        expect(back.toString()).to.equal(c.toString());
        expect(resultField(back, schema).name).to.equal(resultField(c, schema).name);
        expect(valuesOf(evaluate(back, batch, ctx))).to.deep.equal(valuesOf(evaluate(c, batch, ctx)));
      }
      expect(Column.fromJSON(JSON.stringify(complex)).toJSON()).to.deep.equal(complex.toJSON());
    });

    it('rejects malformed JSON expressions with the place of the fault', () => {
      expectError(
        () =>
          Column.fromJSON({
            kind: 'op',
            op: '^',
            left: { kind: 'col', name: 'a' },
            right: { kind: 'lit', type: 'int', value: 1 },
          }),
        'BAD_EXPRESSION',
        /at expression: unknown operator \^/,
      );
      expectError(
        () => Column.fromJSON({ kind: 'not', child: { kind: 'lit', type: 'int', value: 'x' } }),
        'BAD_EXPRESSION',
        /expression\.child: literal of type int/,
      );
      expectError(
        () => Column.fromJSON({ kind: 'call', fn: 'eval', args: [] }),
        'BAD_EXPRESSION',
        /unknown function eval/,
      );
      expectError(() => Column.fromJSON(null), 'BAD_EXPRESSION', /expected an object/);
    });

    it('expressions are immutable', () => {
      const base = col('a');
      const derived = base.plus(1);
      expect(base.toJSON()).to.deep.equal({ kind: 'col', name: 'a' });
      expect(derived.toJSON()).to.not.deep.equal(base.toJSON());
      expect(Object.isFrozen(derived.expr)).to.equal(true);
      expect(() => {
        (derived.expr as { kind: string }).kind = 'col';
      }).to.throw(TypeError);
    });
  });

  describe('analysis', () => {
    const s = schemaFromSpec({ amount: 'double', user_id: 'string', ts: 'timestamp' });

    it('names the missing column, the available ones and a likely fix', () => {
      const e = expectError(
        () => resultField(col('amout').gt(10), s),
        'ANALYSIS',
        /column 'amout' does not exist; available: amount, user_id, ts/,
      );
      expect(e.hint).to.match(/did you mean 'amount'/);
      expectError(
        () => bindExpression(when(col('ts').isNull(), col('nope')), s),
        'ANALYSIS',
        /column 'nope' does not exist/,
      );
    });

    it('resolves names case-insensitively unless ambiguous', () => {
      expect(resultField(col('AMOUNT'), s).name).to.equal('amount');
      const amb = schemaFromSpec({ x: 'int', X: 'int' });
      expect(resultField(col('X'), amb).name).to.equal('X');
      expect(resultField(col('x.Y'), schemaFromSpec({ X: { y: 'int' }, x2: 'int' })).name).to.equal('y');
      expectError(() => resultField(col('xx'), schemaFromSpec({ XX: 'int', Xx: 'int' })), 'ANALYSIS', /ambiguous/);
    });

    it('rejects type errors: boolean logic on numbers, comparing structs, non-boolean filters', () => {
      expectError(() => resultField(col('a').and(true), schema), 'ANALYSIS', /AND needs a boolean, got int/);
      expectError(
        () => resultField(col('dev').eq(col('dev')), schema),
        'ANALYSIS',
        /cannot compare values of type struct/,
      );
      expectError(() => resultField(col('t').eq(true), schema), 'ANALYSIS', /cannot compare timestamp with boolean/);
      expectError(
        () => checkPredicate(col('a').plus(1), schema),
        'ANALYSIS',
        /filter condition '\(a \+ 1\)' is of type int, not boolean/,
      );
      expectError(() => filterIndices(col('s'), batch, ctx), 'ANALYSIS', /not boolean/);
    });
  });

  describe('filters and projections', () => {
    it('filterIndices keeps rows where the predicate is true; null counts as false', () => {
      expect(Array.from(filterIndices(col('a').gt(0).or(col('ok')), batch, ctx))).to.deep.equal([0, 2, 3]);
      expect(Array.from(filterIndices(col('ok'), batch, ctx))).to.deep.equal([0, 3]);
      expect(Array.from(filterIndices(lit(true), batch, ctx))).to.deep.equal([0, 1, 2, 3]);
      expect(Array.from(filterIndices(lit(null), batch, ctx))).to.deep.equal([]);
    });

    it('reads sliced batches at their offsets (bitmaps, booleans, strings, nested fields)', () => {
      const sliced = batch.slice(1, 4);
      expect(Array.from(filterIndices(col('ok'), sliced, ctx))).to.deep.equal([2]);
      expect(values(col('a').plus(1), sliced)).to.deep.equal([null, 4, -3]);
      expect(values(col('s').eq('view'), sliced)).to.deep.equal([true, null, false]);
      expect(values(upper(col('s')), sliced)).to.deep.equal(['VIEW', null, 'ÜNÏ']);
      expect(values(col('dev.os.name'), sliced)).to.deep.equal([null, null, 'linux']);
      expect(values(col('ok').not(), sliced)).to.deep.equal([true, null, false]);
      expect(values(col('t').cast('long'), sliced)).to.deep.equal([null, 5, -2]);
    });

    it('compiled projections produce a batch that survives IPC', () => {
      const p = compileProjection(
        [col('s'), col('a').plus(1).alias('a1'), col('dev.type'), when(col('ok'), col('b')).otherwise(0)],
        schema,
      );
      expect(p.schema.fields.map((f) => f.name)).to.deep.equal(['s', 'a1', 'type', 'CASE WHEN ok THEN b ELSE 0 END']);
      const out = p.apply(batch, ctx);
      const back = tableFromIPC(tableToIPC(new Table([out]))).batches[0];
      expect(rowsFromBatch(back)).to.deep.equal([
        { s: 'click', a1: 2, type: 'mobile', 'CASE WHEN ok THEN b ELSE 0 END': 1.5 },
        { s: 'view', a1: null, type: null, 'CASE WHEN ok THEN b ELSE 0 END': 0 },
        { s: null, a1: 4, type: null, 'CASE WHEN ok THEN b ELSE 0 END': 0 },
        { s: 'Ünï', a1: -3, type: 'web', 'CASE WHEN ok THEN b ELSE 0 END': -2.5 },
      ]);
      const f = compileFilter(col('s').eq('click').or(col('a').lt(0)), schema);
      expect(Array.from(f.indices(batch, ctx))).to.deep.equal([0, 3]);
    });

    it('evaluates over empty batches', () => {
      const empty = batch.slice(0, 0);
      expect(values(col('a').plus(1), empty)).to.deep.equal([]);
      expect(Array.from(filterIndices(col('ok'), empty, ctx))).to.deep.equal([]);
      expect(values(concat(col('s'), lit('x')), empty)).to.deep.equal([]);
    });
  });
});

describe('column functions for text, dates, structs and user functions', () => {
  const texts = schemaFromSpec({ s: 'string', t: 'timestamp', n: 'long' } as never);
  const textRows = batchFromRows(
    [
      {
        s: 'https://www.nexmark.com/ab/c_d/efg/item.htm?query=1&channel_id=42',
        t: new Date(Date.UTC(2024, 1, 29, 23, 5, 9, 7)),
        n: 1,
      },
      { s: null, t: null, n: null },
      { s: 'channel_id=7&x=ü/ü', t: new Date(Date.UTC(1969, 11, 31, 7, 59, 59, 999)), n: 3 },
      { s: '', t: new Date(Date.UTC(2024, 4, 1, 12, 0)), n: 4 },
    ],
    texts,
  );
  const v = (c: Column): unknown[] => values(c, textRows);

  it('date_format writes Java/Spark patterns in UTC, with names, 12-hour clocks and fractions', () => {
    expect(v(date_format('t', 'yyyy-MM-dd'))).to.deep.equal(['2024-02-29', null, '1969-12-31', '2024-05-01']);
    expect(v(date_format('t', 'HH:mm'))).to.deep.equal(['23:05', null, '07:59', '12:00']);
    expect(v(date_format('t', "EEE, d MMM yy h:mm:ss.SSS a 'at' EEEE MMMM"))).to.deep.equal([
      'Thu, 29 Feb 24 11:05:09.007 PM at Thursday February',
      null,
      'Wed, 31 Dec 69 7:59:59.999 AM at Wednesday December',
      'Wed, 1 May 24 12:00:00.000 PM at Wednesday May',
    ]);
    expect(one(date_format(lit('2024-05-01 10:30:00'), 'dd/MM/yyyy HH:mm'))).to.equal('01/05/2024 10:30');
    expectError(
      () => resultField(date_format('t', 'yyyy-MM-dd Q'), texts),
      'ANALYSIS',
      /unsupported pattern letter 'Q'/,
    );
    expectError(
      () => resultField(date_format('n', 'yyyy'), texts),
      'ANALYSIS',
      /date_format needs a timestamp, got long/,
    );
  });

  it('hour is the UTC hour of the day, also before 1970', () => {
    expect(v(hour('t'))).to.deep.equal([23, null, 7, 12]);
    expect(typeOf(hour('t'), texts)).to.equal('int');
  });

  it("regexp_extract gives a group of the first match, '' without a match, null for null", () => {
    const id = regexp_extract('s', '(&|^)channel_id=([^&]*)', 2);
    expect(v(id)).to.deep.equal(['42', null, '7', '']);
    expect(v(regexp_extract('s', '[a-z]+_([a-z])', 0))).to.deep.equal(['c_d', null, 'channel_i', '']);
    expect(v(regexp_extract('s', 'x(y)?', 1))).to.deep.equal(['', null, '', '']);
    expectError(
      () => resultField(regexp_extract('s', '(a)(b)', 3), texts),
      'ANALYSIS',
      /has 2 group\(s\), so it has no group 3/,
    );
    expectError(
      () => resultField(regexp_extract('s', '(a', 1), texts),
      'ANALYSIS',
      /regexp_extract: Invalid regular expression/,
    );
  });

  it('regexp_extract and when over repeated URLs match each distinct value once and agree with a row-by-row match', () => {
    const urls = ['a?channel_id=ü1', 'b?x=1', null, 'c?q=2&channel_id=', 'd?channel_id=9&z'];
    const channels = ['Apple', 'x', 'baidu', null, 'y'];
    const rows = Array.from({ length: 300 }, (_, i) => ({ s: urls[(i * 7) % 5], c: channels[i % 5] }));
    const twoStrings = schemaFromSpec({ s: 'string', c: 'string' } as never);
    const all = batchFromRows(rows, twoStrings);
    // A slice: its utf8 offsets do not start at 0.
    const part = all.slice(17, 263);
    // As many rows with the same schema, other values: a subexpression computed once per batch is not reused.
    const shifted = batchFromRows([...rows.slice(1), rows[0]], twoStrings);
    const pattern = /(&|\?)channel_id=([^&]*)/;
    const id = regexp_extract('s', '(&|\\?)channel_id=([^&]*)', 2);
    const label = when(lower(col('c')).eq('apple'), '0')
      .when(col('c').eq('baidu'), lit(null))
      .when(id.ne(''), id)
      .otherwise('none');
    for (const b of [all, part, shifted, all]) {
      const expected = rowsFromBatch(b).map((r) => {
        const s = r.s as string | null;
        const c = r.c as string | null;
        const m = s === null ? null : (pattern.exec(s)?.[2] ?? '');
        const l = c?.toLowerCase() === 'apple' ? '0' : c === 'baidu' ? null : m !== null && m !== '' ? m : 'none';
        return { m, l };
      });
      expect(values(id, b)).to.deep.equal(expected.map((e) => e.m));
      expect(values(label, b)).to.deep.equal(expected.map((e) => e.l));
      expect(values(concat(label, lit('!')), b)).to.deep.equal(expected.map((e) => (e.l === null ? null : `${e.l}!`)));
    }
  });

  it('split_part counts parts from 1 or from the end; missing parts are empty; multibyte text stays whole', () => {
    expect(v(split_part('s', '/', 4))).to.deep.equal(['ab', null, '', '']);
    expect(v(split_part('s', '/', -1))).to.deep.equal(['item.htm?query=1&channel_id=42', null, 'ü', '']);
    expect(v(split_part('s', '/', -2))).to.deep.equal(['efg', null, 'channel_id=7&x=ü', '']);
    expect(v(split_part('s', '=ü', 2))).to.deep.equal(['', null, '/ü', '']);
    expect(v(split_part('s', '', 1))).to.deep.equal(v(col('s')));
    expect(v(split_part('s', '', 2))).to.deep.equal(['', null, '', '']);
    expect(() => split_part('s', '/', 0)).to.throw(/part number other than 0/);
  });

  it('isin is IN: true on a match, null for a null value or when only a null could match', () => {
    expect(v(col('n').isin(1, 4))).to.deep.equal([true, null, false, true]);
    expect(v(col('n').isin(1, null))).to.deep.equal([true, null, null, null]);
    expect(v(lower(split_part('s', '/', 1)).isin('https:', 'channel_id=7&x=ü'))).to.deep.equal([
      true,
      null,
      true,
      false,
    ]);
    expect(String(col('n').isin(1, 4))).to.equal('(n IN (1, 4))');
  });

  it('struct builds a struct column named after its columns, readable field by field', () => {
    const s = struct('n', col('t').alias('time'), hour('t'));
    expect((resultField(s, texts).type as Struct).children.map((f) => f.name)).to.deep.equal(['n', 'time', 'hour(t)']);
    expect(v(s)[1]).to.deep.equal({ n: null, time: null, 'hour(t)': null });
    const proj = compileProjection([s.alias('row')], texts).apply(textRows, ctx);
    expect(values(col('row.time'), proj)).to.deep.equal(v(col('t')));
  });

  it('udf applies a function to the rows where no argument is null, its result typed as declared', () => {
    const calls: unknown[][] = [];
    const describe = udf((s: string, n: number, t: Date) => {
      calls.push([s, n, t]);
      return n === 4 ? undefined : `${s.length}/${n}/${t.getUTCFullYear()}`;
    }, 'string');
    expect(v(describe('s', 'n', 't'))).to.deep.equal(['65/1/2024', null, '18/3/1969', null]);
    expect(calls.length).to.equal(3);
    const half = udf(function half(n: number) {
      return n / 2;
    }, 'long');
    expect(v(half('n'))).to.deep.equal([0, null, 1, 2]);
    expect(String(half('n'))).to.equal('half(n)');
    const boom = udf(function boom() {
      throw new Error('no');
    }, 'int');
    expectError(() => v(boom('n')), 'USER_CODE', /user-defined function boom failed: no/);
  });
});
