import * as fs from 'node:fs';
import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { SluiceError } from '../errors.js';
import { kindName } from '../plan/operators/transform-with-state-schema.js';
import { END_OF_INPUT_WATERMARK_MS } from '../sources/source.js';
import {
  findOperator,
  inspectCheckpoint,
  type QueryCheckpointSummary,
  readStateRows,
  type StateContents,
  TIMERS_VARIABLE,
  toJsonValue,
} from './checkpoint-inspector.js';
import { integerFlag } from './flags.js';
import { formatBytes, formatCount, formatTable } from './text-table.js';

interface CheckpointArgs {
  dir: string;
  json: boolean;
  state?: string;
  query?: string;
  key?: string;
  limit: unknown;
  'progress-log'?: string;
}

/** A watermark for people: none when the query has no event time or has not passed any yet, as the UI shows it. */
function watermarkText(ms: number | null): string {
  if (ms === null) return 'none';
  return ms >= END_OF_INPUT_WATERMARK_MS ? 'end of input (every source reached its end)' : new Date(ms).toISOString();
}

function json(v: unknown): string {
  return JSON.stringify(toJsonValue(v));
}

/** The human-readable report of one query. */
export function describeQuery(q: QueryCheckpointSummary): string[] {
  const lines: string[] = [];
  const field = (name: string, value: string): void => {
    lines.push(`  ${name.padEnd(14)} ${value}`);
  };
  lines.push(`query ${q.name === '.' ? q.dir : q.name}${q.name === '.' ? '' : `  (${q.dir})`}`);
  field('id', q.queryId ?? 'unknown (no readable metadata)');
  if (q.createdAt) field('created', q.createdAt);
  const committed =
    q.lastCommittedBatch === null
      ? 'no batch committed yet'
      : `batch ${q.lastCommittedBatch} committed at ${q.lastCommittedAt}`;
  field('batches', committed);
  if (q.pendingBatch !== null)
    field('', `batch ${q.pendingBatch} planned, not committed: it runs again with the same offsets on restart`);
  if (q.oldestRetainedBatch !== null && q.lastPlannedBatch !== null)
    field('logs kept', `batches ${q.oldestRetainedBatch}..${q.lastPlannedBatch}`);
  field('watermark', watermarkText(q.watermarkMs));
  const conf = Object.entries(q.conf)
    .map(([k, v]) => `${k}=${v}`)
    .join(', ');
  if (conf) field('settings', conf);
  field('on disk', formatBytes(q.diskBytes));
  if (q.sources.length > 0) {
    lines.push('  sources (latest plan)');
    lines.push(
      formatTable(
        ['#', 'source', 'start', 'end'],
        q.sources.map((s) => [String(s.index), s.description ?? '-', json(s.start), json(s.end)]),
        { indent: '    ', align: ['right', 'left', 'left', 'left'] },
      ),
    );
  }
  if (q.stateOperators.length > 0) {
    lines.push(`  state (version ${q.stateOperators[0].version})`);
    lines.push(
      formatTable(
        ['operator', 'partitions', 'rows', 'on disk', 'files', 'in memory'],
        q.stateOperators.map((o) => [
          o.name ?? o.id,
          String(o.partitions),
          formatCount(o.numRows),
          formatBytes(o.diskBytes),
          String(o.files),
          formatBytes(o.memoryBytes),
        ]),
        { indent: '    ' },
      ),
    );
  }
  const p = q.lastProgress;
  if (p) {
    lines.push(
      `  last progress  batch ${p.batchId} at ${p.timestamp}: ${formatCount(p.numInputRows)} rows in, ` +
        `${formatCount(p.sink.numOutputRows)} out, ${formatCount(p.processedRowsPerSecond)} rows/s, ${Math.round(p.durationMs.triggerExecution)} ms`,
    );
  }
  for (const problem of q.problems) lines.push(`  problem: ${problem}`);
  return lines;
}

/** A state value in a table cell: strings bare, everything else as compact JSON. */
function cell(v: unknown): string {
  if (typeof v === 'string') return v;
  if (v === undefined) return '';
  return JSON.stringify(toJsonValue(v));
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && Object.getPrototypeOf(v) === Object.prototype;
}

