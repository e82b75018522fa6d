import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { asUsage, UsageError } from '../errors.js';
import { TIMESTAMP_FORMATS, type TimestampFormat } from '../gen/common.js';
import { DATASETS, dataset, type GenParam, type GenParams } from '../gen/datasets.js';
import { targetWriter, type WriteSummary, writeRecords } from '../gen/writers.js';
import { parseDuration } from '../util/duration.js';

/**
 * `sluice gen <dataset>`: writes a deterministic data set to a file, a directory of part files, a TCP
 * socket server or stdout, optionally paced. Every value is parsed here, so a bad one is reported with
 * the flag, the value given and what is accepted.
 */

/** Raw command-line values (strings, so errors can quote exactly what the user typed). */
export interface GenArgs {
  /** Dataset name (positional): clickstream, transactions, deposits, bank, nexmark. */
  dataset: string;
  /** Target URI (`--to`): file:PATH, file:DIR/, socket://HOST:PORT, kafka://HOST:PORT/TOPIC or - for stdout. */
  to: string;
  /** `--count`: records to write; default 10 000, endless for socket targets. */
  count?: string;
  /** `--rate`: records per second of wall-clock time; default as fast as possible. */
  rate?: string;
  /** `--seed`: an integer or any string; default 1. */
  seed?: string;
  /** `--users` (clickstream). */
  users?: string;
  /** `--customers` (transactions). */
  customers?: string;
  /** `--accounts` (bank). */
  accounts?: string;
  /** `--sessions`: sessions open at once (deposits). */
  sessions?: string;
  /** `--start`: event time of the first record, ISO-8601, epoch ms or `now`. */
  start?: string;
  /** `--spacing`: mean event-time spacing, a duration. */
  spacing?: string;
  /** `--session-gap`: inactivity gap between sessions, a duration. */
  sessionGap?: string;
  /** `--max-out-of-orderness`: disorder bound of on-time records, a duration. */
  maxOutOfOrderness?: string;
  /** `--late-fraction`: fraction of late records, 0 … 1. */
  lateFraction?: string;
  /** `--late-by`: delay of late records beyond the bound, a duration or MIN..MAX. */
  lateBy?: string;
  /** `--mark-late`: add `late: true|false` to each record. */
  markLate?: boolean;
  /** `--timestamp-format`: iso or epoch-ms. */
  timestampFormat?: string;
  /** `--event-rate`: Nexmark event-time rate, events per second. */
  eventRate?: string;
  /** `--rows-per-file`: lines per part file for directory targets. */
  rowsPerFile?: string;
  /** `--wait-for-client`: socket targets hold the first record until a client connects (default true). */
  waitForClient?: boolean;
}

/** Dataset-specific flags: the flag name, its GenArgs key and the parameter(s) it sets. */
const DATASET_FLAGS: readonly { flag: string; key: keyof GenArgs; params: readonly GenParam[] }[] = [
  { flag: 'users', key: 'users', params: ['users'] },
  { flag: 'customers', key: 'customers', params: ['customers'] },
  { flag: 'accounts', key: 'accounts', params: ['accounts'] },
  { flag: 'sessions', key: 'sessions', params: ['sessions'] },
  { flag: 'start', key: 'start', params: ['startTime'] },
  { flag: 'spacing', key: 'spacing', params: ['meanSpacingMs'] },
  { flag: 'session-gap', key: 'sessionGap', params: ['sessionGapMs'] },
  { flag: 'max-out-of-orderness', key: 'maxOutOfOrderness', params: ['maxOutOfOrdernessMs'] },
  { flag: 'late-fraction', key: 'lateFraction', params: ['lateFraction'] },
  { flag: 'late-by', key: 'lateBy', params: ['lateByMinMs', 'lateByMaxMs'] },
  { flag: 'mark-late', key: 'markLate', params: ['markLate'] },
  { flag: 'timestamp-format', key: 'timestampFormat', params: ['timestampFormat'] },
  { flag: 'event-rate', key: 'eventRate', params: ['eventRate'] },
];

