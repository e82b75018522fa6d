/**
 * The disk store's bounded cache of hot keys: the committed records (timeout and value bytes) of keys read or
 * written recently, so that a key a batch touches again is found without a database lookup.
 *
 * Records lie in one byte arena used as a ring: each is appended at the head with a header (its slot and its
 * length), and once the records' bytes and the per-key overhead exceed the budget the oldest ones leave from the
 * tail, so keys leave in the order they entered. An open-addressing table of slots indexes the keys. A record
 * rewritten at the same length is overwritten where it lies and keeps its place; one of another length moves to
 * the head, its old bytes left for the tail to pass. The cache thus holds a few large typed arrays rather than a
 * map entry and a Buffer per key, which a map of buffers kept alive into the old generation for the collector
 * to trace, and a removal or rewrite allocates nothing.
 *
 * Admission adapts to the hit rate of lookups of keys the store holds: a lookup of an absent key (a new key, as
 * every key is in a batch that fills the state) cannot hit whatever the cache admits, so it does not count.
 * While most lookups hit, every key the store reads or writes enters. When the
 * keys in use outnumber what the budget holds (state of many keys touched evenly), most lookups miss, and
 * admitting every key would only churn the cache, for a hit rate set by the budget's share of the keys. Then only
 * one key in {@link SAMPLED_ADMISSION} enters, which fills the cache as far (the share of keys cached is the same
 * when all are touched alike) and still lets a hot set in after a few accesses.
 *
 * Records are kept encoded: a read must hand out a fresh object anyway (callers may mutate what they get), and
 * decoding the bytes is that copy.
 *
 * A caller that found a key may keep its slot and the slot's stamp, which is new whenever the slot is given to a
 * key: the store's next read of the key in the batch, and its commit's rewrite of the record, then go straight to
 * the slot instead of hashing the key and comparing it with the cached one again.
 */
import { grown } from '../util/grown.js';
import type { PendingKey } from './pending-changes.js';
import { fmix32 } from './state-partitioner.js';

/** Lookups over which the hit rate is measured before admission is chosen again. */
const WINDOW_LOOKUPS = 1 << 16;
/** Hit rate at or above which every key is admitted. */
const ADMIT_ALL_HIT_RATE = 0.5;
/** Below it, one key in this many is admitted. */
const SAMPLED_ADMISSION = 8;
/** A record's header in the arena: its slot (-1 once it is not the slot's record) and its length, as int32s. */
const HEADER = 8;
/**
 * Bytes charged per cached key besides its record and header: two table buckets, the slot's hash, offset,
 * flag and key, and a share of the arrays' slack.
 */
const SLOT_BYTES = 40;
/** The arena's first size; it doubles up to the budget as the cache fills. */
const MIN_ARENA = 1 << 16;
const MIN_SLOTS = 1 << 10;

const f64 = new Float64Array(1);
const u32 = new Uint32Array(f64.buffer);

/** The hash of a key as pending changes name it; every NaN alike, -0 as 0, as the keys' canonical encoding. */
function hashKey(pk: PendingKey, encoded: boolean): number {
  if (typeof pk === 'number') {
    if ((pk | 0) === pk) return fmix32(pk);
    if (Number.isNaN(pk)) return 0x7ff80000;
    f64[0] = pk;
    return fmix32(u32[0] ^ fmix32(u32[1]));
  }
  let h = encoded ? 0x811c9dc5 : 0x01000193;
  for (let i = 0; i < pk.length; i++) h = Math.imul(h ^ pk.charCodeAt(i), 0x01000193);
  return fmix32(h);
}

function sameKey(a: PendingKey, b: PendingKey): boolean {
  return a === b || (Number.isNaN(a) && Number.isNaN(b));
}

