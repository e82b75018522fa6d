/**
 * The changes to a state store since its last commit. They stay apart from committed state until the
 * commit applies them, so that aborting a batch only has to drop them and the store is back at its
 * version, ready for a replay.
 *
 * Change `p` is a row across parallel typed arrays (value offset, timeout, committed slot, key) rather than
 * an object, and keys that are not primitive are looked up by their canonical encoding in a byte buffer of their
 * own through an open-addressing table, int32 keys through a table of their own: a batch that puts many new
 * composite or integer keys (an aggregation by two columns, a session per user id) allocates no string, Map entry
 * or array cell per key, and the tables are reused by the next batch.
 *
 * Each change is encoded into one byte buffer as the entry the delta file holds for it (entry type, key, value,
 * timeout), so that the delta file is that buffer as it is, less the entries later changes of the same key
 * replaced, and a commit of mostly new keys can hand the buffer to committed state instead of copying each
 * record: every record's bytes are written once.
 */
import { grown } from '../util/grown.js';
import { indexHash } from './arena-hash-map.js';
import { fmix32 } from './state-partitioner.js';
import { decode, encodeKeyString, type FieldDictionary, Latin1View, ValueReader, ValueWriter } from './value-codec.js';

/** Entry types of a delta file: a remove is the type and the key; a put adds the value, and its timeout if any. */
export const OP_REMOVE = 0;
export const OP_PUT = 1;
export const OP_PUT_WITH_TIMEOUT = 2;

/** Rough heap cost of one primitive key's Map entry, for the memory estimate. */
const ENTRY_BYTES = 48;
/** Bytes of one change's row across the typed arrays. */
const CHANGE_ROW_BYTES = 36;
/** Initial capacity of the change rows and of the encoded keys' table. */
const MIN_CHANGES = 256;
const MIN_TABLE = 512;
/** The delta file is written from at most this many runs of the entry buffer, else from one copy of them. */
const MAX_DELTA_RUNS = 64;
/** A scratch buffer up to this size is always kept for the next commit. */
const SCRATCH_KEEP_BYTES = 1 << 20;
/** A bigger one is kept while commits fill at least this inverse share of it. */
const SCRATCH_KEEP_SHARE = 4;

/**
 * How a change is looked up: by the key itself when primitive (no encoding needed), else by its
 * canonical encoding as a latin1 string.
 */
export type PendingKey = string | number;

/** A key's canonical encoding, `bytes[0, length)`, with its {@link indexHash}: how a store that has just encoded a key looks it up. */
export interface EncodedKey {
  bytes: Uint8Array;
  length: number;
  hash: number;
}

/**
 * Whether a commit's scratch buffer of `capacity` bytes, of which it used `used`, is dead weight to drop: one that
 * commits of about its size keep filling is kept, because fresh pages cost more to touch than pages in use.
 */
export function isDeadWeight(capacity: number, used: number): boolean {
  return capacity > SCRATCH_KEEP_BYTES && used * SCRATCH_KEEP_SHARE < capacity;
}

/** Whether `key` serves as its own {@link PendingKey}. */
export function isPrimitiveKey(key: unknown): key is PendingKey {
  return typeof key === 'string' || typeof key === 'number';
}

/** Throws RangeError unless `timeoutMs` is -1 (none) or a timestamp in ms a state store can hold. */
export function checkTimeout(timeoutMs: number): void {
  if (timeoutMs !== -1 && !(timeoutMs >= 0 && timeoutMs <= Number.MAX_SAFE_INTEGER)) {
    throw new RangeError(`state timeout must be -1 (none) or a timestamp in ms >= 0, got ${timeoutMs}`);
  }
}

/** Whether `pk` is an int32 (-0 as 0, as a Map takes it): a key the int table of {@link PendingChanges} holds. */
function isIntKey(pk: PendingKey | EncodedKey): pk is number {
  return typeof pk === 'number' && (pk | 0) === pk;
}

