import * as fs from 'node:fs';
import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import type { TriggerSpec } from '../api/stream-writer.js';
import { loadApp, runApp } from '../app/app-runner.js';
import type { QueryProgress } from '../exec/progress.js';

interface RunArgs {
  app: string;
  source: string[];
  sink: string[];
  checkpoint?: string;
  trigger: string;
  threads: number;
  'state-partitions': number;
  'progress-log'?: string;
  quiet: boolean;
  [key: string]: unknown;
}

const OWN_KEYS = new Set(['_', '$0', 'app', 'source', 'sink', 'checkpoint', 'trigger', 'threads', 'state-partitions', 'statePartitions',
  'progress-log', 'progressLog', 'quiet', 'q', 'help', 'version']);

/** `--trigger` values: `1s`/`500ms`/`1 minute` (interval), `once`, `available-now`. */
export function parseTriggerFlag(value: string): TriggerSpec {
  if (value === 'once') return { once: true };
  if (value === 'available-now' || value === 'availableNow') return { availableNow: true };
  return { processingTime: value };
}

function progressLine(output: string, p: QueryProgress): string {
  const state = p.stateOperators.reduce((n, s) => n + s.numRowsTotal, 0);
  return `[${output}] batch ${p.batchId}: ${p.numInputRows} rows in, ${p.sink.numOutputRows} out, ` +
    `${Math.round(p.processedRowsPerSecond)} rows/s, ${Math.round(p.durationMs.triggerExecution)} ms, watermark ${p.eventTime.watermark}` +
    (p.stateOperators.length ? `, state rows ${state}` : '');
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

/** Runs an app until it stops (trigger once/available-now) or is interrupted; returns the exit code. */
export async function runCommand(argv: RunArgs, log: (line: string) => void = (l) => process.stderr.write(l + '\n')): Promise<number> {
  const app = await loadApp(argv.app);
  const progressLog = argv['progress-log'] ? fs.openSync(argv['progress-log'], 'a') : undefined;
  const { queries } = await runApp(app, {
    options: appOptionsOf(argv),
    sources: argv.source,
    sinks: argv.sink,
    checkpoint: argv.checkpoint,
    trigger: parseTriggerFlag(argv.trigger),
    threads: argv.threads,
    statePartitions: argv['state-partitions'],
    onProgress: (output, p) => {
      if (!argv.quiet) log(progressLine(output, p));
      if (progressLog !== undefined) fs.writeSync(progressLog, JSON.stringify({ output, ...p }) + '\n');
    },
  });
  if (!argv.quiet) log(`sluice: running ${app.def.name} (${[...queries.keys()].join(', ')}); stop with Ctrl-C`);
  let signalled = false;
  const onSignal = (): void => {
    if (signalled) return;
    signalled = true;
    if (!argv.quiet) log('sluice: stopping after the current batch');
    for (const q of queries.values()) void q.stop();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    const results = await Promise.allSettled([...queries.values()].map((q) => q.awaitTermination()));
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) {
      for (const q of queries.values()) await q.stop();
      throw failed.reason;
    }
    return 0;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    if (progressLog !== undefined) fs.closeSync(progressLog);
  }
}

/** `sluice run <app>`. */
export const runCommandModule: CommandModule<object, RunArgs> = {
  command: 'run <app>',
  describe: 'Run an app (a built-in name or a path to your app module) until it stops or is interrupted',
  builder: (y: Argv) => y
    .positional('app', { type: 'string', describe: 'built-in app name (see `sluice apps`) or path to an app module (.js)', demandOption: true })
    .option('source', { type: 'string', array: true, default: [], describe: 'input URI, or NAME=URI for an app with several inputs' })
    .option('sink', { type: 'string', array: true, default: [], describe: 'output URI, or NAME=URI for an app with several outputs' })
    .option('checkpoint', { type: 'string', describe: 'checkpoint directory (default checkpoints/<app>); restart with the same one to continue' })
    .option('trigger', { type: 'string', default: '0s', describe: 'batch interval (e.g. 1s), once, or available-now' })
    .option('threads', { type: 'number', default: 0, describe: 'worker threads (0 = in-process)' })
    .option('state-partitions', { type: 'number', default: 4, describe: 'state partitions per stateful operator (fixed per checkpoint)' })
    .option('progress-log', { type: 'string', describe: 'append each batch progress as a JSON line to this file' })
    .option('quiet', { alias: 'q', type: 'boolean', default: false, describe: 'no progress lines on stderr' })
    .strict(false)
    .example('$0 run demo-word-count --trigger available-now', 'count words in data/words once')
    .example('$0 run deposit-sessions --source socket://localhost:9999 --session-timeout 10m', 'the seed 001 job')
    .example('$0 run bank-account --sink movements=file:out/movements --sink accounts=console:', 'several outputs') as unknown as Argv<RunArgs>,
  handler: async (argv: ArgumentsCamelCase<RunArgs>) => {
    process.exitCode = await runCommand(argv as RunArgs);
  },
};
