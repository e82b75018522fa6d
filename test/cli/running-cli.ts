import { type ChildProcess, spawn } from 'node:child_process';
import { CLI } from '../support/cli.js';

/** A `sluice` child process that keeps running while a test watches and signals it. */
export class RunningCli {
  stdout = '';
  stderr = '';
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private readonly child: ChildProcess;
  private readonly watchers: Array<() => void> = [];

  constructor(args: string[], opts: { cwd?: string; env?: Record<string, string> } = {}) {
    this.child = spawn(process.execPath, [CLI, ...args], {
      cwd: opts.cwd,
      env: { ...process.env, ...opts.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child.stdout!.on('data', (d) => {
      this.stdout += d;
      this.notify();
    });
    this.child.stderr!.on('data', (d) => {
      this.stderr += d;
      this.notify();
    });
    this.exited = new Promise((resolve, reject) => {
      this.child.on('error', reject);
      this.child.on('close', (code, signal) => {
        this.notify();
        resolve({ code, signal });
      });
    });
  }

  private notify(): void {
    for (const w of this.watchers.splice(0)) w();
  }

  /** Resolves with the first match of `pattern` in stderr; rejects when the process exits first or after `timeoutMs`. */
  async waitForStderr(pattern: RegExp, timeoutMs = 30_000): Promise<RegExpMatchArray> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const m = this.stderr.match(pattern);
      if (m) return m;
      if (this.child.exitCode !== null || this.child.signalCode !== null)
        throw new Error(`sluice exited before printing ${pattern}:\n${this.stderr}`);
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${pattern} in:\n${this.stderr}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, 200);
        this.watchers.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  /** Number of batches the plain progress lines reported for `output`. */
  batches(output: string): number {
    return this.stderr.split('\n').filter((l) => l.startsWith(`[${output}] batch `)).length;
  }

  kill(signal: NodeJS.Signals): void {
    this.child.kill(signal);
  }

  /** Kills the process if a failed test left it running. */
  async dispose(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      this.child.kill('SIGKILL');
      await this.exited;
    }
  }
}