/** The puts and removes of one batch, by key; the last change of a key replaces its earlier ones. */
export class PendingChanges {
  /** Changes of primitive keys other than int32 ones (see intTable), by the key. */
  private readonly byKey = new Map<PendingKey, number>();
  /**
   * Changes of int32 keys: pairs (change + 1, key) per bucket, 0 = empty, linear probing, at most half full. A
   * batch of a million new integer keys then neither grows a Map entry by entry nor follows its chains through
   * memory: a probe reads one pair.
   */
  private intTable = new Int32Array(2 * MIN_TABLE);
  private intCount = 0;
  /** Changes of encoded keys: change + 1 per bucket, 0 = empty; linear probing, at most half full. */
  private table: Int32Array = new Int32Array(MIN_TABLE);
  private encodedCount = 0;
  private count = 0;
  /** Offset of each change's value in {@link values}, or -1 for a remove. */
  offset: Int32Array = new Int32Array(MIN_CHANGES);
  /** Where each change's entry starts in {@link values}, or -1 for a remove of a key not in committed state (no entry). */
  entry: Int32Array = new Int32Array(MIN_CHANGES);
  /** Where each change's entry ends in {@link values}. */
  private entryEnd: Int32Array = new Int32Array(MIN_CHANGES);
  /** Timeout of each change, -1 for none. */
  timeout: Float64Array = new Float64Array(MIN_CHANGES);
  /** The committed slot of each change's key (-1: none); valid until commit, as committed state does not change before. */
  slot: Int32Array = new Int32Array(MIN_CHANGES);
  /** Where each change's key encoding starts in {@link keyBytes}, or -1 when the key is primitive. */
  private keyOffset: Int32Array = new Int32Array(MIN_CHANGES);
  /** The length of each change's key encoding (encoded keys only). */
  private keyLength: Int32Array = new Int32Array(MIN_CHANGES);
  /** The {@link indexHash} of each change's key encoding (encoded keys only). */
  keyHash: Int32Array = new Int32Array(MIN_CHANGES);
  /** The encodings of the changes' keys that are not primitive. */
  private keyBytes: Uint8Array = new Uint8Array(4096);
  private keyEnd = 0;
  /** The key of each change whose key is primitive. */
  private readonly primitive: PendingKey[] = [];
  /**
   * The changes' delta entries, values encoded with the store's dictionary so that a commit copies their bytes
   * as they are; the ranges in {@link dead} hold entries that later changes replaced.
   */
  values: ValueWriter;
  /** Start and end of each replaced entry in {@link values}, in pairs. */
  private dead: Int32Array = new Int32Array(32);
  private deadCount = 0;
  /** A primitive key's canonical encoding, to be copied into its entry. */
  private readonly keyWriter = new ValueWriter(64, null, true);
  /** Keys added minus keys removed by the changes. */
  sizeDelta = 0;
  /** Bytes of values the changes before the last {@link clear} held. */
  private lastValueBytes = 0;
  /** Bytes of entries {@link takeEntries} handed over since the last {@link clear}. */
  private takenBytes = 0;
  private readonly reader = new ValueReader(new Uint8Array(0));
  private readonly latin1 = new Latin1View();
  /** A latin1 key encoding given as a string, as bytes. */
  private readonly scratch: EncodedKey = { bytes: new Uint8Array(256), length: 0, hash: 0 };

  constructor(private readonly dict: FieldDictionary) {
    this.values = new ValueWriter(4096, dict);
  }

  /** Number of changes. */
  get length(): number {
    return this.count;
  }

  /**
   * The earliest timeout of the keys these changes put, or Infinity when none has one; with `hidden`, of the
   * changes it does not hide (asked only of a change whose timeout would be the earliest so far).
   */
  earliestTimeout(hidden?: (p: number) => boolean): number {
    let min = Infinity;
    for (let p = 0; p < this.count; p++) {
      const t = this.timeout[p];
      if (this.offset[p] >= 0 && t >= 0 && t < min && !hidden?.(p)) min = t;
    }
    return min;
  }

  /** The change of key `pk` (encoded: its encoding, as a latin1 string or as bytes), or -1. */
  find(pk: PendingKey | EncodedKey, encoded: boolean): number {
    if (!encoded) {
      if (isIntKey(pk)) return this.findInt(pk);
      return this.byKey.get(pk as PendingKey) ?? -1;
    }
    const k = this.encodedKey(pk);
    const table = this.table;
    const mask = table.length - 1;
    const bytes = this.keyBytes;
    for (let i = k.hash & mask; ; i = (i + 1) & mask) {
      const e = table[i];
      if (e === 0) return -1;
      const p = e - 1;
      if (this.keyHash[p] !== k.hash || this.keyLength[p] !== k.length) continue;
      const off = this.keyOffset[p];
      let j = 0;
      while (j < k.length && bytes[off + j] === k.bytes[j]) j++;
      if (j === k.length) return p;
    }
  }

