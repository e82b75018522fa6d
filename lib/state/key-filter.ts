/**
 * A Bloom filter of the keys a disk store's database holds, by their canonical encodings, as RocksDB keeps one per
 * table file: a key it has never seen is known absent without a database read. Where state outgrows memory most
 * reads are of such keys (a bid of a bidder with no open session), and each costs a walk down the B-tree to a
 * page that is seldom resident, a page fault, where the filter costs one cache line.
 *
 * The filter is blocked (each key's bits lie in one 64-byte block) and scalable: when its last part holds as many
 * keys as it was sized for, a part of twice that size follows, and a lookup asks every part. Keys are never taken
 * out (a removed key may answer "maybe", which costs a read and nothing else), so the store builds a fresh
 * filter from its database at each snapshot.
 */
import { fmix32, murmur3Bytes } from './state-partitioner.js';

/** Bits per key a part is sized for: with {@link PROBES} bits per key, about 1% false positives when full. */
const BITS_PER_KEY = 10;
/** Bits set per key within its block. */
const PROBES = 6;
/** 32-bit words per block: 512 bits, one cache line. */
const BLOCK_WORDS = 16;
/** Keys the smallest part is sized for. */
const MIN_KEYS = 1 << 16;
/** Seed of the filter's hash, other than the state partitioner's, whose hash all keys of a partition share bits of. */
const SEED = 0x2f1b3c4d;
/** First bytes of a saved filter ("SLKF"). */
const MAGIC = 0x464b4c53;

interface Part {
  words: Int32Array;
  blocks: number;
  capacity: number;
  keys: number;
}

function part(capacity: number): Part {
  const blocks = Math.max(1, Math.ceil((capacity * BITS_PER_KEY) / (32 * BLOCK_WORDS)));
  return { words: new Int32Array(blocks * BLOCK_WORDS), blocks, capacity, keys: 0 };
}

/** A Bloom filter of byte-string keys; see the file's comment. */
export class KeyFilter {
  private readonly parts: Part[];
  private h1 = 0;
  private h2 = 0;

  /** An empty filter whose first part is sized for `expectedKeys`. */
  constructor(expectedKeys = MIN_KEYS) {
    this.parts = [part(Math.max(MIN_KEYS, Math.ceil(expectedKeys)))];
  }

  /**
   * Makes room for `keys` more keys in the last part, else adds a part of twice the capacity so far (or `keys`, if
   * more), so that a batch of inserts adds at most one part; an empty last part is replaced instead.
   */
  reserve(keys: number): void {
    const last = this.parts[this.parts.length - 1];
    if (last.capacity - last.keys >= keys) return;
    let capacity = 0;
    for (const p of this.parts) capacity += p.capacity;
    const next = part(Math.max(2 * capacity, keys));
    if (last.keys === 0) this.parts[this.parts.length - 1] = next;
    else this.parts.push(next);
  }

  /** Adds the key whose encoding is `bytes[start, end)`. */
  add(bytes: Uint8Array, start = 0, end = bytes.length): void {
    this.hash(bytes, start, end);
    if (this.containsHashed()) return;
    let p = this.parts[this.parts.length - 1];
    if (p.keys >= p.capacity) {
      p = part(2 * p.capacity);
      this.parts.push(p);
    }
    const base = this.blockOf(p);
    let a = this.h2 & 511;
    const b = (this.h2 >>> 9) | 1;
    for (let i = 0; i < PROBES; i++, a = (a + b) & 511) p.words[base + (a >>> 5)] |= 1 << (a & 31);
    p.keys++;
  }

  /** False when the key whose encoding is `bytes[start, end)` was never added; true when it may have been. */
  mayContain(bytes: Uint8Array, start = 0, end = bytes.length): boolean {
    this.hash(bytes, start, end);
    return this.containsHashed();
  }

  /** Bytes the filter's bits take. */
  get sizeBytes(): number {
    let n = 0;
    for (const p of this.parts) n += p.words.byteLength;
    return n;
  }

  /** The filter as bytes, with `tag` (the version of the database it describes), for {@link KeyFilter.parse}. */
  serialize(tag: number): Buffer {
    const out = Buffer.allocUnsafe(16 + this.parts.length * 12 + this.sizeBytes);
    out.writeInt32LE(MAGIC, 0);
    out.writeInt32LE(this.parts.length, 4);
    out.writeDoubleLE(tag, 8);
    let w = 16;
    for (const p of this.parts) {
      out.writeInt32LE(p.capacity, w);
      out.writeInt32LE(p.keys, w + 4);
      out.writeInt32LE(p.blocks, w + 8);
      w += 12;
    }
    for (const p of this.parts) {
      out.set(new Uint8Array(p.words.buffer, p.words.byteOffset, p.words.byteLength), w);
      w += p.words.byteLength;
    }
    return out;
  }

  /** The filter and tag {@link KeyFilter.serialize} wrote, or null when `buf` is not such a filter whole. */
  static parse(buf: Uint8Array): { filter: KeyFilter; tag: number } | null {
    const view = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
    if (view.length < 16 || view.readInt32LE(0) !== MAGIC) return null;
    const n = view.readInt32LE(4);
    if (n < 1 || view.length < 16 + 12 * n) return null;
    const filter = new KeyFilter();
    filter.parts.length = 0;
    let w = 16 + 12 * n;
    for (let i = 0; i < n; i++) {
      const at = 16 + 12 * i;
      const capacity = view.readInt32LE(at);
      const keys = view.readInt32LE(at + 4);
      const blocks = view.readInt32LE(at + 8);
      const bytes = blocks * BLOCK_WORDS * 4;
      if (capacity < 1 || keys < 0 || blocks < 1 || w + bytes > view.length) return null;
      const words = new Int32Array(blocks * BLOCK_WORDS);
      new Uint8Array(words.buffer).set(view.subarray(w, w + bytes));
      filter.parts.push({ words, blocks, capacity, keys });
      w += bytes;
    }
    return w === view.length ? { filter, tag: view.readDoubleLE(8) } : null;
  }

  private hash(bytes: Uint8Array, start: number, end: number): void {
    const h = murmur3Bytes(bytes, start, end, SEED);
    this.h1 = h;
    // The bits within the block from a remix, as the block comes from the hash's high bits.
    this.h2 = fmix32(h ^ 0x5bd1e995);
  }

  /** The first word of the hashed key's block in part `p`. */
  private blockOf(p: Part): number {
    return Math.floor((this.h1 * p.blocks) / 4294967296) * BLOCK_WORDS;
  }

  private containsHashed(): boolean {
    const b = (this.h2 >>> 9) | 1;
    for (const p of this.parts) {
      const base = this.blockOf(p);
      let a = this.h2 & 511;
      let all = true;
      for (let i = 0; i < PROBES && all; i++, a = (a + b) & 511) {
        all = (p.words[base + (a >>> 5)] & (1 << (a & 31))) !== 0;
      }
      if (all) return true;
    }
    return false;
  }
}