/** The state rows as a table: one column per field when every value is an object, like Spark's state reader. */
export function describeState(s: StateContents): string[] {
  const op = s.operator.name ?? `operator ${s.operator.id}`;
  const lines = [
    `state of ${op} in query ${s.query}, version ${s.operator.version}: ${formatCount(s.matched)} row${s.matched === 1 ? '' : 's'}` +
      (s.rows.length < s.matched ? `, showing the first ${s.rows.length} (--limit)` : ''),
  ];
  if (s.lastMetrics) {
    const figures = Object.entries(s.lastMetrics.customMetrics).map(([k, v]) => `${k} ${formatCount(v)}`);
    lines.push(`last progress, batch ${s.lastMetrics.batchId}: ${figures.join(', ')}`);
  }
  if (s.variables !== undefined) {
    const declared = Object.entries(s.variables).map(
      ([name, v]) =>
        `${name} (${kindName(v.kind)}${v.schema === undefined ? '' : ` ${typeof v.schema === 'string' ? v.schema : JSON.stringify(v.schema)}`}` +
        `${v.ttlMs === undefined ? '' : `, TTL ${v.ttlMs / 1000} s`})`,
    );
    lines.push(`variables: ${declared.join(', ') || 'none'}; timers are listed per key as ${TIMERS_VARIABLE}`);
  }
  if (s.rows.length === 0) return lines;
  if (s.variables !== undefined) {
    const hasExpiry = s.rows.some((r) => r.timeoutMs !== null);
    const headers = ['partition', 'key', 'variable', 'value', ...(hasExpiry ? ['expires'] : [])];
    const rows = s.rows.map((r) => [
      String(r.partition),
      cell(r.key),
      r.variable ?? '',
      cell(r.value),
      ...(hasExpiry ? [r.timeoutMs === null ? '' : new Date(r.timeoutMs).toISOString()] : []),
    ]);
    lines.push(formatTable(headers, rows));
    return lines;
  }
  const spread = s.rows.every((r) => isPlainObject(r.value));
  const fields = spread ? [...new Set(s.rows.flatMap((r) => Object.keys(r.value as object)))] : [];
  const hasTimeout = s.rows.some((r) => r.timeoutMs !== null);
  const headers = [
    'partition',
    'key',
    ...(spread ? fields.map((f) => (['partition', 'key', 'timeout'].includes(f) ? `value.${f}` : f)) : ['value']),
    ...(hasTimeout ? ['timeout'] : []),
  ];
  const rows = s.rows.map((r) => [
    String(r.partition),
    cell(r.key),
    ...(spread ? fields.map((f) => cell((r.value as Record<string, unknown>)[f])) : [cell(r.value)]),
    ...(hasTimeout ? [r.timeoutMs === null ? '' : new Date(r.timeoutMs).toISOString()] : []),
  ]);
  lines.push(formatTable(headers, rows));
  return lines;
}

function pickQuery(queries: QueryCheckpointSummary[], args: CheckpointArgs): QueryCheckpointSummary {
  if (args.query !== undefined) {
    const q = queries.find((x) => x.name === args.query || x.queryId === args.query);
    if (!q) {
      throw new SluiceError(
        'UNKNOWN_QUERY',
        `${args.dir} holds no query '${args.query}'`,
        `its queries are: ${queries.map((x) => x.name).join(', ')}`,
      );
    }
    return q;
  }
  if (queries.length === 1) return queries[0];
  const holding = queries.filter((q) => {
    try {
      findOperator(q, args.state!);
      return true;
    } catch {
      return false;
    }
  });
  if (holding.length === 1) return holding[0];
  if (holding.length === 0) {
    const listed = queries
      .map((q) => `${q.name}: ${q.stateOperators.map((o) => o.name ?? o.id).join(', ') || 'none'}`)
      .join('; ');
    throw new SluiceError(
      'UNKNOWN_OPERATOR',
      `no query in ${args.dir} has a stateful operator '${args.state}'`,
      `the operators are ${listed}`,
    );
  }
  throw new SluiceError(
    'AMBIGUOUS_QUERY',
    `${args.dir} holds ${queries.length} queries${holding.length > 1 ? ` with an operator '${args.state}'` : ''}`,
    `choose one with --query NAME: ${queries.map((x) => x.name).join(', ')}`,
  );
}