  /**
   * Records a put of `value` (encoded now, so later mutation of the object does not leak in) with
   * `timeout`, for key `pk` whose change is `p` (-1: none yet) and whose committed slot is `slot`.
   */
  put(p: number, pk: PendingKey | EncodedKey, encoded: boolean, slot: number, value: unknown, timeout: number): void {
    const values = this.values;
    const start = values.pos;
    let off: number;
    try {
      values.byte(timeout >= 0 ? OP_PUT_WITH_TIMEOUT : OP_PUT);
      this.writeEntryKey(pk, encoded);
      off = values.pos;
      values.write(value);
      if (timeout >= 0) values.float64(timeout);
    } catch (err) {
      values.pos = start;
      throw err;
    }
    const end = values.pos;
    if (p < 0) {
      this.add(pk, encoded, off, timeout, slot, start, end);
      if (slot < 0) this.sizeDelta++;
      return;
    }
    const oldStart = this.entry[p];
    if (this.offset[p] < 0) this.sizeDelta++;
    else if (end - start === this.entryEnd[p] - oldStart) {
      // Overwrite the key's entry of the same length from earlier in this batch, so steady per-row updates do
      // not grow the buffer. Only an entry of the same length: the delta file holds entries back to back.
      const buf = values.buf;
      for (let i = start, q = oldStart; i < end; i++) buf[q++] = buf[i];
      values.pos = start;
      this.timeout[p] = timeout;
      return;
    }
    if (oldStart >= 0) this.markDead(p);
    this.entry[p] = start;
    this.entryEnd[p] = end;
    this.offset[p] = off;
    this.timeout[p] = timeout;
  }

  /** Records a remove of key `pk` whose change is `p` (-1: none yet) and whose committed slot is `slot`. */
  remove(p: number, pk: PendingKey | EncodedKey, encoded: boolean, slot: number): void {
    if (p < 0) {
      if (slot < 0) return;
      const start = this.values.pos;
      this.writeRemoveEntry(pk, encoded);
      this.add(pk, encoded, -1, -1, slot, start, this.values.pos);
      this.sizeDelta--;
    } else if (this.offset[p] >= 0) {
      this.markDead(p);
      if (this.slot[p] >= 0) {
        this.entry[p] = this.values.pos;
        this.writeRemoveEntry(pk, encoded);
        this.entryEnd[p] = this.values.pos;
      } else this.entry[p] = -1;
      this.offset[p] = -1;
      this.timeout[p] = -1;
      this.sizeDelta--;
    }
  }

  /**
   * The delta file's entries, in order: {@link values} in runs between the replaced entries. Returns how many
   * entries there are (removes and puts) and the runs, views of {@link values}.
   */
  deltaEntries(): { count: number; runs: Uint8Array[] } {
    let count = 0;
    for (let p = 0; p < this.count; p++) if (this.entry[p] >= 0) count++;
    const buf = this.values.buf;
    const runs: Uint8Array[] = [];
    const starts = Array.from({ length: this.deadCount }, (_, i) => i).sort(
      (a, b) => this.dead[2 * a] - this.dead[2 * b],
    );
    let at = 0;
    for (const i of starts) {
      if (this.dead[2 * i] > at) runs.push(buf.subarray(at, this.dead[2 * i]));
      at = this.dead[2 * i + 1];
    }
    if (this.values.pos > at) runs.push(buf.subarray(at, this.values.pos));
    if (runs.length <= MAX_DELTA_RUNS) return { count, runs };
    // Many replaced entries (keys put again and again at other lengths): one copy beats a write call per run.
    const joined = new Uint8Array(runs.reduce((n, r) => n + r.length, 0));
    let to = 0;
    for (const r of runs) {
      joined.set(r, to);
      to += r.length;
    }
    return { count, runs: [joined] };
  }

