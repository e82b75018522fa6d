/**
 * The disk store's bounded cache of hot keys: the committed records (timeout and value bytes) of keys read or
 * written recently, so that a key a batch touches again is found without a database lookup. Keys leave in the
 * order they entered once the records' bytes exceed the budget; neither a hit nor a commit that rewrites a cached
 * key reorders it, which would cost a delete and an insertion per key.
 *
 * Admission adapts to the hit rate of lookups of keys the store holds: a lookup of an absent key (a new key, as
 * every key is in a batch that fills the state) cannot hit whatever the cache admits, so it does not count.
 * While most lookups hit, every key the store reads or writes enters. When the
 * keys in use outnumber what the budget holds (state of many keys touched evenly), most lookups miss, and
 * admitting every key would only churn the cache: a map insertion, an eviction and a record kept alive past the
 * young generation per access, for a hit rate set by the budget's share of the keys. Then only one key in
 * {@link SAMPLED_ADMISSION} enters, which fills the cache as far (the share of keys cached is the same when all
 * are touched alike) and still lets a hot set in after a few accesses.
 *
 * Records are kept encoded: a read must hand out a fresh object anyway (callers may mutate what they get), and
 * decoding the bytes is that copy.
 */
import type { PendingKey } from './pending-changes.js';

/**
 * Resident bytes of one cached key besides its record bytes: the map's entry and the record's Buffer. Measured
 * with 400 K 40-byte records after a full GC: 409 bytes of RSS each as the database's reads return them, 312
 * as a commit allocates them (slices of Buffer's pool); an estimate of 96 let a 64 MiB budget hold ~180 MiB.
 */
const ENTRY_BYTES = 360;
/** Lookups over which the hit rate is measured before admission is chosen again. */
const WINDOW_LOOKUPS = 1 << 16;
/** Hit rate at or above which every key is admitted. */
const ADMIT_ALL_HIT_RATE = 0.5;
/** Below it, one key in this many is admitted. */
const SAMPLED_ADMISSION = 8;

export class HotKeyCache {
  // Primitive keys by themselves, others by their canonical encoding, as PendingChanges keeps them.
  private readonly byKey = new Map<PendingKey, Buffer>();
  private readonly byEncoding = new Map<string, Buffer>();
  private bytes = 0;
  private lookups = 0;
  private hits = 0;
  private admitAll = true;
  private skipped = 0;

  /** @param budgetBytes records beyond this many bytes (with per-key overhead) are evicted; 0 disables it */
  constructor(readonly budgetBytes: number) {}

  /** Bytes held, per-key overhead included. */
  get sizeBytes(): number {
    return this.bytes;
  }

  /** The record of `pk`; undefined when not cached (then call {@link missed} if the store holds the key). */
  get(pk: PendingKey, encoded: boolean): Buffer | undefined {
    const record = (encoded ? this.byEncoding : this.byKey).get(pk as string);
    if (record !== undefined) {
      this.hits++;
      this.counted();
    }
    return record;
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
    if (this.admitAll || (encoded ? this.byEncoding : this.byKey).has(pk as string)) return true;
    if (++this.skipped < SAMPLED_ADMISSION) return false;
    this.skipped = 0;
    return true;
  }

  /** Caches `record` (which the cache now owns) as the committed record of `pk`. */
  set(pk: PendingKey, encoded: boolean, record: Buffer): void {
    if (this.budgetBytes === 0) return;
    const map = encoded ? this.byEncoding : this.byKey;
    const old = map.get(pk as string);
    // A key already cached keeps its place (the order is of entry): replacing its record in place spares the
    // map a delete, whose hole would later cost a rehash, and an insertion at the end.
    if (old !== undefined) this.bytes -= old.length;
    else this.bytes += ENTRY_BYTES;
    map.set(pk as string, record);
    this.bytes += record.length;
    if (this.bytes > this.budgetBytes) this.evict();
  }

  /**
   * Caches a copy of `record` as the committed record of `pk`: into the bytes of the record cached for it when they
   * are as many, so that a commit rewriting hot keys allocates nothing.
   */
  setCopy(pk: PendingKey, encoded: boolean, record: Uint8Array): void {
    if (this.budgetBytes === 0) return;
    const old = (encoded ? this.byEncoding : this.byKey).get(pk as string);
    if (old !== undefined && old.length === record.length) old.set(record);
    else this.set(pk, encoded, Buffer.from(record));
  }

  /** Forgets `pk` (its key was removed). */
  delete(pk: PendingKey, encoded: boolean): void {
    const map = encoded ? this.byEncoding : this.byKey;
    const old = map.get(pk as string);
    if (old === undefined) return;
    this.bytes -= old.length + ENTRY_BYTES;
    map.delete(pk as string);
  }

  clear(): void {
    this.byKey.clear();
    this.byEncoding.clear();
    this.bytes = 0;
    this.lookups = 0;
    this.hits = 0;
    this.admitAll = true;
  }

  /** Drops the oldest keys until the cache is a tenth below its budget, so evictions come in runs. */
  private evict(): void {
    const target = this.budgetBytes * 0.9;
    for (const map of [this.byKey, this.byEncoding]) {
      for (const [k, record] of map) {
        if (this.bytes <= target) return;
        this.bytes -= record.length + ENTRY_BYTES;
        map.delete(k);
      }
    }
  }
}
