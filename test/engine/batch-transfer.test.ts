import { MessageChannel } from 'node:worker_threads';
import {
  Bool,
  Dictionary,
  Field,
  Float64,
  Int32,
  Int64,
  List,
  makeData,
  RecordBatch,
  Schema,
  Struct,
  TimestampMillisecond,
  tableFromArrays,
  Utf8,
  vectorFromArray,
} from 'apache-arrow';
import { expect } from 'chai';
import {
  BatchSender,
  buffersOf,
  receiveBatches,
  type SentBatch,
  transferListOf,
} from '../../lib/exec/batch-transfer.js';

const ROWS = 5000;

/** A batch of most column kinds the engine builds, with nulls, large enough that its buffers can move. */
function sampleBatch(): RecordBatch {
  const ints = vectorFromArray(
    Array.from({ length: ROWS }, (_, i) => (i % 7 === 0 ? null : i)),
    new Int32(),
  );
  const longs = vectorFromArray(
    Array.from({ length: ROWS }, (_, i) => BigInt(i) * 1_000_000_007n),
    new Int64(),
  );
  const doubles = vectorFromArray(
    Array.from({ length: ROWS }, (_, i) => i / 3),
    new Float64(),
  );
  const names = vectorFromArray(
    Array.from({ length: ROWS }, (_, i) => (i % 11 === 0 ? null : `name-${i}-é`)),
    new Utf8(),
  );
  const flags = vectorFromArray(
    Array.from({ length: ROWS }, (_, i) => i % 3 === 0),
    new Bool(),
  );
  const channels = vectorFromArray(
    Array.from({ length: ROWS }, (_, i) => ['apple', 'google', 'baidu'][i % 3]),
    new Dictionary(new Utf8(), new Int32()),
  );
  const lists = vectorFromArray(
    Array.from({ length: ROWS }, (_, i) => (i % 5 === 0 ? null : [i, i + 1, i + 2].slice(0, i % 4))),
    new List(new Field('item', new Int32(), true)),
  );
  const times = vectorFromArray(
    Array.from({ length: ROWS }, (_, i) => 1_700_000_000_000 + i),
    new TimestampMillisecond(),
  );
  const table = tableFromArrays({ ints, longs, doubles, names, flags, channels, lists, times } as never);
  const structType = new Struct([new Field('a', new Int32()), new Field('s', new Utf8(), true)]);
  const pairs = vectorFromArray(
    Array.from({ length: ROWS }, (_, i) => ({ a: i, s: i % 2 ? `s${i}` : null })),
    structType,
  );
  const batch = table.batches[0];
  const fields = [...batch.schema.fields, new Field('pairs', structType, false)];
  const children = [...batch.data.children, pairs.data[0]];
  return new RecordBatch(
    new Schema(fields),
    makeData({ type: new Struct(fields), length: ROWS, nullCount: 0, children }),
  );
}

function rowsOf(batch: RecordBatch): unknown[] {
  return batch
    .toArray()
    .map((r) => JSON.parse(JSON.stringify(r.toJSON(), (_, v) => (typeof v === 'bigint' ? `${v}` : v))));
}

/** Sends `sent` through a real MessageChannel, as the pool's threads do, transferring its buffers. */
async function post(sent: SentBatch[]): Promise<SentBatch[]> {
  const { port1, port2 } = new MessageChannel();
  try {
    const received = new Promise<SentBatch[]>((resolve) => port2.once('message', resolve));
    port1.postMessage(sent, transferListOf(sent));
    return await received;
  } finally {
    port1.close();
    port2.close();
  }
}

/** The memory of `b` too large to be a Buffer pool slab (which is always copied). */
const largeBuffers = (b: RecordBatch): ArrayBufferLike[] => [...buffersOf([b])].filter((a) => a.byteLength > 8192);

describe('batch transfer between threads', () => {
  it('moves a batch of every column kind: the receiver reads the same rows, the sender holds none of its buffers', async () => {
    const batch = sampleBatch();
    const expected = rowsOf(batch);
    const large = largeBuffers(batch);
    expect(large).to.not.be.empty;
    const [got] = receiveBatches(await post(new BatchSender('move').sendAll([batch])));
    expect(got.schema.fields.map((f) => `${f.name}: ${f.type}`)).to.deep.equal(
      batch.schema.fields.map((f) => `${f.name}: ${f.type}`),
    );
    expect(rowsOf(got)).to.deep.equal(expected);
    expect(
      large.map((a) => a.byteLength),
      'the sent batch no longer has its large buffers',
    ).to.deep.equal(large.map(() => 0));
  });

  it('copies a batch the sender keeps reading, and buffers it holds in another batch', async () => {
    const batch = sampleBatch();
    const expected = rowsOf(batch);
    const [copied] = receiveBatches(await post(new BatchSender('copy').sendAll([batch])));
    expect(rowsOf(copied)).to.deep.equal(expected);
    expect(rowsOf(batch)).to.deep.equal(expected);

    const held = sampleBatch();
    const sizes = largeBuffers(held).map((a) => a.byteLength);
    const [kept] = receiveBatches(await post(new BatchSender('move', buffersOf([held])).sendAll([held])));
    expect(rowsOf(kept)).to.deep.equal(rowsOf(held));
    expect(largeBuffers(held).map((a) => a.byteLength)).to.deep.equal(sizes);
  });

  it('sends two batches over the same memory in one message, and slices at their offsets', async () => {
    const batch = sampleBatch();
    const head = batch.slice(0, 1000);
    const tail = batch.slice(1500, 4000);
    const expected = [rowsOf(head), rowsOf(tail)];
    const got = receiveBatches(await post(new BatchSender('move').sendAll([head, tail])));
    expect(got.map(rowsOf)).to.deep.equal(expected);
    expect(got.map((b) => b.numRows)).to.deep.equal([1000, 2500]);
  });

  it('shares columns in shared memory instead of moving or copying them', async () => {
    const values = new Int32Array(new SharedArrayBuffer(ROWS * 4));
    for (let i = 0; i < ROWS; i++) values[i] = i;
    const fields = [new Field('v', new Int32(), false)];
    const column = makeData({ type: new Int32(), length: ROWS, nullCount: 0, data: values });
    const batch = new RecordBatch(
      new Schema(fields),
      makeData({ type: new Struct(fields), length: ROWS, nullCount: 0, children: [column] }),
    );
    const [got] = receiveBatches(await post(new BatchSender('move').sendAll([batch])));
    values[7] = -7;
    expect(got.getChild('v')?.get(7)).to.equal(-7);
    expect(batch.getChild('v')?.get(8)).to.equal(8);
  });
});
