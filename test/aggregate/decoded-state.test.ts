import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { expect } from 'chai';
import {
  BYPASS_BATCHES,
  type DecodedState,
  DecodedStateCache,
  MAX_CACHED_KEYS,
  MIN_READS_TO_JUDGE,
} from '../../lib/plan/operators/decoded-state.js';
import { StateStore } from '../../lib/state/state-store.js';

/**
 * A new store in `dir` with a cache in front, and a function that runs each function given to it as the next
 * batch through the cache, ending it without error.
 */
async function batches(dir: string): Promise<{ store: StateStore; run: (fn: (s: DecodedState) => void) => void }> {
  const store = await StateStore.load(dir, 0);
  const cache = new DecodedStateCache();
  let batch = 0;
  const run = (fn: (s: DecodedState) => void): void => {
    const s = cache.begin(store, batch++);
    fn(s);
    s.done();
  };
  return { store, run };
}

describe('aggregation: decoded state kept between batches', () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-'));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('serves what batch B put to batch B + 1 of the same store, and writes every put and remove through to the store', async () => {
    const store = await StateStore.load(dir, 0);
    const cache = new DecodedStateCache();
    const s0 = cache.begin(store, 0);
    const pages = new Map([['/a', 1]]);
    s0.put('u1', [[1, 2, [pages]]], 10);
    s0.put(['u2', 60_000], { n: 1 });
    s0.put('gone', 1);
    s0.remove('gone');
    s0.done();
    await store.commit(1);
    const s1 = cache.begin(store, 1);
    expect((s1.get('u1') as unknown[][][])[0][2][0]).to.equal(pages);
    expect(s1.get(['u2', 60_000])).to.deep.equal({ n: 1 });
    expect(s1.get('gone')).to.equal(undefined);
    expect(store.get('u1')).to.deep.equal([[1, 2, [new Map([['/a', 1]])]]]);
    expect(store.getTimeout('u1')).to.equal(10);
    expect(store.has('gone')).to.equal(false);
  });

  it('reads from the store again after a batch that did not finish, a skipped batch id, or another store object', async () => {
    const store = await StateStore.load(dir, 0);
    const cache = new DecodedStateCache();
    const value = { n: 1 };
    const fresh = async (batchId: number, s = store): Promise<boolean> => cache.begin(s, batchId).get('k') !== value;

    const s0 = cache.begin(store, 0);
    s0.put('k', value);
    // No done(): the batch threw, its values may be half-merged.
    expect(await fresh(0)).to.equal(true);

    const again = cache.begin(store, 0);
    again.put('k', value);
    again.done();
    expect(await fresh(2)).to.equal(true);

    const s1 = cache.begin(store, 0);
    s1.put('k', value);
    s1.done();
    await store.commit(1);
    const reloaded = await StateStore.load(dir, 1);
    expect(await fresh(1, reloaded)).to.equal(true);
    expect(cache.begin(reloaded, 1).get('k')).to.deep.equal(value);
  });

  it('reads the store directly for a while after a batch whose reads mostly missed, then caches again', async () => {
    const { store, run } = await batches(dir);
    const kept = { n: 1 };
    run((s) => s.put('kept', kept));
    // A batch that starts with a filled cache and reads only keys it does not hold: a key set the cache cannot serve.
    run((s) => {
      expect(s.get('kept')).to.equal(kept);
      for (let i = 0; i < MIN_READS_TO_JUDGE; i++) s.put(`new${i}`, s.get(`new${i}`) ?? i);
    });
    for (let b = 0; b < BYPASS_BATCHES; b++) {
      run((s) => {
        // Read from the store: an equal value, not the cached object; every put still reaches the store.
        const v = s.get('kept');
        expect(v).to.deep.equal(kept);
        expect(v).to.not.equal(kept);
        s.put(`b${b}`, b);
      });
    }
    expect(store.get(`b${BYPASS_BATCHES - 1}`)).to.equal(BYPASS_BATCHES - 1);
    const again = { n: 2 };
    run((s) => s.put('kept', again));
    run((s) => expect(s.get('kept')).to.equal(again));
  });

  it('stops caching within a batch that puts more keys than the cache holds, for the rest of it and a while after', async () => {
    const { run } = await batches(dir);
    const kept = { n: 1 };
    run((s) => {
      for (let i = 0; i <= MAX_CACHED_KEYS; i++) s.put(i, i);
      s.put('kept', kept);
      // Past the overflow the store serves the reads: what it holds, not the object put.
      const v = s.get('kept');
      expect(v).to.deep.equal(kept);
      expect(v).to.not.equal(kept);
    });
    for (let b = 0; b < BYPASS_BATCHES; b++) {
      run((s) => {
        const v = s.get('kept');
        expect(v).to.deep.equal(kept);
        expect(v).to.not.equal(kept);
        s.put('kept', kept);
      });
    }
    run((s) => s.put('kept', kept));
    run((s) => expect(s.get('kept')).to.equal(kept));
  });

  it('does not cache a batch that says it touches more keys than the cache holds, nor the batches after it for a while', async () => {
    const { run } = await batches(dir);
    const kept = { n: 1 };
    run((s) => s.put('kept', kept));
    run((s) => {
      s.expectKeys(MAX_CACHED_KEYS);
      expect(s.get('kept')).to.equal(kept);
      s.expectKeys(MAX_CACHED_KEYS + 1);
      const v = s.get('kept');
      expect(v).to.deep.equal(kept);
      expect(v).to.not.equal(kept);
      s.put('kept', kept);
    });
    for (let b = 0; b < BYPASS_BATCHES; b++) run((s) => expect(s.get('kept')).to.not.equal(kept));
    run((s) => s.put('kept', kept));
    run((s) => expect(s.get('kept')).to.equal(kept));
  });

  it('treats keys as the store does: -0 is 0, composite keys by their components', async () => {
    const store = await StateStore.load(dir, 0);
    const cache = new DecodedStateCache();
    const s0 = cache.begin(store, 0);
    s0.put(-0, 'minus zero');
    s0.put(0, 'zero');
    s0.put([-0, 'a'], 'minus zero a');
    s0.put([0, 'a'], 'zero a');
    s0.put(['1', 'a'], 'string one a');
    s0.put([1, 'a'], 'one a');
    s0.done();
    const s1 = cache.begin(store, 1);
    const keys = [-0, 0, [-0, 'a'], [0, 'a'], ['1', 'a'], [1, 'a']];
    expect(keys.map((k) => s1.get(k))).to.deep.equal(['zero', 'zero', 'zero a', 'zero a', 'string one a', 'one a']);
    expect(keys.map((k) => store.get(k))).to.deep.equal(['zero', 'zero', 'zero a', 'zero a', 'string one a', 'one a']);
  });
});
