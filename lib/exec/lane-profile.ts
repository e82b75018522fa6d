/**
 * Thread CPU per lane and stage of every batch, for benchmarks that look for where the lanes of a worker pool
 * wait for each other. On a machine shared with other work wall time says little, but a thread's CPU time does:
 * a batch cannot end sooner than its critical path, the driver's own work plus, for every stage that ends when
 * its last lane does, that stage's busiest lane.
 */

/** One stage of a batch whose tasks run on every lane and which ends when the last lane finishes. */
export interface LaneStage {
  kind: 'fragments' | 'stateful';
  /** CPU milliseconds of each lane's tasks in the stage, by lane number. */
  laneMs: number[];
  /** How many tasks each lane ran in the stage. */
  laneTasks: number[];
  /** Wall milliseconds from the stage's start to its end, and of each lane's tasks: the rest a lane was not running one. */
  wallMs: number;
  laneWallMs: number[];
}

/** The thread CPU one batch used, per lane and stage. */
export interface BatchLaneCpu {
  batchId: number;
  /** How many lanes the query runs on. */
  lanes: number;
  /** Whether lane 0 is the driver's own thread (threads 0, and threads 2 or more). */
  driverLane: boolean;
  /** CPU milliseconds of the driver's thread over the whole trigger: its tasks as lane 0, and everything else. */
  driverMs: number;
  /** The driver thread's CPU milliseconds in each phase it times (latestOffset, walCommit, addBatch, sink, commitOffsets). */
  phaseMs: Record<string, number>;
  stages: LaneStage[];
  /** Each worker lane's thread CPU since its thread started, by lane number, as of its last task in the batch. */
  laneTotalMs: number[];
}

let listener: ((b: BatchLaneCpu) => void) | null = null;

/** Calls `onBatch` with the lane CPU of every batch this process runs from now on, until the returned stop. */
export function profileLanes(onBatch: (b: BatchLaneCpu) => void): () => void {
  listener = onBatch;
  return () => {
    if (listener === onBatch) listener = null;
  };
}

/** Hands a batch's lane CPU to the benchmark that asked for it, if one did. */
export function reportLaneCpu(b: () => BatchLaneCpu): void {
  listener?.(b());
}

/**
 * The least CPU time a batch's wall time can have: the driver's work outside its own lane-0 tasks, plus each
 * stage's busiest lane.
 */
export function criticalPathMs(b: BatchLaneCpu): number {
  let path = b.driverMs;
  for (const s of b.stages) {
    if (b.driverLane) path -= s.laneMs[0] ?? 0;
    path += Math.max(0, ...Array.from(s.laneMs, (x) => x ?? 0));
  }
  return path;
}
