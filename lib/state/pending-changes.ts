/**
 * The changes to a state store since its last commit. They stay apart from committed state until the
 * commit applies them, so that aborting a batch only has to drop them and the store is back at its
 * version, ready for a replay.
 *
 * Change `p` is a row across parallel arrays (value offset, timeout, committed slot, key) rather than
 * an object, and values are encoded into one byte buffer, so a batch of puts allocates little.
 */
import { decodeKeyString, encodeKeyString, type FieldDictionary, ValueReader, ValueWriter } from './value-codec.js';

/** Rough heap cost of one change (Map entry, array cells), for the memory estimate. */
const ENTRY_BYTES = 64;
/** A scratch buffer up to this size is always kept for the next commit. */
const SCRATCH_KEEP_BYTES = 1 << 20;
/** A bigger one is kept while commits fill at least this inverse share of it. */
const SCRATCH_KEEP_SHARE = 4;
/** Bytes per change besides its key and value in a record or delta entry (entry type, timeout), at most. */
const ENTRY_OVERHEAD_BYTES = 9;

/**
 * How a change is looked up: by the key itself when primitive (no encoding needed), else by its
 * canonical encoding as a latin1 string.
 */
export type PendingKey = string | number;

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

/** The puts and removes of one batch, by key; the last change of a key replaces its earlier ones. */
export class PendingChanges {
  private readonly byKey = new Map<PendingKey, number>();
  private readonly byEncoding = new Map<string, number>();
  /** Offset of each change's value in {@link values}, or -1 for a remove. */
  readonly offset: number[] = [];
  /** Timeout of each change, -1 for none. */
  readonly timeout: number[] = [];
  /** The committed slot of each change's key (-1: none); valid until commit, as committed state does not change before. */
  readonly slot: number[] = [];
  /** The {@link PendingKey} of each change. */
  readonly key: PendingKey[] = [];
  /** Whether each change's key is an encoding rather than the key itself. */
  readonly encoded: boolean[] = [];
  /** The changed values, encoded with the store's dictionary so that a commit copies their bytes as they are. */
  values: ValueWriter;
  /** Keys added minus keys removed by the changes. */
  sizeDelta = 0;
  /** Bytes of values the changes before the last {@link clear} held. */
  private lastValueBytes = 0;
  private readonly reader = new ValueReader(new Uint8Array(0));

  constructor(private readonly dict: FieldDictionary) {
    this.values = new ValueWriter(4096, dict);
  }

  /** Number of changes. */
  get length(): number {
    return this.offset.length;
  }

  /** The earliest timeout of the keys these changes put, or Infinity when none has one. */
  earliestTimeout(): number {
    let min = Infinity;
    for (let p = 0; p < this.offset.length; p++) {
      const t = this.timeout[p];
      if (this.offset[p] >= 0 && t >= 0 && t < min) min = t;
    }
    return min;
  }

  /** The change of key `pk`, or -1. */
  find(pk: PendingKey, encoded: boolean): number {
    return (encoded ? this.byEncoding.get(pk as string) : this.byKey.get(pk)) ?? -1;
  }

  /**
   * Records a put of `value` (encoded now, so later mutation of the object does not leak in) with
   * `timeout`, for key `pk` whose change is `p` (-1: none yet) and whose committed slot is `slot`.
   */
  put(p: number, pk: PendingKey, encoded: boolean, slot: number, value: unknown, timeout: number): void {
    const values = this.values;
    const off = values.pos;
    try {
      values.write(value);
    } catch (err) {
      values.pos = off;
      throw err;
    }
    if (p < 0) {
      this.add(pk, encoded, off, timeout, slot);
      if (slot < 0) this.sizeDelta++;
      return;
    }
    const oldOff = this.offset[p];
    if (oldOff < 0) {
      this.sizeDelta++;
      this.offset[p] = off;
    } else if (values.pos - off <= this.valueEnd(oldOff, off) - oldOff) {
      // Overwrite the key's earlier value of this batch, so per-row updates do not grow the buffer.
      const buf = values.buf;
      for (let i = off, q = oldOff; i < values.pos; i++) buf[q++] = buf[i];
      values.pos = off;
    } else {
      this.offset[p] = off;
    }
    this.timeout[p] = timeout;
  }