function badFlag(flag: string, value: unknown, accepted: string): UsageError {
  return new UsageError('GEN_BAD_FLAG', `invalid value '${String(value)}' for --${flag}`, `accepted: ${accepted}`);
}

/** Parses `--count`: an integer (`10000`, `10_000`, `1e6`, `10k`, `2M`) or `inf` for an endless stream. */
export function parseCount(raw: string, flag = 'count'): number {
  const s = raw.trim().replace(/_/g, '').toLowerCase();
  if (s === 'inf' || s === 'infinite' || s === 'unlimited') return Infinity;
  const m = /^(\d+(?:\.\d+)?(?:e\d+)?)([km])?$/.exec(s);
  const n = m ? Number(m[1]) * (m[2] === 'k' ? 1e3 : m[2] === 'm' ? 1e6 : 1) : NaN;
  if (!Number.isSafeInteger(n))
    throw badFlag(flag, raw, 'a non-negative integer such as 10000, 1e6, 10k or 2M, or inf');
  return n;
}

function parsePositiveInt(raw: string, flag: string): number {
  const n = parseCount(raw, flag);
  if (n === Infinity || n < 1) throw badFlag(flag, raw, 'a positive integer');
  return n;
}

function parseNumber(raw: string, flag: string, min: number, max: number, accepted: string): number {
  const n = Number(raw.trim().replace(/_/g, ''));
  if (raw.trim() === '' || !Number.isFinite(n) || n < min || n > max) throw badFlag(flag, raw, accepted);
  return n;
}

/** `--<flag>` as a duration ({@link parseDuration}), reported as a bad value of that flag. */
function parseDurationFlag(raw: string, flag: string): number {
  try {
    return parseDuration(raw, `--${flag}`);
  } catch {
    throw badFlag(flag, raw, 'a duration such as 500ms, 10s, 5m, 1h, 5 minutes or 1h30m (a bare number is ms)');
  }
}

function parseTime(raw: string, flag: string): number {
  if (raw === 'now') return Date.now();
  const t = /^\d+$/.test(raw) ? Number(raw) : Date.parse(raw);
  if (!Number.isFinite(t))
    throw badFlag(flag, raw, 'an ISO-8601 time such as 2024-01-01T00:00:00Z, epoch milliseconds, or now');
  return t;
}

function parseSeed(raw: string): number | string {
  return /^-?\d+$/.test(raw) && Number.isSafeInteger(Number(raw)) ? Number(raw) : raw;
}

