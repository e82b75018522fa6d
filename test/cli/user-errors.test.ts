import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { pathError, SluiceError } from '../../lib/errors.js';
import { CLI, type CliResult, runCli } from '../support/cli.js';
import { RunningCli } from './running-cli.js';

/** The test apps of run.test.ts: user-totals has outputs totals and minutes, ticker has buckets and seconds. */
const USER_TOTALS = fileURLToPath(new URL('./apps/user-totals.js', import.meta.url));
const TICKER = fileURLToPath(new URL('./apps/ticker.js', import.meta.url));
const DEFINE_APP = new URL('../../lib/app/app.js', import.meta.url).href;

/** Exit code `code`, exactly one `sluice: error:` line matching `pattern`, and no stack trace. */
function expectOneLineError(res: CliResult, code: number, pattern: RegExp): void {
  expect(res.code, res.stderr).to.equal(code);
  expect(res.stderr).to.match(pattern);
  expect(
    res.stderr.split('\n').filter((l) => l.startsWith('sluice: error:')),
    res.stderr,
  ).to.have.length(1);
  expect(res.stderr).to.not.match(/^\s+at /m);
  expect(res.stderr).to.not.contain('internal error');
}

describe('sluice: user mistakes get a one-line error naming the fix', function () {
  this.timeout(90_000);
  let root: string;
  let input: string;
  const running: RunningCli[] = [];
  beforeEach(() => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-'));
    input = path.join(root, 'in');
    fs.mkdirSync(input);
    fs.writeFileSync(path.join(input, 'a.jsonl'), '{"ts":"2024-05-01T10:00:05Z","user":"ann","amount":10}\n');
  });
  afterEach(async () => {
    await Promise.all(running.splice(0).map((r) => r.dispose()));
    fs.rmSync(root, { recursive: true, force: true });
  });

  const userTotals = (...args: string[]): Promise<CliResult> =>
    runCli(['run', USER_TOTALS, '--source', `file:${input}`, '--trigger', 'available-now', '--quiet', ...args]);

  describe('app modules', () => {
    function appModule(name: string, text: string): string {
      const file = path.join(root, name);
      fs.writeFileSync(file, text);
      return file;
    }

    it('a directory instead of the module', async () => {
      expectOneLineError(
        await runCli(['run', root]),
        2,
        /app module .* is a directory \(give the compiled \.js file of the app/,
      );
    });

    it('a module that does not parse, or is not JavaScript', async () => {
      const file = appModule('broken.mjs', 'export default defineApp({ name: "x",\n');
      expectOneLineError(
        await runCli(['run', file]),
        1,
        new RegExp(
          `app module .*broken\\.mjs failed to load: SyntaxError: .*\`node --check ${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\` shows where`,
        ),
      );
    });

    it('a module whose top-level code throws, or that imports a missing package', async () => {
      const throws = appModule('throws.mjs', 'const config = undefined;\nexport default config.app;\n');
      expectOneLineError(
        await runCli(['run', throws]),
        1,
        /app module .*throws\.mjs failed to load: TypeError: Cannot read properties of undefined \(reading 'app'\) \(at .*throws\.mjs:2:\d+\) \(fix the module/,
      );
      const imports = appModule('imports.mjs', 'import x from "no-such-package-sluice";\nexport default x;\n');
      expectOneLineError(
        await runCli(['run', imports]),
        1,
        /failed to load: Cannot find package 'no-such-package-sluice'.*\(install what it imports, or fix the import path\)/,
      );
    });

    it('an app whose build() throws names the app, the error and where in the module', async () => {
      const file = appModule(
        'build-throws.mjs',
        `import { defineApp } from '${DEFINE_APP}';
export default defineApp({
  name: 'build-throws', description: 'test', inputs: {}, outputs: { out: { default: 'noop:', outputMode: 'append' } },
  build: ({ options }) => { throw new Error('threshold ' + options.min + ' is not configured'); },
});
`,
      );
      expectOneLineError(
        await runCli(['run', file, '--checkpoint', path.join(root, 'ckpt')]),
        1,
        /^sluice: error: app build-throws failed while defining its queries: threshold undefined is not configured \(at .*build-throws\.mjs:4:\d+\) \(fix build\(\)/m,
      );
    });
  });

  describe('flags', () => {
    it('--threads, --state-partitions and --ui quote the value given, not NaN (bad usage)', async () => {
      expectOneLineError(
        await userTotals('--threads', 'two'),
        2,
        /--threads must be an integer from 0 to 64, got two \(use 0 to run in-process/,
      );
      expectOneLineError(
        await userTotals('--state-partitions', 'x'),
        2,
        /--state-partitions must be an integer from 1 to 4096, got x/,
      );
      expectOneLineError(await userTotals('--ui', 'auto'), 2, /--ui must be a port number from 0 to 65535, got auto/);
    });

    it('a flag without its value is bad usage (exit 2), not an internal error', async () => {
      const res = await userTotals('--threads');
      expect(res.code, res.stderr).to.equal(2);
      expect(res.stderr).to.match(/^sluice: error: Not enough arguments following: threads/m);
      expect(res.stderr).to.not.match(/^\s+at /m);
    });

    it('a source URI error quotes the URI as given, without the format the app adds', async () => {
      const res = await runCli(['run', USER_TOTALS, '--source', 'file:', '--checkpoint', path.join(root, 'ckpt')]);
      expectOneLineError(res, 2, /cannot read source 'file:': the directory is missing/);
    });

    it('sluice gen refuses an unknown option instead of ignoring it', async () => {
      const res = await runCli([
        'gen',
        'clickstream',
        '--count',
        '5',
        '--user',
        '3',
        '--to',
        `file:${path.join(root, 'clicks.jsonl')}`,
      ]);
      expect(res.code, res.stderr).to.equal(2);
      expect(res.stderr).to.match(/^sluice: error: Unknown argument: user/m);
      expect(fs.existsSync(path.join(root, 'clicks.jsonl'))).to.equal(false);
    });

    it('sluice gen says it retries while a Kafka broker cannot be reached', async () => {
      const r = new RunningCli(['gen', 'clickstream', '--count', '5', '--to', 'kafka://127.0.0.1:1/clicks']);
      running.push(r);
      await r.waitForStderr(
        /sluice gen: Kafka connect to 127\.0\.0\.1:1 failed \(.*ECONNREFUSED.*\); retrying in [\d.]+ s \(attempt 2\)/,
        10_000,
      );
    });
  });

  it('sluice run says it retries while the Kafka broker of a source or a sink cannot be reached', async () => {
    const source = new RunningCli([
      'run',
      USER_TOTALS,
      '--source',
      'kafka://127.0.0.1:1/payments',
      '--checkpoint',
      path.join(root, 'ck-source'),
    ]);
    running.push(source);
    await source.waitForStderr(
      /^sluice: source Kafka connect to 127\.0\.0\.1:1 failed \(.*ECONNREFUSED.*\); retrying in [\d.]+ s \(attempt 2\)/m,
      10_000,
    );
    const sink = new RunningCli([
      'run',
      USER_TOTALS,
      '--source',
      `file:${input}`,
      '--sink',
      'totals=kafka://127.0.0.1:1/totals',
      '--checkpoint',
      path.join(root, 'ck-sink'),
    ]);
    running.push(sink);
    await sink.waitForStderr(
      /^sluice: sink Kafka connect to 127\.0\.0\.1:1 failed \(.*ECONNREFUSED.*\); retrying in [\d.]+ s \(attempt 2\)/m,
      10_000,
    );
  });

  it('sluice run waits for a socket server started after it (the generator and the app started together)', async () => {
    const probe = net.createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const port = (probe.address() as net.AddressInfo).port;
    await new Promise<void>((resolve) => probe.close(() => resolve()));
    const app = new RunningCli([
      'run',
      'deposit-sessions',
      '--source',
      `socket://127.0.0.1:${port}`,
      '--sink',
      'noop:',
      '--checkpoint',
      path.join(root, 'ckpt'),
      '--trigger',
      '500ms',
    ]);
    running.push(app);
    await app.waitForStderr(
      new RegExp(
        `sluice: socket source 127\\.0\\.0\\.1:${port}: cannot connect \\(ECONNREFUSED\\); retrying in \\d+ ms \\(attempt 2; waits up to 30 s for the server, option waitForServer\\)`,
      ),
      20_000,
    );
    const gen = new RunningCli(['gen', 'deposits', '--count', '200', '--to', `socket://127.0.0.1:${port}`]);
    running.push(gen);
    await app.waitForStderr(/socket source .*: connected after \d+ attempts/, 30_000);
    await app.waitForStderr(/\[sessions\] batch \d+: [1-9]/, 30_000);
    app.kill('SIGINT');
    expect((await app.exited).code, app.stderr).to.equal(0);
  });

  it('a run that reads nothing says so instead of ending without a word', async () => {
    const ckpt = path.join(root, 'ckpt');
    const run = (source: string) =>
      runCli(['run', USER_TOTALS, '--source', `file:${source}`, '--trigger', 'available-now', '--checkpoint', ckpt]);
    const first = await run(input);
    expect(first.code, first.stderr).to.equal(0);
    expect(first.stderr).to.not.contain('no new input');
    const again = await run(input);
    expect(again.code, again.stderr).to.equal(0);
    expect(again.stderr).to.contain(
      `sluice: no new input: 0 rows read (check --source; the checkpoint ${ckpt} remembers what earlier runs read)`,
    );
  });

  describe('paths that cannot be written', () => {
    it('a progress log in a directory that does not exist', async () => {
      const log = path.join(root, 'logs', 'progress.jsonl');
      expectOneLineError(
        await userTotals('--checkpoint', path.join(root, 'ckpt'), '--progress-log', log),
        1,
        new RegExp(
          `cannot open the progress log ${log}: a parent directory does not exist \\(${path.join(root, 'logs')}\\) .*\\(create the directory first`,
        ),
      );
    });

    it('a file sink whose directory is a file', async () => {
      const file = path.join(root, 'taken');
      fs.writeFileSync(file, 'x');
      expectOneLineError(
        await userTotals('--checkpoint', path.join(root, 'ckpt'), '--sink', `totals=file:${file}`),
        1,
        new RegExp(
          `cannot write to the output directory ${file}: a file is in the way where a directory is needed .*\\(give a directory path`,
        ),
      );
    });

    it('a checkpoint below a file names the file in the way', async () => {
      const file = path.join(root, 'taken');
      fs.writeFileSync(file, 'x');
      expectOneLineError(
        await userTotals('--checkpoint', path.join(file, 'ckpt')),
        1,
        new RegExp(
          `cannot create the checkpoint directory .*: a file is in the way where a directory is needed \\(ENOTDIR on ${file}\\)`,
        ),
      );
    });

    it('a sink, checkpoint or progress log in /proc fails at once naming the file system, instead of spinning', async function () {
      if (!fs.existsSync('/proc/self')) this.skip();
      const started = Date.now();
      expectOneLineError(
        await userTotals('--checkpoint', path.join(root, 'ckpt'), '--sink', 'totals=file:/proc/sluice-out/x'),
        1,
        /cannot write to the output directory \/proc\/sluice-out\/x: the file system of \/proc does not allow creating files or directories in it \(ENOENT on \/proc\/sluice-out\)/,
      );
      expectOneLineError(
        await userTotals('--checkpoint', '/proc/sluice-ckpt'),
        1,
        /cannot create the checkpoint directory \/proc\/sluice-ckpt: the file system of \/proc does not allow/,
      );
      expectOneLineError(
        await userTotals('--checkpoint', path.join(root, 'ckpt'), '--progress-log', '/proc/sluice.jsonl'),
        1,
        /cannot open the progress log \/proc\/sluice\.jsonl: the file system of \/proc does not allow/,
      );
      // Three runs, each mostly Node's start-up: before, the first never ended.
      expect(Date.now() - started).to.be.below(45_000);
    });

    it('a path on a read-only file system says so, for the sink, the checkpoint and the progress log', async function () {
      const ro = path.join(root, 'ro');
      fs.mkdirSync(ro);
      // Mounting needs root; elsewhere the mapping is covered by the pathError test below.
      if (spawnSync('mount', ['-t', 'tmpfs', '-o', 'ro,size=1m', 'tmpfs', ro]).status !== 0) this.skip();
      try {
        expectOneLineError(
          await userTotals('--checkpoint', path.join(root, 'ckpt'), '--sink', `totals=file:${ro}/out`),
          1,
          new RegExp(
            `cannot write to the output directory ${ro}/out: the file system is read-only \\(EROFS on ${ro}/out\\)`,
          ),
        );
        expectOneLineError(
          await userTotals('--checkpoint', `${ro}/ckpt`),
          1,
          new RegExp(`cannot create the checkpoint directory ${ro}/ckpt: the file system is read-only`),
        );
        expectOneLineError(
          await userTotals('--checkpoint', path.join(root, 'ckpt'), '--progress-log', `${ro}/p.jsonl`),
          1,
          new RegExp(`cannot open the progress log ${ro}/p\\.jsonl: the file system is read-only`),
        );
      } finally {
        spawnSync('umount', [ro]);
      }
    });

    it('a directory without write permission says permission denied', async () => {
      const locked = path.join(root, 'locked');
      fs.mkdirSync(locked, { mode: 0o555 });
      fs.chmodSync(root, 0o777);
      fs.chmodSync(input, 0o777);
      // root may write anywhere: run the command as nobody then.
      const asNobody = process.getuid?.() === 0 ? ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups'] : [];
      const res = spawnSync(
        asNobody[0] ?? process.execPath,
        [
          ...asNobody.slice(1),
          ...(asNobody.length > 0 ? [process.execPath] : []),
          CLI,
          'run',
          USER_TOTALS,
          '--source',
          `file:${input}`,
          '--trigger',
          'available-now',
          '--quiet',
          '--checkpoint',
          path.join(locked, 'ckpt'),
        ],
        { encoding: 'utf8', timeout: 60_000 },
      );
      expectOneLineError(
        { code: res.status, signal: res.signal, stdout: res.stdout, stderr: res.stderr },
        1,
        new RegExp(
          `cannot create the checkpoint directory ${locked}/ckpt: permission denied \\(EACCES on ${locked}/ckpt\\)`,
        ),
      );
    });

    it('a badRecordsPath that is a file', async () => {
      fs.appendFileSync(path.join(input, 'a.jsonl'), '{not json\n');
      const file = path.join(root, 'taken');
      fs.writeFileSync(file, 'x');
      const res = await runCli([
        'run',
        USER_TOTALS,
        '--source',
        `file:${input}?badRecordsPath=${file}`,
        '--trigger',
        'available-now',
        '--quiet',
        '--checkpoint',
        path.join(root, 'ckpt'),
      ]);
      expectOneLineError(
        res,
        1,
        new RegExp(`cannot write rejected records to badRecordsPath ${file}: a file is in the way`),
      );
    });
  });

  describe('apps with several outputs', () => {
    it('a mistake in one output stops the run before any output writes a batch', async () => {
      const out = path.join(root, 'out');
      const ckpt = path.join(root, 'ckpt');
      // The totals output reads user and amount; the minutes output also needs ts, which this schema lacks.
      const res = await runCli([
        'run',
        USER_TOTALS,
        '--source',
        `file:${input}?schema=user STRING, amount DOUBLE`,
        '--sink',
        `totals=file:${path.join(out, 'totals')}`,
        '--checkpoint',
        ckpt,
        '--trigger',
        'available-now',
        '--quiet',
      ]);
      expectOneLineError(res, 1, /withWatermark column 'ts' does not exist/);
      const written = fs.existsSync(out)
        ? fs
            .readdirSync(out, { recursive: true })
            .map(String)
            .filter((f) => f.endsWith('.jsonl'))
        : [];
      expect(written).to.deep.equal([]);
      expect(fs.existsSync(path.join(ckpt, 'totals', 'offsets', '0'))).to.equal(false);
    });
  });

  describe('a damaged checkpoint of the second query of an app', () => {
    const ckpt = (): string => path.join(root, 'ckpt');
    const run = (): Promise<CliResult> =>
      runCli([
        'run',
        USER_TOTALS,
        '--source',
        `file:${input}`,
        '--checkpoint',
        ckpt(),
        '--trigger',
        'available-now',
        '--quiet',
      ]);

    /** Runs batch 0 of both queries, damages `file` of the minutes query, adds input and runs again. */
    async function rerunWithDamaged(file: (minutes: string) => string): Promise<CliResult> {
      const first = await run();
      expect(first.code, first.stderr).to.equal(0);
      expect(fs.existsSync(path.join(ckpt(), 'totals', 'commits', '0'))).to.equal(true);
      const damaged = file(path.join(ckpt(), 'minutes'));
      fs.writeFileSync(damaged, fs.readFileSync(damaged).subarray(0, -3));
      fs.writeFileSync(path.join(input, 'b.jsonl'), '{"ts":"2024-05-01T10:01:05Z","user":"bob","amount":3}\n');
      return run();
    }

    it('a torn latest commit file stops the run before the first query runs a batch', async () => {
      let latest = '';
      const res = await rerunWithDamaged((minutes) => {
        latest = String(Math.max(...fs.readdirSync(path.join(minutes, 'commits')).map(Number)));
        return path.join(minutes, 'commits', latest);
      });
      expectOneLineError(res, 1, new RegExp(`checkpoint file .*minutes/commits/${latest} is corrupt`));
      expect(fs.existsSync(path.join(ckpt(), 'totals', 'offsets', '1')), 'totals planned no batch').to.equal(false);
    });

    it('a torn state file stops the run before the first query runs a batch', async () => {
      const res = await rerunWithDamaged((minutes) => {
        const op = fs.readdirSync(path.join(minutes, 'state'))[0];
        return path.join(minutes, 'state', op, '0', '1.delta');
      });
      expectOneLineError(res, 1, /checkpoint file .*minutes\/state\/\d+\/0\/1\.delta is corrupt/);
      expect(fs.existsSync(path.join(ckpt(), 'totals', 'offsets', '1')), 'totals planned no batch').to.equal(false);
    });
  });

  describe('checkpoints of another app', () => {
    it('refuses the checkpoint directory of another app, and one query of it', async () => {
      const ckpt = path.join(root, 'ckpt');
      expect((await userTotals('--checkpoint', ckpt)).code).to.equal(0);
      const ticker = (dir: string) =>
        runCli([
          'run',
          TICKER,
          '--source',
          'rate:?rowsPerSecond=10',
          '--trigger',
          'once',
          '--quiet',
          '--checkpoint',
          dir,
        ]);
      expectOneLineError(
        await ticker(ckpt),
        1,
        new RegExp(
          `^sluice: error: checkpoint ${ckpt} belongs to app user-totals, not ticker \\(give ticker its own --checkpoint directory`,
          'm',
        ),
      );
      expectOneLineError(
        await ticker(path.join(ckpt, 'totals')),
        1,
        /is the checkpoint of one query \(it has a metadata file\), not of an app/,
      );
      expect(fs.readdirSync(ckpt).sort()).to.deep.equal(['app', 'minutes', 'totals']);
      expect((await userTotals('--checkpoint', ckpt)).code, 'the app itself still restarts from it').to.equal(0);
    });

    it('refuses a checkpoint made before the app was recorded when it holds queries the app does not have', async () => {
      const ckpt = path.join(root, 'ckpt');
      expect((await userTotals('--checkpoint', ckpt)).code).to.equal(0);
      fs.rmSync(path.join(ckpt, 'app'));
      const res = await runCli([
        'run',
        TICKER,
        '--source',
        'rate:?rowsPerSecond=10',
        '--trigger',
        'once',
        '--quiet',
        '--checkpoint',
        ckpt,
      ]);
      expectOneLineError(
        res,
        1,
        /holds queries minutes, totals, which are not outputs of app ticker \(its outputs: buckets, seconds\)/,
      );
      expect((await userTotals('--checkpoint', ckpt)).code, 'but the app that made it is accepted').to.equal(0);
      expect(fs.existsSync(path.join(ckpt, 'app'))).to.equal(true);
    });
  });
});

describe('pathError', () => {
  const errno = (code: string): NodeJS.ErrnoException =>
    Object.assign(new Error(`${code}: oops`), { code, path: '/data/out' });

  it('names the path, what is wrong and the fix for permission, in-the-way, missing-parent and full-disk errors', () => {
    const cases: Array<[string, string, RegExp]> = [
      [
        'EACCES',
        'PATH_NOT_WRITABLE',
        /^cannot write the output \/data\/out: permission denied \(EACCES on \/data\/out\)$/,
      ],
      ['EROFS', 'PATH_NOT_WRITABLE', /the file system is read-only/],
      ['EPERM', 'PATH_NOT_WRITABLE', /permission denied/],
      ['EEXIST', 'PATH_NOT_WRITABLE', /a file is in the way/],
      ['ENOTDIR', 'PATH_NOT_WRITABLE', /a file is in the way/],
      ['ENOENT', 'PATH_NOT_WRITABLE', /a parent directory does not exist/],
      ['ENOSPC', 'DISK_FULL', /no space left on the device/],
    ];
    for (const [code, sluiceCode, message] of cases) {
      const err = pathError(errno(code), 'the output /data/out');
      expect(err, code).to.be.instanceOf(SluiceError);
      expect((err as SluiceError).code).to.equal(sluiceCode);
      expect((err as SluiceError).message).to.match(message);
      expect((err as SluiceError).hint).to.be.a('string');
    }
  });

  it('leaves other errors alone, so bugs keep their stack', () => {
    const bug = new TypeError('x is undefined');
    expect(pathError(bug, 'the output')).to.equal(bug);
    const io = errno('EIO');
    expect(pathError(io, 'the output')).to.equal(io);
  });
});
