/**
 * The committed entries of a state store, kept without a JS object per key.
 *
 * Each entry is a record `key bytes, value bytes` (both in the codec's encoding, see value-codec.ts) in
 * one byte arena; an open-addressing hash table (Int32Array) maps a key's bytes to its slot, and
 * per-slot typed arrays hold the record offset, the key hash and the timeout. A running sum
 * `{sum: number}` under a 7-char key costs ~45 bytes instead of ~100 for a Map of objects, a snapshot
 * loads with one copy plus one hash per key, and the garbage collector has nothing to trace.
 *
 * A commit that mostly adds keys can hand over the buffer its records were written into (the pending changes'
 * delta entries) as a further chunk of the arena ({@link ArenaHashMap.adoptChunk}) instead of copying every
 * record into the arena: writing into fresh pages costs more than the copy itself, and a batch of new keys
 * would otherwise touch them twice. Records then live in the growable arena (chunk 0) or in an adopted chunk;
 * a compaction copies every live record back into one arena.
 *
 * Slots are reused and records move on update and compaction, so slot order and arena layout depend
 * on history; callers that produce output must order by key or timeout, never by slot.
 */
import { murmur3Bytes } from './state-partitioner.js';
import {
  type FieldDictionary,
  Latin1View,
  T_SHORT_STRING,
  T_SMALL_INT,
  ValueReader,
  ValueWriter,
} from './value-codec.js';

/**
 * Seed of the index hash. It must differ from the partitioner's: all keys of one state partition
 * share `hash % numPartitions`, which with the same hash would pile them into a few buckets.
 */
const INDEX_SEED = 0x2545f491;
/** What stands for the growable arena in the list of chunks. */
const EMPTY = new Uint8Array(0);
const MIN_TABLE = 1024;
const MIN_SLOTS = 768;
/** Slot arrays and the arena grow by this factor: they are long-lived and large, so less slack than 2×. */
const GROWTH = 1.5;
/** Arena garbage is reclaimed once it exceeds both this and half the live bytes. */
const MIN_GARBAGE_TO_COMPACT = 1 << 20;
/** At most this many chunks, the growable arena included: a slot's chunk is one byte, and each chunk is a buffer to keep. */
const MAX_CHUNKS = 16;

/** The hash under which the key encoded in `buf[start, end)` is indexed. */
export function indexHash(buf: Uint8Array, start: number, end: number): number {
  return murmur3Bytes(buf, start, end, INDEX_SEED) | 0;
}

function nextPowerOfTwo(n: number): number {
  let p = MIN_TABLE;
  while (p < n) p *= 2;
  return p;
}

/** A due timeout: its time, its key's sort string (see {@link ArenaHashMap.sortKey}) and its entry (here a slot). */
export interface DueEntry {
  t: number;
  s: string;
  ref: number;
}

/**
 * Hash map from encoded keys to encoded values and timeouts, over one byte arena. Keys are given as
 * their canonical encoding plus {@link indexHash} of it; values as bytes encoded with {@link dict}.
 */
export class ArenaHashMap {
  /** Field-name ids of the values' encoding; whoever copies value bytes in must encode with it. */
  readonly dict: FieldDictionary;

  /** Hash table: slot + 1 per bucket, 0 = empty; linear probing, length a power of two. */
  private table = new Int32Array(MIN_TABLE);
  private hashes = new Int32Array(MIN_SLOTS);
  /** Offset of each slot's record in its chunk; -1 when the slot is free. */
  private recOff = new Int32Array(MIN_SLOTS).fill(-1);
  /** The chunk holding each slot's record: 0 the growable arena, else an index into {@link chunks}. */
  private chunkOf = new Uint8Array(MIN_SLOTS);
  /** Adopted chunks by index; index 0 stands for the growable arena and holds nothing. */
  private chunks: Uint8Array[] = [EMPTY];
  /** Timeout of each slot, -1 for none; null until some key has a timeout. */
  private timeouts: Float64Array | null = null;
  /** Lower bound of all timeouts: a scan is skipped when the asked time is below it. */
  private minTimeout = Infinity;
  private freeSlots: number[] = [];
  private slots = 0;
  private entries = 0;
  private arena: ValueWriter;
  private garbage = 0;
  private readonly reader = new ValueReader(new Uint8Array(0));
  private readonly latin1 = new Latin1View();