  /**
   * Hands over the entries' bytes (which the caller now owns: committed state adopts them) and starts the next
   * batch in a new buffer of the same size, which a batch like this one fills without growing it step by step.
   */
  takeEntries(): Uint8Array {
    const bytes = this.values.buf.subarray(0, this.values.pos);
    this.values = new ValueWriter(Math.max(4096, bytes.length), this.dict);
    this.takenBytes = bytes.length;
    return bytes;
  }

  /** The value put by change `p` (a fresh copy), or undefined for a remove. */
  value(p: number): unknown {
    const off = this.offset[p];
    if (off < 0) return undefined;
    const r = this.reader;
    r.setBuffer(this.values.buf, off, this.values.pos);
    r.setNames(this.dict.names);
    return r.read();
  }

  /**
   * End of the value put by change `p` (not a remove) in {@link values}: where its entry ends, or with a timeout
   * where the timeout's 8 bytes (float64, little-endian) start. Found without decoding the value.
   */
  valueEndOf(p: number): number {
    return this.timeout[p] >= 0 ? this.entryEnd[p] - 8 : this.entryEnd[p];
  }

  /** Whether the key of change `p` is held as its encoding (in {@link keyBytes}) rather than as itself. */
  isEncoded(p: number): boolean {
    return this.keyOffset[p] >= 0;
  }

  /** The {@link PendingKey} of change `p`: the key itself when primitive, else its encoding as a latin1 string. */
  pendingKey(p: number): PendingKey {
    return this.isEncoded(p) ? this.sortKey(p) : this.primitive[p];
  }

  /** The key of change `p`. */
  keyOf(p: number): unknown {
    const off = this.keyOffset[p];
    return off >= 0 ? decode(this.keyBytes.subarray(off, off + this.keyLength[p])) : this.primitive[p];
  }

  /** The key of change `p` as its canonical encoding in latin1, which orders keys by their bytes. */
  sortKey(p: number): string {
    const off = this.keyOffset[p];
    return off >= 0
      ? this.latin1.slice(this.keyBytes, off, off + this.keyLength[p])
      : encodeKeyString(this.primitive[p]);
  }

  /**
   * Writes the canonical encoding of the key of change `p`: copied from its delta entry, which holds it after
   * the entry type, rather than a primitive key encoded again.
   */
  writeKey(w: ValueWriter, p: number): void {
    const off = this.keyOffset[p];
    const at = this.entry[p];
    if (off >= 0) w.raw(this.keyBytes, off, off + this.keyLength[p]);
    else if (at >= 0) w.raw(this.values.buf, at + 1, this.offset[p] >= 0 ? this.offset[p] : this.entryEnd[p]);
    else w.write(this.primitive[p]);
  }

  /**
   * Takes change `p` of `later` (changes made after these, with the same field dictionary) over this set's change `q`
   * of the same key (-1: it has none), so that this set holds both sets' net effect on the state these started from;
   * `later` judged a key's existence by that effect, so its slot of a key new to this set is the key's slot in that
   * state. Returns this set's change of the key, or -1 when it has none (a key put and removed again by `later`
   * alone). The entry's bytes are copied as they are; a remove keeps no entry, as these changes are applied, never
   * written as a delta.
   */
  merge(later: PendingChanges, p: number, q: number): number {
    const at = later.entry[p];
    if (at < 0) return -1;
    const put = later.offset[p] >= 0;
    if (q < 0) {
      if (later.keyOffset[p] >= 0) {
        const k = this.scratch;
        const n = later.keyLength[p];
        if (k.bytes.length < n) k.bytes = new Uint8Array(2 * n);
        k.bytes.set(later.keyBytes.subarray(later.keyOffset[p], later.keyOffset[p] + n));
        k.length = n;
        k.hash = later.keyHash[p];
        this.add(k, true, -1, -1, later.slot[p], -1, -1);
      } else this.add(later.primitive[p], false, -1, -1, later.slot[p], -1, -1);
      q = this.count - 1;
      // A remove with an entry is of a key the state held, which is then committed (these changes have none of it).
      if (!put) this.sizeDelta--;
      else if (later.slot[p] < 0) this.sizeDelta++;
    } else if (this.offset[q] >= 0 && !put) this.sizeDelta--;
    else if (this.offset[q] < 0 && put) this.sizeDelta++;
    this.timeout[q] = later.timeout[p];
    if (!put) {
      this.offset[q] = this.entry[q] = this.entryEnd[q] = -1;
      return q;
    }
    const end = later.entryEnd[p];
    const src = later.values.buf;
    let start = this.entry[q];
    // An entry of the same length is overwritten where it is, so steady updates of a key do not grow the buffer.
    if (start < 0 || this.entryEnd[q] - start !== end - at) {
      start = this.values.pos;
      this.values.raw(src, at, end);
    } else this.values.buf.set(src.subarray(at, end), start);
    this.entry[q] = start;
    this.entryEnd[q] = start + end - at;
    this.offset[q] = start + later.offset[p] - at;
    return q;
  }

