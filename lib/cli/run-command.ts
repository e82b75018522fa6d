import * as fs from 'node:fs';
import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import type { TriggerSpec } from '../api/stream-writer.js';
import type { StreamingQuery } from '../api/streaming-query.js';
import type { AppDefinition } from '../app/app.js';
import { type AppGroupMember, runAppInGroup, taskOutputName } from '../app/app-group.js';
import { type LoadedApp, loadApp, type RunAppOptions, runApp } from '../app/app-runner.js';
import { pathError, UsageError } from '../errors.js';
import { DEFAULT_MAX_EVICTIONS_PER_BATCH } from '../state/state-store-cache.js';
import { type ShownQuery, StreamingUi } from '../ui/ui-server.js';
import { parseDuration } from '../util/duration.js';
import { guardedWriteSync } from '../util/file-write.js';
import { onNotice } from '../util/notices.js';
import { integerFlag, onceFlag } from './flags.js';
import { MalformedTally } from './malformed-summary.js';
import { type ProgressReporter, progressReporter } from './status-line.js';

interface RunArgs {
  app: string;
  source: string[];
  sink: string[];
  checkpoint?: string;
  trigger: string;
  threads: unknown;
  'state-partitions': unknown;
  'state-store': string;
  'state-cache-mb'?: unknown;
  'state-local-dir'?: string;
  'state-max-evictions-per-batch'?: unknown;
  'progress-log'?: string;
  ui?: unknown;
  'ui-host': string;
  quiet: boolean;
  group?: string;
  'group-session-timeout'?: string;
  repartition?: boolean;
  [key: string]: unknown;
}

const OWN_KEYS = new Set([
  '_',
  '$0',
  'app',
  'source',
  'sink',
  'checkpoint',
  'trigger',
  'threads',
  'state-partitions',
  'statePartitions',
  'state-store',
  'stateStore',
  'state-cache-mb',
  'stateCacheMb',
  'state-local-dir',
  'stateLocalDir',
  'state-max-evictions-per-batch',
  'stateMaxEvictionsPerBatch',
  'progress-log',
  'progressLog',
  'ui',
  'ui-host',
  'uiHost',
  'quiet',
  'q',
  'group',
  'group-session-timeout',
  'groupSessionTimeout',
  'repartition',
  'help',
  'version',
]);

/** `--trigger` values: `1s`/`500ms`/`1 minute` (interval), `once`, `available-now`. */
export function parseTriggerFlag(value: string): TriggerSpec {
  if (value === 'once') return { once: true };
  if (value === 'available-now' || value === 'availableNow') return { availableNow: true };
  try {
    parseDuration(value, '--trigger');
  } catch {
    throw new UsageError(
      'BAD_OPTION',
      `--trigger '${value}' is not an interval, once or available-now`,
      'e.g. --trigger 1s, --trigger 500ms, --trigger once or --trigger available-now',
    );
  }
  return { processingTime: value };
}

/** Camel-cased duplicates yargs adds, and our own flags, are not app options. */
function appOptionsOf(argv: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(argv)) {
    if (OWN_KEYS.has(k) || /[A-Z]/.test(k)) continue;
    out[k] = v;
  }
  return out;
}

function openProgressLog(file: string): number {
  try {
    return fs.openSync(file, 'a');
  } catch (err) {
    throw pathError(err, `the progress log ${file}`, 'open');
  }
}

/**
 * Appends one line to the progress log, whole or not at all: a write cut short by a full disk is taken back,
 * so that the log stays readable line by line after a restart.
 */
function appendLine(fd: number, file: string, line: string): void {
  const bytes = Buffer.from(`${line}\n`);
  const start = fs.fstatSync(fd).size;
  try {
    guardedWriteSync(file, () => {
      for (let done = 0; done < bytes.length; ) done += fs.writeSync(fd, bytes, done);
    });
  } catch (err) {
    fs.ftruncateSync(fd, start);
    throw err;
  }
}

