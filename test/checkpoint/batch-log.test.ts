import * as fs from 'node:fs';
import * as path from 'node:path';
import { expect } from 'chai';
import { BatchLog } from '../../lib/checkpoint/batch-log.js';
import { type CommitEntry, CommitLog } from '../../lib/checkpoint/commit-log.js';
import { type OffsetEntry, OffsetLog } from '../../lib/checkpoint/offset-log.js';
import { sluiceErrorOf, useTmpDir } from './helpers.js';

function offsets(batchId: number, end = batchId * 10): OffsetEntry {
  return {
    batchId,
    sources: [{ start: batchId === 0 ? null : { p0: end - 10 }, end: { p0: end } }],
    batchTimestampMs: 1_700_000_000_000 + batchId * 1000,
    batchWatermarkMs: 0,
    conf: { numStatePartitions: 4, 'source.0': 'memory', strict: true },
  };
}

describe('checkpoint/batch-log', () => {
  const tmp = useTmpDir();

  it('adds, gets and lists entries as numbered files', async () => {
    const log = new BatchLog<{ n: number }>(path.join(tmp(), 'log'));
    expect(await log.batchIds()).to.deep.equal([]);
    expect(await log.latest()).to.equal(null);
    expect(await log.get(0)).to.equal(null);
    for (const id of [0, 1, 2, 10]) expect(await log.add(id, { n: id * 2 })).to.equal(true);
    expect(fs.readdirSync(log.dir).sort()).to.deep.equal(['0', '1', '10', '2']);
    expect(await log.batchIds()).to.deep.equal([0, 1, 2, 10]);
    expect(await log.get(2)).to.deep.equal({ n: 4 });
    expect(await log.get(3)).to.equal(null);
    expect(await log.latest()).to.deep.equal({ batchId: 10, entry: { n: 20 } });
  });

  it('accepts the same entry again but refuses a different one unless told to overwrite', async () => {
    const log = new BatchLog<Record<string, number>>(path.join(tmp(), 'log'));
    await log.add(5, { a: 1, b: 2 });
    expect(await log.add(5, { b: 2, a: 1 })).to.equal(false);
    const err = await sluiceErrorOf(() => log.add(5, { a: 1, b: 3 }));
    expect(err.code).to.equal('CHECKPOINT_CONFLICT');
    expect(err.message).to.include(log.pathOf(5));
    expect(await log.get(5)).to.deep.equal({ a: 1, b: 2 });
    expect(await log.add(5, { a: 1, b: 3 }, { overwrite: true })).to.equal(true);
    expect(await log.get(5)).to.deep.equal({ a: 1, b: 3 });
  });

  it('a writer that found no entry and wrote after another writer created it is refused, not replacing it', async () => {
    const dir = path.join(tmp(), 'offsets');
    const owner = new OffsetLog(dir);
    const paused = new OffsetLog(dir);
    // The paused writer read the log before the owner wrote batch 5, and writes after it.
    const get = paused.get.bind(paused);
    let reads = 0;
    paused.get = async (id) => (reads++ === 0 ? null : get(id));
    expect(await owner.add(5, offsets(5, 50))).to.equal(true);
    const err = await sluiceErrorOf(() => paused.add(5, offsets(5, 70)));
    expect(err.code).to.equal('CHECKPOINT_CONFLICT');
    expect(await owner.get(5)).to.deep.equal(offsets(5, 50));
    reads = 0;
    expect(await paused.add(5, offsets(5, 50)), 'the same plan is no conflict').to.equal(false);
    expect(fs.readdirSync(dir)).to.deep.equal(['5']);
  });

  it('an entry prepared ahead appears only once added, and is checked against an existing one as add does', async () => {
    const dir = path.join(tmp(), 'offsets');
    const log = new OffsetLog(dir);
    const prepared = await log.prepare(3, offsets(3, 30));
    expect(await log.batchIds(), 'nothing under the entry name before it is added').to.deep.equal([]);
    expect(await log.latest()).to.equal(null);
    expect(await prepared.add()).to.equal(true);
    expect(await log.get(3)).to.deep.equal(offsets(3, 30));
    expect(fs.readdirSync(dir), 'the bytes written ahead are not left behind').to.deep.equal(['3']);

    const same = await log.prepare(3, offsets(3, 30));
    expect(await same.add(), 'the same entry again is no conflict').to.equal(false);
    const other = await log.prepare(3, offsets(3, 70));
    const err = await sluiceErrorOf(() => other.add());
    expect(err.code).to.equal('CHECKPOINT_CONFLICT');
    expect(await log.get(3)).to.deep.equal(offsets(3, 30));

    const dropped = await log.prepare(4, offsets(4, 40));
    await dropped.discard();
    expect(fs.readdirSync(dir), 'a discarded entry leaves nothing').to.deep.equal(['3']);
    const invalid = await log.prepare(5, offsets(6)).then(
      () => null,
      (e: unknown) => e,
    );
    expect(String(invalid)).to.match(/refusing to write an invalid entry/);
    expect(fs.readdirSync(dir), 'an invalid entry is not written ahead').to.deep.equal(['3']);
  });

  it('ignores temp files a crash left behind and foreign names', async () => {
    const log = new BatchLog<number>(path.join(tmp(), 'log'));
    await log.add(0, 0);
    await log.add(1, 1);
    fs.writeFileSync(path.join(log.dir, '.2.4242-0123456789ab.tmp'), 'v1\n{"half');
    fs.writeFileSync(path.join(log.dir, 'notes.txt'), 'hi');
    fs.writeFileSync(path.join(log.dir, '007'), 'v1\n7\n');
    expect(await log.batchIds()).to.deep.equal([0, 1]);
    expect(await log.latest()).to.deep.equal({ batchId: 1, entry: 1 });
  });

  it('fails on a corrupt latest entry instead of falling back to an older one', async () => {
    const log = new BatchLog<number>(path.join(tmp(), 'log'));
    await log.add(0, 0);
    fs.writeFileSync(log.pathOf(1), 'v1\n{"torn');
    const err = await sluiceErrorOf(() => log.latest());
    expect(err.code).to.equal('CHECKPOINT_CORRUPT');
    expect(err.message).to.include(log.pathOf(1));
  });

  it('purges entries below a batch id', async () => {
    const log = new BatchLog<number>(path.join(tmp(), 'log'));
    for (let id = 0; id < 6; id++) await log.add(id, id);
    expect(await log.purgeBefore(4)).to.deep.equal([0, 1, 2, 3]);
    expect(await log.batchIds()).to.deep.equal([4, 5]);
    expect(await log.purgeBefore(4)).to.deep.equal([]);
  });

  it('rejects invalid batch ids', () => {
    const log = new BatchLog<number>(path.join(tmp(), 'log'));
    expect(() => log.pathOf(-1)).to.throw(RangeError);
    expect(() => log.pathOf(1.5)).to.throw(RangeError);
  });
});

