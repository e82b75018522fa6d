/**
 * The disk-backed state store of one stateful operator's state partition, as Spark's RocksDB state store with
 * changelog checkpointing: committed state lives in an LMDB database in a local working directory, so it is
 * bounded by disk rather than memory, and the checkpoint gets the same delta file per version and periodic
 * snapshot as the memory store writes (state-file-format.ts). The checkpoint stays the truth: the working
 * database is a copy of one committed version that is rebuilt from the checkpoint's files when it is absent,
 * behind, ahead of the version a batch needs (a replay), or from another history (a checkpoint started over).
 *
 * Database layout: `state` maps a key's canonical encoding to its record (f64 timeout, -1 for none, then the
 * value encoded with the store's field dictionary); `timeouts` holds an empty entry per key with a timeout,
 * keyed by the timeout as a big-endian f64 and then the key, so due keys are an ordered range; `meta` holds
 * the version, the key count, the field dictionary and the checksum of the version's delta file (which ties
 * the database to this checkpoint's history).
 *
 * Uncommitted changes stay in memory ({@link PendingChanges}) until {@link DiskStateStore.commit}, which
 * writes the delta file and then applies them in one database transaction: a replay of a failed batch never
 * sees its own half-written changes, and a crash between the two leaves the database one version behind the
 * checkpoint, which the next open catches up.
 */
import * as fs from 'node:fs';
import { type Database, open, type RootDatabase } from 'lmdb';
import { SluiceError } from '../errors.js';
import { HotKeyCache } from './hot-key-cache.js';
import { checkTimeout, isPrimitiveKey, PendingChanges, type PendingKey } from './pending-changes.js';
import {
  deltaChecksum,
  hasDeltasAfter,
  purgeStateFiles,
  replayStateVersion,
  type StateChangeTarget,
  StateFileWriter,
} from './state-file-format.js';
import { FieldDictionary, Latin1View, ValueReader, ValueWriter } from './value-codec.js';
import { checkCommitVersion, type StateCommitMetrics, type VersionedStateStore } from './versioned-state-store.js';

/** Options of {@link DiskStateStore.open}. */
export interface DiskStateStoreOptions {
  /** Write a snapshot every this many versions. Default 10. */
  snapshotInterval?: number;
  /** Bytes of committed records kept in memory for the most recently used keys. Default 64 MiB. */
  cacheBytes?: number;
}

/** LMDB's key size limit, less the timeout index's 8-byte prefix. */
const MAX_KEY_BYTES = 1978 - 8;
const RECORD_HEADER = 8;
const EMPTY = Buffer.alloc(0);
/** Meta version while a rebuild is under way: the database must be rebuilt again. */
const REBUILDING = -1;

function indexKey(timeout: number, key: Uint8Array): Buffer {
  const k = Buffer.allocUnsafe(8 + key.length);
  k.writeDoubleBE(timeout, 0);
  k.set(key, 8);
  return k;
}

/** A versioned key-value store for one (operator, state partition) whose committed state is on local disk. */
export class DiskStateStore<K = unknown, V = unknown> implements VersionedStateStore<K, V> {
  /** The checkpoint directory holding this store's delta and snapshot files. */
  readonly dir: string;
  /** The working directory of the store's database. */
  readonly localDir: string;
  /** Snapshot every this many versions. */
  readonly snapshotInterval: number;

  private _version = -1;
  private count = 0;
  private dict = new FieldDictionary();
  private pending = new PendingChanges(this.dict);
  /** The committed timeout of each pending change's key (-1: none or absent), so a commit need not read it again. */
  private readonly oldTimeouts: number[] = [];
  private readonly files = new StateFileWriter();
  private readonly hot: HotKeyCache;
  private readonly env: RootDatabase;
  private readonly state: Database<Buffer, Uint8Array>;
  private readonly timeouts: Database<Buffer, Buffer>;
  private readonly meta: Database<unknown, string>;
  /** Canonical encoding of the key being looked up. */
  private readonly keyScratch = new ValueWriter(256, null, true);
  private readonly latin1 = new Latin1View();
  private readonly reader = new ValueReader(new Uint8Array(0));
  private committing = false;
  // Results of locate(): the key's pending change, else its committed record (undefined: absent).
  private locPending = -1;
  private locRecord: Buffer | undefined = undefined;
  // The last primitive key located in committed state, so that get(k) then put(k) looks it up once. Valid
  // while no pending change was added, as in the memory store.
  private memoKey: unknown = undefined;
  private memoPending = -1;
  private memoRecord: Buffer | undefined = undefined;

