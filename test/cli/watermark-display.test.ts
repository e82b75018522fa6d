import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { expect } from 'chai';
import { packageRoot } from '../../lib/util/package-root.js';
import { readProgressLog, runCli } from '../support/cli.js';

const ROOT = packageRoot();

describe('the watermark of a job without event time', function () {
  this.timeout(120_000);
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-wm-'));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('is shown as none: batch lines, console output, progress log and sluice checkpoint', async () => {
    const ckpt = path.join(dir, 'ckpt');
    const log = path.join(dir, 'progress.jsonl');
    const run = await runCli(
      [
        'run',
        'deposit-sessions',
        '--source',
        `file:${path.join(ROOT, 'data/deposits')}`,
        '--trigger',
        'available-now',
      ].concat(['--checkpoint', ckpt, '--progress-log', log]),
    );
    expect(run.code, run.stderr).to.equal(0);
    expect(run.stderr).to.match(
      /\[sessions\] batch 0: 2000 rows in, \d+ out, .* ms \(offsets [^)]*\), state rows \d+\n/,
    );
    expect(`${run.stdout}${run.stderr}`).to.not.match(/watermark|1970/);
    const rows = readProgressLog(log);
    expect(rows).to.not.be.empty;
    for (const p of rows) expect(p.eventTime).to.not.have.property('watermark');
    const inspect = await runCli(['checkpoint', ckpt]);
    expect(inspect.code, inspect.stderr).to.equal(0);
    expect(inspect.stdout).to.match(/^ {2}watermark +none$/m);
    const json = await runCli(['checkpoint', ckpt, '--json']);
    expect(JSON.parse(json.stdout).watermarkMs).to.equal(null);
  });

  it('the demo shows none', () => {
    const demo = spawnSync(process.execPath, [path.join(ROOT, 'scripts/demo.mjs')], { encoding: 'utf8' });
    expect(demo.status, demo.stderr).to.equal(0);
    expect(demo.stdout).to.match(/depositCurrentBalance/);
    expect(`${demo.stdout}${demo.stderr}`).to.not.match(/watermark|1970/);
  });

  it('a job with event time still shows its watermark once it has one', async () => {
    const ckpt = path.join(dir, 'ckpt');
    const log = path.join(dir, 'progress.jsonl');
    const sinks = ['--sink', 'sessions=noop:', '--sink', 'late=noop:'];
    const run = await runCli([
      'run',
      'clickstream-sessions',
      ...sinks,
      '--trigger',
      'available-now',
      '--checkpoint',
      ckpt,
      '--progress-log',
      log,
    ]);
    expect(run.code, run.stderr).to.equal(0);
    expect(run.stderr).to.match(/batch 1: .*, watermark 2024-01-01T\d\d:\d\d:\d\d\.\d{3}Z/);
    expect(readProgressLog(log).map((p) => p.eventTime.watermark)).to.not.include(undefined);
    const inspect = await runCli(['checkpoint', ckpt]);
    expect(inspect.stdout).to.match(/^ {2}watermark +2024-01-01T/m);
  });
});