  constructor(dict: FieldDictionary) {
    this.dict = dict;
    this.arena = new ValueWriter(4096, dict, false, GROWTH);
  }

  /** Number of entries. */
  get count(): number {
    return this.entries;
  }

  /** Buffers holding records: the growable arena and each adopted chunk. */
  get chunkCount(): number {
    return this.chunks.length;
  }

  /** Slots in use or free: every live slot is below this. */
  get slotCount(): number {
    return this.slots;
  }

  /** The bytes holding the record of `slot`, which lies at {@link recordOffset} up to {@link recordEnd}. */
  recordBuffer(slot: number): Uint8Array {
    const c = this.chunkOf[slot];
    return c === 0 ? this.arena.buf : this.chunks[c];
  }

  /** Whether any entry has had a timeout (the timeout array exists). */
  get hasTimeouts(): boolean {
    return this.timeouts !== null;
  }

  /** Bytes held: arena and adopted chunks, hash table, slot arrays and timeouts. */
  memoryBytes(): number {
    let adopted = 0;
    for (const chunk of this.chunks) adopted += chunk.length;
    return (
      adopted +
      this.chunkOf.byteLength +
      this.arena.buf.length +
      this.table.byteLength +
      this.hashes.byteLength +
      this.recOff.byteLength +
      (this.timeouts?.byteLength ?? 0)
    );
  }

  /** The slot whose key bytes equal `buf[start, start + len)` (hash `h`), or -1. */
  find(h: number, buf: Uint8Array, start: number, len: number): number {
    const table = this.table;
    const mask = table.length - 1;
    const hashes = this.hashes;
    const recOff = this.recOff;
    for (let i = h & mask; ; i = (i + 1) & mask) {
      const e = table[i];
      if (e === 0) return -1;
      const slot = e - 1;
      if (hashes[slot] !== h) continue;
      const off = recOff[slot];
      const arena = this.recordBuffer(slot);
      let j = 0;
      // Encodings are self-delimiting, so no key's bytes start with another complete key's bytes:
      // equal first `len` bytes mean equal keys.
      while (j < len && arena[off + j] === buf[start + j]) j++;
      if (j === len) return slot;
    }
  }

  /** Whether `slot` holds an entry. */
  isLive(slot: number): boolean {
    return this.recOff[slot] >= 0;
  }

  /** Offset of the record of `slot` in its {@link recordBuffer}, -1 when the slot is free. */
  recordOffset(slot: number): number {
    return this.recOff[slot];
  }

  /** End of the record of live `slot` in its {@link recordBuffer}. */
  recordEnd(slot: number): number {
    const buf = this.recordBuffer(slot);
    const off = this.recOff[slot];
    return this.valueEnd(buf, off + this.keyLengthAt(buf, off));
  }

  /** The value of `slot` (a fresh copy), whose key encoding is `keyLen` bytes long. */
  valueWithKeyLength(slot: number, keyLen: number): unknown {
    return this.readValue(this.recordBuffer(slot), this.recOff[slot] + keyLen);
  }

  /** The value of `slot` (a fresh copy). */
  value(slot: number): unknown {
    const buf = this.recordBuffer(slot);
    const off = this.recOff[slot];
    return this.readValue(buf, off + this.keyLengthAt(buf, off));
  }

  /** The key of `slot`. */
  key(slot: number): unknown {
    return this.keyAtOffset(this.recordBuffer(slot), this.recOff[slot]);
  }

