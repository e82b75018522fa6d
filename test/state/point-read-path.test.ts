import { expect } from 'chai';
import { PointReadPath } from '../../lib/state/point-read-path.js';

describe('point read path', () => {
  /** Runs `windows` windows of 4096 reads, each faulting `faultsPerRead` times per read while through the map. */
  const run = (path: PointReadPath, counter: { faults: number }, windows: number, faultsPerRead: number): boolean[] => {
    const paths: boolean[] = [];
    for (let w = 0; w < windows; w++) {
      paths.push(path.pread);
      for (let r = 0; r < 4096; r++) {
        if (!path.pread) counter.faults += faultsPerRead;
        path.counted();
      }
    }
    return paths;
  };

  it('stays on the map while its reads seldom fault', () => {
    const counter = { faults: 0 };
    const path = new PointReadPath(() => counter.faults);
    expect(run(path, counter, 50, 0.05).some((p) => p)).to.equal(false);
  });

  it('reads with pread while the map faults often, and tries the map again after ever longer stretches', () => {
    const counter = { faults: 0 };
    const path = new PointReadPath(() => counter.faults);
    const paths = run(path, counter, 200, 0.5);
    // The first window has nothing to compare with and the second measures; after that, map windows are tries.
    expect(paths.slice(0, 2)).to.deep.equal([false, false]);
    const tries = paths.flatMap((p, w) => (!p && w >= 2 ? [w] : []));
    expect(tries).to.deep.equal([18, 51, 116]);
    expect(paths.filter((p) => p).length).to.equal(200 - 2 - tries.length);
  });

  it('goes back to the map, and to short stretches, once a try finds it no longer faulting', () => {
    const counter = { faults: 0 };
    const path = new PointReadPath(() => counter.faults);
    run(path, counter, 60, 0.5);
    const after = run(path, counter, 200, 0);
    // pread until the next try of the map, then the map for good.
    const first = after.indexOf(false);
    expect(first).to.be.greaterThan(0);
    expect(after.slice(first).every((p) => !p)).to.equal(true);
    // A fault storm later switches after one window, and tries the map again after the shortest stretch.
    const storm = run(path, counter, 20, 0.5);
    expect(storm.slice(0, 2)).to.deep.equal([false, true]);
    expect(storm.indexOf(false, 1)).to.equal(17);
  });
});