  /** Records a remove of key `pk` whose change is `p` (-1: none yet) and whose committed slot is `slot`. */
  remove(p: number, pk: PendingKey, encoded: boolean, slot: number): void {
    if (p < 0) {
      if (slot < 0) return;
      this.add(pk, encoded, -1, -1, slot);
      this.sizeDelta--;
    } else if (this.offset[p] >= 0) {
      this.offset[p] = -1;
      this.timeout[p] = -1;
      this.sizeDelta--;
    }
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

  /** End of the encoded value at `off` in {@link values}, reading no further than `end`. */
  valueEnd(off: number, end = this.values.pos): number {
    const r = this.reader;
    r.setBuffer(this.values.buf, off, end);
    r.skip();
    return r.pos;
  }

  /** The key of change `p`. */
  keyOf(p: number): unknown {
    const pk = this.key[p];
    return this.encoded[p] ? decodeKeyString(pk as string) : pk;
  }

  /** The key of change `p` as its canonical encoding in latin1, which orders keys by their bytes. */
  sortKey(p: number): string {
    return this.encoded[p] ? (this.key[p] as string) : encodeKeyString(this.key[p]);
  }

  /** Writes the canonical encoding of the key of change `p`. */
  writeKey(w: ValueWriter, p: number): void {
    const pk = this.key[p];
    if (!this.encoded[p]) {
      w.write(pk);
      return;
    }
    const s = pk as string;
    w.ensure(s.length);
    for (let i = 0; i < s.length; i++) w.buf[w.pos++] = s.charCodeAt(i);
  }

  /** A mark per committed slot (below `slotCount`) that a change overrides; null when there are no changes. */
  shadowedSlots(slotCount: number): Uint8Array | null {
    if (this.offset.length === 0) return null;
    const shadowed = new Uint8Array(slotCount);
    for (const slot of this.slot) if (slot >= 0) shadowed[slot] = 1;
    return shadowed;
  }

  /** Drops every change. */
  clear(): void {
    this.byKey.clear();
    this.byEncoding.clear();
    this.offset.length = 0;
    this.timeout.length = 0;
    this.slot.length = 0;
    this.key.length = 0;
    this.encoded.length = 0;
    this.lastValueBytes = this.values.pos;
    this.values.reset();
    this.sizeDelta = 0;
  }

  /** Gives back a value buffer that a big batch grew and the last one left mostly unused, so it does not stay as dead weight. */
  releaseScratch(): void {
    if (isDeadWeight(this.values.buf.length, this.lastValueBytes)) this.values = new ValueWriter(4096, this.dict);
  }

  /**
   * About the bytes the changes take as key and value records (with `newKeysOnly`, those of keys not in
   * committed state, their values taken as the average put's): what a commit reserves at once in the arena and
   * the delta buffer instead of growing them step by step, each step a copy that touches fresh pages.
   */
  recordBytes(newKeysOnly: boolean): number {
    let keyBytes = 0;
    let puts = 0;
    let counted = 0;
    for (let p = 0; p < this.offset.length; p++) {
      const put = this.offset[p] >= 0;
      if (put) puts++;
      if (newKeysOnly && (!put || this.slot[p] >= 0)) continue;
      if (put) counted++;
      const k = this.key[p];
      keyBytes += (typeof k === 'string' ? k.length + 1 : 9) + ENTRY_OVERHEAD_BYTES;
    }
    return keyBytes + (puts === 0 ? 0 : Math.ceil((this.values.pos * counted) / puts));
  }

  /** Bytes held: the value buffer and an estimate for the change rows. */
  memoryBytes(): number {
    return this.values.buf.length + this.offset.length * ENTRY_BYTES;
  }

  private add(pk: PendingKey, encoded: boolean, off: number, timeout: number, slot: number): void {
    (encoded ? this.byEncoding : this.byKey).set(pk as string, this.offset.length);
    this.offset.push(off);
    this.timeout.push(timeout);
    this.slot.push(slot);
    this.key.push(pk);
    this.encoded.push(encoded);
  }
}