  private constructor(dir: string, localDir: string, opts: DiskStateStoreOptions) {
    const interval = opts.snapshotInterval ?? 10;
    if (!Number.isInteger(interval) || interval < 1) {
      throw new SluiceError(
        'BAD_OPTION',
        `state snapshot interval must be a positive integer, got ${interval}`,
        'set snapshotInterval to e.g. 10 (a snapshot every 10 batches)',
      );
    }
    this.dir = dir;
    this.localDir = localDir;
    this.snapshotInterval = interval;
    this.hot = new HotKeyCache(opts.cacheBytes ?? 64 << 20);
    fs.mkdirSync(localDir, { recursive: true });
    this.env = open({ path: localDir, maxDbs: 4 });
    this.state = this.env.openDB({ name: 'state', keyEncoding: 'binary', encoding: 'binary' });
    this.timeouts = this.env.openDB({ name: 'timeouts', keyEncoding: 'binary', encoding: 'binary' });
    this.meta = this.env.openDB({ name: 'meta' });
  }

  /**
   * Opens the store whose checkpoint files are in `dir`, with its database in `localDir`, at version `version`
   * (0 = empty): the database as it is when it holds that version of this checkpoint, else caught up or rebuilt
   * from the checkpoint's files. Throws SluiceError CHECKPOINT_MISSING or CHECKPOINT_CORRUPT as the memory
   * store's load does.
   */
  static async open<K = unknown, V = unknown>(
    dir: string,
    localDir: string,
    version: number,
    opts: DiskStateStoreOptions = {},
  ): Promise<DiskStateStore<K, V>> {
    const store = new DiskStateStore<K, V>(dir, localDir, opts);
    try {
      await store.recover(version);
    } catch (err) {
      await store.env.close();
      throw err;
    }
    return store;
  }

  /** The committed (or loaded) version; -1 while nothing is loaded. */
  get version(): number {
    return this._version;
  }

  /** Number of keys, uncommitted changes included. */
  get size(): number {
    return this.count + this.pending.sizeDelta;
  }

  /**
   * Makes the store hold exactly version `version` with no uncommitted changes: drops them when the database
   * is at that version, else brings the database there from the checkpoint.
   */
  async prepare(version: number): Promise<void> {
    if (version === this._version && this.meta.get('version') === version) {
      this.abort();
      return;
    }
    await this.recover(version);
  }

  /** The value of `key` (a fresh copy), or undefined when absent. */
  get(key: K): V | undefined {
    this.locate(key, isPrimitiveKey(key));
    if (this.locPending >= 0) return this.pending.value(this.locPending) as V | undefined;
    const record = this.locRecord;
    return record === undefined ? undefined : (this.decodeValue(record) as V);
  }

  /** Whether `key` has a value. */
  has(key: K): boolean {
    this.locate(key, isPrimitiveKey(key));
    return this.locPending >= 0 ? this.pending.offset[this.locPending] >= 0 : this.locRecord !== undefined;
  }

  /** The timeout timestamp of `key` in ms, or -1 when it has none or is absent. */
  getTimeout(key: K): number {
    this.locate(key, isPrimitiveKey(key));
    const p = this.locPending;
    if (p >= 0) return this.pending.offset[p] < 0 ? -1 : this.pending.timeout[p];
    return this.locRecord === undefined ? -1 : this.locRecord.readDoubleLE(0);
  }

  /**
   * Sets the value of `key` and its timeout (ms timestamp; -1 = none). The value is encoded now.
   * Throws SluiceError STATE_VALUE_UNSUPPORTED for values the codec cannot store and STATE_KEY_TOO_LARGE for a
   * key whose encoding exceeds the database's key size limit.
   */
  put(key: K, value: V, timeoutMs = -1): void {
    checkTimeout(timeoutMs);
    const prim = isPrimitiveKey(key);
    const pk = this.locate(key, prim);
    if (this.locPending < 0 && this.locRecord === undefined && this.encodeLookupKey(key) > MAX_KEY_BYTES) {
      throw new SluiceError(
        'STATE_KEY_TOO_LARGE',
        `a state key encodes to ${this.keyScratch.pos} bytes, more than the disk state store's ${MAX_KEY_BYTES}`,
        'group by shorter keys (e.g. a hash of a long string), or use the memory state store',
      );
    }
    const changes = this.pending.length;
    this.pending.put(this.locPending, pk, !prim, this.locRecord === undefined ? -1 : 0, value, timeoutMs);
    if (this.pending.length > changes) this.oldTimeouts.push(this.locRecord?.readDoubleLE(0) ?? -1);
  }

