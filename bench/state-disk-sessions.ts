/**
 * The disk state store under a session-window workload, on one state partition, against the memory store in
 * the same invocation: each batch reads and rewrites `ops` random keys out of `keys` (a window of integer keys
 * that slides as new ones arrive, as Nexmark q11's bidders do), each with a session value and a timeout 10 s
 * after its last event, then removes the keys whose timeout the watermark passed, then commits.
 *
 *   node dist/bench/state-disk-sessions.js [keys=250000] [batches=8] [ops=250000] [runs=3]
 *
 * Prints per run and as medians: operations per CPU second of each store and their ratio (disk ÷ memory, per
 * run pair), the disk store's database file per live key at its largest, and the process's peak anonymous and
 * file-backed resident memory (each run in a child process of its own).
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { DiskStateStore } from '../lib/state/disk-state-store.js';
import { StateStore } from '../lib/state/state-store.js';
import type { VersionedStateStore } from '../lib/state/versioned-state-store.js';
import { cpuSeconds, median, statusBytes } from './support.js';

interface RunResult {
  opsPerCpuSecond: number;
  maxRows: number;
  fileBytes: number;
  peakAnonBytes: number;
  peakFileBytes: number;
}

/** Resident anonymous and file-backed bytes of this process. */
function resident(): { anon: number; file: number } {
  return { anon: statusBytes('RssAnon'), file: statusBytes('RssFile') };
}

/** xorshift32, so both stores see the same keys. */
function random(seed: number): () => number {
  let x = seed >>> 0;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 4294967296;
  };
}

async function runOnce(provider: string, keys: number, batches: number, ops: number): Promise<RunResult> {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-bench-disk-sessions-'));
  try {
    const dir = path.join(root, 'checkpoint');
    const store: VersionedStateStore =
      provider === 'disk'
        ? await DiskStateStore.open(dir, path.join(root, 'local'), 0, { cacheBytes: 16 << 20 })
        : await StateStore.load(dir, 0);
    const rand = random(2463534242);
    // A batch covers 3 s of event time: each key gets about 3 events per 10 s session gap.
    const msPerOp = 3000 / ops;
    let t = 1.7e12;
    let maxRows = 0;
    let peakAnon = 0;
    let peakFile = 0;
    const c0 = process.cpuUsage();
    for (let b = 1; b <= batches; b++) {
      const first = 1000 + Math.floor((b * keys) / 20);
      for (let i = 0; i < ops; i++) {
        t += msPerOp;
        const key = first + Math.floor(rand() * keys);
        const ts = Math.floor(t);
        const old = store.get(key) as [number, number, number[]][] | undefined;
        let sessions: [number, number, number[]][];
        if (old && old[0][1] > ts) {
          old[0][1] = ts + 10_000;
          old[0][2][0]++;
          sessions = old;
        } else sessions = [[ts, ts + 10_000, [1]]];
        store.put(key, sessions, sessions[0][1]);
      }
      for (const key of store.keysWithTimeoutAtOrBefore(Math.floor(t) - 2000)) {
        store.get(key);
        store.remove(key);
      }
      maxRows = Math.max(maxRows, store.size);
      await store.commit(b);
      const r = resident();
      peakAnon = Math.max(peakAnon, r.anon);
      peakFile = Math.max(peakFile, r.file);
    }
    const cpu = cpuSeconds(c0);
    await (store as { close?: () => Promise<void> }).close?.();
    const db = path.join(root, 'local', 'data.mdb');
    return {
      opsPerCpuSecond: (batches * ops) / cpu,
      maxRows,
      fileBytes: fs.existsSync(db) ? fs.statSync(db).size : 0,
      peakAnonBytes: peakAnon,
      peakFileBytes: peakFile,
    };
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
}

const fmt = (n: number): string => Math.round(n).toLocaleString('en-US');

if (process.argv[2] === '--child') {
  const [provider, keys, batches, ops] = process.argv.slice(3);
  const result = await runOnce(provider, Number(keys), Number(batches), Number(ops));
  process.stdout.write(JSON.stringify(result));
} else {
  const keys = Number(process.argv[2] ?? 250_000);
  const batches = Number(process.argv[3] ?? 8);
  const ops = Number(process.argv[4] ?? 250_000);
  const runs = Number(process.argv[5] ?? 3);
  const self = fileURLToPath(import.meta.url);
  console.log(
    `disk state store, session workload: ${fmt(keys)} keys, ${batches} batches of ${fmt(ops)} reads and writes, ${runs} run(s); ` +
      `${os.cpus().length} cores, load ${os
        .loadavg()
        .map((x) => x.toFixed(1))
        .join(' ')}`,
  );
  const results: Record<string, RunResult[]> = { memory: [], disk: [] };
  for (let r = 1; r <= runs; r++) {
    for (const provider of ['memory', 'disk']) {
      const out = execFileSync(process.execPath, [self, '--child', provider, `${keys}`, `${batches}`, `${ops}`], {
        encoding: 'utf8',
        maxBuffer: 1 << 20,
      });
      const res = JSON.parse(out) as RunResult;
      results[provider].push(res);
      console.log(
        `run ${r} ${provider.padEnd(6)} ${fmt(res.opsPerCpuSecond).padStart(9)} ops per CPU second, ${fmt(res.maxRows)} rows at most, ` +
          `peak resident ${fmt(res.peakAnonBytes / 2 ** 20)} MB anonymous + ${fmt(res.peakFileBytes / 2 ** 20)} MB mapped files` +
          (provider === 'disk' ? `, database ${(res.fileBytes / res.maxRows).toFixed(1)} B per row` : ''),
      );
    }
  }
  const ratios = results.disk.map((d, i) => d.opsPerCpuSecond / results.memory[i].opsPerCpuSecond);
  console.log(
    `medians: memory ${fmt(median(results.memory.map((x) => x.opsPerCpuSecond)))}, disk ${fmt(median(results.disk.map((x) => x.opsPerCpuSecond)))} ops per CPU second; ` +
      `disk ÷ memory ${median(ratios).toFixed(2)} (per run: ${ratios.map((x) => x.toFixed(2)).join(', ')}); ` +
      `database ${median(results.disk.map((x) => x.fileBytes / x.maxRows)).toFixed(1)} B per row`,
  );
}
