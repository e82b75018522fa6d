import { type SpawnSyncReturns, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { codeBlocks } from '../docs/markdown-blocks.js';

/** The repository: this file runs as dist/test/packaging/install.test.js. */
const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const README = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
const { version } = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string };
const TARBALL = `sluice-${version}.tgz`;

/** The shell block under a README heading. */
function shellBlock(heading: string): string {
  const block = codeBlocks('README.md', README).find((b) => b.heading === heading && b.info === 'sh');
  expect(block, `a sh block under '${heading}' in README.md`).to.not.equal(undefined);
  return block!.text;
}

/** What `npm test` tells its scripts about this package and run: npm in another folder would act on this one. */
const THIS_RUN = /^(npm_package_|npm_lifecycle_|npm_config_local_prefix$|npm_config_call$|npm_command$|INIT_CWD$)/;

/**
 * A newcomer's shell: the environment without what describes this package's `npm test` (npm settings such as
 * a registry stay), and npm told not to audit, ask for funding or fetch what its cache already has.
 */
function newcomerEnv(): NodeJS.ProcessEnv {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !THIS_RUN.test(k)));
  return {
    ...env,
    npm_config_audit: 'false',
    npm_config_fund: 'false',
    npm_config_prefer_offline: 'true',
    npm_config_update_notifier: 'false',
  };
}

function run(command: string, args: string[], cwd: string, timeout = 120_000): SpawnSyncReturns<string> {
  return spawnSync(command, args, { cwd, env: newcomerEnv(), encoding: 'utf8', timeout });
}

/** What a fresh clone holds: the files git tracks (and new ones it would track), without build output. */
function copyClone(to: string): void {
  const listed = spawnSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], {
    cwd: ROOT,
    encoding: 'utf8',
  });
  expect(listed.status, `git ls-files in ${ROOT}: ${listed.stderr}`).to.equal(0);
  for (const file of listed.stdout.split('\0').filter(Boolean)) {
    const from = path.join(ROOT, file);
    if (!fs.existsSync(from)) continue; // deleted in the work tree, not yet committed
    fs.mkdirSync(path.dirname(path.join(to, file)), { recursive: true });
    fs.copyFileSync(from, path.join(to, file));
  }
  // `npm ci` in the clone, as the README asks before `npm pack`, gives the same tree as this one.
  fs.symlinkSync(fs.realpathSync(path.join(ROOT, 'node_modules')), path.join(to, 'node_modules'), 'dir');
}

/** Rows `|key|total|count|final|` of the console sink's tables, in order. */
function consoleTotals(stdout: string): string[] {
  return stdout
    .split('\n')
    .map((l) => /^\|\s*(\w+)\|\s*([\d.]+)\|\s*(\d+)\|\s*(true|false)\|$/.exec(l))
    .filter((m) => m !== null)
    .map((m) => `${m[1]} ${m[2]} ${m[3]} ${m[4]}`);
}

