import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { expect } from 'chai';
import { col } from '../../lib/api/column.js';
import { count, sum } from '../../lib/api/functions.js';
import { Session } from '../../lib/api/session.js';
import { type BatchLaneCpu, criticalPathMs, profileLanes } from '../../lib/exec/lane-profile.js';
import { MemoryStream } from '../../lib/testing/index.js';
import { threadCpuMs } from '../../lib/util/thread-cpu.js';

type Sale = { shop: string; amount: number };
const SCHEMA = { shop: 'string', amount: 'double' } as const;

/** Runs a keyed sum over `chunks` chunks of rows in one batch at `threads`; returns its output and lane CPU. */
async function run(
  threads: number,
  chunks: number,
  dir: string,
): Promise<{ rows: Record<string, unknown>[]; batches: BatchLaneCpu[] }> {
  const batches: BatchLaneCpu[] = [];
  const stop = profileLanes((b) => batches.push(b));
  try {
    const session = Session.local({ threads, statePartitions: 4 });
    const input = new MemoryStream<Sale>(session, SCHEMA);
    const q = await input
      .toDS()
      .where(col('amount').gt(0))
      .groupBy('shop')
      .agg(count('*').alias('n'), sum('amount').alias('total'))
      .writeStream.format('memory')
      .queryName('perShop')
      .outputMode('complete')
      .option('checkpointLocation', dir)
      .start();
    for (let c = 0; c < chunks; c++)
      input.addData(Array.from({ length: 5000 }, (_, i) => ({ shop: `s${(i * 7 + c) % 40}`, amount: (i % 9) - 2 })));
    await q.processAllAvailable();
    const rows = [...session.table('perShop')].sort((a, b) => String(a.shop).localeCompare(String(b.shop)));
    await session.stop();
    return { rows, batches };
  } finally {
    stop();
  }
}

describe('engine: lane CPU profile of a batch', () => {
  let dirs: string[] = [];
  const dir = (): string => {
    const d = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-lane-profile-'));
    dirs.push(d);
    return d;
  };
  afterEach(() => {
    for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
    dirs = [];
  });

  it("counts the calling thread's CPU, not another thread's", async () => {
    const cpu0 = threadCpuMs();
    const process0 = process.cpuUsage();
    // A fixed amount of work in another thread while this one waits for it.
    await new Promise((resolve, reject) => {
      const w = new Worker(
        'let x = 0; for (let i = 0; i < 3e8; i++) x += i % 7; require("node:worker_threads").parentPort.postMessage(x);',
        { eval: true },
      );
      w.once('message', resolve);
      w.once('error', reject);
    });
    const mine = threadCpuMs() - cpu0;
    const u = process.cpuUsage(process0);
    const all = (u.user + u.system) / 1000;
    expect(all, 'process CPU of the worker loop, ms').to.be.greaterThan(100);
    expect(mine, "this thread's CPU while it waited, ms").to.be.lessThan(all / 2);
  });

  it('reports each stage of a threads-2 batch per lane, the driver as lane 0, with the same output as threads 0', async () => {
    const inProcess = await run(0, 6, dir());
    const pooled = await run(2, 6, dir());
    expect(pooled.rows).to.deep.equal(inProcess.rows);
    expect(inProcess.rows).to.have.length(40);

    const [only] = inProcess.batches.filter((b) => b.stages.length > 0);
    expect(only.driverLane).to.equal(true);
    expect(only.stages.map((s) => s.kind)).to.deep.equal(['fragments', 'stateful']);
    // In-process, every stage runs on the driver's thread: the critical path is the driver's CPU.
    expect(only.stages.every((s) => s.laneMs.length === 1)).to.equal(true);
    expect(criticalPathMs(only)).to.be.closeTo(only.driverMs, 1e-6);

    const [batch] = pooled.batches.filter((b) => b.stages.length > 0);
    expect(batch.driverLane).to.equal(true);
    expect(batch.stages.map((s) => s.kind)).to.deep.equal(['fragments', 'stateful']);
    const stateful = batch.stages[1];
    // State partitions 0 and 2 run on the driver's lane, 1 and 3 on worker lane 1.
    // Each lane ran its two; their CPU may read 0 ms, as a thread's run time is only brought up to date at the
    // scheduler's tick and these tasks are shorter than one (the state commit runs beside the sink, not in them).
    expect(stateful.laneMs).to.have.length(2);
    // A lane's tasks take place within the stage; the rest of the stage's wall time it was not running one.
    expect(stateful.laneTasks).to.deep.equal([2, 2]);
    expect(stateful.wallMs).to.be.at.least(stateful.laneWallMs[1]);
    // The worker's thread CPU since it started covers at least its tasks.
    const lane1Tasks = batch.stages.reduce((a, s) => a + (s.laneMs[1] ?? 0), 0);
    expect(batch.laneTotalMs[1]).to.be.at.least(lane1Tasks);
    // The driver's work outside its lane-0 tasks plus each stage's busiest lane.
    const own = batch.stages.reduce((a, s) => a + (s.laneMs[0] ?? 0), 0);
    const busiest = batch.stages.reduce((a, s) => a + Math.max(...Array.from(s.laneMs, (x) => x ?? 0)), 0);
    expect(criticalPathMs(batch)).to.be.closeTo(batch.driverMs - own + busiest, 1e-6);
    expect(batch.driverMs).to.be.at.least(own);
  });
});
