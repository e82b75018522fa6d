/**
 * The disk state store's closing batches when some keys are given a timeout the range tombstone already passed (a
 * timer a processor registers in the past, as Spark lets it: it fires in the next batch), against the same batches
 * without them, in one invocation. A store of `keys` integer keys with timeouts spread over 1,000 s closes
 * `closePerBatch` due keys per batch (read, then removed) as the watermark moves 5 s; in the late run every other
 * batch also puts one new key with a timeout at 10 ms, behind the tombstone.
 *
 *   node dist/bench/disk-state-late-timers.js [keys=1000000] [batches=16] [closePerBatch=20000] [runs=3]
 *
 * Prints per run and as medians: keys closed per CPU second of the batches with and without the late timeouts,
 * and their ratio (late ÷ plain; 1 means a late timeout costs nothing extra).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { DiskStateStore } from '../lib/state/disk-state-store.js';
import { cpuSeconds, median } from './support.js';

const KEYS = Number(process.argv[2] ?? 1_000_000);
const BATCHES = Number(process.argv[3] ?? 16);
const CLOSE_PER_BATCH = Number(process.argv[4] ?? 20_000);
const RUNS = Number(process.argv[5] ?? 3);

/** Keys closed per CPU second over the closing batches of one fresh store. */
async function run(late: boolean): Promise<number> {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-bench-late-timers-'));
  try {
    // Each commit applied at once, so that every batch's database writes are in its own time.
    const store = await DiskStateStore.open(path.join(root, 'checkpoint'), path.join(root, 'local'), 0, {
      writeBackBytes: 0,
      cacheBytes: 8 << 20,
    });
    let x = 2463534242;
    for (let k = 0; k < KEYS; k++) {
      x = (Math.imul(x, 1103515245) + 12345) >>> 0;
      store.put(k, { k, n: 1 }, 1000 + Math.floor((x / 2 ** 32) * 1e6));
    }
    await store.commit(1);
    let wm = 1000;
    let closed = 0;
    const started = process.cpuUsage();
    for (let v = 2; v < 2 + BATCHES; v++) {
      wm += 5000;
      for (const k of store.keysWithTimeoutAtOrBefore(wm, CLOSE_PER_BATCH)) {
        store.get(k);
        store.remove(k);
        closed++;
      }
      if (late && v % 2 === 1) store.put(KEYS + v, { late: v }, 10);
      await store.commit(v);
    }
    const cpu = cpuSeconds(started);
    await store.close();
    return closed / cpu;
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
}

const ratios: number[] = [];
const plain: number[] = [];
const withLate: number[] = [];
for (let r = 0; r < RUNS; r++) {
  // Alternated, so that the machine's drift falls on both.
  const p = await run(false);
  const l = await run(true);
  plain.push(p);
  withLate.push(l);
  ratios.push(l / p);
  console.log(
    `run ${r + 1}: plain ${Math.round(p).toLocaleString('en-US')} keys closed per CPU second, with late timeouts ${Math.round(l).toLocaleString('en-US')}, ratio ${(l / p).toFixed(2)}`,
  );
}
console.log(
  `median of ${RUNS}: plain ${Math.round(median(plain)).toLocaleString('en-US')}, with late timeouts ${Math.round(median(withLate)).toLocaleString('en-US')} keys closed per CPU second, ratio ${median(ratios).toFixed(2)} (${KEYS} keys, ${BATCHES} batches of ${CLOSE_PER_BATCH})`,
);