/** The cache of one disk store; see the module's comment. */
export class HotKeyCache {
  private arena: Buffer = Buffer.alloc(0);
  private arena32 = new Int32Array(0);
  /** Where the next record goes, and where the oldest one lies. */
  private head = 0;
  private tail = 0;
  /** While the head has wrapped to the arena's start, the end of the records between the tail and the arena's end. */
  private wrapEnd = -1;
  /** Buckets: slot + 1, 0 for none; linear probing, the length a power of two at least twice the keys. */
  private table = new Int32Array(MIN_SLOTS * 2);
  private hashes = new Int32Array(MIN_SLOTS);
  private encodedFlags = new Uint8Array(MIN_SLOTS);
  /** Arena offset of each slot's record bytes (after its header), -1 for a free slot. */
  private recordAt = new Int32Array(MIN_SLOTS).fill(-1);
  /**
   * Each slot's stamp, new (from nextStamp, never reset) whenever the slot is given to a key, so that a kept slot
   * and stamp name the same key for as long as they match, across a clear too.
   */
  private stamps = new Int32Array(MIN_SLOTS);
  private nextStamp = 0;
  private _lastSlot = -1;
  private keys: PendingKey[] = [];
  private freeSlots: number[] = [];
  private slots = 0;
  private count = 0;
  private lookups = 0;
  private hits = 0;
  private admitAll = true;
  private skipped = 0;

  /** The arena's largest size: the budget, in whole int32s. */
  private readonly arenaMax: number;

  /** @param budgetBytes records beyond this many bytes (with per-key overhead) are evicted; 0 disables it */
  constructor(readonly budgetBytes: number) {
    this.arenaMax = Math.floor(budgetBytes / 4) * 4;
  }

  /** Bytes held, per-key overhead included. */
  get sizeBytes(): number {
    return this.usedBytes() + this.count * SLOT_BYTES;
  }

  /** The arena, in which {@link get} gives a record's place; valid until the next {@link set}. */
  get bytes(): Buffer {
    return this.arena;
  }

  /**
   * Where the record of `pk` starts in {@link bytes} (its length is {@link recordLength}); -1 when not cached
   * (then call {@link missed} if the store holds the key).
   */
  get(pk: PendingKey, encoded: boolean): number {
    const s = this.find(pk, encoded);
    this._lastSlot = s;
    if (s < 0) return -1;
    this.hits++;
    this.counted();
    return this.recordAt[s];
  }

  /**
   * The slot in which the last {@link get} found its key (-1: not cached) or the last {@link set} left it (-1:
   * the record was too large to cache).
   */
  get lastSlot(): number {
    return this._lastSlot;
  }

  /** The stamp of slot `s`: while it stays the same, the slot holds the key it held when the stamp was taken. */
  stamp(s: number): number {
    return this.stamps[s];
  }

  /**
   * Where the record of the key in slot `s` starts in {@link bytes}, when the slot holds the key it held at
   * `stamp`; else -1.
   */
  recordIn(s: number, stamp: number): number {
    return this.stamps[s] === stamp ? this.recordAt[s] : -1;
  }

  /**
   * Caches a copy of `record[start, end)` as the committed record of the key in slot `s`, as {@link set} does,
   * when the slot holds the key it held at `stamp`; returns false, doing nothing, when it does not.
   */
  replaceIn(s: number, stamp: number, record: Uint8Array, start = 0, end = record.length): boolean {
    if (this.recordIn(s, stamp) < 0) return false;
    this.setSlot(s, record, start, end);
    return true;
  }

  /** The length of the record at `at` in {@link bytes}. */
  recordLength(at: number): number {
    return this.arena32[(at >> 2) - 1];
  }

  /** Counts a lookup that {@link get} missed of a key the store holds. */
  missed(): void {
    this.counted();
  }

  private counted(): void {
    if (++this.lookups === WINDOW_LOOKUPS) {
      this.admitAll = this.hits >= ADMIT_ALL_HIT_RATE * WINDOW_LOOKUPS;
      this.lookups = 0;
      this.hits = 0;
    }
  }

  /**
   * Whether a record for `pk` is to be given to {@link set}: always when the key is cached (its record must
   * be replaced), else as the admission rule says.
   */
  admits(pk: PendingKey, encoded: boolean): boolean {
    if (this.budgetBytes === 0) return false;
    if (this.admitAll || this.find(pk, encoded) >= 0) return true;
    if (++this.skipped < SAMPLED_ADMISSION) return false;
    this.skipped = 0;
    return true;
  }