  /** The key of `slot` as its canonical encoding in latin1: comparing these with `<` orders keys by their bytes. */
  sortKey(slot: number): string {
    const buf = this.recordBuffer(slot);
    const off = this.recOff[slot];
    return this.latin1.slice(buf, off, off + this.keyLengthAt(buf, off));
  }

  /** The timeout of `slot`, -1 for none. */
  timeout(slot: number): number {
    return this.timeouts === null ? -1 : this.timeouts[slot];
  }

  /** False when no entry's timeout is at or before `timestampMs`, so that a scan for them can be skipped. */
  mayHaveTimeoutAtOrBefore(timestampMs: number): boolean {
    return this.timeouts !== null && this.minTimeout <= timestampMs;
  }

  /**
   * Appends the entries not marked in `shadowed` whose timeout is at or before `timestampMs` to `due`,
   * in slot order.
   */
  collectDue(timestampMs: number, shadowed: Uint8Array | null, due: DueEntry[]): void {
    const timeouts = this.timeouts;
    if (timeouts === null) return;
    let min = Infinity;
    for (let slot = 0; slot < this.slots; slot++) {
      const t = timeouts[slot];
      if (t < 0) continue;
      if (t < min) min = t;
      if (t <= timestampMs && (shadowed === null || shadowed[slot] === 0))
        due.push({ t, s: this.sortKey(slot), ref: slot });
    }
    this.minTimeout = min;
  }

  /** The number of entries not marked in `shadowed` whose timeout is at or before `timestampMs`. */
  countDue(timestampMs: number, shadowed: Uint8Array | null): number {
    const timeouts = this.timeouts;
    if (timeouts === null) return 0;
    let n = 0;
    for (let slot = 0; slot < this.slots; slot++) {
      const t = timeouts[slot];
      if (t >= 0 && t <= timestampMs && (shadowed === null || shadowed[slot] === 0)) n++;
    }
    return n;
  }

  /**
   * Writes the timeouts that {@link countDue} counts to `out` from index `at`, in slot order, and returns the index
   * after the last.
   */
  dueTimeouts(timestampMs: number, shadowed: Uint8Array | null, out: Float64Array, at: number): number {
    const timeouts = this.timeouts;
    if (timeouts === null) return at;
    for (let slot = 0; slot < this.slots; slot++) {
      const t = timeouts[slot];
      if (t >= 0 && t <= timestampMs && (shadowed === null || shadowed[slot] === 0)) out[at++] = t;
    }
    return at;
  }

  /** The earliest timeout of the entries not marked in `shadowed`, or Infinity. One pass, no allocation. */
  earliestTimeout(shadowed: Uint8Array | null): number {
    const timeouts = this.timeouts;
    if (timeouts === null) return Infinity;
    let min = Infinity;
    let committedMin = Infinity;
    for (let slot = 0; slot < this.slots; slot++) {
      const t = timeouts[slot];
      if (t < 0) continue;
      if (t < committedMin) committedMin = t;
      if (t < min && (shadowed === null || shadowed[slot] === 0)) min = t;
    }
    this.minTimeout = committedMin;
    return min;
  }

  /**
   * Makes room for `bytes` more record bytes at once: a commit's inserts then copy the arena at most once instead
   * of at each growth step (each copy touches fresh pages, which costs more than the copy itself).
   */
  reserve(bytes: number): void {
    this.arena.ensure(bytes);
  }

  /** Adds a new entry: key `kbuf[kstart, kstart + klen)` with hash `h`, value `vbuf[vstart, vend)`. */
  insert(
    h: number,
    kbuf: Uint8Array,
    kstart: number,
    klen: number,
    vbuf: Uint8Array,
    vstart: number,
    vend: number,
    timeout: number,
  ): void {
    const slot = this.newSlot(h, 0, this.arena.pos);
    this.arena.raw(kbuf, kstart, kstart + klen);
    this.arena.raw(vbuf, vstart, vend);
    this.setTimeout(slot, timeout);
  }

