/**
 * Benchmark: the disk store's two whole-state passes, its snapshot write and its rebuild from a snapshot, by time
 * and peak memory, this build against another build's store in the same invocation.
 *
 *   node dist/bench/disk-state-snapshot.js [keys=5000000] [runs=3] [baselineDist]
 *
 * Writes one state partition's snapshot of `keys` sessions (`{start, end, count}` under integer keys, each with a
 * timeout) at version 10. Each run then starts, in turn for the baseline (`baselineDist`, the `dist` folder of an
 * older build; none: this build only) and this build, one fresh process per pass: the rebuild opens the store at
 * version 10 with no database (it loads the snapshot); the snapshot pass opens a database at version 11 in place
 * and commits version 12, which writes a snapshot of every key. Each process reports its wall time and peak
 * resident memory (the whole process: its heap, buffers and the database's mapped pages). Prints keys per second
 * and peak memory per pass and build, and the ratios of the pairs.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { StateFileWriter } from '../lib/state/state-file-format.js';
import { encode, encodeKey } from '../lib/state/value-codec.js';
import { median } from './support.js';

interface Pass {
  ms: number;
  peakMb: number;
}

const self = fileURLToPath(import.meta.url);
const thisDist = path.resolve(path.dirname(self), '..');

/** The child: one pass with the store of the build in `dist`; prints a {@link Pass} as JSON. */
async function child(mode: string, dist: string, dir: string, local: string): Promise<void> {
  const { DiskStateStore } = await import(path.join(dist, 'lib', 'state', 'disk-state-store.js'));
  const t = performance.now();
  let ms = 0;
  if (mode === 'rebuild') {
    const store = await DiskStateStore.open(dir, local, 10, {});
    ms = performance.now() - t;
    await store.close();
  } else if (mode === 'prepare') {
    // A delta at version 11 ties the database to this checkpoint, so that the snapshot pass opens it in place.
    const store = await DiskStateStore.open(dir, local, 10, { writeBackBytes: 0 });
    store.put(-1, { start: 0, end: 0, count: 1 }, 0);
    await store.commit(11);
    await store.close();
  } else {
    const store = await DiskStateStore.open(dir, local, 11, { snapshotInterval: 12 });
    store.put(-2, { start: 0, end: 0, count: 1 }, 0);
    const c = performance.now();
    await store.commit(12);
    ms = performance.now() - c;
    await store.close();
  }
  const pass: Pass = { ms, peakMb: process.resourceUsage().maxRSS / 1024 };
  process.stdout.write(JSON.stringify(pass));
}

function run(mode: string, dist: string, dir: string, local: string): Pass {
  const out = execFileSync(process.execPath, [self, '--child', mode, dist, dir, local], { encoding: 'utf8' });
  return JSON.parse(out) as Pass;
}

if (process.argv[2] === '--child') {
  const [mode, dist, dir, local] = process.argv.slice(3);
  await child(mode, dist, dir, local);
} else {
  const KEYS = Number(process.argv[2] ?? 5_000_000);
  const RUNS = Number(process.argv[3] ?? 3);
  const baseline = process.argv[4] === undefined ? null : path.resolve(process.argv[4]);
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-snapshot-'));
  try {
    const dir = path.join(root, 'checkpoint', 'state', '1', '0');
    fs.mkdirSync(dir, { recursive: true });
    // Keys in the order of their encodings, as the disk store writes them.
    const keys: Buffer[] = [];
    for (let i = 0; i < KEYS; i++) keys.push(Buffer.from(encodeKey(i * 7 + 1)));
    keys.sort(Buffer.compare);
    const t0 = 1_700_000_000_000;
    await new StateFileWriter().writeSnapshotOf(dir, 10, [], KEYS, (visit) => {
      for (let i = 0; i < KEYS; i++) {
        visit(keys[i], encode({ start: t0 + i, end: t0 + 10_000 + i, count: 3 }), t0 + 20_000 + (i % 100_000));
      }
    });
    keys.length = 0;
    const snapshotBytes = fs.statSync(path.join(dir, '10.snapshot')).size;
    const prepared = path.join(root, 'prepared');
    run('rebuild', thisDist, dir, prepared);
    run('prepare', thisDist, dir, prepared);
    const builds = baseline === null ? [thisDist] : [baseline, thisDist];
    const results = new Map<string, Pass[]>();
    for (let r = 0; r < RUNS; r++) {
      for (const dist of builds) {
        const local = path.join(root, 'local');
        fs.rmSync(local, { recursive: true, force: true });
        const rebuild = run('rebuild', dist, dir, local);
        fs.rmSync(local, { recursive: true, force: true });
        fs.cpSync(prepared, local, { recursive: true });
        const snapshot = run('snapshot', dist, dir, local);
        for (const f of ['12.delta', '12.snapshot']) fs.rmSync(path.join(dir, f), { force: true });
        for (const [pass, result] of [
          ['rebuild', rebuild],
          ['snapshot', snapshot],
        ] as const) {
          const key = `${pass} ${dist}`;
          results.set(key, [...(results.get(key) ?? []), result]);
          console.log(
            `run ${r + 1} ${pass.padEnd(8)} ${dist === thisDist ? 'this build' : 'baseline  '}: ` +
              `${Math.round(KEYS / (result.ms / 1000)).toLocaleString('en-US')} keys/s ` +
              `(${(result.ms / 1000).toFixed(2)} s), peak ${Math.round(result.peakMb).toLocaleString('en-US')} MB`,
          );
        }
      }
    }
    console.log(
      `\n${KEYS.toLocaleString('en-US')} keys, snapshot ${(snapshotBytes / 2 ** 20).toFixed(0)} MiB ` +
        `(${(snapshotBytes / KEYS).toFixed(1)} B/key); medians of ${RUNS}:`,
    );
    for (const pass of ['rebuild', 'snapshot']) {
      const mine = results.get(`${pass} ${thisDist}`) as Pass[];
      const line = (ps: Pass[]) =>
        `${Math.round(KEYS / (median(ps.map((p) => p.ms)) / 1000)).toLocaleString('en-US')} keys/s, ` +
        `peak ${Math.round(median(ps.map((p) => p.peakMb))).toLocaleString('en-US')} MB`;
      if (baseline === null) {
        console.log(`  ${pass}: ${line(mine)}`);
        continue;
      }
      const base = results.get(`${pass} ${baseline}`) as Pass[];
      const speed = mine.map((p, i) => base[i].ms / p.ms);
      const memory = mine.map((p, i) => p.peakMb / base[i].peakMb);
      console.log(
        `  ${pass}: this build ${line(mine)}; baseline ${line(base)}; ` +
          `speed ${median(speed).toFixed(2)}x (${speed.map((x) => x.toFixed(2)).join(', ')}), ` +
          `peak memory ${median(memory).toFixed(2)}x`,
      );
    }
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
}
