import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { expect } from 'chai';
import { stateDir } from '../../lib/checkpoint/paths.js';
import { SluiceError } from '../../lib/errors.js';
import type { ArenaHashMap } from '../../lib/state/arena-hash-map.js';
import { StateStore } from '../../lib/state/state-store.js';

/** Deterministic pseudo-random numbers (mulberry32), so a failing workload can be replayed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Model = Map<string, { value: unknown; timeout: number }>;

/** One batch of random changes, applied to both the store and a plain Map model. */
function randomBatch(store: StateStore, model: Model, rand: () => number, ops: number): void {
  for (let i = 0; i < ops; i++) {
    const n = Math.floor(rand() * 60);
    // Keys of three shapes: strings, numbers and composite arrays; the model keys them by JSON.
    const key = n % 3 === 0 ? `k${n}` : n % 3 === 1 ? n * 1.5 : ['acct', n];
    const id = JSON.stringify(key);
    const r = rand();
    // Reads between writes exercise the store's lookup cache (get then put of the same key).
    expect(store.get(key), id).to.deep.equal(model.get(id)?.value);
    if (r < 0.2) {
      store.remove(key);
      model.delete(id);
    } else {
      const value =
        r < 0.5 ? { sum: Math.round(rand() * 1000) / 4, count: n } : r < 0.7 ? ['list', n, rand() < 0.5] : `s${n}`;
      const timeout = rand() < 0.5 ? -1 : Math.floor(rand() * 50);
      store.put(key, value, timeout);
      model.set(id, { value, timeout });
    }
  }
}

function contents(store: StateStore): Array<[unknown, unknown, number]> {
  return store.sortedEntries().map(([k, v]) => [k, v, store.getTimeout(k)]);
}

function expectMatchesModel(store: StateStore, model: Model): void {
  expect(store.size).to.equal(model.size);
  for (const [id, { value, timeout }] of model) {
    const key = JSON.parse(id);
    expect(store.get(key), id).to.deep.equal(value);
    expect(store.getTimeout(key), id).to.equal(timeout);
  }
  const seen = [...store.entries()].map(([k]) => JSON.stringify(k)).sort();
  expect(seen).to.deep.equal([...model.keys()].sort());
}

