/**
 * State store cost of a running-sum state: `{sum: number}` under string keys like 'k123456'.
 *
 *   node --expose-gc dist/bench/state-store.js [keys=1000000] [runs=3]
 *
 * Prints, next to a naive baseline (a Map of objects in memory, a JSON snapshot on disk):
 * - bytes per key on disk (snapshot size / keys) and in memory (heap + array-buffer growth / keys);
 * - recovery: time to load all keys from a snapshot (median of `runs`), target <= 2 s for 1M keys;
 * - commit throughput: puts + commit of a batch updating 10% of the keys, and of the initial load;
 * - the due-timeout scan with every key holding a timeout;
 * - partitioning the keys into 8 state partitions, per key and per Arrow utf8 column.
 * Targets: <= 100 bytes per key (disk and memory), <= 2 s to recover 1M keys.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { utf8Data } from '../lib/arrow/columns.js';
import { stateDir } from '../lib/checkpoint/paths.js';
import { partitionOf, partitionsOfData } from '../lib/state/state-partitioner.js';
import { StateStore } from '../lib/state/state-store.js';

const numKeys = Number(process.argv[2] ?? 1_000_000);
const runs = Number(process.argv[3] ?? 3);

const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) {
  console.error('run with node --expose-gc so memory figures are measured after a full collection');
  process.exit(2);
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

function keyOf(i: number): string {
  return `k${String(i).padStart(6, '0')}`;
}

/**
 * Heap plus ArrayBuffer bytes after a full collection. The pauses let V8's background sweeper release
 * the backing stores of dead ArrayBuffers; without them a freed store still counts.
 */
