import { expect } from 'chai';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  progressLine, progressReporter, querySummary, statusLine, type SharedStream,
} from '../../lib/cli/status-line.js';
import type { QueryProgress } from '../../lib/exec/progress.js';
import { CLI } from '../support/cli.js';

const CLEAR = '\r\x1b[2K';

function progress(over: Partial<QueryProgress> & { state?: number[] } = {}): QueryProgress {
  const { state, ...rest } = over;
  return {
    id: 'q', runId: 'r', name: null, timestamp: '2024-05-01T10:00:00.000Z', batchId: 3,
    numInputRows: 1200, inputRowsPerSecond: 1234.5, processedRowsPerSecond: 56789,
    durationMs: { latestOffset: 1, walCommit: 1, addBatch: 10, commit: 2, triggerExecution: 21 },
    eventTime: { watermark: '2024-05-01T09:59:50.000Z' },
    stateOperators: (state ?? [700, 41]).map((n, i) => ({
      operatorName: `op#${i}`, numRowsTotal: n, numRowsUpdated: 0, numRowsRemoved: 0, numKeysTimedOut: 0, numRowsDroppedByWatermark: 0,
      numLateRows: 0, memoryUsedBytes: 0, commitTimeMs: 0, stateLoadTimeMs: 0, numShufflePartitions: 4,
    })),
    sources: [],
    sink: { description: 'noop', numOutputRows: 17 },
    ...rest,
  };
}