/** The generator parameters and write options for parsed arguments (validated). */
export function genPlan(args: GenArgs): {
  params: GenParams;
  rate?: number;
  rowsPerFile?: number;
  countGiven: boolean;
} {
  const d = dataset(args.dataset);
  for (const f of DATASET_FLAGS) {
    if (args[f.key] === undefined || f.params.some((p) => d.params.includes(p))) continue;
    const users = Object.values(DATASETS)
      .filter((x) => f.params.some((p) => x.params.includes(p)))
      .map((x) => x.name);
    const own = DATASET_FLAGS.filter((g) => g.params.some((p) => d.params.includes(p))).map((g) => `--${g.flag}`);
    throw new UsageError(
      'GEN_BAD_FLAG',
      `--${f.flag} does not apply to dataset '${d.name}'`,
      `--${f.flag} applies to ${users.join(', ')}; ${d.name} takes ${own.length > 0 ? own.join(', ') : 'no dataset-specific flags'}`,
    );
  }
  const isSocket = /^socket:/i.test(args.to);
  const params: GenParams = {
    count: args.count !== undefined ? parseCount(args.count) : isSocket ? Infinity : 10_000,
    seed: args.seed !== undefined ? parseSeed(args.seed) : 1,
  };
  if (args.users !== undefined) params.users = parsePositiveInt(args.users, 'users');
  if (args.customers !== undefined) params.customers = parsePositiveInt(args.customers, 'customers');
  if (args.accounts !== undefined) params.accounts = parsePositiveInt(args.accounts, 'accounts');
  if (args.sessions !== undefined) params.sessions = parsePositiveInt(args.sessions, 'sessions');
  if (args.start !== undefined) params.startTime = parseTime(args.start, 'start');
  if (args.spacing !== undefined) {
    params.meanSpacingMs = parseDurationFlag(args.spacing, 'spacing');
    if (params.meanSpacingMs <= 0) throw badFlag('spacing', args.spacing, 'a duration > 0, such as 100ms');
  }
  if (args.sessionGap !== undefined) {
    params.sessionGapMs = parseDurationFlag(args.sessionGap, 'session-gap');
    if (params.sessionGapMs <= 2000) throw badFlag('session-gap', args.sessionGap, 'a duration > 2s, such as 30m');
  }
  if (args.maxOutOfOrderness !== undefined)
    params.maxOutOfOrdernessMs = parseDurationFlag(args.maxOutOfOrderness, 'max-out-of-orderness');
  if (args.lateFraction !== undefined) {
    params.lateFraction = parseNumber(
      args.lateFraction,
      'late-fraction',
      0,
      1,
      'a fraction between 0 and 1, such as 0.01',
    );
  }
  if (args.lateBy !== undefined) {
    const [lo, hi = lo] = args.lateBy.split('..');
    params.lateByMinMs = parseDurationFlag(lo, 'late-by');
    params.lateByMaxMs = parseDurationFlag(hi, 'late-by');
    if (params.lateByMinMs < 1 || params.lateByMaxMs < params.lateByMinMs) {
      throw badFlag('late-by', args.lateBy, 'a duration ≥ 1ms or a range MIN..MAX with MIN ≤ MAX, such as 1m..10m');
    }
  }
  if (args.markLate !== undefined) params.markLate = args.markLate;
  if (args.timestampFormat !== undefined) {
    if (!(TIMESTAMP_FORMATS as readonly string[]).includes(args.timestampFormat)) {
      throw badFlag('timestamp-format', args.timestampFormat, TIMESTAMP_FORMATS.join(', '));
    }
    params.timestampFormat = args.timestampFormat as TimestampFormat;
  }
  if (args.eventRate !== undefined) {
    params.eventRate = parseNumber(
      args.eventRate,
      'event-rate',
      Number.MIN_VALUE,
      Infinity,
      'a positive number of events per second of event time',
    );
  }
  const rate =
    args.rate !== undefined
      ? parseNumber(
          args.rate,
          'rate',
          0,
          Infinity,
          'a non-negative number of events per second (0: as fast as possible)',
        )
      : undefined;
  const rowsPerFile = args.rowsPerFile !== undefined ? parsePositiveInt(args.rowsPerFile, 'rows-per-file') : undefined;
  return { params, rate, rowsPerFile, countGiven: args.count !== undefined };
}

/** Where {@link runGen} reports; defaults to the process's stderr and SIGINT. */
export interface GenIO {
  /** Progress bar and summary go here. */
  stderr?: NodeJS.WriteStream | NodeJS.WritableStream;
  /** Stops the run (the command installs a SIGINT handler when none is given). */
  signal?: AbortSignal;
}

const fmt = new Intl.NumberFormat('en-US');

