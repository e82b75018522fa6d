import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { Dataset } from '../api/dataset.js';
import { Session } from '../api/session.js';
import type { TriggerSpec } from '../api/stream-writer.js';
import type { StreamingQuery } from '../api/streaming-query.js';
import type { ClaimOptions } from '../checkpoint/checkpoint-claim.js';
import { asUsage, SluiceError, UsageError } from '../errors.js';
import type { QueryProgress } from '../exec/progress.js';
import type { PlanIndex } from '../exec/task-runner.js';
import type { SharedLanes } from '../exec/worker-pool.js';
import type { AppQuerySetup } from '../exec/worker-protocol.js';
import { walkPlan } from '../plan/logical-plan.js';
import { MemoryTables } from '../sinks/memory-tables.js';
import { createSink, parseSinkUri } from '../sinks/sink-factory.js';
import { createSource, parseSourceUri } from '../sources/source-uri.js';
import type { StateStoreSettings } from '../state/state-store-cache.js';
import type { Clock } from '../util/clock.js';
import { parseDuration } from '../util/duration.js';
import { packagePath } from '../util/package-root.js';
import type { AppDefinition, AppOutput } from './app.js';
import { claimAppCheckpoint } from './app-checkpoint.js';
import { type StageQuery, type StageSpec, stageDatasets, stageQueries } from './group-stages.js';

/** dist/apps, where the built-in apps are compiled to. */
const APPS_DIR = packagePath('dist', 'apps');

/** A loaded app and the URL worker threads import it from. */
export interface LoadedApp {
  def: AppDefinition;
  module: string;
}

/** The built-in apps (`sluice apps`), sorted by name. */
export async function listApps(): Promise<LoadedApp[]> {
  const names = fs.existsSync(APPS_DIR)
    ? fs.readdirSync(APPS_DIR).filter((n) => fs.existsSync(path.join(APPS_DIR, n, 'index.js')))
    : [];
  const apps = await Promise.all(names.sort().map((n) => loadApp(n)));
  return apps;
}

/** Loads a built-in app by name, or an app module by path (a compiled .js/.mjs file). */
export async function loadApp(ref: string): Promise<LoadedApp> {
  const builtIn = path.join(APPS_DIR, ref, 'index.js');
  let file: string;
  if (!ref.includes('/') && !ref.includes('\\') && !/\.[cm]?[jt]s$/.test(ref)) {
    if (!fs.existsSync(builtIn)) {
      const known = fs.existsSync(APPS_DIR) ? fs.readdirSync(APPS_DIR).join(', ') : '(none built)';
      throw new UsageError(
        'UNKNOWN_APP',
        `no app named '${ref}'`,
        `run one of: ${known}; or give a path to your own app module, e.g. ./my-app.js`,
      );
    }
    file = builtIn;
  } else {
    file = path.resolve(ref);
    if (/\.ts$/.test(file)) {
      throw new UsageError(
        'APP_NOT_BUILT',
        `${ref} is TypeScript source`,
        'compile it first (npx tsc) and run the .js file it produces',
      );
    }
    if (!fs.existsSync(file))
      throw new UsageError(
        'UNKNOWN_APP',
        `app module ${ref} does not exist`,
        'check the path (relative to the current directory)',
      );
    if (fs.statSync(file).isDirectory()) {
      throw new UsageError(
        'BAD_APP',
        `app module ${ref} is a directory`,
        'give the compiled .js file of the app, e.g. ./dist/my-app.js',
      );
    }
  }
  const module = pathToFileURL(file).href;
  let mod: { default?: AppDefinition };
  try {
    mod = (await import(module)) as { default?: AppDefinition };
  } catch (err) {
    if (err instanceof SluiceError) throw err;
    throw new SluiceError(
      'BAD_APP',
      `app module ${ref} failed to load: ${describeUserError(err)}`,
      err instanceof SyntaxError
        ? `it must be JavaScript (an ES module); \`node --check ${file}\` shows where it fails to parse`
        : (err as NodeJS.ErrnoException).code === 'ERR_MODULE_NOT_FOUND'
          ? 'install what it imports, or fix the import path'
          : 'fix the module (its top-level code must not fail), then run again',
      { cause: err },
    );
  }
  const def = mod.default;
  if (!def || typeof def.build !== 'function' || typeof def.outputs !== 'object') {
    throw new SluiceError(
      'BAD_APP',
      `${ref} does not export an app`,
      "its default export must be defineApp({ name, description, inputs, outputs, build }); see the README's 'Writing an app'",
    );
  }
  return { def, module };
}

