/**
 * The disk-backed state store of one stateful operator's state partition, as Spark's RocksDB state store with
 * changelog checkpointing: committed state lives in an LMDB database in a local working directory, so it is
 * bounded by disk rather than memory, and the checkpoint gets the same delta file per version and periodic
 * snapshot as the memory store writes (state-file-format.ts). The checkpoint stays the truth: the working
 * database is a copy of one committed version that is rebuilt from the checkpoint's files when it is absent,
 * behind, ahead of the version a batch needs (a replay), or from another history (a checkpoint started over).
 *
 * Database layout: `state` maps a key's canonical encoding to its record (f64 timeout, -1 for none, then the
 * value encoded with the store's field dictionary); `timeouts` is the timeout index, empty entries keyed by a
 * time as a big-endian f64 and then the key, so candidates for being due are an ordered range; `meta` holds
 * the version, the key count, the range tombstone and the dead records behind it, the field dictionary, the
 * checksum of the version's delta file (which ties the database to this checkpoint's history) and the boot the
 * database was last written in.
 *
 * The timeout index is kept lazily, as timer services on a key-value store do: every key with a timeout has an
 * entry at or before it, and the key's record holds the timeout itself. A timeout that moves later (a session
 * extended, a processing-time timeout set again on every update) keeps its entry, so an update writes its
 * record alone; a timeout that appears or moves earlier gets a new entry. A scan checks each entry it meets
 * against the record, and the next commit moves the entries it found behind their key's timeout to it and drops
 * those whose key has none, so an entry is rewritten about once per timeout that passes, not once per update.
 *
 * Uncommitted changes stay in memory ({@link PendingChanges}) until {@link DiskStateStore.commit}, which writes the
 * delta file. Committed changes then stay in memory too, merged into one set of unapplied changes over the
 * database's version, until a snapshot is due or they outgrow their budget (a write-back cache: a key changed in
 * many batches is written once); the checkpoint's delta files hold them meanwhile, so a crash leaves the database
 * behind the checkpoint, which the next open catches up. They are applied in key order, in transactions of at most a
 * few thousand changes: each transaction then rewrites only the pages of one key range, and the pages it frees
 * serve the next one, so the database file stays near its live size instead of holding a second copy of every
 * page a batch touched. A replay of a failed batch never sees its own changes half-written: a crash before they
 * are applied leaves the database behind the checkpoint, which the next open catches up, and one while they are
 * applied leaves it marked as between two versions, which the next open rebuilds.
 *
 * A batch that closes keys (a due-key scan, and a remove or a later timeout for each key it returned) leaves every
 * live key up to the last one returned, in (timeout, key) order, with a timeout after it: so the removed keys'
 * records stay where they are, behind a range tombstone over that order (timeout-tombstone.ts) that reads treat as
 * absent, and only their index entries, which lie together, are removed. Once the dead records outnumber the live
 * ones, a sweep removes them in key order, so a leaf is rewritten once for all of them rather than once per batch
 * that removed one of its keys. A key put at or before the tombstone (a timeout already passed, or the tombstone's
 * own time with an earlier key) is revived: the meta names it as alive behind the tombstone, until a sweep, or
 * until it is removed or put after the tombstone; a commit that would name more than MOST_REVIVED sweeps instead.
 *
 * Transactions are not flushed to disk (LMDB's noSync): the database is a copy of the checkpoint that a process
 * crash leaves intact, and one written before the machine's last restart is rebuilt rather than trusted.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { type Database, open, type RangeOptions, type RootDatabase } from 'lmdb';
import { writeFileAtomicSync } from '../checkpoint/atomic-file.js';
import { SluiceError } from '../errors.js';
import { grown } from '../util/grown.js';
import { byteOrder, compareBytes } from './byte-order.js';
import { HotKeyCache } from './hot-key-cache.js';
import { KeyFilter } from './key-filter.js';
import { type BranchBudget, FileRead, LmdbFileReader, ManyReads } from './lmdb-file-reader.js';
import { checkTimeout, isPrimitiveKey, PendingChanges, type PendingKey } from './pending-changes.js';
import {
  deltaChecksum,
  hasDeltasAfter,
  purgeStateFiles,
  replayStateVersion,
  type StateChangeTarget,
  StateFileWriter,
} from './state-file-format.js';
import { atOrBefore, fromMeta, later, NOWHERE, type TimeoutPosition, toMeta } from './timeout-tombstone.js';
import { FieldDictionary, Latin1View, ValueReader, ValueWriter } from './value-codec.js';
import { checkCommitVersion, type StateCommitMetrics, type VersionedStateStore } from './versioned-state-store.js';

/** Options of {@link DiskStateStore.open}. */
export interface DiskStateStoreOptions {
  /**
   * A snapshot is due every this many versions, and written once the changes since the last one amount to half
   * the keys (else at a later multiple), as Spark's minDeltasForSnapshot is a minimum. Default 10.
   */
  snapshotInterval?: number;
  /** Bytes of committed records kept in memory for the most recently used keys. Default 64 MiB. */
  cacheBytes?: number;
  /**
   * When the process's resident file-backed memory exceeds this many bytes, a store maps its database afresh,
   * so that the pages it touched leave the process's resident set (they stay in the OS's page cache): the store
   * of the thread that read the most since it was last mapped, as often as needed. Checked every few hundred
   * point reads of the thread's stores, between the transactions of a commit or a rebuild, and while a scan of the
   * whole database (a snapshot, complete-mode output) or of the timeout index (due keys) goes, so no access pattern
   * keeps more of the database resident. A store whose database outgrows several times its share of this reads
   * its records with pread instead (see PREAD_FROM_SHARES). Default 256 MiB; Infinity never remaps and reads
   * through the map only; 0 reads with pread only.
   */
  mappedBytes?: number;
  /**
   * Bytes of committed changes kept in memory ahead of the database, so that a key changed in several batches
   * is written to it once: they are applied when a snapshot is due, when they hold more than this or stand for
   * more than this of delta files (which bounds what a restart after a crash replays), when a batch's keys mostly
   * had none (see MIN_REPEAT_SHARE), and on close. Default a quarter of cacheBytes; 0 applies each commit's changes at
   * once.
   */
  writeBackBytes?: number;
}

/** LMDB's key size limit, less the timeout index's 8-byte prefix. */
const MAX_KEY_BYTES = 1978 - 8;
const RECORD_HEADER = 8;
const EMPTY = Buffer.alloc(0);
/** A record's header for no timeout: -1 as a float64, little-endian. */
const NO_TIMEOUT = Buffer.alloc(RECORD_HEADER);
NO_TIMEOUT.writeDoubleLE(-1, 0);
/**
 * Puts `key` after the last key of `db` (LMDB's MDB_APPEND), inside a write transaction. lmdb's putSync (typed
 * void) returns false when the key does not sort after the last one.
 */
function append(db: Database<Buffer, Uint8Array>, key: Uint8Array, value: Buffer): void {
  if ((db.putSync(key, value, { append: true }) as unknown) === false) throw new Error('its keys are not distinct');
}
/** Longest bytes passed to LMDB through a scratch buffer of their exact length (see exactScratch). */
const EXACT_SCRATCH_MAX = 1024;

/**
 * A buffer of exactly `n` bytes that the next call for that length in `pool` reuses: LMDB takes a key or a
 * value as a whole buffer and copies it, so a commit passes each through one of these instead of making a view
 * (an object for the young generation) per key, record and index entry.
 */
function exactScratch(pool: Buffer[], n: number): Buffer {
  if (n > EXACT_SCRATCH_MAX) return Buffer.allocUnsafe(n);
  let b = pool[n];
  if (b === undefined) {
    b = Buffer.allocUnsafe(n);
    pool[n] = b;
  }
  return b;
}

/**
 * The least share of a batch's changes whose keys already had an unapplied change for keeping changes unapplied
 * to pay: below it (many keys, each changed rarely) few database writes are saved and the memory is not worth it.
 */
const MIN_REPEAT_SHARE = 0.25;
/** Meta version while a rebuild is under way: the database must be rebuilt again. */
const REBUILDING = -1;
/** The key filter a close saves beside the database (see DiskStateStore.keyFilter). */
const KEY_FILTER_FILE = 'key-filter';
/** A filter built for n keys is sized for this many times n, for the keys the batches after it add. */
const FILTER_HEADROOM = 1.25;
/**
 * A snapshot due by the interval is written only once the changes committed since the last one amount to this
 * share of the keys, and waits for a later multiple of the interval otherwise. A snapshot writes the whole state;
 * where it is large and each batch changes little of it, one every few batches would cost many times the deltas
 * it lets go. A restart from the checkpoint's files then replays at most half a snapshot's keys in deltas, beyond
 * the interval's.
 */
const SNAPSHOT_CHANGE_SHARE = 0.5;
/**
 * Changes applied per write transaction. Small enough that a transaction's pages are a narrow key range, large
 * enough that the per-transaction cost (meta writes, page flush) stays small against the changes.
 */
const CHANGES_PER_TRANSACTION = 4096;
/**
 * LMDB's page size for a new database (an existing one keeps its own). Each change a commit applies copies the
 * leaf it lands on, and where the database is far larger than a batch's changes, most land on leaves of their
 * own: larger pages hold more keys, so a batch copies fewer of them and faults on fewer.
 */
const PAGE_BYTES = 16 << 10;
/** Resident bytes a point read may add: the kernel maps the cached pages of the 64 KiB around a faulting one. */
const MAPPED_BYTES_PER_READ = 64 << 10;
/**
 * Index entries a due-key scan reads ahead at most and at least (see readAhead): a closing batch's due keys at
 * once, so that their records are read in file order, a few MiB of the scan's memory.
 */
const MOST_ENTRIES_AHEAD = 1 << 18;
const FEWEST_ENTRIES_AHEAD = 1 << 10;
/** Fewest changes per write transaction of a commit, however small the mapped budget (see changesPerTransaction). */
const MIN_CHANGES_PER_TRANSACTION = 256;
/**
 * Database point reads of a thread's stores between two checks of the resident mapped pages: about 16 MiB of pages
 * (a fault maps 64 KiB), and a check (about 16 µs) adds less than a tenth of a microsecond per read.
 */
const READS_PER_MAP_CHECK = 256;
/** A range of a scan: lmdb's types leave out `exclusiveStart`, which its range reads honour. */
type ScanRange = RangeOptions & { exclusiveStart?: boolean };
/**
 * Disk stores open in this thread. The mapped budget is the process's, and the pages a store's reads mapped leave
 * the resident set only when that store maps its database afresh: so the thread's reads are counted together, and
 * when the resident pages are over budget it is the store that read the most since its last remap that remaps.
 */
const openStores = new Set<DiskStateStore<unknown, unknown>>();
/** Database point reads of this thread's stores since the last check of the resident mapped pages. */
let readsSinceMapCheck = 0;
/**
 * Branch pages the file readers of this thread's stores keep between commits: an eighth of the default mapped
 * budget, which holds the branch pages of a few hundred million keys' B-trees (one branch page per ~200 leaves).
 */
const branchBudget: BranchBudget = { maxBytes: 32 << 20, usedBytes: 0 };
/**
 * Times the mapped budget a store's database must outgrow, as its share of the budget (the budget over the thread's
 * open stores), before its point reads go with pread instead of through the map (see LmdbFileReader). A read through
 * the map costs about 1.5 µs while its page is mapped and tens of µs when it faults; a pread a few µs, more in a
 * large process on a virtual machine. With every read through pread, q11 made 0.83x the events per CPU second at
 * 2.3 times its share (10 M keys), and 1.67x at 8 times (100 M keys, 20 M events).
 */
const PREAD_FROM_SHARES = 4;
/**
 * Entries of a full scan between two such checks: a few MiB of pages at most, as it maps pages in key order. A scan
 * of the timeout index reads a record per entry, and checks every READS_PER_MAP_CHECK entries instead.
 */
