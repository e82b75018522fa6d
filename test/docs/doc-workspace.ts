/**
 * Where the docs' commands run: a directory of their own with `sluice` on the PATH, as a reader has it.
 * The apps' READMEs run in an empty directory (the reader is anywhere); README.md runs in a fresh copy of
 * the repository (the reader has just cloned it), so that its `npm ci` cannot touch this checkout.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { packageRoot } from '../../lib/util/package-root.js';
import { CLI } from '../support/cli.js';

/** The repository. */
export const ROOT = packageRoot();

/** A directory the docs' commands run in. */
export interface DocWorkspace {
  /** Where the commands run. */
  cwd: string;
  /** The directory `mktemp` creates in (TMPDIR), so a block's temporary files can be found and removed. */
  tmp: string;
  /** Environment of the commands. */
  env: NodeJS.ProcessEnv;
  /** Removes everything. */
  remove(): void;
}

/**
 * The environment of the docs' commands: this process's, without what the test run itself set (npm's
 * script variables, the suite summary file, sluice's test hooks), with `bin` first on the PATH, and npm
 * preferring its cache for installs.
 */
function readerEnv(bin: string, tmp: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!/^(npm_|SLUICE_|INIT_CWD$)/.test(k)) env[k] = v;
  return {
    ...env,
    PATH: `${bin}:${process.env.PATH ?? ''}`,
    TMPDIR: tmp,
    npm_config_prefer_offline: 'true',
    npm_config_audit: 'false',
    npm_config_fund: 'false',
  };
}

/** A workspace whose `cwd` is made by `fill` and whose `sluice` runs `cli(cwd)`. */
function workspace(fill: (cwd: string) => void, cli: (cwd: string) => string): DocWorkspace {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-docs-'));
  const cwd = path.join(root, 'work');
  const bin = path.join(root, 'bin');
  const tmp = path.join(root, 'tmp');
  for (const d of [cwd, bin, tmp]) fs.mkdirSync(d, { recursive: true });
  fill(cwd);
  fs.writeFileSync(path.join(bin, 'sluice'), `#!/bin/sh\nexec node '${cli(cwd)}' "$@"\n`, { mode: 0o755 });
  return { cwd, tmp, env: readerEnv(bin, tmp), remove: () => fs.rmSync(root, { recursive: true, force: true }) };
}

/** An empty directory whose `sluice` is this checkout's built command line. */
export function emptyWorkspace(): DocWorkspace {
  return workspace(
    () => undefined,
    () => CLI,
  );
}

/**
 * A copy of the repository as `git clone` gives it (tracked files and new files not ignored, as they are
 * in this checkout), without node_modules or dist; its `sluice` is the copy's own build.
 */
export function repositoryCopy(): DocWorkspace {
  return workspace(
    (cwd) => {
      const files = execFileSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], {
        cwd: ROOT,
        encoding: 'utf8',
      })
        .split('\0')
        .filter(Boolean);
      for (const f of files) {
        const from = path.join(ROOT, f);
        if (!fs.existsSync(from)) continue; // deleted in this checkout, not yet committed
        fs.mkdirSync(path.dirname(path.join(cwd, f)), { recursive: true });
        fs.copyFileSync(from, path.join(cwd, f));
        fs.chmodSync(path.join(cwd, f), fs.statSync(from).mode);
      }
    },
    (cwd) => path.join(cwd, 'dist/lib/cli/main.js'),
  );
}

/** What a command printed (stdout and stderr interleaved, as on a terminal) and how it ended. */
export interface ShellResult {
  status: number | null;
  /** Killed after the time allowed. */
  timedOut: boolean;
  output: string;
}

/**
 * Runs `script` with bash in the workspace, as a reader pasting it into an interactive bash: aliases
 * expand; with `-e -o pipefail` it stops at the first failing command.
 */
export function runBash(
  ws: DocWorkspace,
  script: string,
  timeoutMs: number,
  flags = ['-e', '-o', 'pipefail'],
): ShellResult {
  const outFile = path.join(ws.tmp, `output-${process.pid}-${Date.now()}`);
  const fd = fs.openSync(outFile, 'w');
  try {
    // timeout(1) kills the whole process group, so nothing the script started outlives it.
    const seconds = String(Math.ceil(timeoutMs / 1000));
    const res = spawnSync('timeout', ['-s', 'KILL', seconds, 'bash', '-O', 'expand_aliases', ...flags, '-c', script], {
      cwd: ws.cwd,
      env: ws.env,
      stdio: ['ignore', fd, fd],
    });
    const output = fs.readFileSync(outFile, 'utf8');
    return { status: res.status, timedOut: res.status === 137, output };
  } finally {
    fs.closeSync(fd);
    fs.rmSync(outFile, { force: true });
  }
}
