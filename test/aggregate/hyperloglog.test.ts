import { expect } from 'chai';
import { addValue, estimate, mergeInto, precisionForRsd } from '../../lib/plan/aggregates/hyperloglog.js';

function sketch(p: number, values: Iterable<unknown>): Uint8Array {
  const r = new Uint8Array(1 << p);
  for (const v of values) addValue(r, p, v);
  return r;
}

function* ids(prefix: string, from: number, to: number): Generator<string> {
  for (let i = from; i < to; i++) yield `${prefix}-${i}`;
}

describe('approx_count_distinct: HyperLogLog', () => {
  it('chooses the precision as Spark does', () => {
    expect(precisionForRsd(0.05)).to.equal(9);
    expect(precisionForRsd(0.01)).to.equal(14);
    expect(() => precisionForRsd(0.5)).to.throw(RangeError);
    expect(() => precisionForRsd(0.001)).to.throw(RangeError);
  });

  it('counts small sets (linear counting) exactly or within a few percent', () => {
    for (const n of [0, 1, 2, 10]) expect(estimate(sketch(9, ids('u', 0, n)))).to.equal(n);
    for (const n of [100, 500]) expect(Math.abs(estimate(sketch(9, ids('u', 0, n))) - n) / n).to.be.below(0.05);
  });

  // The standard error is 1.04/sqrt(2^p); over these cardinalities (same data every run: the hashes are fixed)
  // the error stays within 3 standard errors, and its root mean square near one.
  for (const rsd of [0.05, 0.02]) {
    it(`stays within 3 standard errors at rsd ${rsd} from 1,000 to 200,000 values`, () => {
      const p = precisionForRsd(rsd);
      const se = 1.04 / Math.sqrt(1 << p);
      const errors: number[] = [];
      for (const n of [1000, 5000, 20000, 50000, 200000]) {
        for (const prefix of ['user', 'page']) {
          const err = (estimate(sketch(p, ids(prefix, 0, n))) - n) / n;
          errors.push(err);
          expect(Math.abs(err), `n=${n} ${prefix}`).to.be.below(3 * se);
        }
      }
      const rms = Math.sqrt(errors.reduce((a, e) => a + e * e, 0) / errors.length);
      expect(rms).to.be.below(1.5 * se);
    });
  }

  it('merging sketches equals sketching the union; duplicates do not count', () => {
    const a = sketch(9, ids('u', 0, 30000));
    const b = sketch(9, ids('u', 20000, 50000));
    const both = sketch(9, [...ids('u', 0, 50000), ...ids('u', 0, 50000)]);
    expect(mergeInto(a, b)).to.deep.equal(both);
  });

  it('hashes equal numbers alike whatever their column type', () => {
    expect(sketch(9, [3, 3.0, 3])).to.deep.equal(sketch(9, [3]));
    expect(estimate(sketch(9, [1, 2, '1', '2']))).to.equal(4);
  });
});