/** Runs an app until it stops (trigger once/available-now) or is interrupted; returns the exit code. */
export async function runCommand(
  argv: RunArgs,
  reporter: ProgressReporter = progressReporter(process.stderr, { quiet: argv.quiet, shared: process.stdout }),
): Promise<number> {
  const trigger = parseTriggerFlag(onceFlag(argv.trigger, 'trigger'));
  const checkpoint = argv.checkpoint === undefined ? undefined : onceFlag(argv.checkpoint, 'checkpoint');
  const progressLogFile =
    argv['progress-log'] === undefined ? undefined : onceFlag(argv['progress-log'], 'progress-log');
  const uiHost = onceFlag(argv['ui-host'], 'ui-host');
  const threads = integerFlag(
    argv.threads,
    'threads',
    'an integer',
    0,
    64,
    'use 0 to run in-process, or the number of cores',
  );
  const statePartitions = integerFlag(
    argv['state-partitions'],
    'state-partitions',
    'an integer',
    1,
    4096,
    'the default is 4; keep the value a checkpoint was created with',
  );
  const stateStore = onceFlag(argv['state-store'], 'state-store');
  if (stateStore !== 'memory' && stateStore !== 'disk') {
    throw new UsageError(
      'BAD_OPTION',
      `--state-store must be memory or disk, got ${stateStore}`,
      'disk keeps committed state on local disk, for state larger than memory',
    );
  }
  const stateCacheMb =
    argv['state-cache-mb'] === undefined
      ? undefined
      : integerFlag(
          argv['state-cache-mb'],
          'state-cache-mb',
          'an integer',
          0,
          1 << 20,
          'MiB of hot keys per state partition of the disk state store (default 64)',
        );
  const stateLocalDir =
    argv['state-local-dir'] === undefined ? undefined : onceFlag(argv['state-local-dir'], 'state-local-dir');
  const uiPort =
    argv.ui === undefined
      ? undefined
      : integerFlag(argv.ui, 'ui', 'a port number', 0, 65535, 'e.g. --ui 4040 (or --ui 0 for any free port)');
  const app = await loadApp(argv.app);
  if (argv.repartition === true && argv.group === undefined) {
    throw new UsageError(
      'BAD_OPTION',
      '--repartition only applies with --group',
      'a single process reads every input partition and needs no repartitioning',
    );
  }
  const maxEvictionsPerBatch =
    argv['state-max-evictions-per-batch'] === undefined
      ? undefined
      : integerFlag(
          argv['state-max-evictions-per-batch'],
          'state-max-evictions-per-batch',
          'an integer',
          1,
          2 ** 31 - 1,
          `keys a stateful operator closes per state partition in one batch (default ${DEFAULT_MAX_EVICTIONS_PER_BATCH})`,
        );
  const stateStoreSettings = {
    provider: stateStore,
    cacheMb: stateCacheMb,
    localDir: stateLocalDir,
    maxEvictionsPerBatch,
  } as const;
  if (argv.group !== undefined) {
    return runGroupMember(
      argv,
      app,
      { trigger, checkpoint, threads, statePartitions, stateStore: stateStoreSettings },
      { progressLogFile, uiPort, uiHost },
      reporter,
    );
  }
  const progressLog = progressLogFile === undefined ? undefined : openProgressLog(progressLogFile);
  let ui: StreamingUi | undefined;
  let queries = new Map<string, StreamingQuery>();
  let stopSignals: StopSignals | undefined;
  let rowsRead = 0;
  const malformed = new MalformedTally();
  // A source that cannot reach its broker retries while the query opens, before any progress: say so now.
  const stopNotices = onNotice((message) => {
    if (!argv.quiet) reporter.log(`sluice: ${message}`);
  });
  try {
    const started = await runApp(app, {
      options: appOptionsOf(argv),
      sources: argv.source,
      sinks: argv.sink,
      checkpoint,
      trigger,
      threads,
      statePartitions,
      stateStore: stateStoreSettings,
      onProgress: (output, p) => {
        rowsRead += p.numInputRows;
        malformed.add(output, p);
        reporter.progress(output, p);
        if (progressLog !== undefined) appendLine(progressLog, progressLogFile!, JSON.stringify({ output, ...p }));
        ui?.progress(output, p);
      },
    });
    queries = started.queries;
    stopSignals = listenForStopSignals(reporter, (signal) => {
      if (!argv.quiet)
        reporter.log(`sluice: ${signal}: stopping after the current batch (${signal} again to exit at once)`);
      for (const q of queries.values()) void q.stop();
    });
    if (uiPort !== undefined) {
      const shown = new Map([...queries].map(([output, query]) => [output, { query }]));
      ui = await StreamingUi.start(() => shown, {
        port: uiPort,
        host: uiHost,
        title: app.def.name,
      });
    }
    reporter.expect([...queries.keys()]);
    if (!argv.quiet)
      reporter.log(`sluice: running ${app.def.name} (${[...queries.keys()].join(', ')}); stop with Ctrl-C`);
    if (ui) reporter.log(`sluice: UI at ${ui.url}`);
    // The first query to fail stops the run (the others are stopped below), rather than leaving it half-working.
    await new Promise<void>((resolve, reject) => {
      let running = queries.size;
      for (const q of queries.values())
        q.awaitTermination().then(() => {
          if (--running === 0) resolve();
        }, reject);
    });
    if (rowsRead === 0 && !stopSignals?.received && !('processingTime' in trigger) && !argv.quiet) {
      // Otherwise a run over an empty directory, or over input an earlier run with this checkpoint already read, ends without a word.
      reporter.log(
        `sluice: no new input: 0 rows read (check --source; the checkpoint ${checkpoint ?? `checkpoints/${app.def.name}`} remembers what earlier runs read)`,
      );
    }
    const summary = malformed.summary(started.session.app?.inputs ?? {});
    if (summary) {
      // Printed even with --quiet, after the live line: rows that became null or were dropped are data the user lost.
      reporter.close();
      reporter.log(summary);
    }
    return 0;
  } catch (err) {
    for (const q of queries.values()) await q.stop();
    throw err;
  } finally {
    stopNotices();
    stopSignals?.remove();
    reporter.close();
    await ui?.close();
    if (progressLog !== undefined) fs.closeSync(progressLog);
  }
}