/** A one-line progress display, redrawn at most every 100 ms, on a TTY only, after the run has taken 0.5 s. */
class ProgressBar {
  private last = 0;
  private drawn = false;
  private readonly started = performance.now();
  constructor(
    private readonly out: NodeJS.WriteStream,
    private readonly label: string,
    private readonly total: number,
  ) {}
  update(done: number): void {
    const now = performance.now();
    if (now - this.started < 500 || now - this.last < 100) return;
    this.last = now;
    const rate = done / ((now - this.started) / 1000);
    let line: string;
    if (Number.isFinite(this.total) && this.total > 0) {
      const frac = Math.min(1, done / this.total);
      const width = 20;
      const full = Math.round(frac * width);
      const eta = rate > 0 ? (this.total - done) / rate : Infinity;
      line =
        `${this.label} [${'#'.repeat(full)}${'-'.repeat(width - full)}] ${(frac * 100).toFixed(0).padStart(3)}% ` +
        `${fmt.format(done)}/${fmt.format(this.total)} ${fmt.format(Math.round(rate))}/s ETA ${Number.isFinite(eta) ? `${eta.toFixed(0)}s` : '?'}`;
    } else {
      line = `${this.label} ${fmt.format(done)} records ${fmt.format(Math.round(rate))}/s`;
    }
    const columns = this.out.columns > 20 ? this.out.columns : 80;
    this.out.write(`\r${line.slice(0, columns - 1)}\x1b[K`);
    this.drawn = true;
  }
  clear(): void {
    if (this.drawn) this.out.write('\r\x1b[K');
  }
}

/** Runs `sluice gen` for parsed arguments and returns what was written. */
export async function runGen(args: GenArgs, io: GenIO = {}): Promise<WriteSummary> {
  const plan = await asUsage(() => {
    targetWriter(args.to);
    return genPlan(args);
  });
  const d = dataset(args.dataset);
  const err = io.stderr ?? process.stderr;
  const tty = (err as NodeJS.WriteStream).isTTY === true && !(args.to === '-' && process.stdout.isTTY);
  const bar = tty ? new ProgressBar(err as NodeJS.WriteStream, `gen ${d.name}`, plan.params.count) : undefined;
  let signal = io.signal;
  let onSigint: (() => void) | undefined;
  if (!signal) {
    const ac = new AbortController();
    onSigint = () => ac.abort();
    process.once('SIGINT', onSigint);
    signal = ac.signal;
  }
  try {
    const summary = await writeRecords(d.records(plan.params), args.to, {
      rate: plan.rate,
      rowsPerFile: plan.rowsPerFile,
      extension: d.format,
      waitForClient: args.waitForClient,
      signal,
      log: (m) => {
        bar?.clear();
        err.write(`sluice gen: ${m}\n`);
      },
      onProgress: bar ? (n) => bar.update(n) : undefined,
    });
    bar?.clear();
    const secs = summary.elapsedMs / 1000;
    err.write(
      `sluice gen: ${summary.aborted ? 'stopped after writing' : 'wrote'} ${fmt.format(summary.written)} ${d.name} records ` +
        `to ${summary.target} in ${secs.toFixed(2)} s (${fmt.format(Math.round(summary.written / Math.max(secs, 1e-3)))}/s)\n`,
    );
    return summary;
  } finally {
    if (onSigint) process.off('SIGINT', onSigint);
  }
}

