import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { Writable } from 'node:stream';
import { expect } from 'chai';
import yargs from 'yargs';
import { genPlan, makeGenCommand, parseCount, runGen } from '../../lib/cli/gen-command.js';
import { SluiceError } from '../../lib/errors.js';
import { clickstream } from '../../lib/gen/clickstream.js';
import { deposits } from '../../lib/gen/deposits.js';
import { nexmark } from '../../lib/gen/nexmark.js';

interface CliRun {
  error?: unknown;
  output: string;
  stderr: string;
}

/** Runs `sluice <args>` through yargs with the gen command registered, as the CLI main does. */
async function cli(args: string[]): Promise<CliRun> {
  let stderr = '';
  const sink = new Writable({
    write(chunk, _enc, cb) {
      stderr += String(chunk);
      cb();
    },
  });
  let output = '';
  let error: unknown;
  try {
    await yargs()
      .scriptName('sluice')
      .command(makeGenCommand({ stderr: sink, signal: new AbortController().signal }))
      .demandCommand(1)
      .strict()
      .wrap(null)
      .exitProcess(false)
      .fail((msg, err) => {
        throw err ?? new Error(msg);
      })
      .parseAsync(args, {}, (_err, _argv, out) => {
        output = out;
      });
  } catch (err) {
    error = err;
  }
  return { error, output, stderr };
}

function lines(file: string): string[] {
  return fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l !== '');
}

