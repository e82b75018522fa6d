import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';

/** The repository root: this file runs as dist/test/structure/ci-lint.test.js. */
const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

interface CiRun {
  status: number | null;
  output: string;
  lastLine: string;
}

/**
 * Runs `.ci/run` in a scratch project that has this repository's CI script, lint script and Biome configuration
 * and one source file, `lib/probe.ts`. `npm ci` and `apt-get` are stubbed (the scratch project links the
 * installed node_modules) and the tests are one script that reports a single passing test, so what is left to
 * decide the outcome is the lint step.
 */
function runCi(dir: string, probe: string): CiRun {
  fs.writeFileSync(path.join(dir, 'lib', 'probe.ts'), probe);
  const res = spawnSync('bash', [path.join(dir, '.ci', 'run')], {
    cwd: dir,
    encoding: 'utf8',
    env: { ...process.env, PATH: `${path.join(dir, 'bin')}:${process.env.PATH}` },
    timeout: 120_000,
  });
  const output = `${res.stdout}${res.stderr}`;
  const lines = res.stdout.trim().split('\n');
  return { status: res.status, output, lastLine: lines[lines.length - 1] };
}

describe('CI lints before it tests', function () {
  this.timeout(180_000);
  let dir: string;

  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-ci-lint-'));
    for (const d of ['.ci', 'lib', 'bin']) fs.mkdirSync(path.join(dir, d));
    fs.copyFileSync(path.join(ROOT, '.ci', 'run'), path.join(dir, '.ci', 'run'));
    fs.copyFileSync(path.join(ROOT, 'biome.jsonc'), path.join(dir, 'biome.jsonc'));
    fs.symlinkSync(path.join(ROOT, 'node_modules'), path.join(dir, 'node_modules'));
    const { scripts } = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
    const reportOnePass =
      'node -e "require(\'node:fs\').writeFileSync(process.env.SLUICE_TEST_SUMMARY, \'{\\"passed\\":1,\\"failed\\":0}\')"';
    fs.writeFileSync(
      path.join(dir, 'package.json'),
      `${JSON.stringify({ name: 'ci-lint-probe', private: true, scripts: { lint: scripts.lint, test: reportOnePass } }, null, 2)}\n`,
    );
    const npm = spawnSync('bash', ['-c', 'command -v npm'], { encoding: 'utf8' }).stdout.trim();
    fs.writeFileSync(path.join(dir, 'bin', 'npm'), `#!/bin/sh\n[ "$1" = ci ] && exit 0\nexec '${npm}' "$@"\n`, {
      mode: 0o755,
    });
    fs.writeFileSync(path.join(dir, 'bin', 'apt-get'), '#!/bin/sh\nexit 0\n', { mode: 0o755 });
    // Biome reads .gitignore through git, as in the repository.
    spawnSync('git', ['init', '-q'], { cwd: dir });
  });

  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('goes on to the tests when the code is clean', () => {
    const res = runCi(dir, "export const greeting = 'hello';\n");
    expect(res.status, res.output).to.equal(0);
    expect(res.lastLine).to.equal('1 passed, 0 failed');
  });

  it('fails on a lint warning, before the tests, with the summary line of a failed install', () => {
    const res = runCi(dir, 'export function first(xs: any[]): unknown {\n  return xs[0];\n}\n');
    expect(res.status, res.output).to.equal(1);
    expect(res.lastLine).to.equal('0 passed, 1 failed');
    expect(res.output).to.contain('lib/probe.ts').and.to.contain('noExplicitAny');
  });

  it('fails on a lint error', () => {
    const res = runCi(dir, 'export const isNaNValue = (x: number): boolean => x !== x;\n');
    expect(res.status, res.output).to.equal(1);
    expect(res.lastLine).to.equal('0 passed, 1 failed');
    expect(res.output).to.contain('noSelfCompare');
  });

  it('fails on unformatted code', () => {
    const res = runCi(dir, 'export const greeting = "hello";\n');
    expect(res.status, res.output).to.equal(1);
    expect(res.lastLine).to.equal('0 passed, 1 failed');
    expect(res.output).to.contain('lib/probe.ts').and.to.contain('format');
  });
});
