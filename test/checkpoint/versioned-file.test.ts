import * as fs from 'node:fs';
import * as path from 'node:path';
import { expect } from 'chai';
import {
  readVersioned,
  readVersionedEntry,
  readVersionedRaw,
  writeVersioned,
  writeVersionedRaw,
} from '../../lib/checkpoint/versioned-file.js';
import { sluiceErrorOf, useTmpDir } from './helpers.js';

describe('checkpoint/versioned-file', () => {
  const tmp = useTmpDir();
  const file = () => path.join(tmp(), 'offsets', '7');

  it('writes a version line and a JSON body, and reads them back', async () => {
    await writeVersioned(file(), { batchId: 7, x: [1, 'two'] });
    expect(fs.readFileSync(file(), 'utf8')).to.equal('v1\n{"batchId":7,"x":[1,"two"]}\n');
    expect(await readVersioned(file())).to.deep.equal({ batchId: 7, x: [1, 'two'] });
    expect(await readVersionedEntry(file())).to.deep.equal({ version: 1, body: { batchId: 7, x: [1, 'two'] } });
  });

  it('round-trips raw bytes after the version line', async () => {
    await writeVersionedRaw(file(), new Uint8Array([0, 10, 255]));
    const { version, data } = await readVersionedRaw(file());
    expect(version).to.equal(1);
    expect([...data]).to.deep.equal([0, 10, 255]);
  });

  const corrupt: [string, string, RegExp][] = [
    ['an empty file', '', /is empty/],
    ['no version line', '{"batchId":7}\n', /does not start with a format version line/],
    ['a version line only, cut before its newline', 'v1', /does not start with a format version line/],
    ['an unknown version tag', 'v0\n{}\n', /format version line.*"v0"/],
    ['a garbled version tag', 'version1\n{}\n', /format version line/],
    ['a torn body', 'v1\n{"batchId":7,"sour', /does not end with a newline/],
    ['a body that is not JSON', 'v1\n{"batchId":7,,}\n', /not valid JSON/],
    ['a missing body', 'v1\n', /cut short/],
    ['an empty body', 'v1\n\n', /not valid JSON/],
  ];
  for (const [what, text, reason] of corrupt) {
    it(`rejects ${what} with CHECKPOINT_CORRUPT naming the file`, async () => {
      fs.mkdirSync(path.dirname(file()), { recursive: true });
      fs.writeFileSync(file(), text);
      const err = await sluiceErrorOf(() => readVersioned(file()));
      expect(err.code).to.equal('CHECKPOINT_CORRUPT');
      expect(err.message).to.include(file()).and.match(reason);
      expect(err.hint)
        .to.match(/backup/)
        .and.match(/delete/);
    });
  }

  it('reports what the validator found wrong', async () => {
    await writeVersioned(file(), { batchId: 'seven' });
    const err = await sluiceErrorOf(() =>
      readVersioned(file(), (b) =>
        typeof (b as { batchId: unknown }).batchId === 'number' ? null : 'field "batchId" must be a number',
      ),
    );
    expect(err.code).to.equal('CHECKPOINT_CORRUPT');
    expect(err.message).to.equal(`checkpoint file ${file()} is corrupt: field "batchId" must be a number`);
  });

  it('refuses a newer format version with an upgrade hint', async () => {
    await writeVersioned(file(), {}, 3);
    const err = await sluiceErrorOf(() => readVersioned(file()));
    expect(err.code).to.equal('CHECKPOINT_TOO_NEW');
    expect(err.message).to.include(file()).and.include('v3').and.include('up to v1');
    expect(err.hint).to.match(/newer sluice/);
    expect(await readVersionedEntry(file(), undefined, { maxVersion: 3 })).to.deep.equal({ version: 3, body: {} });
  });

  it('says CHECKPOINT_MISSING for a file that does not exist', async () => {
    const err = await sluiceErrorOf(() => readVersioned(file()));
    expect(err.code).to.equal('CHECKPOINT_MISSING');
    expect(err.message).to.include(file());
  });
});