const SCANNED_PER_MAP_CHECK = 4096;
/**
 * The most keys kept alive behind the tombstone by name (see DiskStateStore.revived): the meta holds them all, and
 * every read of a record behind the tombstone looks its key up. A commit that would revive more sweeps instead.
 */
const MOST_REVIVED = 1 << 14;

/**
 * This boot of the machine, so that a database whose unflushed writes a machine crash may have lost is not
 * trusted; null where the OS does not say.
 */
function bootId(): string | null {
  try {
    return fs.readFileSync('/proc/sys/kernel/random/boot_id', 'latin1').trim();
  } catch {
    return null;
  }
}

let statmScratch: Buffer | undefined;
/** /proc/self/statm, open for the thread's life: a read at offset 0 gives fresh figures, at a quarter of an open's cost. */
let statmFd: number | undefined;
let pageBytes = 0;

/**
 * The process's resident file-backed and shared memory (mapped files, the database's pages among them); 0 where
 * unknown. Read from /proc/self/statm, in pages, which costs about a twentieth of parsing /proc/self/status, so
 * that the store can check it every few hundred reads; the page size is taken once from the two files' totals.
 */
function residentFileBytes(): number {
  try {
    statmScratch ??= Buffer.allocUnsafe(128);
    statmFd ??= fs.openSync('/proc/self/statm', 'r');
    const n = fs.readSync(statmFd, statmScratch, 0, statmScratch.length, 0);
    const [, resident, shared] = statmScratch.toString('latin1', 0, n).split(' ').map(Number);
    if (pageBytes === 0) {
      const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync('/proc/self/status', 'latin1'));
      if (!m || !(resident > 0)) return 0;
      pageBytes = 2 ** Math.round(Math.log2((Number(m[1]) * 1024) / resident));
    }
    return shared * pageBytes;
  } catch {
    return 0;
  }
}

/**
 * Indexes of `times` in ascending order of their times, ties in their order in `times`. When the span of times
 * times their count fits a double exactly, each (time, index) pair is packed into one number and sorted natively.
 */
function timeOrder(times: ArrayLike<number>): Int32Array {
  const n = times.length;
  const order = new Int32Array(n);
  let min = Infinity;
  let max = -Infinity;
  for (let i = 0; i < n; i++) {
    const t = times[i];
    if (t < min) min = t;
    if (t > max) max = t;
  }
  if (n > 0 && (max - min + 1) * n <= Number.MAX_SAFE_INTEGER) {
    const packed = new Float64Array(n);
    for (let i = 0; i < n; i++) packed[i] = (times[i] - min) * n + i;
    packed.sort();
    for (let i = 0; i < n; i++) order[i] = packed[i] % n;
    return order;
  }
  for (let i = 0; i < n; i++) order[i] = i;
  return order.sort((a, b) => times[a] - times[b] || a - b);
}

/**
 * Due keys as parallel arrays: key i is due at `times[i]`, its encoding is `encodings.buf[encStart[i], encEnd[i])`,
 * its record in the store's due records starts at `records[i]` (-1: due through its pending change), and
 * `exact[i]` says whether the scan met an index entry of the key at its timeout.
 */
interface DueKeys<K> {
  times: number[];
  keys: K[];
  encodings: ValueWriter;
  encStart: number[];
  encEnd: number[];
  records: number[];
  exact: boolean[];
}

/**
 * Sorts due keys by time and then encoding, and keeps one of each key (a key met through two index entries comes
 * twice, with the same time), its `exact` the or of the two. The keys met at their timeouts are in that order
 * already (the index's), so only the others are sorted, by a radix sort of their encodings' bytes and then a
 * stable sort by time, and merged in: no key needs a string or a comparator call, and a closing batch whose
 * sessions mostly closed at their entries sorts only those that were extended.
 */
function sortDue<K>(due: DueKeys<K>): void {
  const { times, encStart, encEnd, exact } = due;
  const n = times.length;
  const run: number[] = [];
  const rest: number[] = [];
  for (let i = 0; i < n; i++) (exact[i] ? run : rest).push(i);
  if (rest.length === 0) return;
  const m = rest.length;
  const starts = new Int32Array(m + 1);
  for (let i = 0; i < m; i++) starts[i + 1] = starts[i] + encEnd[rest[i]] - encStart[rest[i]];
  const packed = new Uint8Array(starts[m]);
  const src = due.encodings.buf;
  for (let i = 0, b = 0; i < m; i++) for (let j = encStart[rest[i]]; j < encEnd[rest[i]]; j++) packed[b++] = src[j];
  const byKey = byteOrder(packed, starts, m);
  const byTime = timeOrder(Array.from(byKey, (i) => times[rest[i]]));
  const compare = (a: number, b: number): number =>
    times[a] - times[b] || compareBytes(src, encStart[a], encEnd[a], src, encStart[b], encEnd[b]);
  const order: number[] = [];
  for (let r = 0, s = 0; r < run.length || s < m; ) {
    const k =
      s === m || (r < run.length && compare(run[r], rest[byKey[byTime[s]]]) <= 0) ? run[r++] : rest[byKey[byTime[s++]]];
    const last = order.length > 0 ? order[order.length - 1] : -1;
    if (last >= 0 && compare(last, k) === 0) {
      if (exact[k]) exact[last] = true;
    } else order.push(k);
  }
  const permute = <T>(a: T[]): void => {
    const copy = a.slice(0, n);
    a.length = order.length;
    for (let i = 0; i < order.length; i++) a[i] = copy[order[i]];
  };
  permute(times);
  permute(due.keys);
  permute(encStart);
  permute(encEnd);
  permute(due.records);
  permute(exact);
}

/**
 * Timeout index entries read ahead of a due-key scan, copied out of the map: entry i is `bytes[at[i], at[i + 1])`.
 * The scan reads their keys' records together first (see LmdbFileReader.getMany).
 */
class EntriesAhead {
  private bytes = new ValueWriter(1 << 16);
  at = new Int32Array(1 << 10);
  length = 0;

  reset(): void {
    this.length = 0;
    this.bytes.reset();
  }

  /** Empties it and lets buffers grown past their first size go. */
  release(): void {
    this.reset();
    if (this.bytes.buf.length > 1 << 16) this.bytes = new ValueWriter(1 << 16);
    if (this.at.length > 1 << 10) this.at = new Int32Array(1 << 10);
  }

  add(entry: Uint8Array): void {
    const n = this.length;
    if (n + 2 > this.at.length) this.at = grown(this.at, 2 * (n + 2));
    this.bytes.raw(entry);
    this.at[n + 1] = this.bytes.pos;
    this.length = n + 1;
  }

  /** Entry `i` (a view, valid until the next reset). */
  entry(i: number): Buffer {
    return this.bytes.asBuffer().subarray(this.at[i], this.at[i + 1]);
  }

  /** The key encoding of entry `i` (a view), without its 8-byte time. */
  key(i: number): Buffer {
    return this.bytes.asBuffer().subarray(this.at[i] + 8, this.at[i + 1]);
  }
}

/**
 * Timeout index entries that the scans since the last commit found off their key's timeout, for the commit to
 * move or drop, as parallel arrays: entry i is at `at[i]`, its key's encoding is `encodings.buf[start[i], end[i])`,
 * pending changes look the key up as `pks[i]` (`encoded[i]`), and `committed[i]` is the key's committed timeout
 * (-1: none or absent).
 */
class LooseEntries {
  at: number[] = [];
  encodings = new ValueWriter(256, null, true);
  start: number[] = [];
  end: number[] = [];
  pks: PendingKey[] = [];
  encoded: boolean[] = [];
  committed: number[] = [];

  get length(): number {
    return this.at.length;
  }

  add(entry: Uint8Array, at: number, pk: PendingKey, encoded: boolean, committed: number): void {
    this.at.push(at);
    this.start.push(this.encodings.pos);
    this.encodings.raw(entry, 8, entry.length);
    this.end.push(this.encodings.pos);
    this.pks.push(pk);
    this.encoded.push(encoded);
    this.committed.push(committed);
  }

  clear(): void {
    this.at.length = this.start.length = this.end.length = 0;
    this.pks.length = this.encoded.length = this.committed.length = 0;
    if (this.encodings.buf.length > 1 << 16) this.encodings = new ValueWriter(256, null, true);
    else this.encodings.reset();
  }
}

/**
 * The timeout index writes of one commit, by (time, key), as parallel typed arrays sized for the most writes the
 * commit can have: a batch of a million changes fills them without growing arrays element by element.
 */
interface IndexWrites {
  count: number;
  times: Float64Array;
  /** The number of the pending change whose key it is, or for a loose entry's key -1 - its number. */
  keys: Int32Array;
  removes: Uint8Array;
}

/**
 * A commit's changes in the order it writes them (their keys' order), gathered in one pass before its
 * transactions: change i's key is `bytes[at[2i], at[2i+1])` and its record `bytes[at[2i+1], at[2i+2])`, empty for a
 * remove. The changes' rows and bytes lie in the order the batch made them, so reading them in key order between
 * database writes would wait on a cache miss at each; gathered in a tight loop, the misses overlap.
 */
interface OrderedChanges {
  bytes: Uint8Array;
  at: Int32Array;
  /** Whether change i's key was committed before the batch. */
  existed: Uint8Array;
  /** The hot-key cache's slot of change i's key when the change was added (-1: none), and its stamp. */
  hotSlots: Int32Array;
  hotStamps: Int32Array;
}

/**
 * What merging and applying a change need to know of its key as the unapplied changes and the database hold it,
 * noted when the change is made so that the commit need not look the key up again, by change number as parallel
 * arrays.
 */
class KeyNotes {
  /** The key's timeout in the database (-1: none or absent). */
  oldTimeouts = new Float64Array(256);
  /**
   * Whether the key was due by the last scan when its change was made, through loose entries only: the scan met
   * every entry of a due key up to its timeout, so none is at the timeout for the commit to remove.
   */
  noEntryAtTimeout = new Uint8Array(256);
  /**
   * The hot-key cache's slot of the key when its change was made (-1: not cached) and the slot's stamp then, so
   * that the commit rewrites a cached record without looking its key up again.
   */
  hotSlots = new Int32Array(256);
  hotStamps = new Int32Array(256);
  /** The key's unapplied change when a pending change was made (-1: none), for the commit's merge. */
  unappliedChanges = new Int32Array(256);

  /** Makes room for change `p`. */
  reserve(p: number): void {
    if (p < this.oldTimeouts.length) return;
    const n = Math.max(2 * p, 256);
    this.oldTimeouts = grown(this.oldTimeouts, n);
    this.noEntryAtTimeout = grown(this.noEntryAtTimeout, n);
    this.hotSlots = grown(this.hotSlots, n);
    this.hotStamps = grown(this.hotStamps, n);
    this.unappliedChanges = grown(this.unappliedChanges, n);
  }

  /** Notes of change `p` of `from` as this set's change `q`. */
  copy(from: KeyNotes, p: number, q: number): void {
    this.reserve(q);
    this.oldTimeouts[q] = from.oldTimeouts[p];
    this.noEntryAtTimeout[q] = from.noEntryAtTimeout[p];
    this.hotSlots[q] = from.hotSlots[p];
    this.hotStamps[q] = from.hotStamps[p];
  }
}

/**
 * A snapshot's load between its chunks (see DiskStateStore.loadSnapshot): the last key put, whether every chunk
 * was appended after the one before, and the keys with a timeout, as the time and where the key lies in the
 * snapshot file's bytes, which stay in memory until the last chunk; typed arrays, not an object per key.
 */
class SnapshotLoad {
  taken = 0;
  /** The timed entries in (time, key) order once the last chunk is in, and how many of them are written. */
  indexOrder: Int32Array | null = null;
  indexNext = 0;
  lastKey: Uint8Array | null = null;
  inOrder = true;
  count = 0;
  times = new Float64Array(1024);
  private at = new Float64Array(1024);
  private length = new Int32Array(1024);
  private buffer: ArrayBufferLike | null = null;

