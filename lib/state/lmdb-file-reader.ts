/**
 * Point reads of one named database in an LMDB file with pread instead of through LMDB's memory map.
 *
 * A read through the map touches the B-tree's pages in place. Where the database is larger than the pages the
 * process keeps mapped (the disk store's mapped budget), nearly every read touches a leaf that is not mapped: a
 * page fault, which maps the cached pages around it too, and on a virtual machine costs tens of microseconds. The
 * branch pages go with the next remap, so a read faults on them again. A pread copies one page out of the OS's
 * cache instead (about 2 µs) and maps nothing, and the branch pages stay decoded here between commits.
 *
 * The reader follows LMDB's file format (liblmdb's mdb.c as `lmdb` builds it: 24-byte page headers, two meta
 * pages, named databases as F_SUBDATA records of the main database) and answers from the last committed meta page.
 * It keeps copies of branch pages, which a later write transaction may free and reuse: the writer calls
 * {@link LmdbFileReader.invalidate} after every write transaction. Anything it does not read itself (a record on
 * overflow pages, an unexpected page) it leaves to the map, as does a database no larger than `mapFrom` bytes,
 * whose pages stay mapped and are read faster in place.
 */
import * as fs from 'node:fs';
import { ValueWriter } from './value-codec.js';

/**
 * What {@link LmdbFileReader.get} found: `Found` leaves the record in {@link LmdbFileReader.page} from `start` to
 * `end`; `UseMap` says to read it through the map (the database is small, or the record is not one this reader
 * reads).
 */
export const FileRead = { Absent: 0, Found: 1, UseMap: 2 } as const;
export type FileRead = (typeof FileRead)[keyof typeof FileRead];

/** Bytes of branch pages the readers of a thread may keep together, and how many they keep. */
export interface BranchBudget {
  readonly maxBytes: number;
  usedBytes: number;
}

const MAGIC = 0xbeefc0de;
const DATA_VERSION = 2;
/** Size of a page header: page number, txnid, pad, flags, lower, upper. */
const PAGE_HEADER = 24;
const FLAGS_AT = 18;
const LOWER_AT = 20;
const P_BRANCH = 0x01;
const P_LEAF = 0x02;
/** Flags of pages this reader does not descend (LEAF2 and sub-pages of duplicate-sorted databases). */
const P_UNREAD = 0x20 | 0x40;
const F_SUBDATA = 0x02;
/** Size of a node header: lo, hi, flags, key size. */
const NODE_HEADER = 8;
// Offsets in a meta page: the meta follows the page header; its two MDB_db records are 48 bytes each.
const META_MAGIC = PAGE_HEADER;
const META_VERSION = PAGE_HEADER + 4;
const META_PAGE_SIZE = PAGE_HEADER + 24;
const META_MAIN_DEPTH = PAGE_HEADER + 72 + 6;
const META_MAIN_ROOT = PAGE_HEADER + 72 + 40;
const META_LAST_PAGE = PAGE_HEADER + 120;
const META_TXNID = PAGE_HEADER + 128;
/** Where the tree's depth (levels of pages, 1: the root is a leaf) and its root page number sit in an MDB_db record. */
const DB_DEPTH = 6;
const DB_ROOT = 40;
/** No page (an empty tree's root). */
const NO_PAGE = -1;
/** The page size assumed until the first meta page says otherwise: big enough for its fields. */
const META_READ = 4096;
/** Most bytes one pread of {@link LmdbFileReader.getMany} reads. */
const WINDOW_BYTES = 1 << 20;
/**
 * Most bytes between two wanted leaves that one pread of {@link LmdbFileReader.getMany} reads along rather than
 * reading the second with a pread of its own: a pread costs several microseconds, copying 4 KiB of cached pages
 * about half of one.
 */
const GAP_BYTES = 32 << 10;

/** Reads a little-endian u64 that fits in 53 bits; all ones (LMDB's P_INVALID) reads as NO_PAGE. */
function u64(buf: Buffer, at: number): number {
  const lo = buf.readUInt32LE(at);
  const hi = buf.readUInt32LE(at + 4);
  if (hi === 0xffffffff && lo === 0xffffffff) return NO_PAGE;
  return hi * 2 ** 32 + lo;
}

/** A page's bytes and, over the same memory, its 16-bit words (a page's fields and nodes are 2-byte aligned). */
interface Page {
  bytes: Buffer;
  words: Uint16Array;
}

function newPage(size: number): Page {
  const bytes = Buffer.allocUnsafeSlow(size);
  return { bytes, words: new Uint16Array(bytes.buffer, bytes.byteOffset, size >> 1) };
}

