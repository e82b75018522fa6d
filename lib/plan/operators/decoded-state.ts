/**
 * Decoded per-key state kept in memory across batches, in front of a state partition's store.
 *
 * Why: the store keeps values encoded and `get` decodes a fresh copy, so an aggregation that touches most
 * of its keys every batch (sessions per user, say) decoded every touched key's buffers every batch only to
 * encode them again. Here the values a batch puts stay decoded for the next batch; the store still gets
 * every put and remove (it writes them to the checkpoint), so only reads are served from memory.
 *
 * Correctness rests on the cache holding exactly what the store holds:
 * - it is tied to one store object and to the version the store will hold next: after a batch that ended
 *   without error it is valid for the next batch id only. A batch that throws leaves it invalid (values
 *   may be half-merged), and a store that is reloaded (a replay, a partition that moved threads, a
 *   restart) is a new object without a cache;
 * - a value read from it is the cached object itself: the caller may change it in place, and must put or
 *   remove its key in the same batch (aggregations always do), so the store gets the changed value;
 * - values are what the state codec reads back unchanged (numbers, strings, arrays, Maps, Sets, bytes),
 *   so a run that restarts from the checkpoint sees the same values as one that kept them in memory.
 */
import type { KeyedState } from '../stateful-operator.js';

/**
 * Keys cached per store at most. A batch that puts more keys than this into the cache would have it start
 * over (memory stays bounded for huge state) and serve little: it stops caching there, for the rest of the
 * batch and {@link BYPASS_BATCHES} more.
 */
export const MAX_CACHED_KEYS = 1 << 16;
/**
 * A batch that began with a filled cache and made at least this many reads, fewer than 1 in
 * {@link MIN_HIT_SHARE} of them from the cache, shows a key set the cache cannot hold (or keys touched once):
 * the next {@link BYPASS_BATCHES} batches read the store directly, saving the cache's bookkeeping and
 * garbage, then the cache is filled and judged again.
 */
export const MIN_READS_TO_JUDGE = 4096;
const MIN_HIT_SHARE = 4;
export const BYPASS_BATCHES = 8;

interface Entry {
  /** The batch the cache is valid for (NaN while a batch runs or after one failed). */
  batch: number;
  /** Values by primitive key (strings, numbers, booleans, null): a Map's key equality is the store's (-0 is 0, NaN is NaN). */
  primitive: Map<unknown, unknown>;
  /** Values by composite key (arrays of such primitives), under an exact string id. */
  composite: Map<string, unknown>;
  /** Reads in the current batch served by the cache, and those that went to the store. */
  hits: number;
  misses: number;
  /** Whether the current batch began with a filled cache, so that its hit rate says something. */
  judged: boolean;
  /** Batches still to run without the cache (see MIN_READS_TO_JUDGE). */
  bypass: number;
}

/** A string that identifies an array key of primitives exactly, or undefined when the key is not cached. */
function compositeId(key: unknown[]): string | undefined {
  let s = '';
  for (const v of key) {
    switch (typeof v) {
      case 'string':
        s += `s${v.length}:${v}`;
        break;
      case 'number':
        s += `n${v}|`;
        break;
      case 'boolean':
        s += v ? 't' : 'f';
        break;
      default:
        if (v !== null) return undefined;
        s += 'z';
    }
  }
  return s;
}

function isCachedPrimitive(key: unknown): boolean {
  return typeof key === 'string' || typeof key === 'number' || typeof key === 'boolean' || key === null;
}

/** One batch's view of a state partition: reads through the cache, writes through to the store. */
export class DecodedState {
  /** The composite key `get` last saw and its id: an aggregation puts the key it has just read (a key array is a value, never changed once given). */
  private lastKey: unknown[] | null = null;
  private lastId: string | undefined;

  constructor(
    readonly state: KeyedState,
    private readonly entry: Entry,
    private readonly batchId: number,
  ) {}

  /** The value of `key` (the cached object itself: put or remove the key in this batch after changing it). */
  get(key: unknown): unknown {
    const e = this.entry;
    if (e.bypass > 0) return this.state.get(key);
    if (isCachedPrimitive(key)) return this.readThrough(e.primitive, key, key);
    const id = this.idOf(key);
    return id === undefined ? this.state.get(key) : this.readThrough(e.composite, id, key);
  }

