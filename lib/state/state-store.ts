/**
 * The versioned state store of one stateful operator's state partition.
 *
 * Version N is the state after batch N (version 0 is empty). Committing version N writes
 * `<dir>/<N>.delta` (the puts and removes of batch N) and, every `snapshotInterval` versions, also
 * `<dir>/<N>.snapshot` (the whole state). Loading version N reads the newest snapshot at or before N
 * and applies the deltas after it, so recovery time is bounded by the interval, not the stream length.
 *
 * Memory layout (why not a Map of objects): committed state holds no JS object per key. Each entry is
 * a record `key bytes, value bytes` (both in the codec's encoding, see value-codec.ts) in one byte
 * arena; an open-addressing hash table (Int32Array) maps a key's bytes to its slot, and per-slot typed
 * arrays hold the record offset, the key hash and the timeout. A running sum `{sum: number}` under a
 * 7-char key costs ~45 bytes instead of ~100 for a Map of objects, a snapshot loads with one copy plus
 * one hash per key, the garbage collector has nothing to trace, and `get` returns a fresh object, so
 * callers cannot change committed state by mutating what they read.
 *
 * Changes since the last commit are kept apart (a pending area: JS Maps and a byte buffer) until
 * {@link StateStore.commit}; {@link StateStore.abort} drops them, leaving the store at its version,
 * ready for a replay of the batch.
 *
 * Determinism: nothing observable depends on history (slot reuse, table layout, file layout):
 * {@link StateStore.keysWithTimeoutAtOrBefore} and {@link StateStore.sortedEntries} order by timeout and
 * by the canonical key encoding, which are the same after a reload as in an uninterrupted run.
 */
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { crc32 } from 'node:zlib';
import { SluiceError } from '../errors.js';
import { isTempFileName } from '../checkpoint/atomic-file.js';
import { corruptCheckpointFile, readVersionedRaw, writeVersionedRaw } from '../checkpoint/versioned-file.js';
import { murmur3Bytes } from './state-partitioner.js';
import {
  FieldDictionary, T_SHORT_STRING, T_SMALL_INT, ValueReader, ValueWriter, encodeKeyString,
} from './value-codec.js';

/** Format version of delta and snapshot files (the `v<N>` line that starts them). */
export const STATE_FILE_FORMAT_VERSION = 1;

/** "SLST": tells state files from anything else that might carry a `v1` line. */
const MAGIC = 0x54534c53;
const KIND_DELTA = 1;
const KIND_SNAPSHOT = 2;
const OP_REMOVE = 0;
const OP_PUT = 1;
const OP_PUT_WITH_TIMEOUT = 2;

/**
 * Seed of the in-memory index hash. It must differ from the partitioner's: all keys of one state
 * partition share `hash % numPartitions`, which with the same hash would pile them into a few buckets.
 */
const INDEX_SEED = 0x2545f491;
const MIN_TABLE = 1024;
const MIN_SLOTS = 768;
/** Slot arrays and the arena grow by this factor: they are long-lived and large, so less slack than 2×. */
const GROWTH = 1.5;
/** Arena garbage is reclaimed once it exceeds both this and half the live bytes. */
const MIN_GARBAGE_TO_COMPACT = 1 << 20;
/** File and pending buffers bigger than this are dropped after a commit rather than kept for the next. */
const SCRATCH_KEEP_BYTES = 1 << 20;
/** Rough heap cost of one pending change (Map entry, array cells), for the memory estimate. */
const PENDING_ENTRY_BYTES = 64;

/** Options of {@link StateStore.load}. */
export interface StateStoreOptions {
  /** Write a snapshot every this many versions (when version % interval === 0). Default 10. */
  snapshotInterval?: number;
}

/** What one commit did; the operator's progress report is built from it. */
export interface StateCommitMetrics {
  /** Keys in the state after the commit. */
  numRowsTotal: number;
  /** Keys put (inserted or updated) by this batch. */
  numRowsUpdated: number;
  /** Keys removed by this batch (that existed before it). */
  numRowsRemoved: number;
  /** Bytes the store holds in memory (arena, index, timeouts, pending changes). */
  memoryUsedBytes: number;
  /** Wall time of the commit, including file writes. */
  commitTimeMs: number;
}

/** The files of a store directory by version. */
interface StateFiles {
  deltas: Set<number>;
  snapshots: number[];
}

const FILE_NAME = /^([0-9]{1,15})\.(delta|snapshot)$/;

async function listStateFiles(dir: string): Promise<StateFiles> {
  const files: StateFiles = { deltas: new Set(), snapshots: [] };
  let names: string[];
  try {
    names = await fsp.readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return files;
    throw err;
  }
  for (const name of names) {
    if (isTempFileName(name)) continue;
    const m = FILE_NAME.exec(name);
    if (!m) continue;
    const version = Number(m[1]);
    if (m[2] === 'delta') files.deltas.add(version);
    else files.snapshots.push(version);
  }
  files.snapshots.sort((a, b) => a - b);
  return files;
}

/** Pending changes are keyed by the key itself when primitive, else by its canonical encoding as latin1. */
type MapKey = string | number;

function isPrimitiveKey(key: unknown): key is MapKey {
  return typeof key === 'string' || typeof key === 'number';
}