/**
 * What {@link LmdbFileReader.getMany} found for each key: `status[i]` as {@link FileRead}, and a found record
 * copied to `bytes` from `start[i]` to `end[i]`.
 */
export class ManyReads {
  status = new Uint8Array(0);
  start = new Int32Array(0);
  end = new Int32Array(0);
  private records = new ValueWriter();

  /** The found records' bytes (a view of the buffer they were copied to). */
  get bytes(): Buffer {
    return this.records.asBuffer();
  }

  /** Makes room for `n` keys' results, none found yet. */
  reset(n: number): void {
    if (this.status.length < n) {
      this.status = new Uint8Array(n);
      this.start = new Int32Array(n);
      this.end = new Int32Array(n);
    }
    this.status.fill(FileRead.Absent, 0, n);
    this.records.reset();
  }

  /** Lets the buffers go, for reads of many keys that come seldom. */
  release(): void {
    this.status = new Uint8Array(0);
    this.start = new Int32Array(0);
    this.end = new Int32Array(0);
    this.records = new ValueWriter();
  }

  /** Copies key `i`'s record, `src` from `from` to `to`. */
  add(i: number, src: Uint8Array, from: number, to: number): void {
    this.start[i] = this.records.pos;
    this.records.raw(src, from, to);
    this.end[i] = this.records.pos;
  }
}

/** See the file's comment. */
export class LmdbFileReader {
  /** The page the last found record is in, valid until the next read. */
  page: Buffer;
  private read: Page;
  /** The page number whose page the read page holds, -1 for none. */
  private readPgno = -1;
  /** getMany's reads of several pages at once. */
  private window: Page = newPage(0);
  start = 0;
  end = 0;
  private fd = -1;
  private pageSize = 0;
  /** Root page of the named database in the last committed version (NO_PAGE: empty), or -2 until read. */
  private root = -2;
  /** Levels of the named database's tree: the root is a leaf at 1. */
  private depth = 0;
  /** Whether the database's used pages outgrow `mapFrom` (else reads go through the map). */
  private large = false;
  /** Branch pages read since the last write transaction, by page number. */
  private readonly branches = new Map<number, Page>();
  private branchBytes = 0;
  /** The named database's key in the main database: `lmdb` keeps the name's terminating NUL, LMDB itself not. */
  private readonly names: Buffer[];

  /**
   * @param file the LMDB data file
   * @param name the named database's name
   * @param mapFrom database size in bytes up to which reads go through the map, asked at each new version
   * @param budget the bytes of branch pages this reader may keep, shared with other readers
   */
  constructor(
    private readonly file: string,
    name: string,
    private readonly mapFrom: () => number,
    private readonly budget: BranchBudget,
  ) {
    this.names = [Buffer.from(`${name}\0`, 'utf8'), Buffer.from(name, 'utf8')];
    this.read = newPage(META_READ);
    this.page = this.read.bytes;
  }

  /** Forgets the committed version read so far: a write transaction may have freed and reused its pages. */
  invalidate(): void {
    this.root = -2;
    this.readPgno = -1;
    this.branches.clear();
    this.budget.usedBytes -= this.branchBytes;
    this.branchBytes = 0;
  }

  /** Bytes of the branch pages kept. */
  get sizeBytes(): number {
    return this.branchBytes;
  }

  /** Closes the file (the database is mapped afresh or closed); the next read opens it again. */
  close(): void {
    this.invalidate();
    if (this.fd >= 0) fs.closeSync(this.fd);
    this.fd = -1;
  }

  /** Looks `key` up in the last committed version; see {@link FileRead}. */
  get(key: Uint8Array): FileRead {
    if (this.root === -2) this.readMeta();
    if (!this.large) return FileRead.UseMap;
    return this.search(this.root, this.depth, key);
  }

