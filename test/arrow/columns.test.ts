import { expect } from 'chai';
import { tableFromIPC, tableToIPC, Table } from 'apache-arrow';
import { batchFromRows, rowsFromBatch, inferSchema, schemaFromSpec, takeRows, schemaToSpec } from '../../lib/arrow/index.js';

describe('arrow columns', () => {
  const rows = [
    { id: 'a', n: 1.5, l: 7, ok: true, ts: new Date(1000), tags: ['x', 'y'], dev: { type: 'mobile' } },
    { id: 'ü€', n: null, l: null, ok: false, ts: null, tags: [], dev: null },
    { id: null, n: -3, l: 2 ** 40, ok: null, ts: new Date(2 ** 41), tags: null, dev: { type: null } },
  ];
  const schema = schemaFromSpec({ id: 'string', n: 'double', l: 'long', ok: 'boolean', ts: 'timestamp', tags: ['string'], dev: { type: 'string' } });

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

  it('infers a schema from rows', () => {
    expect(schemaToSpec(inferSchema(rows))).to.deep.equal({ id: 'string', n: 'double', l: 'double', ok: 'boolean', ts: 'timestamp', tags: ['string'], dev: { type: 'string' } });
  });

  it('parses DDL schemas and rejects unknown types with a hint', () => {
    expect(schemaToSpec(schemaFromSpec('a STRING, b BIGINT'))).to.deep.equal({ a: 'string', b: 'long' });
    expect(() => schemaFromSpec('a STRANG')).to.throw(/cannot read schema entry 'a STRANG'/);
  });
});
