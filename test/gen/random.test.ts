import { expect } from 'chai';
import { hashString, mix32, Random, seedHash, WeightedPicker, zipfWeights } from '../../lib/gen/random.js';

function draws(r: Random, n: number): number[] {
  return Array.from({ length: n }, () => r.uint32());
}

describe('gen/random', () => {
  it('gives the same sequence for the same seed and different ones for different seeds', () => {
    expect(draws(new Random(42), 100)).to.deep.equal(draws(new Random(42), 100));
    expect(draws(new Random('clicks'), 100)).to.deep.equal(draws(new Random('clicks'), 100));
    const a = draws(new Random(1), 100);
    for (const other of [2, -1, 2 ** 40 + 1, 'a', '1']) {
      expect(draws(new Random(other), 100), `seed ${other}`).to.not.deep.equal(a);
    }
  });

  it('keeps the bits of large integer seeds', () => {
    expect(seedHash(2 ** 40)).to.not.equal(seedHash(2 ** 41));
    expect(seedHash(2 ** 40 + 7)).to.not.equal(seedHash(7));
    expect(() => new Random(1.5)).to.throw(RangeError);
  });

  it('mix32 is a bijection on a sample of 32-bit values (no collisions) and hashes strings', () => {
    const seen = new Set<number>();
    for (let i = 0; i < 200_000; i++) seen.add(mix32(i * 2654435761));
    expect(seen.size).to.equal(200_000);
    expect(hashString('a')).to.not.equal(hashString('b'));
  });

  it('reseed restarts a stream, and forks are independent of each other', () => {
    const r = new Random(0);
    const first = draws(r.reseed(7, 9), 10);
    draws(r, 50);
    expect(draws(r.reseed(7, 9), 10)).to.deep.equal(first);
    expect(draws(r.reseed(7, 10), 10)).to.not.deep.equal(first);
    const root = new Random(5);
    expect(draws(root.fork('a'), 10)).to.not.deep.equal(draws(new Random(5).fork('b'), 10));
    expect(draws(new Random(5).fork('a'), 10)).to.deep.equal(draws(new Random(5).fork('a'), 10));
  });

  it('draws uniform integers and floats in range', () => {
    const r = new Random(3);
    const n = 10;
    const counts = new Array<number>(n).fill(0);
    const trials = 100_000;
    let outOfRange = 0;
    for (let i = 0; i < trials; i++) {
      const v = r.int(n);
      if (!(v >= 0 && v < n && Number.isInteger(v))) outOfRange++;
      else counts[v]++;
    }
    const chi2 = counts.reduce((s, c) => s + (c - trials / n) ** 2 / (trials / n), 0);
    expect(chi2).to.be.below(30); // 9 degrees of freedom: p ≈ 0.0004 to exceed
    for (let i = 0; i < 10_000; i++) {
      const f = r.float53();
      if (!(f >= 0 && f < 1)) outOfRange++;
      const big = r.int(2 ** 40);
      if (!(Number.isInteger(big) && big >= 0 && big < 2 ** 40)) outOfRange++;
      const b = r.intBetween(-3, 3);
      if (!(b >= -3 && b <= 3)) outOfRange++;
    }
    expect(outOfRange).to.equal(0);
  });

  it('has the documented means for exponential, geometric and normal draws', () => {
    const r = new Random(11);
    const n = 50_000;
    let e = 0;
    let g = 0;
    let z = 0;
    let z2 = 0;
    let minK = Infinity;
    for (let i = 0; i < n; i++) {
      e += r.exponential(250);
      const k = r.geometric(8);
      minK = Math.min(minK, k);
      g += k;
      const x = r.normal();
      z += x;
      z2 += x * x;
    }
    expect(minK).to.equal(1);
    expect(e / n).to.be.closeTo(250, 8);
    expect(g / n).to.be.closeTo(8, 0.25);
    expect(z / n).to.be.closeTo(0, 0.03);
    expect(z2 / n).to.be.closeTo(1, 0.03);
    expect(new Random(1).geometric(1)).to.equal(1);
  });

  it('picks weighted items in proportion to their weights', () => {
    const picker = new WeightedPicker([
      ['a', 1],
      ['b', 3],
      ['c', 0],
      ['d', 6],
    ] as const);
    const r = new Random(9);
    const counts: Record<string, number> = { a: 0, b: 0, c: 0, d: 0 };
    for (let i = 0; i < 100_000; i++) counts[picker.pick(r)]++;
    expect(counts.c).to.equal(0);
    expect(counts.a / 100_000).to.be.closeTo(0.1, 0.01);
    expect(counts.b / 100_000).to.be.closeTo(0.3, 0.01);
    expect(counts.d / 100_000).to.be.closeTo(0.6, 0.01);
    expect(() => new WeightedPicker([])).to.throw(RangeError);
    expect(() => new WeightedPicker([['x', 0]])).to.throw(RangeError);
    const z = zipfWeights(5, 1);
    expect(z[0]).to.equal(1);
    expect(z[4]).to.be.closeTo(0.2, 1e-12);
  });
});