/** Validates and converts option values (durations to milliseconds); unknown options are errors. */
export function parseAppOptions(def: AppDefinition, raw: Record<string, unknown>): Record<string, unknown> {
  const decl = def.options ?? {};
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(raw)) {
    if (!(key in decl)) {
      const known = Object.keys(decl);
      throw new SluiceError(
        'BAD_OPTION',
        `app ${def.name} has no option --${key}`,
        known.length ? `its options are: ${known.map((k) => `--${k}`).join(', ')}` : 'it takes no options',
      );
    }
  }
  for (const [key, o] of Object.entries(decl)) {
    const v = raw[key] ?? o.default;
    if (v === undefined) continue;
    let parsed: unknown = v;
    if (o.type === 'duration') parsed = parseDuration(v as string | number, `--${key}`);
    else if (o.type === 'number') {
      parsed = Number(v);
      if (!Number.isFinite(parsed))
        throw new SluiceError(
          'BAD_OPTION',
          `--${key} must be a number, got '${v}'`,
          `e.g. --${key} ${o.default ?? 10}`,
        );
    } else if (o.type === 'boolean') parsed = v === true || v === 'true';
    else parsed = String(v);
    if (o.choices && !o.choices.includes(parsed as string | number)) {
      throw new SluiceError(
        'BAD_OPTION',
        `--${key} must be one of ${o.choices.join(', ')}, got '${v}'`,
        `e.g. --${key} ${o.choices[0]}`,
      );
    }
    out[key] = parsed;
  }
  return out;
}

/** Resolves `--source`/`--sink` values (`URI` for the first name, or `NAME=URI`) against the app's declared names. */
export function assignUris(kind: 'source' | 'sink', declared: string[], given: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const g of given) {
    const m = /^([A-Za-z][\w-]*)=(.+)$/.exec(g);
    const name = m && declared.includes(m[1]) ? m[1] : declared[0];
    const uri = m && declared.includes(m[1]) ? m[2] : g;
    if (m && !declared.includes(m[1]) && !/^[a-z]+:/.test(g)) {
      throw new SluiceError(
        'BAD_OPTION',
        `--${kind} ${g}: the app has no ${kind === 'source' ? 'input' : 'output'} named '${m[1]}'`,
        `its ${kind === 'source' ? 'inputs' : 'outputs'} are: ${declared.join(', ')}`,
      );
    }
    if (name in out) {
      throw new SluiceError(
        'BAD_OPTION',
        `two --${kind} values for '${name}'`,
        `name them: --${kind} NAME=URI with NAME one of ${declared.join(', ')}`,
      );
    }
    out[name] = uri;
  }
  return out;
}

/** A Kafka sink's options with the output's natural key as `keyColumn`, unless the URI names one. */
function keyedSinkOptions(out: AppOutput, format: string, options: Record<string, string>): Record<string, string> {
  if (format !== 'kafka' || out.key === undefined || 'keyColumn' in options) return options;
  return { ...options, keyColumn: out.key };
}

/** The source URI of an input with the app's declared format and schema added where the URI does not say. */
export function inputUri(def: AppDefinition, name: string, uri: string): string {
  const input = def.inputs[name];
  const params = new URLSearchParams(uri.includes('?') ? uri.slice(uri.indexOf('?') + 1) : '');
  if (input.format && !params.has('format') && !uri.startsWith('kafka:')) params.set('format', input.format);
  if (input.format && uri.startsWith('kafka:') && !params.has('valueFormat')) params.set('valueFormat', input.format);
  if (input.schema && !params.has('schema'))
    params.set('schema', typeof input.schema === 'string' ? input.schema : JSON.stringify(input.schema));
  const base = uri.includes('?') ? uri.slice(0, uri.indexOf('?')) : uri;
  const qs = params.toString();
  return qs ? `${base}?${qs}` : base;
}

/** The compiled library (dist/lib): an error raised from code in it, rather than in an app, may be a sluice bug. */
const LIB_DIR = fileURLToPath(new URL('../', import.meta.url));

/** The first stack frame of `err` outside Node's internals and node_modules, as `file:line:col`. */
function firstOwnFrame(err: unknown): string | undefined {
  if (!(err instanceof Error)) return undefined;
  for (const line of err.stack?.split('\n') ?? []) {
    const m = /^at (?:.* \()?((?:file:\/\/)?\/[^\s()]+):(\d+):(\d+)\)?$/.exec(line.trim());
    if (!m || m[1].includes('/node_modules/')) continue;
    return `${m[1].startsWith('file:') ? fileURLToPath(m[1]) : m[1]}:${m[2]}:${m[3]}`;
  }
  return undefined;
}