  /** compositeId of an array key (undefined for other keys), computed once for a get and the put after it. */
  private idOf(key: unknown): string | undefined {
    if (!Array.isArray(key)) return undefined;
    if (key !== this.lastKey) {
      this.lastKey = key;
      this.lastId = compositeId(key);
    }
    return this.lastId;
  }

  /** The cached value under `id`, else `key`'s value from the store, remembered under `id`. */
  private readThrough<K>(map: Map<K, unknown>, id: K, key: unknown): unknown {
    const e = this.entry;
    let v = map.get(id);
    if (v === undefined) {
      e.misses++;
      v = this.state.get(key);
      if (v !== undefined) this.remember(map, id, v);
    } else e.hits++;
    return v;
  }

  /** Puts `value` into the store (encoded now) and keeps it decoded for later batches. */
  put(key: unknown, value: unknown, timeoutMs = -1): void {
    this.state.put(key, value, timeoutMs);
    if (this.entry.bypass > 0) return;
    if (value === undefined) this.forget(key);
    else if (isCachedPrimitive(key)) this.remember(this.entry.primitive, key, value);
    else {
      const id = this.idOf(key);
      if (id !== undefined) this.remember(this.entry.composite, id, value);
    }
  }

  remove(key: unknown): void {
    this.state.remove(key);
    if (this.entry.bypass === 0) this.forget(key);
  }

  /**
   * Tells the cache how many keys the batch is about to read and put. More than it holds would only fill it
   * up to the overflow (building a cache key for each), so it is bypassed from the start, as on overflow.
   */
  expectKeys(n: number): void {
    const e = this.entry;
    if (e.bypass > 0 || n <= MAX_CACHED_KEYS) return;
    this.bypassFromNow();
  }

  /** Empties the cache and bypasses it for this batch and the next ones, as an overflow does. */
  private bypassFromNow(): void {
    const e = this.entry;
    // Nothing is cached while bypassed, so the cache starts empty when it is tried again.
    e.primitive.clear();
    e.composite.clear();
    e.bypass = BYPASS_BATCHES + 1;
  }

  /** Marks the batch as done without error: the cache holds the state the store commits for the next batch. */
  done(): void {
    this.entry.batch = this.batchId + 1;
  }

  private forget(key: unknown): void {
    if (isCachedPrimitive(key)) this.entry.primitive.delete(key);
    else {
      const id = this.idOf(key);
      if (id !== undefined) this.entry.composite.delete(id);
    }
  }

  private remember<K>(map: Map<K, unknown>, key: K, value: unknown): void {
    const e = this.entry;
    if (!map.has(key) && e.primitive.size + e.composite.size >= MAX_CACHED_KEYS) {
      this.bypassFromNow();
      return;
    }
    map.set(key, value);
  }
}

/** The caches of one operator, one per state store object it has seen (held weakly). */
export class DecodedStateCache {
  private readonly entries = new WeakMap<KeyedState, Entry>();

  /**
   * The view of `state` for batch `batchId`: the cache when the previous batch of this store object ended
   * without error, else an empty one. It stays invalid until {@link DecodedState.done}.
   */
  begin(state: KeyedState, batchId: number): DecodedState {
    let e = this.entries.get(state);
    if (!e) {
      e = { batch: NaN, primitive: new Map(), composite: new Map(), hits: 0, misses: 0, judged: false, bypass: 0 };
      this.entries.set(state, e);
    }
    if (e.bypass > 0) e.bypass--;
    else if (e.judged && e.batch === batchId && e.misses >= MIN_READS_TO_JUDGE && e.hits * MIN_HIT_SHARE < e.misses)
      e.bypass = BYPASS_BATCHES;
    e.hits = 0;
    e.misses = 0;
    // While bypassed nothing is remembered, so the cache starts empty when it is tried again.
    if (e.batch !== batchId || e.bypass > 0) {
      e.primitive.clear();
      e.composite.clear();
    }
    e.judged = e.primitive.size + e.composite.size > 0;
    e.batch = NaN;
    return new DecodedState(state, e, batchId);
  }
}
