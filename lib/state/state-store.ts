/**
 * The versioned state store of one stateful operator's state partition, as Spark's StateStore.
 *
 * Version N is the state after batch N (version 0 is empty). Committing version N writes its changes
 * as a delta file and, every `snapshotInterval` versions, a snapshot (see state-file-format.ts).
 * Committed state lives in an {@link ArenaHashMap}, so it holds no JS object per key and `get` returns
 * a fresh object: callers cannot change committed state by mutating what they read.
 *
 * Changes since the last commit are kept apart ({@link PendingChanges}) until {@link StateStore.commit};
 * {@link StateStore.abort} drops them, leaving the store at its version, ready for a replay of the batch.
 *
 * Determinism: nothing observable depends on history (slot reuse, table layout, file layout):
 * {@link StateStore.keysWithTimeoutAtOrBefore} and {@link StateStore.sortedEntries} order by timeout and
 * by the canonical key encoding, which are the same after a reload as in an uninterrupted run.
 */
import { SluiceError } from '../errors.js';
import { nthSmallest } from '../util/nth-smallest.js';
import { ArenaHashMap, type DueEntry, indexHash } from './arena-hash-map.js';
import { checkTimeout, type EncodedKey, isPrimitiveKey, PendingChanges, type PendingKey } from './pending-changes.js';
import { purgeStateFiles, readStateVersion, StateFileWriter } from './state-file-format.js';
import { FieldDictionary, ValueWriter } from './value-codec.js';
import { checkCommitVersion, type StateCommitMetrics, type VersionedStateStore } from './versioned-state-store.js';

/**
 * A commit whose changes take at least this many bytes, most of them for keys not in committed state, hands
 * the changes' entries to committed state as they are instead of copying each record into the arena.
 */
const ADOPT_MIN_BYTES = 1 << 20;

/** Options of {@link StateStore.load}. */
export interface StateStoreOptions {
  /** Write a snapshot every this many versions (when version % interval === 0). Default 10. */
  snapshotInterval?: number;
}

/**
 * A versioned key-value store for one (operator, state partition). Not safe for concurrent use: one
 * task owns it at a time, and must not call other methods while {@link commit} is running.
 *
 * Entries are addressed internally by a ref: a committed slot (>= 0), or a pending change p as -(p + 1).
 *
 * @typeParam K the key type: a string, a number, or any value the codec encodes (arrays for composite keys)
 * @typeParam V the value type: anything the codec encodes (plain objects, arrays, primitives, Date, Map, ...)
 */
export class StateStore<K = unknown, V = unknown> implements VersionedStateStore<K, V> {
  /** The directory holding this store's delta and snapshot files. */
  readonly dir: string;
  /** Snapshot every this many versions. */
  readonly snapshotInterval: number;

  private _version = -1;
  // The committed entries and the changes since share one field dictionary, so that a commit copies
  // value bytes from one to the other as they are.
  private committed = new ArenaHashMap(new FieldDictionary());
  private pending = new PendingChanges(this.committed.dict);
  private readonly files = new StateFileWriter();
  /** Canonical encoding of the key being looked up. */
  private readonly keyScratch = new ValueWriter(256, null, true);
  /** keyScratch's encoding as pending changes look it up. */
  private readonly lookupKey: EncodedKey = { bytes: this.keyScratch.buf, length: 0, hash: 0 };
  private committing = false;
  // Results of locate().
  private locPending = -1;
  private locSlot = -1;
  private locKeyLen = 0;
  // The last primitive key located in committed state, so that get(k) then put(k) searches once. Valid
  // while no pending change was added (a new one could be this key) and committed state is unchanged
  // (every change to it clears pending changes, which resets this).
  private cacheKey: unknown = undefined;
  private cachePending = -1;
  private cacheSlot = -1;
  private cacheKeyLen = 0;

