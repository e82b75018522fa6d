import * as fs from 'node:fs';
import * as path from 'node:path';
import { expect } from 'chai';
import { Checkpoint } from '../../lib/checkpoint/checkpoint.js';
import type { CommitEntry } from '../../lib/checkpoint/commit-log.js';
import { metadataPath, openMetadata } from '../../lib/checkpoint/metadata.js';
import type { OffsetEntry } from '../../lib/checkpoint/offset-log.js';
import { sluiceErrorOf, useTmpDir } from './helpers.js';

const CONF = { numStatePartitions: 4, 'source.0': 'file:data/in', sink: 'console' };

function plan(batchId: number): OffsetEntry {
  return {
    batchId,
    sources: [{ start: batchId === 0 ? null : batchId * 10, end: (batchId + 1) * 10 }],
    batchTimestampMs: 1000 * (batchId + 1),
    batchWatermarkMs: 500 * batchId,
    conf: {},
  };
}

function commit(batchId: number): CommitEntry {
  return { batchId, nextWatermarkMs: 500 * (batchId + 1), committedAtMs: 1000 * (batchId + 1) + 10 };
}

describe('checkpoint/metadata', () => {
  const tmp = useTmpDir();

  it('creates the query id once and keeps it across opens', async () => {
    const first = await openMetadata(tmp(), CONF, { now: () => 42 });
    expect(first.id).to.match(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    expect(first).to.deep.include({ formatVersion: 1, createdAtMs: 42, conf: CONF });
    expect(fs.readFileSync(metadataPath(tmp()), 'utf8')).to.match(/^v1\n\{/);
    const again = await openMetadata(tmp(), { ...CONF }, { now: () => 99 });
    expect(again).to.deep.equal(first);
  });

  it('names every changed, added or removed fixed setting', async () => {
    await openMetadata(tmp(), CONF);
    const { sink: _removed, ...rest } = CONF;
    const err = await sluiceErrorOf(() => openMetadata(tmp(), { ...rest, numStatePartitions: 8, extra: true }));
    expect(err.code).to.equal('CHECKPOINT_CONF_CHANGED');
    expect(err.message)
      .to.include(tmp())
      .and.include('extra was (not set) and is now true')
      .and.include('numStatePartitions was 4 and is now 8')
      .and.include('sink was "console" and is now (not set)');
    expect(err.hint)
      .to.match(/old values/)
      .and.match(/new checkpoint directory/);
  });

  it('treats a number and the same digits as a string as different', async () => {
    await openMetadata(tmp(), { numStatePartitions: 4 });
    const err = await sluiceErrorOf(() => openMetadata(tmp(), { numStatePartitions: '4' }));
    expect(err.message).to.include('numStatePartitions was 4 and is now "4"');
  });

  it('reports a corrupt metadata file instead of replacing it', async () => {
    fs.writeFileSync(metadataPath(tmp()), 'v1\n{"id":"","createdAtMs":1,"conf":{}}\n');
    const err = await sluiceErrorOf(() => openMetadata(tmp(), CONF));
    expect(err.code).to.equal('CHECKPOINT_CORRUPT');
    expect(err.message).to.include(metadataPath(tmp())).and.include('"id"');
  });
});

describe('checkpoint/checkpoint', () => {
  const tmp = useTmpDir();
  const dir = () => path.join(tmp(), 'ckpt');

  it('lays out the directory as docs/architecture.md says', async () => {
    const cp = await Checkpoint.open(dir(), CONF);
    await cp.offsets.add(0, plan(0));
    await cp.commits.add(0, commit(0));
    expect(fs.readdirSync(dir()).sort()).to.deep.equal(['commits', 'metadata', 'offsets', 'owner']);
    expect(cp.offsets.pathOf(0)).to.equal(path.join(dir(), 'offsets', '0'));
    expect(cp.commits.pathOf(0)).to.equal(path.join(dir(), 'commits', '0'));
    expect(cp.stateDir('agg1', 3)).to.equal(path.join(dir(), 'state', 'agg1', '3'));
    expect(cp.stateDir(0, 0)).to.equal(path.join(dir(), 'state', '0', '0'));
    expect(cp.sourceDir(1)).to.equal(path.join(dir(), 'sources', '1'));
    expect(cp.sinkDir()).to.equal(path.join(dir(), 'sinks'));
    expect(() => cp.stateDir('../x', 0)).to.throw(RangeError);
    expect(() => cp.sourceDir(-1)).to.throw(RangeError);
  });

  it('keeps its query id across restarts and refuses changed settings', async () => {
    const first = await Checkpoint.open(dir(), CONF);
    await first.close();
    const second = await Checkpoint.open(dir(), CONF);
    expect(second.queryId).to.equal(first.queryId);
    await second.close();
    const err = await sluiceErrorOf(() => Checkpoint.open(dir(), { ...CONF, numStatePartitions: 2 }));
    expect(err.code).to.equal('CHECKPOINT_CONF_CHANGED');
  });

  it('refuses a checkpoint whose metadata was lost after batches were logged', async () => {
    const cp = await Checkpoint.open(dir(), CONF);
    await cp.offsets.add(0, plan(0));
    await cp.close();
    fs.rmSync(metadataPath(dir()));
    const err = await sluiceErrorOf(() => Checkpoint.open(dir(), CONF));
    expect(err.code).to.equal('CHECKPOINT_CORRUPT');
    expect(err.message).to.include(metadataPath(dir()));
    expect(fs.existsSync(metadataPath(dir()))).to.equal(false);
  });

  it('says clearly when the location is a file', async () => {
    fs.writeFileSync(dir(), 'x');
    const err = await sluiceErrorOf(() => Checkpoint.open(dir(), CONF));
    expect(err.code).to.equal('CHECKPOINT_LOCATION');
    expect(err.message).to.include(dir());
  });

  it('removes temp files left by a crash anywhere in the checkpoint when it opens', async () => {
    const cp = await Checkpoint.open(dir(), CONF);
    await cp.offsets.add(0, plan(0));
    const temps = [
      path.join(cp.offsets.dir, '.1.999-000000000000.tmp'),
      path.join(cp.stateDir('agg', 0), '.2.delta.999-000000000000.tmp'),
    ];
    for (const t of temps) {
      fs.mkdirSync(path.dirname(t), { recursive: true });
      fs.writeFileSync(t, 'v1\n{"par');
    }
    await cp.close();
    const reopened = await Checkpoint.open(dir(), CONF);
    expect(temps.filter((t) => fs.existsSync(t))).to.deep.equal([]);
    expect(await reopened.offsets.batchIds()).to.deep.equal([0]);
  });

  describe('nextBatch', () => {
    it('starts at batch 0 on an empty checkpoint', async () => {
      const cp = await Checkpoint.open(dir(), CONF);
      expect(await cp.nextBatch()).to.deep.equal({
        rerun: false,
        batchId: 0,
        previousOffsets: null,
        previousCommit: null,
      });
    });

    it('re-runs batch 0 when it was planned but not committed', async () => {
      const cp = await Checkpoint.open(dir(), CONF);
      await cp.offsets.add(0, plan(0));
      expect(await cp.nextBatch()).to.deep.equal({ rerun: true, batchId: 0, offsets: plan(0), missingCommits: [] });
    });

    it('re-runs batch N with its logged plan when offsets/N exists without commits/N', async () => {
      const cp = await Checkpoint.open(dir(), CONF);
      for (let n = 0; n < 3; n++) await cp.offsets.add(n, plan(n));
      for (let n = 0; n < 2; n++) await cp.commits.add(n, commit(n));
      await cp.close();
      const restarted = await Checkpoint.open(dir(), CONF);
      expect(await restarted.nextBatch()).to.deep.equal({
        rerun: true,
        batchId: 2,
        offsets: plan(2),
        missingCommits: [],
      });
    });

    it('plans batch N+1 after a committed batch N', async () => {
      const cp = await Checkpoint.open(dir(), CONF);
      for (let n = 0; n < 3; n++) {
        await cp.offsets.add(n, plan(n));
        await cp.commits.add(n, commit(n));
      }
      expect(await cp.nextBatch()).to.deep.equal({
        rerun: false,
        batchId: 3,
        previousOffsets: plan(2),
        previousCommit: commit(2),
      });
    });

    it('reports a commit without its plan', async () => {
      const cp = await Checkpoint.open(dir(), CONF);
      await cp.offsets.add(0, plan(0));
      await cp.commits.add(0, commit(0));
      await cp.commits.add(1, commit(1));
      const err = await sluiceErrorOf(() => cp.nextBatch());
      expect(err.code).to.equal('CHECKPOINT_CORRUPT');
      expect(err.message).to.include(dir()).and.include('commits/1').and.include('offsets/0');
    });

    it('re-runs only the latest plan when the newest commits were deleted, as Spark does, naming the missing ones', async () => {
      const cp = await Checkpoint.open(dir(), CONF);
      for (let n = 0; n < 4; n++) {
        await cp.offsets.add(n, plan(n));
        await cp.commits.add(n, commit(n));
      }
      for (const n of [2, 3]) fs.rmSync(cp.commits.pathOf(n));
      expect(await cp.nextBatch()).to.deep.equal({ rerun: true, batchId: 3, offsets: plan(3), missingCommits: [2] });
      fs.rmSync(cp.commits.pathOf(1));
      fs.rmSync(cp.commits.pathOf(0));
      expect(await cp.nextBatch()).to.deep.equal({
        rerun: true,
        batchId: 3,
        offsets: plan(3),
        missingCommits: [0, 1, 2],
      });
    });

    it('names only the missing commits of batches whose plans are still kept', async () => {
      const cp = await Checkpoint.open(dir(), CONF);
      for (let n = 0; n < 6; n++) await cp.offsets.add(n, plan(n));
      await cp.offsets.purgeBefore(3);
      expect(await cp.nextBatch()).to.deep.include({ rerun: true, batchId: 5, missingCommits: [3, 4] });
    });

    it('fails on a torn latest plan instead of skipping it', async () => {
      const cp = await Checkpoint.open(dir(), CONF);
      await cp.offsets.add(0, plan(0));
      await cp.commits.add(0, commit(0));
      fs.writeFileSync(cp.offsets.pathOf(1), 'v1\n{"batchId":1,"sou');
      const err = await sluiceErrorOf(() => cp.nextBatch());
      expect(err.code).to.equal('CHECKPOINT_CORRUPT');
      expect(err.message).to.include(cp.offsets.pathOf(1));
    });
  });

  describe('purge', () => {
    it('keeps the last committed batches and the uncommitted plan', async () => {
      const cp = await Checkpoint.open(dir(), CONF);
      for (let n = 0; n < 10; n++) await cp.offsets.add(n, plan(n));
      for (let n = 0; n < 9; n++) await cp.commits.add(n, commit(n));
      expect(await cp.purge(3)).to.equal(6);
      expect(await cp.offsets.batchIds()).to.deep.equal([6, 7, 8, 9]);
      expect(await cp.commits.batchIds()).to.deep.equal([6, 7, 8]);
      expect(await cp.nextBatch()).to.deep.include({ rerun: true, batchId: 9 });
    });

    it('keeps everything while fewer batches than the retention exist', async () => {
      const cp = await Checkpoint.open(dir(), CONF);
      expect(await cp.purge(5)).to.equal(0);
      for (let n = 0; n < 2; n++) {
        await cp.offsets.add(n, plan(n));
        await cp.commits.add(n, commit(n));
      }
      expect(await cp.purge(5)).to.equal(0);
      expect(await cp.offsets.batchIds()).to.deep.equal([0, 1]);
    });

    it('retains at least one batch', async () => {
      const cp = await Checkpoint.open(dir(), CONF);
      let failed: unknown;
      try {
        await cp.purge(0);
      } catch (err) {
        failed = err;
      }
      expect(failed).to.be.instanceOf(RangeError);
    });
  });
});
