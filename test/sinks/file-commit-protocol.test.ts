import * as fs from 'node:fs';
import * as path from 'node:path';
import { expect } from 'chai';
import { SluiceError } from '../../lib/errors.js';
import {
  type CommitStep,
  dataFileName,
  FileCommitProtocol,
  pendingPathOf,
  SINK_LOG_DIR,
} from '../../lib/sinks/file-commit-protocol.js';
import { removeDir, tempDir } from './fixtures.js';
import { listFiles } from './helpers.js';

async function rejection(p: Promise<unknown>): Promise<SluiceError> {
  try {
    await p;
  } catch (err) {
    expect(err).to.be.instanceOf(SluiceError);
    return err as SluiceError;
  }
  throw new Error('expected a rejection');
}

describe('file commit protocol', () => {
  let dir: string;
  beforeEach(() => {
    dir = tempDir();
  });
  afterEach(() => removeDir(dir));

  const open = async (
    queryId = 'q',
    retainManifests?: number,
    onStep?: (s: CommitStep, b: number, f?: string) => void,
  ) => {
    const p = new FileCommitProtocol(dir, 'test', { extension: '.txt', retainManifests, onStep });
    await p.recover(queryId);
    return p;
  };

  it('names files by batch and part, publishes them and lists them in the manifest', async () => {
    const steps: string[] = [];
    const p = await open('q', undefined, (s, b, f) => steps.push(`${s}:${b}${f ? `:${f}` : ''}`));
    const result = await p.writeBatch(7, async (files) => {
      expect(await files.add('', 'a\nb\n', 2)).to.equal('part-00000007-00000.txt');
      expect(await files.add('k=v', ['c\n', Buffer.from('d\n')], 2)).to.equal('k=v/part-00000007-00001.txt');
    });
    expect(result.skipped).to.equal(false);
    expect(listFiles(dir)).to.deep.equal([
      `${SINK_LOG_DIR}/7`,
      'k=v/part-00000007-00001.txt',
      'part-00000007-00000.txt',
    ]);
    expect(fs.readFileSync(path.join(dir, 'k=v/part-00000007-00001.txt'), 'utf8')).to.equal('c\nd\n');
    expect(await p.manifest(7)).to.deep.equal({
      queryId: 'q',
      batchId: 7,
      files: [
        { path: 'part-00000007-00000.txt', rows: 2, bytes: 4 },
        { path: 'k=v/part-00000007-00001.txt', rows: 2, bytes: 4 },
      ],
    });
    expect(steps).to.deep.equal([
      'staged:7:part-00000007-00000.txt',
      'staged:7:k=v/part-00000007-00001.txt',
      'committed:7',
      'published:7:part-00000007-00000.txt',
      'published:7:k=v/part-00000007-00001.txt',
      'done:7',
    ]);
  });

  it('does not produce a committed batch again', async () => {
    const p = await open();
    await p.writeBatch(0, async (files) => {
      await files.add('', 'x\n', 1);
    });
    let produced = false;
    const again = await p.writeBatch(0, async () => {
      produced = true;
    });
    expect(produced).to.equal(false);
    expect(again).to.deep.equal({ skipped: true, files: [{ path: 'part-00000000-00000.txt', rows: 1, bytes: 2 }] });
  });

  it('removes the staged files of a batch whose production fails, and the retry writes it', async () => {
    const p = await open();
    const boom = new Error('disk on fire');
    let caught: unknown;
    try {
      await p.writeBatch(1, async (files) => {
        await files.add('a=1', 'x\n', 1);
        throw boom;
      });
    } catch (err) {
      caught = err;
    }
    expect(caught).to.equal(boom);
    expect(listFiles(dir)).to.deep.equal([]);
    await p.writeBatch(1, async (files) => {
      await files.add('a=1', 'y\n', 1);
    });
    expect(listFiles(dir)).to.deep.equal([`${SINK_LOG_DIR}/1`, 'a=1/part-00000001-00000.txt']);
  });

  it('recovers a crashed directory: publishes committed files, deletes the rest', async () => {
    const p = await open();
    await p.writeBatch(0, async (files) => {
      await files.add('', '0\n', 1);
      await files.add('g=1', '1\n', 1);
    });
    // What a crash leaves: batch 0 committed but one file still pending; batch 1 staged, one file cut
    // short, never committed; a stray pending name the manifest does not list; a torn manifest write.
    fs.renameSync(
      path.join(dir, 'g=1/part-00000000-00001.txt'),
      pendingPathOf(path.join(dir, 'g=1/part-00000000-00001.txt')),
    );
    fs.writeFileSync(pendingPathOf(path.join(dir, dataFileName(0, 5, '.txt'))), 'stray\n');
    fs.mkdirSync(path.join(dir, 'g=2'));
    fs.writeFileSync(pendingPathOf(path.join(dir, 'g=2', dataFileName(1, 0, '.txt'))), 'complete\n');
    fs.writeFileSync(pendingPathOf(path.join(dir, dataFileName(1, 1, '.txt'))), 'cut sh');
    fs.writeFileSync(path.join(dir, SINK_LOG_DIR, '.1.123-abc.tmp'), 'v1\n{"queryId"');

    const restarted = new FileCommitProtocol(dir, 'test', { extension: '.txt' });
    const report = await restarted.recover('q');
    expect(report.published).to.deep.equal(['g=1/part-00000000-00001.txt']);
    expect([...report.removed].sort()).to.deep.equal([
      '.part-00000000-00005.txt.pending',
      '.part-00000001-00001.txt.pending',
      `${SINK_LOG_DIR}/.1.123-abc.tmp`,
      'g=2/.part-00000001-00000.txt.pending',
    ]);
    expect(listFiles(dir)).to.deep.equal([
      `${SINK_LOG_DIR}/0`,
      'g=1/part-00000000-00001.txt',
      'part-00000000-00000.txt',
    ]);
    await restarted.writeBatch(1, async (files) => {
      await files.add('g=2', 'again\n', 1);
    });
    expect(listFiles(dir)).to.include('g=2/part-00000001-00000.txt');
  });

  it('publishes the rest of a committed batch when it is replayed without a restart', async () => {
    const p = await open();
    await p.writeBatch(2, async (files) => {
      await files.add('', 'a\n', 1);
      await files.add('', 'b\n', 1);
    });
    const second = path.join(dir, 'part-00000002-00001.txt');
    fs.renameSync(second, pendingPathOf(second));
    expect(
      (
        await p.writeBatch(2, async () => {
          throw new Error('must not run');
        })
      ).skipped,
    ).to.equal(true);
    expect(fs.readFileSync(second, 'utf8')).to.equal('b\n');
  });

  it("refuses a directory that holds another query's output", async () => {
    const p = await open('first');
    await p.writeBatch(0, async (files) => {
      await files.add('', 'x\n', 1);
    });
    const err = await rejection(new FileCommitProtocol(dir, 'parquet', { extension: '.txt' }).recover('second'));
    expect(err.code).to.equal('SINK_PATH_IN_USE');
    expect(err.message).to.include(dir).and.include('first');
  });

  it('keeps the latest manifests only and skips a replay older than them', async () => {
    const p = await open('q', 3);
    for (let b = 0; b < 5; b++)
      await p.writeBatch(b, async (files) => {
        await files.add('', `${b}\n`, 1);
      });
    expect(fs.readdirSync(path.join(dir, SINK_LOG_DIR)).sort()).to.deep.equal(['2', '3', '4']);
    const restarted = await open('q', 3);
    expect(
      await restarted.writeBatch(0, async () => {
        throw new Error('must not run');
      }),
    ).to.deep.equal({ skipped: true, files: [] });
    expect(listFiles(dir).filter((f) => f.startsWith('part-'))).to.have.length(5);
  });

  it('names a committed file that has gone missing', async () => {
    const p = await open();
    await p.writeBatch(0, async (files) => {
      await files.add('', 'x\n', 1);
    });
    fs.rmSync(path.join(dir, 'part-00000000-00000.txt'));
    const err = await rejection(p.writeBatch(0, async () => undefined));
    expect(err.code).to.equal('SINK_OUTPUT_MISSING');
    expect(err.message).to.include('part-00000000-00000.txt');
  });

  it('reports a corrupt manifest as an error naming the file', async () => {
    const p = await open();
    await p.writeBatch(0, async (files) => {
      await files.add('', 'x\n', 1);
    });
    fs.writeFileSync(
      path.join(dir, SINK_LOG_DIR, '0'),
      'v1\n{"queryId":"q","batchId":0,"files":[{"path":"../x","rows":1,"bytes":1}]}\n',
    );
    const err = await rejection(new FileCommitProtocol(dir, 'test', { extension: '.txt' }).recover('q'));
    expect(err.code).to.equal('CHECKPOINT_CORRUPT');
    expect(err.message).to.include(path.join(dir, SINK_LOG_DIR, '0'));
  });
});
