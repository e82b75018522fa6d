import { expect } from 'chai';
import { col } from '../../lib/api/column.js';
import { batchFromRows, schemaFromSpec } from '../../lib/arrow/index.js';
import { aggregateFunction } from '../../lib/plan/aggregates/aggregate-functions.js';
import { scalarsOf } from '../../lib/plan/aggregates/column-values.js';
import { AggregateOperator } from '../../lib/plan/operators/aggregate.js';
import { type BatchKeys, LocalKeys } from '../../lib/plan/operators/aggregate-keys.js';
import { hashKey, partitionOf } from '../../lib/state/state-partitioner.js';

/** Batch keys of rows given as key components, as the aggregate operator evaluates them. */
function batchKeys(rows: unknown[][]): BatchKeys {
  const width = rows[0]?.length ?? 0;
  const components = Array.from({ length: width }, (_, c) => rows.map((r) => r[c]));
  return { batch: { numRows: rows.length } as BatchKeys['batch'], components, args: [] };
}

describe('local grouping keys', () => {
  it('numbers typed numeric key columns as it numbers their JS values, the two forms mixed across batches', () => {
    const n = 5000;
    const auction = Float64Array.from({ length: n }, (_, i) => 1000 + ((i * 7919) % 1700) + (i % 3 === 0 ? 0.5 : 0));
    const day = Float64Array.from({ length: n }, (_, i) => [19_723, -0, 0, Number.NaN][i % 4]);
    const valid = Uint8Array.from({ length: n }, (_, i) => (i % 11 === 0 ? 0 : 1));
    const values = (v: Float64Array, ok: Uint8Array | null) => Array.from(v, (x, i) => (ok && !ok[i] ? null : x));
    const typed = (from: number): BatchKeys => ({
      batch: { numRows: n - from } as BatchKeys['batch'],
      components: [
        { vals: auction.subarray(from), valid: null },
        { vals: day.subarray(from), valid: valid.subarray(from) },
      ],
      args: [],
    });
    const plain = (from: number): BatchKeys => ({
      batch: { numRows: n - from } as BatchKeys['batch'],
      components: [values(auction, null).slice(from), values(day, valid).slice(from)],
      args: [],
    });
    const ids = (keys: LocalKeys, batches: BatchKeys[]) =>
      batches.map((k) => Array.from({ length: k.batch.numRows }, (_, i) => keys.of(k, i)));
    const fromTyped = new LocalKeys(2, null);
    const fromPlain = new LocalKeys(2, null);
    const typedIds = ids(fromTyped, [typed(0), plain(1234)]);
    expect(typedIds).to.deep.equal(ids(fromPlain, [plain(0), typed(1234)]));
    expect(fromTyped.components).to.deep.equal(fromPlain.components);
    // -0 and 0 are one day, NaN one more, null another: four days per auction at most.
    const distinct = new Set(fromPlain.components.map(([a, d]) => `${a}/${Object.is(d, -0) ? 0 : d}`));
    expect(fromPlain.components.length).to.equal(distinct.size);
    expect(new Set(fromPlain.components.map(([, d]) => (Object.is(d, -0) ? 0 : d))).size).to.equal(4);
    expect(typedIds[1]).to.deep.equal(typedIds[0].slice(1234));
  });

  it('numbers keys of several components in order of first appearance, across batches, equal keys equal', () => {
    const first = [
      [1, 'a', true],
      [1, 'b', true],
      [1, 'a', true],
      [null, 'a', true],
      [1, 'a', false],
      [Number.NaN, null, true],
      [-0, 'a', true],
      [0, 'a', true],
      [Number.NaN, null, true],
      ['1', 'a', true],
      [{ x: 1 }, 'a', true],
      [{ x: 1 }, 'a', true],
      [{ x: 2 }, 'a', true],
    ];
    const second = [
      [0, 'a', true],
      [7, 'z', false],
      [1, 'b', true],
      [7, 'z', false],
    ];
    const keys = new LocalKeys(3, null);
    const kids = [batchKeys(first), batchKeys(second)].map((k) =>
      Array.from({ length: k.batch.numRows }, (_, i) => keys.of(k, i)),
    );
    expect(kids).to.deep.equal([
      [0, 1, 0, 2, 3, 4, 5, 5, 4, 6, 7, 7, 8],
      [5, 9, 1, 9],
    ]);
    expect(keys.components).to.deep.equal([
      [1, 'a', true],
      [1, 'b', true],
      [null, 'a', true],
      [1, 'a', false],
      [Number.NaN, null, true],
      [-0, 'a', true],
      ['1', 'a', true],
      [{ x: 1 }, 'a', true],
      [{ x: 2 }, 'a', true],
      [7, 'z', false],
    ]);
  });

  it('gives keys of one component and of none (a global aggregation) their ids', () => {
    const one = new LocalKeys(1, null);
    const k = batchKeys([[5], [6], [5], [null], [6]]);
    expect(Array.from({ length: 5 }, (_, i) => one.of(k, i))).to.deep.equal([0, 1, 0, 2, 1]);
    expect(one.components).to.deep.equal([[5], [6], [null]]);
    const none = new LocalKeys(0, null);
    const rows = { batch: { numRows: 3 } as BatchKeys['batch'], components: [], args: [] };
    expect([0, 1, 2].map((i) => none.of(rows, i))).to.deep.equal([0, 0, 0]);
    expect(none.components).to.deep.equal([[]]);
  });

  it('keeps many distinct pairs apart through the tables growing', () => {
    const keys = new LocalKeys(2, null);
    const rows = Array.from({ length: 20_000 }, (_, i) => [i % 997, `d${i % 13}`]);
    const k = batchKeys(rows);
    const ids = rows.map((_, i) => keys.of(k, i));
    const expected = new Map<string, number>();
    for (const r of rows) if (!expected.has(`${r[0]}|${r[1]}`)) expected.set(`${r[0]}|${r[1]}`, expected.size);
    expect(ids).to.deep.equal(rows.map((r) => expected.get(`${r[0]}|${r[1]}`)));
    expect(keys.components).to.have.length(expected.size);
  });
});