  private constructor(dir: string, opts: StateStoreOptions) {
    const interval = opts.snapshotInterval ?? 10;
    if (!Number.isInteger(interval) || interval < 1) {
      throw new SluiceError(
        'BAD_OPTION',
        `state snapshot interval must be a positive integer, got ${interval}`,
        'set snapshotInterval to e.g. 10 (a snapshot every 10 batches)',
      );
    }
    this.dir = dir;
    this.snapshotInterval = interval;
  }

  /**
   * Loads version `version` of the store in `dir` (0 = empty, needs no files): the newest snapshot at
   * or before it plus the deltas after that snapshot.
   * Throws SluiceError CHECKPOINT_MISSING when a needed file is gone and CHECKPOINT_CORRUPT (naming
   * the file) when one is torn or damaged.
   */
  static async load<K = unknown, V = unknown>(
    dir: string,
    version: number,
    opts: StateStoreOptions = {},
  ): Promise<StateStore<K, V>> {
    const store = new StateStore<K, V>(dir, opts);
    await store.loadFromDisk(version);
    return store;
  }

  /** The committed (or loaded) version; -1 while nothing is loaded (after a failed load). */
  get version(): number {
    return this._version;
  }

  /**
   * Makes the store hold exactly version `version` with no uncommitted changes. When it already
   * holds that version (the usual case: the last commit was `version`) this only drops uncommitted
   * changes; otherwise (a replay of an already committed batch, a failed load) it reloads from disk.
   */
  async prepare(version: number): Promise<void> {
    if (version === this._version) {
      this.abort();
      return;
    }
    await this.loadFromDisk(version);
  }

  /** Number of keys, uncommitted changes included. */
  get size(): number {
    return this.committed.count + this.pending.sizeDelta;
  }

  /** The value of `key` (a fresh copy), or undefined when absent. */
  get(key: K): V | undefined {
    this.locate(key, isPrimitiveKey(key));
    if (this.locPending >= 0) return this.pending.value(this.locPending) as V | undefined;
    const slot = this.locSlot;
    return slot < 0 ? undefined : (this.committed.valueWithKeyLength(slot, this.locKeyLen) as V);
  }

  /** Whether `key` has a value. */
  has(key: K): boolean {
    this.locate(key, isPrimitiveKey(key));
    return this.locPending >= 0 ? this.pending.offset[this.locPending] >= 0 : this.locSlot >= 0;
  }

  /** The timeout timestamp of `key` in ms, or -1 when it has none or is absent. */
  getTimeout(key: K): number {
    this.locate(key, isPrimitiveKey(key));
    const p = this.locPending;
    if (p >= 0) return this.pending.offset[p] < 0 ? -1 : this.pending.timeout[p];
    return this.locSlot < 0 ? -1 : this.committed.timeout(this.locSlot);
  }

  /**
   * Sets the value of `key` and its timeout (ms timestamp; -1 = none, replacing any earlier one).
   * The value is encoded now: changing the object afterwards does not change the state.
   * Throws SluiceError STATE_VALUE_UNSUPPORTED for values the codec cannot store.
   */
  put(key: K, value: V, timeoutMs = -1): void {
    checkTimeout(timeoutMs);
    const prim = isPrimitiveKey(key);
    const pk = this.locate(key, prim);
    this.pending.put(this.locPending, pk, !prim, this.locSlot, value, timeoutMs);
  }

  /** Removes `key` and its timeout; a no-op when absent. */
  remove(key: K): void {
    const prim = isPrimitiveKey(key);
    const pk = this.locate(key, prim);
    this.pending.remove(this.locPending, pk, !prim, this.locSlot);
  }

  /**
   * All keys and values, uncommitted changes included, in an unspecified order that may differ
   * between an uninterrupted run and a reload: use {@link sortedEntries} for anything that decides
   * output. Changes made while iterating may or may not be seen.
   */
  *entries(): IterableIterator<[K, V]> {
    for (const ref of this.liveRefs()) yield [this.refKey(ref), this.refValue(ref) as V];
  }