/** Latin1 strings of byte ranges, reusing one Buffer view per underlying array. */
class Latin1View {
  private of: Uint8Array | null = null;
  private view: (Buffer & { latin1Slice(start: number, end: number): string }) | null = null;

  slice(buf: Uint8Array, start: number, end: number): string {
    if (this.of !== buf) {
      this.of = buf;
      this.view = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength) as Buffer & { latin1Slice(start: number, end: number): string };
    }
    return this.view!.latin1Slice(start, end);
  }
}

function nextPowerOfTwo(n: number): number {
  let p = MIN_TABLE;
  while (p < n) p *= 2;
  return p;
}

/**
 * A versioned key-value store for one (operator, state partition). Not safe for concurrent use: one
 * task owns it at a time, and must not call other methods while {@link commit} is running.
 *
 * @typeParam K the key type: a string, a number, or any value the codec encodes (arrays for composite keys)
 * @typeParam V the value type: anything the codec encodes (plain objects, arrays, primitives, Date, Map, ...)
 */
export class StateStore<K = unknown, V = unknown> {
  /** The directory holding this store's delta and snapshot files. */
  readonly dir: string;
  /** Snapshot every this many versions. */
  readonly snapshotInterval: number;

  private _version = -1;
  private dict = new FieldDictionary();

  // Committed state. A slot is one entry; its record (key bytes then value bytes) starts at recOff.
  /** Hash table: slot + 1 per bucket, 0 = empty; linear probing, length a power of two. */
  private table = new Int32Array(MIN_TABLE);
  private hashes = new Int32Array(MIN_SLOTS);
  /** Arena offset of each slot's record; -1 when the slot is free. */
  private recOff = new Int32Array(MIN_SLOTS).fill(-1);
  /** Timeout of each slot, -1 for none; null until some key has a timeout. */
  private timeouts: Float64Array | null = null;
  /** Lower bound of all committed timeouts: a scan is skipped when the asked time is below it. */
  private minTimeout = Infinity;
  private freeSlots: number[] = [];
  private slotCount = 0;
  private count = 0;
  private arena = new ValueWriter(4096, this.dict, false, GROWTH);
  private garbage = 0;

  // Uncommitted changes: the Map key → an index into the pending arrays.
  private readonly pIndex = new Map<MapKey, number>();
  private readonly pEncIndex = new Map<string, number>();
  /** Offset of the pending value in `pending`, or -1 for a pending remove. */
  private pOffset: number[] = [];
  private pTimeout: number[] = [];
  /** The committed slot of the key (-1: none). Valid until commit: committed state does not change before. */
  private pSlot: number[] = [];
  /** The pending-map key of each change, and whether it is in pEncIndex. */
  private pKey: MapKey[] = [];
  private pEncoded: boolean[] = [];
  private pending = new ValueWriter(4096, this.dict);
  private sizeDelta = 0;