async function usedBytes(): Promise<number> {
  for (let i = 0; i < 2; i++) {
    gc!();
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}

function row(label: string, value: string, note = ''): void {
  console.log(`${label.padEnd(62)} ${value.padStart(14)}  ${note}`);
}

function mapOfObjects(): Map<string, { sum: number }> {
  const objects = new Map<string, { sum: number }>();
  for (let i = 0; i < numKeys; i++) objects.set(keyOf(i), { sum: (i % 1000) * 1.5 + 0.01 });
  return objects;
}

/** Loads version 4 (a snapshot) into `held.store` and returns the time taken; its own frame dies on return. */
async function loadInto(held: { store: StateStore<string, { sum: number }> | null }, dir: string): Promise<number> {
  const t0 = performance.now();
  held.store = await StateStore.load<string, { sum: number }>(dir, 4);
  return performance.now() - t0;
}

async function main(): Promise<void> {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-bench-'));
  const dir = stateDir(root, 'sum', 0);
  try {
    console.log(
      `state store: running sum {sum: number} per key, ${numKeys.toLocaleString('en')} keys like '${keyOf(123456)}', ` +
        `node ${process.version}, ${os.cpus().length} cpus, load average ${os.loadavg()[0].toFixed(1)}`,
    );

    // snapshotInterval 2: versions 2 and 4 write a snapshot, 1 and 3 only a delta.
    const store = await StateStore.load<string, { sum: number }>(dir, 0, { snapshotInterval: 2 });
    let t0 = performance.now();
    for (let i = 0; i < numKeys; i++) store.put(keyOf(i), { sum: (i % 1000) * 1.5 + 0.01 });
    const putMs = performance.now() - t0;
    const first = await store.commit(1);
    row(
      'version 1, every key new: put',
      `${Math.round(numKeys / (putMs / 1000)).toLocaleString('en')} puts/s`,
      `${putMs.toFixed(0)} ms`,
    );
    row('version 1: commit (delta)', `${first.commitTimeMs.toFixed(0)} ms`);

    // Versions 2 and 3: a batch updating 10% of the keys, read-modify-write as mapGroupsWithState does.
    const batch = Math.max(1, Math.floor(numKeys / 10));
    const updateBatch = (offset: number): number => {
      const t = performance.now();
      for (let j = 0; j < batch; j++) {
        const key = keyOf((j * 7919 + offset) % numKeys);
        const s = store.get(key)!;
        store.put(key, { sum: s.sum + 2.25 }, 1_700_000_000_000 + j);
      }
      return performance.now() - t;
    };
    const update2 = updateBatch(0);
    const second = await store.commit(2);
    const update3 = updateBatch(1);
    const third = await store.commit(3);
    const label = `update ${batch.toLocaleString('en')} keys (get+put+commit)`;
    row(
      `${label}, delta only`,
      `${Math.round(batch / ((update3 + third.commitTimeMs) / 1000)).toLocaleString('en')} keys/s`,
      `get+put ${update3.toFixed(0)} ms, commit ${third.commitTimeMs.toFixed(0)} ms`,
    );
    row(
      `${label} + ${numKeys.toLocaleString('en')}-key snapshot`,
      `${Math.round(batch / ((update2 + second.commitTimeMs) / 1000)).toLocaleString('en')} keys/s`,
      `get+put ${update2.toFixed(0)} ms, commit ${second.commitTimeMs.toFixed(0)} ms`,
    );
    const baseline = new Map<string, { sum: number }>();
    for (let i = 0; i < numKeys; i++) baseline.set(keyOf(i), { sum: (i % 1000) * 1.5 + 0.01 });
    t0 = performance.now();
    for (let j = 0; j < batch; j++) {
      const key = keyOf((j * 7919) % numKeys);
      baseline.set(key, { sum: baseline.get(key)!.sum + 2.25 });
    }
    row(
      '  baseline: the same get+set on a Map<string, {sum}>',
      `${Math.round(batch / ((performance.now() - t0) / 1000)).toLocaleString('en')} keys/s`,
    );

    for (let i = 0; i < numKeys; i++) store.put(keyOf(i), store.get(keyOf(i))!, 1_700_000_000_000 + (i % 100_000));
    await store.commit(4);
    const scans: number[] = [];
    let due: string[] = [];
    for (let r = 0; r < 3; r++) {
      t0 = performance.now();
      due = store.keysWithTimeoutAtOrBefore(1_700_000_000_000 + 99);
      scans.push(performance.now() - t0);
    }
    row(
      'due-timeout scan, every key has a timeout',
      `${median(scans).toFixed(1)} ms`,
      `median of 3; ${due.length.toLocaleString('en')} due of ${numKeys.toLocaleString('en')}`,
    );

    const snapshotBytes = fs.statSync(path.join(dir, '4.snapshot')).size;
    const deltaBytes = fs.statSync(path.join(dir, '3.delta')).size;
    row(
      'disk: snapshot bytes per key',
      (snapshotBytes / numKeys).toFixed(1),
      `${(snapshotBytes / 1e6).toFixed(1)} MB (incl. 8-byte timeouts)`,
    );
    row('disk: delta bytes per updated key', (deltaBytes / batch).toFixed(1));
    const jsonSnapshot = JSON.stringify(
      Array.from({ length: numKeys }, (_, i) => [keyOf(i), { sum: (i % 1000) * 1.5 + 0.01 }]),
    );
    row('  baseline: JSON snapshot bytes per key', (Buffer.byteLength(jsonSnapshot) / numKeys).toFixed(1));

    const expected = store.size;
    await store.prepare(0);
    baseline.clear();
    // Recovery and memory: load version 4 (a snapshot) into a fresh store. Measured objects hang off
    // `held` so that no stale reference in this async frame skews the before/after figures.
    const held: { store: StateStore<string, { sum: number }> | null; map: Map<string, { sum: number }> | null } = {
      store: null,
      map: null,
    };
    const loadTimes: number[] = [];
    const memPerKey: number[] = [];
    let estimate = 0;
    for (let r = 0; r < runs; r++) {
      held.store = null;
      const before = await usedBytes();
      loadTimes.push(await loadInto(held, dir));
      if (held.store!.size !== expected) throw new Error(`loaded ${held.store!.size} keys, expected ${expected}`);
      memPerKey.push(((await usedBytes()) - before) / numKeys);
      estimate = held.store!.memoryUsedBytes() / numKeys;
    }
    held.store = null;
    row(
      `recovery: load ${numKeys.toLocaleString('en')} keys from a snapshot`,
      `${(median(loadTimes) / 1000).toFixed(2)} s`,
      `median of ${runs}: ${loadTimes.map((t) => t.toFixed(0)).join(', ')} ms (target <= 2 s for 1M)`,
    );
    row(
      'memory: bytes per key after loading',
      median(memPerKey).toFixed(1),
      `store's own estimate ${estimate.toFixed(1)} (target <= 100)`,
    );
    t0 = performance.now();
    held.map = new Map(JSON.parse(jsonSnapshot) as Array<[string, { sum: number }]>);
    row('  baseline: JSON.parse + Map of the JSON snapshot', `${((performance.now() - t0) / 1000).toFixed(2)} s`);
    held.map = null;
    const before = await usedBytes();
    held.map = mapOfObjects();
    row('  baseline: Map<string, {sum}> bytes per key', (((await usedBytes()) - before) / numKeys).toFixed(1));
    held.map = null;

    // Partitioning the same keys into 8 state partitions, one by one and as an Arrow utf8 column.
    const keys = Array.from({ length: numKeys }, (_, i) => keyOf(i));
    const column = utf8Data(keys);
    const scalar: number[] = [];
    const vector: number[] = [];
    let check = 0;
    for (let r = 0; r < runs; r++) {
      t0 = performance.now();
      for (let i = 0; i < numKeys; i++) check += partitionOf(keys[i], 8);
      scalar.push(performance.now() - t0);
      t0 = performance.now();
      const parts = partitionsOfData(column, 8);
      vector.push(performance.now() - t0);
      check -= parts.reduce((a, b) => a + b, 0);
    }
    if (check !== 0) throw new Error('scalar and vectorised partitions differ');
    row('partitionOf(string key)', `${(numKeys / median(scalar) / 1000).toFixed(1)} M keys/s`);
    row('partitionsOfData(utf8 column)', `${(numKeys / median(vector) / 1000).toFixed(1)} M keys/s`);
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
}

await main();