function builder(y: Argv): Argv<GenArgs> {
  return y
    .positional('dataset', {
      type: 'string',
      describe: `what to generate: ${Object.keys(DATASETS).join(', ')}`,
      demandOption: true,
    })
    .option('to', {
      type: 'string',
      requiresArg: true,
      default: '-',
      describe:
        'target: file:PATH (one file), file:DIR/ (part files), socket://HOST:PORT (a server apps connect to), kafka://HOST:PORT/TOPIC (keyed by the first field), - (stdout)',
    })
    .option('count', {
      type: 'string',
      requiresArg: true,
      describe: 'number of records (10k, 1e6, inf); default 10000, endless for socket targets',
    })
    .option('rate', {
      type: 'string',
      requiresArg: true,
      describe: 'records per second, paced against the wall clock (default: as fast as possible)',
    })
    .option('seed', {
      type: 'string',
      requiresArg: true,
      describe: 'PRNG seed: the same seed gives the same data (default 1)',
    })
    .option('users', { type: 'string', requiresArg: true, describe: 'clickstream: distinct users (default 1000)' })
    .option('customers', {
      type: 'string',
      requiresArg: true,
      describe: 'transactions: distinct customers (default 500)',
    })
    .option('accounts', { type: 'string', requiresArg: true, describe: 'bank: distinct accounts (default 100)' })
    .option('sessions', { type: 'string', requiresArg: true, describe: 'deposits: sessions open at once (default 20)' })
    .option('start', {
      type: 'string',
      requiresArg: true,
      describe: 'event time of the first record: ISO-8601, epoch ms or now (default 2024-01-01T00:00:00Z)',
    })
    .option('spacing', {
      type: 'string',
      requiresArg: true,
      describe: 'mean event-time spacing between records, e.g. 100ms (clickstream default 100ms, transactions 1s)',
    })
    .option('session-gap', {
      type: 'string',
      requiresArg: true,
      describe: 'inactivity gap between sessions (clickstream default 30m, transactions 5m)',
    })
    .option('max-out-of-orderness', {
      type: 'string',
      requiresArg: true,
      describe: 'on-time records arrive less than this behind earlier ones, e.g. 5m (default 0: in order)',
    })
    .option('late-fraction', {
      type: 'string',
      requiresArg: true,
      describe: 'fraction of records that arrive later than the bound, e.g. 0.01 (default 0)',
    })
    .option('late-by', {
      type: 'string',
      requiresArg: true,
      describe: 'how far beyond the bound late records are: a duration or MIN..MAX (default 1m..10m)',
    })
    .option('mark-late', { type: 'boolean', describe: 'add "late": true|false to each record' })
    .option('timestamp-format', {
      type: 'string',
      requiresArg: true,
      describe: `timestamps as ${TIMESTAMP_FORMATS.join(' or ')} (default iso)`,
    })
    .option('event-rate', {
      type: 'string',
      requiresArg: true,
      describe: 'nexmark: events per second of event time (default 10000)',
    })
    .option('rows-per-file', {
      type: 'string',
      requiresArg: true,
      describe: 'lines per part file for directory targets (default 100000)',
    })
    .option('wait-for-client', {
      type: 'boolean',
      describe: 'socket targets: hold the first record until a client connects (default true)',
    })
    .strict()
    .example('$0 gen clickstream --count 1e6 --to file:data/clicks/', 'one million events in part files of 100k lines')
    .example(
      '$0 gen clickstream --max-out-of-orderness 5m --late-fraction 0.01 --mark-late --to file:late.jsonl',
      'disorder within 5 minutes and 1% late events, marked',
    )
    .example(
      '$0 gen deposits --to socket://localhost:9999 --rate 10',
      'serve 10 lines/s to apps that connect (deposit-sessions)',
    )
    .example('$0 gen nexmark --count 10M --event-rate 1e6 --to file:nexmark/', 'ten million Nexmark events')
    .example('$0 gen clickstream --count 100k --to kafka://localhost:9092/clicks', 'into a Kafka topic, keyed by user')
    .example('$0 gen bank --count 5', 'five bank operations on stdout') as unknown as Argv<GenArgs>;
}

/** A `sluice gen <dataset>` command module reporting to `io` (tests pass their own stream). */
export function makeGenCommand(io: GenIO = {}): CommandModule<object, GenArgs> {
  return {
    command: 'gen <dataset>',
    describe: 'generate deterministic input data for the seed apps and benchmarks',
    builder: builder as CommandModule<object, GenArgs>['builder'],
    handler: async (argv: ArgumentsCamelCase<GenArgs>) => {
      await runGen(argv, io);
    },
  };
}

/** The yargs command module for `sluice gen <dataset>`, reporting on stderr and stopping on SIGINT. */
export const genCommand: CommandModule<object, GenArgs> = makeGenCommand();