  timed(time: number, key: Uint8Array): void {
    if (this.count === this.times.length) {
      this.times = grown(this.times, 2 * this.count);
      this.at = grown(this.at, 2 * this.count);
      this.length = grown(this.length, 2 * this.count);
    }
    if (this.buffer === null) this.buffer = key.buffer;
    else if (key.buffer !== this.buffer) throw new Error("a snapshot's keys lie in more than one buffer");
    this.times[this.count] = time;
    this.at[this.count] = key.byteOffset;
    this.length[this.count++] = key.length;
  }

  /** The key of timed entry `c`. */
  key(c: number): Uint8Array {
    return new Uint8Array(this.buffer as ArrayBuffer, this.at[c], this.length[c]);
  }
}

/** A versioned key-value store for one (operator, state partition) whose committed state is on local disk. */
export class DiskStateStore<K = unknown, V = unknown> implements VersionedStateStore<K, V> {
  /** The checkpoint directory holding this store's delta and snapshot files. */
  readonly dir: string;
  /** The working directory of the store's database. */
  readonly localDir: string;
  /** A snapshot is due every this many versions (see SNAPSHOT_CHANGE_SHARE). */
  readonly snapshotInterval: number;
  /** Changes committed since the last snapshot; unknown (Infinity) after an open, until the next. */
  private changesSinceSnapshot = Infinity;

  private _version = -1;
  /** The version the database holds (its meta's), which the unapplied changes take to the store's version. */
  private dbVersion = -1;
  /** Keys in the database. */
  private count = 0;
  private dict = new FieldDictionary();
  /** The changes since the last commit. */
  private pending = new PendingChanges(this.dict);
  private pendingNotes = new KeyNotes();
  /**
   * Committed changes not yet in the database, as one set of changes over the database's version: their delta
   * files are in the checkpoint, so a crash only leaves the database behind it, to be caught up on the next open.
   * Kept until a snapshot is due or they outgrow their budget, so that a key changed in many batches in between
   * is written to the database once, as a write-back cache in front of a key-value store does.
   */
  private unapplied = new PendingChanges(this.dict);
  private unappliedNotes = new KeyNotes();
  /** The delta checksum of the last version the unapplied changes reach, which the database records with it. */
  private unappliedChecksum: number | null = null;
  /**
   * Bytes the unapplied changes may hold, and bytes of delta files they may stand for (what a restart after a
   * crash replays), before a commit applies them.
   */
  private readonly unappliedBytes: number;
  /** Bytes of the delta entries of the versions the unapplied changes stand for. */
  private unappliedDeltaBytes = 0;
  /**
   * The share of the last merged batch's changes whose key had an unapplied change (-1: not measured since the last
   * snapshot, so the next batch is kept to measure it).
   */
  private repeatShare = -1;
  private readonly looseEntries = new LooseEntries();
  /**
   * Index entries the scans since the last commit went through, in order from the first: the loose ones among them
   * are in looseEntries. Scans start at the first entry and the index changes only in commits, so a later scan
   * meets the same entries first and notes only the ones past these.
   */
  private scannedEntries = 0;
  /** Entries the running scan has gone through. */
  private scanEntries = 0;
  private readonly files = new StateFileWriter();
  private readonly hot: HotKeyCache;
  /**
   * The keys the database holds, so that a read of a key it does not hold is skipped; null while unknown (after a
   * crash, until the next snapshot builds it from the database). Every write of this store adds to it, so it stays
   * whole while the database is at {@link filterVersion}, which another store or process may have moved it from.
   */
  private keyFilter: KeyFilter | null = null;
  private filterVersion = -1;
  /** The snapshot being loaded, between its chunks. */
  private snapshotLoad: SnapshotLoad | null = null;
  private readonly mappedBytes: number;
  /**
   * Changes per write transaction of a commit. Where the database outgrows memory, each change of a key far from
   * the last one reads a leaf page that is not resident, mapping MAPPED_BYTES_PER_READ around it, and the resident
   * pages are checked between transactions only: so one transaction may add at most a quarter of the budget.
   */
  private readonly changesPerTransaction: number;
  private env!: RootDatabase;
  /**
   * Point reads of the state database with pread once it is several times its share of the mapped budget (see
   * PREAD_FROM_SHARES and LmdbFileReader): each maps nothing, where a read through the map of a database far
   * larger than the budget faults on a page seldom still mapped.
   */
  private readonly fileReader: LmdbFileReader;
  private state!: Database<Buffer, Uint8Array>;
  private timeouts!: Database<Buffer, Buffer>;
  private meta!: Database<unknown, string>;
  /** Canonical encoding of the key being looked up. */
  private readonly keyScratch = new ValueWriter(256, null, true);
  private readonly latin1 = new Latin1View();
  // Scratch buffers by length (exactScratch) of the keys, records and index entries a commit writes.
  private readonly keyPool: Buffer[] = [];
  private readonly recordPool: Buffer[] = [];
  private readonly indexPool: Buffer[] = [];
  private readonly reader = new ValueReader(new Uint8Array(0));
  private decodeScratch = new Uint8Array(256);
  private readonly keyReader = new ValueReader(new Uint8Array(0));
  private committing = false;
  private readonly boot: string | null;
  /** Database point reads since the database was last mapped. */
  private readsSinceRemap = 0;
  /** Open iterators over the database, which a remap would invalidate. */
  private openScans = 0;
  // Results of locate(): the key's pending change, else whether it is committed (its record then in
  // recordBytes, or in its unapplied change) and its committed timeout (-1: none or absent).
  private locPending = -1;
  /** The located key's unapplied change (-1: none). */
  private locUnapplied = -1;
  private locFound = false;
  private locTimeout = -1;
  /** The hot-key cache's slot holding the located key's record (-1: none known) and its stamp. */
  private locSlot = -1;
  private locStamp = 0;
  /** The hot-key cache's slot in which committedRecord() found or left the key's record (-1: none), and its stamp. */
  private recordSlot = -1;
  private recordStamp = 0;
  // The committed record committedRecord() or locate() last found: recordBytes from recordStart to recordEnd,
  // in the database's read buffer, the hot-key cache's arena or the due records, so valid only until the next
  // read of any store in the thread or change to the cache.
  private recordBytes: Buffer = EMPTY;
  private recordStart = 0;
  private recordEnd = 0;
  // The last primitive key located in committed state, so that has(k), get(k) and put(k) look it up once. Valid
  // while no pending change was added, as in the memory store. It serves a record only from where it stays put
  // meanwhile: the due records, an unapplied change, or the hot-key cache's slot while the slot's stamp holds.
  private memoKey: unknown = undefined;
  private memoPending = -1;
  private memoFound = false;
  private memoTimeout = -1;
  private memoDue = -1;
  private memoSlot = -1;
  private memoStamp = 0;
  /** The memo's key's unapplied change (-1: none), which then holds its state. */
  private memoUnapplied = -1;
  // Results of entryTimeout(): the entry's key, and whether a pending or unapplied change holds it.
  private entryKey: K | undefined = undefined;
  private entryPending = false;
  // The committed records of the keys the last due-key scan returned, copied one after another into dueBytes
  // (dueStart[i] is where due key i's record starts, -1 for a key that was due through its pending change), so
  // that the operator's read of each due key, which follows the scan in its order, needs no second lookup. Valid
  // until the committed state changes (a commit, an abort, a recovery).
  private dueKeys: unknown[] = [];
  private dueStart: number[] = [];
  /** Whether the last scan met an index entry of due key i at its timeout. */
  private dueExact: boolean[] = [];
  private dueBytes: Buffer = EMPTY;
  /** The due keys' encodings while a scan runs. */
  private dueEncodings = new ValueWriter(256, null, true);
  /** Index entries a due-key scan read ahead, and their keys' records read together. */
  private readonly entriesAhead = new EntriesAhead();
  private readonly recordsAhead = new ManyReads();
  /** Whether recordsAhead holds the records of entriesAhead's keys. */
  private recordsAheadRead = false;
  /** The entry of entriesAhead the scan is at, -1 outside a scan. */
  private aheadAt = -1;
  private dueEnd = 0;
  /** The due key the operator is expected to read next. */
  private dueNext = 0;
  /** The due key locate() last found (-1: none), whose record is in dueBytes. */
  private locDue = -1;
  /**
   * The database's range tombstone (see timeout-tombstone.ts): the records at or before it are dead, their keys
   * removed, and stay in the database until a sweep drops them (NOWHERE: none are).
   */
  private tombstone: TimeoutPosition = NOWHERE;
  /** Dead records in the database, at most: a put over a dead record is not told apart from one of a new key. */
  private deadRecords = 0;
  /**
   * Keys whose records lie at or before the tombstone but live: put there after it passed them (a timeout already
   * passed, or one the tombstone's last key sorts after at the same time), by their encodings in latin1.
   */
  private revived = new Set<string>();
  /** Whether revived changed since the meta last saved it. */
  private revivedChanged = false;
  /** How far applying the unapplied changes may move the tombstone (see noteTombstoneReach). */
  private reach: TimeoutPosition = NOWHERE;
  /** Due-key scans since the last commit, the keys the last one returned, and where they end. */
  private scansSinceCommit = 0;
  private scanKeys: unknown[] = [];
  private scanEnd: TimeoutPosition = NOWHERE;

  private constructor(dir: string, localDir: string, opts: DiskStateStoreOptions) {
    const interval = opts.snapshotInterval ?? 10;
    if (!Number.isInteger(interval) || interval < 1) {
      throw new SluiceError(
        'BAD_OPTION',
        `state snapshot interval must be a positive integer, got ${interval}`,
        'set snapshotInterval to e.g. 10 (a snapshot every 10 batches)',
      );
    }
    this.dir = dir;
    this.localDir = localDir;
    this.snapshotInterval = interval;
    this.hot = new HotKeyCache(opts.cacheBytes ?? 64 << 20);
    this.unappliedBytes = opts.writeBackBytes ?? (opts.cacheBytes ?? 64 << 20) / 4;
    fs.mkdirSync(localDir, { recursive: true });
    this.boot = bootId();
    this.mappedBytes = opts.mappedBytes ?? 256 << 20;
    this.changesPerTransaction = Math.max(
      MIN_CHANGES_PER_TRANSACTION,
      Math.min(CHANGES_PER_TRANSACTION, Math.floor(this.mappedBytes / 4 / MAPPED_BYTES_PER_READ)),
    );
    this.openDatabase();
    this.fileReader = new LmdbFileReader(
      path.join(localDir, 'data.mdb'),
      'state',
      () => (PREAD_FROM_SHARES * this.mappedBytes) / Math.max(1, openStores.size),
      branchBudget,
    );
    openStores.add(this as DiskStateStore<unknown, unknown>);
    this.takeSavedFilter();
  }