/** `sluice run APP --group ID`: this process as one member of the group sharing the app's tasks, until stopped. */
async function runGroupMember(
  argv: RunArgs,
  app: LoadedApp,
  run: Pick<RunAppOptions, 'trigger' | 'checkpoint' | 'threads' | 'statePartitions' | 'stateStore'>,
  watch: { progressLogFile?: string; uiPort?: number; uiHost: string },
  reporter: ProgressReporter,
): Promise<number> {
  const group = onceFlag(argv.group!, 'group');
  const sessionTimeout =
    argv['group-session-timeout'] === undefined
      ? undefined
      : onceFlag(argv['group-session-timeout'], 'group-session-timeout');
  const { progressLogFile } = watch;
  const progressLog = progressLogFile === undefined ? undefined : openProgressLog(progressLogFile);
  let ui: StreamingUi | undefined;
  // Rebalances and restores are the member's news: always printed, as the batch lines are unless --quiet.
  const stopNotices = onNotice((message) => reporter.log(`sluice: ${message}`));
  let member: AppGroupMember | undefined;
  const stopSignals = listenForStopSignals(reporter, (signal) => {
    reporter.log(`sluice: ${signal}: stopping after the current batches and leaving group ${group}`);
    void member?.stop();
  });
  try {
    member = await runAppInGroup(
      app,
      { options: appOptionsOf(argv), sources: argv.source, sinks: argv.sink, ...run },
      {
        id: group,
        sessionTimeout,
        repartition: argv.repartition === true,
        onProgress: (task, output, p) => {
          const name = taskOutputName(task, output);
          reporter.progress(name, p);
          if (progressLog !== undefined)
            appendLine(progressLog, progressLogFile!, JSON.stringify({ output, task, ...p }));
          ui?.progress(name, p);
        },
      },
    );
    if (stopSignals.received) await member.stop();
    if (watch.uiPort !== undefined) {
      const running = member;
      ui = await StreamingUi.start(() => shownTasks(running), {
        port: watch.uiPort,
        host: watch.uiHost,
        title: `${app.def.name} (group ${group})`,
      });
    }
    if (!argv.quiet)
      reporter.log(`sluice: ${app.def.name} joined group ${group} as ${member.memberId}; stop with Ctrl-C`);
    if (ui) reporter.log(`sluice: UI at ${ui.url}`);
    await member.awaitTermination();
    return 0;
  } catch (err) {
    await member?.stop();
    throw err;
  } finally {
    stopNotices();
    stopSignals.remove();
    reporter.close();
    await ui?.close();
    if (progressLog !== undefined) fs.closeSync(progressLog);
  }
}

