import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { type CliResult, runCli } from '../support/cli.js';

const TICKER = fileURLToPath(new URL('./apps/ticker.js', import.meta.url));

/** Exit code 2, one `sluice: error:` line matching `pattern`, no stack trace. */
function expectUsageError(res: CliResult, pattern: RegExp): void {
  expect(res.code, res.stderr).to.equal(2);
  expect(res.stderr).to.match(pattern);
  expect(
    res.stderr.split('\n').filter((l) => l.startsWith('sluice: error:')),
    res.stderr,
  ).to.have.length(1);
  expect(res.stderr).to.not.match(/^\s+at /m);
}

describe('sluice: bad usage exits 2 in every command', function () {
  this.timeout(120_000);
  let root: string;
  let input: string;
  let ckpt: string;
  before(() => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-usage-'));
    input = path.join(root, 'in');
    fs.mkdirSync(input);
    fs.writeFileSync(path.join(input, 'a.jsonl'), '{"account":"acct-1","amount":5}\n');
    ckpt = path.join(root, 'ckpt');
  });
  after(() => fs.rmSync(root, { recursive: true, force: true }));

  /** `sluice run bank-account` over the test input, which would run and exit 0 without the mistake. */
  const bank = (...args: string[]): Promise<CliResult> =>
    runCli(['run', 'bank-account', '--source', `file:${input}`, '--checkpoint', ckpt, '--quiet', ...args]);

  it('the command runs as given when nothing is wrong (the baseline of the cases below)', async () => {
    const res = await bank('--trigger', 'available-now', '--sink', 'movements=noop:', '--sink', 'accounts=noop:');
    expect(res.code, res.stderr).to.equal(0);
  });

  describe('unknown flags and names', () => {
    it('an unknown app name', async () => {
      expectUsageError(
        await runCli(['run', 'bank-acount']),
        /^sluice: error: no app named 'bank-acount' \(run one of:/m,
      );
    });

    it('an unknown app option, and an unknown flag of gen, checkpoint and apps', async () => {
      expectUsageError(
        await bank('--colour', 'red'),
        /app bank-account has no option --colour \(it takes no options\)/,
      );
      expectUsageError(
        await runCli(['gen', 'bank', '--to', `file:${path.join(root, 'g.jsonl')}`, '--colour', 'red']),
        /Unknown argument: colour/,
      );
      expectUsageError(await runCli(['checkpoint', ckpt, '--colour', 'red']), /Unknown arguments?: colour/);
      expectUsageError(await runCli(['apps', '--colour']), /Unknown argument: colour/);
    });

    it('an unknown gen dataset or target scheme, an unknown source or sink scheme', async () => {
      expectUsageError(
        await runCli(['gen', 'bnak', '--to', `file:${path.join(root, 'g.jsonl')}`]),
        /unknown dataset 'bnak' \(accepted: clickstream, transactions, deposits, bank, nexmark\)/,
      );
      expectUsageError(await runCli(['gen', 'bank', '--to', 'ftp:x']), /unknown target scheme 'ftp' in 'ftp:x'/);
      expectUsageError(await bank('--sink', 'movements=blob:x'), /unknown sink format 'blob'/);
      expectUsageError(
        await runCli(['run', 'bank-account', '--source', 'ftp:x', '--checkpoint', ckpt]),
        /unknown source type 'ftp'/,
      );
    });
  });

  describe('a flag without its value', () => {
    it('--trigger with no value is refused instead of running continuously', async () => {
      const fresh = path.join(root, 'ckpt-trigger');
      const res = await runCli([
        'run',
        'bank-account',
        '--source',
        `file:${input}`,
        '--checkpoint',
        fresh,
        '--trigger',
      ]);
      expectUsageError(res, /^sluice: error: Not enough arguments following: trigger/m);
      expect(res.stderr).to.not.contain('running bank-account');
      expect(fs.existsSync(fresh), 'nothing ran, so no checkpoint was made').to.equal(false);
    });

    it('run, gen and checkpoint flags and app options that take a value', async () => {
      for (const flag of ['--source', '--sink', '--checkpoint', '--progress-log', '--ui-host', '--threads']) {
        expectUsageError(
          await runCli(['run', 'bank-account', '--trigger', 'once', flag]),
          new RegExp(`Not enough arguments following: ${flag.slice(2)}`),
        );
      }
      expectUsageError(
        await runCli(['run', 'deposit-sessions', '--session-timeout']),
        /Not enough arguments following: session-timeout/,
      );
      expectUsageError(
        await runCli(['gen', 'bank', '--to', `file:${path.join(root, 'g.jsonl')}`, '--seed']),
        /Not enough arguments following: seed/,
      );
      expectUsageError(await runCli(['checkpoint', ckpt, '--state']), /Not enough arguments following: state/);
    });
  });

  describe('bad flag values', () => {
    it("sluice run's own flags, quoting the value given", async () => {
      expectUsageError(await bank('--trigger', 'soon'), /--trigger 'soon' is not an interval, once or available-now/);
      expectUsageError(await bank('--threads', 'two'), /--threads must be an integer from 0 to 64, got two/);
      expectUsageError(await bank('--state-partitions', '0'), /--state-partitions must be an integer from 1 to 4096/);
      expectUsageError(await bank('--ui', '70000'), /--ui must be a port number from 0 to 65535, got 70000/);
      expectUsageError(
        await bank('--checkpoint', path.join(root, 'other')),
        /--checkpoint is given 2 times .* \(give it once\)/,
      );
    });

    it('app option values', async () => {
      expectUsageError(
        await runCli(['run', 'deposit-sessions', '--session-timeout', 'soon']),
        /cannot read --session-timeout 'soon' as a duration/,
      );
      expectUsageError(
        await runCli(['run', 'deposit-sessions', '--mode', 'LENIENT']),
        /--mode must be one of PERMISSIVE, DROPMALFORMED, FAILFAST, got 'LENIENT'/,
      );
      expectUsageError(await runCli(['run', TICKER, '--buckets', 'many']), /--buckets must be a number, got 'many'/);
    });

    it('source and sink options in URIs, and an output the app does not have', async () => {
      expectUsageError(
        await runCli([
          'run',
          'bank-account',
          '--source',
          `file:${input}?maxFilesPerTrigger=lots`,
          '--checkpoint',
          ckpt,
        ]),
        /option maxFilesPerTrigger of the file source must be a positive integer, found 'lots'/,
      );
      expectUsageError(await bank('--sink', 'accounts=console:?numRows=x'), /option 'numRows' of the console sink/);
      expectUsageError(await bank('--sink', 'ledger=noop:'), /the app has no output named 'ledger'/);
    });

    it('gen and checkpoint values', async () => {
      const to = `file:${path.join(root, 'g.jsonl')}`;
      expectUsageError(await runCli(['gen', 'bank', '--to', to, '--count', 'abc']), /invalid value 'abc' for --count/);
      expectUsageError(await runCli(['gen', 'bank', '--to', to, '--rate', '-1']), /invalid value '-1' for --rate/);
      expectUsageError(
        await runCli(['gen', 'bank', '--to', to, '--users', '5']),
        /--users does not apply to dataset 'bank'/,
      );
      expect(fs.existsSync(path.join(root, 'g.jsonl')), 'gen wrote nothing').to.equal(false);
      expectUsageError(
        await runCli(['checkpoint', ckpt, '--state', '1', '--limit', 'x']),
        /--limit must be a whole number of at least 0, got x/,
      );
    });
  });
});

