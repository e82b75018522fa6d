import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { inspectCheckpoint } from '../../lib/cli/checkpoint-inspector.js';
import { type CliResult, runCli } from '../support/cli.js';
import { RunningCli } from './running-cli.js';

const TICKER = fileURLToPath(new URL('./apps/ticker.js', import.meta.url));
const USER_TOTALS = fileURLToPath(new URL('./apps/user-totals.js', import.meta.url));

function expectOneLineError(res: CliResult, code: number, pattern: RegExp): void {
  expect(res.code, res.stderr).to.equal(code);
  expect(res.stderr).to.match(pattern);
  expect(
    res.stderr
      .trim()
      .split('\n')
      .filter((l) => l.startsWith('sluice: error:')),
    res.stderr,
  ).to.have.length(1);
  expect(res.stderr).to.not.match(/^\s+at /m);
}

describe('sluice run: stopping and failing', function () {
  this.timeout(90_000);
  let root: string;
  const running: RunningCli[] = [];
  beforeEach(() => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-'));
  });
  afterEach(async () => {
    await Promise.all(running.splice(0).map((r) => r.dispose()));
    fs.rmSync(root, { recursive: true, force: true });
  });

  function ticker(...extra: string[]): RunningCli {
    const r = new RunningCli([
      'run',
      TICKER,
      '--source',
      'rate:?rowsPerSecond=500',
      '--trigger',
      '100ms',
      '--checkpoint',
      path.join(root, 'ckpt'),
      ...extra,
    ]);
    running.push(r);
    return r;
  }

  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    it(`${signal} finishes the batch in progress, leaves nothing uncommitted and exits 0`, async () => {
      const r = ticker();
      await r.waitForStderr(/\[buckets\] batch 2:/);
      r.kill(signal);
      const { code, signal: killedBy } = await r.exited;
      expect(killedBy).to.equal(null);
      expect(code, r.stderr).to.equal(0);
      expect(r.stderr).to.contain(`sluice: ${signal}: stopping after the current batch`);
      const queries = await inspectCheckpoint(path.join(root, 'ckpt'));
      expect(queries.map((q) => q.name)).to.deep.equal(['buckets', 'seconds']);
      for (const q of queries) {
        expect(q.pendingBatch, q.name).to.equal(null);
        expect(q.lastCommittedBatch).to.equal(r.batches(q.name) - 1);
        expect(q.problems).to.deep.equal([]);
      }
    });
  }

  it('a second SIGINT exits at once with 130; the batch it cut short runs again on restart', async () => {
    // Batches of about three seconds, so that both signals arrive during one even on a loaded machine.
    const r = ticker('--slow-ms', '400');
    await r.waitForStderr(/\[buckets\] batch 1:/);
    // A second into the next batch: signalled right at the line, the run may be between batches and stop at once.
    await new Promise((resolve) => setTimeout(resolve, 1000));
    // The second signal follows at once: the ticker's user function busy-waits, so the process sees signals only
    // between state partitions, and waiting for the first one's message could let the batch finish meanwhile.
    r.kill('SIGINT');
    await new Promise((resolve) => setTimeout(resolve, 100));
    r.kill('SIGINT');
    const { code } = await r.exited;
    expect(r.stderr).to.contain('stopping after the current batch');
    expect(code, r.stderr).to.equal(130);
    expect(r.stderr).to.contain('SIGINT again, exiting without finishing the batch (it runs again on restart)');
    const restarted = await runCli([
      'run',
      TICKER,
      '--source',
      'rate:?rowsPerSecond=500',
      '--trigger',
      'once',
      '--checkpoint',
      path.join(root, 'ckpt'),
      '--quiet',
    ]);
    expect(restarted.code, restarted.stderr).to.equal(0);
    for (const q of await inspectCheckpoint(path.join(root, 'ckpt'))) expect(q.pendingBatch, q.name).to.equal(null);
  });

  it('a failing query stops the whole run with a one-line reason and exit code 1', async () => {
    const res = await runCli(
      [
        'run',
        TICKER,
        '--source',
        'rate:?rowsPerSecond=500',
        '--trigger',
        '100ms',
        '--checkpoint',
        path.join(root, 'ckpt'),
        '--fail-at',
        '20',
      ],
      { timeoutMs: 60_000 },
    );
    expect(res.signal, 'the run must end by itself').to.equal(null);
    expectOneLineError(
      res,
      1,
      /^sluice: error: user function of operator mapGroupsWithState#\d+ failed in batch \d+: bucket b\d reached \d+ ticks \(fix the function/m,
    );
    const [buckets, seconds] = await inspectCheckpoint(path.join(root, 'ckpt'));
    expect(buckets.pendingBatch).to.not.equal(null);
    expect(seconds.pendingBatch).to.equal(null);
  });

  it('a run that reaches the end of its input (available-now) exits 0', async () => {
    fs.mkdirSync(path.join(root, 'in'));
    fs.writeFileSync(path.join(root, 'in', 'a.jsonl'), '{"ts":"2024-05-01T10:00:05Z","user":"ann","amount":10}\n');
    const res = await runCli([
      'run',
      USER_TOTALS,
      '--source',
      `file:${path.join(root, 'in')}`,
      '--trigger',
      'available-now',
      '--checkpoint',
      path.join(root, 'ckpt'),
    ]);
    expect(res.code, res.stderr).to.equal(0);
    expect(res.stderr).to.match(/sluice: running user-totals \(totals, minutes\); stop with Ctrl-C/);
  });
});