describe('sluice gen (CLI)', () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-'));
  });
  afterEach(() => {
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('writes what the library generator gives for the same options', async () => {
    const file = path.join(dir, 'clicks.jsonl');
    const run = await cli([
      'gen',
      'clickstream',
      '--count',
      '500',
      '--seed',
      '9',
      '--users',
      '40',
      '--spacing',
      '2s',
      '--max-out-of-orderness',
      '1m',
      '--late-fraction',
      '0.05',
      '--late-by',
      '30s..2m',
      '--mark-late',
      '--to',
      `file:${file}`,
    ]);
    expect(run.error).to.equal(undefined);
    const expected = [
      ...clickstream({
        count: 500,
        seed: 9,
        users: 40,
        meanSpacingMs: 2000,
        maxOutOfOrdernessMs: 60_000,
        lateFraction: 0.05,
        lateByMinMs: 30_000,
        lateByMaxMs: 120_000,
        markLate: true,
      }),
    ].map((e) => JSON.stringify(e));
    expect(lines(file)).to.deep.equal(expected);
    expect(run.stderr).to.match(/wrote 500 clickstream records to file .*clicks\.jsonl/);

    const nx = path.join(dir, 'nx.jsonl');
    expect(
      (
        await cli([
          'gen',
          'nexmark',
          '--count',
          '120',
          '--seed',
          '4',
          '--event-rate',
          '1000',
          '--start',
          '2020-01-01T00:00:00Z',
          '--to',
          `file:${nx}`,
        ])
      ).error,
    ).to.equal(undefined);
    expect(lines(nx)).to.deep.equal(
      [...nexmark({ count: 120, seed: 4, firstEventRate: 1000, baseTime: Date.UTC(2020, 0, 1) })].map((e) =>
        JSON.stringify(e),
      ),
    );
  });

  it('writes text datasets to part files with the .txt extension', async () => {
    const run = await cli(['gen', 'deposits', '--count', '250', '--rows-per-file', '100', '--to', `file:${dir}/dep/`]);
    expect(run.error).to.equal(undefined);
    expect(fs.readdirSync(path.join(dir, 'dep')).sort()).to.deep.equal([
      'part-0000.txt',
      'part-0001.txt',
      'part-0002.txt',
    ]);
    const all = ['part-0000.txt', 'part-0001.txt', 'part-0002.txt'].flatMap((f) => lines(path.join(dir, 'dep', f)));
    expect(all).to.deep.equal([...deposits({ count: 250, seed: 1 })]);
  });

  it('serves a socket target to a connecting client', async () => {
    const probe = net.createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', () => resolve()));
    const port = (probe.address() as net.AddressInfo).port;
    await new Promise<void>((resolve) => probe.close(() => resolve()));
    const run = cli(['gen', 'deposits', '--count', '40', '--rate', '2000', '--to', `socket://127.0.0.1:${port}`]);
    let received = '';
    await new Promise<void>((resolve, reject) => {
      const tryConnect = (attempt: number): void => {
        const s = net.connect(port, '127.0.0.1');
        s.setEncoding('utf8');
        s.on('data', (d: string) => {
          received += d;
        });
        s.on('end', () => resolve());
        s.on('error', (err) => (attempt < 50 ? setTimeout(() => tryConnect(attempt + 1), 20) : reject(err)));
      };
      tryConnect(0);
    });
    const result = await run;
    expect(result.error).to.equal(undefined);
    expect(result.stderr).to.contain(`listening on 127.0.0.1:${port}`);
    expect(received.trim().split('\n')).to.deep.equal([...deposits({ count: 40, seed: 1 })]);
  });

  it('names an unknown dataset and lists the accepted ones', async () => {
    const { error } = await cli(['gen', 'clikstream']);
    expect(error).to.be.instanceOf(SluiceError);
    expect((error as SluiceError).message).to.equal("unknown dataset 'clikstream'");
    expect((error as SluiceError).hint).to.equal('accepted: clickstream, transactions, deposits, bank, nexmark');
  });

  it('names bad flag values and what they accept', async () => {
    const cases: [string[], RegExp, RegExp][] = [
      [['--count', 'lots'], /invalid value 'lots' for --count/, /10k/],
      [['--max-out-of-orderness', '5 parsecs'], /invalid value '5 parsecs' for --max-out-of-orderness/, /5m/],
      [['--late-fraction', '1.5'], /invalid value '1.5' for --late-fraction/, /between 0 and 1/],
      [['--late-by', '5m..1m'], /invalid value '5m..1m' for --late-by/, /MIN\.\.MAX/],
      [['--timestamp-format', 'unix'], /invalid value 'unix' for --timestamp-format/, /iso, epoch-ms/],
      [['--start', 'yesterday'], /invalid value 'yesterday' for --start/, /ISO-8601/],
      [['--users', '0'], /invalid value '0' for --users/, /positive integer/],
      [['--rate', '-3'], /invalid value '-3' for --rate/, /non-negative/],
    ];
    for (const [flags, message, hint] of cases) {
      const { error } = await cli(['gen', 'clickstream', ...flags, '--to', `file:${dir}/x.jsonl`]);
      expect(error, flags.join(' ')).to.be.instanceOf(SluiceError);
      expect((error as SluiceError).message).to.match(message);
      expect((error as SluiceError).hint).to.match(hint);
    }
    expect(fs.readdirSync(dir)).to.deep.equal([]);
  });

  it('rejects flags that do not apply to the dataset, saying where they apply', async () => {
    const { error } = await cli(['gen', 'deposits', '--late-fraction', '0.1']);
    expect(error).to.be.instanceOf(SluiceError);
    expect((error as SluiceError).message).to.equal("--late-fraction does not apply to dataset 'deposits'");
    expect((error as SluiceError).hint).to.equal(
      '--late-fraction applies to clickstream, transactions; deposits takes --sessions',
    );
    const bad = await cli(['gen', 'bank', '--users', '5']);
    expect((bad.error as SluiceError).hint).to.contain('bank takes --accounts');
  });

  it('rejects unknown options and a missing dataset', async () => {
    expect(String((await cli(['gen', 'bank', '--cuont', '3'])).error)).to.contain('Unknown argument: cuont');
    expect(String((await cli(['gen'])).error)).to.contain('Not enough non-option arguments');
    expect(String((await cli(['gen', 'bank', '--to', 'ftp://localhost/ops'])).error)).to.contain(
      "unknown target scheme 'ftp'",
    );
  });

  it('documents every dataset and shows examples in --help', async () => {
    const { output } = await cli(['gen', '--help']);
    for (const name of ['clickstream', 'transactions', 'deposits', 'bank', 'nexmark']) expect(output).to.contain(name);
    expect(output).to.contain('Examples:');
    expect(output).to.contain('sluice gen deposits --to socket://localhost:9999 --rate 10');
    for (const flag of ['--to', '--count', '--rate', '--seed', '--max-out-of-orderness', '--late-fraction'])
      expect(output).to.contain(flag);
  });

  it('draws a progress bar on a terminal and clears it before the summary', async () => {
    let text = '';
    const tty = Object.assign(
      new Writable({
        write(chunk, _enc, cb) {
          text += String(chunk);
          cb();
        },
      }),
      { isTTY: true, columns: 100 },
    );
    const summary = await runGen(
      { dataset: 'bank', count: '70', rate: '100', to: `file:${dir}/bank.jsonl` },
      { stderr: tty as unknown as NodeJS.WriteStream, signal: new AbortController().signal },
    );
    expect(summary.written).to.equal(70);
    expect(text).to.match(/\rgen bank \[#+-*\] +\d+% \d+\/70 /);
    // biome-ignore lint/suspicious/noControlCharactersInRegex: the terminal's erase-line sequence is part of the output
    expect(text).to.match(/\r\x1b\[Ksluice gen: wrote 70 bank records/);
  });

  it('parses counts and durations as documented', () => {
    expect(parseCount('10_000')).to.equal(10_000);
    expect(parseCount('1e6')).to.equal(1_000_000);
    expect(parseCount('10k')).to.equal(10_000);
    expect(parseCount('2M')).to.equal(2_000_000);
    expect(parseCount('inf')).to.equal(Infinity);
    expect(() => parseCount('1.5')).to.throw(SluiceError);
    const spacing = (raw: string) => genPlan({ dataset: 'clickstream', to: '-', spacing: raw }).params.meanSpacingMs;
    expect(spacing('250')).to.equal(250);
    expect(spacing('1.5s')).to.equal(1500);
    expect(spacing('5m')).to.equal(300_000);
    expect(spacing('5 minutes')).to.equal(300_000);
    expect(spacing('2h')).to.equal(7_200_000);
    expect(spacing('1h30m')).to.equal(5_400_000);
    expect(() => spacing('-1s')).to.throw(SluiceError, /invalid value '-1s' for --spacing/);
  });
});
