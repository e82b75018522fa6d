/**
 * Benchmark: the embedded key-value engines a disk-backed state store could sit on, on the store's access
 * pattern, in one invocation: LMDB (`lmdb`), RocksDB (`@nxtedition/rocksdb`) and LevelDB (`classic-level`).
 *
 *   node dist/bench/state-engines.js [keys=1000000] [batches=20] [batchKeys=50000] [modulesDir] [engines=lmdb,rocksdb] [runs=3] [mappedMiB=256]
 *
 * `modulesDir` is a folder whose node_modules holds the engines' packages (default: this checkout, which has only
 * the chosen one; install the others beside it, e.g. `npm install lmdb@2.9.4 @nxtedition/rocksdb@12.2.12
 * classic-level@3.0.0` in a scratch folder). Each pass of an engine is a child process of its own, so that its
 * memory is its own. Per pass, with 9-byte binary keys (a type tag and a u64, as the state codec encodes an
 * integer key) and 24-byte values:
 * - load: `keys` puts in batches of `batchKeys`, one write transaction (LMDB) or write batch each;
 * - mixed batches: per batch, `batchKeys` synchronous point reads of random keys (as an operator reads its
 *   state), then in one write: a put of each read key (90%) or a delete (10%, re-put in the next batch)
 *   plus its entry in a timeout index (an 8-byte big-endian time then the key), and an ordered scan of the
 *   timeout index up to the batch's time that deletes what it finds (as due timeouts are collected);
 * - a full ordered scan (sortedEntries, a snapshot);
 * - bytes on disk per key, and the process's anonymous memory after the mixed batches (RSS without mapped files:
 *   what the engine holds in the process beyond the pages of its files).
 * Engine `lmdb-mapped` is LMDB as the disk store runs it where state outgrows memory: it maps its file afresh
 * whenever the process's resident mapped pages pass `mappedMiB` (checked every 256 reads, between write
 * transactions of 1,024 changes and between scan chunks of 4,096 entries), so that RSS stays bounded and every
 * read of a page not mapped since costs a page fault; plain `lmdb` keeps every page it touched mapped.
 * LevelDB has synchronous point reads (`getSync`) but asynchronous iterators only, so its scans are awaited.
 * RocksDB runs through its binding's synchronous calls (a one-key MultiGet, write batches, iterators' nextv).
 * Prints operations per second per phase, the pass's peak RSS, and the ratio of the first engine to the second.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as os from 'node:os';
import * as path from 'node:path';
import { median, rssAnonBytes, statusBytes } from './support.js';

const CHILD = process.argv[2] === '--child';
const ARGS = CHILD ? process.argv.slice(4) : process.argv.slice(2);
const KEYS = Number(ARGS[0] ?? 1_000_000);
const BATCHES = Number(ARGS[1] ?? 20);
const BATCH_KEYS = Number(ARGS[2] ?? 50_000);
const MODULES = ARGS[3] ?? process.cwd();
const ENGINE_NAMES = (ARGS[4] ?? 'lmdb,rocksdb').split(',');
const RUNS = Number(ARGS[5] ?? 3);
const MAPPED_BYTES = Number(ARGS[6] ?? 256) * 2 ** 20;
/** The disk store's bounds under its mapped budget: reads between checks, changes per transaction, scan chunk. */
const READS_PER_MAP_CHECK = 256;
const CHANGES_PER_TRANSACTION = 1024;
const SCAN_CHUNK = 4096;
const VALUE_BYTES = 24;

/** The operations the bench needs, over one engine. */
interface Engine {
  name: string;
  get(key: Buffer): Buffer | undefined;
  /** Applies puts (value) and deletes (undefined) of the state and the timeout index as one atomic write. */
  write(state: Array<[Buffer, Buffer | undefined]>, index: Array<[Buffer, Buffer | undefined]>): Promise<void>;
  /** Keys of the timeout index below `end`, in order. */
  indexBefore(end: Buffer): Promise<Buffer[]>;
  /** Visits every state entry in key order; returns how many. */
  scan(): Promise<number>;
  close(): Promise<void>;
}

function keyOf(i: number): Buffer {
  const b = Buffer.alloc(9);
  b[0] = 0x05;
  b.writeBigUInt64BE(BigInt(i), 1);
  return b;
}