describe('sluice from a tarball, and a project of its own (README "Start your own project")', function () {
  this.timeout(300_000);
  let work: string;
  /** The clone the README block starts in, its sibling folder that installs the tarball, and the new project. */
  let clone: string;
  let streams: string;
  let project: string;

  before(() => {
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-install-'));
    clone = path.join(work, 'sluice');
    streams = path.join(work, 'my-streams');
    project = path.join(streams, 'my-app');
    copyClone(clone);
  });
  after(() => fs.rmSync(work, { recursive: true, force: true }));

  it('runs as written: npm pack builds the tarball, it installs, sluice new writes a project that builds, tests and runs', () => {
    const res = run('bash', ['-euo', 'pipefail', '-c', shellBlock('Start your own project')], clone, 280_000);
    expect(res.status, `${res.stdout}\n${res.stderr}`).to.equal(0);
    // The project's own test ran under Node's test runner and passed.
    expect(res.stdout).to.match(/^# pass 1$/m);
    expect(res.stdout).to.match(/^# fail 0$/m);
    // npm start: the app's two batches over its sample data, one file each.
    expect(consoleTotals(res.stdout)).to.deep.equal([
      'alice 19.75 2 false',
      'bob 3.0 1 false',
      'carol 40.0 1 false',
      'bob 12.5 2 false',
      'alice 20.0 3 false',
    ]);
  });

  it("the project's README gives the commands that just built, tested and ran it", () => {
    const commands = (block: string) =>
      block
        .split('\n')
        .map((l) => l.replace(/\s+#.*$/, '').trim())
        .filter(Boolean);
    const own = /```sh\n([\s\S]*?)```/.exec(fs.readFileSync(path.join(project, 'README.md'), 'utf8'));
    expect(own, 'a sh block in the project README').to.not.equal(null);
    expect(commands(own![1])).to.deep.equal(commands(shellBlock('Start your own project')).slice(-2));
  });

  it('the tarball holds the built library with its types, the built-in apps, sample data and the project template, and no tests', () => {
    const res = run('tar', ['-tzf', path.join(clone, TARBALL)], work);
    expect(res.status, res.stderr).to.equal(0);
    const entries = res.stdout.split('\n').filter(Boolean);
    expect(entries).to.include.members([
      'package/package.json',
      'package/dist/lib/cli/main.js',
      'package/dist/lib/index.d.ts',
      'package/dist/lib/testing/index.d.ts',
      'package/dist/apps/deposit-sessions/index.js',
      'package/data/deposits/part-0000.txt',
      'package/templates/app/gitignore',
      'package/templates/app/src/app.ts',
    ]);
    expect(entries.filter((e) => /^package\/(dist\/(test|bench)|lib|test)\/|\.map$/.test(e))).to.deep.equal([]);
  });

  it('the project depends on sluice by the path the tarball was installed from', () => {
    const deps = (dir: string) =>
      (JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')) as { dependencies: Record<string, string> })
        .dependencies;
    expect(deps(streams).sluice).to.equal(`file:../sluice/${TARBALL}`);
    expect(deps(project).sluice).to.equal(`file:../../sluice/${TARBALL}`);
    expect(deps(project)).to.have.keys(['sluice']);
  });

  it('npx sluice --help works where the tarball was installed', () => {
    const res = run('npx', ['sluice', '--help'], streams);
    expect(res.status, res.stderr).to.equal(0);
    expect(res.stdout).to.match(/^sluice <command>/);
    expect(res.stdout).to.match(/sluice new <dir>/);
  });

  it('a built-in app runs where the tarball was installed, on the sample data inside the package', () => {
    const res = run(
      'npx',
      [
        'sluice',
        'run',
        'deposit-sessions',
        '--source',
        'file:node_modules/sluice/data/deposits',
        '--trigger',
        'available-now',
        '--checkpoint',
        path.join(work, 'ckpt-deposits'),
      ],
      streams,
    );
    expect(res.status, res.stderr).to.equal(0);
    expect(res.stdout).to.match(/^Batch: 0$/m);
    expect(res.stdout).to.match(/\|session-\d+\|\s+[\d.]+\|\s+true\|/);
  });

  it('a built-in app reads its default input, the sample data inside the package, where the tarball was installed', () => {
    const res = run(
      'npx',
      ['sluice', 'run', 'bank-account', '--trigger', 'available-now', '--checkpoint', path.join(work, 'ckpt-bank')],
      streams,
    );
    expect(res.status, res.stderr).to.equal(0);
    expect(res.stdout).to.match(/^Batch: 0$/m);
    expect(res.stderr).to.match(/\[movements\] batch 0: [1-9]\d* rows in/);
  });

  it("the project's app runs with npx sluice run ./dist/app.js, its own option and another sink", () => {
    const out = path.join(work, 'totals');
    const res = run(
      'npx',
      [
        'sluice',
        'run',
        './dist/app.js',
        '--idle',
        '5m',
        '--sink',
        `file:${out}`,
        '--checkpoint',
        path.join(work, 'ckpt-totals'),
        '--trigger',
        'available-now',
      ],
      project,
    );
    expect(res.status, res.stderr).to.equal(0);
    const rows = fs
      .readdirSync(out)
      .filter((f) => f.endsWith('.jsonl'))
      .sort()
      .flatMap((f) => fs.readFileSync(path.join(out, f), 'utf8').split('\n').filter(Boolean))
      .map((l) => JSON.parse(l) as { key: string; total: number; count: number; final: boolean });
    expect(rows.at(-1)).to.deep.equal({ key: 'alice', total: 20, count: 3, final: false });
    expect(rows).to.have.length(5);
  });

  it("the types of sluice and sluice/testing reach the project: a mistake against them fails the project's build", () => {
    const wrong = path.join(project, 'src', 'wrong.ts');
    fs.writeFileSync(
      wrong,
      [
        "import { Session } from 'sluice';",
        "import { ManualClock } from 'sluice/testing';",
        'export const time: string = new ManualClock().now();',
        "export const session = Session.local({ threads: 'two' });",
        '',
      ].join('\n'),
    );
    try {
      const res = run('npx', ['tsc', '--noEmit', '-p', '.'], project);
      expect(res.status).to.not.equal(0);
      const errors = res.stdout.split('\n').filter((l) => l.startsWith('src/wrong.ts'));
      expect(errors, res.stdout).to.have.length(2);
      expect(errors[0]).to.match(
        /^src\/wrong\.ts\(3,14\): error TS2322: Type 'number' is not assignable to type 'string'/,
      );
      expect(errors[1]).to.match(/^src\/wrong\.ts\(4,/);
    } finally {
      fs.rmSync(wrong);
    }
  });
});