/** The queries of the tasks `member` runs now, in task order, as the UI shows them. */
function shownTasks(member: AppGroupMember): Map<string, ShownQuery> {
  const shown = new Map<string, ShownQuery>();
  for (const [task, queries] of [...member.queries()].sort(([a], [b]) => a - b))
    for (const [output, query] of queries) shown.set(taskOutputName(task, output), { query, task });
  return shown;
}

/** SIGINT/SIGTERM handling of a run: whether one came, and the way to stop listening. */
interface StopSignals {
  readonly received: boolean;
  remove(): void;
}

/**
 * Calls `onFirst` on the first SIGINT or SIGTERM, to stop after the current batch. A second one does not wait:
 * the batch in progress was not committed and runs again on restart.
 */
function listenForStopSignals(reporter: ProgressReporter, onFirst: (signal: NodeJS.Signals) => void): StopSignals {
  let received = false;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (received) {
      reporter.close();
      process.stderr.write(`sluice: ${signal} again, exiting without finishing the batch (it runs again on restart)\n`);
      process.exit(130);
    }
    received = true;
    onFirst(signal);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return {
    get received() {
      return received;
    },
    remove() {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    },
  };
}

/**
 * Declares the app's own options (`sluice run deposit-sessions --session-timeout 10m`) in a group of their
 * own, so that `--help` lists them and an option that takes a value cannot be given without one. Their
 * values are checked by parseAppOptions, as for apps run from code.
 */
function withAppOptions(y: Argv, def: AppDefinition | undefined): Argv {
  if (!def) return y;
  const options = Object.entries(def.options ?? {});
  for (const [name, o] of options) {
    const details = [
      o.type === 'duration' ? 'a duration' : o.type === 'number' ? 'a number' : '',
      o.choices ? `one of ${o.choices.join(', ')}` : '',
      o.default === undefined ? '' : `default ${String(o.default)}`,
    ].filter(Boolean);
    y.option(name, {
      type: o.type === 'boolean' ? 'boolean' : 'string',
      requiresArg: o.type !== 'boolean',
      describe: details.length > 0 ? `${o.describe} (${details.join('; ')})` : o.describe,
    });
  }
  if (options.length > 0)
    y.group(
      options.map(([name]) => name),
      `Options of ${def.name}:`,
    );
  return y;
}

/**
 * `sluice run <app>`. Given the app named on the command line, the command also declares the app's own
 * options (see withAppOptions).
 */
