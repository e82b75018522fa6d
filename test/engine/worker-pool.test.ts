import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { type LoadedApp, loadApp, runApp } from '../../lib/app/app-runner.js';
import { idleLaneCount } from '../../lib/exec/worker-pool.js';
import { bankData, expectedBank, lastBalances, writeParts } from '../stateful/helpers.js';

/** Output rows of one bank-account run, as JSON, row order included. */
async function runBank(
  app: LoadedApp,
  input: string,
  ckpt: string,
  threads: number,
  onStarted?: () => void,
): Promise<{ movements: string; accounts: Record<string, unknown>[] }> {
  const { session, queries } = await runApp(app, {
    sources: [`file:${input}?maxFilesPerTrigger=2`],
    sinks: ['movements=memory:', 'accounts=memory:'],
    threads,
    statePartitions: 3,
    trigger: { availableNow: true },
    checkpoint: ckpt,
  });
  onStarted?.();
  await Promise.all([...queries.values()].map((q) => q.awaitTermination()));
  return {
    movements: JSON.stringify(session.table('bank-account.movements')),
    accounts: session.table('bank-account.accounts'),
  };
}

describe('worker pool across queries', function () {
  this.timeout(120_000);
  let root: string;
  before(() => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-'));
  });
  after(() => fs.rmSync(root, { recursive: true, force: true }));

  it('reuses the threads of a closed query for the next one, with the same output as in-process', async () => {
    const input = path.join(root, 'reuse-in');
    writeParts(
      input,
      bankData(1200, 40).map((e) => JSON.stringify(e.operation)),
      200,
      '.jsonl',
    );
    const app = await loadApp('bank-account');
    const inProcess = await runBank(app, input, path.join(root, 'reuse-0'), 0);
    const first = await runBank(app, input, path.join(root, 'reuse-a'), 2);
    // bank-account has two outputs, so two queries of 2 lanes each: the driver's thread and one worker thread.
    const idleAfterFirst = idleLaneCount();
    expect(idleAfterFirst).to.be.at.least(2);
    let idleWhileRunning = -1;
    const second = await runBank(app, input, path.join(root, 'reuse-b'), 2, () => {
      idleWhileRunning = idleLaneCount();
    });
    expect(idleWhileRunning, 'the second run took idle lanes instead of starting threads').to.equal(idleAfterFirst - 2);
    expect(idleLaneCount()).to.equal(idleAfterFirst);
    expect(first).to.deep.equal(inProcess);
    expect(second).to.deep.equal(inProcess);
  });

  it('a query restarted on a reused lane continues from its checkpoint', async () => {
    const entries = bankData(1600, 30, 11);
    const staged = path.join(root, 'restart-staged');
    const files = writeParts(
      staged,
      entries.map((e) => JSON.stringify(e.operation)),
      200,
      '.jsonl',
    );
    const input = path.join(root, 'restart-in');
    fs.mkdirSync(input);
    // rename keeps each file's mtime, which orders them for the file source.
    const move = (from: number, to: number) => {
      for (const f of fs.readdirSync(staged).sort().slice(from, to))
        fs.renameSync(path.join(staged, f), path.join(input, f));
    };
    move(0, files / 2);
    const app = await loadApp('bank-account');
    const ckpt = path.join(root, 'restart-ckpt');
    const first = await runBank(app, input, ckpt, 1);
    // Another query, on another checkpoint, uses the same lane in between.
    await runBank(app, input, path.join(root, 'restart-other'), 1);
    move(0, files / 2);
    const second = await runBank(app, input, ckpt, 1);
    expect(second.accounts.length, 'the restart read the new files').to.be.greaterThan(0);
    expect(lastBalances([...first.accounts, ...second.accounts])).to.deep.equal(expectedBank(entries).balances);
  });

  it('idle lanes do not keep the process alive', async () => {
    const input = path.join(root, 'exit-in');
    writeParts(
      input,
      bankData(300, 10).map((e) => JSON.stringify(e.operation)),
      100,
      '.jsonl',
    );
    const runner = fileURLToPath(new URL('../../lib/app/app-runner.js', import.meta.url));
    const script = `const { loadApp, runApp } = await import(${JSON.stringify(runner)});
      const { queries } = await runApp(await loadApp('bank-account'), { sources: [${JSON.stringify(`file:${input}`)}],
        sinks: ['movements=noop:', 'accounts=noop:'], threads: 2, trigger: { availableNow: true }, checkpoint: ${JSON.stringify(path.join(root, 'exit-ckpt'))} });
      await Promise.all([...queries.values()].map((q) => q.awaitTermination()));
      console.log('done');`;
    const started = performance.now();
    const { code, stdout, stderr } = await new Promise<{ code: number | null; stdout: string; stderr: string }>(
      (resolve) => {
        const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
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
        const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
        child.on('close', (c) => {
          clearTimeout(timer);
          resolve({ code: c, stdout, stderr });
        });
      },
    );
    expect(code, stderr).to.equal(0);
    expect(stdout).to.contain('done');
    // Idle lanes end only after 30 s unused; the process must not wait for that.
    expect(performance.now() - started).to.be.lessThan(20_000);
  });
});