  /**
   * Reads the newest meta page and, where the database is large, finds the named database's root. Until the next
   * write transaction, reads then go to the map without touching the file again when it is small or not as
   * expected (a missing file, another format).
   */
  private readMeta(): void {
    this.root = NO_PAGE;
    this.large = false;
    if (this.fd < 0) {
      try {
        this.fd = fs.openSync(this.file, 'r');
      } catch {
        return;
      }
    }
    const first = this.readPage(0, META_READ)?.bytes;
    if (first === undefined || first.readUInt32LE(META_MAGIC) !== MAGIC) return;
    if (first.readUInt32LE(META_VERSION) !== DATA_VERSION) return;
    const size = first.readUInt32LE(META_PAGE_SIZE);
    if (size < META_READ || (size & (size - 1)) !== 0) return;
    const firstTxn = u64(first, META_TXNID);
    const firstRoot = u64(first, META_MAIN_ROOT);
    const firstDepth = first.readUInt16LE(META_MAIN_DEPTH);
    const firstLast = u64(first, META_LAST_PAGE);
    this.pageSize = size;
    const second = this.readPage(1, size)?.bytes;
    if (second === undefined || second.readUInt32LE(META_MAGIC) !== MAGIC) return;
    if (second.readUInt32LE(META_VERSION) !== DATA_VERSION) return;
    const newer = u64(second, META_TXNID) > firstTxn;
    const mainRoot = newer ? u64(second, META_MAIN_ROOT) : firstRoot;
    const mainDepth = newer ? second.readUInt16LE(META_MAIN_DEPTH) : firstDepth;
    const lastPage = newer ? u64(second, META_LAST_PAGE) : firstLast;
    const large = (lastPage + 1) * size > this.mapFrom();
    if (large && mainRoot !== NO_PAGE) {
      for (const key of this.names) {
        const found = this.search(mainRoot, mainDepth, key, F_SUBDATA);
        if (found === FileRead.UseMap) return;
        if (found === FileRead.Found) {
          this.root = u64(this.page, this.start + DB_ROOT);
          this.depth = this.page.readUInt16LE(this.start + DB_DEPTH);
          break;
        }
      }
    }
    this.large = large;
  }

  /** Reads page `pgno` into the read page; null when the file ends before it or the page is not that page. */
  private readPage(pgno: number, size: number): Page | null {
    if (this.read.bytes.length < size) this.read = newPage(size);
    const { bytes } = this.read;
    this.page = bytes;
    this.readPgno = -1;
    if (fs.readSync(this.fd, bytes, 0, size, pgno * size) < size) return null;
    if (pgno > 1 && u64(bytes, 0) !== pgno) return null;
    this.readPgno = pgno;
    return this.read;
  }

  /**
   * Looks up every key of `keys` in the last committed version, as {@link LmdbFileReader.get} would, into `out`:
   * the keys' leaves are found through the branch pages first, and then read in file order, neighbours and short
   * gaps between them in one pread of up to a MiB. Where many keys are read at once (a batch's due keys), their
   * leaves are a large share of the file's pages, and this reads them for a fraction of a pread per leaf.
   * Returns false, and reads nothing, where the database is small enough to read through the map.
   */
  getMany(keys: readonly Uint8Array[], out: ManyReads): boolean {
    if (this.root === -2) this.readMeta();
    const n = keys.length;
    out.reset(n);
    if (!this.large) return false;
    const size = this.pageSize;
    // Each key's leaf, packed with the key's number so that one native sort puts them in file order.
    if (this.root === NO_PAGE) return true;
    const byLeaf = new Float64Array(n);
    let m = 0;
    for (let i = 0; i < n; i++) {
      const leaf = this.leafOf(this.root, this.depth, keys[i]);
      if (leaf < 0) out.status[i] = FileRead.UseMap;
      else byLeaf[m++] = leaf * n + i;
    }
    const order = byLeaf.subarray(0, m).sort();
    const windowPages = Math.max(1, Math.floor(WINDOW_BYTES / size));
    const gapPages = Math.floor(GAP_BYTES / size);
    if (this.window.bytes.length < windowPages * size) this.window = newPage(windowPages * size);
    const { bytes, words } = this.window;
    for (let at = 0; at < m; ) {
      const first = Math.floor(order[at] / n);
      let last = first;
      let end = at + 1;
      for (; end < m; end++) {
        const leaf = Math.floor(order[end] / n);
        if (leaf - last > gapPages + 1 || leaf - first >= windowPages) break;
        last = leaf;
      }
      const want = (last - first + 1) * size;
      const got = fs.readSync(this.fd, bytes, 0, want, first * size);
      for (; at < end; at++) {
        const leaf = Math.floor(order[at] / n);
        const i = order[at] - leaf * n;
        const base = (leaf - first) * size;
        if (base + size > got || u64(bytes, base) !== leaf) {
          out.status[i] = FileRead.UseMap;
          continue;
        }
        const r = this.searchLeaf(bytes, words, base, keys[i], 0);
        out.status[i] = r;
        if (r === FileRead.Found) out.add(i, bytes, this.start, this.end);
      }
    }
    return true;
  }