  /** Removes `key` and its timeout; a no-op when absent. */
  remove(key: K): void {
    const prim = isPrimitiveKey(key);
    const pk = this.locate(key, prim);
    const changes = this.pending.length;
    this.pending.remove(this.locPending, pk, !prim, this.locRecord === undefined ? -1 : 0);
    if (this.pending.length > changes) this.oldTimeouts.push(this.locRecord?.readDoubleLE(0) ?? -1);
  }

  /** All keys and values, uncommitted changes included, in an unspecified order. */
  *entries(): IterableIterator<[K, V]> {
    for (const [, key, value] of this.liveEntries()) yield [key, value];
  }

  /** All keys, in the unspecified order of {@link entries}. */
  *keys(): IterableIterator<K> {
    for (const [, key] of this.liveEntries()) yield key;
  }

  /** All entries ordered by their keys' canonical encoding, as the memory store orders them. */
  sortedEntries(): Array<[K, V]> {
    const all = [...this.liveEntries()];
    all.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
    return all.map(([, key, value]) => [key, value]);
  }

  /**
   * Keys whose timeout is set and at or before `timestampMs`, uncommitted changes included, ordered by timeout
   * and then by the canonical key encoding.
   */
  keysWithTimeoutAtOrBefore(timestampMs: number): K[] {
    const shadowed = this.pendingSortKeys();
    const due: Array<{ t: number; s: string; key: K }> = [];
    for (const k of this.timeouts.getKeys({})) {
      const t = k.readDoubleBE(0);
      if (t > timestampMs) break;
      const s = this.latin1.slice(k, 8, k.length);
      if (shadowed?.has(s)) continue;
      due.push({ t, s, key: this.decodeKey(k, 8) });
    }
    const pending = this.pending;
    for (let p = 0; p < pending.length; p++) {
      const t = pending.timeout[p];
      if (pending.offset[p] >= 0 && t >= 0 && t <= timestampMs)
        due.push({ t, s: pending.sortKey(p), key: pending.keyOf(p) as K });
    }
    due.sort((a, b) => a.t - b.t || (a.s < b.s ? -1 : a.s > b.s ? 1 : 0));
    return due.map((d) => d.key);
  }

  /** The earliest timeout of any key, uncommitted changes included, or Infinity: the first unshadowed index entry. */
  earliestTimeout(): number {
    const shadowed = this.pendingSortKeys();
    let min = Infinity;
    for (const k of this.timeouts.getKeys({})) {
      if (shadowed?.has(this.latin1.slice(k, 8, k.length))) continue;
      min = k.readDoubleBE(0);
      break;
    }
    return Math.min(min, this.pending.earliestTimeout());
  }

  /**
   * Writes the uncommitted changes as version `version` (the current version + 1): the delta file, then the
   * database in one transaction, then every `snapshotInterval` versions a snapshot from the database.
   */
  async commit(version: number): Promise<StateCommitMetrics> {
    const started = performance.now();
    checkCommitVersion(this.dir, this._version, version, this.committing);
    this.committing = true;
    try {
      const pending = this.pending;
      const { updated, removed, checksum } = await this.files.writeDelta(this.dir, version, this.dict.names, pending);
      const ks = this.keyScratch;
      const values = pending.values.buf;
      this.env.transactionSync(() => {
        for (let p = 0; p < pending.length; p++) {
          ks.reset();
          pending.writeKey(ks, p);
          const key = ks.buf.subarray(0, ks.pos);
          const off = pending.offset[p];
          const existed = pending.slot[p] >= 0;
          const oldTimeout = this.oldTimeouts[p];
          if (off < 0) {
            if (existed) {
              if (oldTimeout >= 0) this.timeouts.removeSync(indexKey(oldTimeout, key));
              this.state.removeSync(key);
              this.count--;
            }
            this.hot.delete(pending.key[p], pending.encoded[p]);
            continue;
          }
          const end = pending.valueEnd(off);
          const timeout = pending.timeout[p];
          const record = Buffer.allocUnsafe(RECORD_HEADER + end - off);
          record.writeDoubleLE(timeout, 0);
          record.set(values.subarray(off, end), RECORD_HEADER);
          // The operator's read found the key's committed record: no second read for its old timeout.
          if (oldTimeout >= 0 && oldTimeout !== timeout) this.timeouts.removeSync(indexKey(oldTimeout, key));
          this.state.putSync(key, record);
          if (!existed) this.count++;
          if (timeout >= 0 && timeout !== oldTimeout) this.timeouts.putSync(indexKey(timeout, key), EMPTY);
          this.hot.set(pending.key[p], pending.encoded[p], record);
        }
        this.writeMeta(version, checksum);
      });
      this.clearPending();
      this._version = version;
      if (version % this.snapshotInterval === 0) await this.writeSnapshot(version);
      this.files.releaseScratch();
      pending.releaseScratch();
      return {
        numRowsTotal: this.count,
        numRowsUpdated: updated,
        numRowsRemoved: removed,
        memoryUsedBytes: this.memoryUsedBytes(),
        commitTimeMs: performance.now() - started,
      };
    } finally {
      this.committing = false;
    }
  }

