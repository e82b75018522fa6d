import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { SAMPLES, sampleCommand, writeSamples } from '../../lib/cli/gen-samples.js';

/** The repository's data/ folder (tests run from dist/test/gen). */
const DATA = fileURLToPath(new URL('../../../data/', import.meta.url));

describe('sample data in data/', () => {
  let dir: string;
  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-'));
  });
  after(() => {
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('is exactly what the generators produce, and stays under 1 MB', async () => {
    const quiet = new Writable({
      write(_c, _e, cb) {
        cb();
      },
    });
    const files = await writeSamples(dir, quiet);
    expect(files.length).to.be.at.least(SAMPLES.length);
    let total = 0;
    for (const file of files) {
      const rel = path.relative(dir, file);
      const committed = path.join(DATA, rel);
      expect(fs.existsSync(committed), `${rel} is missing from data/ (run node data/generate.mjs)`).to.equal(true);
      const bytes = fs.readFileSync(committed);
      expect(bytes.equals(fs.readFileSync(file)), `${rel} differs from what the generator gives now`).to.equal(true);
      total += bytes.length;
    }
    for (const sample of SAMPLES) {
      const committedParts = fs.readdirSync(path.join(DATA, sample.dir)).filter((f) => /^part-/.test(f));
      expect(committedParts.length, `stale part files in data/${sample.dir}`).to.equal(
        fs.readdirSync(path.join(dir, sample.dir)).length,
      );
    }
    expect(total).to.be.below(1_000_000);
  });

  it('is documented in data/README.md with the command that makes each set', () => {
    const readme = fs.readFileSync(path.join(DATA, 'README.md'), 'utf8');
    for (const sample of SAMPLES) expect(readme).to.contain(sampleCommand(sample));
  });
});