/** Runs `sluice checkpoint`; returns the exit code (1 when something could not be read). */
export async function checkpointCommand(
  args: CheckpointArgs,
  out: (text: string) => void = (t) => process.stdout.write(t),
): Promise<number> {
  const limit = integerFlag(
    args.limit,
    'limit',
    'a whole number',
    0,
    Infinity,
    'e.g. --limit 20, or --limit 0 for all rows',
  );
  const log = args['progress-log'];
  if (log !== undefined && !fs.existsSync(log)) {
    throw new SluiceError(
      'PROGRESS_LOG_NOT_FOUND',
      `progress log ${log} does not exist`,
      'give the file a query wrote with sluice run --progress-log FILE, or leave --progress-log out',
    );
  }
  const json = (value: unknown) => out(`${JSON.stringify(value, null, 2)}\n`);
  const lines = (text: string[]) => out(`${text.join('\n')}\n`);
  const queries = await inspectCheckpoint(args.dir, { progressLog: args['progress-log'], skipState: false });
  if (args.state !== undefined) {
    const q = pickQuery(queries, args);
    const contents = await readStateRows(q, findOperator(q, args.state), {
      limit: limit || undefined,
      key: args.key,
    });
    if (args.json)
      json({
        ...contents,
        rows: contents.rows.map((r) => ({ ...r, key: toJsonValue(r.key), value: toJsonValue(r.value) })),
      });
    else lines(describeState(contents));
    return 0;
  }
  const shown = args.query === undefined ? queries : [pickQuery(queries, args)];
  if (args.json) {
    json(shown.length === 1 && queries.length === 1 ? shown[0] : { dir: args.dir, queries: shown });
  } else {
    const head = shown.length > 1 ? [`checkpoint ${args.dir}: ${shown.length} queries`, ''] : [];
    lines([...head, ...shown.flatMap((q, i) => (i > 0 ? ['', ...describeQuery(q)] : describeQuery(q)))]);
  }
  return shown.some((q) => q.problems.length > 0) ? 1 : 0;
}

/** `sluice checkpoint <dir>`. */
export const checkpointCommandModule: CommandModule<object, CheckpointArgs> = {
  command: 'checkpoint <dir>',
  describe: 'Show what a checkpoint holds: query id, batches, offsets, watermark, state; --state shows state rows',
  builder: (y: Argv) =>
    y
      .positional('dir', {
        type: 'string',
        describe: "the checkpoint directory (sluice run --checkpoint); an app's directory lists each output's query",
        demandOption: true,
      })
      .option('json', { type: 'boolean', default: false, describe: 'print JSON for scripts' })
      .option('state', {
        type: 'string',
        requiresArg: true,
        describe: 'print the state rows of this operator (its id, e.g. 3, or name, e.g. mapGroupsWithState#3)',
      })
      .option('query', {
        type: 'string',
        requiresArg: true,
        describe: 'the query (output name) when the directory holds several',
      })
      .option('key', {
        type: 'string',
        requiresArg: true,
        describe: 'with --state: only the row of this key (as printed in the key column)',
      })
      .option('limit', { default: 50, requiresArg: true, describe: 'with --state: at most this many rows (0 = all)' })
      .option('progress-log', {
        type: 'string',
        requiresArg: true,
        describe: 'a sluice run --progress-log file: adds the last progress (and operator names for older checkpoints)',
      })
      .strict()
      .example('$0 checkpoint checkpoints/deposit-sessions', "what the app's queries have done")
      .example('$0 checkpoint checkpoints/deposit-sessions --json', 'the same as JSON')
      .example(
        '$0 checkpoint checkpoints/deposit-sessions --progress-log progress.jsonl',
        'with operator names and the last progress',
      )
      .example(
        '$0 checkpoint checkpoints/deposit-sessions --state 3 --limit 10',
        'the first 10 state rows of operator 3',
      )
      .example(
        '$0 checkpoint checkpoints/deposit-sessions --state 3 --key session-42',
        'the state of one key',
      ) as unknown as Argv<CheckpointArgs>,
  handler: async (argv: ArgumentsCamelCase<CheckpointArgs>) => {
    process.exitCode = await checkpointCommand(argv as CheckpointArgs);
  },
};
