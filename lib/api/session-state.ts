import type { ClaimOptions } from '../checkpoint/checkpoint-claim.js';
import { SluiceError } from '../errors.js';
import type { SharedLanes } from '../exec/worker-pool.js';
import type { AppQuerySetup } from '../exec/worker-protocol.js';
import { MemoryTables } from '../sinks/memory-tables.js';
import type { Clock } from '../util/clock.js';
import { SystemClock } from '../util/clock.js';
import { StreamingQueryManager } from './streaming-query.js';

/** Options of `Session.local`. */
export interface SessionOptions {
  /**
   * Threads that run tasks; 0 runs everything in the calling thread, 1 in one worker thread, N >= 2 in the
   * calling thread and N - 1 worker threads. Default 0.
   */
  threads?: number;
  /** State partitions of every stateful operator (fixed for a checkpoint). Default 4. */
  statePartitions?: number;
  /** Take a state snapshot every this many batches (deltas in between). Default 10. */
  snapshotInterval?: number;
  /** Committed batches kept in the checkpoint. Default 100. */
  retainBatches?: number;
  /** Processing-time clock; tests pass a ManualClock. */
  clock?: Clock;
  /**
   * How each query's checkpoint claim beats and when another process may take it over. A member of a
   * consumer group sets it to the group's session timeout, so a task moves as soon as its old owner is gone.
   */
  checkpointClaim?: ClaimOptions;
  /**
   * Worker threads this session's queries share with other sessions' (a consumer group member's tasks, one
   * session each), instead of each query taking threads of its own. The owner releases them.
   */
  lanes?: SharedLanes;
}

/** @internal Set by the app runner: lets worker threads rebuild this session's queries from the app module. */
export type AppBinding = Omit<AppQuerySetup, 'output'>;

/**
 * @internal What the datasets, readers and writers of a session share: its settings, running queries,
 * memory tables and operator ids. They hold this rather than Session, whose readStream builds them, so
 * the api's files do not import each other in a circle.
 */
export class SessionState {
  readonly threads: number;
  readonly statePartitions: number;
  readonly snapshotInterval: number;
  readonly retainBatches: number;
  readonly clock: Clock;
  readonly checkpointClaim: ClaimOptions;
  readonly lanes: SharedLanes | undefined;
  /** Active queries and listeners (Spark's StreamingQueryManager). */
  readonly streams = new StreamingQueryManager();
  /** @internal */
  app: AppBinding | null = null;
  /** @internal The rows of this session's memory sinks. */
  readonly memoryTables = new MemoryTables();
  private operatorIds = 0;

  protected constructor(opts: SessionOptions) {
    const threads = opts.threads ?? 0;
    if (!Number.isInteger(threads) || threads < 0 || threads > 64) {
      throw new SluiceError(
        'BAD_OPTION',
        `threads must be an integer from 0 to 64, got ${threads}`,
        'use 0 to run in-process, or the number of cores',
      );
    }
    const parts = opts.statePartitions ?? 4;
    if (!Number.isInteger(parts) || parts < 1 || parts > 4096) {
      throw new SluiceError(
        'BAD_OPTION',
        `statePartitions must be an integer from 1 to 4096, got ${parts}`,
        'the default is 4',
      );
    }
    this.threads = threads;
    this.statePartitions = parts;
    this.snapshotInterval = opts.snapshotInterval ?? 10;
    this.retainBatches = opts.retainBatches ?? 100;
    this.clock = opts.clock ?? new SystemClock();
    this.checkpointClaim = opts.checkpointClaim ?? {};
    this.lanes = opts.lanes;
  }

  /** @internal Next operator id: the build order, identical in every thread that builds the same query. */
  nextOperatorId(): number {
    return ++this.operatorIds;
  }
}
