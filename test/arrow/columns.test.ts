import {
  DateDay,
  Dictionary,
  Field,
  Int32,
  makeData,
  RecordBatch,
  Schema,
  Struct,
  Table,
  tableFromIPC,
  tableToIPC,
  Utf8,
  vectorFromArray,
} from 'apache-arrow';
import { expect } from 'chai';
import {
  batchFromRows,
  inferSchema,
  rowBuilder,
  rowsFromBatch,
  schemaFromSpec,
  schemaToSpec,
  takeRows,
  valuesOf,
} from '../../lib/arrow/index.js';

describe('arrow columns', () => {
  const rows = [
    { id: 'a', n: 1.5, l: 7, ok: true, ts: new Date(1000), tags: ['x', 'y'], dev: { type: 'mobile' } },
    { id: 'ü€', n: null, l: null, ok: false, ts: null, tags: [], dev: null },
    { id: null, n: -3, l: 2 ** 40, ok: null, ts: new Date(2 ** 41), tags: null, dev: { type: null } },
  ];
  const schema = schemaFromSpec({
    id: 'string',
    n: 'double',
    l: 'long',
    ok: 'boolean',
    ts: 'timestamp',
    tags: ['string'],
    dev: { type: 'string' },
  });

  it('round-trips rows through a batch, nulls and nesting included', () => {
    expect(rowsFromBatch(batchFromRows(rows, schema))).to.deep.equal(rows);
  });

  it('survives IPC and keeps values', () => {
    const t = tableFromIPC(tableToIPC(new Table([batchFromRows(rows, schema)])));
    expect(rowsFromBatch(t.batches[0])).to.deep.equal(rows);
  });

  it('takes rows by index, in the given order', () => {
    const b = takeRows(batchFromRows(rows, schema), [2, 0]);
    expect(rowsFromBatch(b)).to.deep.equal([rows[2], rows[0]]);
    expect(rowsFromBatch(takeRows(b.slice(1, 2), [0]))).to.deep.equal([rows[0]]);
  });

  it('reads utf8 values exactly: non-ASCII, a leading BOM, empty, long, nulls, sliced columns', () => {
    const values = ['', 'k0001', 'ü€😀', '\uFEFFbom kept', 'x'.repeat(300), null, 'añb', 'é'.repeat(40)];
    const data = batchFromRows(
      values.map((v) => ({ v })),
      schemaFromSpec({ v: 'string' }),
    ).data.children[0];
    expect(valuesOf(data)).to.deep.equal(values);
    expect(valuesOf(data.slice(2, 5))).to.deep.equal(values.slice(2, 7));
  });

  it('reads runs of equal utf8 values as the same strings, and neighbours of equal length as their own', () => {
    const values = ['t1', 't1', 't1', null, 't1', 't2', 'tü', 'tü', 'ab', 'ba', '', '', 'k0001', 'k0002', 'k0002'];
    const data = batchFromRows(
      values.map((v) => ({ v })),
      schemaFromSpec({ v: 'string' }),
    ).data.children[0];
    expect(valuesOf(data)).to.deep.equal(values);
    expect(valuesOf(data.slice(1, 9))).to.deep.equal(values.slice(1, 10));
  });

  it('builds rows with any field names: quotes, backslashes, non-ASCII, __proto__ as an own property', () => {
    const names = ['a"b', 'x\\y', 'ü €', 'constructor', '__proto__', ''];
    const cols = names.map((_, k) => [k, k * 10]);
    const rows = [0, 1].map((r) => rowBuilder(names)(cols, r));
    expect(rows.map((o) => Object.keys(o))).to.deep.equal([names, names]);
    expect(rows[1]['a"b']).to.equal(0);
    expect(rows[1]['ü €']).to.equal(20);
    expect(Object.getOwnPropertyDescriptor(rows[0], '__proto__')?.value).to.equal(4);
    expect(Object.getPrototypeOf(rows[0])).to.equal(Object.prototype);
    expect(rowBuilder(names)).to.equal(rowBuilder([...names]));
  });

  it('infers a schema from rows', () => {
    expect(schemaToSpec(inferSchema(rows))).to.deep.equal({
      id: 'string',
      n: 'double',
      l: 'double',
      ok: 'boolean',
      ts: 'timestamp',
      tags: ['string'],
      dev: { type: 'string' },
    });
  });

  it('parses DDL schemas and rejects unknown types with a hint', () => {
    expect(schemaToSpec(schemaFromSpec('a STRING, b BIGINT'))).to.deep.equal({ a: 'string', b: 'long' });
    expect(() => schemaFromSpec('a STRANG')).to.throw(/cannot read schema entry 'a STRANG'/);
  });

  it('takes rows of dictionary columns and reads day dates as dates', () => {
    const dict = vectorFromArray(['x', 'y', 'x', 'z'], new Dictionary(new Utf8(), new Int32()));
    const days = makeData({ type: new DateDay(), length: 2, data: new Int32Array([0, 19723]) });
    const schema = new Schema([new Field('d', dict.type, true)]);
    const b = new RecordBatch(
      schema,
      makeData({ type: new Struct(schema.fields), length: 4, nullCount: 0, children: [dict.data[0]] }),
    );
    expect(rowsFromBatch(takeRows(b, [3, 1, 1]))).to.deep.equal([{ d: 'z' }, { d: 'y' }, { d: 'y' }]);
    const ds = new Schema([new Field('day', new DateDay(), true)]);
    const db = new RecordBatch(
      ds,
      makeData({ type: new Struct(ds.fields), length: 2, nullCount: 0, children: [days] }),
    );
    expect(rowsFromBatch(db)).to.deep.equal([{ day: new Date('1970-01-01') }, { day: new Date('2024-01-01') }]);
  });
});
