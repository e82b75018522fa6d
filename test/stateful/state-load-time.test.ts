import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { expect } from 'chai';
import type { GroupState } from '../../lib/api/group-state.js';
import { Session } from '../../lib/api/session.js';
import type { StreamingQuery } from '../../lib/api/streaming-query.js';
import { StateStore } from '../../lib/state/state-store.js';
import { MemoryStream } from '../../lib/testing/index.js';

type Ev = { user: string; amount: number };

describe('progress: stateLoadTimeMs', () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-'));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('is 0 while state stays in memory and, after a restart, times the load made at start that the first batch reuses', async () => {
    const session = Session.local({ statePartitions: 2 });
    const input = new MemoryStream<Ev>(session, { user: 'string', amount: 'double' });
    const ds = input
      .toDS()
      .groupByKey((e) => e.user)
      .mapGroupsWithState((user: string, evs: Ev[], state: GroupState<number>) => {
        const sum = (state.getOption() ?? 0) + evs.reduce((a, e) => a + e.amount, 0);
        state.update(sum);
        return { user, sum };
      });
    const start = async (name: string) =>
      ds.writeStream.format('memory').queryName(name).outputMode('update').option('checkpointLocation', dir).start();
    const q1 = await start('first');
    input.addData(Array.from({ length: 5000 }, (_, i) => ({ user: `u${i}`, amount: 1 })));
    await q1.processAllAvailable();
    input.addData([{ user: 'u1', amount: 1 }]);
    await q1.processAllAvailable();
    await q1.stop();
    expect(q1.recentProgress.map((p) => p.stateOperators[0].stateLoadTimeMs).slice(1)).to.deep.equal([0]);

    input.addData([{ user: 'u2', amount: 1 }]);
    // The restart loads each partition's state once, while it starts; its first batch finds it in memory.
    const loads: number[] = [];
    const load = StateStore.load;
    StateStore.load = (d, version, opts) => {
      loads.push(version);
      return load(d, version, opts);
    };
    let q2: StreamingQuery;
    try {
      q2 = await start('second');
      expect(loads).to.deep.equal([2, 2]);
      await q2.processAllAvailable();
      expect(loads).to.deep.equal([2, 2]);
    } finally {
      StateStore.load = load;
    }
    input.addData([{ user: 'u3', amount: 1 }]);
    await q2.processAllAvailable();
    await q2.stop();
    const [restart, next] = q2.recentProgress.map((p) => p.stateOperators[0]);
    expect(restart.numRowsTotal).to.equal(5000);
    expect(restart.stateLoadTimeMs).to.be.greaterThan(0);
    expect(next.stateLoadTimeMs).to.equal(0);
  });
});