describe('sluice run: bad flags', function () {
  this.timeout(60_000);
  let root: string;
  before(() => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-'));
  });
  after(() => fs.rmSync(root, { recursive: true, force: true }));

  const run = (...args: string[]): Promise<CliResult> =>
    runCli(['run', ...args, '--checkpoint', path.join(root, `c-${Math.random().toString(36).slice(2)}`)]);

  it('an unknown app name, a missing app module, TypeScript source or a directory is bad usage (2); a module that is not an app an error (1)', async () => {
    expectOneLineError(
      await run('no-such-app'),
      2,
      /^sluice: error: no app named 'no-such-app' \(run one of: .*deposit-sessions/m,
    );
    expectOneLineError(await run('./missing-app.js'), 2, /app module \.\/missing-app\.js does not exist/);
    const notAnApp = path.join(root, 'not-an-app.mjs');
    fs.writeFileSync(notAnApp, 'export const x = 1;\n');
    expectOneLineError(await run(notAnApp), 1, /does not export an app \(its default export must be defineApp/);
    expectOneLineError(await run('./my-app.ts'), 2, /is TypeScript source \(compile it first/);
  });

  it('a bad --trigger is bad usage', async () => {
    expectOneLineError(
      await run(TICKER, '--trigger', 'soon'),
      2,
      /--trigger 'soon' is not an interval, once or available-now \(e\.g\. --trigger 1s/,
    );
  });

  it('a bad sink or source URI, an unknown output name are bad usage', async () => {
    expectOneLineError(await run(TICKER, '--sink', 'nowhere'), 2, /cannot read sink 'nowhere' \(write FORMAT:PATH/);
    expectOneLineError(
      await run(TICKER, '--sink', 'blob:x'),
      2,
      /unknown sink format 'blob' in 'blob:x' \(use one of: console/,
    );
    expectOneLineError(
      await run(TICKER, '--sink', 'nope=console:'),
      2,
      /the app has no output named 'nope' \(its outputs are: buckets, seconds\)/,
    );
    expectOneLineError(
      await run(TICKER, '--source', 'bogus:x'),
      2,
      /cannot read source 'bogus:x'.*unknown source type 'bogus'/,
    );
  });

  it('an unknown app option, and a bad option value, are bad usage', async () => {
    expectOneLineError(
      await run(TICKER, '--colour', 'red'),
      2,
      /app ticker has no option --colour \(its options are: --buckets, --fail-at, --slow-ms\)/,
    );
    expectOneLineError(await run(TICKER, '--buckets', 'many'), 2, /--buckets must be a number, got 'many'/);
  });

  it('a bad --ui port is bad usage, a port in use an error', async () => {
    expectOneLineError(await run(TICKER, '--ui=70000'), 2, /--ui must be a port number from 0 to 65535, got 70000/);
    const server = net.createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as net.AddressInfo).port;
    try {
      expectOneLineError(
        await run(TICKER, '--ui', String(port)),
        1,
        new RegExp(`cannot serve the UI on 127\\.0\\.0\\.1:${port}: the port is in use \\(choose another`),
      );
    } finally {
      server.close();
    }
  });

  it('no app, an unknown command', async () => {
    const noApp = await runCli(['run']);
    expect(noApp.code).to.equal(2);
    expect(noApp.stderr).to.match(/Not enough non-option arguments/);
    const unknown = await runCli(['frobnicate']);
    expect(unknown.code).to.equal(2);
    expect(unknown.stderr).to.match(/sluice: error: Unknown command: frobnicate/);
  });
});

describe('sluice --help', function () {
  this.timeout(60_000);
  for (const command of [[], ['run'], ['apps'], ['gen'], ['checkpoint']]) {
    it(`${['sluice', ...command].join(' ')} --help shows usage and examples`, async () => {
      const res = await runCli([...command, '--help']);
      expect(res.code, res.stderr).to.equal(0);
      expect(res.stdout).to.match(new RegExp(`^sluice ${command.join(' ')}`));
      expect(res.stdout).to.contain('Examples:');
      for (const line of res.stdout.slice(res.stdout.indexOf('Examples:')).split('\n').slice(1).filter(Boolean)) {
        expect(line.trim()).to.match(/^sluice /);
      }
    });
  }

  it('sluice apps lists the built-in apps', async () => {
    const res = await runCli(['apps']);
    expect(res.code).to.equal(0);
    expect(res.stdout).to.match(/^deposit-sessions\s+Spark mapGroupsWithState/m);
  });
});
