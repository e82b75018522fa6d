import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { expect } from 'chai';
import { open as openLmdb } from 'lmdb';
import { stateDir } from '../../lib/checkpoint/paths.js';
import { DiskStateStore } from '../../lib/state/disk-state-store.js';
import { HotKeyCache } from '../../lib/state/hot-key-cache.js';
import { StateStore } from '../../lib/state/state-store.js';
import { decode } from '../../lib/state/value-codec.js';
import type { VersionedStateStore } from '../../lib/state/versioned-state-store.js';

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

/** One batch of random reads and changes, applied to every store alike; reads must agree as they go. */
function randomBatch(stores: VersionedStateStore[], rand: () => number, ops: number): void {
  for (let i = 0; i < ops; i++) {
    const n = Math.floor(rand() * 80);
    const key = n % 3 === 0 ? `k${n}` : n % 3 === 1 ? n * 1.5 : ['acct', n];
    const seen = stores.map((s) => [s.get(key), s.has(key), s.getTimeout(key)]);
    for (const s of seen) expect(s, JSON.stringify(key)).to.deep.equal(seen[0]);
    const r = rand();
    const value =
      r < 0.5 ? { sum: Math.round(rand() * 1000) / 4, count: n } : r < 0.7 ? ['list', n, rand() < 0.5] : `s${n}`;
    const timeout = rand() < 0.5 ? -1 : Math.floor(rand() * 50);
    for (const s of stores) {
      if (r < 0.2) s.remove(key);
      else s.put(key, value, timeout);
    }
  }
}

/** Everything observable of a store that decides output. */
function observed(store: VersionedStateStore): unknown {
  return {
    size: store.size,
    sorted: store.sortedEntries().map(([k, v]) => [k, v, store.getTimeout(k)]),
    due: [10, 25, 60].map((t) => store.keysWithTimeoutAtOrBefore(t)),
    firstDue: [10, 25, 60].map((t) => store.keysWithTimeoutAtOrBefore(t, 3)),
    earliest: store.earliestTimeout(),
    entries: [...store.entries()].map(([k]) => JSON.stringify(k)).sort(),
  };
}

/** Applies `change` to both stores, checks that they agree, and commits both as version `v`. */
async function batchOnBoth(
  mem: VersionedStateStore,
  disk: VersionedStateStore,
  v: number,
  change: (s: VersionedStateStore) => void,
): Promise<void> {
  for (const s of [mem, disk]) change(s);
  expect(observed(disk), `batch ${v}`).to.deep.equal(observed(mem));
  await mem.commit(v);
  await disk.commit(v);
}

/** Every commit's changes written to the database at once, for tests that look at what it holds after each. */
const APPLY_EACH_COMMIT = { writeBackBytes: 0 };