  /** Caches a copy of `record[start, end)` as the committed record of `pk`. */
  set(pk: PendingKey, encoded: boolean, record: Uint8Array, start = 0, end = record.length): void {
    const s = this.find(pk, encoded);
    if (s >= 0) this.setSlot(s, record, start, end);
    else if (!this.tooLarge(end - start)) this.setSlot(this.insert(pk, encoded), record, start, end);
    else this._lastSlot = -1;
  }

  /** Whether a record of `n` bytes is too large to cache: the budget cannot hold it beside the others' records. */
  private tooLarge(n: number): boolean {
    return HEADER + n + SLOT_BYTES > this.budgetBytes / 4;
  }

  /** Puts a copy of `record[start, end)` as the record of slot `s`, which holds a key (and maybe its old record). */
  private setSlot(s: number, record: Uint8Array, start: number, end: number): void {
    const n = end - start;
    const old = this.recordAt[s];
    this._lastSlot = s;
    if (old >= 0 && this.recordLength(old) === n) {
      this.copyIn(record, start, end, old);
      return;
    }
    if (old >= 0) this.arena32[(old >> 2) - 2] = -1;
    if (this.tooLarge(n)) {
      this.remove(s);
      this._lastSlot = -1;
      return;
    }
    const at = this.place(n) + HEADER;
    this.arena32[(at >> 2) - 2] = s;
    this.arena32[(at >> 2) - 1] = n;
    this.copyIn(record, start, end, at);
    this.recordAt[s] = at;
    while (this.sizeBytes > this.budgetBytes) this.evictOldest();
  }

  /** Copies `record[start, end)` into the arena at `at`, byte by byte: records are short, and a view costs more. */
  private copyIn(record: Uint8Array, start: number, end: number, at: number): void {
    const arena = this.arena;
    for (let i = start, j = at; i < end; i++, j++) arena[j] = record[i];
  }

  /** Forgets `pk` (its key was removed). */
  delete(pk: PendingKey, encoded: boolean): void {
    const s = this.find(pk, encoded);
    if (s < 0) return;
    this.arena32[(this.recordAt[s] >> 2) - 2] = -1;
    this.remove(s);
  }

  clear(): void {
    this.arena = Buffer.alloc(0);
    this.arena32 = new Int32Array(0);
    this.head = this.tail = 0;
    this.wrapEnd = -1;
    this.table = new Int32Array(MIN_SLOTS * 2);
    this.hashes = new Int32Array(MIN_SLOTS);
    this.encodedFlags = new Uint8Array(MIN_SLOTS);
    this.recordAt = new Int32Array(MIN_SLOTS).fill(-1);
    this.stamps = new Int32Array(MIN_SLOTS);
    this._lastSlot = -1;
    this.keys = [];
    this.freeSlots = [];
    this.slots = this.count = 0;
    this.lookups = 0;
    this.hits = 0;
    this.admitAll = true;
  }

  /** The slot of `pk`, or -1. */
  private find(pk: PendingKey, encoded: boolean): number {
    if (this.count === 0) return -1;
    const h = hashKey(pk, encoded);
    const table = this.table;
    const mask = table.length - 1;
    for (let b = h & mask; ; b = (b + 1) & mask) {
      const s = table[b] - 1;
      if (s < 0) return -1;
      if (this.hashes[s] === h && sameKey(this.keys[s], pk) && this.encodedFlags[s] === +encoded) return s;
    }
  }

  /** Takes a slot for `pk`, which is not cached, and indexes it. */
  private insert(pk: PendingKey, encoded: boolean): number {
    if (2 * (this.count + 1) > this.table.length) this.growTable();
    let s = this.freeSlots.pop();
    if (s === undefined) {
      s = this.slots++;
      if (s === this.hashes.length) this.growSlots();
    }
    const h = hashKey(pk, encoded);
    this.hashes[s] = h;
    this.nextStamp = (this.nextStamp + 1) | 0;
    this.stamps[s] = this.nextStamp;
    this.keys[s] = pk;
    this.encodedFlags[s] = +encoded;
    const mask = this.table.length - 1;
    let b = h & mask;
    while (this.table[b] !== 0) b = (b + 1) & mask;
    this.table[b] = s + 1;
    this.count++;
    return s;
  }

