import {
  Bool,
  Field,
  Float64,
  Int64,
  Schema,
  Struct,
  Table,
  TimestampMillisecond,
  tableFromIPC,
  tableToIPC,
  Utf8,
} from 'apache-arrow';
import { expect } from 'chai';
import { batchFromColumns, batchOf, valuesOf } from '../../lib/arrow/index.js';
import { EVICTED, JoinSideBuffer, MATCHED } from '../../lib/plan/operators/join-side-buffer.js';

const schema = new Schema([
  new Field('k', new Int64(), true),
  new Field('s', new Utf8(), true),
  new Field('d', new Float64(), true),
  new Field('t', new TimestampMillisecond(), true),
  new Field('b', new Bool(), true),
  new Field(
    'w',
    new Struct([
      new Field('start', new TimestampMillisecond(), true),
      new Field('end', new TimestampMillisecond(), true),
    ]),
    true,
  ),
]);
const N = 3000;
const columns = {
  k: Array.from({ length: N }, (_, i) => i % 10),
  s: Array.from({ length: N }, (_, i) => (i % 7 === 0 ? null : `row ${i} ${'x'.repeat(i % 20)}`)),
  d: Array.from({ length: N }, (_, i) => (i % 5 === 0 ? null : i / 4)),
  t: Array.from({ length: N }, (_, i) => new Date(1_700_000_000_000 + i)),
  b: Array.from({ length: N }, (_, i) => i % 3 === 0),
  w: Array.from({ length: N }, (_, i) =>
    i % 11 === 0 ? null : { start: new Date(1_700_000_000_000 + i * 10), end: i % 13 === 0 ? null : new Date(i) },
  ),
};
const batch = batchFromColumns(schema, Object.values(columns), N);
const all = Int32Array.from({ length: N }, (_, i) => i);

/** Column `c` of `buf`'s rows `ids` as JS values. */
const gathered = (buf: JoinSideBuffer, c: number, ids: number[]) => valuesOf(buf.gather(c, Int32Array.from(ids)));
const inputValues = batch.data.children.map((d) => valuesOf(d));
const expected = (c: number, rows: number[]) => rows.map((r) => inputValues[c][r]);

/** Appends `rows` of the batch to `buf` as chunk `chunk`, their chunk rows: key `row % 10`, deadline the row. */
function appendRows(buf: JoinSideBuffer, rows: Int32Array, chunk = 0, status = new Uint8Array(rows.length)): void {
  buf.append(
    batch,
    rows,
    Array.from(rows, (i) => i % 10),
    Float64Array.from(rows),
    status,
    chunk,
    rows,
  );
}

describe('a join side buffer', () => {
  it('gathers appended rows by position, nulls for negative positions, and finds them by key', () => {
    const buf = new JoinSideBuffer(schema);
    const half = all.subarray(0, N / 2);
    appendRows(buf, half);
    const rest = all.subarray(N / 2);
    appendRows(buf, rest, 1);
    const ids = [5, 2999, 0, 1500, 7, 14];
    for (let c = 0; c < schema.fields.length; c++) {
      expect(gathered(buf, c, ids)).to.deep.equal(expected(c, ids));
      expect(gathered(buf, c, [-1, 3])).to.deep.equal([null, ...expected(c, [3])]);
    }
    expect(buf.rowsOf(3)).to.deep.equal(Array.from(all.filter((i) => i % 10 === 3)));
  });

  it('evicts by deadline, then squeezes the dead rows out and renumbers the rest in order', () => {
    const buf = new JoinSideBuffer(schema);
    const status = Uint8Array.from(all, (i) => (i % 4 === 0 ? MATCHED : 0));
    appendRows(buf, all, 0, status);
    const evicted = buf.evict(1999);
    expect(Array.from(evicted)).to.deep.equal(Array.from(all.subarray(0, 2000)));
    expect(buf.live).to.equal(1000);
    expect(buf.rowsOf(3)?.every((p) => p >= 2000)).to.equal(true);
    // Evicted rows can still be gathered (an outer join pads them) until the buffer is compacted.
    expect(gathered(buf, 1, [0, 1999])).to.deep.equal(expected(1, [0, 1999]));
    buf.compact();
    expect(buf.length).to.equal(1000);
    const kept = Array.from({ length: 1000 }, (_, i) => 2000 + i);
    const positions = kept.map((_, p) => p);
    for (let c = 0; c < schema.fields.length; c++) expect(gathered(buf, c, positions)).to.deep.equal(expected(c, kept));
    expect(buf.rowsOf(3)).to.deep.equal(positions.filter((p) => (2000 + p) % 10 === 3));
    expect(Array.from(buf.status.subarray(0, 1000))).to.deep.equal(kept.map((i) => (i % 4 === 0 ? MATCHED : 0)));
    expect(Array.from(buf.chunkRow.subarray(0, 3))).to.deep.equal([2000, 2001, 2002]);
    expect(buf.status.subarray(0, 1000).some((s) => (s & EVICTED) !== 0)).to.equal(false);
    // Nothing more to evict below the live rows' deadlines; the next eviction takes the next rows.
    expect(buf.evict(1500).length).to.equal(0);
    expect(Array.from(buf.evict(2001))).to.deep.equal([0, 1]);
  });

  it('views a range of rows without copying, and the view survives an Arrow IPC round trip', () => {
    const buf = new JoinSideBuffer(schema);
    appendRows(buf, all);
    const first = 1234;
    const n = 700;
    const rows = Array.from({ length: n }, (_, i) => first + i);
    const view = batchOf(
      schema,
      schema.fields.map((_, c) => buf.view(c, first, n)),
      n,
    );
    const back = tableFromIPC(tableToIPC(new Table([view]), 'stream')).batches[0];
    for (let c = 0; c < schema.fields.length; c++) {
      expect(valuesOf(view.data.children[c])).to.deep.equal(expected(c, rows));
      expect(valuesOf(back.data.children[c])).to.deep.equal(expected(c, rows));
    }
  });

  it('evicting every live row empties the key index', () => {
    const buf = new JoinSideBuffer(schema);
    appendRows(buf, all);
    expect(buf.evict(999).length).to.equal(1000);
    expect(buf.evict(Number.MAX_SAFE_INTEGER).length).to.equal(N - 1000);
    expect(buf.live).to.equal(0);
    for (let k = 0; k < 10; k++) expect(buf.rowsOf(k)).to.equal(undefined);
    buf.compact();
    expect(buf.length).to.equal(0);
  });
});