describe('disk state store', () => {
  let root: string;
  let memDir: string;
  let diskDir: string;
  let localDir: string;
  const open: DiskStateStore[] = [];
  const openDisk = async (
    version: number,
    opts: { snapshotInterval?: number; cacheBytes?: number; mappedBytes?: number; writeBackBytes?: number } = {},
  ) => {
    const s = await DiskStateStore.open(diskDir, localDir, version, opts);
    open.push(s);
    return s;
  };
  beforeEach(() => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-disk-'));
    memDir = stateDir(path.join(root, 'mem'), 1, 0);
    diskDir = stateDir(path.join(root, 'disk'), 1, 0);
    localDir = path.join(root, 'local', '1', '0');
  });
  afterEach(async () => {
    for (const s of open.splice(0)) await s.close();
    fs.rmSync(root, { recursive: true, force: true });
  });

  // A mapped budget of 0 reads every record with pread (see LmdbFileReader) and maps the database afresh at every
  // commit.
  for (const [cacheBytes, mappedBytes] of [
    [0, undefined],
    [1 << 20, undefined],
    [0, 0],
  ]) {
    it(`agrees with the memory store on random batches, before and after commits (hot-key cache ${cacheBytes} bytes${mappedBytes === 0 ? ', reads with pread' : ''})`, async () => {
      const rand = prng((cacheBytes as number) + 7);
      const mem = await StateStore.load(memDir, 0, { snapshotInterval: 3 });
      const disk = await openDisk(0, { snapshotInterval: 3, cacheBytes, mappedBytes });
      for (let v = 1; v <= 8; v++) {
        randomBatch([mem, disk], rand, 120);
        expect(observed(disk), `before commit ${v}`).to.deep.equal(observed(mem));
        if (v === 4) {
          // An aborted batch leaves the store at its version.
          mem.abort();
          disk.abort();
          randomBatch([mem, disk], rand, 60);
        }
        const [m, d] = [await mem.commit(v), await disk.commit(v)];
        expect([d.numRowsTotal, d.numRowsUpdated, d.numRowsRemoved]).to.deep.equal([
          m.numRowsTotal,
          m.numRowsUpdated,
          m.numRowsRemoved,
        ]);
        expect(observed(disk), `after commit ${v}`).to.deep.equal(observed(mem));
      }
      // Both providers wrote the same delta files, byte for byte, and snapshots of the same state (in
      // another record order: the disk store's is key order).
      expect(fs.readdirSync(diskDir).sort()).to.deep.equal(fs.readdirSync(memDir).sort());
      for (const name of fs.readdirSync(memDir).filter((n) => n.endsWith('.delta'))) {
        const same = fs.readFileSync(path.join(diskDir, name)).equals(fs.readFileSync(path.join(memDir, name)));
        expect(same, name).to.equal(true);
      }
      const snapshotOnly = path.join(root, 'snapshot-only');
      fs.mkdirSync(snapshotOnly);
      fs.copyFileSync(path.join(diskDir, '6.snapshot'), path.join(snapshotOnly, '6.snapshot'));
      expect(observed(await StateStore.load(snapshotOnly, 6))).to.deep.equal(
        observed(await StateStore.load(memDir, 6)),
      );
    });
  }

  it('recovers every version from the checkpoint alone: local database deleted, behind, ahead or from another history', async () => {
    const rand = prng(3);
    const mem = await StateStore.load(memDir, 0, { snapshotInterval: 3 });
    let disk = await openDisk(0, { snapshotInterval: 3 });
    const states = new Map<number, unknown>();
    for (let v = 1; v <= 7; v++) {
      randomBatch([mem, disk], rand, 100);
      await mem.commit(v);
      await disk.commit(v);
      states.set(v, observed(mem));
    }
    // Ahead: a replay of batch 5 must see version 5, not its own committed changes of 6 and 7.
    await disk.prepare(5);
    expect(observed(disk)).to.deep.equal(states.get(5));
    // Behind: the database at 5 catches up with the checkpoint's deltas.
    await disk.prepare(7);
    expect(observed(disk)).to.deep.equal(states.get(7));
    await disk.close();
    open.splice(0);
    // Deleted: the checkpoint copied elsewhere recovers without the database.
    fs.rmSync(localDir, { recursive: true, force: true });
    disk = await openDisk(7, { snapshotInterval: 3 });
    expect(observed(disk)).to.deep.equal(states.get(7));
    await disk.close();
    open.splice(0);
    // Another history: a checkpoint started over with the same database folder is not mistaken for it.
    fs.rmSync(diskDir, { recursive: true, force: true });
    const fresh = await StateStore.load(diskDir, 0);
    fresh.put('only', 1);
    await fresh.commit(1);
    disk = await openDisk(1);
    expect(observed(disk)).to.deep.equal(observed(fresh));
  });

  it('reads a checkpoint the memory store wrote, and the memory store reads one the disk store wrote', async () => {
    const rand = prng(11);
    const mem = await StateStore.load(memDir, 0, { snapshotInterval: 4 });
    const disk = await openDisk(0, { snapshotInterval: 4 });
    for (let v = 1; v <= 6; v++) {
      randomBatch([mem, disk], rand, 100);
      await mem.commit(v);
      await disk.commit(v);
    }
    const fromMem = await DiskStateStore.open(memDir, path.join(root, 'local2'), 6);
    open.push(fromMem);
    expect(observed(fromMem)).to.deep.equal(observed(mem));
    expect(observed(await StateStore.load(diskDir, 6))).to.deep.equal(observed(disk));
  });

  /** Batches of thousands of changes, more than one write transaction holds. */
  async function bigBatches(stores: VersionedStateStore[], batches: number, from = 1): Promise<void> {
    const rand = prng(from * 31);
    for (let v = from; v < from + batches; v++) {
      for (let i = 0; i < 12_000; i++) {
        const n = Math.floor(rand() * 30_000);
        const key = n % 2 === 0 ? n : `user-${n}`;
        const r = rand();
        const timeout = r < 0.6 ? Math.floor(rand() * 1000) : -1;
        for (const s of stores) {
          if (r < 0.15) s.remove(key);
          else s.put(key, { n, v }, timeout);
        }
      }
      for (const s of stores) for (const key of s.keysWithTimeoutAtOrBefore(v * 50)) s.remove(key);
      for (const s of stores) await s.commit(v);
    }
  }

  it("rebuilds its database from a snapshot in bulk: the memory store's thousands of keys in hash order, timeouts, deltas after it", async () => {
    const mem = await StateStore.load(memDir, 0, { snapshotInterval: 2 });
    await bigBatches([mem], 3);
    expect(fs.existsSync(path.join(memDir, '2.snapshot'))).to.equal(true);
    const rebuilt = await DiskStateStore.open(memDir, path.join(root, 'local-mem'), 3);
    open.push(rebuilt);
    expect(observed(rebuilt)).to.deep.equal(observed(mem));
  });

  it('rebuilds from snapshots of more keys than a load chunk holds, in key order and in hash order', async () => {
    const mem = await StateStore.load(memDir, 0, { snapshotInterval: 1 });
    const disk = await openDisk(0, { snapshotInterval: 1 });
    for (const s of [mem, disk]) {
      for (let i = 0; i < 150_000; i++) {
        const key = i % 2 === 0 ? i : `user-${i}`;
        s.put(key, { i }, i % 3 === 0 ? -1 : (i * 7) % 5000);
      }
      await s.commit(1);
    }
    expect(fs.existsSync(path.join(memDir, '1.snapshot'))).to.equal(true);
    expect(fs.existsSync(path.join(diskDir, '1.snapshot'))).to.equal(true);
    const expected = observed(mem);
    for (const [i, dir] of [memDir, diskDir].entries()) {
      const rebuilt = await DiskStateStore.open(dir, path.join(root, `rebuilt-${i}`), 1);
      open.push(rebuilt);
      expect(observed(rebuilt), dir).to.deep.equal(expected);
    }
  });

  /** Writes to the closed store's database directly, as a crash or another machine state would have left it. */
  async function tamper(
    edit: (meta: { put(k: string, v: unknown): void }, state: { put(k: Buffer, v: Buffer): void }) => void,
  ) {
    for (const s of open.splice(0)) await s.close();
    const env = openLmdb({ path: localDir, maxDbs: 4 });
    const meta = env.openDB({ name: 'meta' });
    const state = env.openDB<Buffer, Buffer>({ name: 'state', keyEncoding: 'binary', encoding: 'binary' });
    env.transactionSync(() => edit({ put: (k, v) => meta.putSync(k, v) }, { put: (k, v) => state.putSync(k, v) }));
    await env.close();
  }

  for (const mappedBytes of [Infinity, 0]) {
    it(`applies batches of thousands of changes in several transactions (remap ${mappedBytes === 0 ? 'after every commit' : 'never'})`, async () => {
      const mem = await StateStore.load(memDir, 0, { snapshotInterval: 2 });
      const disk = await openDisk(0, { snapshotInterval: 2, cacheBytes: 1 << 16, mappedBytes });
      await bigBatches([mem, disk], 3);
      expect(disk.size).to.be.greaterThan(10_000);
      expect(observed(disk)).to.deep.equal(observed(mem));
      // The pages each transaction frees serve the next: the file stays within a few times its records' bytes.
      const fileBytes = fs.statSync(path.join(localDir, 'data.mdb')).size;
      expect(fileBytes / disk.size).to.be.lessThan(400);
    });
  }

  it('splits a commit into transactions that each may map at most a quarter of its mapped budget', async () => {
    // Transactions of a commit that writes 3,000 new keys with timeouts (3,000 records and 3,000 index entries):
    // the store checks its resident pages after each one, so counting the checks counts them.
    const transactions = async (mappedBytes: number): Promise<number> => {
      const disk = await openDisk(0, { ...APPLY_EACH_COMMIT, cacheBytes: 0, mappedBytes });
      const store = disk as unknown as { remapIfOverBudget: () => void };
      const original = store.remapIfOverBudget;
      let checks = 0;
      store.remapIfOverBudget = function (this: unknown) {
        checks++;
        original.call(this);
      };
      for (let i = 0; i < 3000; i++) disk.put(`key-${i}`, i, 1000 + i);
      await disk.commit(1);
      expect(disk.get('key-2999')).to.equal(2999);
      await disk.close();
      open.length = 0;
      fs.rmSync(path.join(root, 'local'), { recursive: true, force: true });
      fs.rmSync(path.join(root, 'disk'), { recursive: true, force: true });
      // One more check ends the commit.
      return checks - 1;
    };
    // A budget's quarter covers this many pages of 64 KiB, one per change at most; never fewer than 256 changes.
    expect(await transactions(Infinity)).to.equal(2);
    expect(await transactions(256 << 20)).to.equal(6);
    expect(await transactions(16 << 20)).to.equal(24);
  });

  it('writes a snapshot due by the interval only once the changes since the last amount to half the keys', async () => {
    const snapshots = () =>
      fs
        .readdirSync(diskDir)
        .filter((f) => f.endsWith('.snapshot'))
        .map((f) => Number.parseInt(f, 10))
        .sort((a, b) => a - b);
    let disk = await openDisk(0, { snapshotInterval: 2 });
    let v = 0;
    const commit = async (changes: number) => {
      for (let i = 0; i < changes; i++) disk.put(`key-${(v * 37 + i) % 1000}`, v);
      await disk.commit(++v);
    };
    await commit(1000);
    await commit(10);
    // A new store knows no snapshot: the first multiple of the interval has one.
    expect(snapshots()).to.deep.equal([2]);
    for (let i = 0; i < 6; i++) await commit(100);
    // 600 changes since version 2 by version 8; 400 by version 6 were too few.
    expect(snapshots()).to.deep.equal([2, 8]);
    await commit(100);
    await disk.close();
    open.length = 0;
    // After a restart the changes since the last snapshot are unknown: the next multiple has one.
    disk = await openDisk(9, { snapshotInterval: 2 });
    await commit(10);
    expect(snapshots()).to.deep.equal([2, 8, 10]);
    // The checkpoint's files rebuild every version as before.
    await disk.close();
    open.length = 0;
    fs.rmSync(path.join(root, 'local'), { recursive: true, force: true });
    for (const version of [7, 10]) {
      const rebuilt = await openDisk(version, { snapshotInterval: 2 });
      expect(rebuilt.size).to.equal(1000);
      expect(rebuilt.get(`key-${((version - 1) * 37) % 1000}`)).to.equal(version - 1);
      await open.pop()!.close();
      fs.rmSync(path.join(root, 'local'), { recursive: true, force: true });
    }
  });

  it("rebuilds a delta's random updates in transactions of a commit's size", async () => {
    const writer = await openDisk(0, { ...APPLY_EACH_COMMIT, snapshotInterval: 100, cacheBytes: 0 });
    for (let i = 0; i < 3000; i++) writer.put(`key-${(i * 7919) % 3000}`, i, 1000 + i);
    await writer.commit(1);
    await writer.close();
    open.length = 0;
    // Rebuilt from the checkpoint's delta into an empty database; the store checks its resident pages after each
    // transaction, so counting the checks counts them.
    const transactions = async (mappedBytes: number): Promise<number> => {
      fs.rmSync(path.join(root, 'local'), { recursive: true, force: true });
      const proto = DiskStateStore.prototype as unknown as { remapIfOverBudget: () => void };
      const original = proto.remapIfOverBudget;
      let checks = 0;
      proto.remapIfOverBudget = function (this: unknown) {
        checks++;
        original.call(this);
      };
      try {
        const disk = await openDisk(1, { cacheBytes: 0, mappedBytes });
        expect(disk.get('key-2999')).to.be.a('number');
        expect(disk.size).to.equal(3000);
      } finally {
        proto.remapIfOverBudget = original;
      }
      await open.pop()!.close();
      return checks;
    };
    expect(await transactions(Infinity)).to.equal(1);
    expect(await transactions(256 << 20)).to.equal(3);
    expect(await transactions(16 << 20)).to.equal(12);
  });

  /** The process's resident file-backed bytes (mapped files: the database's pages among them). */
  function residentFileBytes(): number {
    const m = /RssFile:\s+(\d+) kB/.exec(fs.readFileSync('/proc/self/status', 'latin1'));
    return m ? Number(m[1]) * 1024 : 0;
  }

  it('keeps full scans and point reads over a database larger than its mapped budget within that budget', async function () {
    if (!fs.existsSync('/proc/self/status')) this.skip();
    // Writes and reads ~75 MB three times over: slow on a loaded machine.
    this.timeout(300_000);
    const keys = 48_000;
    const filler = 'x'.repeat(1500);
    const writer = await openDisk(0, { snapshotInterval: 100, cacheBytes: 0, mappedBytes: Infinity });
    for (let v = 1; v <= 2; v++) {
      for (let i = (v - 1) * (keys / 2); i < (v * keys) / 2; i++) writer.put(`key-${i}`, { i, filler }, i);
      await writer.commit(v);
    }
    await writer.close();
    open.length = 0;
    const databaseBytes = fs.statSync(path.join(localDir, 'data.mdb')).size;
    expect(databaseBytes).to.be.greaterThan(64 << 20);
    // The peak of resident mapped pages above what the process had mapped before, over a full scan and a pass of
    // point reads in a scattered order, each sampled every 500 rows.
    const peakAbove = async (mappedBytes: number): Promise<number> => {
      const base = residentFileBytes();
      const disk = await openDisk(2, { cacheBytes: 0, mappedBytes });
      let peak = 0;
      let rows = 0;
      for (const [key, value] of disk.entries()) {
        expect((value as { i: number }).i).to.equal(Number((key as string).slice(4)));
        if (++rows % 500 === 0) peak = Math.max(peak, residentFileBytes() - base);
      }
      expect(rows).to.equal(keys);
      for (let j = 0; j < keys; j++) {
        const i = (j * 7919) % keys;
        expect(disk.getTimeout(`key-${i}`)).to.equal(i);
        if (j % 500 === 0) peak = Math.max(peak, residentFileBytes() - base);
      }
      // The due keys in timeout order, whose records lie scattered in key order: a scan of the timeout index
      // that reads each one's record. Sampled after each scan: a scan that cannot remap keeps every page it read
      // mapped to its end.
      for (const bound of [keys / 4, keys / 2, keys]) {
        const due = disk.keysWithTimeoutAtOrBefore(bound - 1);
        expect(due).to.have.length(bound);
        expect(due[bound - 1]).to.equal(`key-${bound - 1}`);
        peak = Math.max(peak, residentFileBytes() - base);
      }
      await disk.close();
      open.length = 0;
      return peak;
    };
    // A budget below what the process maps anyway: the store maps its database afresh as often as its own reads
    // may have mapped half the budget, and a scan at every check. Without a budget the database stays resident.
    const budget = 16 << 20;
    expect(await peakAbove(Infinity)).to.be.greaterThan(databaseBytes / 2);
    expect(await peakAbove(budget)).to.be.lessThan(budget + (32 << 20));
  });

  it('keeps the point reads of several stores in one process within their one mapped budget', async function () {
    if (!fs.existsSync('/proc/self/status')) this.skip();
    this.timeout(300_000);
    const stores = 4;
    const keys = 16_000;
    const filler = 'x'.repeat(1500);
    const dirs = Array.from({ length: stores }, (_, p) => ({
      dir: stateDir(path.join(root, 'many'), 1, p),
      local: path.join(root, 'many-local', String(p)),
    }));
    for (const { dir, local } of dirs) {
      const writer = await DiskStateStore.open(dir, local, 0, { cacheBytes: 0, mappedBytes: Infinity });
      for (let i = 0; i < keys; i++) writer.put(`key-${i}`, { i, filler }, i);
      await writer.commit(1);
      await writer.close();
    }
    // Were each store to remap only once its own reads could have mapped half the budget, the four would hold
    // about twice the budget together.
    const budget = 128 << 20;
    const readers: DiskStateStore[] = [];
    for (const { dir, local } of dirs)
      readers.push(await DiskStateStore.open(dir, local, 1, { cacheBytes: 0, mappedBytes: budget }));
    let peak = 0;
    try {
      for (let pass = 0; pass < 2; pass++)
        for (let j = 0; j < keys; j++) {
          const i = (j * 7919 + pass * 101) % keys;
          for (const r of readers) expect(r.getTimeout(`key-${i}`)).to.equal(i);
          if (j % 250 === 0) peak = Math.max(peak, residentFileBytes());
        }
    } finally {
      for (const r of readers) await r.close();
    }
    // Over by at most what the reads between two checks map.
    expect(peak).to.be.lessThan(budget + (48 << 20));
  });

  it('rebuilds a database left between two versions by a crash while a commit applied its changes', async () => {
    const mem = await StateStore.load(memDir, 0);
    await openDisk(0);
    await bigBatches([mem, open[0]], 2);
    await tamper((meta, state) => {
      meta.put('applying', 3);
      state.put(Buffer.from([0x40]), Buffer.alloc(12));
    });
    expect(observed(await openDisk(2))).to.deep.equal(observed(mem));
  });

  it('rebuilds a database last written before the machine restarted, whose unflushed writes may be lost', async () => {
    const mem = await StateStore.load(memDir, 0);
    await openDisk(0);
    await bigBatches([mem, open[0]], 2);
    await tamper((meta, state) => {
      meta.put('boot', 'an earlier boot');
      state.put(Buffer.from([0x40]), Buffer.alloc(12));
    });
    expect(observed(await openDisk(2))).to.deep.equal(observed(mem));
  });

  /** The version the database in `dir` records, read with the store closed or from a copy. */
  async function databaseVersion(dir: string): Promise<unknown> {
    const env = openLmdb({ path: dir, maxDbs: 4 });
    const version = env.openDB({ name: 'meta' }).get('version');
    await env.close();
    return version;
  }

  /** A count of the calls `disk` makes from now on of `method` of its records' database (putSync: writes). */
  function databaseCalls(disk: DiskStateStore, method: 'putSync' | 'getBinaryFast' | 'removeSync'): () => number {
    const state = (disk as unknown as { state: Record<string, (...args: unknown[]) => unknown> }).state;
    const original = state[method];
    let calls = 0;
    state[method] = function (this: unknown, ...args: unknown[]) {
      calls++;
      return original.apply(this, args);
    };
    return () => calls;
  }

  it('writes a key changed in every batch to the database once per snapshot, keeping the batches between in memory', async () => {
    const mem = await StateStore.load(memDir, 0, { snapshotInterval: 4 });
    const disk = await openDisk(0, { snapshotInterval: 4 });
    const writes = databaseCalls(disk, 'putSync');
    const keys = Array.from({ length: 50 }, (_, i) => `user-${i}`);
    const writesAfter: number[] = [];
    for (let v = 1; v <= 6; v++) {
      await batchOnBoth(mem, disk, v, (s) => {
        for (const [i, k] of keys.entries()) {
          const sum = (s.get(k) as { sum: number } | undefined)?.sum ?? 0;
          // A key leaves in batch 3 and comes back in batch 5.
          if (v === 3 && i === 7) s.remove(k);
          else s.put(k, { sum: sum + i }, 1000 * v);
        }
      });
      expect(observed(disk), `after commit ${v}`).to.deep.equal(observed(mem));
      writesAfter.push(writes());
    }
    // Versions 1-3 stay in memory; the snapshot of 4 writes each key once (key 7 was removed at 3 and put at 4).
    expect(writesAfter).to.deep.equal([0, 0, 0, 50, 50, 50]);
  });

  it('writes batches of keys that rarely repeat at once, and measures again after each snapshot', async () => {
    const mem = await StateStore.load(memDir, 0, { snapshotInterval: 5 });
    const disk = await openDisk(0, { snapshotInterval: 5 });
    const writes = databaseCalls(disk, 'putSync');
    const writesAfter: number[] = [];
    for (let v = 1; v <= 8; v++) {
      // Each batch puts 40 keys of its own; every tenth one of the batch before is put again.
      await batchOnBoth(mem, disk, v, (s) => {
        for (let i = 0; i < 40; i++) s.put(`b${v}-${i}`, { v, i });
        for (let i = 0; i < 40; i += 10) s.put(`b${v - 1}-${i}`, { v, i, again: true });
      });
      expect(observed(disk), `after commit ${v}`).to.deep.equal(observed(mem));
      writesAfter.push(writes());
    }
    // Version 1 is kept; 2 repeats a tenth of its keys, so both are written, and from then on each batch at once,
    // until the snapshot at 5; 6 is kept to measure again, and 7 shows it still does not pay.
    expect(writesAfter).to.deep.equal([0, 84, 128, 172, 216, 216, 300, 344]);
  });

  it('catches a database up from the checkpoint after a crash left committed batches unapplied, and applies them on close', async () => {
    const mem = await StateStore.load(memDir, 0, { snapshotInterval: 3 });
    const disk = await openDisk(0, { snapshotInterval: 3 });
    const rand = prng(5);
    for (let v = 1; v <= 5; v++) {
      randomBatch([mem, disk], rand, 100);
      await mem.commit(v);
      await disk.commit(v);
    }
    // The process dies here: its database, copied as a crash leaves it, holds version 3 (the last snapshot's).
    const crashed = path.join(root, 'crashed');
    fs.cpSync(localDir, crashed, { recursive: true });
    expect(await databaseVersion(crashed)).to.equal(3);
    const recovered = await DiskStateStore.open(diskDir, crashed, 5);
    open.push(recovered);
    expect(observed(recovered)).to.deep.equal(observed(mem));
    // A store closed in good order leaves its database at its version.
    for (const s of open.splice(0)) await s.close();
    expect(await databaseVersion(localDir)).to.equal(5);
    expect(await databaseVersion(crashed)).to.equal(5);
  });

  /** The database reads that getting `keys` makes, each key's value checked against `expected`. */
  function readsFor(disk: DiskStateStore, keys: string[], expected: (k: string) => unknown): number {
    const reads = databaseCalls(disk, 'getBinaryFast');
    for (const k of keys) expect(disk.get(k), k).to.deep.equal(expected(k));
    return reads();
  }

  const held = Array.from({ length: 1000 }, (_, i) => `held-${i}`);
  const absent = Array.from({ length: 1000 }, (_, i) => `absent-${i}`);
  const value = (k: string) => (k.startsWith('held-') || k.startsWith('late-') ? { k } : undefined);

  it('skips the database read of a key it does not hold, through a key filter saved on close and taken on open', async () => {
    const opts = { ...APPLY_EACH_COMMIT, cacheBytes: 0 };
    const disk = await openDisk(0, opts);
    for (const k of held) disk.put(k, { k });
    await disk.commit(1);
    // About 1% of absent keys may pass the filter; every held key is read.
    expect(readsFor(disk, absent, value)).to.be.below(40);
    expect(readsFor(disk, held, value)).to.equal(held.length);
    for (const s of open.splice(0)) await s.close();
    const file = path.join(localDir, 'key-filter');
    expect(fs.existsSync(file)).to.equal(true);
    const reopened = await openDisk(1, opts);
    expect(fs.existsSync(file), 'taken on open').to.equal(false);
    expect(readsFor(reopened, absent, value)).to.be.below(40);
    expect(readsFor(reopened, held, value)).to.equal(held.length);
  });

  it('reads every key while its key filter is unknown after a crash, until a snapshot builds it from the database', async () => {
    const opts = { ...APPLY_EACH_COMMIT, cacheBytes: 0, snapshotInterval: 3 };
    const disk = await openDisk(0, opts);
    for (const k of held) disk.put(k, { k });
    await disk.commit(1);
    // The process dies here: its database is copied as a crash leaves it, with no filter saved.
    const crashed = path.join(root, 'crashed');
    fs.cpSync(localDir, crashed, { recursive: true });
    const recovered = await DiskStateStore.open(diskDir, crashed, 1, opts);
    open.push(recovered);
    expect(readsFor(recovered, absent, value)).to.equal(absent.length);
    recovered.put('late-1', { k: 'late-1' });
    await recovered.commit(2);
    expect(readsFor(recovered, absent, value)).to.equal(absent.length);
    await recovered.commit(3);
    expect(readsFor(recovered, absent, value)).to.be.below(40);
    expect(readsFor(recovered, [...held, 'late-1'], value)).to.equal(held.length + 1);
  });

  it('ignores a saved key filter that does not describe its database as it is', async () => {
    const opts = { ...APPLY_EACH_COMMIT, cacheBytes: 0 };
    const disk = await openDisk(0, opts);
    for (const k of held) disk.put(k, { k });
    await disk.commit(1);
    for (const s of open.splice(0)) await s.close();
    const file = path.join(localDir, 'key-filter');
    const older = fs.readFileSync(file);
    const next = await openDisk(1, opts);
    const late = Array.from({ length: 200 }, (_, i) => `late-${i}`);
    for (const k of late) next.put(k, { k });
    await next.commit(2);
    for (const s of open.splice(0)) await s.close();
    // The filter of version 1 knows none of the keys version 2 added, so trusting it would lose them.
    fs.writeFileSync(file, older);
    const reopened = await openDisk(2, opts);
    expect(readsFor(reopened, [...held, ...late], value)).to.equal(held.length + late.length);
  });

  /** The timeout index's entries as [time, key], read from the closed store's database. */
  async function indexEntries(): Promise<Array<[number, unknown]>> {
    for (const s of open.splice(0)) await s.close();
    const env = openLmdb({ path: localDir, maxDbs: 4 });
    const timeouts = env.openDB<Buffer, Buffer>({ name: 'timeouts', keyEncoding: 'binary', encoding: 'binary' });
    const entries = [...timeouts.getKeys({})].map((k): [number, unknown] => [k.readDoubleBE(0), decode(k.subarray(8))]);
    await env.close();
    return entries;
  }

  it('writes a timeout index entry only for a timeout that appears or moves earlier, and moves the entries a scan finds behind', async () => {
    const mem = await StateStore.load(memDir, 0);
    let disk = await openDisk(0, APPLY_EACH_COMMIT);
    const keys = Array.from({ length: 20 }, (_, i) => `k${i}`);
    const batch = (v: number, change: (s: VersionedStateStore) => void) => batchOnBoth(mem, disk, v, change);
    await batch(1, (s) => {
      for (const [i, k] of keys.entries()) s.put(k, { i }, 100 + i);
    });
    // Every timeout moves later, as a processing-time timeout set again on each update does: no entry moves.
    await batch(2, (s) => {
      for (const [i, k] of keys.entries()) s.put(k, { i, v: 2 }, 200 + i);
    });
    // k0 moves earlier (a new entry); k1 loses its timeout and k2 its key: their entries stay until a scan meets them.
    await batch(3, (s) => {
      s.put('k0', { i: 0 }, 50);
      s.put('k1', { i: 1 });
      s.remove('k2');
    });
    expect(await indexEntries()).to.deep.equal([[50, 'k0'], ...keys.map((k, i) => [100 + i, k])]);
    disk = await openDisk(3, APPLY_EACH_COMMIT);
    // A scan at 150 finds k0 due through its entry at 50 and the entries at 100-119 behind their keys' timeouts
    // (200-219) or left without one; the commit moves the first to the timeouts and drops the others.
    await batch(4, (s) => {
      for (const k of s.keysWithTimeoutAtOrBefore(150)) s.remove(k);
    });
    expect(mem.has('k0')).to.equal(false);
    expect(await indexEntries()).to.deep.equal(keys.slice(3).map((k, i) => [203 + i, k]));
    disk = await openDisk(4, APPLY_EACH_COMMIT);
    await batch(5, (s) => {
      expect(s.keysWithTimeoutAtOrBefore(210, 2)).to.deep.equal(['k3', 'k4']);
      for (const k of s.keysWithTimeoutAtOrBefore(210)) s.remove(k);
    });
    expect(await indexEntries()).to.deep.equal(keys.slice(11).map((k, i) => [211 + i, k]));
  });

  it("removes a due key's index entries with it, those the scan met behind its timeout and the one at it", async () => {
    const mem = await StateStore.load(memDir, 0);
    let disk = await openDisk(0, APPLY_EACH_COMMIT);
    const batch = (v: number, change: (s: VersionedStateStore) => void) => batchOnBoth(mem, disk, v, change);
    await batch(1, (s) => {
      for (const k of ['a', 'b', 'c']) s.put(k, { k }, 100);
      s.put('d', { k: 'd' }, 500);
    });
    // a's timeout moves later, behind its entry at 100; b's moves earlier (an entry at 50) and back to 100.
    await batch(2, (s) => {
      s.put('a', { k: 'a' }, 150);
      s.put('b', { k: 'b' }, 50);
    });
    await batch(3, (s) => s.put('b', { k: 'b' }, 100));
    expect(await indexEntries()).to.deep.equal([
      [50, 'b'],
      [100, 'a'],
      [100, 'b'],
      [100, 'c'],
      [500, 'd'],
    ]);
    disk = await openDisk(3, APPLY_EACH_COMMIT);
    // The first scan meets b's entry at 50 before the second; a, b and c are due, b through two entries.
    await batch(4, (s) => {
      expect(s.earliestTimeout()).to.equal(100);
      const due = s.keysWithTimeoutAtOrBefore(200);
      expect(due).to.deep.equal(['b', 'c', 'a']);
      for (const k of due) {
        expect(s.get(k)).to.deep.equal({ k });
        s.remove(k);
      }
    });
    expect(await indexEntries()).to.deep.equal([[500, 'd']]);
  });

  it('drops both databases whole when a commit removes every key, and forgets the cached records', async () => {
    const mem = await StateStore.load(memDir, 0);
    const disk = await openDisk(0);
    const batch = (v: number, change: (s: VersionedStateStore) => void) => batchOnBoth(mem, disk, v, change);
    const keys = Array.from({ length: 50 }, (_, i) => i);
    await batch(1, (s) => {
      for (const k of keys) s.put(k, { k }, 100 + (k % 7));
    });
    await batch(2, (s) => {
      for (const k of keys.slice(10)) s.put(k, { k, v: 2 }, 200 + k);
    });
    await batch(3, (s) => {
      for (const k of s.keysWithTimeoutAtOrBefore(1000)) s.remove(k);
      expect(s.size).to.equal(0);
    });
    expect(observed(disk)).to.deep.equal(observed(mem));
    // The keys' records were in the hot-key cache before the commit that removed them.
    await batch(4, (s) => s.put(1000, { k: 1000 }, 300));
    await batch(5, (s) => {
      for (const k of keys) expect(s.get(k), String(k)).to.equal(undefined);
      s.put(7, { k: 7 });
    });
    expect(await indexEntries()).to.deep.equal([[300, 1000]]);
    fs.rmSync(localDir, { recursive: true });
    expect(observed(await openDisk(5))).to.deep.equal(observed(mem));
  });

  it("reads records the hot-key cache does not keep through the database's read buffer, which another store's read overwrites", async () => {
    const other = await DiskStateStore.open(
      stateDir(path.join(root, 'disk'), 2, 0),
      path.join(root, 'local', '2', '0'),
      0,
      {
        cacheBytes: 0,
      },
    );
    open.push(other);
    const disk = await openDisk(0, { cacheBytes: 0 });
    disk.put(1, { n: 'one', list: [1, 2, 3] }, 500);
    disk.put(['a', 2], { n: 'composite' });
    other.put(1, { n: 'other store', list: [] }, 900);
    await disk.commit(1);
    await other.commit(1);
    for (let round = 0; round < 2; round++) {
      expect(disk.get(1)).to.deep.equal({ n: 'one', list: [1, 2, 3] });
      // Another store's read, and this store's read of a composite key, overwrite the buffer the first read used.
      expect(other.get(1)).to.deep.equal({ n: 'other store', list: [] });
      expect(disk.get(['a', 2])).to.deep.equal({ n: 'composite' });
      expect(disk.getTimeout(1)).to.equal(500);
      expect(disk.get(1)).to.deep.equal({ n: 'one', list: [1, 2, 3] });
      expect(disk.has(1)).to.equal(true);
      expect(other.getTimeout(1)).to.equal(900);
    }
    disk.put(1, { n: 'changed', list: [] }, 700);
    expect(disk.get(1)).to.deep.equal({ n: 'changed', list: [] });
    expect(disk.keysWithTimeoutAtOrBefore(1000)).to.deep.equal([1]);
  });

  for (const mappedBytes of [undefined, 0])
    it(`serves the reads of a scan's due keys from the scan's copies of their records, whatever order and changes follow${mappedBytes === 0 ? ' (reads with pread)' : ''}`, async () => {
      const mem = await StateStore.load(memDir, 0);
      const disk = await openDisk(0, { cacheBytes: 0, mappedBytes });
      const keys: unknown[] = Array.from({ length: 30 }, (_, i) =>
        i % 3 === 0 ? `k${i}` : i % 3 === 1 ? i : ['c', i],
      );
      for (const s of [mem, disk])
        for (const [i, k] of keys.entries()) s.put(k, { i, list: [i, `v${i}`] }, 100 + (i % 7));
      await mem.commit(1);
      await disk.commit(1);
      // Timeouts that move later leave their entries early: the scan then sorts its due keys, and their records with them.
      for (const s of [mem, disk]) for (const i of [2, 9, 16]) s.put(keys[i], { i, moved: true }, 120 + i);
      await mem.commit(2);
      await disk.commit(2);
      const same = (k: unknown) =>
        expect([disk.get(k), disk.has(k), disk.getTimeout(k)], JSON.stringify(k)).to.deep.equal([
          mem.get(k),
          mem.has(k),
          mem.getTimeout(k),
        ]);
      for (const limit of [Infinity, 5]) {
        const due = disk.keysWithTimeoutAtOrBefore(140, limit);
        expect(due).to.deep.equal(mem.keysWithTimeoutAtOrBefore(140, limit));
        // Read in order, a key read twice, a change to a due key before it is read, one read out of order.
        for (const [j, k] of due.entries()) {
          if (j === 1) for (const s of [mem, disk]) s.put(due[2], { changed: j });
          if (j === 3 && due.length > 6) same(due[6]);
          same(k);
          same(k);
          for (const s of [mem, disk]) if (j % 2 === 0) s.remove(k);
        }
        for (const k of keys) same(k);
        mem.abort();
        disk.abort();
      }
    });

  it("looks a cached key up once for a call's has, getTimeout, get and put, and its commit rewrites the record without another", async () => {
    const disk = await openDisk(0, APPLY_EACH_COMMIT);
    const keys = Array.from({ length: 100 }, (_, i) => `key-${i}`);
    for (const k of keys) disk.put(k, { sum: 1 }, 1000);
    await disk.commit(1);
    const cache = HotKeyCache.prototype as unknown as { find: (...args: unknown[]) => number };
    const find = cache.find;
    let finds = 0;
    cache.find = function (this: unknown, ...args: unknown[]) {
      finds++;
      return find.apply(this, args);
    };
    try {
      for (const [i, k] of keys.entries()) {
        // A fresh string, as a batch's decoded rows give.
        const key = Buffer.from(k).toString('latin1');
        expect(disk.has(key)).to.equal(true);
        expect(disk.getTimeout(key)).to.equal(1000);
        const { sum } = disk.get(key) as { sum: number };
        // Every other record changes length, so that it moves in the cache's arena.
        disk.put(key, { sum: sum + (i % 2 === 0 ? 1 : 1000) }, 2000);
      }
      await disk.commit(2);
    } finally {
      cache.find = find;
    }
    expect(finds).to.equal(keys.length);
    for (const [i, k] of keys.entries()) {
      expect(disk.get(k)).to.deep.equal({ sum: i % 2 === 0 ? 2 : 1001 });
      expect(disk.getTimeout(k)).to.equal(2000);
    }
  });

  it('reads a key again when the cached record it located was evicted or moved meanwhile', async () => {
    const mem = await StateStore.load(memDir, 0);
    // Room for a few dozen of these keys: reading others between a key's has and get evicts and admits records,
    // composite keys' and the timeout scan's reads without taking the last primitive key's place as the one located.
    const disk = await openDisk(0, { cacheBytes: 4096 });
    const keys = Array.from({ length: 200 }, (_, i) => (i % 4 === 0 ? ['c', i] : `key-${i}`));
    await batchOnBoth(mem, disk, 1, (s) => {
      for (const [i, k] of keys.entries()) s.put(k, { sum: i }, 1000 + i);
    });
    for (let v = 2; v <= 4; v++) {
      await batchOnBoth(mem, disk, v, (s) => {
        for (const [i, k] of keys.entries()) {
          if (!s.has(k)) continue;
          s.has(keys[4 * ((i * 7 + v) % 50)]);
          s.get(keys[4 * ((i * 13 + v) % 50)]);
          if (i % 5 === 0) s.earliestTimeout();
          const { sum } = s.get(k) as { sum: number };
          if (i % 11 === v) s.remove(k);
          else s.put(k, { sum: sum + (i % 3 === 0 ? 1 : 100_000) }, s.getTimeout(k) + 1);
        }
      });
    }
  });

  for (const cacheBytes of [0, 1 << 20]) {
    it(`commits each record's timeout and value as its last change left them, a timeout added or dropped at the same entry length too (hot-key cache ${cacheBytes} bytes)`, async () => {
      const mem = await StateStore.load(memDir, 0);
      const disk = await openDisk(0, { cacheBytes });
      const s = (n: number) => 'x'.repeat(n);
      await batchOnBoth(mem, disk, 1, (store) => {
        for (let i = 0; i < 40; i++) store.put(`k${i}`, { s: s(8 + (i % 3)) }, i % 2 ? 50 + i : -1);
      });
      await batchOnBoth(mem, disk, 2, (store) => {
        for (let i = 0; i < 40; i++) {
          // Twice in the batch: the second rewrites the first's entry in place, 8 bytes of value for the timeout's.
          store.put(`k${i}`, { s: s(i % 3) }, 60 + i);
          if (i % 3 === 0) store.put(`k${i}`, { s: s(8 + (i % 3)) }, -1);
        }
      });
      for (const store of [mem, disk]) await store.prepare(2);
      expect(observed(disk)).to.deep.equal(observed(mem));
      expect(disk.getTimeout('k3')).to.equal(-1);
      expect(disk.getTimeout('k4')).to.equal(64);
    });
  }

  it('refuses a key longer than the database allows with a clear error', async () => {
    const disk = await openDisk(0);
    expect(() => disk.put('x'.repeat(3000), 1))
      .to.throw(/state key encodes to 300\d bytes/)
      .with.property('code', 'STATE_KEY_TOO_LARGE');
  });
  /** The records the closed stores' database holds, dead ones included. */
  async function recordsInDatabase(): Promise<number> {
    for (const s of open.splice(0)) await s.close();
    const env = openLmdb({ path: localDir, maxDbs: 4 });
    const n = env.openDB({ name: 'state', keyEncoding: 'binary', encoding: 'binary' }).getCount();
    await env.close();
    return n;
  }

  /**
   * A closing batch on both stores: one due-key scan up to `wm`, at most `limit` keys, which must agree; `change`
   * then decides what becomes of each due key (removed by default) and may change others. Both commit as version `v`
   * and must agree after it; the scans of that check are dropped with an abort, so the next batch scans once.
   */
  async function closeOnBoth(
    mem: VersionedStateStore,
    disk: VersionedStateStore,
    v: number,
    wm: number,
    limit: number,
    change: (s: VersionedStateStore, due: unknown[]) => void = (s, due) => {
      for (const k of due) s.remove(k);
    },
  ): Promise<unknown[]> {
    const due = mem.keysWithTimeoutAtOrBefore(wm, limit);
    expect(disk.keysWithTimeoutAtOrBefore(wm, limit), `due keys of batch ${v}`).to.deep.equal(due);
    for (const s of [mem, disk]) change(s, due);
    await mem.commit(v);
    await disk.commit(v);
    expect(observed(disk), `after batch ${v}`).to.deep.equal(observed(mem));
    mem.abort();
    disk.abort();
    return due;
  }

  it("leaves a closing batch's removed records behind a range tombstone, reads them as absent, and sweeps them in key order once they outnumber the live ones", async () => {
    const mem = await StateStore.load(memDir, 0);
    let disk = await openDisk(0, APPLY_EACH_COMMIT);
    const keys = Array.from({ length: 400 }, (_, i) => i);
    for (const s of [mem, disk]) for (const k of keys) s.put(k, { k }, 1000 + k);
    await mem.commit(1);
    await disk.commit(1);
    let removes = databaseCalls(disk, 'removeSync');
    expect(await closeOnBoth(mem, disk, 2, 1099, 50)).to.deep.equal(keys.slice(0, 50));
    // The 50 records stay in the database, dead: none was removed from its B-tree.
    expect(removes()).to.equal(0);
    // A dead key put again, or given no timeout, lives again; the batch's due keys still go behind the tombstone.
    await closeOnBoth(mem, disk, 3, 1120, 30, (s, due) => {
      for (const k of due) s.remove(k);
      s.put(5, { k: 5, again: true }, 2000);
      s.put(7, { k: 7, again: true });
    });
    expect(removes()).to.equal(0);
    expect(disk.get(5)).to.deep.equal({ k: 5, again: true });
    expect(disk.get(6)).to.equal(undefined);
    // The tombstone is the database's: a reopened store reads the dead records as absent too.
    expect(await recordsInDatabase()).to.equal(400);
    disk = await openDisk(3, APPLY_EACH_COMMIT);
    expect(observed(disk)).to.deep.equal(observed(mem));
    removes = databaseCalls(disk, 'removeSync');
    // A batch that leaves a due key as it was cannot move the tombstone past it: its removes go from the B-tree.
    await closeOnBoth(mem, disk, 4, 1130, 10, (s, due) => {
      for (const k of due) if (k !== 85) s.remove(k);
    });
    expect(removes()).to.equal(9);
    expect(disk.get(85)).to.deep.equal({ k: 85 });
    // A put behind the tombstone (a timeout already passed) revives its key: no sweep, no remove.
    await closeOnBoth(mem, disk, 5, 1090, 10, (s, due) => {
      for (const k of due) s.remove(k);
      s.put(3, { k: 3, late: true }, 10);
    });
    expect(disk.getTimeout(3)).to.equal(10);
    expect(removes()).to.equal(9);
    expect(await recordsInDatabase()).to.equal(391);
    disk = await openDisk(5, APPLY_EACH_COMMIT);
    expect(observed(disk)).to.deep.equal(observed(mem));
    // The check's scans are not the next batch's.
    disk.abort();
    // Closing batches pile dead records up until they outnumber the live ones; the next commit sweeps them.
    const dead = () => (disk as unknown as { deadRecords: number }).deadRecords;
    let v = 5;
    let mostDead = 0;
    let sweeps = 0;
    const batchRemoves = databaseCalls(disk, 'removeSync');
    const inDatabase = () => (disk as unknown as { state: { getCount(): number } }).state.getCount();
    while (mem.size > 120) {
      const before = dead();
      const deadInDatabase = inDatabase() - disk.size;
      const removedBefore = batchRemoves();
      await closeOnBoth(mem, disk, ++v, 5000, 40);
      mostDead = Math.max(mostDead, dead());
      // A sweep removes the dead records alone: the batch's own closed keys still go behind the tombstone.
      if (dead() < before) sweeps++;
      expect(batchRemoves() - removedBefore, `removes of batch ${v}`).to.equal(dead() < before ? deadInDatabase : 0);
    }
    expect(mostDead).to.be.greaterThan(40);
    expect(sweeps).to.be.greaterThan(0);
    expect(await recordsInDatabase()).to.be.within(mem.size, 2 * mem.size + 80);
    disk = await openDisk(v, APPLY_EACH_COMMIT);
    await closeOnBoth(mem, disk, ++v, 5000, 40, (s, due) => {
      for (const k of due) s.remove(k);
      s.remove(7);
    });
    while (mem.size > 0) await closeOnBoth(mem, disk, ++v, 5000, 40);
    expect(await recordsInDatabase()).to.equal(0);
  });

  it('revives a key put behind the tombstone by name, across a reopen, until it is removed or put after it, and sweeps instead once too many would be', async () => {
    const mem = await StateStore.load(memDir, 0);
    let disk = await openDisk(0, APPLY_EACH_COMMIT);
    // Timers at a few shared times, as windows' ends are: a closing batch under a limit stops inside one time.
    const key = (k: number) => `k${String(k).padStart(3, '0')}`;
    const keys = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => key(from + i));
    for (const s of [mem, disk]) for (let k = 0; k < 400; k++) s.put(key(k), { k }, 1000 + 100 * Math.floor(k / 100));
    await mem.commit(1);
    await disk.commit(1);
    const revived = () => (disk as unknown as { revived: Set<string> }).revived.size;
    const removes = databaseCalls(disk, 'removeSync');
    expect(await closeOnBoth(mem, disk, 2, 1100, 150)).to.deep.equal(keys(0, 150));
    // The tombstone stands at (1100, k149). k120 comes back at 1100, before the tombstone's key; k010 at a time
    // already passed; k160, live, is given one.
    await closeOnBoth(mem, disk, 3, 1100, 0, (s) => {
      s.put(key(120), { k: 120, back: true }, 1100);
      s.put(key(10), { k: 10, back: true }, 500);
      s.put(key(160), { k: 160, early: true }, 600);
    });
    expect(revived()).to.equal(3);
    expect(removes()).to.equal(0);
    expect(await recordsInDatabase()).to.equal(400);
    disk = await openDisk(3, APPLY_EACH_COMMIT);
    expect(observed(disk)).to.deep.equal(observed(mem));
    expect(disk.get(key(120))).to.deep.equal({ k: 120, back: true });
    expect(disk.keysWithTimeoutAtOrBefore(1100)).to.deep.equal([
      key(10),
      key(160),
      key(120),
      ...keys(150, 200).filter((k) => k !== key(160)),
    ]);
    disk.abort();
    // Removed, a revived key's record is simply dead; put after the tombstone, it lives by its own timeout.
    await closeOnBoth(mem, disk, 4, 1100, 0, (s) => {
      s.remove(key(10));
      s.put(key(120), { k: 120, later: true }, 5000);
    });
    expect(revived()).to.equal(1);
    expect(disk.get(key(10))).to.equal(undefined);
    const removed = databaseCalls(disk, 'removeSync');
    // A closing batch closes the revived k160 with the others, and the tombstone moves past them all.
    expect(await closeOnBoth(mem, disk, 5, 1200, 60)).to.deep.equal([
      key(160),
      ...keys(150, 210)
        .filter((k) => k !== key(160))
        .slice(0, 59),
    ]);
    expect(revived()).to.equal(0);
    expect(removed()).to.equal(0);
    disk = await openDisk(5, APPLY_EACH_COMMIT);
    expect(observed(disk)).to.deep.equal(observed(mem));
    // More keys behind the tombstone than are named one by one: the commit sweeps the dead records first.
    await closeOnBoth(mem, disk, 6, 1200, 0, (s) => {
      for (let k = 0; k < 20_000; k++) s.put(`late${k}`, { k }, 700);
    });
    expect(revived()).to.equal(0);
    expect((disk as unknown as { deadRecords: number }).deadRecords).to.equal(0);
    expect(await recordsInDatabase()).to.equal(mem.size);
    disk = await openDisk(6, APPLY_EACH_COMMIT);
    expect(observed(disk)).to.deep.equal(observed(mem));
  });

  it("lets a closing batch's due records go once the last due key read in order is changed, and reads a due key again from the database", async () => {
    const disk = await openDisk(0, { ...APPLY_EACH_COMMIT, cacheBytes: 0 });
    for (let k = 0; k < 300; k++) disk.put(k, { k }, 100 + k);
    await disk.commit(1);
    const dueBytes = () => (disk as unknown as { dueBytes: Buffer }).dueBytes.length;
    const due = disk.keysWithTimeoutAtOrBefore(1000, 200);
    expect(due).to.have.length(200);
    for (const k of due.slice(0, 199)) {
      expect(disk.get(k)).to.deep.equal({ k });
      disk.remove(k);
    }
    expect(dueBytes()).to.be.greaterThan(0);
    expect(disk.get(199)).to.deep.equal({ k: 199 });
    disk.put(199, { k: 199, kept: true }, 5000);
    expect(dueBytes()).to.equal(0);
    // Out of order now: the records come from the database, and the changes made stand.
    expect(disk.get(150)).to.equal(undefined);
    expect(disk.get(199)).to.deep.equal({ k: 199, kept: true });
    expect(disk.get(250)).to.deep.equal({ k: 250 });
    await disk.commit(2);
    expect(disk.size).to.equal(101);
    expect(disk.keysWithTimeoutAtOrBefore(1000)).to.deep.equal(Array.from({ length: 100 }, (_, i) => 200 + i));
  });

  it('replays a put behind the tombstone after a crash left the database behind the checkpoint, sweeping the dead records first', async () => {
    const opts = { writeBackBytes: 1 << 20, snapshotInterval: 100 };
    const mem = await StateStore.load(memDir, 0);
    let disk = await openDisk(0, opts);
    for (const s of [mem, disk]) for (let k = 0; k < 100; k++) s.put(k, { k }, 1000 + k);
    await mem.commit(1);
    await disk.commit(1);
    // Closed in good order, a store applies what it kept back: here the tombstone of a closing batch.
    for (const s of open.splice(0)) await s.close();
    disk = await openDisk(1, opts);
    await closeOnBoth(mem, disk, 2, 1049, 50);
    for (const s of open.splice(0)) await s.close();
    disk = await openDisk(2, opts);
    expect(await recordsInDatabase()).to.equal(100);
    disk = await openDisk(2, opts);
    for (const s of [mem, disk]) {
      s.put(3, { k: 3, late: true }, 10);
      s.put(60, { k: 60, late: true }, 20);
    }
    await mem.commit(3);
    await disk.commit(3);
    // The process dies with version 3 kept back: its database holds version 2 and the tombstone.
    const crashed = path.join(root, 'crashed');
    fs.cpSync(localDir, crashed, { recursive: true });
    const recovered = await DiskStateStore.open(diskDir, crashed, 3, opts);
    open.push(recovered);
    expect(recovered.get(3)).to.deep.equal({ k: 3, late: true });
    expect(recovered.getTimeout(60)).to.equal(20);
    expect(observed(recovered)).to.deep.equal(observed(mem));
  });

  for (const [writeBackBytes, mappedBytes] of [
    [0, undefined],
    [undefined, undefined],
    [undefined, 0],
  ]) {
    it(`agrees with the memory store through closing batches that leave records behind a tombstone, a restart and a crash (${writeBackBytes === 0 ? 'applied at each commit' : 'written back'}${mappedBytes === 0 ? ', reads with pread' : ''})`, async () => {
      const rand = prng(31 + (writeBackBytes ?? 1) + (mappedBytes ?? 2));
      const mem = await StateStore.load(memDir, 0, { snapshotInterval: 4 });
      const opts = { snapshotInterval: 4, writeBackBytes, mappedBytes, cacheBytes: 1 << 14 };
      let disk = await openDisk(0, opts);
      const dead = () => (disk as unknown as { deadRecords: number }).deadRecords;
      const revived = () => (disk as unknown as { revived: Set<string> }).revived.size;
      let mostDead = 0;
      let mostRevived = 0;
      let sweeps = 0;
      let closed = 0;
      let wm = 0;
      for (let v = 1; v <= 60; v++) {
        wm += Math.floor(rand() * 40);
        // The batch's changes are drawn once, then made on both stores alike.
        const draws = Array.from({ length: 200 }, () => rand());
        const batch = (s: VersionedStateStore, due: unknown[]) => {
          let d = 0;
          for (const k of due) {
            const r = draws[d++ % draws.length];
            // Most due keys close; some are extended or lose their timeout, and in a few batches one is left as is.
            if (r < 0.8) s.remove(k);
            else if (r < 0.9) s.put(k, { k, v }, wm + 1 + Math.floor(r * 100));
            else if (r < 0.95 || v % 7 !== 0) s.put(k, { k, v });
          }
          for (let i = 0; i < 60; i++) {
            const n = Math.floor(draws[100 + i] * 600);
            const key = n % 2 === 0 ? n : ['acct', n];
            const r = draws[160 + (i % 40)];
            if (r < 0.1) s.remove(key);
            // Now and then a timeout already passed (behind the tombstone).
            else
              s.put(key, { n, v }, v % 9 === 0 && i === 0 ? Math.floor(r * wm) : wm + 1 + Math.floor(draws[i] * 200));
          }
        };
        const deadBefore = dead();
        const due = await closeOnBoth(mem, disk, v, wm, 1 + Math.floor(rand() * 30), batch);
        closed += due.length;
        mostDead = Math.max(mostDead, dead());
        mostRevived = Math.max(mostRevived, revived());
        if (dead() < deadBefore) sweeps++;
        if (v === 15) disk = await openDisk(v, opts);
        if (v === 27) {
          // The process dies after a batch that put a timeout already passed: its database, as a crash leaves it, may
          // be behind the checkpoint, which then replays that put over its tombstone.
          const crashed = path.join(root, 'crashed');
          fs.rmSync(crashed, { recursive: true, force: true });
          fs.cpSync(localDir, crashed, { recursive: true });
          for (const s of open.splice(0)) await s.close();
          fs.rmSync(localDir, { recursive: true });
          fs.renameSync(crashed, localDir);
          disk = await openDisk(v, opts);
          expect(observed(disk)).to.deep.equal(observed(mem));
        }
      }
      expect(closed).to.be.greaterThan(450);
      // Closed keys' records were left behind the tombstone, and swept once they outnumbered the live ones; keys put
      // behind it were revived.
      expect(mostDead).to.be.greaterThan(50);
      expect(sweeps).to.be.greaterThan(0);
      expect(mostRevived).to.be.greaterThan(0);
    });
  }
});