describe('state store', () => {
  let root: string;
  let dir: string;
  beforeEach(() => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-'));
    dir = stateDir(root, 'op0', 3);
  });
  afterEach(() => fs.rmSync(root, { recursive: true, force: true }));

  it('places stores under <checkpoint>/state/<op>/<part>', () => {
    expect(dir).to.equal(path.join(root, 'state', 'op0', '3'));
  });

  it('starts empty at version 0 without any files', async () => {
    const store = await StateStore.load(dir, 0);
    expect(store.version).to.equal(0);
    expect(store.size).to.equal(0);
    expect(store.get('a')).to.equal(undefined);
    expect(store.has('a')).to.equal(false);
    expect(store.getTimeout('a')).to.equal(-1);
    expect([...store.entries()]).to.deep.equal([]);
  });

  it('puts, removes and commits, and a reload sees the committed state', async () => {
    const store = await StateStore.load<unknown, unknown>(dir, 0);
    store.put('a', { sum: 1 });
    store.put(7, 'seven', 1000);
    store.put(['x', 1], [1, 2]);
    store.put('gone', 1);
    expect(store.size).to.equal(4);
    store.remove('gone');
    expect(store.has('gone')).to.equal(false);
    expect(store.size).to.equal(3);
    const m1 = await store.commit(1);
    expect(m1).to.include({ numRowsTotal: 3, numRowsUpdated: 3, numRowsRemoved: 0 });
    expect(m1.memoryUsedBytes).to.be.greaterThan(0);
    expect(m1.commitTimeMs).to.be.at.least(0);
    store.put('a', { sum: 2 });
    store.remove(7);
    store.remove('never-there');
    const m2 = await store.commit(2);
    expect(m2).to.include({ numRowsTotal: 2, numRowsUpdated: 1, numRowsRemoved: 1 });
    expect(fs.readdirSync(dir).sort()).to.deep.equal(['1.delta', '2.delta']);

    const v1 = await StateStore.load(dir, 1);
    expect(v1.size).to.equal(3);
    expect(v1.get('a')).to.deep.equal({ sum: 1 });
    expect(v1.get(7)).to.equal('seven');
    expect(v1.getTimeout(7)).to.equal(1000);
    expect(v1.get(['x', 1])).to.deep.equal([1, 2]);
    const v2 = await StateStore.load(dir, 2);
    expect(contents(v2)).to.deep.equal(contents(store));
    expect(v2.get('a')).to.deep.equal({ sum: 2 });
    expect(v2.has(7)).to.equal(false);
  });

  it('only commits the next version', async () => {
    const store = await StateStore.load(dir, 0);
    let caught: unknown;
    try {
      await store.commit(2);
    } catch (err) {
      caught = err;
    }
    expect(String(caught)).to.match(/holds version 0 and cannot commit version 2/);
  });

  it('hands out copies: mutating a value or key after put or get does not change the state', async () => {
    const store = await StateStore.load<unknown, { sum: number }>(dir, 0);
    const value = { sum: 1 };
    const key = ['a', 1];
    store.put(key, value);
    value.sum = 99;
    key[1] = 2;
    expect(store.get(['a', 1])).to.deep.equal({ sum: 1 });
    await store.commit(1);
    store.get(['a', 1])!.sum = 42;
    expect(store.get(['a', 1])).to.deep.equal({ sum: 1 });
    const [k] = [...store.keys()];
    (k as unknown[])[0] = 'changed';
    expect(store.has(['a', 1])).to.equal(true);
  });

  it('treats 1 and "1" as different keys, and -0 as 0', async () => {
    const store = await StateStore.load(dir, 0);
    store.put(1, 'number');
    store.put('1', 'string');
    store.put(-0, 'zero');
    expect(store.get(0)).to.equal('zero');
    await store.commit(1);
    const back = await StateStore.load(dir, 1);
    expect(back.get(1)).to.equal('number');
    expect(back.get('1')).to.equal('string');
    expect(back.get(0)).to.equal('zero');
    expect(Object.is(back.sortedEntries().find(([, v]) => v === 'zero')![0], 0)).to.equal(true);
  });

  it('writes a snapshot every snapshotInterval versions and loads snapshot plus deltas', async () => {
    const store = await StateStore.load(dir, 0, { snapshotInterval: 3 });
    for (let v = 1; v <= 7; v++) {
      store.put(`k${v}`, v);
      await store.commit(v);
    }
    const names = fs.readdirSync(dir);
    expect(names.filter((n) => n.endsWith('.snapshot')).sort()).to.deep.equal(['3.snapshot', '6.snapshot']);
    expect(names.filter((n) => n.endsWith('.delta'))).to.have.length(7);
    // Without the deltas before 6, version 7 still loads (snapshot 6 + delta 7).
    for (let v = 1; v <= 6; v++) fs.rmSync(path.join(dir, `${v}.delta`));
    const back = await StateStore.load(dir, 7);
    expect(back.size).to.equal(7);
    expect(back.get('k7')).to.equal(7);
    expect(back.get('k1')).to.equal(1);
  });

  it('recovers exactly the uninterrupted state, timeouts and orders at every version', async function () {
    this.timeout(30_000);
    const rand = prng(42);
    const store = await StateStore.load(dir, 0, { snapshotInterval: 4 });
    const model: Model = new Map();
    for (let v = 1; v <= 22; v++) {
      if (v % 5 === 0) {
        // A failed attempt at the batch must leave no trace.
        randomBatch(store, new Map(model), rand, 40);
        store.abort();
      }
      randomBatch(store, model, rand, 40);
      expectMatchesModel(store, model);
      const due = store.keysWithTimeoutAtOrBefore(25);
      await store.commit(v);
      expectMatchesModel(store, model);
      expect(store.keysWithTimeoutAtOrBefore(25)).to.deep.equal(due);
      for (const interval of [1, 4, 100]) {
        const back = await StateStore.load(dir, v, { snapshotInterval: interval });
        expect(contents(back), `version ${v}`).to.deep.equal(contents(store));
        expect(back.keysWithTimeoutAtOrBefore(25)).to.deep.equal(due);
        expect(back.keysWithTimeoutAtOrBefore(Infinity)).to.deep.equal(store.keysWithTimeoutAtOrBefore(Infinity));
        expectMatchesModel(back, model);
      }
    }
  });

  it('orders due timeouts by time, then by encoded key, independent of insertion order', async () => {
    const a = await StateStore.load(path.join(root, 'a'), 0);
    const b = await StateStore.load(path.join(root, 'b'), 0);
    const puts: Array<[unknown, number]> = [
      ['zeta', 5],
      ['alpha', 5],
      [3, 5],
      [['c', 1], 2],
      ['late', 9],
      ['none', -1],
      ['beta', 1],
    ];
    for (const [k, t] of puts) a.put(k, 1, t);
    for (const [k, t] of [...puts].reverse()) b.put(k, 1, t);
    const due = a.keysWithTimeoutAtOrBefore(5);
    expect(due).to.deep.equal(b.keysWithTimeoutAtOrBefore(5));
    expect(due.slice(0, 2)).to.deep.equal(['beta', ['c', 1]]);
    expect(due.slice(2).sort()).to.deep.equal([3, 'alpha', 'zeta'].sort());
    expect(due).to.not.include('late');
    expect(due).to.not.include('none');
    expect(a.sortedEntries().map(([k]) => k)).to.deep.equal(b.sortedEntries().map(([k]) => k));
  });

  it('sees uncommitted timeout changes and removals when listing due keys', async () => {
    const store = await StateStore.load(dir, 0);
    store.put('a', 1, 10);
    store.put('b', 1, 10);
    store.put('c', 1, 10);
    await store.commit(1);
    store.put('a', 2, 100);
    store.remove('b');
    store.put('d', 1, 5);
    expect(store.keysWithTimeoutAtOrBefore(10)).to.deep.equal(['d', 'c']);
    expect(store.keysWithTimeoutAtOrBefore(4)).to.deep.equal([]);
    store.abort();
    expect(store.keysWithTimeoutAtOrBefore(10)).to.deep.equal(['a', 'b', 'c']);
  });

  it('lists the first keys due up to a limit as the whole list starts, ties and uncommitted changes included', async () => {
    const store = await StateStore.load(dir, 0);
    // Many keys share each timeout, so the limit falls inside a run of equal timeouts.
    for (let i = 0; i < 400; i++) store.put(`k${i}`, i, 10 + (i % 7));
    await store.commit(1);
    for (let i = 0; i < 400; i += 5) store.put(`k${i}`, -i, i % 2 === 0 ? 12 : 1000);
    for (let i = 3; i < 400; i += 11) store.remove(`k${i}`);
    for (let i = 0; i < 30; i++) store.put(`n${i}`, i, 9 + (i % 4));
    const all = store.keysWithTimeoutAtOrBefore(14);
    expect(all.length).to.be.greaterThan(250);
    for (const limit of [1, 2, 57, 100, 101, 250, all.length - 1, all.length, all.length + 5]) {
      expect(store.keysWithTimeoutAtOrBefore(14, limit), `limit ${limit}`).to.deep.equal(all.slice(0, limit));
    }
    await store.commit(2);
    expect(store.keysWithTimeoutAtOrBefore(14, 123)).to.deep.equal(all.slice(0, 123));
  });

  it('earliestTimeout skips committed timeouts that an uncommitted change raised, cleared or removed', async () => {
    const store = await StateStore.load(dir, 0);
    expect(store.earliestTimeout()).to.equal(Infinity);
    store.put('a', 1, 10);
    store.put('b', 1, 20);
    store.put('c', 1);
    expect(store.earliestTimeout()).to.equal(10);
    await store.commit(1);
    expect(store.earliestTimeout()).to.equal(10);
    store.put('a', 2, 100);
    expect(store.earliestTimeout()).to.equal(20);
    store.remove('b');
    expect(store.earliestTimeout()).to.equal(100);
    store.put('a', 3);
    expect(store.earliestTimeout()).to.equal(Infinity);
    store.put('c', 1, 7);
    expect(store.earliestTimeout()).to.equal(7);
    store.abort();
    expect(store.earliestTimeout()).to.equal(10);
  });

  it('earliestTimeout equals the smallest timeout of the model at every step and after reloads', async () => {
    const rand = prng(7);
    const store = await StateStore.load(dir, 0, { snapshotInterval: 3 });
    const model: Model = new Map();
    const modelMin = (m: Model): number =>
      Math.min(Infinity, ...[...m.values()].map((e) => e.timeout).filter((t) => t >= 0));
    for (let v = 1; v <= 12; v++) {
      if (v % 4 === 0) {
        randomBatch(store, new Map(model), rand, 30);
        store.abort();
        expect(store.earliestTimeout()).to.equal(modelMin(model));
      }
      randomBatch(store, model, rand, 30);
      expect(store.earliestTimeout(), `before commit ${v}`).to.equal(modelMin(model));
      await store.commit(v);
      expect(store.earliestTimeout(), `after commit ${v}`).to.equal(modelMin(model));
      const back = await StateStore.load(dir, v);
      expect(back.earliestTimeout(), `reload of ${v}`).to.equal(modelMin(model));
      // The scan also tightens the bound that lets keysWithTimeoutAtOrBefore skip work: it must stay correct.
      expect(back.keysWithTimeoutAtOrBefore(25)).to.deep.equal(store.keysWithTimeoutAtOrBefore(25));
    }
  });

  it('abort drops uncommitted changes and keeps the store reusable without a reload', async () => {
    const store = await StateStore.load(dir, 0);
    store.put('a', 1);
    await store.commit(1);
    store.put('a', 2);
    store.put('b', 3);
    store.remove('a');
    store.abort();
    expect(store.version).to.equal(1);
    expect(contents(store)).to.deep.equal([['a', 1, -1]]);
    // prepare(current version) must not touch the disk: it works with the directory gone.
    fs.renameSync(dir, `${dir}-moved`);
    store.put('x', 1);
    await store.prepare(1);
    expect(contents(store)).to.deep.equal([['a', 1, -1]]);
    fs.renameSync(`${dir}-moved`, dir);
  });

  it('reloads when a committed batch is replayed, and rewrites the same delta', async () => {
    const store = await StateStore.load(dir, 0);
    store.put('a', { sum: 1 });
    await store.commit(1);
    const batch2 = (s: StateStore): void => {
      s.put('a', { sum: (s.get('a') as { sum: number }).sum + 1 }, 50);
      s.put('b', 'new');
    };
    batch2(store);
    await store.commit(2);
    const first = fs.readFileSync(path.join(dir, '2.delta'));
    // The sink failed after the state commit: batch 2 runs again from version 1.
    await store.prepare(1);
    expect(store.version).to.equal(1);
    expect(contents(store)).to.deep.equal([['a', { sum: 1 }, -1]]);
    batch2(store);
    await store.commit(2);
    expect(fs.readFileSync(path.join(dir, '2.delta'))).to.deep.equal(first);
    expect(store.get('a')).to.deep.equal({ sum: 2 });
  });

  it('purge keeps every version from minVersionToKeep loadable', async () => {
    const store = await StateStore.load(dir, 0, { snapshotInterval: 5 });
    const states = new Map<number, Array<[unknown, unknown, number]>>();
    for (let v = 1; v <= 23; v++) {
      store.put(`k${v % 7}`, v, v);
      if (v % 4 === 0) store.remove(`k${(v + 3) % 7}`);
      await store.commit(v);
      states.set(v, contents(store));
    }
    expect(await store.purge(3)).to.deep.equal([]);
    const deleted = await store.purge(17);
    expect(deleted).to.include.members(['1.delta', '14.delta', '5.snapshot', '10.snapshot']);
    expect(deleted).to.not.include('15.snapshot');
    for (let v = 17; v <= 23; v++) expect(contents(await StateStore.load(dir, v))).to.deep.equal(states.get(v));
    expect(contents(await StateStore.load(dir, 15))).to.deep.equal(states.get(15));
    let caught: unknown;
    try {
      await StateStore.load(dir, 12);
    } catch (err) {
      caught = err;
    }
    expect(caught).to.be.instanceOf(SluiceError);
    expect((caught as SluiceError).code).to.equal('CHECKPOINT_MISSING');
    expect((caught as SluiceError).message).to.include(path.join(dir, '1.delta'));
  });

  async function loadError(version: number): Promise<SluiceError> {
    try {
      await StateStore.load(dir, version);
    } catch (err) {
      expect(err).to.be.instanceOf(SluiceError);
      return err as SluiceError;
    }
    throw new Error('load succeeded');
  }

  async function threeVersions(): Promise<void> {
    const store = await StateStore.load(dir, 0, { snapshotInterval: 2 });
    for (let v = 1; v <= 3; v++) {
      store.put(`key${v}`, { sum: v, label: 'x'.repeat(20) });
      await store.commit(v);
    }
  }

  it('a damaged delta is a CHECKPOINT_CORRUPT error naming the file', async () => {
    await threeVersions();
    const file = path.join(dir, '3.delta');
    const bytes = fs.readFileSync(file);
    bytes[bytes.length - 10] ^= 0x01;
    fs.writeFileSync(file, bytes);
    const err = await loadError(3);
    expect(err.code).to.equal('CHECKPOINT_CORRUPT');
    expect(err.message).to.include(file).and.to.include('checksum');
    expect(err.hint).to.be.a('string');
  });

  it('a torn (truncated) snapshot or delta is a CHECKPOINT_CORRUPT error', async () => {
    await threeVersions();
    for (const name of ['2.snapshot', '3.delta']) {
      const file = path.join(dir, name);
      const bytes = fs.readFileSync(file);
      fs.writeFileSync(file, bytes.subarray(0, Math.floor(bytes.length / 2)));
      const err = await loadError(3);
      expect(err.code).to.equal('CHECKPOINT_CORRUPT');
      expect(err.message).to.include(file);
      fs.writeFileSync(file, bytes);
    }
    fs.writeFileSync(path.join(dir, '3.delta'), '');
    expect((await loadError(3)).code).to.equal('CHECKPOINT_CORRUPT');
  });

  it('a file under the wrong name or of another format is CHECKPOINT_CORRUPT', async () => {
    await threeVersions();
    fs.copyFileSync(path.join(dir, '1.delta'), path.join(dir, '3.delta'));
    expect((await loadError(3)).message).to.include('holds state version 1, not 3');
    fs.writeFileSync(path.join(dir, '3.delta'), 'v1\n{"json": true}\n');
    expect((await loadError(3)).code).to.equal('CHECKPOINT_CORRUPT');
  });

  it('a missing delta is CHECKPOINT_MISSING, and a failed load leaves the store reloadable', async () => {
    await threeVersions();
    fs.renameSync(path.join(dir, '3.delta'), path.join(dir, 'moved'));
    const err = await loadError(3);
    expect(err.code).to.equal('CHECKPOINT_MISSING');
    expect(err.message).to.include('3.delta');
    const store = await StateStore.load(dir, 2);
    await store.prepare(3).catch(() => undefined);
    expect(store.version).to.equal(-1);
    fs.renameSync(path.join(dir, 'moved'), path.join(dir, '3.delta'));
    await store.prepare(3);
    expect(store.get('key3')).to.deep.equal({ sum: 3, label: 'x'.repeat(20) });
  });

  it('reads a delta whose field-name dictionary disagrees with the store by re-encoding', async () => {
    const a = await StateStore.load(path.join(root, 'a'), 0);
    a.put('k', { x: 1 });
    await a.commit(1);
    const b = await StateStore.load(path.join(root, 'b'), 0);
    b.put('other', { y: 1 });
    await b.commit(1);
    b.put('k', { x: 2, y: 3 });
    await b.commit(2);
    // a's dictionary is [x], b's 2.delta says [y, x]: same names, different ids.
    fs.copyFileSync(path.join(root, 'b', '2.delta'), path.join(root, 'a', '2.delta'));
    const back = await StateStore.load(path.join(root, 'a'), 2, { snapshotInterval: 2 });
    expect(back.get('k')).to.deep.equal({ x: 2, y: 3 });
    back.put('z', { y: 9, x: 8 });
    await back.commit(3);
    expect((await StateStore.load(path.join(root, 'a'), 3)).sortedEntries()).to.deep.equal([
      ['k', { x: 2, y: 3 }],
      ['z', { y: 9, x: 8 }],
    ]);
  });

  it('keeps the latest of many updates to one key in a batch, values growing and shrinking', async () => {
    const store = await StateStore.load(dir, 0);
    store.put('other', 'stays');
    for (let i = 0; i < 500; i++) {
      const value = { n: i, pad: 'x'.repeat((i * 37) % 90) };
      store.put('hot', value, i % 3 === 0 ? -1 : i);
      expect(store.get('hot')).to.deep.equal(value);
    }
    expect(store.getTimeout('hot')).to.equal(499);
    await store.commit(1);
    const back = await StateStore.load(dir, 1);
    expect(back.get('hot')).to.deep.equal({ n: 499, pad: 'x'.repeat((499 * 37) % 90) });
    expect(back.get('other')).to.equal('stays');
    expect(back.getTimeout('hot')).to.equal(499);
  });

  it('keeps its hash index consistent through many inserts, removes and reinserts', async function () {
    this.timeout(30_000);
    const rand = prng(7);
    const store = await StateStore.load<unknown, number>(dir, 0, { snapshotInterval: 3 });
    const model = new Map<string, number>();
    for (let v = 1; v <= 8; v++) {
      for (let i = 0; i < 6000; i++) {
        const n = Math.floor(rand() * 5000);
        const key = n % 4 === 0 ? n : n % 4 === 1 ? `s${n}` : n % 4 === 2 ? [n, 'x'] : `${'long'.repeat(20)}${n}`;
        const id = JSON.stringify(key);
        if (rand() < 0.45) {
          store.remove(key);
          model.delete(id);
        } else {
          store.put(key, i);
          model.set(id, i);
        }
      }
      await store.commit(v);
      expect(store.size).to.equal(model.size);
      const wrong: string[] = [];
      for (let n = 0; n < 5000; n++) {
        for (const key of [n, `s${n}`, [n, 'x'], `${'long'.repeat(20)}${n}`]) {
          const id = JSON.stringify(key);
          if (store.get(key) !== model.get(id) || store.has(key) !== model.has(id)) wrong.push(id);
        }
      }
      expect(wrong, `version ${v}`).to.deep.equal([]);
    }
    expect((await StateStore.load(dir, 8)).sortedEntries()).to.deep.equal(store.sortedEntries());
  });

  it('stays correct when values grow, shrink and the arena is compacted', async function () {
    this.timeout(20_000);
    const store = await StateStore.load(dir, 0, { snapshotInterval: 3 });
    const expected = new Map<string, string>();
    for (let v = 1; v <= 6; v++) {
      for (let i = 0; i < 3000; i++) {
        const value = 'v'.repeat(((i * 7 + v * 13) % 400) + 1);
        store.put(`key${i}`, value);
        expected.set(`key${i}`, value);
      }
      for (let i = v; i < 3000; i += 17) {
        store.remove(`key${i}`);
        expected.delete(`key${i}`);
      }
      await store.commit(v);
      for (const [k, val] of expected) expect(store.get(k)).to.equal(val);
      expect(store.size).to.equal(expected.size);
    }
    const back = await StateStore.load(dir, 6);
    expect(back.sortedEntries()).to.deep.equal(store.sortedEntries());
  });

  it('adopts the delta of a batch of mostly new keys as arena chunks, exact through updates, removes and compactions', async function () {
    this.timeout(60_000);
    const rand = prng(11);
    const store = await StateStore.load<unknown, unknown>(dir, 0, { snapshotInterval: 7 });
    const arena = (store as unknown as { committed: ArenaHashMap }).committed;
    const model: Model = new Map();
    let next = 0;
    let most = 0;
    for (let v = 1; v <= 20; v++) {
      // About 1.2 MB of new keys, so the batch's delta is adopted, plus updates and removes of older keys: in
      // place (shorter), moved (longer), and keys new in one batch and removed in the next.
      for (let i = 0; i < 1200; i++, next++) {
        const key = next % 2 === 0 ? `key${next}` : [next, 'c'];
        const value = { n: next, pad: 'p'.repeat(900 + (next % 200)) };
        const timeout = next % 3 === 0 ? -1 : next;
        store.put(key, value, timeout);
        model.set(JSON.stringify(key), { value, timeout });
      }
      for (let i = 0; i < 300 && next > 2400; i++) {
        const n = Math.floor(rand() * (next - 1200));
        const key = n % 2 === 0 ? `key${n}` : [n, 'c'];
        const id = JSON.stringify(key);
        if (rand() < 0.4) {
          store.remove(key);
          model.delete(id);
        } else {
          const value = { n: -n, pad: 'q'.repeat(Math.floor(rand() * 1500)) };
          store.put(key, value, n);
          model.set(id, { value, timeout: n });
        }
      }
      await store.commit(v);
      most = Math.max(most, arena.chunkCount);
      if (v % 6 === 0) expectMatchesModel(store, model);
    }
    // More batches were adopted than chunks are kept, so the chunks were compacted back into one arena.
    expect(most).to.equal(16);
    expectMatchesModel(store, model);
    const back = await StateStore.load(dir, 20, { snapshotInterval: 7 });
    expect(contents(back)).to.deep.equal(contents(store));
  });

  it('rejects a bad timeout and an unstorable value without changing the state', async () => {
    const store = await StateStore.load(dir, 0);
    store.put('a', 1);
    expect(() => store.put('a', 2, -5)).to.throw(RangeError);
    expect(() => store.put('a', 2, NaN)).to.throw(RangeError);
    expect(() => store.put('a', new (class Foo {})())).to.throw(SluiceError);
    expect(store.get('a')).to.equal(1);
    await store.commit(1);
    expect((await StateStore.load(dir, 1)).get('a')).to.equal(1);
  });
});
