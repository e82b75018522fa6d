import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { expect } from 'chai';
import { packagePath, packageRoot } from '../../lib/util/package-root.js';

/** The repository: this file runs as dist/test/util/package-root.test.js. */
const REPO = fileURLToPath(new URL('../../../', import.meta.url));

describe('packageRoot', () => {
  it('is the directory of the package.json named sluice above the compiled modules', () => {
    expect(packageRoot()).to.equal(path.resolve(REPO));
    expect(fs.existsSync(packagePath('data', 'bank'))).to.equal(true);
  });

  it('does not depend on the current directory', () => {
    const elsewhere = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-root-'));
    const module = pathToFileURL(path.join(REPO, 'dist/lib/util/package-root.js')).href;
    const res = spawnSync(
      process.execPath,
      ['--input-type=module', '-e', `import { packageRoot } from '${module}'; console.log(packageRoot());`],
      { cwd: elsewhere, encoding: 'utf8' },
    );
    fs.rmSync(elsewhere, { recursive: true, force: true });
    expect(res.status, res.stderr).to.equal(0);
    expect(res.stdout.trim()).to.equal(path.resolve(REPO));
  });
});