  /**
   * Takes the key filter the last close saved, if any. The file goes at once: the database changes from here on
   * without it, and a crash must not leave a filter that misses the keys written since.
   */
  private takeSavedFilter(): void {
    const file = path.join(this.localDir, KEY_FILTER_FILE);
    let saved: ReturnType<typeof KeyFilter.parse> = null;
    try {
      saved = KeyFilter.parse(fs.readFileSync(file));
      fs.rmSync(file);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    if (saved === null) return;
    this.keyFilter = saved.filter;
    this.filterVersion = saved.tag;
  }

  /** Saves the key filter beside the database for the next open, when it describes the database as it is. */
  private saveFilter(): void {
    if (this.keyFilter === null || this.filterVersion !== this.metaVersion() || this.meta.get('applying') !== undefined)
      return;
    try {
      writeFileAtomicSync(path.join(this.localDir, KEY_FILTER_FILE), this.keyFilter.serialize(this.filterVersion));
    } catch {
      // The filter only saves reads: without it the next open reads every key until its first snapshot.
    }
  }

  private openDatabase(): void {
    // Unflushed writes only where a restart can be told apart, so that a database they may have torn is rebuilt.
    const noSync = this.boot !== null;
    this.env = open({ path: this.localDir, maxDbs: 4, noSync, noMetaSync: noSync, pageSize: PAGE_BYTES });
    this.state = this.env.openDB({ name: 'state', keyEncoding: 'binary', encoding: 'binary' });
    this.timeouts = this.env.openDB({ name: 'timeouts', keyEncoding: 'binary', encoding: 'binary' });
    this.meta = this.env.openDB({ name: 'meta' });
  }

  /**
   * Maps the database afresh when the process's resident mapped pages are over budget (see mappedBytes) and no
   * iterator holds the mapping. The store writes only in synchronous transactions, so closing has nothing to
   * wait for and unmaps at once.
   */
  private remapIfOverBudget(): void {
    if (this.openScans > 0 || !Number.isFinite(this.mappedBytes) || residentFileBytes() <= this.mappedBytes) return;
    this.remap();
  }

  private remap(): void {
    this.env.resetReadTxn();
    void this.env.close();
    this.openDatabase();
    this.readsSinceRemap = 0;
  }

  /**
   * Runs `write` in a write transaction; the file reader then forgets the pages it kept, which the transaction
   * may have freed and reused.
   */
  private transact(write: () => void): void {
    try {
      this.env.transactionSync(write);
    } finally {
      this.fileReader.invalidate();
    }
  }

  /**
   * While the process's resident mapped pages are over `budget`, maps afresh the database of this thread's store
   * that read the most since its last remap (and so holds the most of them). Another store may be remapped
   * between its reads: it holds no record of the old mapping (a read's record is copied out of it), and one
   * with an iterator open is passed over.
   */
  private static remapMostReadIfOverBudget(budget: number): void {
    if (!Number.isFinite(budget)) return;
    while (residentFileBytes() > budget) {
      let most: DiskStateStore<unknown, unknown> | null = null;
      for (const s of openStores)
        if (s.openScans === 0 && s.readsSinceRemap > 0 && (most === null || s.readsSinceRemap > most.readsSinceRemap))
          most = s;
      if (most === null) return;
      most.remap();
    }
  }

  /**
   * Opens the store whose checkpoint files are in `dir`, with its database in `localDir`, at version `version`
   * (0 = empty): the database as it is when it holds that version of this checkpoint, else caught up or rebuilt
   * from the checkpoint's files. Throws SluiceError CHECKPOINT_MISSING or CHECKPOINT_CORRUPT as the memory
   * store's load does.
   */
  static async open<K = unknown, V = unknown>(
    dir: string,
    localDir: string,
    version: number,
    opts: DiskStateStoreOptions = {},
  ): Promise<DiskStateStore<K, V>> {
    const store = new DiskStateStore<K, V>(dir, localDir, opts);
    try {
      await store.recover(version);
    } catch (err) {
      openStores.delete(store as DiskStateStore<unknown, unknown>);
      store.fileReader.close();
      await store.env.close();
      throw err;
    }
    return store;
  }

  /** The committed (or loaded) version; -1 while nothing is loaded. */
  get version(): number {
    return this._version;
  }

  /** Number of keys, uncommitted changes included. */
  get size(): number {
    return this.count + this.unapplied.sizeDelta + this.pending.sizeDelta;
  }

  /**
   * Makes the store hold exactly version `version` with no uncommitted changes: drops them when the database
   * is at that version, else brings the database there from the checkpoint.
   */
  async prepare(version: number): Promise<void> {
    if (version === this._version && this.metaVersion() === this.dbVersion && this.meta.get('applying') === undefined) {
      this.abort();
      return;
    }
    await this.recover(version);
  }

  /** The value of `key` (a fresh copy), or undefined when absent. */
  get(key: K): V | undefined {
    this.locate(key, isPrimitiveKey(key), true);
    if (this.locPending >= 0) return this.pending.value(this.locPending) as V | undefined;
    if (this.locUnapplied >= 0 && this.locFound) return this.unapplied.value(this.locUnapplied) as V;
    return this.locFound ? (this.decodeValue(this.recordBytes, this.recordStart, this.recordEnd) as V) : undefined;
  }

  /** Whether `key` has a value. */
  has(key: K): boolean {
    this.locate(key, isPrimitiveKey(key));
    return this.locPending >= 0 ? this.pending.offset[this.locPending] >= 0 : this.locFound;
  }

  /** The timeout timestamp of `key` in ms, or -1 when it has none or is absent. */
  getTimeout(key: K): number {
    this.locate(key, isPrimitiveKey(key));
    const p = this.locPending;
    if (p >= 0) return this.pending.offset[p] < 0 ? -1 : this.pending.timeout[p];
    return this.locTimeout;
  }

  /**
   * Sets the value of `key` and its timeout (ms timestamp; -1 = none). The value is encoded now.
   * Throws SluiceError STATE_VALUE_UNSUPPORTED for values the codec cannot store and STATE_KEY_TOO_LARGE for a
   * key whose encoding exceeds the database's key size limit.
   */
  put(key: K, value: V, timeoutMs = -1): void {
    checkTimeout(timeoutMs);
    const prim = isPrimitiveKey(key);
    const pk = this.locate(key, prim);
    if (this.locPending < 0 && !this.locFound && this.encodeLookupKey(key) > MAX_KEY_BYTES) {
      throw new SluiceError(
        'STATE_KEY_TOO_LARGE',
        `a state key encodes to ${this.keyScratch.pos} bytes, more than the disk state store's ${MAX_KEY_BYTES}`,
        'group by shorter keys (e.g. a hash of a long string), or use the memory state store',
      );
    }
    const changes = this.pending.length;
    this.pending.put(this.locPending, pk, !prim, this.locFound ? 0 : -1, value, timeoutMs);
    if (this.pending.length > changes) this.changeAdded();
    this.releaseDueIfDone();
  }

  /** Removes `key` and its timeout; a no-op when absent. */
  remove(key: K): void {
    const prim = isPrimitiveKey(key);
    const pk = this.locate(key, prim);
    const changes = this.pending.length;
    this.pending.remove(this.locPending, pk, !prim, this.locFound ? 0 : -1);
    if (this.pending.length > changes) this.changeAdded();
    this.releaseDueIfDone();
  }

  /**
   * Lets the due records go once the last due key, read after the others in their order, is changed, as a closing
   * batch does: else every state partition's store of the thread keeps its batch's records until the commit. A due
   * key read after that is read from the database again.
   */
  private releaseDueIfDone(): void {
    const n = this.dueKeys.length;
    if (n > 0 && this.locDue === n - 1 && this.dueNext === n) this.dropDue();
  }

  /**
   * Forgets the last scan's due keys and their records (the memo may name one). dueBytes was grown for them, as
   * large as a closing batch's records; the next scan grows it again.
   */
  private dropDue(): void {
    this.dueKeys = [];
    this.dueStart = [];
    this.dueExact = [];
    this.dueBytes = EMPTY;
    this.dueEnd = 0;
    this.dueNext = 0;
    this.memoKey = undefined;
  }

  /** Notes what a commit needs of the committed key of the change put() or remove() just added. */
  private changeAdded(): void {
    const p = this.pending.length - 1;
    const notes = this.pendingNotes;
    notes.reserve(p);
    notes.oldTimeouts[p] = this.locTimeout;
    notes.noEntryAtTimeout[p] = this.locDue >= 0 && !this.dueExact[this.locDue] ? 1 : 0;
    notes.hotSlots[p] = this.locSlot;
    notes.hotStamps[p] = this.locStamp;
    notes.unappliedChanges[p] = this.locUnapplied;
  }

  /** All keys and values, uncommitted changes included, in an unspecified order. */
  *entries(): IterableIterator<[K, V]> {
    for (const [, key, value] of this.liveEntries()) yield [key, value];
  }

  /** All keys, in the unspecified order of {@link entries}. */
  *keys(): IterableIterator<K> {
    for (const [, key] of this.liveEntries()) yield key;
  }

  /** All entries ordered by their keys' canonical encoding, as the memory store orders them. */
  sortedEntries(): Array<[K, V]> {
    const all = [...this.liveEntries()];
    all.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
    return all.map(([, key, value]) => [key, value]);
  }

  /**
   * Keys whose timeout is set and at or before `timestampMs`, uncommitted changes included, ordered by timeout
   * and then by the canonical key encoding.
   */
  keysWithTimeoutAtOrBefore(timestampMs: number, limit = Infinity): K[] {
    // The memo may name a due key of the last scan.
    this.memoKey = undefined;
    const encodings = this.dueEncodings;
    encodings.reset();
    const due: DueKeys<K> = { times: [], keys: [], encodings, encStart: [], encEnd: [], records: [], exact: [] };
    const { times, keys, encStart, encEnd, records, exact } = due;
    this.dueEnd = 0;
    // Entries at their keys' timeouts come in index order, by timeout and then encoding, which is the order
    // wanted, and hold no key twice: only a key due through an earlier entry, or a pending change's, puts the keys
    // out of that order or may come twice.
    let sorted = true;
    // Entries are at or before their keys' timeouts, so once `limit` keys are due by `bound`, no entry past it
    // holds one of the first `limit`: the scan, and what it holds, stay within about twice the limit.
    let bound = timestampMs;
    const entries = this.indexEntries();
    const ahead = this.entriesAhead;
    ahead.reset();
    try {
      for (let c = 0; ; c++) {
        if (c === ahead.length) {
          c = 0;
          if (!this.readAhead(entries, bound, limit - times.length)) break;
        }
        this.aheadAt = c;
        const k = ahead.entry(c);
        const at = k.readDoubleBE(0);
        if (at > bound) break;
        const t = this.entryTimeout(k, at, timestampMs);
        // An entry past its key's timeout is left from an earlier timeout; the key has another one before it.
        if (this.entryPending || t < 0 || t > timestampMs || t < at) continue;
        if (t !== at) sorted = false;
        times.push(t);
        keys.push(this.entryKey as K);
        records.push(this.keepDueRecord());
        exact.push(t === at);
        encStart.push(encodings.pos);
        encodings.raw(k, 8, k.length);
        encEnd.push(encodings.pos);
        // Keys met at their timeouts, in index order, are the first `limit` already: any later entry's key is due at
        // or after the last one's entry, and after it in the order. So a closing batch reads no record beyond them.
        // Else the limit-th key's time bounds the scan from here.
        if (times.length === limit) {
          if (sorted) break;
          sortDue(due);
          if (times.length === limit) bound = times[limit - 1];
        }
        if (limit > 0 && times.length >= 2 * limit) {
          if (!sorted) sortDue(due);
          if (times.length > limit) times.length = keys.length = encStart.length = encEnd.length = limit;
          records.length = exact.length = times.length;
          if (times.length === limit) bound = times[limit - 1];
        }
      }
    } finally {
      entries.return?.();
      this.aheadAt = -1;
      // A closing batch's read-ahead holds its keys' records: they are copied to dueBytes, and a process's other
      // stores keeping theirs until their next scan would hold several times that.
      this.entriesAhead.release();
      this.recordsAhead.release();
      this.recordsAheadRead = false;
    }
    for (const changes of [this.pending, this.unapplied]) {
      for (let p = 0; p < changes.length; p++) {
        const t = changes.timeout[p];
        if (changes.offset[p] < 0 || t < 0 || t > timestampMs) continue;
        if (changes === this.unapplied && this.isPending(p)) continue;
        times.push(t);
        keys.push(changes.keyOf(p) as K);
        records.push(-1);
        exact.push(false);
        encStart.push(encodings.pos);
        changes.writeKey(encodings, p);
        encEnd.push(encodings.pos);
        sorted = false;
      }
    }
    if (!sorted) sortDue(due);
    if (keys.length > limit) keys.length = records.length = exact.length = limit;
    // The keys returned are every live key at or before the last of them, or before the bound when fewer.
    this.scansSinceCommit++;
    this.scanKeys = keys;
    this.scanEnd =
      limit <= 0
        ? NOWHERE
        : keys.length < limit
          ? { time: timestampMs, key: null }
          : { time: times[limit - 1], key: encodings.buf.slice(encStart[limit - 1], encEnd[limit - 1]) };
    this.dueKeys = keys;
    this.dueStart = records;
    this.dueExact = exact;
    this.dueNext = 0;
    return keys;
  }

  /**
   * Copies the record entryTimeout() last read to the end of dueBytes and returns where it starts. One buffer for
   * all of them: a record of its own per due key would be garbage by the end of the batch.
   */
  private keepDueRecord(): number {
    const record = this.recordBytes;
    const from = this.recordStart;
    const start = this.dueEnd;
    const n = this.recordEnd - from;
    if (this.dueBytes.length < start + n + 4) {
      const grown = Buffer.allocUnsafe(Math.max(1 << 16, 2 * (start + n + 4)));
      grown.set(this.dueBytes.subarray(0, start));
      this.dueBytes = grown;
    }
    const bytes = this.dueBytes;
    bytes.writeInt32LE(n, start);
    for (let i = 0; i < n; i++) bytes[start + 4 + i] = record[from + i];
    this.dueEnd = start + 4 + n;
    return start + 4;
  }

  /** The length of due key `d`'s record in dueBytes. */
  private recordLength(d: number): number {
    return this.dueBytes.readInt32LE(this.dueStart[d] - 4);
  }

  /**
   * The number of `key` among the due keys of the last scan when it is the one expected next or the one just
   * read (a read and then a put or remove of the same key), else -1.
   */
  private dueIndex(key: unknown): number {
    const keys = this.dueKeys;
    const d = this.dueNext;
    if (d < keys.length && keys[d] === key) {
      this.dueNext = d + 1;
      return d;
    }
    return d > 0 && keys[d - 1] === key ? d - 1 : -1;
  }

  /** The earliest timeout of any key, uncommitted changes included, or Infinity. */
  earliestTimeout(): number {
    let min = Math.min(
      this.pending.earliestTimeout(),
      this.unapplied.earliestTimeout((u) => this.isPending(u)),
    );
    // Entries are at or before their keys' timeouts: none from `min` on can hold an earlier one.
    for (const k of this.indexEntries()) {
      const at = k.readDoubleBE(0);
      if (at >= min) break;
      const t = this.entryTimeout(k, at, -1);
      if (!this.entryPending && t >= 0 && t < min) min = t;
    }
    return min;
  }

  /**
   * Writes the uncommitted changes as version `version` (the current version + 1): the delta file, after which
   * they are committed and join the unapplied changes; those go to the database when a snapshot is due (at a
   * multiple of `snapshotInterval` versions, see SNAPSHOT_CHANGE_SHARE, then written from the database), when they
   * outgrow their budget, or when they would save few writes (see MIN_REPEAT_SHARE).
   */
  async commit(version: number): Promise<StateCommitMetrics> {
    const started = performance.now();
    checkCommitVersion(this.dir, this._version, version, this.committing);
    this.committing = true;
    try {
      const pending = this.pending;
      const { updated, removed, checksum } = await this.files.writeDelta(this.dir, version, this.dict.names, pending);
      this.unappliedDeltaBytes += pending.values.pos;
      this.noteTombstoneReach();
      this.takePending(checksum);
      this._version = version;
      this.changesSinceSnapshot += updated + removed;
      const snapshot =
        version % this.snapshotInterval === 0 && this.changesSinceSnapshot >= SNAPSHOT_CHANGE_SHARE * this.size;
      const over = Math.max(this.unapplied.usedBytes(), this.unappliedDeltaBytes) > this.unappliedBytes;
      const unpaid = this.repeatShare >= 0 && this.repeatShare < MIN_REPEAT_SHARE;
      if (snapshot || over || unpaid) this.applyUnapplied();
      if (snapshot) {
        this.repeatShare = -1;
        await this.writeSnapshot(version);
        this.changesSinceSnapshot = 0;
      }
      this.remapIfOverBudget();
      this.files.releaseScratch();
      this.pending.releaseScratch();
      return {
        numRowsTotal: this.size,
        numRowsUpdated: updated,
        numRowsRemoved: removed,
        memoryUsedBytes: this.memoryUsedBytes(),
        commitTimeMs: performance.now() - started,
      };
    } finally {
      this.committing = false;
    }
  }

  /**
   * Moves the unapplied changes' reach to the end of the batch's due keys when the batch leaves no live record at or
   * before it: one due-key scan, a change of each key it returned, and no put at or before that end (a key given a
   * later timeout, or none, is put after it). Applying the changes may then move the tombstone there, and leave the
   * removed keys' records to a sweep. A put at or before the reach already taken is revived when applied.
   */
  private noteTombstoneReach(): void {
    const pending = this.pending;
    let end = this.scansSinceCommit === 1 ? this.scanEnd : NOWHERE;
    for (const key of end === NOWHERE ? [] : this.scanKeys) {
      const prim = isPrimitiveKey(key);
      const pk = prim ? key : this.latin1.slice(this.keyScratch.buf, 0, this.encodeLookupKey(key));
      if (pending.find(pk, !prim) < 0) {
        end = NOWHERE;
        break;
      }
    }
    const reach = later(this.tombstone, this.reach);
    const scratch = this.keyScratch;
    for (let p = 0; p < pending.length && end !== NOWHERE; p++) {
      const t = pending.offset[p] < 0 ? -1 : pending.timeout[p];
      if (t < 0 || t > end.time) continue;
      scratch.reset();
      pending.writeKey(scratch, p);
      if (!atOrBefore(reach, t, scratch.buf, 0, scratch.pos) && atOrBefore(end, t, scratch.buf, 0, scratch.pos))
        end = NOWHERE;
    }
    if (end !== NOWHERE) this.reach = later(this.reach, end);
  }

  /**
   * Makes the pending changes, just written as a delta whose checksum is `checksum`, part of the unapplied ones: the
   * set itself when there are none yet, else each change taken over the unapplied change of its key.
   */
  private takePending(checksum: number): void {
    const pending = this.pending;
    const unapplied = this.unapplied;
    if (unapplied.length === 0) this.swapChanges();
    else {
      let repeats = 0;
      for (let p = 0; p < pending.length; p++) {
        const changes = unapplied.length;
        const u = unapplied.merge(pending, p, this.pendingNotes.unappliedChanges[p]);
        if (unapplied.length > changes) this.unappliedNotes.copy(this.pendingNotes, p, u);
        else repeats++;
      }
      this.repeatShare = pending.length > 0 ? repeats / pending.length : 1;
    }
    this.unappliedChecksum = checksum;
    this.clearPending();
  }

  /**
   * Applies the unapplied changes to the database, which then holds the store's version, and drops them with the
   * loose index entries the scans found, as the index changes. With no pending changes, the emptied set becomes the
   * next batch's, so that its buffers, grown for batches like the last, serve the next one, and the pending set's
   * buffers go: where every commit applies its changes, the unapplied set only passes a batch's changes through.
   */
  private applyUnapplied(): void {
    this.applyChanges(this._version, this.unappliedChecksum);
    this.unappliedDeltaBytes = 0;
    this.unapplied.clear();
    this.unapplied.releaseScratch();
    this.looseEntries.clear();
    this.scannedEntries = 0;
    if (this.pending.length === 0) {
      this.swapChanges();
      this.unapplied = new PendingChanges(this.dict);
    }
  }

  /** Exchanges the pending and the unapplied changes, with their notes. */
  private swapChanges(): void {
    const changes = this.pending;
    this.pending = this.unapplied;
    this.unapplied = changes;
    const notes = this.pendingNotes;
    this.pendingNotes = this.unappliedNotes;
    this.unappliedNotes = notes;
  }

  /** Whether unapplied change `u`'s key has a pending change, which then holds the key's state. */
  private isPending(u: number): boolean {
    const pending = this.pending;
    return pending.length > 0 && pending.find(this.unapplied.pendingKey(u), this.unapplied.isEncoded(u)) >= 0;
  }

  /**
   * Applies the unapplied changes: the records in the order of their keys' encodings, then the timeout index
   * writes in time order, changesPerTransaction per transaction, the first marking the database as applying
   * `version` and the last recording it. Changes that leave no key (an end of input closing every session) drop
   * both databases whole, in one transaction, instead of removing each record and index entry from its B-tree.
   */
  private applyChanges(version: number, checksum: number | null): void {
    if (this.count + this.unapplied.sizeDelta === 0) {
      this.env.resetReadTxn();
      this.transact(() => {
        this.state.clearSync();
        this.timeouts.clearSync();
        this.count = 0;
        this.takeReach(NOWHERE);
        this.writeMeta(version, checksum);
      });
      this.keyFilter = new KeyFilter();
      this.hot.clear();
      return;
    }
    const unapplied = this.unapplied;
    const n = unapplied.length;
    const keyWriter = new ValueWriter(Math.max(256, 8 * n), null, true);
    const keyStart = new Int32Array(n + 1);
    for (let p = 0; p < n; p++) {
      keyStart[p] = keyWriter.pos;
      unapplied.writeKey(keyWriter, p);
    }
    keyStart[n] = keyWriter.pos;
    const keyBuf = Buffer.from(keyWriter.buf.buffer, keyWriter.buf.byteOffset, keyWriter.pos);
    // Dead records past the live ones, so that the database holds at most twice its keys' records; or more puts
    // behind the tombstone than are worth reviving one by one, when the changes' own reach goes too (the batch's
    // removes then go from the B-tree), as it would hide those puts again.
    const tooManyRevived = this.revived.size + this.putsBehind(keyBuf, keyStart) > MOST_REVIVED;
    if (tooManyRevived || this.deadRecords > this.count) {
      if (tooManyRevived) this.reach = NOWHERE;
      this.sweepDead();
    }
    const tombstone = later(this.tombstone, this.reach);
    const revived = this.revived;
    const revivedBefore = revived.size;
    const order = byteOrder(keyBuf, keyStart, n);
    const index = this.indexWrites(order);
    const indexOrder = timeOrder(index.times.subarray(0, index.count));
    const { bytes, at, existed, hotSlots, hotStamps } = this.orderedChanges(order, keyBuf, keyStart);
    const total = order.length + indexOrder.length;
    this.keyFilter?.reserve(n);
    // No read snapshot may pin the pages the transactions free.
    this.env.resetReadTxn();
    const perTransaction = this.changesPerTransaction;
    for (let from = 0; from < total || from === 0; from += perTransaction) {
      const to = Math.min(total, from + perTransaction);
      this.transact(() => {
        if (from === 0) this.meta.putSync('applying', version);
        for (let i = from; i < to; i++) {
          if (i >= order.length) {
            const c = indexOrder[i - order.length];
            const k = index.keys[c];
            const loose = this.looseEntries;
            const entry =
              k >= 0
                ? this.indexKey(index.times[c], keyBuf, keyStart[k], keyStart[k + 1])
                : this.indexKey(index.times[c], loose.encodings.buf, loose.start[-1 - k], loose.end[-1 - k]);
            if (index.removes[c] === 1) this.timeouts.removeSync(entry);
            else this.timeouts.putSync(entry, EMPTY);
            continue;
          }
          const keyAt = at[2 * i];
          const recordAt = at[2 * i + 1];
          const recordEnd = at[2 * i + 2];
          const key = exactScratch(this.keyPool, recordAt - keyAt);
          for (let b = 0, j = keyAt; j < recordAt; b++, j++) key[b] = bytes[j];
          const p = order[i];
          // A put's record holds its timeout at least: an empty one is a remove.
          if (recordEnd === recordAt) {
            if (existed[i] === 1) {
              // A revived key's record is dead once it is no longer revived.
              if (atOrBefore(tombstone, this.unappliedNotes.oldTimeouts[p], key, 0, key.length)) {
                this.deadRecords++;
                if (revivedBefore > 0 && revived.delete(this.latin1.slice(key, 0, key.length)))
                  this.revivedChanged = true;
              } else this.state.removeSync(key);
              this.count--;
            }
            this.hot.delete(this.cacheKey(p, bytes, keyAt, recordAt), unapplied.isEncoded(p));
            continue;
          }
          const record = exactScratch(this.recordPool, recordEnd - recordAt);
          for (let b = 0, j = recordAt; j < recordEnd; b++, j++) record[b] = bytes[j];
          this.state.putSync(key, record);
          if (atOrBefore(tombstone, record.readDoubleLE(0), key, 0, key.length)) {
            revived.add(this.latin1.slice(key, 0, key.length));
            this.revivedChanged = true;
          } else if (revivedBefore > 0 && revived.delete(this.latin1.slice(key, 0, key.length)))
            this.revivedChanged = true;
          if (existed[i] === 0) {
            this.count++;
            this.keyFilter?.add(key);
          }
          const slot = hotSlots[i];
          if (slot >= 0 && this.hot.replaceIn(slot, hotStamps[i], record)) continue;
          const pk = this.cacheKey(p, bytes, keyAt, recordAt);
          if (this.hot.admits(pk, unapplied.isEncoded(p))) this.hot.set(pk, unapplied.isEncoded(p), record);
        }
        if (to === total) {
          this.takeReach(tombstone);
          this.writeMeta(version, checksum);
        }
      });
      this.remapIfOverBudget();
    }
  }

  /** Makes `tombstone` the database's (about to be written with its meta) and the reach of no changes. */
  private takeReach(tombstone: TimeoutPosition): void {
    this.tombstone = tombstone;
    if (tombstone === NOWHERE) this.forgetDead();
    this.reach = NOWHERE;
  }

  /** No record is dead any more, and none revived. */
  private forgetDead(): void {
    this.deadRecords = 0;
    if (this.revived.size === 0) return;
    this.revived.clear();
    this.revivedChanged = true;
  }

  /**
   * How many of the unapplied changes are puts at or before the tombstone they would move it to, counting each
   * key once (the changes' keys are `keyBuf` from `keyStart`).
   */
  private putsBehind(keyBuf: Uint8Array, keyStart: Int32Array): number {
    const tombstone = later(this.tombstone, this.reach);
    const unapplied = this.unapplied;
    let n = 0;
    for (let p = 0; p < unapplied.length && tombstone.time >= 0; p++) {
      const t = unapplied.offset[p] < 0 ? -1 : unapplied.timeout[p];
      if (t >= 0 && t <= tombstone.time && atOrBefore(tombstone, t, keyBuf, keyStart[p], keyStart[p + 1])) n++;
    }
    return n;
  }

  /**
   * Drops the dead records from the database in key order, a transaction's worth at a time, and then the
   * tombstone: each leaf page is rewritten once for all the dead records it holds, where removing them as their
   * keys were removed rewrote it once per batch. What the database holds does not change meanwhile, so a crash in
   * between leaves it as valid as before.
   */
  private sweepDead(): void {
    const tombstone = this.tombstone;
    if (tombstone.time < 0) return;
    let last: Buffer | undefined;
    const dead: Buffer[] = [];
    for (let more = true; more; ) {
      more = false;
      dead.length = 0;
      let seen = 0;
      this.openScans++;
      try {
        const range: ScanRange = last === undefined ? {} : { start: last, exclusiveStart: true };
        for (const { key, value } of this.state.getRange(range)) {
          if (this.isDeadRecord(value, key, 0, key.length)) dead.push(Buffer.from(key));
          if (++seen === SCANNED_PER_MAP_CHECK || dead.length === this.changesPerTransaction) {
            last = Buffer.from(key);
            more = true;
            break;
          }
        }
      } finally {
        this.openScans--;
      }
      if (more && dead.length === 0) continue;
      this.env.resetReadTxn();
      this.transact(() => {
        for (const key of dead) this.state.removeSync(key);
        if (more) return;
        this.tombstone = NOWHERE;
        this.forgetDead();
        this.meta.putSync('tombstone', toMeta(NOWHERE));
        this.meta.putSync('deadRecords', 0);
        this.writeRevived();
      });
      this.remapIfOverBudget();
    }
  }

  /**
   * How the hot-key cache knows the key of change `p`, whose encoding is `buf[start, end)`: a composite key by its
   * encoding in latin1, as lookups give it.
   */
  private cacheKey(p: number, buf: Uint8Array, start: number, end: number): PendingKey {
    return this.unapplied.isEncoded(p) ? this.latin1.slice(buf, start, end) : this.unapplied.pendingKey(p);
  }

  /** The unapplied changes in key `order` (see {@link OrderedChanges}); `keyBuf` from `keyStart` holds their keys. */
  private orderedChanges(order: Int32Array, keyBuf: Uint8Array, keyStart: Int32Array): OrderedChanges {
    const unapplied = this.unapplied;
    const values = unapplied.values.buf;
    const n = order.length;
    let size = keyStart[n];
    for (let p = 0; p < n; p++) {
      if (unapplied.offset[p] >= 0) size += RECORD_HEADER + unapplied.valueEndOf(p) - unapplied.offset[p];
    }
    const changes: OrderedChanges = {
      bytes: new Uint8Array(size),
      at: new Int32Array(2 * n + 1),
      existed: new Uint8Array(n),
      hotSlots: new Int32Array(n),
      hotStamps: new Int32Array(n),
    };
    const { bytes, at } = changes;
    let w = 0;
    for (let i = 0; i < n; i++) {
      const p = order[i];
      at[2 * i] = w;
      for (let j = keyStart[p]; j < keyStart[p + 1]; j++) bytes[w++] = keyBuf[j];
      at[2 * i + 1] = w;
      const off = unapplied.offset[p];
      if (off >= 0) {
        const end = unapplied.valueEndOf(p);
        // A timeout's bytes follow the value in the entry, as the record's header holds them.
        if (unapplied.timeout[p] >= 0) for (let b = 0; b < RECORD_HEADER; b++) bytes[w++] = values[end + b];
        else for (let b = 0; b < RECORD_HEADER; b++) bytes[w++] = NO_TIMEOUT[b];
        for (let j = off; j < end; j++) bytes[w++] = values[j];
      }
      changes.existed[i] = unapplied.slot[p] >= 0 ? 1 : 0;
      changes.hotSlots[i] = this.unappliedNotes.hotSlots[p];
      changes.hotStamps[i] = this.unappliedNotes.hotStamps[p];
    }
    at[2 * n] = w;
    return changes;
  }

  /**
   * The timeout index writes of the unapplied changes and of the entries the scans found off their key's timeout
   * (see the file's comment): the index keeps an entry at or before every key's timeout, so a timeout that moves
   * later writes nothing, and one that appears or moves earlier one entry; an entry found off its key's timeout
   * moves to it or, with none, goes. The changes are visited in key `order`.
   */
  private indexWrites(order: Int32Array): IndexWrites {
    const unapplied = this.unapplied;
    const loose = this.looseEntries;
    // A loose entry writes at most a removal and a put, a change at most one write.
    const most = 2 * loose.length + unapplied.length;
    const writes: IndexWrites = {
      count: 0,
      times: new Float64Array(most),
      keys: new Int32Array(most),
      removes: new Uint8Array(most),
    };
    const write = (t: number, key: number, remove: boolean): void => {
      const w = writes.count++;
      writes.times[w] = t;
      writes.keys[w] = key;
      writes.removes[w] = remove ? 1 : 0;
    };
    const moved = new Uint8Array(unapplied.length);
    for (let i = 0; i < loose.length; i++) {
      const at = loose.at[i];
      const p = unapplied.length > 0 ? unapplied.find(loose.pks[i], loose.encoded[i]) : -1;
      const t = p < 0 ? loose.committed[i] : unapplied.offset[p] < 0 ? -1 : unapplied.timeout[p];
      if (t === at) continue;
      write(at, -1 - i, true);
      // An entry past the timeout is not the key's only one; an entry before it may be, so it moves there.
      if (t < at || (p >= 0 && moved[p] === 1)) continue;
      write(t, -1 - i, false);
      if (p >= 0) moved[p] = 1;
    }
    for (const p of order) {
      const old = this.unappliedNotes.oldTimeouts[p];
      const t = unapplied.offset[p] < 0 ? -1 : unapplied.timeout[p];
      if (t < 0) {
        // The loose entries went above; one at the timeout goes unless the scan showed there is none.
        if (old >= 0 && this.unappliedNotes.noEntryAtTimeout[p] === 0) write(old, p, true);
      } else if (moved[p] === 0 && (old < 0 || t < old)) write(t, p, false);
    }
    return writes;
  }

  /** Drops all changes since the last commit; the store stays at {@link version}. */
  abort(): void {
    if (this.committing) throw new Error(`state store ${this.dir}: abort() while a commit is running`);
    this.clearPending();
  }

  /** Deletes checkpoint files no longer needed to load any version >= `minVersionToKeep`. */
  purge(minVersionToKeep: number): Promise<string[]> {
    return purgeStateFiles(this.dir, minVersionToKeep);
  }

  /**
   * Bytes held in memory: the hot-key cache, the branch pages the file reader keeps and the changes not in the
   * database (the database's pages are the OS's cache).
   */
  memoryUsedBytes(): number {
    const filter = this.keyFilter === null ? 0 : this.keyFilter.sizeBytes;
    const held = this.hot.sizeBytes + this.fileReader.sizeBytes;
    return held + this.pending.memoryBytes() + this.unapplied.memoryBytes() + filter;
  }

  /**
   * Applies the unapplied changes while the database is where this store left it (not after a commit failed while
   * applying, which the next open rebuilds from, nor after another store on the same directory moved it on), and
   * closes the database; its working directory stays for the next open.
   */
  async close(): Promise<void> {
    try {
      if (
        this.unapplied.length > 0 &&
        !this.committing &&
        this.meta.get('applying') === undefined &&
        this.metaVersion() === this.dbVersion
      ) {
        this.applyUnapplied();
      }
      this.saveFilter();
    } finally {
      openStores.delete(this as DiskStateStore<unknown, unknown>);
      this.hot.clear();
      this.fileReader.close();
      await this.env.close();
    }
  }

  /**
   * Sets locPending, or locFound (and the record), locTimeout and locDue, for `key` (see the fields) and returns
   * its {@link PendingKey}. Without `needRecord` the caller reads no value, so the memo of the key serves it.
   */
  private locate(key: unknown, prim: boolean, needRecord = false): PendingKey {
    this.locPending = -1;
    this.locUnapplied = -1;
    this.locDue = -1;
    this.locSlot = -1;
    let pk: PendingKey;
    const pending = this.pending;
    if (prim) {
      pk = key as PendingKey;
      if (key === this.memoKey && pending.length === this.memoPending && (!needRecord || this.memoRecord())) {
        this.locUnapplied = this.memoUnapplied;
        this.locFound = this.memoFound;
        this.locTimeout = this.memoTimeout;
        this.locDue = this.memoDue;
        this.locSlot = this.memoSlot;
        this.locStamp = this.memoStamp;
        return pk;
      }
    } else {
      this.encodeLookupKey(key);
      pk = this.latin1.slice(this.keyScratch.buf, 0, this.keyScratch.pos);
    }
    // Counted before the pending changes are looked at, so that a due key with a change keeps the others in step.
    const due = this.dueKeys.length > 0 ? this.dueIndex(key) : -1;
    if (pending.length > 0) {
      const p = pending.find(pk, !prim);
      if (p >= 0) {
        this.locPending = p;
        return pk;
      }
    }
    const unapplied = this.unapplied;
    if (unapplied.length > 0) {
      const u = unapplied.find(pk, !prim);
      if (u >= 0) {
        this.locUnapplied = u;
        this.locFound = unapplied.offset[u] >= 0;
        this.locTimeout = this.locFound ? unapplied.timeout[u] : -1;
        if (prim) this.setMemo(key);
        return pk;
      }
    }
    if (due >= 0 && this.dueStart[due] >= 0) {
      const start = this.dueStart[due];
      this.locDue = due;
      this.locFound = true;
      this.setRecord(this.dueBytes, start, start + this.recordLength(due));
    } else {
      const encoding = prim ? null : this.keyScratch.buf.subarray(0, this.keyScratch.pos);
      this.locFound = this.committedRecord(pk, !prim, encoding);
      this.locSlot = this.recordSlot;
      this.locStamp = this.recordStamp;
    }
    this.locTimeout = this.locFound ? this.recordBytes.readDoubleLE(this.recordStart) : -1;
    if (prim) this.setMemo(key);
    return pk;
  }

  /** Makes the memo the result locate() just found for primitive `key`. */
  private setMemo(key: unknown): void {
    this.memoKey = key;
    this.memoPending = this.pending.length;
    this.memoUnapplied = this.locUnapplied;
    this.memoFound = this.locFound;
    this.memoTimeout = this.locTimeout;
    this.memoDue = this.locDue;
    this.memoSlot = this.locSlot;
    this.memoStamp = this.locStamp;
  }

  /**
   * Whether the memo's key has no committed record or its record is still where the memo found it, then set (see
   * recordBytes); else the key must be looked up again.
   */
  private memoRecord(): boolean {
    if (!this.memoFound || this.memoUnapplied >= 0) return true;
    const d = this.memoDue;
    if (d >= 0) {
      const start = this.dueStart[d];
      this.setRecord(this.dueBytes, start, start + this.recordLength(d));
      return true;
    }
    const at = this.memoSlot >= 0 ? this.hot.recordIn(this.memoSlot, this.memoStamp) : -1;
    if (at < 0) return false;
    this.setRecord(this.hot.bytes, at, at + this.hot.recordLength(at));
    return true;
  }

  private setRecord(bytes: Buffer, start: number, end: number): void {
    this.recordBytes = bytes;
    this.recordStart = start;
    this.recordEnd = end;
  }

  /**
   * Whether the key `pk` is committed, its record then set (see recordBytes), through the cache; `encoding` is the
   * key's canonical encoding, or null for a primitive key, encoded on a cache miss only. A record the cache does
   * not hold is left in the database's read buffer, so a read allocates nothing; with `admit` the cache may take a
   * copy of it.
   */
  private committedRecord(pk: PendingKey, encoded: boolean, encoding: Uint8Array | null, admit = true): boolean {
    // An empty store (the first batch of a query) holds no key: no read is needed to know.
    this.recordSlot = -1;
    if (this.count === 0) return false;
    const hot = this.hot;
    const at = hot.get(pk, encoded);
    if (at >= 0) {
      this.setRecord(hot.bytes, at, at + hot.recordLength(at));
      this.keepRecordSlot();
      return true;
    }
    if (encoding === null) encoding = this.keyScratch.buf.subarray(0, this.encodeLookupKey(pk));
    if (this.keyFilter !== null && !this.keyFilter.mayContain(encoding)) return false;
    // None (Infinity) maps every page read; a budget of 0 maps nothing.
    const read = Number.isFinite(this.mappedBytes) ? this.fileReader.get(encoding) : FileRead.UseMap;
    let record: Buffer | undefined;
    if (read === FileRead.UseMap) {
      this.readsSinceRemap++;
      if (++readsSinceMapCheck >= READS_PER_MAP_CHECK) {
        readsSinceMapCheck = 0;
        DiskStateStore.remapMostReadIfOverBudget(this.mappedBytes);
      }
      record = this.state.getBinaryFast(encoding);
    }
    if (read === FileRead.Found) {
      const { page, start, end } = this.fileReader;
      this.setRecord(page, start, end);
    } else if (record !== undefined) this.setRecord(record, 0, record.length);
    else return false;
    if (this.isDead(encoding, 0, encoding.length)) return false;
    hot.missed();
    if (admit && hot.admits(pk, encoded)) {
      hot.set(pk, encoded, this.recordBytes, this.recordStart, this.recordEnd);
      this.keepRecordSlot();
    }
    return true;
  }

  /** Whether the record just read from the database (see recordBytes), whose key is `key[start, end)`, is dead. */
  private isDead(key: Uint8Array, start: number, end: number): boolean {
    return this.isDeadRecord(this.recordBytes, key, start, end, this.recordStart);
  }

  /** Whether the database's record `record` (from `at`) of the key `key[start, end)` is dead. */
  private isDeadRecord(record: Buffer, key: Uint8Array, start: number, end: number, at = 0): boolean {
    const tombstone = this.tombstone;
    return (
      tombstone.time >= 0 &&
      atOrBefore(tombstone, record.readDoubleLE(at), key, start, end) &&
      (this.revived.size === 0 || !this.revived.has(this.latin1.slice(key, start, end)))
    );
  }

  /** Notes the hot-key cache's slot that its last get or set left the key in as recordSlot. */
  private keepRecordSlot(): void {
    const s = this.hot.lastSlot;
    this.recordSlot = s;
    if (s >= 0) this.recordStamp = this.hot.stamp(s);
  }

  /**
   * The timeout of the key of index entry `entry` at time `at` (-1: none or absent): its pending change's, else
   * its committed record's (then set, see recordBytes). Sets entryKey and entryPending, and notes the entry of a
   * key without a pending change as loose when the timeout is not `at`, so that the next commit moves or drops
   * it. The record is admitted to the cache only when the timeout is after `dueBy`, the scan's bound.
   */
  private entryTimeout(entry: Buffer, at: number, dueBy: number): number {
    const unseen = this.scanEntries++ >= this.scannedEntries;
    if (unseen) this.scannedEntries = this.scanEntries;
    const key = this.decodeKey(entry, 8);
    const prim = isPrimitiveKey(key);
    const pk = prim ? key : this.latin1.slice(entry, 8, entry.length);
    const pending = this.pending;
    const p = pending.length > 0 ? pending.find(pk, !prim) : -1;
    const unapplied = this.unapplied;
    const u = p < 0 && unapplied.length > 0 ? unapplied.find(pk, !prim) : -1;
    this.entryKey = key;
    this.entryPending = p >= 0 || u >= 0;
    // A key with a pending or unapplied change gets its index writes from the change, which keeps an entry before
    // the new timeout as it is.
    if (p >= 0) return pending.offset[p] < 0 ? -1 : pending.timeout[p];
    if (u >= 0) return unapplied.offset[u] < 0 ? -1 : unapplied.timeout[u];
    const found = this.entryRecord(pk, !prim, entry);
    const t = found ? this.recordBytes.readDoubleLE(this.recordStart) : -1;
    // A due key's record goes to dueBytes for the operator's read, and the key is about to be removed or
    // rewritten: admitting it to the cache would only cost a copy, an insertion and an eviction.
    if (found && t > dueBy && this.recordBytes !== this.hot.bytes && this.hot.admits(pk, !prim)) {
      this.hot.set(pk, !prim, this.recordBytes, this.recordStart, this.recordEnd);
    }
    if (t !== at && unseen) this.looseEntries.add(entry, at, pk, !prim, t);
    return t;
  }

  /**
   * Whether the key of index entry `entry` is committed, its record then set (see recordBytes): as read ahead
   * with the entry, else through committedRecord.
   */
  private entryRecord(pk: PendingKey, encoded: boolean, entry: Buffer): boolean {
    const ahead = this.recordsAhead;
    const a = this.aheadAt;
    if (a >= 0 && this.recordsAheadRead && ahead.status[a] !== FileRead.UseMap) {
      if (ahead.status[a] === FileRead.Absent) return false;
      this.setRecord(ahead.bytes, ahead.start[a], ahead.end[a]);
      if (this.isDead(entry, 8, entry.length)) return false;
      this.hot.missed();
      return true;
    }
    const encoding = exactScratch(this.keyPool, entry.length - 8);
    for (let b = 0, j = 8; j < entry.length; b++, j++) encoding[b] = entry[j];
    return this.committedRecord(pk, encoded, encoding, false);
  }

  /**
   * Reads the next index entries of a due-key scan into entriesAhead: as many as `want` more due keys may need
   * (within bounds), up to and including the first past `bound`; then their keys' records together, where the
   * database is read with pread. False when the index has no more.
   */
  private readAhead(entries: Iterator<Buffer>, bound: number, want: number): boolean {
    const ahead = this.entriesAhead;
    ahead.reset();
    const most = Math.min(MOST_ENTRIES_AHEAD, Math.max(FEWEST_ENTRIES_AHEAD, want));
    while (ahead.length < most) {
      const next = entries.next();
      if (next.done) break;
      ahead.add(next.value);
      if (next.value.readDoubleBE(0) > bound) break;
    }
    this.recordsAheadRead = false;
    if (ahead.length === 0) return false;
    if (this.count > 0 && Number.isFinite(this.mappedBytes)) {
      const keys = Array.from({ length: ahead.length }, (_, i) => ahead.key(i));
      this.recordsAheadRead = this.fileReader.getMany(keys, this.recordsAhead);
    }
    return true;
  }

  /** Encodes `key` canonically into keyScratch; returns its length. */
  private encodeLookupKey(key: unknown): number {
    const ks = this.keyScratch;
    ks.reset();
    ks.write(key);
    return ks.pos;
  }

  /**
   * Decodes a record's value from a copy in one scratch buffer: the records come in buffers of their own (the
   * cache's) or in the database's read buffer, and a reader pointed at another buffer makes its views afresh,
   * which costs more than copying the record's bytes.
   */
  private decodeValue(buf: Uint8Array, start = 0, end = buf.length): unknown {
    // The read buffer is longer than the record it holds (its length says the record's), so the bytes are copied
    // one by one rather than with set(), which copies a typed array whole.
    const n = end - start;
    if (this.decodeScratch.length < n) this.decodeScratch = new Uint8Array(2 * n);
    const scratch = this.decodeScratch;
    for (let i = RECORD_HEADER; i < n; i++) scratch[i] = buf[start + i];
    const r = this.reader;
    r.setBuffer(scratch, RECORD_HEADER, n);
    r.setNames(this.dict.names);
    return r.read();
  }

  /** Decodes a key with a reader of its own, so that the value reader keeps its views of the scratch buffer. */
  private decodeKey(buf: Uint8Array, start: number): K {
    const r = this.keyReader;
    r.setBuffer(buf, start, buf.length);
    return r.read() as K;
  }

  /** The index entry of (time, the bytes of `key` from `start` to `end`) in a scratch buffer that the next call overwrites. */
  private indexKey(time: number, key: Uint8Array, start = 0, end = key.length): Buffer {
    const entry = exactScratch(this.indexPool, 8 + end - start);
    entry.writeDoubleBE(time, 0);
    for (let b = 8, j = start; j < end; b++, j++) entry[b] = key[j];
    return entry;
  }

  /**
   * Whether a pending or unapplied change hides the database's entry of `key`, whose canonical encoding is `buf`
   * from `start`.
   */
  private isShadowed(key: unknown, buf: Uint8Array, start: number): boolean {
    for (const changes of [this.pending, this.unapplied]) {
      if (changes.length === 0) continue;
      const found = isPrimitiveKey(key)
        ? changes.find(key, false)
        : changes.find(this.latin1.slice(buf, start, buf.length), true);
      if (found >= 0) return true;
    }
    return false;
  }

  /**
   * Live entries as [sort key, key, value]: the database's that no change hides, in key order, then the puts of
   * unapplied changes that no pending one hides, then pending puts.
   */
  private *liveEntries(): IterableIterator<[string, K, V]> {
    for (const { key, value } of this.committedRecords()) {
      const k = this.decodeKey(key, 0);
      if (this.isShadowed(k, key, 0)) continue;
      yield [this.latin1.slice(key, 0, key.length), k, this.decodeValue(value) as V];
    }
    const unapplied = this.unapplied;
    for (let u = 0; u < unapplied.length; u++) {
      if (unapplied.offset[u] >= 0 && !this.isPending(u)) {
        yield [unapplied.sortKey(u), unapplied.keyOf(u) as K, unapplied.value(u) as V];
      }
    }
    const pending = this.pending;
    for (let p = 0; p < pending.length; p++) {
      if (pending.offset[p] >= 0) yield [pending.sortKey(p), pending.keyOf(p) as K, pending.value(p) as V];
    }
  }

  /**
   * Every live committed record in key order, the dead ones passed over. Read in key order, its pages are mapped
   * one after the other: a check every few thousand entries keeps at most about the mapped budget of the database
   * resident (see remappingScan).
   */
  private *committedRecords(): IterableIterator<{ key: Uint8Array; value: Buffer }> {
    for (const entry of this.remappingScan(
      (range) => this.state.getRange(range),
      (entry) => entry.key,
      SCANNED_PER_MAP_CHECK,
    )) {
      if (!this.isDeadRecord(entry.value, entry.key, 0, entry.key.length)) yield entry;
    }
  }

  /**
   * The timeout index's entries in order. Each leads to a record read far from the last one (records are in key
   * order, entries in time order), so the scan checks as often as point reads do (see remappingScan).
   */
  private indexEntries(): IterableIterator<Buffer> {
    this.scanEntries = 0;
    return this.remappingScan(
      (range) => this.timeouts.getKeys(range),
      (key) => key,
      READS_PER_MAP_CHECK,
    );
  }

  /**
   * The entries of a database in key order, from `scan` of a range. Every `checkEvery` entries, when the process is
   * over its mapped budget, the scan resumes after its last key on a fresh mapping. An entry, and what the caller
   * reads for it, must not be held past the next: the database may be mapped afresh between two of them, and only
   * then, as no remap happens while the iterator is open.
   */
  private *remappingScan<T>(
    scan: (range: ScanRange) => Iterable<T>,
    keyOf: (entry: T) => Uint8Array,
    checkEvery: number,
  ): IterableIterator<T> {
    let last: Buffer | undefined;
    for (;;) {
      let seen = 0;
      let more = false;
      this.openScans++;
      try {
        for (const entry of scan(last === undefined ? {} : { start: last, exclusiveStart: true })) {
          yield entry;
          if (++seen % checkEvery === 0 && residentFileBytes() > this.mappedBytes) {
            last = Buffer.from(keyOf(entry));
            more = true;
            break;
          }
        }
      } finally {
        this.openScans--;
      }
      if (!more) return;
      this.remapIfOverBudget();
    }
  }

  /** Puts a replayed record (inside a write transaction), keeping the timeout index and the key count. */
  private putCommitted(key: Uint8Array, record: Buffer): void {
    const old = this.state.getBinaryFast(key);
    if (old === undefined) {
      this.count++;
      this.keyFilter?.add(key);
    }
    const oldTimeout = old === undefined ? -1 : old.readDoubleLE(0);
    this.state.putSync(key, record);
    const t = record.readDoubleLE(0);
    if (t >= 0 && (oldTimeout < 0 || t < oldTimeout)) this.timeouts.putSync(this.indexKey(t, key), EMPTY);
  }

  /**
   * Puts a chunk of a snapshot's entries into the database (inside a write transaction of its own; empty before
   * the first chunk) in key order, appended: LMDB then fills each page in turn instead of searching the tree and
   * splitting pages at every insert; the timeout index after the last chunk the same way (loadSnapshotIndex). A
   * snapshot the disk store wrote is in key order already; one the memory store wrote (in its hash order) is
   * sorted chunk by chunk, and a chunk whose first key is not after the last one in goes in by plain puts, as do
   * then the index entries.
   */
  private loadSnapshot(keys: Uint8Array[], values: Uint8Array[], timeouts: Float64Array, total: number): void {
    this.snapshotLoad ??= new SnapshotLoad();
    const load = this.snapshotLoad;
    if (load.taken === 0 && this.keyFilter !== null) this.keyFilter = new KeyFilter(total * FILTER_HEADROOM);
    const n = keys.length;
    const order = new Int32Array(n);
    for (let i = 0; i < n; i++) order[i] = i;
    let sorted = true;
    for (let i = 1; i < n && sorted; i++) sorted = Buffer.compare(keys[i - 1], keys[i]) < 0;
    if (!sorted) {
      const sortKeys = keys.map((k) => this.latin1.slice(k, 0, k.length));
      order.sort((a, b) => (sortKeys[a] < sortKeys[b] ? -1 : sortKeys[a] > sortKeys[b] ? 1 : 0));
    }
    const after = n === 0 || load.lastKey === null || Buffer.compare(keys[order[0]], load.lastKey) > 0;
    if (!after) load.inOrder = false;
    for (const i of order) {
      const value = values[i];
      const record = Buffer.allocUnsafe(RECORD_HEADER + value.length);
      record.writeDoubleLE(timeouts[i], 0);
      record.set(value, RECORD_HEADER);
      if (after) append(this.state, keys[i], record);
      else this.state.putSync(keys[i], record);
      this.keyFilter?.add(keys[i]);
      if (timeouts[i] >= 0) load.timed(timeouts[i], keys[i]);
    }
    if (n > 0 && (after || Buffer.compare(keys[order[n - 1]], load.lastKey as Uint8Array) > 0))
      load.lastKey = keys[order[n - 1]];
    this.count += n;
    load.taken += n;
  }

  /**
   * Writes the next CHANGES_PER_TRANSACTION of the loaded snapshot's timeout index entries (inside a write
   * transaction of their own), in (time, key) order: appended when every chunk was; true once all are in.
   */
  private loadSnapshotIndex(): boolean {
    const load = this.snapshotLoad as SnapshotLoad;
    load.indexOrder ??= timeOrder(load.times.subarray(0, load.count));
    const order = load.indexOrder;
    const end = Math.min(order.length, load.indexNext + CHANGES_PER_TRANSACTION);
    // Ties in time keep their key order, so the index keys (time, key) come in ascending order too.
    for (let i = load.indexNext; i < end; i++) {
      const c = order[i];
      const entry = this.indexKey(load.times[c], load.key(c));
      if (load.inOrder) append(this.timeouts, entry, EMPTY);
      else this.timeouts.putSync(entry, EMPTY);
    }
    load.indexNext = end;
    if (end < order.length) return false;
    this.snapshotLoad = null;
    return true;
  }

  /** Removes a replayed key (inside a write transaction), if present. */
  private removeCommitted(key: Uint8Array): void {
    const old = this.state.getBinaryFast(key);
    if (old === undefined) return;
    const t = old.readDoubleLE(0);
    if (t >= 0) this.timeouts.removeSync(this.indexKey(t, key));
    this.state.removeSync(key);
    this.count--;
  }

  /** The version the database's meta records (-1: none, or being rebuilt). */
  private metaVersion(): number {
    return (this.meta.get('version') as number | undefined) ?? REBUILDING;
  }

  private writeMeta(version: number, checksum: number | null): void {
    this.dbVersion = version;
    this.filterVersion = version;
    this.meta.removeSync('applying');
    this.meta.putSync('boot', this.boot);
    this.meta.putSync('version', version);
    this.meta.putSync('count', this.count);
    this.meta.putSync('tombstone', toMeta(this.tombstone));
    this.meta.putSync('deadRecords', this.deadRecords);
    this.meta.putSync('names', [...this.dict.names]);
    this.meta.putSync('checksum', checksum);
    this.writeRevived();
  }

  /** Saves the revived keys in the meta when they changed since it last did. */
  private writeRevived(): void {
    if (!this.revivedChanged) return;
    if (this.revived.size > 0) this.meta.putSync('revived', [...this.revived]);
    else this.meta.removeSync('revived');
    this.revivedChanged = false;
  }

  /** Brings the database to version `version` of the checkpoint: as it is, caught up, or rebuilt. */
  private async recover(version: number): Promise<void> {
    if (!Number.isInteger(version) || version < 0)
      throw new RangeError(`state version must be an integer >= 0, got ${version}`);
    if (this.committing) throw new Error(`state store ${this.dir}: load while a commit is running`);
    this._version = -1;
    this.hot.clear();
    this.dict = new FieldDictionary();
    this.pending = new PendingChanges(this.dict);
    this.unapplied = new PendingChanges(this.dict);
    this.unappliedChecksum = null;
    this.unappliedDeltaBytes = 0;
    this.repeatShare = -1;
    this.clearPending();
    this.looseEntries.clear();
    this.scannedEntries = 0;
    let from = (this.meta.get('version') as number | undefined) ?? 0;
    if (this.filterVersion !== from) this.keyFilter = null;
    // A version whose changes were being applied (a crash or a failed commit) left records and index entries of
    // two versions, which only a rebuild tells apart.
    const applying = this.meta.get('applying') !== undefined;
    const flushed = this.boot === null || this.meta.get('boot') === this.boot;
    if (applying) from = REBUILDING;
    else if (from > 0) {
      const recorded = this.meta.get('checksum') as number | null | undefined;
      const sameHistory = recorded != null && (await deltaChecksum(this.dir, from)) === recorded;
      if (!sameHistory || !flushed || from > version || !(await hasDeltasAfter(this.dir, from, version)))
        from = REBUILDING;
    }
    // A database without a version may still hold records (a crash before its first commit was applied).
    if (from <= 0 || version === 0) {
      this.transact(() => {
        this.state.clearSync();
        this.timeouts.clearSync();
        this.meta.clearSync();
        this.meta.putSync('version', REBUILDING);
      });
      this.keyFilter = new KeyFilter();
      from = 0;
    }
    if (from > 0) this.dict.adopt((this.meta.get('names') as string[] | undefined) ?? []);
    this.count = from > 0 ? ((this.meta.get('count') as number | undefined) ?? 0) : 0;
    this.takeReach(from > 0 ? fromMeta(this.meta.get('tombstone')) : NOWHERE);
    this.deadRecords = from > 0 ? ((this.meta.get('deadRecords') as number | undefined) ?? 0) : 0;
    this.revived = new Set(from > 0 ? ((this.meta.get('revived') as string[] | undefined) ?? []) : []);
    this.revivedChanged = false;
    if (version > from) {
      // The batches replayed carry no due-key scans to tell whether their puts fall behind the tombstone.
      this.sweepDead();
      const target: StateChangeTarget = {
        dict: this.dict,
        put: (key, value, timeout) => {
          const record = Buffer.allocUnsafe(RECORD_HEADER + value.length);
          record.writeDoubleLE(timeout, 0);
          record.set(value, RECORD_HEADER);
          this.putCommitted(key, record);
        },
        remove: (key) => this.removeCommitted(key),
        load: (keys, values, timeouts, total) => this.loadSnapshot(keys, values, timeouts, total),
        loadEnd: () => this.loadSnapshotIndex(),
      };
      try {
        await replayStateVersion(
          this.dir,
          from,
          version,
          target,
          (entries) => {
            this.transact(() => {
              // Marked as being rebuilt until the last file is in: a crash in between must not leave a
              // database that claims a version it only partly holds. A file comes in several transactions.
              this.meta.putSync('version', REBUILDING);
              entries();
            });
            this.remapIfOverBudget();
          },
          // A delta's random updates map pages as a commit's changes do, so they go in transactions of a commit's size.
          this.changesPerTransaction,
        );
      } catch (err) {
        this.count = 0;
        this.snapshotLoad = null;
        throw err;
      }
      const checksum = await deltaChecksum(this.dir, version);
      this.transact(() => this.writeMeta(version, checksum));
    }
    this.dbVersion = this.metaVersion();
    this._version = version;
  }

  /**
   * Writes the snapshot of `version` from the database, every entry in key order, and builds the key filter afresh
   * from the same scan, free of the keys removed since the last.
   */
  private async writeSnapshot(version: number): Promise<void> {
    const filter = new KeyFilter(this.count * FILTER_HEADROOM);
    await this.files.writeSnapshotOf(this.dir, version, this.dict.names, this.count, (visit) => {
      for (const { key, value } of this.committedRecords()) {
        filter.add(key);
        visit(key, value, value.readDoubleLE(0), RECORD_HEADER);
      }
    });
    this.keyFilter = filter;
  }

  private clearPending(): void {
    this.scansSinceCommit = 0;
    this.scanKeys = [];
    this.scanEnd = NOWHERE;
    this.dropDue();
    if (this.dueEncodings.buf.length > 1 << 16) this.dueEncodings = new ValueWriter(256, null, true);
    this.pending.clear();
    this.memoPending = -1;
    this.memoFound = false;
    this.memoTimeout = -1;
    this.memoDue = -1;
    this.memoSlot = -1;
    this.memoUnapplied = -1;
  }
}