/** Whether `err` was thrown by an app's own code rather than from inside sluice's library (then it may be a bug). */
function thrownByApp(err: unknown): boolean {
  const frame = firstOwnFrame(err);
  return frame !== undefined && !frame.startsWith(LIB_DIR);
}

/** `message (at file:line:col)` of an error in an app's code. */
function describeUserError(err: unknown): string {
  const what = err instanceof Error ? `${err.name === 'Error' ? '' : `${err.name}: `}${err.message}` : String(err);
  const frame = firstOwnFrame(err);
  return frame && !frame.startsWith(LIB_DIR) ? `${what} (at ${frame})` : what;
}

/** Calls the app's build with a session whose inputs read the given URIs. */
export function buildApp(
  def: AppDefinition,
  session: Session,
  options: Record<string, unknown>,
  inputs: Record<string, string>,
): Record<string, Dataset<unknown>> {
  try {
    return buildOutputs(def, session, options, inputs);
  } catch (err) {
    if (err instanceof SluiceError || !thrownByApp(err)) throw err;
    throw new SluiceError(
      'APP_BUILD_FAILED',
      `app ${def.name} failed while defining its queries: ${describeUserError(err)}`,
      'fix build(): it only defines the queries (no I/O); your functions run later, per batch',
      { cause: err },
    );
  }
}

function buildOutputs(
  def: AppDefinition,
  session: Session,
  options: Record<string, unknown>,
  inputs: Record<string, string>,
): Record<string, Dataset<unknown>> {
  const outputs = def.build({
    session,
    options,
    input: <T>(name: string): Dataset<T> => {
      const uri = inputs[name];
      if (uri === undefined)
        throw new SluiceError(
          'BAD_APP',
          `app ${def.name} reads input '${name}' which it does not declare`,
          `declare it in inputs: ${Object.keys(def.inputs).join(', ')}`,
        );
      return session.readStream.load(uri) as unknown as Dataset<T>;
    },
  });
  for (const name of Object.keys(def.outputs)) {
    if (!def.outputs[name].lateOf && !outputs[name])
      throw new SluiceError(
        'BAD_APP',
        `app ${def.name} declares output '${name}' but build() did not return it`,
        'return one Dataset per declared output',
      );
  }
  return outputs;
}

/** Used by worker threads: the plan of one output of the app, built exactly as the driver built it. */
export async function rebuildAppPlan(setup: AppQuerySetup): Promise<PlanIndex> {
  const { def } = await loadApp(fileURLToPath(setup.module));
  const session = Session.local({ threads: 0 });
  const outputs = buildApp(def, session, setup.options, setup.inputs);
  const ds = (setup.stage ? stageDatasets(setup.stage as StageSpec, outputs, session) : outputs)[setup.output];
  if (!ds) throw new Error(`app ${def.name} has no output ${setup.output} in this thread`);
  return new Map(walkPlan(ds.plan).map((n) => [n.id, n]));
}

/** How to run an app (the `sluice run` flags). */
export interface RunAppOptions {
  options?: Record<string, unknown>;
  sources?: string[];
  sinks?: string[];
  checkpoint?: string;
  trigger?: TriggerSpec;
  threads?: number;
  /** Worker threads the app's queries share with other runs' (a group member's tasks); see SessionOptions.lanes. */
  lanes?: SharedLanes;
  statePartitions?: number;
  /** Where the queries keep committed state (the writers' stateStore, stateCacheMb, stateLocalDir and stateMaxEvictionsPerBatch options). */
  stateStore?: Omit<StateStoreSettings, 'snapshotInterval'>;
  clock?: Clock;
  /** Timing of each query's checkpoint claim (a group member sets it from its session timeout). */
  checkpointClaim?: ClaimOptions;
  onProgress?: (output: string, p: QueryProgress) => void;
  /**
   * The stage of a group's app to run instead of one query per output as the app defines it: outputs the stage
   * leaves out do not run, and worker threads cut the plan as the stage says.
   */
  stage?: StageSpec;
}

/**
 * Starts one query per output of an app (an output declared with `lateOf` instead receives the late rows
 * of that output's query). Each query checkpoints in `<checkpoint>/<output>`. Every query is opened
 * (checkpoint, sources, sink, schema checks, the checkpoint files its first batch reads) before any runs a
 * batch, so a mistake in one output stops the run before another output has written anything; a query that
 * fails later stops the others.
 */
