import { expect } from 'chai';
import { nthSmallest } from '../../lib/util/nth-smallest.js';

describe('nthSmallest', () => {
  it('agrees with a sort for every k, on random, sorted, reversed and heavily tied values', () => {
    let seed = 7;
    const rnd = (m: number): number => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % m;
    };
    const inputs: number[][] = [
      Array.from({ length: 200 }, () => rnd(1000) - 500),
      Array.from({ length: 200 }, (_, i) => i),
      Array.from({ length: 200 }, (_, i) => 200 - i),
      Array.from({ length: 300 }, () => rnd(3)),
      Array.from({ length: 50 }, () => 4),
      [1.5],
      [2, -0.5],
    ];
    for (const input of inputs) {
      const sorted = [...input].sort((a, b) => a - b);
      for (let k = 0; k < input.length; k++) {
        // Extra room past n must not be read.
        const values = Float64Array.from([...input, -1e9, -1e9]);
        expect(nthSmallest(values, input.length, k), `k ${k} of ${input.length}`).to.equal(sorted[k]);
        expect([...values.subarray(0, input.length)].sort((a, b) => a - b)).to.deep.equal(sorted);
      }
    }
  });

  it('refuses k outside the values', () => {
    expect(() => nthSmallest(new Float64Array(3), 3, 3)).to.throw(RangeError, 'outside [0, 3)');
    expect(() => nthSmallest(new Float64Array(0), 0, 0)).to.throw(RangeError);
  });
});
