/**
 * Where the lanes of a run spent their CPU, batch by batch (lib/exec/lane-profile.ts), summed over a run: a
 * benchmark starts {@link LaneCpuCollector} before the query and reads {@link LaneCpuCollector.figures} after it.
 */
import { type BatchLaneCpu, criticalPathMs, profileLanes } from '../lib/exec/lane-profile.js';

/** A run's lane CPU in seconds, summed over its batches. */
export interface LaneCpu {
  /** The least CPU time the run's batches could take on idle cores: per batch, the driver's work plus each stage's busiest lane. */
  criticalPath: number;
  /**
   * The critical path had every fragment stage's CPU been spread evenly over the lanes (stateful stages as they
   * ran: their partitions belong to lanes): the bound a dynamic fragment queue approaches on idle cores, where a
   * lane takes the next fragment as soon as it is free. On a loaded machine which lane took more fragments says
   * how the scheduler shared the cores, so the critical path as run varies from run to run.
   */
  balancedPath: number;
  /** CPU per fragment task on each lane, milliseconds. */
  msPerFragment: number[];
  /** The driver thread's CPU over the batches (its lane-0 tasks included). */
  driver: number;
  /** Each lane's CPU: lane 0 the driver's thread when it is a lane; a worker lane's thread since it started. */
  lanes: number[];
  /** CPU of each lane's tasks in fragment stages (read, stateless operators, exchange) and in stateful stages. */
  fragments: number[];
  stateful: number[];
  /** The driver thread's CPU per phase it times (offsets, offset log, the batch, the sink, the commit). */
  phases: Record<string, number>;
  /** Over every stage, how much less CPU each lane had than the stage's busiest lane: what the lanes wait at stage ends. */
  laneWait: number;
  /** Wall seconds each lane was not running a task while a stage was on: waiting for work, or (lane 0) doing the driver's. */
  laneIdle: number[];
}

const add = (xs: number[], i: number, ms: number): void => {
  xs[i] = (xs[i] ?? 0) + ms / 1000;
};

/** Collects the lane CPU of every batch this process runs until {@link figures} is read. */
export class LaneCpuCollector {
  private readonly batches: BatchLaneCpu[] = [];
  private readonly stop = profileLanes((b) => this.batches.push(b));

  /** @param before each worker lane's thread CPU seconds before this run (runs before it on the same lanes), by lane number */
  constructor(private readonly before: readonly number[] = []) {}

  figures(): LaneCpu {
    this.stop();
    const f: LaneCpu = {
      criticalPath: 0,
      balancedPath: 0,
      msPerFragment: [],
      driver: 0,
      lanes: [],
      fragments: [],
      stateful: [],
      phases: {},
      laneWait: 0,
      laneIdle: [],
    };
    const fragmentTasks: number[] = [];
    const workerTotals: number[] = [];
    let driverLane = true;
    for (const b of this.batches) {
      driverLane = b.driverLane;
      const path = criticalPathMs(b);
      f.criticalPath += path / 1000;
      f.balancedPath += path / 1000;
      f.driver += b.driverMs / 1000;
      for (const [k, v] of Object.entries(b.phaseMs)) f.phases[k] = (f.phases[k] ?? 0) + v / 1000;
      for (const s of b.stages) {
        const laneMs = Array.from(s.laneMs, (x) => x ?? 0);
        const busiest = Math.max(0, ...laneMs);
        if (s.kind === 'fragments' && laneMs.length > 0) {
          f.balancedPath -= (busiest - laneMs.reduce((a, x) => a + x, 0) / b.lanes) / 1000;
          s.laneTasks.forEach((n, lane) => {
            fragmentTasks[lane] = (fragmentTasks[lane] ?? 0) + (n ?? 0);
          });
        }
        for (let lane = 0; lane < b.lanes; lane++) add(f.laneIdle, lane, s.wallMs - (s.laneWallMs[lane] ?? 0));
        laneMs.forEach((ms, lane) => {
          add(s.kind === 'fragments' ? f.fragments : f.stateful, lane, ms);
          f.laneWait += (busiest - ms) / 1000;
        });
      }
      b.laneTotalMs.forEach((ms, lane) => {
        workerTotals[lane] = Math.max(workerTotals[lane] ?? 0, ms / 1000);
      });
    }
    f.msPerFragment = Array.from(fragmentTasks, (n, lane) => (n ? ((f.fragments[lane] ?? 0) * 1000) / n : 0));
    f.lanes = Array.from({ length: Math.max(1, workerTotals.length) }, (_, lane) =>
      lane === 0 && driverLane ? f.driver : (workerTotals[lane] ?? 0) - (this.before[lane] ?? 0),
    );
    return f;
  }
}

/** One line: the critical path, each lane's CPU and its split into fragments and stateful tasks, the wait at stage ends. */
export function formatLaneCpu(f: LaneCpu): string {
  const s = (x: number | undefined): string => (x ?? 0).toFixed(2);
  const lanes = f.lanes.map(
    (x, i) =>
      `lane ${i} ${s(x)} (fragments ${s(f.fragments[i])}, ${(f.msPerFragment[i] ?? 0).toFixed(1)} ms each; stateful ${s(f.stateful[i])}; idle in stages ${s(f.laneIdle[i])} s wall)`,
  );
  const phases = Object.entries(f.phases)
    .filter(([, v]) => v > 0)
    .map(([k, v]) => `${k} ${s(v)}`)
    .join(', ');
  return `critical path ${s(f.criticalPath)} s CPU (fragments balanced ${s(f.balancedPath)}); ${lanes.join('; ')}; lanes waiting at stage ends ${s(f.laneWait)}; driver ${s(f.driver)} (${phases})`;
}
