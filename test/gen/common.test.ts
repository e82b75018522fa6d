import { expect } from 'chai';
import { formatTimestamp, idOf, withDefaults } from '../../lib/gen/common.js';
import { Random } from '../../lib/gen/random.js';

describe('gen/common', () => {
  it('formats ISO timestamps exactly as Date.toISOString does', () => {
    const r = new Random(1);
    const samples = [
      0,
      -1,
      59_999,
      60_000,
      Date.UTC(2024, 1, 29, 23, 59, 59, 999),
      -62_198_755_200_000,
      253_402_300_800_000,
    ];
    for (let i = 0; i < 20_000; i++) samples.push(Date.UTC(2024, 0, 1) + r.int(400 * 86_400_000));
    const mismatches = samples.filter((ts) => formatTimestamp(ts, 'iso') !== new Date(ts).toISOString());
    expect(mismatches).to.deep.equal([]);
    expect(formatTimestamp(1234, 'epoch-ms')).to.equal(1234);
  });

  it('pads ids and fills defaults only where an option is undefined', () => {
    expect(idOf('user', 41, 500)).to.equal('user-0042');
    expect(idOf('user', 41, 123_456)).to.equal('user-000042');
    expect(withDefaults<{ a?: number; b?: string }>({ a: 1, b: 'x' }, { a: undefined, b: 'y' })).to.deep.equal({
      a: 1,
      b: 'y',
    });
  });
});