function valueBytes(i: number, v: number): Buffer {
  const b = Buffer.alloc(VALUE_BYTES);
  b.writeDoubleLE(v, 0);
  b.writeDoubleLE(i, 8);
  return b;
}

function indexKey(t: number, key: Buffer): Buffer {
  const b = Buffer.alloc(8 + key.length);
  b.writeBigUInt64BE(BigInt(t), 0);
  key.copy(b, 8);
  return b;
}

async function openLmdb(dir: string): Promise<Engine> {
  const { open } = createRequire(path.join(MODULES, 'package.json'))('lmdb');
  const env = open({ path: dir, noSync: true, compression: false });
  const state = env.openDB({ name: 'state', keyEncoding: 'binary', encoding: 'binary' });
  const index = env.openDB({ name: 'timeouts', keyEncoding: 'binary', encoding: 'binary' });
  return {
    name: 'lmdb',
    get: (k) => state.getBinaryFast(k),
    write: async (s, ix) => {
      env.transactionSync(() => {
        for (const [k, v] of s) v === undefined ? state.removeSync(k) : state.putSync(k, v);
        for (const [k, v] of ix) v === undefined ? index.removeSync(k) : index.putSync(k, v);
      });
    },
    indexBefore: async (end) => Array.from(index.getKeys({ end }), (k) => k as Buffer),
    scan: async () => {
      let n = 0;
      for (const _ of state.getRange({})) n++;
      return n;
    },
    close: () => env.close(),
  };
}

async function openLmdbMapped(dir: string): Promise<Engine> {
  const { open } = createRequire(path.join(MODULES, 'package.json'))('lmdb');
  // biome-ignore lint/suspicious/noExplicitAny: lmdb is loaded from `modulesDir`, untyped
  let env: any;
  // biome-ignore lint/suspicious/noExplicitAny: as above
  let state: any;
  // biome-ignore lint/suspicious/noExplicitAny: as above
  let index: any;
  const openEnv = () => {
    env = open({ path: dir, noSync: true, compression: false });
    state = env.openDB({ name: 'state', keyEncoding: 'binary', encoding: 'binary' });
    index = env.openDB({ name: 'timeouts', keyEncoding: 'binary', encoding: 'binary' });
  };
  openEnv();
  const remapIfOverBudget = () => {
    if (statusBytes('RssFile') <= MAPPED_BYTES) return;
    env.resetReadTxn();
    void env.close();
    openEnv();
  };
  // Scans a database in chunks, on a fresh mapping when over budget between them; a chunk resumes just past the
  // last key read (the smallest key after k is k followed by a zero byte).
  const chunkedKeys = (db: () => typeof state, end: Buffer | undefined, visit: (k: Buffer) => void) => {
    let start: Buffer | undefined;
    for (;;) {
      let n = 0;
      for (const k of db().getKeys({ start, end, limit: SCAN_CHUNK }) as Iterable<Buffer>) {
        visit(k);
        start = Buffer.concat([k, Buffer.alloc(1)]);
        n++;
      }
      remapIfOverBudget();
      if (n < SCAN_CHUNK) return;
    }
  };
  let reads = 0;
  return {
    name: 'lmdb-mapped',
    get: (k) => {
      const v = state.getBinaryFast(k);
      if (++reads % READS_PER_MAP_CHECK === 0) remapIfOverBudget();
      return v;
    },
    write: async (s, ix) => {
      // The databases are looked up per transaction: a remap between two opens them afresh.
      const all = [...s.map((w) => [false, w] as const), ...ix.map((w) => [true, w] as const)];
      for (let from = 0; from < all.length; from += CHANGES_PER_TRANSACTION) {
        env.transactionSync(() => {
          for (const [isIndex, [k, v]] of all.slice(from, from + CHANGES_PER_TRANSACTION)) {
            const db = isIndex ? index : state;
            v === undefined ? db.removeSync(k) : db.putSync(k, v);
          }
        });
        remapIfOverBudget();
      }
    },
    indexBefore: async (end) => {
      const keys: Buffer[] = [];
      chunkedKeys(
        () => index,
        end,
        (k) => keys.push(Buffer.from(k)),
      );
      return keys;
    },
    scan: async () => {
      let n = 0;
      chunkedKeys(
        () => state,
        undefined,
        () => {
          n++;
        },
      );
      return n;
    },
    close: () => env.close(),
  };
}