describe('checkpoint/offset-log and commit-log', () => {
  const tmp = useTmpDir();

  it('round-trip valid entries', async () => {
    const o = new OffsetLog(path.join(tmp(), 'offsets'));
    await o.add(0, offsets(0));
    await o.add(1, offsets(1));
    expect(await o.get(1)).to.deep.equal(offsets(1));
    const c = new CommitLog(path.join(tmp(), 'commits'));
    const commit: CommitEntry = {
      batchId: 0,
      nextWatermarkMs: 5000,
      committedAtMs: 1_700_000_000_500,
      stateVersions: { agg: 1 },
    };
    await c.add(0, commit);
    expect(await c.latest()).to.deep.equal({ batchId: 0, entry: commit });
  });

  const badOffsets: [string, unknown, RegExp][] = [
    ['an array', [], /not a JSON object/],
    ['a batch id of another file', { ...offsets(3), batchId: 4 }, /"batchId" is 4, but the file is for batch 3/],
    ['sources that are not an array', { ...offsets(3), sources: {} }, /"sources" must be an array/],
    ['a source without end', { ...offsets(3), sources: [{ start: null }] }, /"sources\[0\]" must be an object/],
    ['a fractional timestamp', { ...offsets(3), batchTimestampMs: 1.5 }, /"batchTimestampMs" must be an integer/],
    ['a negative watermark', { ...offsets(3), batchWatermarkMs: -1 }, /"batchWatermarkMs" must be at least 0/],
    ['a nested conf value', { ...offsets(3), conf: { a: { b: 1 } } }, /"conf.a" must be a string or number or boolean/],
  ];
  for (const [what, body, reason] of badOffsets) {
    it(`reject an offsets file with ${what}, naming the file and the field`, async () => {
      const o = new OffsetLog(path.join(tmp(), 'offsets'));
      fs.mkdirSync(o.dir, { recursive: true });
      fs.writeFileSync(o.pathOf(3), `v1\n${JSON.stringify(body)}\n`);
      const err = await sluiceErrorOf(() => o.get(3));
      expect(err.code).to.equal('CHECKPOINT_CORRUPT');
      expect(err.message).to.include(o.pathOf(3)).and.match(reason);
    });
  }

  it('reject a commit with a bad state version', async () => {
    const c = new CommitLog(path.join(tmp(), 'commits'));
    fs.mkdirSync(c.dir, { recursive: true });
    fs.writeFileSync(
      c.pathOf(2),
      'v1\n{"batchId":2,"nextWatermarkMs":0,"committedAtMs":1,"stateVersions":{"agg":"x"}}\n',
    );
    const err = await sluiceErrorOf(() => c.get(2));
    expect(err.message).to.include(c.pathOf(2)).and.include('stateVersions').and.include('"agg"');
  });

  it('refuse to write an invalid entry', async () => {
    const o = new OffsetLog(path.join(tmp(), 'offsets'));
    let failed: unknown;
    try {
      await o.add(1, offsets(2));
    } catch (err) {
      failed = err;
    }
    expect(String(failed)).to.match(/refusing to write an invalid entry.*"batchId" is 2/);
    expect(await o.batchIds()).to.deep.equal([]);
  });
});