  /** All keys, in the unspecified order of {@link entries}. */
  *keys(): IterableIterator<K> {
    for (const ref of this.liveRefs()) yield this.refKey(ref);
  }

  /**
   * All entries ordered by their keys' canonical encoding: the same order in every run, thread and
   * after any reload (e.g. for complete-mode output).
   */
  sortedEntries(): Array<[K, V]> {
    const items: Array<{ s: string; ref: number }> = [];
    for (const ref of this.liveRefs()) items.push({ s: this.refSortKey(ref), ref });
    items.sort((a, b) => (a.s < b.s ? -1 : a.s > b.s ? 1 : 0));
    return items.map(({ ref }) => [this.refKey(ref), this.refValue(ref) as V]);
  }

  /**
   * Keys whose timeout is set and at or before `timestampMs`, uncommitted changes included, ordered
   * by timeout and then by the canonical key encoding (deterministic across runs and reloads); the first
   * `limit` of them when more are due.
   */
  keysWithTimeoutAtOrBefore(timestampMs: number, limit = Infinity): K[] {
    const due: DueEntry[] = [];
    const pending = this.pending;
    const committed = this.committed;
    const scan = committed.mayHaveTimeoutAtOrBefore(timestampMs);
    const shadowed = scan ? pending.shadowedSlots(committed.slotCount) : null;
    const bound = this.dueBound(timestampMs, limit, scan, shadowed);
    if (scan) committed.collectDue(bound, shadowed, due);
    for (let p = 0; p < pending.length; p++) {
      if (this.isPendingDue(p, bound)) due.push({ t: pending.timeout[p], s: pending.sortKey(p), ref: -p - 1 });
    }
    due.sort((a, b) => a.t - b.t || (a.s < b.s ? -1 : a.s > b.s ? 1 : 0));
    if (due.length > limit) due.length = limit;
    return due.map(({ ref }) => this.refKey(ref));
  }

  /**
   * The time by which the first `limit` due keys are due: the limit-th earliest timeout when more than `limit` keys
   * are due by `timestampMs`, else `timestampMs`. Listing and sorting only the keys due by it keeps a closing batch
   * after the watermark passed millions of timeouts to a batch's worth of keys rather than all of them, batch after
   * batch. `scan`: whether committed entries may be due (`shadowed` marks those that pending changes replace).
   */
  private dueBound(timestampMs: number, limit: number, scan: boolean, shadowed: Uint8Array | null): number {
    if (!(limit > 0 && limit < Infinity)) return timestampMs;
    const pending = this.pending;
    let n = scan ? this.committed.countDue(timestampMs, shadowed) : 0;
    for (let p = 0; p < pending.length; p++) if (this.isPendingDue(p, timestampMs)) n++;
    if (n <= limit) return timestampMs;
    const times = new Float64Array(n);
    let at = scan ? this.committed.dueTimeouts(timestampMs, shadowed, times, 0) : 0;
    for (let p = 0; p < pending.length; p++) if (this.isPendingDue(p, timestampMs)) times[at++] = pending.timeout[p];
    return nthSmallest(times, n, limit - 1);
  }

  /** Whether pending change `p` puts its key with a timeout at or before `timestampMs`. */
  private isPendingDue(p: number, timestampMs: number): boolean {
    const t = this.pending.timeout[p];
    return this.pending.offset[p] >= 0 && t >= 0 && t <= timestampMs;
  }

  /**
   * The earliest timeout of any key, uncommitted changes included, or Infinity when no key has one.
   * One pass over the timeout array with no per-key allocation (about 0.1 ms per 100k keys), where
   * listing every key with {@link keysWithTimeoutAtOrBefore} would sort them all.
   */
  earliestTimeout(): number {
    const committed = this.committed;
    const pending = this.pending;
    const min = committed.hasTimeouts
      ? committed.earliestTimeout(pending.shadowedSlots(committed.slotCount))
      : Infinity;
    return Math.min(min, pending.earliestTimeout());
  }