  /**
   * Makes `bytes[0, bytes.length)` a chunk of the arena, as it is, for {@link insertAt} and {@link updateAt} to
   * point entries at records in it; the caller gives up `bytes`. Returns the chunk.
   */
  adoptChunk(bytes: Uint8Array): number {
    if (this.chunks.length >= MAX_CHUNKS) this.compact();
    this.chunks.push(bytes);
    // Every byte is garbage until an entry points at a record in it.
    this.garbage += bytes.length;
    return this.chunks.length - 1;
  }

  /** Adds a new entry whose record (key with hash `h`, then value) lies at `off` in adopted `chunk`. */
  insertAt(h: number, chunk: number, off: number, timeout: number): void {
    const slot = this.newSlot(h, chunk, off);
    this.garbage -= this.recordEnd(slot) - off;
    this.setTimeout(slot, timeout);
  }

  /** Points `slot` at a record of the same key at `off` in adopted `chunk`; its old record becomes garbage. */
  updateAt(slot: number, chunk: number, off: number, timeout: number): void {
    this.garbage += this.recordEnd(slot) - this.recOff[slot];
    this.chunkOf[slot] = chunk;
    this.recOff[slot] = off;
    this.garbage -= this.recordEnd(slot) - off;
    this.setTimeout(slot, timeout);
  }

  /**
   * Replaces the value of `slot` with `src[start, end)`: in place when it fits, so steady updates do
   * not grow the arena; otherwise the record moves to the end of the growable arena.
   */
  update(slot: number, src: Uint8Array, start: number, end: number, timeout: number): void {
    const buf = this.recordBuffer(slot);
    const off = this.recOff[slot];
    const klen = this.keyLengthAt(buf, off);
    const vstart = off + klen;
    const oldLen = this.valueEnd(buf, vstart) - vstart;
    const len = end - start;
    if (len <= oldLen) {
      let q = vstart;
      for (let i = start; i < end; i++) buf[q++] = src[i];
      this.garbage += oldLen - len;
    } else {
      this.recOff[slot] = this.arena.pos;
      this.chunkOf[slot] = 0;
      this.arena.raw(buf, off, vstart);
      this.arena.raw(src, start, end);
      this.garbage += klen + oldLen;
    }
    this.setTimeout(slot, timeout);
  }

  /** Removes the entry of `slot`. */
  remove(slot: number): void {
    this.garbage += this.recordEnd(slot) - this.recOff[slot];
    this.unplace(slot);
    this.recOff[slot] = -1;
    if (this.timeouts !== null) this.timeouts[slot] = -1;
    this.freeSlots.push(slot);
    this.entries--;
  }

  /** Rewrites the records into one arena without garbage once garbage outweighs half the live bytes. */
  maybeCompact(): void {
    if (this.garbage >= MIN_GARBAGE_TO_COMPACT && this.garbage >= this.liveBytes() / 2) this.compact();
  }

  private liveBytes(): number {
    let total = this.arena.pos;
    for (const chunk of this.chunks) total += chunk.length;
    return total - this.garbage;
  }

  private compact(): void {
    const live = this.liveBytes();
    const next = new ValueWriter(Math.ceil(live * 1.1) + 4096, this.dict, false, GROWTH);
    for (let slot = 0; slot < this.slots; slot++) {
      const off = this.recOff[slot];
      if (off < 0) continue;
      const end = this.recordEnd(slot);
      const buf = this.recordBuffer(slot);
      this.recOff[slot] = next.pos;
      next.raw(buf, off, end);
    }
    this.chunkOf.fill(0);
    this.chunks = [EMPTY];
    this.arena = next;
    this.garbage = 0;
  }

