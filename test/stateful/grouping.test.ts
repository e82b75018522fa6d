import {
  type Data,
  Dictionary,
  Field,
  Float16,
  Float32,
  Int32,
  Int64,
  makeData,
  RecordBatch,
  Schema,
  Struct,
  Uint8,
  Utf8,
  vectorFromArray,
} from 'apache-arrow';
import { expect } from 'chai';
import { takeRows } from '../../lib/arrow/batch-ops.js';
import { batchFromRows, rowsFromBatch } from '../../lib/arrow/columns.js';
import { schemaFromSpec } from '../../lib/arrow/schema.js';
import {
  type Group,
  type Grouping,
  groupBatches,
  groupRows,
  keysOfBatch,
  partitionsOfBatch,
} from '../../lib/plan/operators/grouping.js';
import type { KeyIndex } from '../../lib/plan/operators/key-index.js';
import { partitionOf } from '../../lib/state/state-partitioner.js';

function byColumn(column: string): Grouping {
  return { keyOf: (row: Record<string, unknown>) => row[column], column };
}

function oneColumnBatch(name: string, data: Data): RecordBatch {
  const schema = new Schema([new Field(name, data.type, true)]);
  return new RecordBatch(
    schema,
    makeData({ type: new Struct(schema.fields), length: data.length, nullCount: 0, children: [data] }),
  );
}

/** What the engine relied on before operators partitioned by themselves: partitionOf of each key read as a JS value. */
function expected(grouping: Grouping, batch: RecordBatch, n: number): number[] {
  return keysOfBatch(grouping, batch).map((k) => partitionOf(k, n));
}

describe('grouping: state partitions of a batch', () => {
  const rows = Array.from({ length: 200 }, (_, i) => ({
    s: i % 17 === 0 ? null : i % 5 === 0 ? `é${i}😀` : `k${i}`,
    d: i % 13 === 0 ? null : i * 0.37 - 20,
    l: i % 11 === 0 ? null : i * 1_000_003 - 50_000_000,
    n: i % 7 === 0 ? null : i - 100,
    b: i % 3 === 0,
    t: new Date(1_700_000_000_000 + i * 1000),
  }));
  const batch = batchFromRows(
    rows,
    schemaFromSpec({ s: 'string', d: 'double', l: 'long', n: 'int', b: 'boolean', t: 'timestamp' }),
  );

  for (const column of ['s', 'd', 'l', 'n', 'b', 't']) {
    it(`a '${column}' key column partitions as partitionOf of its values, sliced batches included`, () => {
      for (const n of [1, 4, 7]) {
        const g = byColumn(column);
        expect([...partitionsOfBatch(g, batch, n)], `${n} partitions`).to.deep.equal(expected(g, batch, n));
        const slice = batch.slice(13, 150);
        expect([...partitionsOfBatch(g, slice, n)], `slice, ${n} partitions`).to.deep.equal(expected(g, slice, n));
      }
    });
  }

  it('dictionary, small-integer and float32/16 key columns partition as their values', () => {
    const columns: Data[] = [
      vectorFromArray(['x', 'y', 'x', null, 'zé', 'y'], new Dictionary(new Utf8(), new Int32())).data[0],
      vectorFromArray([1, 2, 255, null, 0], new Uint8()).data[0],
      vectorFromArray([1.5, -2.25, null, 3], new Float32()).data[0],
      vectorFromArray([1.5, -2.25, null, 3], new Float16()).data[0],
      vectorFromArray([1n, -(2n ** 40n), null, 2n ** 62n], new Int64()).data[0],
    ];
    for (const data of columns) {
      const b = oneColumnBatch('k', data);
      expect([...partitionsOfBatch(byColumn('k'), b, 5)], String(data.type)).to.deep.equal(
        expected(byColumn('k'), b, 5),
      );
    }
  });

  it('a key function partitions as partitionOf of what it returns', () => {
    const g: Grouping = { keyOf: (row) => [row.s, row.n] };
    expect([...partitionsOfBatch(g, batch, 6)]).to.deep.equal(expected(g, batch, 6));
  });
});

