import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { expect } from 'chai';
import { pathError, SluiceError } from '../../lib/errors.js';
import { createDirectory, createDirectorySync } from '../../lib/util/create-directory.js';

async function failureOf(f: () => unknown): Promise<NodeJS.ErrnoException> {
  try {
    await f();
  } catch (err) {
    return err as NodeJS.ErrnoException;
  }
  throw new Error('expected a failure');
}

describe('createDirectory', () => {
  let root: string;
  beforeEach(() => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-mkdir-'));
  });
  afterEach(() => fs.rmSync(root, { recursive: true, force: true }));

  for (const [name, create] of [
    ['async', createDirectory],
    ['sync', createDirectorySync],
  ] as const) {
    it(`${name}: creates the missing levels and returns the first it created, as mkdir -p does`, async () => {
      const dir = path.join(root, 'a', 'b', 'c');
      expect(await create(dir)).to.equal(path.join(root, 'a'));
      expect(fs.statSync(dir).isDirectory()).to.equal(true);
      expect(await create(dir)).to.equal(undefined);
    });

    it(`${name}: a file on the way is ENOTDIR naming that file`, async () => {
      const file = path.join(root, 'file');
      fs.writeFileSync(file, 'x');
      for (const dir of [file, path.join(file, 'sub', 'dir')]) {
        const err = await failureOf(() => create(dir));
        expect(err.code).to.equal('ENOTDIR');
        expect(err.path).to.equal(file);
      }
    });

    it(`${name}: ends within a second where the file system refuses new entries (/proc), with that cause`, async function () {
      if (!fs.existsSync('/proc/self')) this.skip();
      const started = performance.now();
      const err = await failureOf(() => create('/proc/sluice-test/dir'));
      expect(performance.now() - started).to.be.below(1000);
      const reported = pathError(err, 'the output directory /proc/sluice-test/dir', 'write to') as SluiceError;
      expect(reported).to.be.instanceOf(SluiceError);
      expect(reported.message).to.equal(
        'cannot write to the output directory /proc/sluice-test/dir: the file system of /proc does not allow ' +
          'creating files or directories in it (ENOENT on /proc/sluice-test)',
      );
    });
  }
});
