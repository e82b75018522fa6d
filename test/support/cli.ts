import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import type { QueryProgress } from '../../lib/exec/progress.js';

/** dist/lib/cli/main.js, the `sluice` command as users run it. */
export const CLI = fileURLToPath(new URL('../../lib/cli/main.js', import.meta.url));
/** The compiled test apps. */
export const TEST_APPS = path.dirname(fileURLToPath(new URL('./apps/enrich.js', import.meta.url)));

/** An input event of the enrich test app. */
export interface EnrichInput {
  id: number;
  user: string;
  amount: number;
}

/** What the enrich test app writes for an event it keeps. */
export interface Enriched extends EnrichInput {
  tag: string;
}

/** `count` input events of the enrich app: ids 0..count-1, five users, amounts -2..6 (a third of them dropped). */
export function enrichEvents(count: number): EnrichInput[] {
  return Array.from({ length: count }, (_, id) => ({ id, user: `u${id % 5}`, amount: (id % 9) - 2 }));
}

/** The enrich app's output for `events`, computed without sluice: positive amounts, tagged, in input order. */
export function enrichReference(events: EnrichInput[]): Enriched[] {
  return events.filter((e) => e.amount > 0).map((e) => ({ ...e, tag: `${e.user}-${e.id % 7}` }));
}

/** Result of one CLI run. */
export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs `sluice args...` to completion (or until killed), capturing its output. */
export function runCli(
  args: string[],
  opts: { env?: Record<string, string>; cwd?: string; timeoutMs?: number } = {},
): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], {
      cwd: opts.cwd,
      env: { ...process.env, ...opts.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => {
      stdout += d;
    });
    child.stderr.on('data', (d) => {
      stderr += d;
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 60_000);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

/**
 * Runs `sluice args...` with the crash point `crashAt` (`point:batch`, see lib/util/crash-points.ts), checks it
 * was killed there (SIGKILL), then runs the same command again and checks that the restart exits 0.
 */
export async function crashThenRestart(args: string[], crashAt: string): Promise<void> {
  const crashed = await runCli(args, { env: { SLUICE_CRASH_AT: crashAt } });
  expect(crashed.signal, crashed.stderr).to.equal('SIGKILL');
  const res = await runCli(args);
  expect(res.code, res.stderr).to.equal(0);
}

/** The rows of a `sluice run --progress-log` file: each batch's progress and the app output it belongs to. */
export function readProgressLog(file: string): (QueryProgress & { output: string })[] {
  return fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l));
}