  /** Drops all changes since the last commit; the store stays at {@link version}. */
  abort(): void {
    if (this.committing) throw new Error(`state store ${this.dir}: abort() while a commit is running`);
    this.clearPending();
  }

  /** Deletes checkpoint files no longer needed to load any version >= `minVersionToKeep`. */
  purge(minVersionToKeep: number): Promise<string[]> {
    return purgeStateFiles(this.dir, minVersionToKeep);
  }

  /** Bytes held in memory: the hot-key cache and pending changes (the database's pages are the OS's cache). */
  memoryUsedBytes(): number {
    return this.hot.sizeBytes + this.pending.memoryBytes();
  }

  /** Closes the database; its working directory stays for the next open. */
  async close(): Promise<void> {
    this.hot.clear();
    await this.env.close();
  }

  /** Sets locPending or locRecord for `key` (see the fields) and returns its {@link PendingKey}. */
  private locate(key: unknown, prim: boolean): PendingKey {
    this.locPending = -1;
    this.locRecord = undefined;
    let pk: PendingKey;
    const pending = this.pending;
    if (prim) {
      pk = key as PendingKey;
      if (key === this.memoKey && pending.length === this.memoPending) {
        this.locRecord = this.memoRecord;
        return pk;
      }
    } else {
      this.encodeLookupKey(key);
      pk = this.latin1.slice(this.keyScratch.buf, 0, this.keyScratch.pos);
    }
    if (pending.length > 0) {
      const p = pending.find(pk, !prim);
      if (p >= 0) {
        this.locPending = p;
        return pk;
      }
    }
    let record = this.hot.get(pk, !prim);
    if (record === undefined) {
      if (prim) this.encodeLookupKey(key);
      record = this.state.getBinary(this.keyScratch.buf.subarray(0, this.keyScratch.pos));
      if (record !== undefined) this.hot.set(pk, !prim, record);
    }
    this.locRecord = record;
    if (prim) {
      this.memoKey = key;
      this.memoPending = pending.length;
      this.memoRecord = record;
    }
    return pk;
  }

  /** Encodes `key` canonically into keyScratch; returns its length. */
  private encodeLookupKey(key: unknown): number {
    const ks = this.keyScratch;
    ks.reset();
    ks.write(key);
    return ks.pos;
  }

  private decodeValue(record: Uint8Array): unknown {
    const r = this.reader;
    r.setBuffer(record, RECORD_HEADER, record.length);
    r.setNames(this.dict.names);
    return r.read();
  }

  private decodeKey(buf: Uint8Array, start: number): K {
    const r = this.reader;
    r.setBuffer(buf, start, buf.length);
    r.setNames([]);
    return r.read() as K;
  }

  /** The sort keys of every pending change, which hide the committed entries of the same keys; null when none. */
  private pendingSortKeys(): Set<string> | null {
    const pending = this.pending;
    if (pending.length === 0) return null;
    const keys = new Set<string>();
    for (let p = 0; p < pending.length; p++) keys.add(pending.sortKey(p));
    return keys;
  }

  /** Live entries as [sort key, key, value]: committed ones no change hides, in key order, then pending puts. */
  private *liveEntries(): IterableIterator<[string, K, V]> {
    const shadowed = this.pendingSortKeys();
    for (const { key, value } of this.state.getRange({})) {
      const s = this.latin1.slice(key, 0, key.length);
      if (shadowed?.has(s)) continue;
      yield [s, this.decodeKey(key, 0), this.decodeValue(value) as V];
    }
    const pending = this.pending;
    for (let p = 0; p < pending.length; p++) {
      if (pending.offset[p] >= 0) yield [pending.sortKey(p), pending.keyOf(p) as K, pending.value(p) as V];
    }
  }

