import { expect } from 'chai';
import { HotKeyCache } from '../../lib/state/hot-key-cache.js';

/** Looks `key` up as the disk store does: on a miss, reads it and offers it to the cache. */
function touch(cache: HotKeyCache, key: number): boolean {
  if (cache.get(key, false) !== undefined) return true;
  cache.missed();
  if (cache.admits(key, false)) cache.set(key, false, Buffer.alloc(16));
  return false;
}

describe('hot-key cache', () => {
  it('admits every key while lookups mostly hit', () => {
    const cache = new HotKeyCache(64 << 20);
    for (let round = 0; round < 4; round++) for (let k = 0; k < 50_000; k++) touch(cache, k);
    let hits = 0;
    for (let k = 0; k < 50_000; k++) if (touch(cache, k)) hits++;
    expect(hits).to.equal(50_000);
    // A new key enters at its first miss.
    touch(cache, 1e9);
    expect(cache.get(1e9, false)).to.not.equal(undefined);
  });

  it('admits one key in eight once most lookups miss, and still lets a hot key in after a few misses', () => {
    // Room for about 2,700 keys; 400,000 touched evenly.
    const cache = new HotKeyCache(1 << 20);
    for (let k = 0; k < 400_000; k++) touch(cache, k);
    const before = cache.sizeBytes;
    let admitted = 0;
    for (let k = 1_000_000; k < 1_080_000; k++) {
      touch(cache, k);
      if (cache.get(k, false) !== undefined) admitted++;
    }
    expect(admitted).to.be.within(80_000 / 8 - 10, 80_000 / 8 + 10);
    expect(cache.sizeBytes).to.be.at.most(1 << 20);
    expect(before).to.be.greaterThan(0);
    let misses = 0;
    while (!touch(cache, 5e9)) misses++;
    expect(misses).to.be.within(1, 8);
  });

  it('always takes the new record of a cached key, so the cache never serves a stale one', () => {
    const cache = new HotKeyCache(1 << 20);
    for (let k = 0; k < 400_000; k++) touch(cache, k);
    const cachedKey = [...Array(400_000).keys()].reverse().find((k) => cache.get(k, false) !== undefined);
    expect(cachedKey).to.not.equal(undefined);
    expect(cache.admits(cachedKey as number, false)).to.equal(true);
    cache.set(cachedKey as number, false, Buffer.from('new'));
    expect(cache.get(cachedKey as number, false)?.toString()).to.equal('new');
  });

  it('judges its hit rate by lookups of keys the store holds, not of absent ones', () => {
    // Room for about 2,700 keys. A batch of 100,000 new keys misses every lookup, then its commit writes them.
    const cache = new HotKeyCache(1 << 20);
    for (let k = 0; k < 100_000; k++) expect(cache.get(k, false)).to.equal(undefined);
    for (let k = 0; k < 100_000; k++) if (cache.admits(k, false)) cache.set(k, false, Buffer.alloc(16));
    // Every key written entered in turn, so the last ones written are cached.
    for (let k = 99_000; k < 100_000; k++) expect(cache.get(k, false)).to.not.equal(undefined);
  });

  it('admits nothing at a budget of zero', () => {
    const cache = new HotKeyCache(0);
    expect(cache.admits(1, false)).to.equal(false);
  });
});
