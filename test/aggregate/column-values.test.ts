import { Float64, Int64, TimestampMillisecond, Utf8 } from 'apache-arrow';
import { expect } from 'chai';
import { dataFromValues, utf8Data } from '../../lib/arrow/columns.js';
import { ArgColumn, aggregateFunction } from '../../lib/plan/aggregates/aggregate-functions.js';
import { compareScalars, scalarsOf, Utf8Interner } from '../../lib/plan/aggregates/column-values.js';

describe('aggregation column readers', () => {
  it('Utf8Interner gives equal values one id across columns, nulls -1, through table growth and sliced data', () => {
    const many = Array.from({ length: 300 }, (_, i) => `v${i % 150}`);
    const a = utf8Data(['x', null, 'ü€', 'x', '', ...many]);
    const b = utf8Data([null, 'ü€', 'y', '', 'x', ...many.slice().reverse()]).slice(1, 200); // (offset, length)
    const interner = new Utf8Interner();
    const ia = interner.ids(a);
    const ib = interner.ids(b);
    const read = (ids: Int32Array): (string | null)[] =>
      Array.from(ids, (id) => (id < 0 ? null : interner.strings[id]));
    expect(read(ia)).to.deep.equal(['x', null, 'ü€', 'x', '', ...many]);
    expect(read(ib)).to.deep.equal(['ü€', 'y', '', 'x', ...many.slice().reverse()].slice(0, 200));
    expect(ib[0]).to.equal(ia[2]);
    expect(ib[3]).to.equal(ia[0]);
    expect(interner.strings).to.have.length(new Set(['x', 'ü€', '', 'y', ...many]).size);
  });

  it('scalarsOf shares one string per distinct utf8 value', () => {
    const vals = scalarsOf(utf8Data(['page-1', 'page-2', 'page-1', null]));
    expect(vals).to.deep.equal(['page-1', 'page-2', 'page-1', null]);
    expect(vals[0]).to.equal(vals[2]);
  });

  it('count(column) reads validity bits at the data offset of a sliced column', () => {
    const data = dataFromValues(new Utf8(), ['a', null, 'b', null, null, 'c', 'd', null, 'e', 'f']).slice(2, 6);
    const partial = aggregateFunction('count', 1).newPartial(2);
    partial.update(new Int32Array([0, 1, 1, 0, 1, 1]), [new ArgColumn(data)]);
    expect([partial.buffer(0), partial.buffer(1)]).to.deep.equal([2, 1]);
  });

  it('collect_set ordered by a timestamp: earliest time per value, null times first, ties by value', () => {
    const fn = aggregateFunction('collect_set', 2);
    const vals = utf8Data(['/b', '/a', '/c', '/a', '/d', null, '/e', '/f']);
    const ts = dataFromValues(new TimestampMillisecond(), [5, 9, 5, 2, null, 1, 3, 3]);
    const partial = fn.newPartial(1);
    partial.update(new Int32Array(8), [new ArgColumn(vals), new ArgColumn(ts)]);
    const older = new Map<unknown, unknown>([
      ['/e', 1],
      ['/b', 7],
    ]);
    expect(fn.result(fn.merge(older, partial.buffer(0)))).to.deep.equal(['/d', '/e', '/a', '/f', '/b', '/c']);
    // By a string order the generic comparison decides, with the same rules.
    const byText = fn.newPartial(1);
    byText.update(new Int32Array(3), [
      new ArgColumn(utf8Data(['x', 'y', 'x'])),
      new ArgColumn(utf8Data(['b', 'a', 'a'])),
    ]);
    expect(fn.result(byText.buffer(0))).to.deep.equal(['x', 'y']);
  });

  it('count_by, top_k and count_distinct count the same through the dense, the interned and the generic paths', () => {
    const pages = Array.from({ length: 200 }, (_, i) => (i % 17 === 0 ? null : `/p/${(i * 7) % 11}`));
    const groups = new Int32Array(pages.map((_, i) => (i % 9 === 0 ? -1 : i % 3)));
    for (const name of ['count_by', 'top_k', 'count_distinct'] as const) {
      const fn = aggregateFunction(name, 1);
      const run = (numGroups: number, data: ReturnType<typeof utf8Data>): unknown[] => {
        const partial = fn.newPartial(numGroups);
        // Two updates, as with several batches in one run: counts add up.
        partial.update(groups, [new ArgColumn(data)]);
        partial.update(groups, [new ArgColumn(data)]);
        return [0, 1, 2].map((g) => fn.result(partial.buffer(g)));
      };
      const dense = run(3, utf8Data(pages));
      // 10,000 groups × 11 values is more than 4 cells per row: the per-row maps.
      expect(run(10_000, utf8Data(pages)), name).to.deep.equal(dense);
      // The generic path (values as scalars), reached here by hiding the interned ids.
      const generic = fn.newPartial(3);
      const scalars = new ArgColumn(utf8Data(pages));
      Object.defineProperty(scalars, 'interned', { value: () => null });
      generic.update(groups, [scalars]);
      generic.update(groups, [scalars]);
      expect(
        [0, 1, 2].map((g) => fn.result(generic.buffer(g))),
        name,
      ).to.deep.equal(dense);
    }
    // Numbers (longs with nulls, doubles with -0 and NaN) go to the sets from the typed array, as the scalars would.
    const distinct = aggregateFunction('count_distinct', 1);
    const longs = dataFromValues(
      new Int64(),
      pages.map((s, i) => (s === null ? null : BigInt((i * 7) % 11))),
    );
    const doubles = dataFromValues(new Float64(), [0, -0, Number.NaN, Number.NaN, 1.5, null, 1.5, 2]);
    for (const [data, g] of [
      [longs, groups],
      [doubles, new Int32Array(8)],
    ] as const) {
      const fromNumbers = distinct.newPartial(3);
      fromNumbers.update(g, [new ArgColumn(data)]);
      const fromScalars = new Array<Set<unknown>>(3);
      scalarsOf(data).forEach((v, i) => {
        if (g[i] < 0 || v === null) return;
        fromScalars[g[i]] ??= new Set();
        fromScalars[g[i]].add(v);
      });
      expect([0, 1, 2].map((k) => fromNumbers.buffer(k))).to.deep.equal(
        [0, 1, 2].map((k) => fromScalars[k] ?? new Set()),
      );
    }
    const byPage = aggregateFunction('count_by', 1);
    const p = byPage.newPartial(1);
    p.update(new Int32Array(4), [new ArgColumn(utf8Data(['/a', '/b', '/a', null]))]);
    expect(byPage.result(p.buffer(0))).to.deep.equal([
      ['/a', 2],
      ['/b', 1],
    ]);
  });

  it('collect_set ordered: values by order then by value, for short and long sets, numeric and mixed orders', () => {
    const fn = aggregateFunction('collect_set', 2);
    for (const size of [5, 32, 33, 120]) {
      for (const mixed of [false, true]) {
        const m = new Map<unknown, unknown>();
        for (let i = 0; i < size; i++) m.set(`/p/${(i * 37) % size}`, mixed && i % 7 === 0 ? null : (i * 13) % 10);
        const expected = [...m]
          .sort((x, y) => compareScalars(x[1], y[1]) || compareScalars(x[0], y[0]))
          .map((e) => e[0]);
        expect(fn.result(m), `${size} ${mixed}`).to.deep.equal(expected);
      }
    }
  });

  it('compares a struct kept as an object (state from before tuples) with one kept as a tuple, field by field', () => {
    const old = { auction: 7, price: 10, dateTime: new Date(5000), extra: { a: 1, at: new Date(1) } };
    expect(compareScalars(old, [7, 10, 5000, [1, 1]])).to.equal(0);
    expect(compareScalars([7, 10, 5000, [1, 1]], old)).to.equal(0);
    expect(compareScalars(old, [7, 11, 0, [0, 0]])).to.be.below(0);
    expect(compareScalars([7, 10, 4999, [9, 9]], old)).to.be.below(0);
    expect(compareScalars(old, [7, 10, 5000, [1, 2]])).to.be.below(0);
  });
});
