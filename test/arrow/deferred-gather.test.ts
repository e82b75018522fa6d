import { Binary, Field, Float64, Int32, Schema, Struct, Utf8 } from 'apache-arrow';
import { expect } from 'chai';
import { col, struct } from '../../lib/api/column.js';
import {
  batchOf,
  DeferredVarBytes,
  dataFromValues,
  takeData,
  takeRows,
  valuesOf,
  varBytesOf,
} from '../../lib/arrow/index.js';
import { ArgColumn } from '../../lib/plan/aggregates/aggregate-functions.js';
import { RowPacker } from '../../lib/plan/aggregates/packed-rows.js';
import { evaluate } from '../../lib/plan/expression-eval.js';

const WORDS = ['alpha', null, '', 'é'.repeat(40), 'beta', 'gamma', null, 'x'.repeat(300), 'delta'];

describe('deferred gathers of string columns', () => {
  const data = dataFromValues(new Utf8(), WORDS);
  const pick = Int32Array.from([7, 1, 4, 0, 4, 3]);

  it('reads as the eager gather does, bytes and nulls, once its buffers are read', () => {
    const deferred = takeData(data, pick, true);
    expect(deferred).to.be.instanceOf(DeferredVarBytes);
    const eager = takeData(data, pick);
    expect(deferred.nullCount).to.equal(eager.nullCount);
    expect(valuesOf(deferred)).to.deep.equal(valuesOf(eager));
    expect(Array.from(deferred.valueOffsets as Int32Array)).to.deep.equal(Array.from(eager.valueOffsets as Int32Array));
    expect(Array.from(deferred.values as Uint8Array)).to.deep.equal(Array.from(eager.values as Uint8Array));
  });

  it('reads without gathering through varBytesOf, and a take of a deferred column maps to the first source', () => {
    const deferred = takeData(data, pick, true) as DeferredVarBytes;
    const { offsets, bytes, rows } = varBytesOf(deferred);
    expect(bytes).to.equal(data.values);
    expect(Array.from(rows!)).to.deep.equal(Array.from(pick));
    const decoder = new TextDecoder();
    const at = (i: number): string => decoder.decode(bytes.subarray(offsets[rows![i]], offsets[rows![i] + 1]));
    expect(at(0)).to.equal(WORDS[7]);
    const again = takeData(deferred, [5, 0], true) as DeferredVarBytes;
    expect(again.source).to.equal(data);
    expect(Array.from(again.rows)).to.deep.equal([3, 7]);
    expect(valuesOf(again)).to.deep.equal([WORDS[3], WORDS[7]]);
    expect(valuesOf(takeData(deferred, [2, 1]))).to.deep.equal([WORDS[4], null]);
    expect(varBytesOf(data).rows).to.equal(null);
  });

  it('defers binary columns too, and leaves fixed-width columns gathered', () => {
    const bin = dataFromValues(new Binary(), [Uint8Array.of(1, 2), null, Uint8Array.of(3)]);
    const deferred = takeData(bin, [2, 0], true);
    expect(deferred).to.be.instanceOf(DeferredVarBytes);
    expect(valuesOf(deferred)).to.deep.equal([Uint8Array.of(3), Uint8Array.of(1, 2)]);
    expect(takeData(dataFromValues(new Int32(), [1, 2, 3]), [2, 0], true)).not.to.be.instanceOf(DeferredVarBytes);
  });

  it('packs, compares and evaluates rows of a struct of deferred columns as of gathered ones', () => {
    const schema = new Schema([new Field('price', new Float64(), true), new Field('url', new Utf8(), true)]);
    const batch = batchOf(
      schema,
      [
        dataFromValues(
          new Float64(),
          WORDS.map((_, i) => i % 3),
        ),
        data,
      ],
      WORDS.length,
    );
    const rows = [8, 5, 3, 0, 7, 2, 6];
    const deferred = takeRows(batch, rows, true);
    const eager = takeRows(batch, rows);
    const bid = struct(col('price'), col('url'));
    const d = evaluate(bid, deferred, { batchTimestampMs: 0 });
    const e = evaluate(bid, eager, { batchTimestampMs: 0 });
    expect(d.children[1]).to.be.instanceOf(DeferredVarBytes);
    const dp = new RowPacker(d);
    const ep = new RowPacker(e);
    const da = new ArgColumn(d);
    const ea = new ArgColumn(e);
    for (let i = 0; i < rows.length; i++) {
      expect(dp.pack(i)).to.deep.equal(ep.pack(i));
      expect(da.valueAt(i)).to.deep.equal(ea.valueAt(i));
      for (let j = 0; j < rows.length; j++) expect(da.compareAt(i, j)).to.equal(ea.compareAt(i, j));
    }
    // Nothing above read the deferred column's own buffers.
    expect((d.children[1] as unknown as { gathered: unknown }).gathered).to.equal(null);
    expect(valuesOf(d.children[1])).to.deep.equal(valuesOf(e.children[1]));
    expect(d.type).to.be.instanceOf(Struct);
  });
});
