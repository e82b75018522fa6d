import * as crypto from 'node:crypto';
import * as os from 'node:os';
import * as path from 'node:path';
import { stateDir } from '../checkpoint/paths.js';
import type { DiskStateStore } from './disk-state-store.js';
import { StateStore } from './state-store.js';
import type { StateCommitMetrics, StateStoreProvider, VersionedStateStore } from './versioned-state-store.js';

/** Per-commit figures of one state partition: what the commit did, and what loading its state cost. */
export interface StateCommitStats extends StateCommitMetrics {
  /** Time this batch spent loading the partition's state from the checkpoint (0 when it was in memory). */
  stateLoadTimeMs: number;
}

/** How a query's state stores are opened; one value for the whole query, in every thread. */
export interface StateStoreSettings {
  /** Take a snapshot every this many versions. Default 10. */
  snapshotInterval?: number;
  /** Where committed state lives: 'memory' (default) or 'disk'. */
  provider?: StateStoreProvider;
  /** The disk store's cache of hot keys, in MiB per state partition. Default 64. */
  cacheMb?: number;
  /**
   * The folder under which the disk store keeps its working databases, one folder per checkpoint in it.
   * Default `sluice-state` in the OS temp directory.
   */
  localDir?: string;
  /**
   * The most keys a stateful operator closes (emits and removes, as the watermark passes them) in one state
   * partition in one batch; the rest close in the no-data batches that follow at once. Default
   * {@link DEFAULT_MAX_EVICTIONS_PER_BATCH}.
   */
  maxEvictionsPerBatch?: number;
}

/**
 * Keys closed per state partition and batch unless a query says otherwise: enough that a steady batch closes
 * what it must, few enough that the batch that ends a bounded input (and so closes every window and session
 * at once) holds its output and its list of due keys in memory bounded by this, not by the number of keys.
 */
export const DEFAULT_MAX_EVICTIONS_PER_BATCH = 1 << 18;

/**
 * The working database folder of the disk store of (op, partition) of the checkpoint in `checkpointDir`: under
 * `root` (default the OS temp dir's `sluice-state`), a folder named after the checkpoint's absolute path, so
 * that queries sharing a root do not share databases.
 */
export function diskStateLocalDir(
  checkpointDir: string,
  op: number | string,
  partition: number | string,
  root = path.join(os.tmpdir(), 'sluice-state'),
): string {
  const abs = path.resolve(checkpointDir);
  const id = crypto.createHash('sha256').update(abs).digest('hex').slice(0, 16);
  return path.join(root, `${path.basename(abs)}-${id}`, String(op), String(partition));
}

/**
 * The state stores a thread holds open, one per (operator, state partition). A store stays open between
 * batches; it is brought to another version only when a batch needs one that is not the one it holds (a replay
 * after a failed batch, or a partition that moved to this thread).
 */
export class StateStoreCache {
  private readonly stores = new Map<string, { store: VersionedStateStore; version: number; loadTimeMs: number }>();
  /** Disk stores of failed batches, kept open for the replay to bring back to a committed version. */
  private readonly idle = new Map<string, DiskStateStore>();

  /** Settings every store is opened with. */
  constructor(private readonly settings: StateStoreSettings = {}) {}

  /** See {@link StateStoreSettings.maxEvictionsPerBatch}. */
  get maxEvictionsPerBatch(): number {
    return this.settings.maxEvictionsPerBatch ?? DEFAULT_MAX_EVICTIONS_PER_BATCH;
  }

  private static key(op: number, part: number): string {
    return `${op}/${part}`;
  }

  /** The store of (op, partition) at `version` (0 = empty), ready for a batch to change. */
  async open(checkpointDir: string, op: number, partition: number, version: number): Promise<VersionedStateStore> {
    const k = StateStoreCache.key(op, partition);
    const hit = this.stores.get(k);
    if (hit && hit.version === version) return hit.store;
    const started = performance.now();
    const store = await this.load(k, checkpointDir, op, partition, version, hit?.store);
    this.stores.set(k, { store, version, loadTimeMs: performance.now() - started });
    return store;
  }

  /** Commits the changes of the current batch as `version` and drops versions no longer needed. */
  async commit(op: number, partition: number, version: number, minVersionToKeep: number): Promise<StateCommitStats> {
    const k = StateStoreCache.key(op, partition);
    const entry = this.stores.get(k);
    if (!entry) throw new Error(`state store ${k} was not opened before commit`);
    const stats = await entry.store.commit(version);
    entry.version = version;
    if (minVersionToKeep > 0) await entry.store.purge(minVersionToKeep);
    // A load is reported by the first commit after it, also when it was made before that batch (at query start).
    const stateLoadTimeMs = entry.loadTimeMs;
    entry.loadTimeMs = 0;
    return { ...stats, stateLoadTimeMs };
  }

  /** Forgets a store whose batch failed, so the replay reloads it from the checkpoint. */
  discard(op: number, partition: number): void {
    const k = StateStoreCache.key(op, partition);
    const entry = this.stores.get(k);
    if (entry && this.settings.provider === 'disk') this.idle.set(k, entry.store as DiskStateStore);
    this.stores.delete(k);
  }

  /** Forgets every store (after a failed batch anywhere in the query). */
  clear(): void {
    if (this.settings.provider === 'disk')
      for (const [k, entry] of this.stores) this.idle.set(k, entry.store as DiskStateStore);
    this.stores.clear();
  }

  /** Closes every store (the query stopped). */
  async close(): Promise<void> {
    this.clear();
    const open = [...this.idle.values()];
    this.idle.clear();
    await Promise.all(open.map((s) => s.close()));
  }

  private async load(
    k: string,
    checkpointDir: string,
    op: number,
    partition: number,
    version: number,
    held: VersionedStateStore | undefined,
  ): Promise<VersionedStateStore> {
    const dir = stateDir(checkpointDir, op, partition);
    const { snapshotInterval } = this.settings;
    if (this.settings.provider !== 'disk') return StateStore.load(dir, version, { snapshotInterval });
    // A disk store's database stays open: the store itself checks it against the checkpoint.
    const disk = held ?? this.idle.get(k);
    this.idle.delete(k);
    if (disk) {
      await disk.prepare(version);
      return disk;
    }
    const localDir = diskStateLocalDir(checkpointDir, op, partition, this.settings.localDir);
    // Loaded on first use: the database module and its native addon cost every thread that imports them ~50 ms of CPU.
    const { DiskStateStore } = await import('./disk-state-store.js');
    return DiskStateStore.open(dir, localDir, version, {
      snapshotInterval,
      cacheBytes: (this.settings.cacheMb ?? 64) * 2 ** 20,
    });
  }
}
