import { Worker } from 'node:worker_threads';
import {
  Dictionary,
  Float64,
  Int32,
  Int64,
  makeData,
  makeVector,
  TimestampMillisecond,
  Uint32,
  Utf8,
  vectorFromArray,
} from 'apache-arrow';
import { expect } from 'chai';
import { utf8Data } from '../../lib/arrow/columns.js';
import {
  hashKey,
  hashString,
  murmur3Bytes,
  partitionOf,
  partitionsOfBigInts,
  partitionsOfData,
  partitionsOfNumbers,
  partitionsOfUtf8,
} from '../../lib/state/state-partitioner.js';
import { encodeKey } from '../../lib/state/value-codec.js';

const te = new TextEncoder();

function sampleKeys(): unknown[] {
  const keys: unknown[] = [];
  for (let i = 0; i < 300; i++) keys.push(`k${i}`, i, i * 0.37, -i, ['cust', i], `é${i}😀`);
  keys.push('', 'abc', 'abcd', 'abcde', null, undefined, true, NaN, -0, 2 ** 40, 5n, -(2n ** 63n), 2n ** 70n, { a: 1 });
  return keys;
}

describe('state partitioner', () => {
  it('implements murmur3 x86_32 (published test vectors)', () => {
    expect(murmur3Bytes(new Uint8Array(0), 0, 0, 0)).to.equal(0);
    expect(murmur3Bytes(new Uint8Array(0), 0, 0, 1)).to.equal(0x514e28b7);
    expect(murmur3Bytes(new Uint8Array([0xff, 0xff, 0xff, 0xff]), 0, 4, 0)).to.equal(0x76293b50);
    expect(murmur3Bytes(new Uint8Array([0x21, 0x43, 0x65, 0x87]), 0, 4, 0)).to.equal(0xf55b516b);
    expect(murmur3Bytes(new Uint8Array([0x21, 0x43, 0x65]), 0, 3, 0)).to.equal(0x7e4a8634);
    expect(murmur3Bytes(te.encode('Hello, world!'), 0, 13, 0x9747b28c)).to.equal(0x24884cba);
    expect(murmur3Bytes(te.encode('The quick brown fox jumps over the lazy dog'), 0, 43, 0x9747b28c)).to.equal(
      0x2fa826cd,
    );
  });

  it('hashes strings as their utf8 bytes, ASCII or not', () => {
    for (const s of ['', 'a', 'ab', 'abc', 'abcd', 'k123456', 'héllo', 'ab😀', '日本', 'abcdefg\u00ff']) {
      expect(hashString(s), s).to.equal(murmur3Bytes(te.encode(s)));
    }
  });

  it('keeps partitions of existing checkpoints: these values must never change', () => {
    // Changing the hash would send restarted queries to the wrong state partition for every key.
    const pinned: Array<[unknown, number]> = [
      ['k123456', 26],
      ['user-1', 14],
      [42, 22],
      [1.5, 19],
      [['a', 1], 30],
      [7n, 15],
    ];
    for (const [key, partition] of pinned) expect(partitionOf(key, 32), String(key)).to.equal(partition);
  });

  it('gives equal number keys equal partitions whatever their representation', () => {
    expect(partitionOf(-0, 16)).to.equal(partitionOf(0, 16));
    expect(partitionOf(3, 16)).to.equal(partitionsOfNumbers(new Float64Array([3]), 16)[0]);
    const weirdNaN = new Float64Array(new Uint32Array([1, 0x7ff80000]).buffer)[0];
    expect(hashKey(weirdNaN)).to.equal(hashKey(NaN));
  });

  it('spreads keys evenly', () => {
    const counts = new Array(8).fill(0);
    for (let i = 0; i < 80_000; i++) counts[partitionOf(`k${i}`, 8)]++;
    for (const c of counts) expect(c).to.be.within(9_500, 10_500);
    const intCounts = new Array(8).fill(0);
    for (let i = 0; i < 80_000; i++) intCounts[partitionOf(i * 8, 8)]++;
    for (const c of intCounts) expect(c).to.be.within(9_500, 10_500);
  });

  it('agrees with the encoded-key hash for composite keys', () => {
    expect(hashKey(['a', 1])).to.equal(murmur3Bytes(encodeKey(['a', 1])));
  });

  it('computes the same partitions in another thread', async () => {
    const keys = sampleKeys().filter((k) => k !== undefined);
    const here = keys.map((k) => partitionOf(k, 7));
    const moduleUrl = new URL('../../lib/state/state-partitioner.js', import.meta.url).href;
    const code = `
      const { parentPort, workerData } = require('node:worker_threads');
      import(workerData.moduleUrl).then((m) => parentPort.postMessage(workerData.keys.map((k) => m.partitionOf(k, 7))));`;
    const there = await new Promise<number[]>((resolve, reject) => {
      const worker = new Worker(code, { eval: true, workerData: { moduleUrl, keys } });
      worker.once('message', (msg) => {
        resolve(msg as number[]);
        void worker.terminate();
      });
      worker.once('error', reject);
    });
    expect(there).to.deep.equal(here);
  });

  describe('vectorised', () => {
    it('utf8 columns equal the scalar partitions, sliced columns included', () => {
      const strings = sampleKeys().filter((k) => typeof k === 'string') as string[];
      const data = utf8Data(strings);
      const expected = strings.map((s) => partitionOf(s, 5));
      expect([...partitionsOfUtf8(data.valueOffsets as Int32Array, data.values as Uint8Array, 5)]).to.deep.equal(
        expected,
      );
      expect([...partitionsOfData(data, 5)]).to.deep.equal(expected);
      expect([...partitionsOfData(data.slice(10, 50), 5)]).to.deep.equal(expected.slice(10, 60));
    });

    it('numeric columns equal the scalar partitions', () => {
      const numbers = [0, -0, 1, -1, 7, 2 ** 31 - 1, -(2 ** 31), 2 ** 31, 0.5, -3.25, NaN, Infinity, 1e300];
      const f64 = new Float64Array(numbers);
      expect([...partitionsOfNumbers(f64, 9)]).to.deep.equal([...f64].map((v) => partitionOf(v, 9)));
      const i32 = new Int32Array([0, 1, -1, 2 ** 31 - 1, -(2 ** 31), 12345]);
      expect([...partitionsOfNumbers(i32, 9)]).to.deep.equal([...i32].map((v) => partitionOf(v, 9)));
      const u32 = new Uint32Array([0, 1, 2 ** 31, 2 ** 32 - 1]);
      expect([...partitionsOfNumbers(u32, 9)]).to.deep.equal([...u32].map((v) => partitionOf(v, 9)));
      const f32 = new Float32Array([0.1, 3, -2.5]);
      expect([...partitionsOfNumbers(f32, 9)]).to.deep.equal([...f32].map((v) => partitionOf(v, 9)));
      const i64 = new BigInt64Array([0n, 1n, -1n, 2n ** 40n, -(2n ** 63n), 2n ** 63n - 1n]);
      expect([...partitionsOfBigInts(i64, 9)]).to.deep.equal([...i64].map((v) => partitionOf(v, 9)));
      const u64 = new BigUint64Array([0n, 2n ** 63n, 2n ** 64n - 1n]);
      expect([...partitionsOfBigInts(u64, 9)]).to.deep.equal([...u64].map((v) => partitionOf(v, 9)));
    });

    it('Arrow columns with nulls, dictionaries and other types equal partitionOf(vector.get(i))', () => {
      const columns = [
        makeData({
          type: new Int32(),
          data: new Int32Array([1, 2, 3, 4]),
          length: 4,
          nullCount: 1,
          nullBitmap: new Uint8Array([0b1011]),
        }),
        makeData({ type: new Float64(), data: new Float64Array([1.5, 2, NaN]), length: 3 }),
        makeData({ type: new Uint32(), data: new Uint32Array([2 ** 32 - 1, 5]), length: 2 }),
        makeData({ type: new Int64(), data: new BigInt64Array([5n, -5n]), length: 2 }),
        makeData({ type: new TimestampMillisecond(), data: new BigInt64Array([1_700_000_000_000n]), length: 1 }),
        utf8Data(['a', null, 'b', undefined, 'é']),
        vectorFromArray(['x', 'y', 'x', null, 'z'], new Dictionary(new Utf8(), new Int32())).data[0],
      ];
      for (const data of columns) {
        const vector = makeVector(data);
        const expected = Array.from({ length: data.length }, (_, i) => partitionOf(vector.get(i), 11));
        expect([...partitionsOfData(data, 11)], String(data.type)).to.deep.equal(expected);
      }
    });

    it('rejects a bad partition count', () => {
      expect(() => partitionsOfNumbers(new Int32Array(1), 0)).to.throw(RangeError);
    });
  });
});
