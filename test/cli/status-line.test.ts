import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { MalformedTally, malformedPolicyOf } from '../../lib/cli/malformed-summary.js';
import {
  progressLine,
  progressReporter,
  querySummary,
  type SharedStream,
  statusLine,
} from '../../lib/cli/status-line.js';
import type { QueryProgress, SourceProgress } from '../../lib/exec/progress.js';
import { CLI } from '../support/cli.js';

const CLEAR = '\r\x1b[2K';

function progress(over: Partial<QueryProgress> & { state?: number[] } = {}): QueryProgress {
  const { state, ...rest } = over;
  return {
    id: 'q',
    runId: 'r',
    name: null,
    timestamp: '2024-05-01T10:00:00.000Z',
    batchId: 3,
    batchDuration: 21,
    numInputRows: 1200,
    inputRowsPerSecond: 1234.5,
    processedRowsPerSecond: 56789,
    durationMs: {
      latestOffset: 1,
      getBatch: 0.2,
      queryPlanning: 0.1,
      walCommit: 1,
      addBatch: 17,
      commitOffsets: 2,
      triggerExecution: 21,
      read: 6.6,
      exchange: 0.3,
      stateCommit: 4,
      sink: 3,
    },
    eventTime: { watermark: '2024-05-01T09:59:50.000Z' },
    stateOperators: (state ?? [700, 41]).map((n, i) => ({
      operatorName: `op#${i}`,
      numRowsTotal: n,
      numRowsUpdated: 0,
      numRowsRemoved: 0,
      numKeysTimedOut: 0,
      numRowsDroppedByWatermark: 0,
      numLateRows: 0,
      memoryUsedBytes: 0,
      commitTimeMs: 0,
      stateLoadTimeMs: 0,
      numShufflePartitions: 4,
    })),
    sources: [],
    sink: { description: 'noop', numOutputRows: 17 },
    ...rest,
  };
}

function source(numMalformedRows: number, description = 'FileSource[in]'): SourceProgress {
  return {
    description,
    startOffset: null,
    endOffset: { files: 1 },
    numInputRows: 10,
    numMalformedRows,
    inputRowsPerSecond: 1,
    processedRowsPerSecond: 1,
  };
}