describe('state partitions of grouping keys', () => {
  it('hashes several key columns a column at a time to the partitions of their values', () => {
    const schema = schemaFromSpec({ s: 'string', n: 'long', d: 'double', t: 'timestamp' } as never);
    const strings = ['a', 'ü€', null, '', 'a'];
    const rows = Array.from({ length: 500 }, (_, i) => ({
      s: strings[i % 5],
      n: i % 7 === 0 ? null : (i * 31) % 101,
      d: i % 11 === 0 ? null : i / 4,
      t: new Date(1_700_000_000_000 + (i % 13) * 1000),
    }));
    const batch = batchFromRows(rows, schema).slice(3, 480);
    const op = new AggregateOperator({
      groupings: ['s', 'n', 'd', 't'].map((c) => ({ kind: 'key', column: col(c) })),
      aggregates: [{ name: 'count', options: {}, fn: aggregateFunction('count', 0), args: [] }],
      allowedLatenessMs: 0,
      changelog: false,
    });
    // The partition of the combined hashKey of each row's values, as the state of earlier runs was placed.
    const columns = ['s', 'n', 'd', 't'].map((c) => scalarsOf(batch.getChild(c)!.data[0]));
    const expected = Array.from({ length: batch.numRows }, (_, i) => {
      let h = 17;
      for (const c of columns) h = (Math.imul(h, 31) + hashKey(c[i])) | 0;
      return partitionOf(h, 7);
    });
    expect(Array.from(op.partitionsOf(batch, 7))).to.deep.equal(expected);
    expect(new Set(expected).size).to.be.greaterThan(3);
  });
});