export async function runApp(
  app: LoadedApp,
  run: RunAppOptions,
): Promise<{ session: Session; queries: Map<string, StreamingQuery> }> {
  const { def, module } = app;
  const inputNames = Object.keys(def.inputs);
  const outputNames = Object.keys(def.outputs);
  // What the caller gave (option values, source and sink URIs and their options) is checked before anything
  // opens; a mistake there is bad usage (the CLI exits 2).
  const { options, inputs, givenSinks } = await asUsage(async () => {
    const options = parseAppOptions(def, run.options ?? {});
    const givenSources = assignUris('source', inputNames, run.sources ?? []);
    const givenSinks = assignUris('sink', outputNames, run.sinks ?? []);
    // Checked as given, so that a mistake is reported in the user's words, before the app's format and schema are added.
    for (const uri of Object.values(givenSources)) parseSourceUri(uri);
    const inputs = Object.fromEntries(
      inputNames.map((n) => [n, inputUri(def, n, givenSources[n] ?? def.inputs[n].default)]),
    );
    // Sources and sinks check their options when they are made, without I/O: make the given ones once now.
    for (const n of Object.keys(givenSources)) {
      const { format, options: sourceOptions } = parseSourceUri(inputs[n]);
      createSource(format, sourceOptions);
    }
    for (const [n, uri] of Object.entries(givenSinks)) {
      const { format, options: sinkOptions } = parseSinkUri(uri);
      await createSink(format, sinkOptions, { memoryTables: new MemoryTables(), queryName: `${def.name}.${n}` });
    }
    return { options, inputs, givenSinks };
  });
  const session = Session.local({
    threads: run.threads ?? 0,
    lanes: run.lanes,
    statePartitions: run.statePartitions,
    clock: run.clock,
    checkpointClaim: run.checkpointClaim,
  });
  // Worker threads rebuild the app's queries with rebuildAppPlan of this module.
  session.app = { module, options, inputs, planBuilder: import.meta.url, stage: run.stage };
  const built = buildApp(def, session, options, inputs);
  const checkpoint = run.checkpoint ?? path.join('checkpoints', def.name);
  await claimAppCheckpoint(checkpoint, def.name, outputNames);
  const queries = new Map<string, StreamingQuery>();
  const begins: (() => void)[] = [];
  try {
    const staged = run.stage ? await stageQueries(run.stage, built, session) : null;
    for (const name of outputNames) {
      const out = def.outputs[name];
      if (out.lateOf) continue;
      const query: StageQuery | undefined = staged ? staged[name] : { dataset: built[name], late: true };
      if (!query) continue;
      const w = query.dataset.writeStream;
      if (query.sink) w.sink(query.sink);
      else {
        const { format, options: sinkOptions } = parseSinkUri(givenSinks[name] ?? out.default);
        w.format(format).options(keyedSinkOptions(out, format, sinkOptions));
      }
      w.outputMode(query.outputMode ?? out.outputMode)
        .options(query.options ?? {})
        .queryName(`${def.name}.${name}`)
        .option('checkpointLocation', path.join(checkpoint, name))
        .options(stateStoreOptions(run.stateStore))
        .appOutput(name);
      const late = query.late ? outputNames.find((n) => def.outputs[n].lateOf === name) : undefined;
      if (late) {
        const lateSink = parseSinkUri(givenSinks[late] ?? def.outputs[late].default);
        w.lateData(lateSink.format, keyedSinkOptions(def.outputs[late], lateSink.format, lateSink.options));
      }
      if (run.trigger) w.trigger(run.trigger);
      const { query: q, begin } = await w.open();
      queries.set(name, q);
      begins.push(begin);
      if (run.onProgress)
        session.streams.addListener({
          onQueryProgress: ({ progress }) => {
            if (progress.runId === q.runId) run.onProgress!(name, progress);
          },
        });
    }
    for (const begin of begins) begin();
    // The queries of an app stay in step: when one fails, the others stop after their batch in progress,
    // instead of running ahead of it on every restart that fails again.
    for (const q of queries.values())
      q.awaitTermination().catch(() => {
        for (const other of queries.values()) if (other !== q) void other.stop();
      });
  } catch (err) {
    await Promise.all([...queries.values()].map((q) => q.stop()));
    throw err;
  }
  return { session, queries };
}

/** The writer options of state store settings (undefined ones left out, so the defaults apply). */
function stateStoreOptions(settings: RunAppOptions['stateStore'] = {}): Record<string, string> {
  const out: Record<string, string> = {};
  if (settings.provider !== undefined) out.stateStore = settings.provider;
  if (settings.cacheMb !== undefined) out.stateCacheMb = String(settings.cacheMb);
  if (settings.localDir !== undefined) out.stateLocalDir = settings.localDir;
  if (settings.maxEvictionsPerBatch !== undefined)
    out.stateMaxEvictionsPerBatch = String(settings.maxEvictionsPerBatch);
  return out;
}
