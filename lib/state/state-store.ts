/**
 * The versioned state store of one stateful operator's state partition.
 *
 * Version N is the state after batch N (version 0 is empty). Committing version N writes
 * `<dir>/<N>.delta` (the puts and removes of batch N) and, every `snapshotInterval` versions, also
 * `<dir>/<N>.snapshot` (the whole state). Loading version N reads the newest snapshot at or before N
 * and applies the deltas after it, so recovery time is bounded by the interval, not the stream length.
 *
 * Memory layout (why it is not a Map of objects): keys sit in a Map from key to slot number; values are
 * kept encoded (see value-codec.ts) in one byte arena addressed by slot, timeouts in a Float64Array
 * by slot. A running sum `{sum: number}` under a 7-char key costs ~80 bytes instead of ~110, loading a
 * snapshot copies the value section into the arena in one piece, and `get` returns a fresh object, so
 * callers cannot change committed state by mutating what they read.
 *
 * Changes made since the last commit are kept apart (in a pending area) until {@link StateStore.commit};
 * {@link StateStore.abort} drops them, leaving the store at its version, ready for a replay of the batch.
 *
 * Determinism: nothing observable depends on history (slot reuse, Map insertion order, file layout):
 * {@link StateStore.keysWithTimeoutAtOrBefore} and {@link StateStore.sortedEntries} order by timeout and
 * by the canonical key encoding, which are the same after a reload as in an uninterrupted run.
 */
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { crc32 } from 'node:zlib';
import { SluiceError } from '../errors.js';
import { isTempFileName } from '../checkpoint/atomic-file.js';
import { corruptCheckpointFile, readVersionedRaw, writeVersionedRaw } from '../checkpoint/versioned-file.js';
import {
  FieldDictionary, T_SHORT_STRING, ValueReader, ValueWriter, decodeKeyString, encodeKeyString,
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

/** Arena garbage is reclaimed once it exceeds both this and half the live bytes. */
const MIN_GARBAGE_TO_COMPACT = 1 << 20;

/** File and pending buffers bigger than this are dropped after a commit rather than kept for the next. */
const SCRATCH_KEEP_BYTES = 1 << 20;

/** Rough V8 cost of one Map entry plus the slot's array cell, measured on Node 20 (bench/state-store.ts). */
const ENTRY_OVERHEAD_BYTES = 45;

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
  /** Estimated bytes the store holds in memory (keys, values, index, timeouts). */
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

/** Key kinds: a primitive key is its own Map key; any other key is keyed by its canonical encoding. */
type MapKey = string | number;

function isPrimitiveKey(key: unknown): key is MapKey {
  return typeof key === 'string' || typeof key === 'number';
}

function latin1Bytes(s: string): Buffer {
  return Buffer.from(s, 'latin1');
}

function stringHeapBytes(s: string): number {
  return 16 + ((s.length + 7) & ~7);
}

function keyHeapBytes(key: MapKey): number {
  if (typeof key === 'string') return stringHeapBytes(key);
  return (key | 0) === key ? 0 : 16;
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

  // Committed state, by slot.
  private readonly index = new Map<MapKey, number>();
  private readonly encIndex = new Map<string, number>();
  /** The Map key of each slot (for encoded keys, the latin1 encoding); undefined when free. */
  private slotKeys: MapKey[] = [];
  /** 1 when the slot's key lives in encIndex. */
  private slotEncoded = new Uint8Array(1024);
  /** Arena offset of each slot's value; -1 when the slot is free. */
  private valueOffset = new Int32Array(1024).fill(-1);
  /** Timeout of each slot, -1 for none; null until some key has a timeout. */
  private timeouts: Float64Array | null = null;
  /** Lower bound of all committed timeouts: a scan is skipped when the asked time is below it. */
  private minTimeout = Infinity;
  private freeSlots: number[] = [];
  private slotCount = 0;
  private count = 0;
  private keyBytes = 0;
  private arena = new ValueWriter(4096, this.dict);
  private garbage = 0;

  // Uncommitted changes: the Map key → an index into the pending arrays.
  private readonly pIndex = new Map<MapKey, number>();
  private readonly pEncIndex = new Map<string, number>();
  /** Offset of the pending value in `pending`, or -1 for a pending remove. */
  private pOffset: number[] = [];
  private pTimeout: number[] = [];
  private pending = new ValueWriter(4096, this.dict);
  private sizeDelta = 0;

  private readonly reader = new ValueReader(new Uint8Array(0));
  private fileWriter = new ValueWriter(1 << 16, null, true);
  private committing = false;

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
    const prim = isPrimitiveKey(key);
    const mk = prim ? key : encodeKeyString(key);
    if (this.pOffset.length > 0) {
      const p = prim ? this.pIndex.get(mk) : this.pEncIndex.get(mk as string);
      if (p !== undefined) return this.pOffset[p] < 0 ? undefined : this.readPending(p) as V;
    }
    const slot = prim ? this.index.get(mk) : this.encIndex.get(mk as string);
    return slot === undefined ? undefined : this.readSlot(slot) as V;
  }

  /** Whether `key` has a value. */
  has(key: K): boolean {
    const prim = isPrimitiveKey(key);
    const mk = prim ? key : encodeKeyString(key);
    const p = prim ? this.pIndex.get(mk) : this.pEncIndex.get(mk as string);
    if (p !== undefined) return this.pOffset[p] >= 0;
    return (prim ? this.index.get(mk) : this.encIndex.get(mk as string)) !== undefined;
  }

  /** The timeout timestamp of `key` in ms, or -1 when it has none or is absent. */
  getTimeout(key: K): number {
    const prim = isPrimitiveKey(key);
    const mk = prim ? key : encodeKeyString(key);
    const p = prim ? this.pIndex.get(mk) : this.pEncIndex.get(mk as string);
    if (p !== undefined) return this.pOffset[p] < 0 ? -1 : this.pTimeout[p];
    const slot = prim ? this.index.get(mk) : this.encIndex.get(mk as string);
    return slot === undefined || this.timeouts === null ? -1 : this.timeouts[slot];
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
    const mk = prim ? key : encodeKeyString(key);
    const pmap = prim ? this.pIndex : this.pEncIndex;
    const off = this.pending.pos;
    try {
      this.pending.write(value);
    } catch (err) {
      this.pending.pos = off;
      throw err;
    }
    const p = pmap.get(mk as string);
    if (p === undefined) {
      pmap.set(mk as string, this.pOffset.length);
      this.pOffset.push(off);
      this.pTimeout.push(timeoutMs);
      if ((prim ? this.index.get(mk) : this.encIndex.get(mk as string)) === undefined) this.sizeDelta++;
    } else {
      if (this.pOffset[p] < 0) this.sizeDelta++;
      this.pOffset[p] = off;
      this.pTimeout[p] = timeoutMs;
    }
  }

  /** Removes `key` and its timeout; a no-op when absent. */
  remove(key: K): void {
    const prim = isPrimitiveKey(key);
    const mk = prim ? key : encodeKeyString(key);
    const pmap = prim ? this.pIndex : this.pEncIndex;
    const p = pmap.get(mk as string);
    if (p === undefined) {
      if ((prim ? this.index.get(mk) : this.encIndex.get(mk as string)) === undefined) return;
      pmap.set(mk as string, this.pOffset.length);
      this.pOffset.push(-1);
      this.pTimeout.push(-1);
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
    for (const [key, read] of this.liveEntries()) yield [key, read() as V];
  }

  /** All keys, in the unspecified order of {@link entries}. */
  *keys(): IterableIterator<K> {
    for (const [key] of this.liveEntries()) yield key;
  }

  /**
   * All entries ordered by their keys' canonical encoding: the same order in every run, thread and
   * after any reload (e.g. for complete-mode output). Costs an encode per key and a sort.
   */
  sortedEntries(): Array<[K, V]> {
    const items: Array<{ s: string; key: K; read: () => unknown }> = [];
    for (const [key, read, mk, encoded] of this.liveEntries()) {
      items.push({ s: encoded ? mk as string : encodeKeyString(mk), key, read });
    }
    items.sort((a, b) => (a.s < b.s ? -1 : a.s > b.s ? 1 : 0));
    return items.map((it) => [it.key, it.read() as V]);
  }

  /**
   * Keys whose timeout is set and at or before `timestampMs`, uncommitted changes included, ordered
   * by timeout and then by the canonical key encoding (deterministic across runs and reloads).
   */
  keysWithTimeoutAtOrBefore(timestampMs: number): K[] {
    const due: Array<{ t: number; s: string; key: K }> = [];
    const timeouts = this.timeouts;
    if (timeouts !== null && this.minTimeout <= timestampMs) {
      let min = Infinity;
      const hasPending = this.pOffset.length > 0;
      for (let slot = 0; slot < this.slotCount; slot++) {
        const t = timeouts[slot];
        if (t < 0) continue;
        if (t < min) min = t;
        if (t > timestampMs) continue;
        const mk = this.slotKeys[slot];
        const encoded = this.slotEncoded[slot] === 1;
        if (hasPending && (encoded ? this.pEncIndex.has(mk as string) : this.pIndex.has(mk))) continue;
        due.push({ t, s: encoded ? mk as string : encodeKeyString(mk), key: (encoded ? decodeKeyString(mk as string) : mk) as K });
      }
      this.minTimeout = min;
    }
    const pendingDue = (mk: MapKey, p: number, encoded: boolean): void => {
      const t = this.pTimeout[p];
      if (this.pOffset[p] < 0 || t < 0 || t > timestampMs) return;
      due.push({ t, s: encoded ? mk as string : encodeKeyString(mk), key: (encoded ? decodeKeyString(mk as string) : mk) as K });
    };
    for (const [mk, p] of this.pIndex) pendingDue(mk, p, false);
    for (const [mk, p] of this.pEncIndex) pendingDue(mk, p, true);
    due.sort((a, b) => a.t - b.t || (a.s < b.s ? -1 : a.s > b.s ? 1 : 0));
    return due.map((d) => d.key);
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
          if ((encoded ? this.encIndex.get(mk as string) : this.index.get(mk)) === undefined) return;
          w.byte(OP_REMOVE);
          this.writeKey(w, mk, encoded);
          removed++;
          return;
        }
        const t = this.pTimeout[p];
        w.byte(t >= 0 ? OP_PUT_WITH_TIMEOUT : OP_PUT);
        this.writeKey(w, mk, encoded);
        w.raw(this.pending.buf, off, this.pendingEnd(off));
        if (t >= 0) w.float64(t);
        updated++;
      };
      for (const [mk, p] of this.pIndex) writeEntry(mk, p, false);
      for (const [mk, p] of this.pEncIndex) writeEntry(mk, p, true);
      new DataView(w.buf.buffer).setUint32(countAt, updated + removed, true);
      w.uint32(crc32(w.buf.subarray(0, w.pos)));
      await writeVersionedRaw(this.deltaFile(version), w.buf.subarray(0, w.pos), STATE_FILE_FORMAT_VERSION);

      const pendingBuf = this.pending.buf;
      for (const [mk, p] of this.pIndex) this.applyPending(mk, p, false, pendingBuf);
      for (const [mk, p] of this.pEncIndex) this.applyPending(mk, p, true, pendingBuf);
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

  /** Estimated bytes held in memory: keys, index, value arena, pending changes and timeouts. */
  memoryUsedBytes(): number {
    return this.count * ENTRY_OVERHEAD_BYTES + this.keyBytes + this.arena.buf.length + this.pending.buf.length +
      this.valueOffset.byteLength + this.slotEncoded.byteLength + (this.timeouts?.byteLength ?? 0) +
      this.pOffset.length * 40;
  }

  // ---- internals ----------------------------------------------------------------------------------

  private deltaFile(version: number): string {
    return path.join(this.dir, `${version}.delta`);
  }

  private snapshotFile(version: number): string {
    return path.join(this.dir, `${version}.snapshot`);
  }

  private readSlot(slot: number): unknown {
    const r = this.reader;
    r.setBuffer(this.arena.buf, this.valueOffset[slot], this.arena.pos);
    r.setNames(this.dict.names);
    return r.read();
  }

  private readPending(p: number): unknown {
    const r = this.reader;
    r.setBuffer(this.pending.buf, this.pOffset[p], this.pending.pos);
    r.setNames(this.dict.names);
    return r.read();
  }

  /** End of the encoded value at `off` in the pending buffer. */
  private pendingEnd(off: number): number {
    const r = this.reader;
    r.setBuffer(this.pending.buf, off, this.pending.pos);
    r.skip();
    return r.pos;
  }

  private slotValueLength(slot: number): number {
    const r = this.reader;
    const off = this.valueOffset[slot];
    r.setBuffer(this.arena.buf, off, this.arena.pos);
    r.skip();
    return r.pos - off;
  }

  /** Live entries as [key, value reader, Map key, encoded?]: committed ones not shadowed, then pending puts. */
  private *liveEntries(): IterableIterator<[K, () => unknown, MapKey, boolean]> {
    const hasPending = this.pOffset.length > 0;
    for (let slot = 0; slot < this.slotCount; slot++) {
      if (this.valueOffset[slot] < 0) continue;
      const mk = this.slotKeys[slot];
      const encoded = this.slotEncoded[slot] === 1;
      if (hasPending && (encoded ? this.pEncIndex.has(mk as string) : this.pIndex.has(mk))) continue;
      const key = (encoded ? decodeKeyString(mk as string) : mk) as K;
      yield [key, () => this.readSlot(slot), mk, encoded];
    }
    for (const [mk, p] of [...this.pIndex]) {
      if (this.pOffset[p] >= 0) yield [mk as K, () => this.readPending(p), mk, false];
    }
    for (const [mk, p] of [...this.pEncIndex]) {
      if (this.pOffset[p] >= 0) yield [decodeKeyString(mk) as K, () => this.readPending(p), mk, true];
    }
  }

  private clearPending(): void {
    this.pIndex.clear();
    this.pEncIndex.clear();
    this.pOffset.length = 0;
    this.pTimeout.length = 0;
    this.pending.reset();
    this.sizeDelta = 0;
  }

  /** Gives back file and pending buffers that a big batch or a snapshot grew, so they do not stay as dead weight. */
  private releaseScratch(): void {
    if (this.fileWriter.buf.length > SCRATCH_KEEP_BYTES) this.fileWriter = new ValueWriter(1 << 16, null, true);
    if (this.pending.buf.length > SCRATCH_KEEP_BYTES) this.pending = new ValueWriter(4096, this.dict);
  }

  private allocSlot(): number {
    const free = this.freeSlots.pop();
    if (free !== undefined) return free;
    const slot = this.slotCount++;
    if (slot >= this.valueOffset.length) this.growSlots(Math.max(1024, this.valueOffset.length * 2));
    return slot;
  }

  private growSlots(capacity: number): void {
    const offsets = new Int32Array(capacity).fill(-1);
    offsets.set(this.valueOffset.subarray(0, this.slotCount));
    this.valueOffset = offsets;
    const encoded = new Uint8Array(capacity);
    encoded.set(this.slotEncoded.subarray(0, this.slotCount));
    this.slotEncoded = encoded;
    if (this.timeouts !== null) this.timeouts = this.grownTimeouts(capacity);
  }

  private grownTimeouts(capacity: number): Float64Array {
    const t = new Float64Array(capacity).fill(-1);
    if (this.timeouts !== null) t.set(this.timeouts.subarray(0, Math.min(this.timeouts.length, capacity)));
    return t;
  }

  private setTimeout(slot: number, t: number): void {
    if (t >= 0) {
      if (this.timeouts === null) this.timeouts = this.grownTimeouts(this.valueOffset.length);
      this.timeouts[slot] = t;
      if (t < this.minTimeout) this.minTimeout = t;
    } else if (this.timeouts !== null) {
      this.timeouts[slot] = -1;
    }
  }

  /**
   * Stores the value `src[start, end)` (encoded with the store's dictionary) for a key: overwrites the
   * old value in place when it fits, so steady updates do not grow the arena.
   */
  private putBytes(mk: MapKey, encoded: boolean, src: Uint8Array, start: number, end: number, timeout: number): void {
    const map = encoded ? this.encIndex : this.index;
    let slot = map.get(mk as string);
    const len = end - start;
    if (slot !== undefined) {
      const oldLen = this.slotValueLength(slot);
      if (len <= oldLen) {
        const buf = this.arena.buf;
        let q = this.valueOffset[slot];
        for (let i = start; i < end; i++) buf[q++] = src[i];
        this.garbage += oldLen - len;
      } else {
        this.valueOffset[slot] = this.arena.pos;
        this.arena.raw(src, start, end);
        this.garbage += oldLen;
      }
    } else {
      slot = this.allocSlot();
      map.set(mk as string, slot);
      this.slotKeys[slot] = mk;
      this.slotEncoded[slot] = encoded ? 1 : 0;
      this.valueOffset[slot] = this.arena.pos;
      this.arena.raw(src, start, end);
      this.count++;
      this.keyBytes += keyHeapBytes(mk);
    }
    this.setTimeout(slot, timeout);
  }

  private removeKey(mk: MapKey, encoded: boolean): boolean {
    const map = encoded ? this.encIndex : this.index;
    const slot = map.get(mk as string);
    if (slot === undefined) return false;
    this.garbage += this.slotValueLength(slot);
    map.delete(mk as string);
    this.valueOffset[slot] = -1;
    (this.slotKeys as unknown[])[slot] = undefined;
    if (this.timeouts !== null) this.timeouts[slot] = -1;
    this.freeSlots.push(slot);
    this.count--;
    this.keyBytes -= keyHeapBytes(mk);
    return true;
  }

  private applyPending(mk: MapKey, p: number, encoded: boolean, pendingBuf: Uint8Array): void {
    const off = this.pOffset[p];
    if (off < 0) this.removeKey(mk, encoded);
    else this.putBytes(mk, encoded, pendingBuf, off, this.pendingEnd(off), this.pTimeout[p]);
  }

  /** Rewrites the arena without garbage once garbage outweighs half the live values. */
  private maybeCompact(): void {
    const live = this.arena.pos - this.garbage;
    if (this.garbage < MIN_GARBAGE_TO_COMPACT || this.garbage < live / 2) return;
    const next = new ValueWriter(Math.ceil(live * 1.25) + 1024, this.dict);
    const old = this.arena.buf;
    for (let slot = 0; slot < this.slotCount; slot++) {
      const off = this.valueOffset[slot];
      if (off < 0) continue;
      const len = this.slotValueLength(slot);
      this.valueOffset[slot] = next.pos;
      next.raw(old, off, off + len);
    }
    this.arena = next;
    this.garbage = 0;
  }

  private writeKey(w: ValueWriter, mk: MapKey, encoded: boolean): void {
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

  private async writeSnapshot(version: number): Promise<void> {
    const w = this.fileWriter;
    w.reset();
    this.writeHeader(w, KIND_SNAPSHOT, version);
    w.uint32(this.count);
    const lengths = new Int32Array(this.slotCount);
    let valueBytes = 0;
    for (let slot = 0; slot < this.slotCount; slot++) {
      if (this.valueOffset[slot] < 0) continue;
      this.writeKey(w, this.slotKeys[slot], this.slotEncoded[slot] === 1);
      lengths[slot] = this.slotValueLength(slot);
      valueBytes += lengths[slot];
    }
    w.varint(valueBytes);
    w.ensure(valueBytes);
    const arena = this.arena.buf;
    for (let slot = 0; slot < this.slotCount; slot++) {
      const off = this.valueOffset[slot];
      if (off >= 0) w.raw(arena, off, off + lengths[slot]);
    }
    const timeouts = this.timeouts;
    w.byte(timeouts === null ? 0 : 1);
    if (timeouts !== null) {
      w.ensure(this.count * 8);
      for (let slot = 0; slot < this.slotCount; slot++) if (this.valueOffset[slot] >= 0) w.float64(timeouts[slot]);
    }
    w.uint32(crc32(w.buf.subarray(0, w.pos)));
    await writeVersionedRaw(this.snapshotFile(version), w.buf.subarray(0, w.pos), STATE_FILE_FORMAT_VERSION);
  }

  private resetAll(): void {
    this._version = -1;
    this.dict = new FieldDictionary();
    this.index.clear();
    this.encIndex.clear();
    this.slotKeys = [];
    this.slotEncoded = new Uint8Array(1024);
    this.valueOffset = new Int32Array(1024).fill(-1);
    this.timeouts = null;
    this.minTimeout = Infinity;
    this.freeSlots = [];
    this.slotCount = 0;
    this.count = 0;
    this.keyBytes = 0;
    this.arena = new ValueWriter(4096, this.dict);
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
      if (fileKind !== kind) throw new Error(`it holds a ${fileKind === KIND_SNAPSHOT ? 'snapshot' : 'delta'} where a ${kind === KIND_SNAPSHOT ? 'snapshot' : 'delta'} belongs`);
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

  /** Reads a canonical key; returns its Map key and sets `lastKeyEncoded`. */
  private readKey(r: ValueReader, data: Buffer): MapKey {
    const start = r.pos;
    const key = r.read();
    if (isPrimitiveKey(key)) {
      this.lastKeyEncoded = false;
      return key;
    }
    this.lastKeyEncoded = true;
    return data.toString('latin1', start, r.pos);
  }

  private lastKeyEncoded = false;

  private readSnapshotBody(r: ValueReader, data: Buffer, names: string[]): void {
    this.dict.adopt(names);
    const n = r.uint32();
    if (n > r.end - r.pos) throw new Error(`it claims ${n} keys, more than its size allows`);
    const capacity = Math.max(1024, Math.ceil(n * 1.25));
    this.growSlots(capacity);
    const slotKeys: MapKey[] = new Array(n);
    const index = this.index;
    const slices = data as Buffer & { latin1Slice(start: number, end: number): string };
    let keyBytes = 0;
    for (let slot = 0; slot < n; slot++) {
      // Fast path for the common key, a short ASCII string: no generic decode, no dispatch.
      const p = r.pos;
      const tag = data[p];
      if (tag >= T_SHORT_STRING && tag < T_SHORT_STRING + 64) {
        const end = p + 1 + tag - T_SHORT_STRING;
        let ascii = end <= r.end;
        for (let i = p + 1; ascii && i < end; i++) ascii = data[i] < 0x80;
        if (ascii) {
          const mk = slices.latin1Slice(p + 1, end);
          r.pos = end;
          index.set(mk, slot);
          slotKeys[slot] = mk;
          keyBytes += stringHeapBytes(mk);
          continue;
        }
      }
      const mk = this.readKey(r, data);
      const encoded = this.lastKeyEncoded;
      (encoded ? this.encIndex : index).set(mk as string, slot);
      slotKeys[slot] = mk;
      if (encoded) this.slotEncoded[slot] = 1;
      keyBytes += keyHeapBytes(mk);
    }
    if (index.size + this.encIndex.size !== n) throw new Error(`it lists ${n} keys but only ${index.size + this.encIndex.size} distinct ones`);
    this.keyBytes = keyBytes;
    this.slotKeys = slotKeys;
    this.slotCount = n;
    this.count = n;
    const valueBytes = r.varint();
    const start = r.pos;
    const end = start + valueBytes;
    if (end > r.end) throw new Error('its value section is cut short');
    this.arena = new ValueWriter(Math.ceil(valueBytes * 1.25) + 4096, this.dict);
    this.arena.raw(data, start, end);
    const vr = new ValueReader(this.arena.buf, names, 0, valueBytes);
    for (let slot = 0; slot < n; slot++) {
      this.valueOffset[slot] = vr.pos;
      vr.skip();
    }
    if (vr.pos !== valueBytes) throw new Error('its value section does not match its keys');
    r.pos = end;
    if (r.byte() === 1) {
      const timeouts = this.grownTimeouts(this.valueOffset.length);
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
      const mk = this.readKey(r, data);
      const encoded = this.lastKeyEncoded;
      if (op === OP_REMOVE) {
        if (!this.removeKey(mk, encoded)) throw new Error(`it removes key ${JSON.stringify(String(mk))}, which is not in the state`);
        continue;
      }
      if (op !== OP_PUT && op !== OP_PUT_WITH_TIMEOUT) throw new Error(`unknown entry type ${op}`);
      const start = r.pos;
      if (sameIds) {
        r.skip();
        const end = r.pos;
        this.putBytes(mk, encoded, data, start, end, op === OP_PUT_WITH_TIMEOUT ? r.float64() : -1);
      } else {
        // The file numbered field names differently from this store: re-encode with the store's ids.
        const value = r.read();
        scratch ??= new ValueWriter(256, this.dict);
        scratch.reset();
        scratch.write(value);
        this.putBytes(mk, encoded, scratch.buf, 0, scratch.pos, op === OP_PUT_WITH_TIMEOUT ? r.float64() : -1);
      }
    }
  }
}