  /**
   * Fills an empty map with the `n` records (key then value bytes each) in `data[start, start + recordBytes)`,
   * which become the arena as they are: one copy, then one hash per key to index them. Throws an Error
   * saying what is wrong when the records are cut short, do not add up or repeat a key.
   */
  adoptRecords(data: Uint8Array, start: number, recordBytes: number, n: number): void {
    this.chunks = [EMPTY];
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
      const klen = this.keyLengthAt(arena, off);
      if (off + klen > recordBytes) throw new Error('its record section is cut short');
      const h = indexHash(arena, off, off + klen);
      let i = h & mask;
      for (let e = table[i]; e !== 0; e = table[i]) {
        if (
          hashes[e - 1] === h &&
          arena.subarray(recOff[e - 1], recOff[e - 1] + klen).every((b, j) => b === arena[off + j])
        ) {
          throw new Error(`key ${JSON.stringify(String(this.keyAtOffset(arena, off)))} appears twice`);
        }
        i = (i + 1) & mask;
      }
      table[i] = slot + 1;
      hashes[slot] = h;
      recOff[slot] = off;
      off = this.valueEnd(arena, off + klen, recordBytes);
    }
    if (off !== recordBytes) throw new Error('its record section does not match its key count');
    this.slots = n;
    this.entries = n;
  }

  /**
   * The timeout array, for the timeouts of adopted records to be written into by slot. They bypass the
   * bookkeeping of single updates, so the lower bound on them is unknown until the next scan.
   */
  timeoutsToFill(): Float64Array {
    this.minTimeout = -Infinity;
    this.timeouts ??= this.grownTimeouts(this.recOff.length);
    return this.timeouts;
  }

  /** Length of the key encoding at `off` in `buf`; short strings and small ints without a parse. */
  private keyLengthAt(buf: Uint8Array, off: number): number {
    const tag = buf[off];
    if (tag >= T_SMALL_INT) return 1;
    if (tag >= T_SHORT_STRING) return 1 + tag - T_SHORT_STRING;
    const r = this.reader;
    r.setBuffer(buf, off);
    r.skip();
    return r.pos - off;
  }

  /** End of the encoded value at `off` in `buf`, reading no further than `end`. */
  private valueEnd(buf: Uint8Array, off: number, end = buf.length): number {
    const r = this.reader;
    r.setBuffer(buf, off, end);
    r.skip();
    return r.pos;
  }

  private readValue(buf: Uint8Array, off: number): unknown {
    const r = this.reader;
    r.setBuffer(buf, off);
    r.setNames(this.dict.names);
    return r.read();
  }

  private keyAtOffset(buf: Uint8Array, off: number): unknown {
    const r = this.reader;
    r.setBuffer(buf, off);
    r.setNames([]);
    return r.read();
  }

  /** A new live slot for the key with hash `h` whose record is (or is about to be written) at `off` in `chunk`. */
  private newSlot(h: number, chunk: number, off: number): number {
    if ((this.entries + 1) * 4 > this.table.length * 3) this.growTable(this.table.length * 2);
    const slot = this.allocSlot();
    this.hashes[slot] = h;
    this.recOff[slot] = off;
    this.chunkOf[slot] = chunk;
    this.placeInTable(slot, h);
    this.entries++;
    return slot;
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
    for (let slot = 0; slot < this.slots; slot++)
      if (this.recOff[slot] >= 0) this.placeInTable(slot, this.hashes[slot]);
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

  private allocSlot(): number {
    const free = this.freeSlots.pop();
    if (free !== undefined) return free;
    const slot = this.slots++;
    if (slot >= this.recOff.length) this.growSlots(Math.ceil(this.recOff.length * GROWTH));
    return slot;
  }

  private growSlots(capacity: number): void {
    const recOff = new Int32Array(capacity).fill(-1);
    recOff.set(this.recOff.subarray(0, this.slots));
    this.recOff = recOff;
    const hashes = new Int32Array(capacity);
    hashes.set(this.hashes.subarray(0, this.slots));
    this.hashes = hashes;
    const chunkOf = new Uint8Array(capacity);
    chunkOf.set(this.chunkOf.subarray(0, this.slots));
    this.chunkOf = chunkOf;
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
}