describe('sluice run <app> --help', function () {
  this.timeout(60_000);

  it("lists the app's own options with their defaults and choices, beside sluice run's", async () => {
    const res = await runCli(['run', 'deposit-sessions', '--help']);
    expect(res.code, res.stderr).to.equal(0);
    const out = res.stdout.replace(/\s+/g, ' ');
    expect(out).to.contain('Options of deposit-sessions:');
    expect(out).to.match(/--session-timeout close a session .*\(a duration; default 30m\)/);
    expect(out).to.match(
      /--mode malformed lines: .*\(one of PERMISSIVE, DROPMALFORMED, FAILFAST; default PERMISSIVE\)/,
    );
    expect(out).to.contain('--checkpoint');
  });

  it("lists an app module's options, and none for an app without options", async () => {
    const ticker = await runCli(['run', TICKER, '--help']);
    expect(ticker.code, ticker.stderr).to.equal(0);
    expect(ticker.stdout).to.contain('Options of ticker:');
    expect(ticker.stdout.replace(/\s+/g, ' ')).to.match(
      /--buckets number of buckets \(keys of the state\) \(a number; default 8\)/,
    );
    const bank = await runCli(['run', 'bank-account', '--help']);
    expect(bank.code, bank.stderr).to.equal(0);
    expect(bank.stdout).to.not.contain('Options of bank-account');
  });
});
