import { expect } from 'chai';
import { byteOrder } from '../../lib/state/byte-order.js';

/** Distinct random keys of 0 to `maxLength` bytes, zeros frequent, laid end to end. */
function keysOf(
  count: number,
  maxLength: number,
  seed: number,
): { buf: Uint8Array; start: Int32Array; keys: Buffer[] } {
  let x = seed;
  const next = (): number => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return x >>> 0;
  };
  const seen = new Set<string>();
  const keys: Buffer[] = [];
  while (keys.length < count) {
    const len = next() % (maxLength + 1);
    const key = Buffer.alloc(len);
    for (let i = 0; i < len; i++) key[i] = next() % 3 === 0 ? 0 : next() % 256;
    const id = key.toString('latin1');
    if (seen.has(id)) continue;
    seen.add(id);
    keys.push(key);
  }
  const start = new Int32Array(count + 1);
  for (let i = 0; i < count; i++) start[i + 1] = start[i] + keys[i].length;
  const buf = Buffer.concat(keys);
  return { buf, start, keys };
}

describe('byte order of keys', () => {
  for (const maxLength of [1, 6, 12, 40]) {
    it(`orders distinct keys of up to ${maxLength} bytes as LMDB compares them, prefixes first`, () => {
      const { buf, start, keys } = keysOf(maxLength === 1 ? 200 : 5000, maxLength, 0x9e3779b9 + maxLength);
      const expected = keys.map((_, i) => i).sort((a, b) => Buffer.compare(keys[a], keys[b]));
      expect([...byteOrder(buf, start, keys.length)]).to.deep.equal(expected);
    });
  }

  it('orders the canonical encodings of integers that share their first bytes', () => {
    const keys = [Buffer.from([4, 1]), Buffer.from([4, 1, 0]), Buffer.from([4]), Buffer.from([4, 0, 255])];
    const start = new Int32Array([0, 2, 5, 6, 9]);
    expect([...byteOrder(Buffer.concat(keys), start, keys.length)]).to.deep.equal([2, 3, 0, 1]);
  });

  it("orders a few long keys among many short ones, some sharing the long ones' first bytes", () => {
    const { keys } = keysOf(5000, 12, 0x1234567);
    const long = [0, 7, 4999, 2500].map((i) => Buffer.concat([keys[i], Buffer.alloc(13, i % 256)]));
    long.push(Buffer.alloc(30, 0), Buffer.alloc(30, 255));
    const all = [...keys, ...long];
    const start = new Int32Array(all.length + 1);
    for (let i = 0; i < all.length; i++) start[i + 1] = start[i] + all[i].length;
    const expected = all.map((_, i) => i).sort((a, b) => Buffer.compare(all[a], all[b]));
    expect([...byteOrder(Buffer.concat(all), start, all.length)]).to.deep.equal(expected);
  });
});
