import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { expect } from 'chai';
import { HUGE_PAGE_TUNABLE, launchEnvironment } from '../../lib/cli/launch-environment.js';
import { CLI } from '../support/cli.js';

const run = promisify(execFile);

describe('the sluice command starts Node with huge pages for malloc', function () {
  this.timeout(60_000);
  let root: string;
  before(() => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-launcher-'));
    // A `node` first on PATH that prints what it was started with, in place of Node itself.
    fs.writeFileSync(path.join(root, 'node'), '#!/bin/sh\necho "tunables=$GLIBC_TUNABLES"\necho "args=$*"\n', {
      mode: 0o755,
    });
  });
  after(() => fs.rmSync(root, { recursive: true, force: true }));

  const launch = (env: NodeJS.ProcessEnv) =>
    run(CLI, ['run', 'bank-account', '--trigger', 'available-now'], {
      env: { ...env, PATH: `${root}${path.delimiter}${process.env.PATH}` },
    });

  it('runs as a shell script that starts node on itself with the tunable, arguments unchanged', async () => {
    const env = { ...process.env };
    delete env.GLIBC_TUNABLES;
    const { stdout } = await launch(env);
    expect(stdout).to.equal(`tunables=${HUGE_PAGE_TUNABLE}\nargs=${CLI} run bank-account --trigger available-now\n`);
    expect(launchEnvironment(env).GLIBC_TUNABLES).to.equal(HUGE_PAGE_TUNABLE);
  });

  it("puts the user's own tunables after its own, so that theirs win", async () => {
    const own = 'glibc.malloc.hugetlb=0:glibc.malloc.arena_max=2';
    const { stdout } = await launch({ ...process.env, GLIBC_TUNABLES: own });
    expect(stdout.split('\n')[0]).to.equal(`tunables=${HUGE_PAGE_TUNABLE}:${own}`);
    expect(launchEnvironment({ GLIBC_TUNABLES: own }).GLIBC_TUNABLES).to.equal(`${HUGE_PAGE_TUNABLE}:${own}`);
  });

  it('runs sluice itself when started as a program, and as a module by node', async () => {
    const direct = await run(CLI, ['--version']);
    const viaNode = await run(process.execPath, [CLI, '--version']);
    expect(direct.stdout).to.match(/^\d+\.\d+\.\d+\n$/);
    expect(viaNode.stdout).to.equal(direct.stdout);
  });
});
