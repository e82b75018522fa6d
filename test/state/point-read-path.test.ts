import { expect } from 'chai';
import { PointReadPath } from '../../lib/state/point-read-path.js';

describe('point read path', () => {
  /**
   * Runs `windows` windows of 4096 reads that cost `map` ms each through the map and `pread` ms with pread; returns
   * whether each window went with pread.
   */
  const run = (path: PointReadPath, windows: number, map: number, pread: number): boolean[] => {
    const paths: boolean[] = [];
    for (let w = 0; w < windows; w++) {
      paths.push(path.pread);
      for (let r = 0; r < 4096; r++) path.read(path.pread ? pread : map);
    }
    return paths;
  };
  const mapWindows = (paths: boolean[]) => paths.flatMap((p, w) => (p ? [] : [w]));

  it('stays on the map while its reads cost little', () => {
    expect(run(new PointReadPath(), 100, 0.0015, 0.001).some((p) => p)).to.equal(false);
  });

  it('reads with pread while the map costs more, and tries the map again after ever longer stretches', () => {
    const paths = run(new PointReadPath(), 200, 0.03, 0.005);
    expect(mapWindows(paths)).to.deep.equal([0, 17, 50, 115]);
  });

  it('goes back to the map at once when pread turns out the dearer, and stays there', () => {
    const path = new PointReadPath();
    expect(mapWindows(run(path, 50, 0.004, 0.006))).to.deep.equal([0, ...Array.from({ length: 48 }, (_, i) => i + 2)]);
  });

  it('stays on the map once a try finds it cheap again, and takes pread at once when the map gets dear again', () => {
    const path = new PointReadPath();
    run(path, 60, 0.03, 0.005);
    const after = run(path, 100, 0.001, 0.005);
    const first = after.indexOf(false);
    expect(first).to.be.greaterThan(0);
    expect(after.slice(first).every((p) => !p)).to.equal(true);
    // The last pread cost is known: one window through the map that costs more sends the next ones to pread, for
    // the shortest stretch again.
    expect(mapWindows(run(path, 40, 0.03, 0.005))).to.deep.equal([0, 17]);
  });
});
