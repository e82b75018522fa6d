import { Field, Float64, Int64, Struct, Utf8 } from 'apache-arrow';
import { expect } from 'chai';
import { dataFromValues } from '../../lib/arrow/columns.js';
import { ArgColumn, aggregateFunction } from '../../lib/plan/aggregates/aggregate-functions.js';
import { compareScalars } from '../../lib/plan/aggregates/column-values.js';
import { RowPacker, unpackRow } from '../../lib/plan/aggregates/packed-rows.js';
import { RANKED_ROWS_LAYOUT } from '../../lib/plan/aggregates/ranked-rows.js';
import { decode, encode } from '../../lib/state/value-codec.js';

const BID = new Struct([
  new Field('bidder', new Int64(), true),
  new Field('price', new Float64(), true),
  new Field('url', new Utf8(), true),
]);

type Row = [number, number | null, string | null];

/** A small deterministic generator, so that a failure repeats. */
function random(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

/** Rows with few distinct orders and values, so that orders tie often and whole rows sometimes. */
function rowsOf(n: number, next: () => number): { rows: Row[]; orders: number[] } {
  const urls = [null, '', 'a', 'ab', 'é'.repeat(140), '\u{1F600}', '\uFFFD'];
  const rows: Row[] = [];
  const orders: number[] = [];
  for (let i = 0; i < n; i++) {
    rows.push([
      Math.floor(next() * 4) * 256,
      next() < 0.2 ? null : Math.floor(next() * 3) / 2,
      urls[Math.floor(next() * urls.length)],
    ]);
    orders.push(Math.floor(next() * 5) - 2);
  }
  return { rows, orders };
}

/** The k best rows by a full sort: by order (descending for max_by), then by the row's values. */
function expected(rows: Row[], orders: number[], k: number, sign: number): Row[] {
  const idx = rows.map((_, i) => i);
  idx.sort((i, j) => sign * (orders[j] - orders[i]) || compareScalars(rows[i], rows[j]));
  return idx.slice(0, k).map((i) => rows[i]);
}

/** Folds rows in batches through partials and stored state, as a stateful aggregation does across batches. */
function fold(name: 'max_by' | 'min_by', k: number | undefined, batches: { rows: Row[]; orders: number[] }[]): unknown {
  const fn = aggregateFunction(name, 2, { k });
  fn.resultType([BID, new Int64()]);
  let stored: unknown;
  for (const b of batches) {
    const part = fn.newPartial(1);
    const args = [new ArgColumn(dataFromValues(BID, b.rows)), new ArgColumn(dataFromValues(new Int64(), b.orders))];
    part.update(new Int32Array(b.rows.length), args);
    const buffer = part.buffer(0);
    expect(buffer).to.be.instanceOf(Uint8Array);
    expect((buffer as Uint8Array)[0]).to.equal(RANKED_ROWS_LAYOUT);
    const merged = stored === undefined ? buffer : fn.merge(decode(encode(stored)), buffer);
    stored = decode(encode(merged));
  }
  return fn.result(stored);
}

const tuples = (result: unknown): unknown =>
  Array.isArray(result) ? result.map((r) => unpackRow(r as Uint8Array)) : unpackRow(result as Uint8Array);

describe('ranked rows of max_by', () => {
  it('keeps the rows a full sort keeps, whatever the arrival order and the batches', () => {
    const next = random(7);
    for (let trial = 0; trial < 60; trial++) {
      const { rows, orders } = rowsOf(1 + Math.floor(next() * 40), next);
      const k = [undefined, 1, 3, 10][trial % 4];
      const name = trial % 8 < 4 ? 'max_by' : 'min_by';
      const sign = name === 'max_by' ? 1 : -1;
      const want = expected(rows, orders, k ?? 1, sign);
      // Batches of random sizes, in the given order and reversed.
      const order = rows.map((_, i) => i);
      for (const arrival of [order, [...order].reverse()]) {
        const batches: { rows: Row[]; orders: number[] }[] = [];
        for (let at = 0; at < arrival.length; ) {
          const size = 1 + Math.floor(next() * 12);
          const ids = arrival.slice(at, at + size);
          batches.push({ rows: ids.map((i) => rows[i]), orders: ids.map((i) => orders[i]) });
          at += size;
        }
        const got = tuples(fold(name, k, batches));
        expect(got, `trial ${trial}`).to.deep.equal(k === undefined ? want[0] : want);
      }
    }
  });

  it('merges state kept as [order, packed row] pairs into ranked rows', () => {
    const next = random(11);
    for (const k of [undefined, 4]) {
      const older = rowsOf(12, next);
      const newer = rowsOf(12, next);
      const packer = new RowPacker(dataFromValues(BID, older.rows));
      // What state held before ranked rows: the best pairs, best first, their rows packed.
      const pairs = expected(older.rows, older.orders, k ?? 1, 1).map((r) => {
        const i = older.rows.indexOf(r);
        return [older.orders[i], packer.pack(i)];
      });
      const fn = aggregateFunction('max_by', 2, { k });
      fn.resultType([BID, new Int64()]);
      const part = fn.newPartial(1);
      part.update(new Int32Array(12), [
        new ArgColumn(dataFromValues(BID, newer.rows)),
        new ArgColumn(dataFromValues(new Int64(), newer.orders)),
      ]);
      const stored = decode(encode(k === undefined ? pairs[0] : pairs));
      const merged = fn.merge(stored, part.buffer(0));
      expect(merged).to.be.instanceOf(Uint8Array);
      const all = [...older.rows, ...newer.rows];
      const want = expected(all, [...older.orders, ...newer.orders], k ?? 1, 1);
      expect(tuples(fn.result(decode(encode(merged))))).to.deep.equal(k === undefined ? want[0] : want);
    }
  });
});
