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
const META_MAIN_ROOT = PAGE_HEADER + 72 + 40;
const META_LAST_PAGE = PAGE_HEADER + 120;
const META_TXNID = PAGE_HEADER + 128;
/** Where the root page number sits in an MDB_db record. */
const DB_ROOT = 40;
/** No page (an empty tree's root). */
const NO_PAGE = -1;
/** The page size assumed until the first meta page says otherwise: big enough for its fields. */
const META_READ = 4096;

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

/** See the file's comment. */
export class LmdbFileReader {
  /** The page the last found record is in, valid until the next read. */
  page: Buffer;
  private read: Page;
  start = 0;
  end = 0;
  private fd = -1;
  private pageSize = 0;
  /** Root page of the named database in the last committed version (NO_PAGE: empty), or -2 until read. */
  private root = -2;
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
    return this.search(this.root, key);
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
    const firstLast = u64(first, META_LAST_PAGE);
    this.pageSize = size;
    const second = this.readPage(1, size)?.bytes;
    if (second === undefined || second.readUInt32LE(META_MAGIC) !== MAGIC) return;
    if (second.readUInt32LE(META_VERSION) !== DATA_VERSION) return;
    const newer = u64(second, META_TXNID) > firstTxn;
    const mainRoot = newer ? u64(second, META_MAIN_ROOT) : firstRoot;
    const lastPage = newer ? u64(second, META_LAST_PAGE) : firstLast;
    const large = (lastPage + 1) * size > this.mapFrom();
    if (large && mainRoot !== NO_PAGE) {
      for (const key of this.names) {
        const found = this.search(mainRoot, key, F_SUBDATA);
        if (found === FileRead.UseMap) return;
        if (found === FileRead.Found) {
          this.root = u64(this.page, this.start + DB_ROOT);
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
    if (fs.readSync(this.fd, bytes, 0, size, pgno * size) < size) return null;
    return pgno > 1 && u64(bytes, 0) !== pgno ? null : this.read;
  }

  /**
   * Searches the tree under `root` for `key`; a found leaf node must carry exactly the node flags `nodeFlags` (a
   * named database's record is F_SUBDATA, a plain record none).
   */
  private search(root: number, key: Uint8Array, nodeFlags = 0): FileRead {
    if (root === NO_PAGE) return FileRead.Absent;
    let pgno = root;
    for (;;) {
      let page = this.branches.get(pgno);
      if (page === undefined) {
        const read = this.readPage(pgno, this.pageSize);
        if (read === null) return FileRead.UseMap;
        page = read;
      }
      const { bytes, words } = page;
      const flags = words[FLAGS_AT >> 1];
      if ((flags & P_UNREAD) !== 0) return FileRead.UseMap;
      const n = words[LOWER_AT >> 1] >> 1;
      if ((flags & P_BRANCH) !== 0) {
        // The last node whose key is at or before the key; the first node's key is empty (everything before).
        let lo = 1;
        let hi = n - 1;
        let child = 0;
        while (lo <= hi) {
          const mid = (lo + hi) >> 1;
          if (compareNodeKey(bytes, words, nodeAt(words, mid), key) <= 0) {
            child = mid;
            lo = mid + 1;
          } else hi = mid - 1;
        }
        const w = nodeAt(words, child) >> 1;
        if (page === this.read) this.keepBranch(pgno);
        pgno = words[w] + words[w + 1] * 0x10000 + words[w + 2] * 2 ** 32;
        continue;
      }
      if ((flags & P_LEAF) === 0) return FileRead.UseMap;
      let lo = 0;
      let hi = n - 1;
      while (lo <= hi) {
        const mid = (lo + hi) >> 1;
        const node = nodeAt(words, mid);
        const c = compareNodeKey(bytes, words, node, key);
        if (c < 0) lo = mid + 1;
        else if (c > 0) hi = mid - 1;
        else {
          const w = node >> 1;
          // Other node flags: the record is on overflow pages (F_BIGDATA), or not the kind expected.
          if (words[w + 2] !== nodeFlags) return FileRead.UseMap;
          const size = words[w] + words[w + 1] * 0x10000;
          const start = node + NODE_HEADER + words[w + 3];
          if (start + size > this.pageSize) return FileRead.UseMap;
          this.start = start;
          this.end = start + size;
          return FileRead.Found;
        }
      }
      return FileRead.Absent;
    }
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

/** Where node `i` of a page starts, given the page's 16-bit words. */
function nodeAt(words: Uint16Array, i: number): number {
  return PAGE_HEADER + words[(PAGE_HEADER >> 1) + i];
}

/** LMDB's default key order (memcmp, then the shorter first) of the key of the node at `node` against `key`. */
function compareNodeKey(page: Uint8Array, words: Uint16Array, node: number, key: Uint8Array): number {
  const size = words[(node >> 1) + 3];
  const at = node + NODE_HEADER;
  const n = Math.min(size, key.length);
  for (let i = 0; i < n; i++) {
    const d = page[at + i] - key[i];
    if (d !== 0) return d;
  }
  return size - key.length;
}
