import { expect } from 'chai';
import { HotKeyCache } from '../../lib/state/hot-key-cache.js';

/** Looks `key` up as the disk store does: on a miss, reads it and offers it to the cache. */
function touch(cache: HotKeyCache, key: number): boolean {
  if (cache.get(key, false) >= 0) return true;
  cache.missed();
  if (cache.admits(key, false)) cache.set(key, false, Buffer.alloc(16));
  return false;
}

/** The cached record of `key` as a latin1 string, or undefined. */
function recordOf(cache: HotKeyCache, key: number | string, encoded = false): string | undefined {
  const at = cache.get(key, encoded);
  return at < 0 ? undefined : cache.bytes.toString('latin1', at, at + cache.recordLength(at));
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
    expect(cache.get(1e9, false)).to.be.at.least(0);
  });

  it('admits one key in eight once most lookups miss, and still lets a hot key in after a few misses', () => {
    // Room for about 2,700 keys; 400,000 touched evenly.
    const cache = new HotKeyCache(1 << 20);
    for (let k = 0; k < 400_000; k++) touch(cache, k);
    const before = cache.sizeBytes;
    let admitted = 0;
    for (let k = 1_000_000; k < 1_080_000; k++) {
      touch(cache, k);
      if (cache.get(k, false) >= 0) admitted++;
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
    const cachedKey = [...Array(400_000).keys()].reverse().find((k) => cache.get(k, false) >= 0);
    expect(cachedKey).to.not.equal(undefined);
    expect(cache.admits(cachedKey as number, false)).to.equal(true);
    cache.set(cachedKey as number, false, Buffer.from('new'));
    expect(recordOf(cache, cachedKey as number)).to.equal('new');
  });

  it('judges its hit rate by lookups of keys the store holds, not of absent ones', () => {
    // Room for about 2,700 keys. A batch of 100,000 new keys misses every lookup, then its commit writes them.
    const cache = new HotKeyCache(1 << 20);
    for (let k = 0; k < 100_000; k++) expect(cache.get(k, false)).to.equal(-1);
    for (let k = 0; k < 100_000; k++) if (cache.admits(k, false)) cache.set(k, false, Buffer.alloc(16));
    // Every key written entered in turn, so the last ones written are cached.
    for (let k = 99_000; k < 100_000; k++) expect(cache.get(k, false)).to.be.at.least(0);
  });

  it('admits nothing at a budget of zero', () => {
    const cache = new HotKeyCache(0);
    expect(cache.admits(1, false)).to.equal(false);
  });

  it('holds copies of the records it is given, and a rewrite of another length keeps the others', () => {
    const cache = new HotKeyCache(1 << 20);
    const record = Buffer.from('xxabcdefyy', 'latin1');
    cache.set('k', false, record, 2, 8);
    cache.set('k', true, Buffer.from('encoded'));
    cache.set(-0, false, Buffer.from('zero'));
    cache.set(Number.NaN, false, Buffer.from('nan'));
    cache.set(1.5, false, Buffer.from('one and a half'));
    record.fill(0);
    expect(recordOf(cache, 'k')).to.equal('abcdef');
    expect(recordOf(cache, 'k', true)).to.equal('encoded');
    expect(recordOf(cache, 0)).to.equal('zero');
    expect(recordOf(cache, Number.NaN)).to.equal('nan');
    expect(recordOf(cache, 1.5)).to.equal('one and a half');
    cache.set('k', false, Buffer.from('longer than before'));
    cache.set(0, false, Buffer.from('ZERO'));
    expect(recordOf(cache, 'k')).to.equal('longer than before');
    expect(recordOf(cache, 0)).to.equal('ZERO');
    expect(recordOf(cache, 'k', true)).to.equal('encoded');
    cache.delete('k', true);
    expect(recordOf(cache, 'k', true)).to.equal(undefined);
    expect(recordOf(cache, 'k')).to.equal('longer than before');
  });

  it('stays within its budget, evicts in order of entry, and agrees with a map through wrap-arounds', () => {
    const budget = 64 << 10;
    const cache = new HotKeyCache(budget);
    const model = new Map<number, string>();
    let seed = 1;
    const rand = (n: number) => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed % n;
    };
    for (let i = 0; i < 200_000; i++) {
      const k = rand(5_000);
      const op = rand(10);
      if (op < 2) {
        cache.delete(k, false);
        model.delete(k);
      } else if (op < 7) {
        const v = `${k}:${'v'.repeat(rand(60))}`;
        cache.set(k, false, Buffer.from(v, 'latin1'));
        model.set(k, v);
      } else {
        const got = recordOf(cache, k);
        // A cached record is the last one set; a key evicted or never set is not cached.
        if (got !== undefined) expect(got, String(k)).to.equal(model.get(k));
      }
      expect(cache.sizeBytes).to.be.at.most(budget);
    }
    // The cache fills most of its budget, and the keys set last are there.
    expect(cache.sizeBytes).to.be.above(budget / 2);
    const last = new HotKeyCache(budget);
    for (let k = 0; k < 10_000; k++) last.set(k, false, Buffer.alloc(16, k));
    expect(recordOf(last, 0)).to.equal(undefined);
    for (let k = 9_500; k < 10_000; k++) expect(last.get(k, false), String(k)).to.be.at.least(0);
    const held = Array.from({ length: 10_000 }, (_, k) => last.get(k, false) >= 0);
    // Evicted in order of entry: the cached keys are the last ones set.
    expect(held.indexOf(true)).to.equal(held.lastIndexOf(false) + 1);
  });

  it('keeps a rewritten record of the same length in its place, and one of another length moves to the newest', () => {
    const budget = 64 << 10;
    const cache = new HotKeyCache(budget);
    for (let k = 0; k < 100; k++) cache.set(k, false, Buffer.alloc(16, 1));
    cache.set(0, false, Buffer.alloc(16, 2));
    cache.set(1, false, Buffer.alloc(24, 3));
    // About 1,000 keys of 16 bytes fit: the first few dozen leave, key 0 among them, key 1 (newest then) stays.
    for (let k = 100; k < 1_080; k++) cache.set(k, false, Buffer.alloc(16, 1));
    expect(cache.get(0, false)).to.equal(-1);
    expect(cache.get(2, false)).to.equal(-1);
    expect(recordOf(cache, 1)).to.equal('\x03'.repeat(24));
  });

  it('keeps every record in place when its arena grows after evictions began', () => {
    // 8- and 9-byte records, every other key's rewritten at the longer length, and 40 bytes per key: evictions
    // start near 16,000 keys, and the arena grows past 512 KB soon after, its oldest records gone. The keys checked
    // are those set before and after that growth.
    const cache = new HotKeyCache(1 << 20);
    const recordOfKey = (k: number): Buffer => Buffer.from(`${k}`.padStart(8, '0'));
    for (let k = 0; k < 30_000; k++) {
      cache.set(k, false, recordOfKey(k));
      if (k % 2 === 0) cache.set(k, false, Buffer.from(`${k}`.padStart(9, '0')));
    }
    let cached = 0;
    for (let k = 0; k < 30_000; k++) {
      const record = recordOf(cache, k);
      if (record === undefined) continue;
      cached++;
      expect(record).to.equal(`${k}`.padStart(k % 2 === 0 ? 9 : 8, '0'));
    }
    expect(cached).to.be.greaterThan(10_000);
  });

  it('serves and rewrites a kept slot while it holds its key, and refuses it once the slot was freed or given to another', () => {
    const cache = new HotKeyCache(64 << 10);
    cache.set('a', false, Buffer.from('aaaa'));
    expect(cache.get('a', false)).to.be.at.least(0);
    const slot = cache.lastSlot;
    const stamp = cache.stamp(slot);
    // A rewrite through the slot, at the same length and then at another, is what a set of the key gives.
    expect(cache.replaceIn(slot, stamp, Buffer.from('xbbbbx'), 1, 5)).to.equal(true);
    expect(recordOf(cache, 'a')).to.equal('bbbb');
    expect(cache.replaceIn(slot, stamp, Buffer.from('cccccc'))).to.equal(true);
    expect(recordOf(cache, 'a')).to.equal('cccccc');
    const at = cache.recordIn(slot, stamp);
    expect(cache.bytes.toString('latin1', at, at + cache.recordLength(at))).to.equal('cccccc');
    // Freed, the slot is refused even before another key takes it.
    cache.delete('a', false);
    expect(cache.recordIn(slot, stamp)).to.equal(-1);
    expect(cache.replaceIn(slot, stamp, Buffer.from('dddd'))).to.equal(false);
    cache.set('b', false, Buffer.from('bb'));
    expect(cache.lastSlot).to.equal(slot);
    expect(cache.recordIn(slot, stamp)).to.equal(-1);
    expect(cache.replaceIn(slot, stamp, Buffer.from('dddd'))).to.equal(false);
    expect(recordOf(cache, 'b')).to.equal('bb');
    expect(recordOf(cache, 'a')).to.equal(undefined);
    // Evicted, and across a clear, which starts the slots afresh.
    const bStamp = cache.stamp(slot);
    for (let k = 0; k < 5_000; k++) cache.set(k, false, Buffer.alloc(16));
    expect(cache.get('b', false)).to.equal(-1);
    expect(cache.recordIn(slot, bStamp)).to.equal(-1);
    cache.clear();
    cache.set('c', false, Buffer.from('cc'));
    expect(cache.lastSlot).to.equal(slot);
    expect(cache.recordIn(slot, stamp)).to.equal(-1);
    expect(cache.recordIn(slot, bStamp)).to.equal(-1);
    expect(cache.replaceIn(cache.lastSlot, cache.stamp(cache.lastSlot), Buffer.from('ee'))).to.equal(true);
    expect(recordOf(cache, 'c')).to.equal('ee');
  });

  it('keeps a kept slot valid while the arena grows and other keys come and go', () => {
    // Room for about 3,500 of these keys: the arena grows, then the oldest leave.
    const cache = new HotKeyCache(256 << 10);
    cache.set('kept', false, Buffer.from('k0'));
    const slot = cache.lastSlot;
    const stamp = cache.stamp(slot);
    for (let k = 0; k < 8_000; k++) {
      cache.set(k, false, Buffer.alloc(8 + (k % 9), k));
      if (k % 3 === 0) cache.delete(k - 1, false);
      // Rewritten at another length now and then, so that it moves among the newest and is not evicted.
      const record = Buffer.from(`${k}:${'x'.repeat((k / 500) % 2)}`);
      if (k % 500 === 0) expect(cache.replaceIn(slot, stamp, record)).to.equal(true);
    }
    const at = cache.recordIn(slot, stamp);
    expect(cache.bytes.toString('latin1', at, at + cache.recordLength(at))).to.equal('7500:x');
    expect(recordOf(cache, 'kept')).to.equal('7500:x');
    expect(cache.get(0, false)).to.equal(-1);
  });

  it('gives no slot for a record too large to cache, and drops the key it held', () => {
    const cache = new HotKeyCache(4096);
    cache.set('big', false, Buffer.from('small'));
    const slot = cache.lastSlot;
    const stamp = cache.stamp(slot);
    expect(slot).to.be.at.least(0);
    expect(cache.replaceIn(slot, stamp, Buffer.alloc(2048))).to.equal(true);
    expect(cache.lastSlot).to.equal(-1);
    expect(cache.get('big', false)).to.equal(-1);
    cache.set('other', false, Buffer.alloc(2048));
    expect(cache.lastSlot).to.equal(-1);
    expect(cache.get('other', false)).to.equal(-1);
  });
});