  /** A mark per committed slot (below `slotCount`) that a change overrides; null when there are no changes. */
  shadowedSlots(slotCount: number): Uint8Array | null {
    if (this.count === 0) return null;
    const shadowed = new Uint8Array(slotCount);
    for (let p = 0; p < this.count; p++) if (this.slot[p] >= 0) shadowed[this.slot[p]] = 1;
    return shadowed;
  }

  /** Drops every change. */
  clear(): void {
    this.byKey.clear();
    const ints = this.intTable;
    if (ints.length > 2 * MIN_TABLE && this.intCount * 16 < ints.length) this.intTable = new Int32Array(2 * MIN_TABLE);
    else if (this.intCount > 0) ints.fill(0);
    this.intCount = 0;
    // A table that a big batch grew and this one used little of is given back rather than cleared.
    if (this.table.length > MIN_TABLE && this.encodedCount * 8 < this.table.length)
      this.table = new Int32Array(MIN_TABLE);
    else if (this.encodedCount > 0) this.table.fill(0);
    this.encodedCount = 0;
    this.count = 0;
    this.keyEnd = 0;
    this.deadCount = 0;
    this.primitive.length = 0;
    this.lastValueBytes = Math.max(this.values.pos, this.takenBytes);
    this.takenBytes = 0;
    this.values.reset();
    this.sizeDelta = 0;
  }

  /** Gives back a value buffer that a big batch grew and the last one left mostly unused, so it does not stay as dead weight. */
  releaseScratch(): void {
    if (isDeadWeight(this.values.buf.length, this.lastValueBytes)) this.values = new ValueWriter(4096, this.dict);
  }

  /**
   * The bytes of the changes' delta entries (with `newKeysOnly`, of the puts of keys not in committed state): what
   * a commit reserves at once in the arena instead of growing it step by step, each step a copy that touches
   * fresh pages, and what tells it whether a batch mostly adds keys.
   */
  recordBytes(newKeysOnly: boolean): number {
    let bytes = 0;
    for (let p = 0; p < this.count; p++) {
      if (this.entry[p] < 0 || (newKeysOnly && (this.offset[p] < 0 || this.slot[p] >= 0))) continue;
      bytes += this.entryEnd[p] - this.entry[p];
    }
    return bytes;
  }

  /** Bytes the changes use of what {@link memoryBytes} holds: their entries, keys, rows and lookup entries. */
  usedBytes(): number {
    return (
      this.values.pos +
      this.keyEnd +
      this.count * (CHANGE_ROW_BYTES + 2 * Int32Array.BYTES_PER_ELEMENT) +
      this.byKey.size * ENTRY_BYTES
    );
  }

  /** Bytes held: the value and key buffers, the change rows and the lookup table. */
  memoryBytes(): number {
    return (
      this.values.buf.length +
      this.keyBytes.length +
      this.table.byteLength +
      this.offset.length * CHANGE_ROW_BYTES +
      this.byKey.size * ENTRY_BYTES +
      this.intTable.byteLength
    );
  }

  /** An encoded key given as a latin1 string, as bytes (in a scratch reused by the next call). */
  private encodedKey(pk: PendingKey | EncodedKey): EncodedKey {
    if (typeof pk === 'object') return pk;
    const s = pk as string;
    const k = this.scratch;
    if (k.bytes.length < s.length) k.bytes = new Uint8Array(s.length * 2);
    for (let i = 0; i < s.length; i++) k.bytes[i] = s.charCodeAt(i);
    k.length = s.length;
    k.hash = indexHash(k.bytes, 0, s.length);
    return k;
  }