async function openRocks(dir: string): Promise<Engine> {
  const { RocksLevel } = createRequire(path.join(MODULES, 'package.json'))('@nxtedition/rocksdb');
  // A 32 MiB block cache and 64 MiB of memtables per column family, no compression (LMDB's pages have none).
  const column = { compression: false, cacheSize: 32 << 20, compaction: 'level', memtableMemoryBudget: 64 << 20 };
  const db = new RocksLevel(dir, { keyEncoding: 'buffer', valueEncoding: 'buffer' });
  await db.open({ createIfMissing: true, walTTL: 0, columns: { default: column, state: column, timeouts: column } });
  const state = db.columns.state;
  const timeouts = db.columns.timeouts;
  const scanAll = (options: object, visit: (rows: Buffer[]) => void) => {
    const it = db.iterator({ ...options, keyEncoding: 'buffer', valueEncoding: 'buffer' });
    for (;;) {
      const { rows, finished } = it._nextvSync(1024);
      visit(rows);
      if (finished) break;
    }
    it._closeSync();
  };
  return {
    name: 'rocksdb',
    get: (k) => db._getManySync([k], { column: state, valueEncoding: 'buffer' })[0] ?? undefined,
    write: async (s, ix) => {
      const b = db.batch();
      for (const [k, v] of s) v === undefined ? b._del(k, { column: state }) : b._put(k, v, { column: state });
      for (const [k, v] of ix) v === undefined ? b._del(k, { column: timeouts }) : b._put(k, v, { column: timeouts });
      b._writeSync({});
      b._closeSync();
    },
    indexBefore: async (end) => {
      const keys: Buffer[] = [];
      scanAll({ column: timeouts, lt: end, values: false }, (rows) => {
        for (let i = 0; i < rows.length; i += 2) keys.push(rows[i]);
      });
      return keys;
    },
    scan: async () => {
      let n = 0;
      scanAll({ column: state }, (rows) => {
        n += rows.length / 2;
      });
      return n;
    },
    close: () => db.close(),
  };
}

async function openLevel(dir: string): Promise<Engine> {
  const { ClassicLevel } = createRequire(path.join(MODULES, 'package.json'))('classic-level');
  const db = new ClassicLevel(dir, { keyEncoding: 'buffer', valueEncoding: 'buffer' });
  await db.open();
  const state = db.sublevel('s', { keyEncoding: 'buffer', valueEncoding: 'buffer' });
  const index = db.sublevel('t', { keyEncoding: 'buffer', valueEncoding: 'buffer' });
  return {
    name: 'classic-level',
    get: (k) => state.getSync(k),
    write: async (s, ix) => {
      const ops: unknown[] = [];
      for (const [key, value] of s)
        ops.push(
          value === undefined ? { type: 'del', key, sublevel: state } : { type: 'put', key, value, sublevel: state },
        );
      for (const [key, value] of ix)
        ops.push(
          value === undefined ? { type: 'del', key, sublevel: index } : { type: 'put', key, value, sublevel: index },
        );
      await db.batch(ops);
    },
    // LevelDB's iterators are asynchronous only.
    indexBefore: (lt) => index.keys({ lt }).all(),
    scan: async () => {
      let n = 0;
      for await (const _ of state.iterator()) n++;
      return n;
    },
    close: () => db.close(),
  };
}

function duSync(dir: string): number {
  let total = 0;
  for (const name of fs.readdirSync(dir)) {
    const p = path.join(dir, name);
    const st = fs.statSync(p);
    total += st.isDirectory() ? duSync(p) : st.size;
  }
  return total;
}

