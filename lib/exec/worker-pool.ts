/**
 * The process's pool of worker threads. A query's PoolExecutor takes its lanes (threads) from here and
 * gives them back when it closes, so the next query of the process starts on warm threads.
 */
import { Piscina } from 'piscina';

/** How long an idle lane waits for the next query before its thread ends. */
const IDLE_LANE_MS = 30_000;

/**
 * A worker thread of the pool: a single-thread piscina pool, so every task sent to it runs in that one
 * thread, where the state partitions assigned to it stay in memory between batches.
 */
export type Lane = Piscina;

/**
 * Tasks a lane's thread is sent before it finished the one it runs: piscina would otherwise send a queued task only
 * when the driver's event loop sees the previous one finish, so a driver busy with its own work leaves the thread
 * idle. The worker runs its tasks one after the other all the same (see pool-worker.ts).
 */
export const TASKS_SENT_AHEAD = 2;

const idle: { lane: Lane; expiry: NodeJS.Timeout }[] = [];

/**
 * Lanes for one query that run `workerFile` (a path), taken from the idle lanes of earlier queries in this
 * process that run the same file first (most recently used first), new ones otherwise. A lane that already
 * ran a query has its modules loaded and its JIT warm, which costs a new thread about a second of CPU
 * (measured on the mapGroupsWithState benchmark); it keeps no data of the query it ran (the worker drops a
 * query's plan and state when the query closes).
 */
export function acquireLanes(count: number, workerFile: string): Lane[] {
  const lanes: Lane[] = [];
  while (lanes.length < count) {
    const at = idle.findLastIndex((e) => e.lane.options.filename === workerFile);
    if (at >= 0) {
      const [reused] = idle.splice(at, 1);
      clearTimeout(reused.expiry);
      lanes.push(reused.lane);
    } else {
      lanes.push(
        new Piscina({
          filename: workerFile,
          minThreads: 1,
          maxThreads: 1,
          idleTimeout: Infinity,
          concurrentTasksPerWorker: TASKS_SENT_AHEAD,
        }),
      );
    }
  }
  return lanes;
}

/**
 * Gives lanes back after their query closed cleanly. An idle lane's thread is unreferenced (piscina
 * unrefs idle workers), so it never keeps the process alive, and it ends after IDLE_LANE_MS unused.
 */
export function releaseLanes(lanes: Lane[]): void {
  for (const lane of lanes) {
    const entry = {
      lane,
      expiry: setTimeout(() => {
        const at = idle.indexOf(entry);
        if (at >= 0) idle.splice(at, 1);
        void lane.destroy();
      }, IDLE_LANE_MS).unref(),
    };
    idle.push(entry);
  }
}

/** Ends the threads of lanes that cannot be reused (their query failed to close). */
export async function destroyLanes(lanes: Lane[]): Promise<void> {
  await Promise.all(lanes.map((l) => l.destroy()));
}

/**
 * Worker lanes that several queries of the process run on together, for as long as their owner keeps them (a
 * group member's tasks, each a few queries): every query sends its tasks to these threads instead of taking
 * lanes of its own, so the process runs the threads it was given however many tasks it holds. A worker keeps
 * each query's plan and state apart (by query id) and runs the tasks it is sent one at a time.
 */
export class SharedLanes {
  private lanes: Lane[] = [];
  private workerFile: string | null = null;

  /** `count` lanes running `workerFile`, started on first use and the same threads for every query after. */
  take(count: number, workerFile: string): Lane[] {
    if (this.workerFile !== null && this.workerFile !== workerFile)
      throw new Error(`shared lanes run ${this.workerFile}, not ${workerFile}`);
    this.workerFile = workerFile;
    if (this.lanes.length < count) this.lanes.push(...acquireLanes(count - this.lanes.length, workerFile));
    return this.lanes.slice(0, count);
  }

  /** Gives the lanes back to the process's idle lanes, once no query runs on them any more. */
  release(): void {
    releaseLanes(this.lanes.splice(0));
  }
}

/** Idle lanes waiting for a query (for tests). */
export function idleLaneCount(): number {
  return idle.length;
}