describe('grouping: rows of a partition by key', () => {
  const schema = schemaFromSpec({ user: 'string', n: 'int', tag: 'string' });
  const batches = [0, 1, 2].map((b) =>
    batchFromRows(
      Array.from({ length: 3000 }, (_, i) => ({
        user: (i + b) % 23 === 0 ? null : i % 7 === 0 ? `ü${(i * 13 + b) % 500}😀` : `u${(i * 31 + b) % 1700}`,
        n: b * 10_000 + i,
        tag: i % 5 === 0 ? null : `t${i % 3}`,
      })),
      schema,
    ),
  );

  /** Groups as [key, values] pairs in their order: what the operators call their functions with. */
  function pairs(groups: KeyIndex<Group>): [unknown, unknown[]][] {
    return groups.values().map((g) => [g.key, g.values]);
  }

  function viaRows(g: Grouping, bs: RecordBatch[], keep?: (Uint8Array | null)[]): [unknown, unknown[]][] {
    return pairs(
      groupRows(
        g,
        bs.map((b, k) => rowsFromBatch(b).filter((_, i) => !keep?.[k] || keep[k]![i] === 1)),
      ),
    );
  }

  it('a utf8 key column groups as the row path does: same groups, order, rows, nulls and non-ASCII keys', () => {
    const g = byColumn('user');
    const groups = groupBatches(g, batches);
    expect(groups.size).to.be.greaterThan(1000);
    expect(pairs(groups)).to.deep.equal(viaRows(g, batches));
  });

  it('puts every row with an empty-string key in one group', () => {
    const empty = [
      batchFromRows(
        [
          { user: '', n: 1, tag: null },
          { user: 'a', n: 2, tag: null },
          { user: '', n: 3, tag: null },
        ],
        schema,
      ),
    ];
    const groups = pairs(groupBatches(byColumn('user'), empty));
    expect(groups.map(([k]) => k)).to.deep.equal(['', 'a']);
    expect(groups).to.deep.equal(viaRows(byColumn('user'), empty));
  });

  it('honours masks, slices and mapValues', () => {
    const keep = batches.map((b, k) =>
      k === 1 ? null : Uint8Array.from({ length: b.numRows }, (_, i) => (i % 4 === k ? 0 : 1)),
    );
    const g: Grouping = {
      ...byColumn('user'),
      toValue: (row) => `${row.n}:${row.tag}`,
    };
    expect(pairs(groupBatches(g, batches, keep))).to.deep.equal(viaRows(g, batches, keep));
    const sliced = [batches[0].slice(100, 2500), batches[2].slice(7, 3000)];
    expect(pairs(groupBatches(byColumn('user'), sliced))).to.deep.equal(viaRows(byColumn('user'), sliced));
  });

  it('looks keys up after grouping (timed-out and initial-state keys) and adds new ones at the end', () => {
    const groups = groupBatches(byColumn('user'), batches);
    const first = groups.values()[0];
    expect(groups.has(first.key)).to.equal(true);
    expect(groups.get(null)).to.not.equal(undefined);
    expect(groups.has('nobody')).to.equal(false);
    const before = groups.size;
    const added = groups.getOrCreate('nobody', () => ({ key: 'nobody', values: [] }));
    expect(groups.getOrCreate(first.key, () => ({ key: 'x', values: [] }))).to.equal(first);
    expect(groups.values()[before]).to.equal(added);
  });

  it("a key function's rows are made once: partitioning keeps them for the state partitions that group them", () => {
    const seen = new Set<unknown>();
    const g: Grouping = {
      keyOf: (row) => {
        seen.add(row);
        return row.tag;
      },
    };
    // As an exchange does: the state partition of every row, then each partition's rows taken out.
    for (const b of batches) {
      const of = partitionsOfBatch(g, b, 3);
      const parts = [0, 1, 2].map((p) =>
        takeRows(
          b,
          [...of.keys()].filter((i) => of[i] === p),
        ),
      );
      const made = seen.size;
      const grouped = parts.map((part) => pairs(groupBatches(g, [part])));
      expect(seen.size, 'no row made again').to.equal(made);
      for (const [p, part] of parts.entries()) {
        expect(grouped[p]).to.deep.equal(viaRows(g, [part]));
        for (const [, values] of grouped[p]) for (const v of values) expect(seen.has(v)).to.equal(true);
      }
    }
  });

  it('hands kept rows on once: grouping the same batch again makes new rows', () => {
    const g: Grouping = { keyOf: (row) => row.user };
    partitionsOfBatch(g, batches[0], 2);
    const first = pairs(groupBatches(g, [batches[0]]));
    (first[0][1][0] as Record<string, unknown>).n = -1;
    const again = pairs(groupBatches(g, [batches[0]]));
    expect(again).to.deep.equal(viaRows(g, [batches[0]]));
    expect(again[0][1][0]).to.not.equal(first[0][1][0]);
  });

  it('non-utf8 key columns and key functions take the row path', () => {
    for (const g of [byColumn('n'), { keyOf: (row: { tag: string | null }) => row.tag } as Grouping]) {
      expect(pairs(groupBatches(g, batches))).to.deep.equal(viaRows(g, batches));
    }
  });
});