  /**
   * Searches the tree under `root` for `key`; a found leaf node must carry exactly the node flags `nodeFlags` (a
   * named database's record is F_SUBDATA, a plain record none).
   */
  private search(root: number, depth: number, key: Uint8Array, nodeFlags = 0): FileRead {
    if (root === NO_PAGE) return FileRead.Absent;
    const leaf = this.leafOf(root, depth, key);
    if (leaf < 0) return FileRead.UseMap;
    if (leaf !== this.readPgno && this.readPage(leaf, this.pageSize) === null) return FileRead.UseMap;
    return this.searchLeaf(this.read.bytes, this.read.words, 0, key, nodeFlags);
  }

  /**
   * The leaf page under `root`, `depth` levels above the leaves, whose key range holds `key`: found through the
   * branch pages (kept, or read and kept) without reading the leaf; -1 where a page is not as expected.
   */
  private leafOf(root: number, depth: number, key: Uint8Array): number {
    let pgno = root;
    for (let level = 1; level < depth; level++) {
      let page = this.branches.get(pgno);
      if (page === undefined) {
        const read = this.readPage(pgno, this.pageSize);
        if (read === null) return -1;
        page = read;
      }
      const { bytes, words } = page;
      const flags = words[FLAGS_AT >> 1];
      if ((flags & (P_UNREAD | P_BRANCH)) !== P_BRANCH) return -1;
      const n = words[LOWER_AT >> 1] >> 1;
      // The last node whose key is at or before the key; the first node's key is empty (everything before).
      let lo = 1;
      let hi = n - 1;
      let child = 0;
      while (lo <= hi) {
        const mid = (lo + hi) >> 1;
        if (compareNodeKey(bytes, words, 0, nodeAt(words, 0, mid), key) <= 0) {
          child = mid;
          lo = mid + 1;
        } else hi = mid - 1;
      }
      const w = nodeAt(words, 0, child) >> 1;
      if (page === this.read) this.keepBranch(pgno);
      pgno = words[w] + words[w + 1] * 0x10000 + words[w + 2] * 2 ** 32;
    }
    return depth > 0 ? pgno : -1;
  }

  /**
   * Searches the leaf page at `base` in `bytes` (and `words` over them) for `key`, leaving a found record at
   * [start, end) of `bytes`; a found node must carry exactly the node flags `nodeFlags`.
   */
  private searchLeaf(bytes: Buffer, words: Uint16Array, base: number, key: Uint8Array, nodeFlags: number): FileRead {
    if ((words[(base + FLAGS_AT) >> 1] & (P_UNREAD | P_LEAF)) !== P_LEAF) return FileRead.UseMap;
    const n = words[(base + LOWER_AT) >> 1] >> 1;
    let lo = 0;
    let hi = n - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const node = nodeAt(words, base, mid);
      const c = compareNodeKey(bytes, words, base, node, key);
      if (c < 0) lo = mid + 1;
      else if (c > 0) hi = mid - 1;
      else {
        const w = (base + node) >> 1;
        // Other node flags: the record is on overflow pages (F_BIGDATA), or not the kind expected.
        if (words[w + 2] !== nodeFlags) return FileRead.UseMap;
        const size = words[w] + words[w + 1] * 0x10000;
        const start = node + NODE_HEADER + words[w + 3];
        if (start + size > this.pageSize) return FileRead.UseMap;
        this.start = base + start;
        this.end = base + start + size;
        return FileRead.Found;
      }
    }
    return FileRead.Absent;
  }

  /** Keeps a copy of the read page, branch page `pgno`, while there is room. */
  private keepBranch(pgno: number): void {
    const size = this.pageSize;
    if (this.budget.usedBytes + size > this.budget.maxBytes) return;
    const copy = newPage(size);
    copy.bytes.set(this.read.bytes.subarray(0, size));
    this.branches.set(pgno, copy);
    this.branchBytes += size;
    this.budget.usedBytes += size;
  }
}

/** Where node `i` of the page at `base` starts within the page, given the 16-bit words the page is in. */
function nodeAt(words: Uint16Array, base: number, i: number): number {
  return PAGE_HEADER + words[((base + PAGE_HEADER) >> 1) + i];
}

/**
 * LMDB's default key order (memcmp, then the shorter first) of the key of the node at `node` of the page at `base`
 * against `key`.
 */
function compareNodeKey(page: Uint8Array, words: Uint16Array, base: number, node: number, key: Uint8Array): number {
  const size = words[((base + node) >> 1) + 3];
  const at = base + node + NODE_HEADER;
  const n = Math.min(size, key.length);
  for (let i = 0; i < n; i++) {
    const d = page[at + i] - key[i];
    if (d !== 0) return d;
  }
  return size - key.length;
}