  // One reader per buffer kind, so that switching between them does not rebuild their views.
  private readonly arenaReader = new ValueReader(new Uint8Array(0));
  private readonly pendingReader = new ValueReader(new Uint8Array(0));
  private readonly reader = new ValueReader(new Uint8Array(0));
  /** Canonical encoding of the key being looked up. */
  private readonly keyScratch = new ValueWriter(256, null, true);
  private fileWriter = new ValueWriter(1 << 16, null, true);
  private readonly arenaLatin1 = new Latin1View();
  private readonly scratchLatin1 = new Latin1View();
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
      throw new SluiceError('BAD_OPTION', `state snapshot interval must be a positive integer, got ${interval}`,
        'set snapshotInterval to e.g. 10 (a snapshot every 10 batches)');
    }
    this.dir = dir;
    this.snapshotInterval = interval;
  }

  /** The directory of the store of operator `operator`, state partition `partition`, under a checkpoint. */
  static directory(checkpointDir: string, operator: string | number, partition: number): string {
    return path.join(checkpointDir, 'state', String(operator), String(partition));
  }

  /**
   * Loads version `version` of the store in `dir` (0 = empty, needs no files): the newest snapshot at
   * or before it plus the deltas after that snapshot.
   * Throws SluiceError CHECKPOINT_MISSING when a needed file is gone and CHECKPOINT_CORRUPT (naming
   * the file) when one is torn or damaged.
   */
  static async load<K = unknown, V = unknown>(dir: string, version: number, opts: StateStoreOptions = {}): Promise<StateStore<K, V>> {
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
    return this.count + this.sizeDelta;
  }

  /** The value of `key` (a fresh copy), or undefined when absent. */
  get(key: K): V | undefined {
    this.locate(key, isPrimitiveKey(key));
    if (this.locPending >= 0) return this.pendingValue(this.locPending) as V | undefined;
    const slot = this.locSlot;
    return slot < 0 ? undefined : this.readArena(this.recOff[slot] + this.locKeyLen) as V;
  }

  /** Whether `key` has a value. */
  has(key: K): boolean {
    this.locate(key, isPrimitiveKey(key));
    return this.locPending >= 0 ? this.pOffset[this.locPending] >= 0 : this.locSlot >= 0;
  }

  /** The timeout timestamp of `key` in ms, or -1 when it has none or is absent. */
  getTimeout(key: K): number {
    this.locate(key, isPrimitiveKey(key));
    const p = this.locPending;
    if (p >= 0) return this.pOffset[p] < 0 ? -1 : this.pTimeout[p];
    return this.locSlot < 0 || this.timeouts === null ? -1 : this.timeouts[this.locSlot];
  }

  /**
   * Sets the value of `key` and its timeout (ms timestamp; -1 = none, replacing any earlier one).
   * The value is encoded now: changing the object afterwards does not change the state.
   * Throws SluiceError STATE_VALUE_UNSUPPORTED for values the codec cannot store.
   */
  put(key: K, value: V, timeoutMs = -1): void {
    if (timeoutMs !== -1 && !(timeoutMs >= 0 && timeoutMs <= Number.MAX_SAFE_INTEGER)) {
      throw new RangeError(`state timeout must be -1 (none) or a timestamp in ms >= 0, got ${timeoutMs}`);
    }
    const prim = isPrimitiveKey(key);
    const mk = this.locate(key, prim);
    const off = this.pending.pos;
    try {
      this.pending.write(value);
    } catch (err) {
      this.pending.pos = off;
      throw err;
    }
    const p = this.locPending;
    if (p < 0) {
      this.addPending(mk, !prim, off, timeoutMs);
      if (this.locSlot < 0) this.sizeDelta++;
    } else {
      const oldOff = this.pOffset[p];
      if (oldOff < 0) {
        this.sizeDelta++;
        this.pOffset[p] = off;
      } else if (this.pending.pos - off <= this.valueEnd(this.pending.buf, oldOff, off) - oldOff) {
        // Overwrite the key's earlier value of this batch, so per-row updates do not grow the buffer.
        const buf = this.pending.buf;
        for (let i = off, q = oldOff; i < this.pending.pos; i++) buf[q++] = buf[i];
        this.pending.pos = off;
      } else {
        this.pOffset[p] = off;
      }
      this.pTimeout[p] = timeoutMs;
    }
  }

  /** Removes `key` and its timeout; a no-op when absent. */
  remove(key: K): void {
    const prim = isPrimitiveKey(key);
    const mk = this.locate(key, prim);
    const p = this.locPending;
    if (p < 0) {
      if (this.locSlot < 0) return;
      this.addPending(mk, !prim, -1, -1);
      this.sizeDelta--;
    } else if (this.pOffset[p] >= 0) {
      this.pOffset[p] = -1;
      this.pTimeout[p] = -1;
      this.sizeDelta--;
    }
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
   * by timeout and then by the canonical key encoding (deterministic across runs and reloads).
   */
  keysWithTimeoutAtOrBefore(timestampMs: number): K[] {
    const due: Array<{ t: number; s: string; ref: number }> = [];
    const timeouts = this.timeouts;
    if (timeouts !== null && this.minTimeout <= timestampMs) {
      const shadowed = this.shadowedSlots();
      let min = Infinity;
      for (let slot = 0; slot < this.slotCount; slot++) {
        const t = timeouts[slot];
        if (t < 0) continue;
        if (t < min) min = t;
        if (t <= timestampMs && (shadowed === null || shadowed[slot] === 0)) due.push({ t, s: this.refSortKey(slot), ref: slot });
      }
      this.minTimeout = min;
    }
    for (let p = 0; p < this.pOffset.length; p++) {
      const t = this.pTimeout[p];
      if (this.pOffset[p] >= 0 && t >= 0 && t <= timestampMs) due.push({ t, s: this.refSortKey(-p - 1), ref: -p - 1 });
    }
    due.sort((a, b) => a.t - b.t || (a.s < b.s ? -1 : a.s > b.s ? 1 : 0));
    return due.map(({ ref }) => this.refKey(ref));
  }

  /**
   * The earliest timeout of any key, uncommitted changes included, or Infinity when no key has one.
   * One pass over the timeout array with no per-key allocation (about 0.1 ms per 100k keys), where
   * listing every key with {@link keysWithTimeoutAtOrBefore} would sort them all.
   */
  earliestTimeout(): number {
    let min = Infinity;
    const timeouts = this.timeouts;
    if (timeouts !== null) {
      const shadowed = this.shadowedSlots();
      let committedMin = Infinity;
      for (let slot = 0; slot < this.slotCount; slot++) {
        const t = timeouts[slot];
        if (t < 0) continue;
        if (t < committedMin) committedMin = t;
        if (t < min && (shadowed === null || shadowed[slot] === 0)) min = t;
      }
      this.minTimeout = committedMin;
    }
    for (let p = 0; p < this.pOffset.length; p++) {
      const t = this.pTimeout[p];
      if (this.pOffset[p] >= 0 && t >= 0 && t < min) min = t;
    }
    return min;
  }

  /**
   * Writes the uncommitted changes as version `version` (which must be the current version + 1):
   * `<version>.delta`, plus `<version>.snapshot` when `version` is a multiple of the snapshot interval.
   * Files are written atomically; if writing the delta fails the store keeps its version and its
   * uncommitted changes (call {@link abort} or retry).
   */
  async commit(version: number): Promise<StateCommitMetrics> {
    const started = performance.now();
    if (this.committing) throw new Error(`state store ${this.dir}: commit(${version}) while another commit is running`);
    if (version !== this._version + 1 || this._version < 0) {
      throw new Error(`state store ${this.dir} holds version ${this._version} and cannot commit version ${version}; ` +
        `prepare(${version - 1}) first`);
    }
    this.committing = true;
    try {
      const w = this.fileWriter;
      w.reset();
      this.writeHeader(w, KIND_DELTA, version);
      const countAt = w.pos;
      w.uint32(0);
      let updated = 0;
      let removed = 0;
      const writeEntry = (mk: MapKey, p: number, encoded: boolean): void => {
        const off = this.pOffset[p];
        if (off < 0) {
          if (this.pSlot[p] < 0) return;
          w.byte(OP_REMOVE);
          this.writeMapKey(w, mk, encoded);
          removed++;
          return;
        }
        const t = this.pTimeout[p];
        w.byte(t >= 0 ? OP_PUT_WITH_TIMEOUT : OP_PUT);
        this.writeMapKey(w, mk, encoded);
        w.raw(this.pending.buf, off, this.valueEnd(this.pending.buf, off, this.pending.pos));
        if (t >= 0) w.float64(t);
        updated++;
      };
      for (let p = 0; p < this.pOffset.length; p++) writeEntry(this.pKey[p], p, this.pEncoded[p]);
      new DataView(w.buf.buffer).setUint32(countAt, updated + removed, true);
      w.uint32(crc32(w.buf.subarray(0, w.pos)));
      await writeVersionedRaw(this.deltaFile(version), w.buf.subarray(0, w.pos), STATE_FILE_FORMAT_VERSION);

      for (let p = 0; p < this.pOffset.length; p++) this.applyPending(this.pKey[p], p, this.pEncoded[p]);
      this.clearPending();
      this._version = version;
      this.maybeCompact();
      if (version % this.snapshotInterval === 0) await this.writeSnapshot(version);
      this.releaseScratch();
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

  /**
   * Deletes files no longer needed to load any version >= `minVersionToKeep`: everything older than
   * the newest snapshot at or before it. Returns the deleted file names. Without such a snapshot
   * nothing can go (the deltas from version 1 are still needed).
   */
  async purge(minVersionToKeep: number): Promise<string[]> {
    const files = await listStateFiles(this.dir);
    let base = 0;
    for (const s of files.snapshots) if (s <= minVersionToKeep) base = s;
    if (base === 0) return [];
    const doomed: string[] = [];
    for (const d of files.deltas) if (d < base) doomed.push(`${d}.delta`);
    for (const s of files.snapshots) if (s < base) doomed.push(`${s}.snapshot`);
    await Promise.all(doomed.map((name) => fsp.rm(path.join(this.dir, name), { force: true })));
    return doomed.sort();
  }

  /** Bytes held in memory: arena, hash table, slot arrays, timeouts and pending changes. */
  memoryUsedBytes(): number {
    return this.arena.buf.length + this.table.byteLength + this.hashes.byteLength + this.recOff.byteLength +
      (this.timeouts?.byteLength ?? 0) + this.pending.buf.length + this.pOffset.length * PENDING_ENTRY_BYTES;
  }

  // ---- lookup -------------------------------------------------------------------------------------

  /** Encodes `key` canonically into keyScratch and returns its index hash. */
  private encodeLookupKey(key: unknown): number {
    const ks = this.keyScratch;
    ks.reset();
    ks.write(key);
    return murmur3Bytes(ks.buf, 0, ks.pos, INDEX_SEED) | 0;
  }

  /**
   * Finds `key`: sets locPending to its pending index (or -1) and, when not pending, locSlot to its
   * committed slot (or -1) with its encoding left in keyScratch. Returns the pending-map key.
   */
  private locate(key: unknown, prim: boolean): MapKey {
    this.locPending = -1;
    this.locSlot = -1;
    let h = 0;
    let mk: MapKey;
    if (prim) {
      mk = key as MapKey;
      if (key === this.cacheKey && this.pOffset.length === this.cachePending) {
        this.locSlot = this.cacheSlot;
        this.locKeyLen = this.cacheKeyLen;
        return mk;
      }
    } else {
      h = this.encodeLookupKey(key);
      mk = this.scratchLatin1.slice(this.keyScratch.buf, 0, this.keyScratch.pos);
    }
    if (this.pOffset.length > 0) {
      const p = prim ? this.pIndex.get(mk) : this.pEncIndex.get(mk as string);
      if (p !== undefined) {
        this.locPending = p;
        return mk;
      }
    }
    if (prim) h = this.encodeLookupKey(key);
    this.locKeyLen = this.keyScratch.pos;
    this.locSlot = this.findSlot(h, this.keyScratch.buf, 0, this.locKeyLen);
    if (prim) {
      this.cacheKey = key;
      this.cachePending = this.pOffset.length;
      this.cacheSlot = this.locSlot;
      this.cacheKeyLen = this.locKeyLen;
    }
    return mk;
  }

  /** The committed slot whose key bytes equal `buf[start, start + len)` (hash `h`), or -1. */
  private findSlot(h: number, buf: Uint8Array, start: number, len: number): number {
    const table = this.table;
    const mask = table.length - 1;
    const hashes = this.hashes;
    const recOff = this.recOff;
    const arena = this.arena.buf;
    for (let i = h & mask; ; i = (i + 1) & mask) {
      const e = table[i];
      if (e === 0) return -1;
      const slot = e - 1;
      if (hashes[slot] !== h) continue;
      const off = recOff[slot];
      let j = 0;
      // Encodings are self-delimiting, so no key's bytes start with another complete key's bytes:
      // equal first `len` bytes mean equal keys.
      while (j < len && arena[off + j] === buf[start + j]) j++;
      if (j === len) return slot;
    }
  }

  private placeInTable(slot: number, h: number): void {
    const table = this.table;
    const mask = table.length - 1;
    let i = h & mask;
    while (table[i] !== 0) i = (i + 1) & mask;
    table[i] = slot + 1;
  }

  private growTable(size: number): void {
    this.table = new Int32Array(size);
    for (let slot = 0; slot < this.slotCount; slot++) if (this.recOff[slot] >= 0) this.placeInTable(slot, this.hashes[slot]);
  }

  /** Takes `slot` out of the hash table, shifting later entries of its probe run back (no tombstones). */
  private unplace(slot: number): void {
    const table = this.table;
    const mask = table.length - 1;
    const hashes = this.hashes;
    let i = hashes[slot] & mask;
    while (table[i] !== slot + 1) i = (i + 1) & mask;
    for (let j = (i + 1) & mask; table[j] !== 0; j = (j + 1) & mask) {
      const e = table[j];
      const home = hashes[e - 1] & mask;
      // The entry at j may fill the hole at i unless its home lies cyclically in (i, j].
      if (((j - home) & mask) >= ((j - i) & mask)) {
        table[i] = e;
        i = j;
      }
    }
    table[i] = 0;
  }

  // ---- records --------------------------------------------------------------------------------------

  /** Length of the key encoding at `off` in the arena; short strings and small ints without a parse. */
  private keyLengthAt(off: number): number {
    const buf = this.arena.buf;
    const tag = buf[off];
    if (tag >= T_SMALL_INT) return 1;
    if (tag >= T_SHORT_STRING) return 1 + tag - T_SHORT_STRING;
    const r = this.arenaReader;
    r.setBuffer(buf, off, this.arena.pos);
    r.skip();
    return r.pos - off;
  }

  /** End of the encoded value at `off` in `buf` (which is valid up to `end`). */
  private valueEnd(buf: Uint8Array, off: number, end: number): number {
    const r = buf === this.arena.buf ? this.arenaReader : buf === this.pending.buf ? this.pendingReader : this.reader;
    r.setBuffer(buf, off, end);
    r.skip();
    return r.pos;
  }

  private readArena(off: number): unknown {
    const r = this.arenaReader;
    r.setBuffer(this.arena.buf, off, this.arena.pos);
    r.setNames(this.dict.names);
    return r.read();
  }

  private pendingValue(p: number): unknown {
    const off = this.pOffset[p];
    if (off < 0) return undefined;
    const r = this.pendingReader;
    r.setBuffer(this.pending.buf, off, this.pending.pos);
    r.setNames(this.dict.names);
    return r.read();
  }

  private allocSlot(): number {
    const free = this.freeSlots.pop();
    if (free !== undefined) return free;
    const slot = this.slotCount++;
    if (slot >= this.recOff.length) this.growSlots(Math.ceil(this.recOff.length * GROWTH));
    return slot;
  }

  private growSlots(capacity: number): void {
    const recOff = new Int32Array(capacity).fill(-1);
    recOff.set(this.recOff.subarray(0, this.slotCount));
    this.recOff = recOff;
    const hashes = new Int32Array(capacity);
    hashes.set(this.hashes.subarray(0, this.slotCount));
    this.hashes = hashes;
    if (this.timeouts !== null) this.timeouts = this.grownTimeouts(capacity);
  }

  private grownTimeouts(capacity: number): Float64Array {
    const t = new Float64Array(capacity).fill(-1);
    if (this.timeouts !== null) t.set(this.timeouts.subarray(0, Math.min(this.timeouts.length, capacity)));
    return t;
  }

  private setTimeout(slot: number, t: number): void {
    if (t >= 0) {
      if (this.timeouts === null) this.timeouts = this.grownTimeouts(this.recOff.length);
      this.timeouts[slot] = t;
      if (t < this.minTimeout) this.minTimeout = t;
    } else if (this.timeouts !== null) {
      this.timeouts[slot] = -1;
    }
  }

  /** Adds a new entry: key `kbuf[kstart, kstart + klen)` with hash `h`, value `vbuf[vstart, vend)`. */
  private insert(h: number, kbuf: Uint8Array, kstart: number, klen: number, vbuf: Uint8Array, vstart: number, vend: number,
    timeout: number): void {
    if ((this.count + 1) * 4 > this.table.length * 3) this.growTable(this.table.length * 2);
    const slot = this.allocSlot();
    this.hashes[slot] = h;
    this.recOff[slot] = this.arena.pos;
    this.arena.raw(kbuf, kstart, kstart + klen);
    this.arena.raw(vbuf, vstart, vend);
    this.placeInTable(slot, h);
    this.count++;
    this.setTimeout(slot, timeout);
  }

  /**
   * Replaces the value of `slot` with `src[start, end)`: in place when it fits, so steady updates do
   * not grow the arena; otherwise the record moves to the end.
   */
  private update(slot: number, src: Uint8Array, start: number, end: number, timeout: number): void {
    const off = this.recOff[slot];
    const klen = this.keyLengthAt(off);
    const vstart = off + klen;
    const oldLen = this.valueEnd(this.arena.buf, vstart, this.arena.pos) - vstart;
    const len = end - start;
    if (len <= oldLen) {
      const buf = this.arena.buf;
      let q = vstart;
      for (let i = start; i < end; i++) buf[q++] = src[i];
      this.garbage += oldLen - len;
    } else {
      this.recOff[slot] = this.arena.pos;
      this.arena.raw(this.arena.buf, off, vstart);
      this.arena.raw(src, start, end);
      this.garbage += klen + oldLen;
    }
    this.setTimeout(slot, timeout);
  }

  private removeSlot(slot: number): void {
    const off = this.recOff[slot];
    this.garbage += this.valueEnd(this.arena.buf, off + this.keyLengthAt(off), this.arena.pos) - off;
    this.unplace(slot);
    this.recOff[slot] = -1;
    if (this.timeouts !== null) this.timeouts[slot] = -1;
    this.freeSlots.push(slot);
    this.count--;
  }

  private applyPending(mk: MapKey, p: number, encoded: boolean): void {
    const off = this.pOffset[p];
    const slot = this.pSlot[p];
    if (off < 0) {
      if (slot >= 0) this.removeSlot(slot);
      return;
    }
    const pendingBuf = this.pending.buf;
    const end = this.valueEnd(pendingBuf, off, this.pending.pos);
    if (slot >= 0) {
      this.update(slot, pendingBuf, off, end, this.pTimeout[p]);
      return;
    }
    const ks = this.keyScratch;
    ks.reset();
    this.writeMapKey(ks, mk, encoded);
    const h = murmur3Bytes(ks.buf, 0, ks.pos, INDEX_SEED) | 0;
    this.insert(h, ks.buf, 0, ks.pos, pendingBuf, off, end, this.pTimeout[p]);
  }

  /** Rewrites the arena without garbage once garbage outweighs half the live bytes. */
  private maybeCompact(): void {
    const live = this.arena.pos - this.garbage;
    if (this.garbage < MIN_GARBAGE_TO_COMPACT || this.garbage < live / 2) return;
    const next = new ValueWriter(Math.ceil(live * 1.1) + 4096, this.dict, false, GROWTH);
    const old = this.arena.buf;
    for (let slot = 0; slot < this.slotCount; slot++) {
      const off = this.recOff[slot];
      if (off < 0) continue;
      const end = this.valueEnd(old, off + this.keyLengthAt(off), this.arena.pos);
      this.recOff[slot] = next.pos;
      next.raw(old, off, end);
    }
    this.arena = next;
    this.garbage = 0;
  }

  // ---- iteration ----------------------------------------------------------------------------------

  /** Committed slots that a pending change overrides (null when nothing is pending). */
  private shadowedSlots(): Uint8Array | null {
    if (this.pOffset.length === 0) return null;
    const shadowed = new Uint8Array(this.slotCount);
    for (const slot of this.pSlot) if (slot >= 0) shadowed[slot] = 1;
    return shadowed;
  }

  /** Live entries as refs: a committed slot (>= 0) not overridden, or a pending put -(p + 1). */
  private *liveRefs(): IterableIterator<number> {
    const shadowed = this.shadowedSlots();
    const slots = this.slotCount;
    for (let slot = 0; slot < slots; slot++) {
      if (this.recOff[slot] >= 0 && (shadowed === null || shadowed[slot] === 0)) yield slot;
    }
    const pending = this.pOffset.length;
    for (let p = 0; p < pending; p++) if (this.pOffset[p] >= 0) yield -p - 1;
  }

  private refKey(ref: number): K {
    if (ref >= 0) return this.readKeyAt(this.recOff[ref]) as K;
    const p = -ref - 1;
    const mk = this.pKey[p];
    return (this.pEncoded[p] ? this.decodeLatin1Key(mk as string) : mk) as K;
  }

  private refValue(ref: number): unknown {
    if (ref < 0) return this.pendingValue(-ref - 1);
    const off = this.recOff[ref];
    return this.readArena(off + this.keyLengthAt(off));
  }

  /** The canonical key encoding as latin1: comparing these with `<` orders keys by their bytes. */
  private refSortKey(ref: number): string {
    if (ref >= 0) {
      const off = this.recOff[ref];
      return this.arenaLatin1.slice(this.arena.buf, off, off + this.keyLengthAt(off));
    }
    const p = -ref - 1;
    return this.pEncoded[p] ? this.pKey[p] as string : encodeKeyString(this.pKey[p]);
  }

  private readKeyAt(off: number): unknown {
    const r = this.arenaReader;
    r.setBuffer(this.arena.buf, off, this.arena.pos);
    r.setNames([]);
    return r.read();
  }

  private decodeLatin1Key(s: string): unknown {
    const bytes = Buffer.from(s, 'latin1');
    return new ValueReader(bytes).read();
  }

  /** Records a change of a key not yet pending; its committed slot is the one locate() just found. */
  private addPending(mk: MapKey, encoded: boolean, off: number, timeout: number): void {
    (encoded ? this.pEncIndex : this.pIndex).set(mk as string, this.pOffset.length);
    this.pOffset.push(off);
    this.pTimeout.push(timeout);
    this.pSlot.push(this.locSlot);
    this.pKey.push(mk);
    this.pEncoded.push(encoded);
  }

  private clearPending(): void {
    this.pIndex.clear();
    this.pEncIndex.clear();
    this.pOffset.length = 0;
    this.pTimeout.length = 0;
    this.pSlot.length = 0;
    this.pKey.length = 0;
    this.pEncoded.length = 0;
    this.pending.reset();
    this.sizeDelta = 0;
    this.cacheKey = undefined;
    this.cachePending = -1;
  }

  /** Gives back file and pending buffers that a big batch or a snapshot grew, so they do not stay as dead weight. */
  private releaseScratch(): void {
    if (this.fileWriter.buf.length > SCRATCH_KEEP_BYTES) this.fileWriter = new ValueWriter(1 << 16, null, true);
    if (this.pending.buf.length > SCRATCH_KEEP_BYTES) this.pending = new ValueWriter(4096, this.dict);
  }

  // ---- files ----------------------------------------------------------------------------------------

  private deltaFile(version: number): string {
    return path.join(this.dir, `${version}.delta`);
  }

  private snapshotFile(version: number): string {
    return path.join(this.dir, `${version}.snapshot`);
  }

  /** Writes the canonical encoding of a pending-map key. */
  private writeMapKey(w: ValueWriter, mk: MapKey, encoded: boolean): void {
    if (!encoded) {
      w.write(mk);
      return;
    }
    const s = mk as string;
    w.ensure(s.length);
    for (let i = 0; i < s.length; i++) w.buf[w.pos++] = s.charCodeAt(i);
  }

  private writeHeader(w: ValueWriter, kind: number, version: number): void {
    w.uint32(MAGIC);
    w.byte(kind);
    w.varint(version);
    const names = this.dict.names;
    w.varint32(names.length);
    for (const name of names) w.lengthPrefixedString(name);
  }

  /** Snapshot body: header, key count, the records (key and value bytes) in one section, timeouts. */
  private async writeSnapshot(version: number): Promise<void> {
    const w = this.fileWriter;
    w.reset();
    this.writeHeader(w, KIND_SNAPSHOT, version);
    w.uint32(this.count);
    const ends = new Int32Array(this.slotCount);
    let recordBytes = 0;
    for (let slot = 0; slot < this.slotCount; slot++) {
      const off = this.recOff[slot];
      if (off < 0) continue;
      ends[slot] = this.valueEnd(this.arena.buf, off + this.keyLengthAt(off), this.arena.pos);
      recordBytes += ends[slot] - off;
    }
    w.varint(recordBytes);
    w.ensure(recordBytes);
    const arena = this.arena.buf;
    for (let slot = 0; slot < this.slotCount; slot++) {
      const off = this.recOff[slot];
      if (off >= 0) w.raw(arena, off, ends[slot]);
    }
    const timeouts = this.timeouts;
    w.byte(timeouts === null ? 0 : 1);
    if (timeouts !== null) {
      w.ensure(this.count * 8);
      for (let slot = 0; slot < this.slotCount; slot++) if (this.recOff[slot] >= 0) w.float64(timeouts[slot]);
    }
    w.uint32(crc32(w.buf.subarray(0, w.pos)));
    await writeVersionedRaw(this.snapshotFile(version), w.buf.subarray(0, w.pos), STATE_FILE_FORMAT_VERSION);
  }

  private resetAll(): void {
    this._version = -1;
    this.dict = new FieldDictionary();
    this.table = new Int32Array(MIN_TABLE);
    this.hashes = new Int32Array(MIN_SLOTS);
    this.recOff = new Int32Array(MIN_SLOTS).fill(-1);
    this.timeouts = null;
    this.minTimeout = Infinity;
    this.freeSlots = [];
    this.slotCount = 0;
    this.count = 0;
    this.arena = new ValueWriter(4096, this.dict, false, GROWTH);
    this.garbage = 0;
    this.pending = new ValueWriter(4096, this.dict);
    this.clearPending();
  }

  private async loadFromDisk(version: number): Promise<void> {
    if (!Number.isInteger(version) || version < 0) throw new RangeError(`state version must be an integer >= 0, got ${version}`);
    if (this.committing) throw new Error(`state store ${this.dir}: load while a commit is running`);
    this.resetAll();
    if (version > 0) {
      const files = await listStateFiles(this.dir);
      let base = 0;
      for (const s of files.snapshots) if (s <= version) base = s;
      for (let v = base + 1; v <= version; v++) {
        if (!files.deltas.has(v)) {
          throw new SluiceError('CHECKPOINT_MISSING',
            `cannot load state version ${version} from ${this.dir}: ${this.deltaFile(v)} is missing ` +
            (base > 0 ? `(newest snapshot at or before it: ${base})` : '(and there is no snapshot before it)'),
            'the state files were deleted or purged past this version; restore the checkpoint directory from a ' +
            'backup, or delete it to start the query over');
        }
      }
      if (base > 0) await this.readFile(this.snapshotFile(base), KIND_SNAPSHOT, base);
      for (let v = base + 1; v <= version; v++) await this.readFile(this.deltaFile(v), KIND_DELTA, v);
      this.minTimeout = -Infinity;
    }
    this._version = version;
  }

  private async readFile(file: string, kind: number, version: number): Promise<void> {
    const { data } = await readVersionedRaw(file, { maxVersion: STATE_FILE_FORMAT_VERSION });
    try {
      if (data.length < 9) throw new Error('it is too short to be a state file');
      const stored = data.readUInt32LE(data.length - 4);
      if (crc32(data.subarray(0, data.length - 4)) !== stored) {
        throw new Error('its checksum does not match (a torn write or damaged bytes)');
      }
      const r = new ValueReader(data, [], 0, data.length - 4);
      if (r.uint32() !== MAGIC) throw new Error('it is not a sluice state file');
      const fileKind = r.byte();
      if (fileKind !== kind) {
        throw new Error(`it holds a ${fileKind === KIND_SNAPSHOT ? 'snapshot' : 'delta'} where a ` +
          `${kind === KIND_SNAPSHOT ? 'snapshot' : 'delta'} belongs`);
      }
      const fileVersion = r.varint();
      if (fileVersion !== version) throw new Error(`it holds state version ${fileVersion}, not ${version}`);
      const names: string[] = [];
      const numNames = r.varint32();
      for (let i = 0; i < numNames; i++) names.push(r.lengthPrefixedString());
      r.setNames(names);
      if (kind === KIND_SNAPSHOT) this.readSnapshotBody(r, data, names);
      else this.readDeltaBody(r, data, names);
      if (r.pos !== r.end) throw new Error(`${r.end - r.pos} unexpected bytes after the last entry`);
    } catch (err) {
      this.resetAll();
      if (err instanceof SluiceError) throw err;
      throw corruptCheckpointFile(file, (err as Error).message, err);
    }
  }

  private readSnapshotBody(r: ValueReader, data: Buffer, names: string[]): void {
    this.dict.adopt(names);
    const n = r.uint32();
    const recordBytes = r.varint();
    const start = r.pos;
    if (recordBytes > r.end - start || n > recordBytes) throw new Error('its record section is cut short');
    // The records become the arena as they are: one copy, then one hash per key to index them.
    this.arena = new ValueWriter(Math.ceil(recordBytes * 1.06) + 4096, this.dict, false, GROWTH);
    this.arena.raw(data, start, start + recordBytes);
    this.growSlots(Math.max(MIN_SLOTS, Math.ceil(n * 1.06)));
    this.table = new Int32Array(nextPowerOfTwo(Math.ceil((n * 4) / 3) + 1));
    const arena = this.arena.buf;
    const table = this.table;
    const mask = table.length - 1;
    const hashes = this.hashes;
    const recOff = this.recOff;
    let off = 0;
    for (let slot = 0; slot < n; slot++) {
      const klen = this.keyLengthAt(off);
      if (off + klen > recordBytes) throw new Error('its record section is cut short');
      const h = murmur3Bytes(arena, off, off + klen, INDEX_SEED) | 0;
      let i = h & mask;
      for (let e = table[i]; e !== 0; e = table[i]) {
        if (hashes[e - 1] === h && arena.subarray(recOff[e - 1], recOff[e - 1] + klen).every((b, j) => b === arena[off + j])) {
          throw new Error(`key ${JSON.stringify(String(this.readKeyAt(off)))} appears twice`);
        }
        i = (i + 1) & mask;
      }
      table[i] = slot + 1;
      hashes[slot] = h;
      recOff[slot] = off;
      off = this.valueEnd(arena, off + klen, recordBytes);
    }
    if (off !== recordBytes) throw new Error('its record section does not match its key count');
    this.slotCount = n;
    this.count = n;
    r.pos = start + recordBytes;
    if (r.byte() === 1) {
      const timeouts = this.grownTimeouts(this.recOff.length);
      for (let slot = 0; slot < n; slot++) timeouts[slot] = r.float64();
      this.timeouts = timeouts;
    }
  }

  private readDeltaBody(r: ValueReader, data: Buffer, names: string[]): void {
    const sameIds = this.dict.adopt(names);
    const n = r.uint32();
    let scratch: ValueWriter | null = null;
    for (let i = 0; i < n; i++) {
      const op = r.byte();
      const kstart = r.pos;
      r.skip();
      const klen = r.pos - kstart;
      const h = murmur3Bytes(data, kstart, kstart + klen, INDEX_SEED) | 0;
      const slot = this.findSlot(h, data, kstart, klen);
      if (op === OP_REMOVE) {
        if (slot < 0) throw new Error(`it removes a key that is not in the state (${data.toString('latin1', kstart, kstart + klen)})`);
        this.removeSlot(slot);
        continue;
      }
      if (op !== OP_PUT && op !== OP_PUT_WITH_TIMEOUT) throw new Error(`unknown entry type ${op}`);
      let src: Uint8Array = data;
      let vstart = r.pos;
      let vend: number;
      if (sameIds) {
        r.skip();
        vend = r.pos;
      } else {
        // The file numbered field names differently from this store: re-encode with the store's ids.
        const value = r.read();
        scratch ??= new ValueWriter(256, this.dict);
        scratch.reset();
        scratch.write(value);
        src = scratch.buf;
        vstart = 0;
        vend = scratch.pos;
      }
      const timeout = op === OP_PUT_WITH_TIMEOUT ? r.float64() : -1;
      if (slot >= 0) this.update(slot, src, vstart, vend, timeout);
      else this.insert(h, data, kstart, klen, src, vstart, vend, timeout);
    }
  }
}
