import { expect } from 'chai';
import { KeyFilter } from '../../lib/state/key-filter.js';

/** The encoding-like bytes of key `i` of family `family`: lengths vary from 1 to 12 bytes. */
function key(family: number, i: number): Uint8Array {
  const len = 1 + ((i * 7 + family) % 12);
  const out = new Uint8Array(len);
  let x = (i + 1) * 2654435761 + family * 40503;
  for (let b = 0; b < len; b++) {
    out[b] = x & 0xff;
    x = Math.floor(x / 256) + b * 131 + family;
  }
  out[0] = family;
  return out;
}

/** How many of `n` keys of a family never added the filter answers "maybe" for. */
function falsePositives(filter: KeyFilter, n: number): number {
  let maybe = 0;
  for (let i = 0; i < n; i++) if (filter.mayContain(key(2, i))) maybe++;
  return maybe;
}

describe('key filter', () => {
  it('knows every key it was given, and answers "maybe" for about 1% of others at the size it was built for', () => {
    const n = 200_000;
    const filter = new KeyFilter(n);
    for (let i = 0; i < n; i++) filter.add(key(1, i));
    for (let i = 0; i < n; i++) expect(filter.mayContain(key(1, i)), `key ${i}`).to.equal(true);
    const rate = falsePositives(filter, n) / n;
    expect(rate).to.be.below(0.02);
    expect(filter.sizeBytes).to.be.at.most((n * 10) / 8 + 64);
  });

  it('grows by parts past its size, keeping every key and a low false-positive rate', () => {
    const filter = new KeyFilter(1000);
    const first = filter.sizeBytes;
    const n = 300_000;
    for (let i = 0; i < n; i++) filter.add(key(1, i));
    expect(filter.sizeBytes).to.be.above(first * 4);
    for (let i = 0; i < n; i++) expect(filter.mayContain(key(1, i)), `key ${i}`).to.equal(true);
    expect(falsePositives(filter, n) / n).to.be.below(0.04);
  });

  it('makes room for a batch in one part: an empty last part is replaced, a full one followed by a larger one', () => {
    const filter = new KeyFilter(1000);
    filter.reserve(500_000);
    const one = filter.sizeBytes;
    expect(one).to.be.at.least((500_000 * 10) / 8);
    for (let i = 0; i < 500_000; i++) filter.add(key(1, i));
    filter.reserve(100_000);
    expect(filter.sizeBytes).to.be.at.least(3 * one);
    for (let i = 0; i < 100_000; i++) filter.add(key(3, i));
    for (let i = 0; i < 100_000; i++) expect(filter.mayContain(key(3, i))).to.equal(true);
    expect(falsePositives(filter, 100_000) / 100_000).to.be.below(0.03);
  });

  it('round-trips through its bytes with its tag, and refuses any truncated or extended copy', () => {
    const filter = new KeyFilter(10);
    for (let i = 0; i < 100_000; i++) filter.add(key(1, i));
    const bytes = filter.serialize(42);
    const back = KeyFilter.parse(bytes);
    expect(back?.tag).to.equal(42);
    for (let i = 0; i < 100_000; i++) expect(back?.filter.mayContain(key(1, i))).to.equal(true);
    expect(falsePositives(back?.filter as KeyFilter, 10_000)).to.equal(falsePositives(filter, 10_000));
    for (const cut of [0, 3, 15, 16, 40, bytes.length - 1])
      expect(KeyFilter.parse(bytes.subarray(0, cut))).to.equal(null);
    expect(KeyFilter.parse(Buffer.concat([bytes, Buffer.alloc(1)]))).to.equal(null);
    expect(KeyFilter.parse(Buffer.from('not a filter at all'))).to.equal(null);
  });
});