async function runOnce(open: (dir: string) => Promise<Engine>): Promise<Record<string, number>> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-kv-'));
  const e = await open(dir);
  let t = performance.now();
  for (let start = 0; start < KEYS; start += BATCH_KEYS) {
    const s: Array<[Buffer, Buffer | undefined]> = [];
    for (let i = start; i < Math.min(KEYS, start + BATCH_KEYS); i++) s.push([keyOf(i), valueBytes(i, 1)]);
    await e.write(s, []);
  }
  const load = KEYS / ((performance.now() - t) / 1000);
  let seed = 1;
  const rnd = () => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed / 2147483648;
  };
  let readNs = 0;
  let writeNs = 0;
  let scanNs = 0;
  let found = 0;
  let due = 0;
  for (let b = 0; b < BATCHES; b++) {
    t = performance.now();
    const keys: Buffer[] = [];
    const values: Array<Buffer | undefined> = [];
    for (let j = 0; j < BATCH_KEYS; j++) {
      const k = keyOf(Math.floor(rnd() * KEYS));
      keys.push(k);
      const v = e.get(k);
      if (v !== undefined) found++;
      values.push(v);
    }
    readNs += performance.now() - t;
    t = performance.now();
    const due0 = await e.indexBefore(indexKey(b * 100, Buffer.alloc(0)));
    due += due0.length;
    scanNs += performance.now() - t;
    t = performance.now();
    const s: Array<[Buffer, Buffer | undefined]> = [];
    const ix: Array<[Buffer, Buffer | undefined]> = due0.map((k) => [k, undefined]);
    for (let j = 0; j < keys.length; j++) {
      const del = values[j] !== undefined && rnd() < 0.1;
      s.push([keys[j], del ? undefined : valueBytes(j, b)]);
      if (!del) ix.push([indexKey(b * 100 + 50 + Math.floor(rnd() * 500), keys[j]), Buffer.alloc(0)]);
    }
    await e.write(s, ix);
    writeNs += performance.now() - t;
  }
  const anon = rssAnonBytes();
  t = performance.now();
  const n = await e.scan();
  const scan = n / ((performance.now() - t) / 1000);
  await e.close();
  const bytes = duSync(dir);
  fs.rmSync(dir, { recursive: true, force: true });
  const ops = BATCHES * BATCH_KEYS;
  return {
    'load puts/s': load,
    'point reads/s': ops / (readNs / 1000),
    'batch writes/s': ops / (writeNs / 1000),
    'due scan keys/s': due / (scanNs / 1000),
    'full scan keys/s': scan,
    'disk bytes/key': bytes / n,
    'anon MiB': anon / 2 ** 20,
    hitRate: found / ops,
    'peak RSS MiB': statusBytes('VmHWM') / 2 ** 20,
  };
}

const OPENERS: Record<string, (dir: string) => Promise<Engine>> = {
  lmdb: openLmdb,
  'lmdb-mapped': openLmdbMapped,
  rocksdb: openRocks,
  'classic-level': openLevel,
};

if (CHILD) {
  const open = OPENERS[process.argv[3]];
  process.stdout.write(`${JSON.stringify(await runOnce(open))}\n`);
} else {
  const results = new Map<string, Array<Record<string, number>>>();
  for (let r = 0; r < RUNS; r++) {
    for (const name of ENGINE_NAMES) {
      if (!(name in OPENERS)) throw new Error(`unknown engine ${name}: one of ${Object.keys(OPENERS).join(', ')}`);
      const out = execFileSync(process.execPath, [process.argv[1], '--child', name, ...ARGS], {
        encoding: 'utf8',
        maxBuffer: 1 << 20,
      });
      const m = JSON.parse(out) as Record<string, number>;
      console.log(
        `run ${r + 1} ${name}: ${JSON.stringify(Object.fromEntries(Object.entries(m).map(([k, v]) => [k, Math.round(v * 100) / 100])))}`,
      );
      results.set(name, [...(results.get(name) ?? []), m]);
    }
  }
  console.log(`\nmedians of ${RUNS} runs, ${KEYS} keys, ${BATCHES} batches of ${BATCH_KEYS}:`);
  const [first, second = first] = ENGINE_NAMES;
  const a0 = results.get(first) ?? [];
  const b0 = results.get(second) ?? [];
  for (const metric of Object.keys(a0[0])) {
    const a = median(a0.map((m) => m[metric]));
    const b = median(b0.map((m) => m[metric]));
    const digits = metric.includes('/s') ? 0 : 2;
    console.log(
      `${metric.padEnd(18)} ${first} ${a.toFixed(digits).padStart(12)}  ${second} ${b.toFixed(digits).padStart(12)}  ratio ${(a / b).toFixed(2)}`,
    );
  }
}