export function runCommandModule(app?: LoadedApp): CommandModule<object, RunArgs> {
  return {
    command: 'run <app>',
    describe: 'Run an app (a built-in name or a path to your app module) until it stops or is interrupted',
    builder: (y: Argv) =>
      withAppOptions(y, app?.def)
        .positional('app', {
          type: 'string',
          describe: 'built-in app name (see `sluice apps`) or path to an app module (.js)',
          demandOption: true,
        })
        .option('source', {
          type: 'string',
          requiresArg: true,
          array: true,
          default: [],
          describe: 'input URI, or NAME=URI for an app with several inputs',
        })
        .option('sink', {
          type: 'string',
          requiresArg: true,
          array: true,
          default: [],
          describe: 'output URI, or NAME=URI for an app with several outputs',
        })
        .option('checkpoint', {
          type: 'string',
          requiresArg: true,
          describe: 'checkpoint directory (default checkpoints/<app>); restart with the same one to continue',
        })
        .option('trigger', {
          type: 'string',
          requiresArg: true,
          default: '0s',
          describe: 'batch interval (e.g. 1s), once, or available-now',
        })
        .option('threads', {
          default: 0,
          requiresArg: true,
          describe: 'threads running tasks (0 = in-process; from 2 on, the driver thread is one of them)',
        })
        .option('state-partitions', {
          default: 4,
          requiresArg: true,
          describe: 'state partitions per stateful operator (fixed per checkpoint)',
        })
        .option('state-store', {
          type: 'string',
          requiresArg: true,
          default: 'memory',
          describe: 'where committed state lives: memory, or disk (an embedded database; state larger than memory)',
        })
        .option('state-cache-mb', {
          requiresArg: true,
          describe:
            'disk state store: MiB of hot keys kept in memory per state partition (default 64), and a quarter as much of changes not yet written to disk',
        })
        .option('state-local-dir', {
          type: 'string',
          requiresArg: true,
          describe:
            'disk state store: folder of its working databases (default: the OS temp dir); rebuilt from the checkpoint when absent',
        })
        .option('state-max-evictions-per-batch', {
          requiresArg: true,
          describe:
            'most keys a stateful operator closes per state partition in one batch; the rest close in the no-data batches after it',
        })
        .option('progress-log', {
          type: 'string',
          requiresArg: true,
          describe: 'append each batch progress as a JSON line to this file',
        })
        .option('ui', {
          requiresArg: true,
          describe: 'serve a live web UI (charts per query, recent batches) on this port; 0 = any free port',
        })
        .option('ui-host', {
          type: 'string',
          requiresArg: true,
          default: '127.0.0.1',
          describe: 'interface the UI listens on (it has no authentication)',
        })
        .option('group', {
          type: 'string',
          requiresArg: true,
          describe:
            'share the app with the other processes started with this id (a Kafka consumer group): each runs some of the input partitions',
        })
        .option('group-session-timeout', {
          type: 'string',
          requiresArg: true,
          describe: 'with --group: a member silent this long is dropped and its tasks move (default 10s)',
        })
        .option('repartition', {
          type: 'boolean',
          describe:
            "with --group: the input topics are not keyed by the app's operator key, so repartition through an internal topic first",
        })
        .option('quiet', {
          alias: 'q',
          type: 'boolean',
          default: false,
          describe:
            'no progress on stderr (no batch lines, no live status line); errors and the UI address are still printed',
        })
        .strict(false)
        .example(
          '$0 run bank-account --source file:data/bank --trigger available-now',
          'process the sample operations once and stop',
        )
        .example(
          '$0 run deposit-sessions --source socket://localhost:9999 --session-timeout 10m',
          'the deposit-sessions job on socket input',
        )
        .example('$0 run bank-account --sink movements=file:out/movements --sink accounts=console:', 'several outputs')
        .example(
          '$0 run deposit-sessions --source file:data/deposits --trigger 1s --ui 4040',
          'watch it at http://127.0.0.1:4040/',
        ) as unknown as Argv<RunArgs>,
    handler: async (argv: ArgumentsCamelCase<RunArgs>) => {
      process.exitCode = await runCommand(argv as RunArgs);
    },
  };
}