class FakeTerminal {
  chunks: string[] = [];
  isTTY = true;
  columns = 200;
  write(s: string): boolean {
    this.chunks.push(s);
    return true;
  }
  get text(): string {
    return this.chunks.join('');
  }
  /** What a terminal shows: each CLEAR erases the current line. */
  get screen(): string[] {
    const lines: string[] = [''];
    // biome-ignore lint/suspicious/noControlCharactersInRegex: the terminal's escape sequence is what is split on
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
    expect(querySummary('totals', progress())).to.equal(
      'totals #3 in 1.23k/s proc 56.8k/s wm 2024-05-01 09:59:50 state 741',
    );
    expect(
      querySummary(
        'out',
        progress({
          stateOperators: [],
          eventTime: { watermark: '1970-01-01T00:00:00.000Z' },
          inputRowsPerSecond: 3.25,
        }),
      ),
    ).to.equal('out #3 in 3.3/s proc 56.8k/s');
    expect(querySummary('out', progress({ stateOperators: [], eventTime: {} }))).to.equal(
      'out #3 in 1.23k/s proc 56.8k/s',
    );
  });

  it('shows a watermark in the log line only when there is one, as the UI does', () => {
    expect(progressLine('totals', progress())).to.equal(
      '[totals] batch 3: 1200 rows in, 17 out, 56789 rows/s, 21 ms (offsets 1, wal 1, read 7, state commit 4, sink 3, commit 2), watermark 2024-05-01T09:59:50.000Z, state rows 741',
    );
    for (const eventTime of [{}, { watermark: '1970-01-01T00:00:00.000Z' }])
      expect(progressLine('totals', progress({ eventTime }))).to.equal(
        '[totals] batch 3: 1200 rows in, 17 out, 56789 rows/s, 21 ms (offsets 1, wal 1, read 7, state commit 4, sink 3, commit 2), state rows 741',
      );
  });

  it('shows Kafka lag as the total over every partition of every Kafka source, labelled', () => {
    const kafka = (max: number, total: number): SourceProgress => ({
      ...source(0, 'KafkaSource[t]'),
      metrics: {
        minOffsetsBehindLatest: 0,
        maxOffsetsBehindLatest: max,
        avgOffsetsBehindLatest: total / 3,
        totalOffsetsBehindLatest: total,
      },
    });
    const summary = querySummary(
      'events',
      progress({ stateOperators: [], sources: [kafka(1000, 1500), kafka(40, 60)] }),
    );
    expect(summary).to.match(/ Kafka lag 1,560 total$/);
    expect(querySummary('events', progress({ stateOperators: [], sources: [source(0)] }))).to.not.contain('lag');
  });

  it('lists every query, those without a batch as waiting, and fits the terminal width', () => {
    const latest = new Map([['a', progress()]]);
    expect(statusLine(['a', 'b'], latest, 83_000, 200)).to.equal(
      `01:23 │ ${querySummary('a', progress())} │ b waiting for the first batch`,
    );
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
    expect(out.screen).to.deep.equal([
      '00:00 │ totals waiting for the first batch │ minutes waiting for the first batch',
    ]);
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
    const original = function (this: unknown, chunk: string): boolean {
      shown.push(chunk);
      out.chunks.push(chunk);
      return true;
    };
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

  it('mentions malformed rows in the batch line only when there are some', () => {
    expect(progressLine('totals', progress({ sources: [source(2), source(1, 'SocketSource[h:1]')] }))).to.match(
      /^\[totals\] batch 3: 1200 rows in, 17 out, .*, state rows 741, 3 malformed$/,
    );
    expect(progressLine('totals', progress({ sources: [source(0)] }))).to.not.contain('malformed');
  });

  it("the live line shows each query's malformed rows so far, not only the last batch's", () => {
    expect(querySummary('out', progress({ stateOperators: [] }), 1234)).to.equal(
      'out #3 in 1.23k/s proc 56.8k/s 1,234 malformed wm 2024-05-01 09:59:50',
    );
    const out = new FakeTerminal();
    const r = progressReporter(out, { tickMs: 0, now: () => 0 });
    r.progress('a', progress({ batchId: 0, sources: [source(2)] }));
    r.progress('a', progress({ batchId: 1, sources: [source(0)] }));
    r.progress('b', progress({ batchId: 0, sources: [source(0)] }));
    expect(out.screen).to.deep.equal([
      `00:00 │ ${querySummary('a', progress({ batchId: 1 }), 2)} │ ${querySummary('b', progress({ batchId: 0 }))}`,
    ]);
    expect(out.screen[0]).to.match(/a #1 .* 2 malformed .* │ b #0 /);
    expect(out.screen[0].match(/malformed/g)).to.have.length(1);
    r.close();
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

describe('malformed rows at the end of a run', () => {
  const batch = (...sources: SourceProgress[]) => progress({ sources });

  it('reads the policy from the input URI, case-insensitively; sources without malformed records have none', () => {
    expect(malformedPolicyOf('file:in?format=json&schema=x%20LONG')).to.deep.equal({ mode: 'PERMISSIVE' });
    expect(malformedPolicyOf('file:in?MODE=dropmalformed')).to.deep.equal({ mode: 'DROPMALFORMED' });
    expect(malformedPolicyOf('socket://h:1?format=json&badRecordsPath=/tmp/bad')).to.deep.equal({
      mode: 'PERMISSIVE',
      badRecordsPath: '/tmp/bad',
    });
    expect(malformedPolicyOf('kafka://h:1/t?valueFormat=json&mode=DROPMALFORMED')).to.deep.equal({
      mode: 'DROPMALFORMED',
    });
    expect(malformedPolicyOf('file:in?schema=x%20LONG,%20_corrupt_record%20STRING')).to.deep.equal({
      mode: 'PERMISSIVE',
      corruptColumn: '_corrupt_record',
    });
    expect(
      malformedPolicyOf(
        `file:in?columnNameOfCorruptRecord=bad&schema=${encodeURIComponent('{"x":"long","bad":"string"}')}`,
      ),
    ).to.deep.equal({ mode: 'PERMISSIVE', corruptColumn: 'bad' });
    expect(malformedPolicyOf('file:in?schema=x%20LONG,%20_corrupt_record%20LONG')).to.deep.equal({
      mode: 'PERMISSIVE',
    });
    for (const uri of [
      'rate:?rowsPerSecond=1',
      'nexmark:?events=10',
      'file:in?format=text',
      'socket://h:1',
      'kafka://h:1/t',
    ]) {
      expect(malformedPolicyOf(uri), uri).to.equal(null);
    }
  });

  it('counts a source read by several queries of the app once, and says nothing when no row was malformed', () => {
    const tally = new MalformedTally();
    tally.add('totals', batch(source(0)));
    expect(tally.summary({ payments: 'file:in' })).to.equal(null);
    tally.add('totals', batch(source(2)));
    tally.add('totals', batch(source(1)));
    tally.add('minutes', batch(source(3)));
    tally.add('minutes', batch(source(1, 'SocketSource[h:1]')));
    expect(tally.total).to.equal(4);
  });

  it('names the count, what the mode did with the rows and how to see them or stop', () => {
    const tally = new MalformedTally();
    tally.add('q', batch(source(3)));
    expect(tally.summary({ in: 'file:in?format=json' })).to.equal(
      'sluice: 3 malformed input rows kept with null for the values that did not convert ' +
        '(mode PERMISSIVE); to see them add ?badRecordsPath=DIR to the source (keeps them with the reason) or a _corrupt_record STRING column ' +
        'to the schema (keeps their text), or add ?mode=DROPMALFORMED to drop them or ?mode=FAILFAST to stop at the first',
    );
    expect(tally.summary({ in: 'file:in?schema=x%20LONG,%20_corrupt_record%20STRING' })).to.equal(
      'sluice: 3 malformed input rows kept with ' +
        'null for the values that did not convert and their text in _corrupt_record (mode PERMISSIVE); add ?badRecordsPath=DIR to the source ' +
        'to set them aside with the reason instead, ?mode=DROPMALFORMED to drop them or ?mode=FAILFAST to stop at the first',
    );
    expect(tally.summary({ in: 'file:in?mode=DROPMALFORMED' })).to.equal(
      'sluice: 3 malformed input rows dropped (mode DROPMALFORMED); ' +
        'add ?badRecordsPath=DIR to the source to keep them with the reason, or ?mode=FAILFAST to stop at the first',
    );
    expect(tally.summary({ in: 'file:in?badRecordsPath=/data/bad' })).to.equal(
      'sluice: 3 malformed input rows set aside in badRecordsPath ' +
        '/data/bad (a file per batch, with the line and the reason); add ?mode=FAILFAST to the source to stop at the first instead',
    );
    expect(tally.summary({ a: 'file:a', b: 'file:b?mode=DROPMALFORMED', c: 'rate:' })).to.equal(
      'sluice: 3 malformed input rows ' +
        '(input a: mode PERMISSIVE; input b: mode DROPMALFORMED); ?badRecordsPath=DIR keeps them with the reason, ?mode=DROPMALFORMED drops them, ' +
        '?mode=FAILFAST stops at the first',
    );
    const one = new MalformedTally();
    one.add('q', batch(source(1)));
    expect(one.summary({ in: 'file:in?mode=DROPMALFORMED' })).to.match(/^sluice: 1 malformed input row dropped/);
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
      child.stdout.on('data', (d) => {
        output += d;
      });
      child.stderr.on('data', (d) => {
        output += d;
      });
      child.on('error', reject);
      child.on('close', (code) => resolve({ code, output }));
    });
  }

  it('is a live line on a terminal and log lines in a pipe', async () => {
    const args = ['run', APP, '--source', `file:${path.join(root, 'in')}`, '--trigger', 'available-now'];
    const piped = await run([process.execPath, CLI, ...args, '--checkpoint', path.join(root, 'c1')]);
    expect(piped.code, piped.output).to.equal(0);
    expect(piped.output).to.match(
      /^\[totals\] batch 0: 1 rows in, 1 out, \d+ rows\/s, \d+ ms \([a-z ]+ \d+(, [a-z ]+ \d+)*\), state rows 1$/m,
    );
    expect(piped.output).to.not.contain(CLEAR);
    // script(1) gives the command a pseudo-terminal, as an interactive shell would.
    const cmd = [process.execPath, CLI, ...args, '--checkpoint', path.join(root, 'c2')].map((a) => `'${a}'`).join(' ');
    const tty = await run(['script', '-qefc', cmd, '/dev/null']);
    expect(tty.code, tty.output).to.equal(0);
    expect(tty.output).to.contain(CLEAR);
    expect(tty.output).to.match(/\d\d:\d\d │ totals #0 in [\d.k]+\/s proc [\d.k]+\/s state 1/);
    expect(tty.output).to.not.contain('[totals] batch');
  });

  it('counts rows whose values did not convert in the batch lines and ends with a line saying how many and how to see them', async () => {
    const input = path.join(root, 'bad');
    fs.mkdirSync(input);
    fs.writeFileSync(
      path.join(input, 'a.jsonl'),
      '{"ts":"2024-05-01T10:00:05Z","user":"ann","amount":10}\n' +
        '{"ts":"2024-05-01T10:00:06Z","user":"bob","amount":"lots"}\n{"ts":"soon","user":"cy","amount":1}\n',
    );
    const base = ['run', APP, '--trigger', 'available-now'];
    const piped = await run([
      process.execPath,
      CLI,
      ...base,
      '--source',
      `file:${input}`,
      '--checkpoint',
      path.join(root, 'c3'),
    ]);
    expect(piped.code, piped.output).to.equal(0);
    expect(piped.output).to.match(/^\[totals\] batch 0: 3 rows in, 3 out, .*, state rows 3, 2 malformed$/m);
    expect(piped.output).to.match(/^\[minutes\] batch 0: 3 rows in, .*, 2 malformed$/m);
    const last = piped.output.trim().split('\n').at(-1);
    // Both queries read the same two rows: the run lost 2 values, not 4.
    expect(last).to.match(
      /^sluice: 2 malformed input rows kept with null for the values that did not convert \(mode PERMISSIVE\); to see them add \?badRecordsPath=DIR/,
    );
    expect(last).to.contain('a _corrupt_record STRING column to the schema');

    const quiet = await run([
      process.execPath,
      CLI,
      ...base,
      '--source',
      `file:${input}?mode=DROPMALFORMED`,
      '--checkpoint',
      path.join(root, 'c4'),
      '--quiet',
    ]);
    expect(quiet.code, quiet.output).to.equal(0);
    expect(quiet.output.trim()).to.equal(
      'sluice: 2 malformed input rows dropped (mode DROPMALFORMED); add ?badRecordsPath=DIR to the source ' +
        'to keep them with the reason, or ?mode=FAILFAST to stop at the first',
    );
  });
});