  /** Unindexes slot `s` and frees it; the buckets after it move back (no tombstones in a linear-probing table). */
  private remove(s: number): void {
    const table = this.table;
    const mask = table.length - 1;
    let b = this.hashes[s] & mask;
    while (table[b] !== s + 1) b = (b + 1) & mask;
    for (let next = (b + 1) & mask; table[next] !== 0; next = (next + 1) & mask) {
      const home = this.hashes[table[next] - 1] & mask;
      // The entry at `next` may fill the hole at `b` when its home bucket is not in the run (b, next].
      if ((next > b && (home <= b || home > next)) || (next < b && home <= b && home > next)) {
        table[b] = table[next];
        b = next;
      }
    }
    table[b] = 0;
    this.recordAt[s] = -1;
    this.keys[s] = 0;
    this.freeSlots.push(s);
    this.count--;
  }

  private growTable(): void {
    const table = new Int32Array(this.table.length * 2);
    const mask = table.length - 1;
    for (let s = 0; s < this.slots; s++) {
      if (this.recordAt[s] < 0) continue;
      let b = this.hashes[s] & mask;
      while (table[b] !== 0) b = (b + 1) & mask;
      table[b] = s + 1;
    }
    this.table = table;
  }

  private growSlots(): void {
    const n = this.hashes.length * 2;
    this.hashes = grown(this.hashes, n);
    this.encodedFlags = grown(this.encodedFlags, n);
    this.recordAt = grown(this.recordAt, n).fill(-1, this.recordAt.length);
    this.stamps = grown(this.stamps, n);
  }

  /** Arena bytes between the tail and the head, headers and left-behind records included. */
  private usedBytes(): number {
    return this.wrapEnd < 0 ? this.head - this.tail : this.wrapEnd - this.tail + this.head;
  }

  /** Makes room for a record of `n` bytes and its header at the head and returns where it goes. */
  private place(n: number): number {
    const size = (HEADER + n + 3) & ~3;
    for (;;) {
      const at = this.head;
      if (this.wrapEnd < 0) {
        if (at + size <= this.arena.length) {
          this.head = at + size;
          return at;
        }
        if (this.arena.length < this.arenaMax) this.growArena(size);
        else if (this.tail > 0) {
          this.wrapEnd = at;
          this.head = 0;
        } else this.evictOldest();
      } else if (at + size <= this.tail) {
        this.head = at + size;
        return at;
      } else this.evictOldest();
    }
  }

  /** Evicts the record at the tail, or passes over one left behind. */
  private evictOldest(): void {
    if (this.wrapEnd >= 0 && this.tail === this.wrapEnd) {
      this.tail = 0;
      this.wrapEnd = -1;
      return;
    }
    if (this.wrapEnd < 0 && this.tail === this.head) {
      this.tail = this.head = 0;
      return;
    }
    const i = this.tail >> 2;
    const s = this.arena32[i];
    this.tail += (HEADER + this.arena32[i + 1] + 3) & ~3;
    if (s >= 0) this.remove(s);
  }

  /**
   * Doubles the arena (up to the budget, and to at least `size` free bytes), moving the records to its start. The
   * head has not wrapped while the arena grows, so the records are one run, moved in one copy with the records
   * left behind among them: walking it record by record costs more than their bytes.
   */
  private growArena(size: number): void {
    let length = Math.max(MIN_ARENA, this.arena.length * 2);
    while (length - this.usedBytes() < size) length *= 2;
    const arena = Buffer.allocUnsafeSlow(Math.min(length, this.arenaMax));
    arena.set(this.arena.subarray(this.tail, this.head));
    if (this.tail > 0) {
      for (let s = 0; s < this.slots; s++) if (this.recordAt[s] >= 0) this.recordAt[s] -= this.tail;
    }
    this.arena = arena;
    this.arena32 = new Int32Array(arena.buffer, arena.byteOffset, arena.length >> 2);
    this.head -= this.tail;
    this.tail = 0;
  }
}
