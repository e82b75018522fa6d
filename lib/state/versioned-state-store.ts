/**
 * What every state store provider gives a stateful operator's state partition, as Spark's StateStore trait:
 * keyed reads and writes with timeouts, ordered scans, and versions that a batch commits or aborts.
 * The memory provider's StateStore keeps committed state in memory (Spark's HDFS-backed store); the disk
 * provider's DiskStateStore keeps it in an embedded database on local disk (Spark's RocksDB store). Both write the same delta and
 * snapshot files to the checkpoint, so either provider recovers a checkpoint the other wrote.
 */

/** What one commit did; the operator's progress report is built from it. */
export interface StateCommitMetrics {
  /** Keys in the state after the commit. */
  numRowsTotal: number;
  /** Keys put (inserted or updated) by this batch. */
  numRowsUpdated: number;
  /** Keys removed by this batch (that existed before it). */
  numRowsRemoved: number;
  /** Bytes the store holds in memory (arena, index, timeouts, pending changes). */
  memoryUsedBytes: number;
  /** Wall time of the commit, including file writes. */
  commitTimeMs: number;
}

/**
 * Checks that a store at version `current` may commit `version` (the next one) now, the contract both providers keep:
 * one commit at a time, each the version after the one the store holds.
 */
export function checkCommitVersion(dir: string, current: number, version: number, committing: boolean): void {
  if (committing) throw new Error(`state store ${dir}: commit(${version}) while another commit is running`);
  if (version !== current + 1 || current < 0) {
    throw new Error(
      `state store ${dir} holds version ${current} and cannot commit version ${version}; prepare(${version - 1}) first`,
    );
  }
}

/** The state store providers a query can choose. */
export type StateStoreProvider = 'memory' | 'disk';

/** The provider names, for checking options. */
export const STATE_STORE_PROVIDERS: readonly StateStoreProvider[] = ['memory', 'disk'];

/**
 * A versioned key-value store of one (operator, state partition); see the memory provider's StateStore for the contract
 * each method keeps. Not safe for concurrent use: one task owns it at a time.
 */
export interface VersionedStateStore<K = unknown, V = unknown> {
  /** The checkpoint directory holding this store's delta and snapshot files. */
  readonly dir: string;
  /** The committed (or loaded) version; -1 while nothing is loaded. */
  readonly version: number;
  /** Number of keys, uncommitted changes included. */
  readonly size: number;
  get(key: K): V | undefined;
  has(key: K): boolean;
  getTimeout(key: K): number;
  put(key: K, value: V, timeoutMs?: number): void;
  remove(key: K): void;
  entries(): IterableIterator<[K, V]>;
  keys(): IterableIterator<K>;
  sortedEntries(): Array<[K, V]>;
  /**
   * Keys whose timeout is set and at or before `timestampMs`, uncommitted changes included, ordered by timeout
   * and then by the canonical key encoding; only the first `limit` of them when more are due.
   */
  keysWithTimeoutAtOrBefore(timestampMs: number, limit?: number): K[];
  earliestTimeout(): number;
  /** Makes the store hold exactly version `version` with no uncommitted changes. */
  prepare(version: number): Promise<void>;
  commit(version: number): Promise<StateCommitMetrics>;
  abort(): void;
  purge(minVersionToKeep: number): Promise<string[]>;
  memoryUsedBytes(): number;
  /** Releases what the store holds outside the JS heap (the disk store's database); the store is unusable after. */
  close(): Promise<void>;
}
