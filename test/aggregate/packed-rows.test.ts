import { Bool, type Data, Field, Float64, Int32, Int64, List, Struct, TimestampMillisecond, Utf8 } from 'apache-arrow';
import { expect } from 'chai';
import { dataFromValues, valuesOf } from '../../lib/arrow/columns.js';
import { ArgColumn, aggregateFunction } from '../../lib/plan/aggregates/aggregate-functions.js';
import { compareScalars } from '../../lib/plan/aggregates/column-values.js';
import { packsRows, RowPacker, resultData, unpackRow } from '../../lib/plan/aggregates/packed-rows.js';
import { decode, encode } from '../../lib/state/value-codec.js';

const BID = new Struct([
  new Field('bidder', new Int64(), true),
  new Field('price', new Float64(), true),
  new Field('channel', new Utf8(), true),
  new Field('dateTime', new TimestampMillisecond('UTC'), true),
  new Field('extra', new Utf8(), true),
  new Field('seen', new Bool(), true),
  new Field('rank', new Int32(), true),
]);

const LONG = 'é'.repeat(200); // 400 utf8 bytes: a 4-byte length
const TUPLES: (unknown[] | null)[] = [
  [1, 10.5, 'Apple', 1_700_000_000_123, 'x', true, 3],
  [2 ** 40, -0, 'ü€', 0, LONG, false, -7],
  null,
  [null, Number.NaN, null, null, '', null, null],
  [-(2 ** 45), 2 ** 31, 'Google', -5_000, 'short', true, 2 ** 31 - 1],
];

/** Rows of a column as plain JS values (structs as objects, timestamps as Dates), for comparing two columns. */
function rowsOf(data: Data): unknown[] {
  return valuesOf(data).map((v) => (v === null ? null : JSON.parse(JSON.stringify(v, replacer))));
}
function replacer(_k: string, v: unknown): unknown {
  return typeof v === 'number' && (Number.isNaN(v) || Object.is(v, -0)) ? String(Object.is(v, -0) ? '-0' : v) : v;
}

describe('packed rows of max_by', () => {
  it('packs struct rows of numbers, strings, timestamps and booleans, and unpacks them to the tuples max_by kept', () => {
    const data = dataFromValues(BID, TUPLES);
    expect(packsRows(BID)).to.equal(true);
    expect(packsRows(new Struct([new Field('inner', BID, true)]))).to.equal(false);
    const packer = new RowPacker(data);
    const arg = new ArgColumn(data);
    TUPLES.forEach((t, i) => {
      const row = packer.pack(i);
      if (t === null) {
        expect(row).to.equal(null);
        return;
      }
      const tuple = unpackRow(row!);
      expect(tuple).to.deep.equal(arg.valueAt(i));
      // Through the state codec as stored, and back.
      expect(unpackRow(decode(encode(row)) as Uint8Array)).to.deep.equal(tuple);
    });
    expect(Object.is(unpackRow(packer.pack(1)!)[1], -0)).to.equal(true);
  });

  it('gathers packed rows into the same Arrow columns as their tuples, sliced input, lists and legacy rows mixed in', () => {
    const data = dataFromValues(BID, [...TUPLES, ...TUPLES]).slice(3, 6);
    const packer = new RowPacker(data);
    const packed = [0, 1, 2].map((i) => packer.pack(i));
    const tuples = packed.map((r) => (r === null ? null : unpackRow(r)));
    expect(rowsOf(resultData(BID, packed))).to.deep.equal(rowsOf(dataFromValues(BID, tuples)));
    // A legacy tuple and an object among packed rows (state written before rows were packed).
    const legacy = [
      packed[0],
      tuples[1],
      { ...Object.fromEntries(BID.children.map((f, k) => [f.name, tuples[2]![k]])) },
    ];
    expect(rowsOf(resultData(BID, legacy))).to.deep.equal(rowsOf(dataFromValues(BID, tuples)));
    const list = new List(new Field('item', BID, true));
    const lists = [[packed[2], packed[0]], null, [], [tuples[1], packed[2]]];
    const expected = [[tuples[2], tuples[0]], null, [], [tuples[1], tuples[2]]];
    expect(rowsOf(resultData(list, lists))).to.deep.equal(rowsOf(dataFromValues(list, expected)));
  });

  it('compares rows as their values do, decoding strings only where bytes differ (UTF-16 order, not byte order)', () => {
    const strings = [null, '', 'a', 'ab', '\u{1F600}', '\uFFFD', 'é'];
    const tuples: (unknown[] | null)[] = [null];
    for (const s of strings) for (const n of [null, -1, 2 ** 40]) tuples.push([n, 5, s, 100, s, n === null, 1]);
    const arg = new ArgColumn(dataFromValues(BID, tuples));
    const sign = (x: number): number => Math.sign(x) + 0;
    for (let i = 0; i < tuples.length; i++)
      for (let j = 0; j < tuples.length; j++)
        expect(sign(arg.compareAt(i, j)), `${i} ${j}`).to.equal(sign(compareScalars(arg.valueAt(i), arg.valueAt(j))));
    expect(sign(compareScalars('\u{1F600}', '\uFFFD'))).to.equal(-1);
  });

  it('max_by merges packed rows with tuples restored from older state, ties by the whole row', () => {
    for (const k of [undefined, 3]) {
      const fn = aggregateFunction('max_by', 2, { k });
      fn.resultType([BID, new Int64()]);
      const rows = dataFromValues(BID, [
        [256, 5, 'a', 100, 'x', true, 1],
        [2, 5, 'a', 100, 'x', true, 1],
        [2, 9, 'z', 50, 'y', false, 2],
      ]);
      const part = fn.newPartial(1);
      part.update(new Int32Array(3), [new ArgColumn(rows), new ArgColumn(dataFromValues(new Int64(), [100, 100, 50]))]);
      const fresh = part.buffer(0);
      // The same group as kept before packing: [order, tuple] pairs, here a tie with the best rows. Bidder 256
      // before 2 in its bytes, after it as a number: ties compare the fields' values, not the packed bytes.
      const legacyPair = [100, [3, 5, 'a', 100, 'w', true, 1]];
      const older = k === undefined ? legacyPair : [legacyPair];
      const merged = fn.merge(decode(encode(older)), decode(encode(fresh)));
      const result = fn.result(merged);
      const asTuples = (v: unknown): unknown => (v instanceof Uint8Array ? unpackRow(v) : v);
      if (k === undefined) expect(asTuples(result)).to.deep.equal([2, 5, 'a', 100, 'x', true, 1]);
      else
        expect((result as unknown[]).map(asTuples)).to.deep.equal([
          [2, 5, 'a', 100, 'x', true, 1],
          [3, 5, 'a', 100, 'w', true, 1],
          [256, 5, 'a', 100, 'x', true, 1],
        ]);
    }
  });
});
