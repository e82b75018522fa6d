import { stateDir } from '../checkpoint/paths.js';
import { type StateCommitMetrics, StateStore } from './state-store.js';

/** Per-commit figures of one state partition: what the commit did, and what loading its state cost. */
export interface StateCommitStats extends StateCommitMetrics {
  /** Time this batch spent loading the partition's state from the checkpoint (0 when it was in memory). */
  stateLoadTimeMs: number;
}

/**
 * The state stores a thread holds open, one per (operator, state partition). A store stays in memory
 * between batches; it is reloaded from the checkpoint only when the version a batch needs is not the one
 * in memory (a replay after a failed batch, or a partition that moved to this thread).
 */
export class StateStoreCache {
  private readonly stores = new Map<string, { store: StateStore; version: number; loadTimeMs: number }>();

  /** Options every store is opened with (e.g. snapshot interval). */
  constructor(private readonly options: { snapshotInterval?: number } = {}) {}

  private static key(op: number, part: number): string {
    return `${op}/${part}`;
  }

  /** The store of (op, partition) at `version` (0 = empty), ready for a batch to change. */
  async open(checkpointDir: string, op: number, partition: number, version: number): Promise<StateStore> {
    const k = StateStoreCache.key(op, partition);
    const hit = this.stores.get(k);
    if (hit && hit.version === version) {
      hit.loadTimeMs = 0;
      return hit.store;
    }
    const dir = stateDir(checkpointDir, op, partition);
    const started = performance.now();
    const store = await StateStore.load(dir, version, { snapshotInterval: this.options.snapshotInterval });
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
    return { ...stats, stateLoadTimeMs: entry.loadTimeMs };
  }

  /** Forgets a store whose batch failed, so the replay reloads it from the checkpoint. */
  discard(op: number, partition: number): void {
    this.stores.delete(StateStoreCache.key(op, partition));
  }

  /** Forgets every store (after a failed batch anywhere in the query). */
  clear(): void {
    this.stores.clear();
  }
}
