/**
 * Benchmark: a state commit's file writes, as the driver's thread makes them for one batch of a stateful query:
 * one delta file per state partition, side by side, each made durable before the batch may go on. Compares the
 * two ways lib/checkpoint/atomic-file.ts writes a file: `writeFileAtomic` (a temporary file, fsync, rename,
 * directory fsync: two journal commits in a row) as the baseline, and `writeFileSynced` (the final name, file and
 * directory synced together: one), alternating in the same invocation.
 *
 *   node dist/bench/state-file-sync.js [commits=200] [partitions=4] [bytes=4000]
 *
 * Prints commits per second and the p50 and p90 of one commit (all partitions durable) for each, and the ratio
 * of their medians. The files go to a new directory in the OS temp directory, on the disk checkpoints use there.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { writeFileAtomic, writeFileSynced } from '../lib/checkpoint/atomic-file.js';
import { median } from './support.js';

const [commits = 200, partitions = 4, bytes = 4000] = process.argv.slice(2).map(Number);
const WAYS = {
  'rename (writeFileAtomic)': writeFileAtomic,
  'in place (writeFileSynced)': writeFileSynced,
} as const;

function quantile(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(s.length * q))];
}

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-state-file-sync-'));
try {
  const data = new Uint8Array(bytes).fill(7);
  const times = new Map<string, number[]>(Object.keys(WAYS).map((k) => [k, []]));
  console.log(
    `state commit file writes: ${commits} commits of ${partitions} partitions x ${bytes} B, load average ${os.loadavg()[0].toFixed(1)}`,
  );
  for (let version = 1; version <= commits; version++) {
    for (const [name, write] of Object.entries(WAYS)) {
      const t0 = performance.now();
      await Promise.all(
        Array.from({ length: partitions }, (_, p) =>
          write(path.join(root, name.split(' ')[0], String(p), `${version}.delta`), data),
        ),
      );
      times.get(name)!.push(performance.now() - t0);
    }
  }
  for (const [name, ts] of times) {
    const total = ts.reduce((a, b) => a + b, 0);
    console.log(
      `${name.padEnd(28)} ${(commits / (total / 1000)).toFixed(0).padStart(6)} commits/s  ` +
        `p50 ${median(ts).toFixed(2)} ms  p90 ${quantile(ts, 0.9).toFixed(2)} ms`,
    );
  }
  const [before, after] = [...times.values()];
  console.log(`in place against rename: one commit's p50 ${(median(before) / median(after)).toFixed(2)}x shorter`);
} finally {
  fs.rmSync(root, { recursive: true, force: true });
}