  /**
   * Writes the uncommitted changes as version `version` (which must be the current version + 1):
   * a delta file, plus a snapshot when `version` is a multiple of the snapshot interval. Files are
   * written atomically; if writing the delta fails the store keeps its version and its uncommitted
   * changes (call {@link abort} or retry).
   */
  async commit(version: number): Promise<StateCommitMetrics> {
    const started = performance.now();
    checkCommitVersion(this.dir, this._version, version, this.committing);
    this.committing = true;
    try {
      const pending = this.pending;
      const newKeyBytes = pending.recordBytes(true);
      const allBytes = pending.recordBytes(false);
      const adopt = allBytes >= ADOPT_MIN_BYTES && newKeyBytes * 2 >= allBytes;
      const { updated, removed } = await this.files.writeDelta(this.dir, version, this.committed.dict.names, pending);
      if (adopt) {
        const entries = pending.takeEntries();
        const chunk = this.committed.adoptChunk(entries);
        for (let p = 0; p < pending.length; p++) this.applyAdopted(p, entries, chunk);
      } else {
        this.committed.reserve(newKeyBytes);
        for (let p = 0; p < pending.length; p++) this.applyPending(p);
      }
      this.clearPending();
      this._version = version;
      this.committed.maybeCompact();
      if (version % this.snapshotInterval === 0) await this.files.writeSnapshot(this.dir, version, this.committed);
      this.files.releaseScratch();
      this.pending.releaseScratch();
      return {
        numRowsTotal: this.committed.count,
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

  /**
   * Deletes files no longer needed to load any version >= `minVersionToKeep`: everything older than
   * the newest snapshot at or before it. Returns the deleted file names. Without such a snapshot
   * nothing can go (the deltas from version 1 are still needed).
   */
  purge(minVersionToKeep: number): Promise<string[]> {
    return purgeStateFiles(this.dir, minVersionToKeep);
  }

  /** Nothing to release: the garbage collector frees the arena once the store is dropped. */
  async close(): Promise<void> {}

  /** Bytes held in memory: arena, hash table, slot arrays, timeouts and pending changes. */
  memoryUsedBytes(): number {
    return this.committed.memoryBytes() + this.pending.memoryBytes();
  }

  /**
   * Finds `key`: sets locPending to its pending change (or -1) and, when not pending, locSlot to its
   * committed slot (or -1) with its encoding left in keyScratch. Returns how pending changes look it up: the key
   * itself when primitive, else {@link lookupKey}.
   */
  private locate(key: unknown, prim: boolean): PendingKey | EncodedKey {
    this.locPending = -1;
    this.locSlot = -1;
    let h = 0;
    let pk: PendingKey | EncodedKey;
    const pending = this.pending;
    if (prim) {
      pk = key as PendingKey;
      if (key === this.cacheKey && pending.length === this.cachePending) {
        this.locSlot = this.cacheSlot;
        this.locKeyLen = this.cacheKeyLen;
        return pk;
      }
    } else {
      h = this.encodeLookupKey(key);
      pk = this.lookupKey;
      pk.bytes = this.keyScratch.buf;
      pk.length = this.keyScratch.pos;
      pk.hash = h;
    }
    if (pending.length > 0) {
      const p = pending.find(pk, !prim);
      if (p >= 0) {
        this.locPending = p;
        return pk;
      }
    }
    if (prim) h = this.encodeLookupKey(key);
    this.locKeyLen = this.keyScratch.pos;
    this.locSlot = this.committed.find(h, this.keyScratch.buf, 0, this.locKeyLen);
    if (prim) {
      this.cacheKey = key;
      this.cachePending = pending.length;
      this.cacheSlot = this.locSlot;
      this.cacheKeyLen = this.locKeyLen;
    }
    return pk;
  }

  /** Encodes `key` canonically into keyScratch and returns its index hash. */
  private encodeLookupKey(key: unknown): number {
    const ks = this.keyScratch;
    ks.reset();
    ks.write(key);
    return indexHash(ks.buf, 0, ks.pos);
  }

  /** Makes change `p` part of committed state. */
  private applyPending(p: number): void {
    const pending = this.pending;
    const off = pending.offset[p];
    const slot = pending.slot[p];
    if (off < 0) {
      if (slot >= 0) this.committed.remove(slot);
      return;
    }
    const values = pending.values.buf;
    const end = pending.valueEndOf(p);
    if (slot >= 0) {
      this.committed.update(slot, values, off, end, pending.timeout[p]);
      return;
    }
    // The key's encoding lies in the change's entry, just before the value.
    const kstart = pending.entry[p] + 1;
    this.committed.insert(this.keyHash(p, values), values, kstart, off - kstart, values, off, end, pending.timeout[p]);
  }

  /** The index hash of the key of change `p`, whose entry lies in `entries` (the pending changes' or an adopted chunk). */
  private keyHash(p: number, entries: Uint8Array): number {
    const pending = this.pending;
    return pending.isEncoded(p) ? pending.keyHash[p] : indexHash(entries, pending.entry[p] + 1, pending.offset[p]);
  }

  /**
   * Makes change `p` part of committed state, its record (if a put) in its entry in `entries`, which the arena
   * adopted as `chunk`.
   */
  private applyAdopted(p: number, entries: Uint8Array, chunk: number): void {
    const pending = this.pending;
    const slot = pending.slot[p];
    if (pending.offset[p] < 0) {
      if (slot >= 0) this.committed.remove(slot);
      return;
    }
    const timeout = pending.timeout[p];
    if (slot >= 0) {
      this.committed.updateAt(slot, chunk, pending.entry[p] + 1, timeout);
      return;
    }
    this.committed.insertAt(this.keyHash(p, entries), chunk, pending.entry[p] + 1, timeout);
  }

  /** Live entries as refs: committed slots no change overrides, then pending puts. */
  private *liveRefs(): IterableIterator<number> {
    const committed = this.committed;
    const slots = committed.slotCount;
    const shadowed = this.pending.shadowedSlots(slots);
    for (let slot = 0; slot < slots; slot++) {
      if (committed.isLive(slot) && (shadowed === null || shadowed[slot] === 0)) yield slot;
    }
    const pending = this.pending.length;
    for (let p = 0; p < pending; p++) if (this.pending.offset[p] >= 0) yield -p - 1;
  }

  private refKey(ref: number): K {
    return (ref >= 0 ? this.committed.key(ref) : this.pending.keyOf(-ref - 1)) as K;
  }

  private refValue(ref: number): unknown {
    return ref >= 0 ? this.committed.value(ref) : this.pending.value(-ref - 1);
  }

  /** The canonical key encoding as latin1: comparing these with `<` orders keys by their bytes. */
  private refSortKey(ref: number): string {
    return ref >= 0 ? this.committed.sortKey(ref) : this.pending.sortKey(-ref - 1);
  }

  private clearPending(): void {
    this.pending.clear();
    this.cacheKey = undefined;
    this.cachePending = -1;
  }

  private resetAll(): void {
    this._version = -1;
    this.committed = new ArenaHashMap(new FieldDictionary());
    this.pending = new PendingChanges(this.committed.dict);
    this.clearPending();
  }

  private async loadFromDisk(version: number): Promise<void> {
    if (!Number.isInteger(version) || version < 0)
      throw new RangeError(`state version must be an integer >= 0, got ${version}`);
    if (this.committing) throw new Error(`state store ${this.dir}: load while a commit is running`);
    this.resetAll();
    if (version > 0) {
      try {
        await readStateVersion(this.dir, version, this.committed);
      } catch (err) {
        // Drop what the files read so far put in, rather than keep a partial state in memory.
        this.resetAll();
        throw err;
      }
    }
    this._version = version;
  }
}