class FakeTerminal {
  chunks: string[] = [];
  isTTY = true;
  columns = 200;
  write(s: string): boolean { this.chunks.push(s); return true; }
  get text(): string { return this.chunks.join(''); }
  /** What a terminal shows: each CLEAR erases the current line. */
  get screen(): string[] {
    const lines: string[] = [''];
    for (const part of this.text.split(/(\r\x1b\[2K|\n)/)) {
      if (part === CLEAR) lines[lines.length - 1] = '';
      else if (part === '\n') lines.push('');
      else lines[lines.length - 1] += part;
    }
    return lines;
  }
}

describe('status line', () => {
  it('summarises a query: batch, input and processing rate, watermark, state rows', () => {
    expect(querySummary('totals', progress())).to.equal('totals #3 in 1.23k/s proc 56.8k/s wm 2024-05-01 09:59:50 state 741');
    expect(querySummary('out', progress({ stateOperators: [], eventTime: { watermark: '1970-01-01T00:00:00.000Z' }, inputRowsPerSecond: 3.25 })))
      .to.equal('out #3 in 3.3/s proc 56.8k/s');
  });

  it('lists every query, those without a batch as waiting, and fits the terminal width', () => {
    const latest = new Map([['a', progress()]]);
    expect(statusLine(['a', 'b'], latest, 83_000, 200)).to.equal(`01:23 │ ${querySummary('a', progress())} │ b waiting for the first batch`);
    const narrow = statusLine(['a', 'b'], latest, 3_723_000, 40);
    expect(narrow).to.have.length(39);
    expect(narrow.startsWith('1:02:03 │ a #3')).to.equal(true);
    expect(narrow.endsWith('…')).to.equal(true);
  });

  it('writes plain log lines when the stream is not a terminal', () => {
    const out = new FakeTerminal();
    out.isTTY = false;
    const r = progressReporter(out, { tickMs: 0 });
    r.expect(['totals']);
    r.log('sluice: running');
    r.progress('totals', progress());
    r.close();
    expect(out.text).to.equal(`sluice: running\n${progressLine('totals', progress())}\n`);
    expect(out.text).to.not.contain('\r');
  });

  it('writes only messages when quiet, even on a terminal', () => {
    const out = new FakeTerminal();
    const r = progressReporter(out, { quiet: true, tickMs: 0 });
    r.expect(['totals']);
    r.log('sluice: UI at http://127.0.0.1:4040/');
    r.progress('totals', progress());
    r.close();
    expect(out.text).to.equal('sluice: UI at http://127.0.0.1:4040/\n');
  });

  it('rewrites one line in place on a terminal, keeps messages above it, and ends it on close', () => {
    const out = new FakeTerminal();
    let now = 1_000_000;
    const r = progressReporter(out, { tickMs: 0, now: () => now });
    r.expect(['totals', 'minutes']);
    expect(out.screen).to.deep.equal(['00:00 │ totals waiting for the first batch │ minutes waiting for the first batch']);
    now += 5000;
    r.progress('totals', progress({ batchId: 1 }));
    r.progress('totals', progress({ batchId: 2 }));
    r.log('sluice: something happened');
    r.progress('minutes', progress({ batchId: 7, stateOperators: [] }));
    expect(out.text.split('\n')).to.have.length(2);
    r.close();
    r.close();
    expect(out.screen).to.deep.equal([
      'sluice: something happened',
      `00:05 │ ${querySummary('totals', progress({ batchId: 2 }))} │ ${querySummary('minutes', progress({ batchId: 7, stateOperators: [] }))}`,
      '',
    ]);
  });

  it('steps around output on the same terminal (the console sink on stdout) and restores it on close', () => {
    const out = new FakeTerminal();
    const shown: string[] = [];
    const original = function (this: unknown, chunk: string): boolean { shown.push(chunk); out.chunks.push(chunk); return true; };
    const stdout: SharedStream = { isTTY: true, write: original };
    const r = progressReporter(out, { tickMs: 0, shared: stdout });
    r.progress('q', progress());
    stdout.write('+---+\n| 1 |\n');
    stdout.write('partial ');
    stdout.write('line\n');
    expect(out.screen).to.deep.equal(['+---+', '| 1 |', 'partial line', `00:00 │ ${querySummary('q', progress())}`]);
    r.close();
    expect(stdout.write).to.equal(original);
    expect(shown).to.deep.equal(['+---+\n| 1 |\n', 'partial ', 'line\n']);
  });

  it('redraws the elapsed time on a timer that does not keep the process alive', async () => {
    const out = new FakeTerminal();
    let now = 0;
    const r = progressReporter(out, { tickMs: 20, now: () => now });
    r.expect(['q']);
    now = 61_000;
    await new Promise((res) => setTimeout(res, 80));
    r.close();
    expect(out.screen[0]).to.equal('01:01 │ q waiting for the first batch');
  });
});

describe('sluice run progress on stderr', function () {
  this.timeout(60_000);
  const APP = fileURLToPath(new URL('./apps/user-totals.js', import.meta.url));
  let root: string;
  before(() => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-'));
    fs.mkdirSync(path.join(root, 'in'));
    fs.writeFileSync(path.join(root, 'in', 'a.jsonl'), '{"ts":"2024-05-01T10:00:05Z","user":"ann","amount":10}\n');
  });
  after(() => fs.rmSync(root, { recursive: true, force: true }));

  function run(argv: string[]): Promise<{ code: number | null; output: string }> {
    return new Promise((resolve, reject) => {
      const [cmd, ...args] = argv;
      const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, COLUMNS: '200' } });
      let output = '';
      child.stdout.on('data', (d) => { output += d; });
      child.stderr.on('data', (d) => { output += d; });
      child.on('error', reject);
      child.on('close', (code) => resolve({ code, output }));
    });
  }

  it('is a live line on a terminal and log lines in a pipe', async () => {
    const args = ['run', APP, '--source', `file:${path.join(root, 'in')}`, '--trigger', 'available-now'];
    const piped = await run([process.execPath, CLI, ...args, '--checkpoint', path.join(root, 'c1')]);
    expect(piped.code, piped.output).to.equal(0);
    expect(piped.output).to.match(/^\[totals\] batch 0: 1 rows in, 1 out, \d+ rows\/s, \d+ ms, watermark 1970-01-01T00:00:00.000Z, state rows 1$/m);
    expect(piped.output).to.not.contain(CLEAR);
    // script(1) gives the command a pseudo-terminal, as an interactive shell would.
    const cmd = [process.execPath, CLI, ...args, '--checkpoint', path.join(root, 'c2')].map((a) => `'${a}'`).join(' ');
    const tty = await run(['script', '-qefc', cmd, '/dev/null']);
    expect(tty.code, tty.output).to.equal(0);
    expect(tty.output).to.contain(CLEAR);
    expect(tty.output).to.match(/\d\d:\d\d │ totals #0 in [\d.k]+\/s proc [\d.k]+\/s state 1/);
    expect(tty.output).to.not.contain('[totals] batch');
  });
});