  /** Puts a replayed record (inside a write transaction), keeping the timeout index and the key count. */
  private putCommitted(key: Uint8Array, record: Buffer): void {
    const old = this.state.getBinaryFast(key);
    if (old === undefined) this.count++;
    else {
      const t = old.readDoubleLE(0);
      if (t >= 0) this.timeouts.removeSync(indexKey(t, key));
    }
    this.state.putSync(key, record);
    const t = record.readDoubleLE(0);
    if (t >= 0) this.timeouts.putSync(indexKey(t, key), EMPTY);
  }

  /** Removes a replayed key (inside a write transaction), if present. */
  private removeCommitted(key: Uint8Array): void {
    const old = this.state.getBinaryFast(key);
    if (old === undefined) return;
    const t = old.readDoubleLE(0);
    if (t >= 0) this.timeouts.removeSync(indexKey(t, key));
    this.state.removeSync(key);
    this.count--;
  }

  private writeMeta(version: number, checksum: number | null): void {
    this.meta.putSync('version', version);
    this.meta.putSync('count', this.count);
    this.meta.putSync('names', [...this.dict.names]);
    this.meta.putSync('checksum', checksum);
  }

  /** Brings the database to version `version` of the checkpoint: as it is, caught up, or rebuilt. */
  private async recover(version: number): Promise<void> {
    if (!Number.isInteger(version) || version < 0)
      throw new RangeError(`state version must be an integer >= 0, got ${version}`);
    if (this.committing) throw new Error(`state store ${this.dir}: load while a commit is running`);
    this._version = -1;
    this.hot.clear();
    this.dict = new FieldDictionary();
    this.pending = new PendingChanges(this.dict);
    this.clearPending();
    let from = (this.meta.get('version') as number | undefined) ?? 0;
    if (from > 0) {
      const recorded = this.meta.get('checksum') as number | null | undefined;
      const sameHistory = recorded != null && (await deltaChecksum(this.dir, from)) === recorded;
      if (!sameHistory || from > version || !(await hasDeltasAfter(this.dir, from, version))) from = REBUILDING;
    }
    if (from === REBUILDING || (from > 0 && version === 0)) {
      this.env.transactionSync(() => {
        this.state.clearSync();
        this.timeouts.clearSync();
        this.meta.clearSync();
        this.meta.putSync('version', REBUILDING);
      });
      from = 0;
    }
    if (from > 0) this.dict.adopt((this.meta.get('names') as string[] | undefined) ?? []);
    this.count = from > 0 ? ((this.meta.get('count') as number | undefined) ?? 0) : 0;
    if (version > from) {
      const target: StateChangeTarget = {
        dict: this.dict,
        put: (key, value, timeout) => {
          const record = Buffer.allocUnsafe(RECORD_HEADER + value.length);
          record.writeDoubleLE(timeout, 0);
          record.set(value, RECORD_HEADER);
          this.putCommitted(key, record);
        },
        remove: (key) => this.removeCommitted(key),
      };
      try {
        await replayStateVersion(this.dir, from, version, target, (entries) => {
          this.env.transactionSync(() => {
            // Marked as being rebuilt until the last file is in: a crash in between must not leave a
            // database that claims a version it only partly holds.
            this.meta.putSync('version', REBUILDING);
            entries();
          });
        });
      } catch (err) {
        this.count = 0;
        throw err;
      }
      const checksum = await deltaChecksum(this.dir, version);
      this.env.transactionSync(() => this.writeMeta(version, checksum));
    }
    this._version = version;
  }

  /** Writes the snapshot of `version` from the database, every entry in key order. */
  private writeSnapshot(version: number): Promise<void> {
    return this.files.writeSnapshotOf(this.dir, version, this.dict.names, this.count, (visit) => {
      for (const { key, value } of this.state.getRange({})) {
        visit(key, value.subarray(RECORD_HEADER), value.readDoubleLE(0));
      }
    });
  }

  private clearPending(): void {
    this.pending.clear();
    this.oldTimeouts.length = 0;
    this.memoKey = undefined;
    this.memoPending = -1;
    this.memoRecord = undefined;
  }
}
