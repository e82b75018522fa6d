/**
 * Benchmark: restart of a disk state store holding many keys, against the memory store's load of the same
 * checkpoint, in one invocation.
 *
 *   node dist/bench/disk-state-restart.js [keys=10000000] [batchKeys=1000000] [runs=3]
 *
 * Builds one state partition of `keys` running sums (`{sum, count}` under 'k<i>' keys, a timeout on every
 * tenth) with the disk store, `batchKeys` new keys per committed version and a snapshot at the last
 * version, then closes it. Then it commits batches of `batchKeys / 10` updates of a fiftieth of the keys, which
 * the store keeps in memory ahead of its database until they outgrow its write-back budget (the default), and copies the
 * database as a crash after the last of them would leave it, behind the checkpoint. Each run then times, from
 * nothing open: the disk store's open of the last version (its database is in place) up to its first read, the
 * same from the crashed copy (caught up from the checkpoint's delta files), the disk store's open with the
 * database deleted (rebuilt from the checkpoint's snapshot), and the memory store's load of the same version.
 * Prints medians.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Random } from '../lib/gen/random.js';
import { DiskStateStore } from '../lib/state/disk-state-store.js';
import { StateStore } from '../lib/state/state-store.js';
import { median } from './support.js';

const KEYS = Number(process.argv[2] ?? 10_000_000);
const BATCH = Number(process.argv[3] ?? 1_000_000);
const RUNS = Number(process.argv[4] ?? 3);

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-restart-'));
const dir = path.join(root, 'checkpoint', 'state', '1', '0');
const local = path.join(root, 'local');
const versions = Math.ceil(KEYS / BATCH);
/** The updates after the snapshot go to the first this many keys, often enough to the same ones to be kept. */
const HOT_KEYS = Math.ceil(KEYS / 50);
try {
  let t = performance.now();
  const store = await DiskStateStore.open(dir, local, 0, { snapshotInterval: versions });
  for (let v = 1; v <= versions; v++) {
    for (let i = (v - 1) * BATCH; i < Math.min(KEYS, v * BATCH); i++) {
      store.put(`k${i}`, { sum: i / 4, count: 1 }, i % 10 === 0 ? 1_700_000_000_000 + i : -1);
    }
    await store.commit(v);
  }
  const buildSeconds = (performance.now() - t) / 1000;
  // Updates after the snapshot, until a commit applies them to the database (its meta's version moves).
  const crashed = path.join(root, 'crashed');
  const rnd = new Random(3);
  const metaVersion = (): unknown => (store as unknown as { meta: { get(k: string): unknown } }).meta.get('version');
  let last = versions;
  let final = versions;
  for (let v = versions + 1; v < 2 * versions; v++) {
    for (let n = 0; n < BATCH / 10; n++) {
      const i = Math.floor(rnd.float() * HOT_KEYS);
      const old = store.get(`k${i}`) as { sum: number; count: number };
      store.put(`k${i}`, { sum: old.sum + 1, count: old.count + 1 }, i % 10 === 0 ? 1_700_000_000_000 + i : -1);
    }
    await store.commit(v);
    final = v;
    if (metaVersion() !== versions) break;
    last = v;
    fs.rmSync(crashed, { recursive: true, force: true });
    fs.cpSync(local, crashed, { recursive: true });
  }
  await store.close();
  const behind = last - versions;
  const bytes = (d: string): number =>
    fs
      .readdirSync(d, { withFileTypes: true, recursive: true })
      .filter((e) => e.isFile())
      .reduce((a, e) => a + fs.statSync(path.join(e.parentPath, e.name)).size, 0);
  console.log(
    `built ${KEYS} keys in ${versions} versions: ${buildSeconds.toFixed(1)} s (${Math.round(KEYS / buildSeconds)} puts/s); ` +
      `database ${(bytes(local) / KEYS).toFixed(1)} B/key, checkpoint ${(bytes(dir) / KEYS).toFixed(1)} B/key`,
  );
  if (behind === 0) throw new Error('the first batch of updates outgrew the write-back budget: use smaller batches');
  const crashedImage = `${crashed}-image`;
  fs.renameSync(crashed, crashedImage);
  /** Milliseconds from opening the store with its database in `localDir` at `version` to its first read. */
  const openToFirstRead = async (localDir: string, version: number): Promise<number> => {
    const start = performance.now();
    const store = await DiskStateStore.open(dir, localDir, version);
    // The last key is past the updated ones: its value is as the build put it.
    if ((store.get(`k${KEYS - 1}`) as { sum: number }).sum !== (KEYS - 1) / 4) {
      throw new Error(`wrong value after opening ${localDir} at version ${version}`);
    }
    const ms = performance.now() - start;
    await store.close();
    return ms;
  };
  const warm: number[] = [];
  const caughtUp: number[] = [];
  const rebuilt: number[] = [];
  const memory: number[] = [];
  for (let r = 1; r <= RUNS; r++) {
    warm.push(await openToFirstRead(local, final));
    fs.cpSync(crashedImage, crashed, { recursive: true });
    caughtUp.push(await openToFirstRead(crashed, last));
    fs.rmSync(crashed, { recursive: true, force: true });
    fs.rmSync(local, { recursive: true, force: true });
    t = performance.now();
    const rb = await DiskStateStore.open(dir, local, final);
    if (rb.size !== KEYS) throw new Error(`rebuilt ${rb.size} keys of ${KEYS}`);
    rebuilt.push(performance.now() - t);
    await rb.close();
    t = performance.now();
    const m = await StateStore.load(dir, final);
    if (m.size !== KEYS) throw new Error(`loaded ${m.size} keys of ${KEYS}`);
    memory.push(performance.now() - t);
    console.log(
      `run ${r}: disk store reopened ${warm[r - 1].toFixed(0)} ms, after a crash ${behind} versions behind ${caughtUp[r - 1].toFixed(0)} ms, rebuilt from the checkpoint ${rebuilt[r - 1].toFixed(0)} ms, memory store loaded ${memory[r - 1].toFixed(0)} ms`,
    );
  }
  console.log(
    `medians of ${RUNS}, ${KEYS} keys: disk store restart to its first read ${median(warm).toFixed(0)} ms, ` +
      `after a crash with ${behind} committed versions (${(behind * BATCH) / 10} updates) not yet in the database ${median(caughtUp).toFixed(0)} ms ` +
      `(${(median(memory) / median(warm)).toFixed(0)}x faster than the memory store's load, ${median(memory).toFixed(0)} ms); ` +
      `rebuild without the local database ${median(rebuilt).toFixed(0)} ms`,
  );
} finally {
  fs.rmSync(root, { recursive: true, force: true });
}