  /** Appends key `pk`'s canonical encoding to {@link values}. */
  private writeEntryKey(pk: PendingKey | EncodedKey, encoded: boolean): void {
    if (encoded) {
      const k = this.encodedKey(pk);
      this.values.raw(k.bytes, 0, k.length);
      return;
    }
    const kw = this.keyWriter;
    kw.reset();
    kw.write(pk);
    this.values.raw(kw.buf, 0, kw.pos);
  }

  private writeRemoveEntry(pk: PendingKey | EncodedKey, encoded: boolean): void {
    this.values.byte(OP_REMOVE);
    this.writeEntryKey(pk, encoded);
  }

  /** Marks the entry of change `p` as replaced. */
  private markDead(p: number): void {
    const i = 2 * this.deadCount++;
    if (i === this.dead.length) this.dead = grown(this.dead, i * 2);
    this.dead[i] = this.entry[p];
    this.dead[i + 1] = this.entryEnd[p];
  }

  private add(
    pk: PendingKey | EncodedKey,
    encoded: boolean,
    off: number,
    timeout: number,
    slot: number,
    entryStart: number,
    entryEnd: number,
  ): void {
    const p = this.count;
    if (p === this.offset.length) this.growChanges(p * 2);
    this.entry[p] = entryStart;
    this.entryEnd[p] = entryEnd;
    this.offset[p] = off;
    this.timeout[p] = timeout;
    this.slot[p] = slot;
    this.count++;
    if (!encoded) {
      this.keyOffset[p] = -1;
      this.primitive[p] = pk as PendingKey;
      if (!isIntKey(pk)) this.byKey.set(pk as PendingKey, p);
      else if (++this.intCount * 4 > this.intTable.length) this.rehashInts(this.intTable.length * 2);
      else this.placeInt(p, pk);
      return;
    }
    const k = this.encodedKey(pk);
    if (this.keyEnd + k.length > this.keyBytes.length) {
      const next = new Uint8Array(Math.max(this.keyBytes.length * 2, this.keyEnd + k.length));
      next.set(this.keyBytes.subarray(0, this.keyEnd));
      this.keyBytes = next;
    }
    const bytes = this.keyBytes;
    for (let j = 0; j < k.length; j++) bytes[this.keyEnd + j] = k.bytes[j];
    this.keyOffset[p] = this.keyEnd;
    this.keyLength[p] = k.length;
    this.keyHash[p] = k.hash;
    this.keyEnd += k.length;
    if (++this.encodedCount * 2 > this.table.length) this.rehash(this.table.length * 2);
    else this.place(p);
  }

  private place(p: number): void {
    const table = this.table;
    const mask = table.length - 1;
    let i = this.keyHash[p] & mask;
    while (table[i] !== 0) i = (i + 1) & mask;
    table[i] = p + 1;
  }

  /** The change of int32 key `k` in the int table, or -1. */
  private findInt(k: number): number {
    const table = this.intTable;
    const mask = (table.length >> 1) - 1;
    for (let i = fmix32(k) & mask; ; i = (i + 1) & mask) {
      const e = table[2 * i];
      if (e === 0) return -1;
      if (table[2 * i + 1] === k) return e - 1;
    }
  }

  private placeInt(p: number, k: number): void {
    const table = this.intTable;
    const mask = (table.length >> 1) - 1;
    let i = fmix32(k) & mask;
    while (table[2 * i] !== 0) i = (i + 1) & mask;
    table[2 * i] = p + 1;
    table[2 * i + 1] = k;
  }

  private rehashInts(size: number): void {
    this.intTable = new Int32Array(size);
    for (let p = 0; p < this.count; p++) {
      const k = this.primitive[p];
      if (this.keyOffset[p] < 0 && isIntKey(k)) this.placeInt(p, k);
    }
  }

  private rehash(size: number): void {
    this.table = new Int32Array(size);
    for (let p = 0; p < this.count; p++) if (this.keyOffset[p] >= 0) this.place(p);
  }

  private growChanges(capacity: number): void {
    this.offset = grown(this.offset, capacity);
    this.entry = grown(this.entry, capacity);
    this.entryEnd = grown(this.entryEnd, capacity);
    this.slot = grown(this.slot, capacity);
    this.keyOffset = grown(this.keyOffset, capacity);
    this.keyLength = grown(this.keyLength, capacity);
    this.keyHash = grown(this.keyHash, capacity);
    this.timeout = grown(this.timeout, capacity);
  }
}
