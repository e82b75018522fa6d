/**
 * How each kind of docs block is executed and what it must show (see BlockKind). Each check throws an
 * AssertionError naming the block and what it got.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { type Field, Type } from 'apache-arrow';
import { expect } from 'chai';
import { listApps, loadApp } from '../../lib/app/app-runner.js';
import { schemaFromSpec } from '../../lib/arrow/schema.js';
import { readProgressLog, runCli } from '../support/cli.js';
import { startBroker } from '../support/kafka-broker.js';
import { type DocWorkspace, ROOT, runBash } from './doc-workspace.js';
import { type CodeBlock, logicalLines } from './markdown-blocks.js';
import { outputMatches, parseTranscript } from './transcript.js';

/** Where a block is, for messages. */
function where(block: CodeBlock): string {
  return `${block.file}:${block.line}`;
}

/** The last lines of a command's output, for a failure message. */
function tail(output: string, lines = 40): string {
  return output.split('\n').slice(-lines).join('\n');
}

/** Runs this checkout's `sluice` with `args` in `cwd`; returns its status and output. */
async function sluice(args: string[], cwd: string): Promise<{ status: number | null; output: string }> {
  const res = await runCli(args, { cwd, timeoutMs: 120_000 });
  return { status: res.code, output: `${res.stdout}${res.stderr}` };
}

/**
 * A ```sh block: run with bash as it stands, stopping at the first failing command. `npm test` runs the
 * suite this check belongs to (CI runs it for real, .ci/run): here it runs with mocha's `--dry-run`, so
 * its pretest (build, test broker) runs and every test file loads, without the suite running inside itself.
 */
export function checkScript(block: CodeBlock, ws: DocWorkspace, timeoutMs: number): string {
  const script = block.text.replace(/^npm test\b/gm, 'npm test -- --dry-run');
  const res = runBash(ws, script, timeoutMs);
  expect(
    res.status,
    `${where(block)}: the block ${res.timedOut ? 'did not finish in time' : `failed (exit ${res.status})`}:\n${tail(res.output)}`,
  ).to.equal(0);
  return res.output;
}

const MARK = '\x1e';

/**
 * A transcript: its commands run in order in one bash (a command may use what an earlier one did), each
 * must succeed and print what is quoted under it (compared by the rule in transcript.ts).
 */
export function checkTranscript(block: CodeBlock, ws: DocWorkspace, timeoutMs: number): void {
  const steps = parseTranscript(block.text);
  const script = steps
    .map((s, i) => `printf '${MARK}start ${i}${MARK}'\n${s.command}\nprintf '${MARK}end ${i} %d${MARK}' $?`)
    .join('\n');
  const res = runBash(ws, script, timeoutMs, []);
  const parts = res.output.split(new RegExp(`${MARK}(start \\d+|end \\d+ \\d+)${MARK}`));
  steps.forEach((step, i) => {
    const at = parts.indexOf(`start ${i}`);
    const end = parts[at + 2] ?? '';
    const printed = at >= 0 ? parts[at + 1] : '';
    const status = /^end \d+ (\d+)$/.exec(end)?.[1];
    const title = `${where(block)}: \`${step.command}\``;
    expect(at, `${title} did not run${res.timedOut ? ' (the transcript did not finish in time)' : ''}`).to.be.at.least(
      0,
    );
    expect(status, `${title} failed:\n${tail(printed)}`).to.equal('0');
    expect(
      outputMatches(step.expected, printed, ws.cwd),
      `${title} prints something else.\n--- quoted:\n${step.expected.join('\n')}\n--- printed:\n${printed}`,
    ).to.equal(true);
  });
}

/** A directory with `sluice` installed as a dependency (this checkout, built), for compiling snippets. */
function snippetProject(ws: DocWorkspace): string {
  const dir = path.join(ws.tmp, 'snippets');
  if (fs.existsSync(dir)) return dir;
  fs.mkdirSync(path.join(dir, 'node_modules'), { recursive: true });
  fs.symlinkSync(ROOT, path.join(dir, 'node_modules/sluice'));
  fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: 'snippets', type: 'module' }));
  return dir;
}

/**
 * A ```ts block: compiled (strict, NodeNext) against the built package, as a user's project would be. An
 * app module (`export default defineApp(...)`) is then run with `sluice run` from another directory on its
 * default input, and each of its outputs must get rows; any other snippet runs with node and must end by
 * itself.
 */
export async function checkTypeScript(block: CodeBlock, ws: DocWorkspace): Promise<void> {
  const dir = snippetProject(ws);
  const name = `block-${block.line}`;
  fs.mkdirSync(path.join(dir, 'src'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'src', `${name}.ts`), block.text);
  const tsconfig = path.join(dir, `tsconfig-${name}.json`);
  fs.writeFileSync(
    tsconfig,
    JSON.stringify({
      compilerOptions: {
        target: 'ES2022',
        module: 'NodeNext',
        moduleResolution: 'NodeNext',
        strict: true,
        skipLibCheck: true,
        rootDir: 'src',
        outDir: 'dist',
        types: ['node'],
        typeRoots: [path.join(ROOT, 'node_modules/@types')],
      },
      files: [`src/${name}.ts`],
    }),
  );
  const tsc = spawnSync(process.execPath, [path.join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', tsconfig], {
    cwd: dir,
    encoding: 'utf8',
  });
  expect(tsc.status, `${where(block)} does not compile:\n${tsc.stdout}${tsc.stderr}`).to.equal(0);
  const module = path.join(dir, 'dist', `${name}.js`);
  if (/^export default defineApp\(/m.test(block.text)) {
    const elsewhere = fs.mkdtempSync(path.join(ws.tmp, 'run-'));
    const res = await sluice(
      ['run', module, '--trigger', 'available-now', '--progress-log', 'progress.jsonl'],
      elsewhere,
    );
    expect(res.status, `${where(block)}: sluice run on the app failed:\n${tail(res.output)}`).to.equal(0);
    const written = new Map<string, number>();
    for (const p of readProgressLog(path.join(elsewhere, 'progress.jsonl')))
      written.set(p.output, (written.get(p.output) ?? 0) + p.sink.numOutputRows);
    expect(written.size, `${where(block)}: the app ran no batch`).to.be.greaterThan(0);
    for (const [output, rows] of written)
      expect(rows, `${where(block)}: output ${output} keeps nothing of the app's default input`).to.be.greaterThan(0);
    return;
  }
  const run = spawnSync(process.execPath, [module], { cwd: dir, encoding: 'utf8', timeout: 120_000 });
  expect(
    run.status,
    `${where(block)} ${run.signal ? 'did not end by itself' : 'failed'}:\n${tail(`${run.stdout}${run.stderr}`)}`,
  ).to.equal(0);
}

/** Dotted paths of the leaf fields of a schema, e.g. `device.type`. */
function leafFields(fields: readonly Field[], prefix = ''): string[] {
  return fields.flatMap((f) =>
    f.type.typeId === Type.Struct ? leafFields(f.type.children, `${prefix}${f.name}.`) : [`${prefix}${f.name}`],
  );
}

/**
 * A ```json block in an app's README: a record of the app's input. It must have every field of the input's
 * schema, and the app must read it as one row that is not malformed.
 */
export async function checkJsonRecord(block: CodeBlock, ws: DocWorkspace): Promise<void> {
  const app = /^apps\/([^/]+)\/README\.md$/.exec(block.file)?.[1];
  expect(app, `${where(block)}: a json block is an input record of an app, so it belongs in an app's README`).to.be.a(
    'string',
  );
  const { def } = await loadApp(app!);
  const [input] = Object.values(def.inputs);
  const record = JSON.parse(block.text) as Record<string, unknown>;
  for (const field of leafFields(schemaFromSpec(input.schema ?? {}).fields)) {
    const value = field.split('.').reduce<unknown>((v, k) => (v as Record<string, unknown> | undefined)?.[k], record);
    expect(value, `${where(block)}: the record has no ${field}, a field of ${app}'s input`).to.not.equal(undefined);
  }
  const dir = fs.mkdtempSync(path.join(ws.tmp, 'record-'));
  fs.mkdirSync(path.join(dir, 'in'));
  fs.writeFileSync(path.join(dir, 'in', 'part-0.jsonl'), `${JSON.stringify(record)}\n`);
  const sinks = Object.keys(def.outputs).flatMap((o) => ['--sink', `${o}=noop:`]);
  const res = await sluice(
    ['run', app!, '--source', 'file:in', ...sinks, '--trigger', 'available-now', '--progress-log', 'p.jsonl', '-q'],
    dir,
  );
  expect(res.status, `${where(block)}: ${app} failed on the record:\n${tail(res.output)}`).to.equal(0);
  const progress = readProgressLog(path.join(dir, 'p.jsonl'));
  const read = progress.reduce((n, p) => n + p.numInputRows, 0);
  const malformed = progress.reduce((n, p) => n + p.sources.reduce((m, s) => m + s.numMalformedRows, 0), 0);
  expect(read, `${where(block)}: rows ${app} read from the record`).to.be.greaterThan(0);
  expect(malformed, `${where(block)}: the record is malformed for ${app}`).to.equal(0);
}

/** `[--flag VALUE]` options of a usage line, with VALUE ('' when none). */
function bracketedOptions(line: string): { flag: string; value: string }[] {
  return [...line.matchAll(/\[--([\w-]+)(?: ([^\]]+))?\]/g)].map((m) => ({ flag: m[1], value: m[2] ?? '' }));
}

/** The usage of one built-in app: its inputs, outputs and options, with their defaults and choices. */
async function checkAppUsage(block: CodeBlock, line: string, appName: string, runHelp: string): Promise<void> {
  const { def } = await loadApp(appName);
  const inputs = Object.keys(def.inputs);
  const outputs = Object.keys(def.outputs);
  const options = def.options ?? {};
  const title = `${where(block)}: usage of ${appName}`;
  const given = bracketedOptions(line);
  for (const { flag, value } of given) {
    if (flag === 'source' || flag === 'sink') {
      const names = flag === 'source' ? inputs : outputs;
      const named = /^([\w-]+)=URI$/.exec(value)?.[1];
      if (named) expect(names, `${title}: --${flag} ${value}`).to.include(named);
      else expect(value, `${title}: --${flag} ${value} (the app has ${names.join(', ')})`).to.equal('URI');
    } else if (flag in options) {
      const o = options[flag];
      const documented = value.includes('|') ? (o.choices ?? []).join('|') : String(o.default);
      expect(value, `${title}: --${flag} shows its default or choices`).to.equal(documented);
    } else {
      expect(runHelp, `${title}: --${flag} is neither an option of the app nor of sluice run`).to.contain(`--${flag}`);
    }
  }
  for (const o of Object.keys(options))
    expect(
      given.map((g) => g.flag),
      `${title}: option --${o} is missing`,
    ).to.include(o);
  for (const [flag, names] of [
    ['source', inputs],
    ['sink', outputs],
  ] as const) {
    const shown = given.filter((g) => g.flag === flag).map((g) => /^([\w-]+)=/.exec(g.value)?.[1] ?? names[0]);
    expect(shown, `${title}: every ${flag === 'source' ? 'input' : 'output'} has a --${flag}`).to.have.members([
      ...names,
    ]);
  }
}

/**
 * Usage lines (`sluice <command> ...`): the command's `--help` must list every flag shown and every choice
 * of a `<a|b>` or `--flag a|b` placeholder that names things (words, not paths); a `sluice run <app>` line
 * for a built-in app must show exactly the app's inputs, outputs and options, with their defaults.
 */
export async function checkSynopsis(block: CodeBlock): Promise<void> {
  await checkCommandLines(block, logicalLines(block.text), true);
}

/** Commands for a real Kafka cluster: every flag they use is an option of its command. */
export async function checkClusterCommands(block: CodeBlock): Promise<void> {
  const commands = logicalLines(block.text).filter((l) => !l.startsWith('#'));
  await checkCommandLines(
    block,
    commands.map((c) => c.replace(/'[^']*'/g, 'URI')),
    false,
  );
}

async function checkCommandLines(block: CodeBlock, lines: string[], appUsage: boolean): Promise<void> {
  const builtIn = new Set((await listApps()).map((a) => a.def.name));
  for (const line of lines) {
    const [, command, target] = line.split(/\s+/);
    const help = await sluice([command, '--help'], ROOT);
    expect(help.status, `${where(block)}: \`sluice ${command} --help\`:\n${help.output}`).to.equal(0);
    if (appUsage && command === 'run' && builtIn.has(target)) {
      await checkAppUsage(block, line, target, help.output);
      continue;
    }
    for (const m of line.matchAll(/--([\w-]+)/g))
      expect(help.output, `${where(block)}: sluice ${command} has no --${m[1]}`).to.contain(`--${m[1]}`);
    const choices = [...line.matchAll(/<([^>]*\|[^>]*)>|--[\w-]+ ([\w-]+(?:\|[\w-]+)+)/g)].flatMap((m) =>
      (m[1] ?? m[2]).split('|'),
    );
    for (const choice of choices.filter((c) => /^[a-z][\w-]*$/.test(c)))
      expect(help.output, `${where(block)}: sluice ${command} --help does not mention '${choice}'`).to.contain(choice);
  }
}

/** Every file and directory under `dir`, relative to it. */
function walk(dir: string, prefix = ''): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const rel = `${prefix}${e.name}`;
    return e.isDirectory() ? [`${rel}/`, ...walk(path.join(dir, e.name), `${rel}/`)] : [rel];
  });
}

/** A listed path as a pattern: `<name>` is one path segment, `...` anything below. */
function pathPattern(listed: string): RegExp {
  const body = listed
    .replace(/^<checkpoint>\//, '')
    .split(/(<[^>]+>|\.\.\.)/)
    .map((part) =>
      part === '...' ? '.+' : part.startsWith('<') ? '[^/]+' : part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'),
    )
    .join('');
  return new RegExp(`^${body}/?$`);
}

/**
 * A query's checkpoint with everything a checkpoint can hold: the bank-account app on its sample data, its
 * `movements` to Kafka (the sink that keeps files in the checkpoint), its `accounts` to files.
 */
async function fullCheckpoint(ws: DocWorkspace): Promise<string> {
  const dir = fs.mkdtempSync(path.join(ws.tmp, 'checkpoint-'));
  const broker = await startBroker({ topics: { movements: 1 } });
  try {
    const res = await sluice(
      [
        'run',
        'bank-account',
        '--sink',
        `movements=kafka://${broker.bootstrap.split(',')[0]}/movements`,
        '--sink',
        'accounts=file:accounts',
        '--checkpoint',
        'ckpt',
        '--trigger',
        'available-now',
        '-q',
      ],
      dir,
    );
    expect(res.status, `bank-account into Kafka:\n${tail(res.output)}`).to.equal(0);
  } finally {
    await broker.stop();
  }
  return path.join(dir, 'ckpt', 'movements');
}

/**
 * `PATH  what it holds` lines. Paths under `<checkpoint>/` are checked against a real query checkpoint: each
 * line must match something in it, and everything in it must match a line. Other paths must exist in the
 * repository.
 */
export async function checkListing(block: CodeBlock, ws: DocWorkspace): Promise<void> {
  const listed = logicalLines(block.text).map((l) => l.split(/ {2,}/)[0]);
  const inCheckpoint = listed.filter((p) => p.startsWith('<checkpoint>/'));
  for (const p of listed.filter((l) => !l.startsWith('<checkpoint>/')))
    expect(fs.existsSync(path.join(ROOT, p)), `${where(block)}: ${p} does not exist`).to.equal(true);
  if (inCheckpoint.length === 0) return;
  const found = walk(await fullCheckpoint(ws));
  const patterns = inCheckpoint.map(pathPattern);
  for (const [i, p] of inCheckpoint.entries()) {
    const message = `${where(block)}: nothing in a checkpoint is ${p}:\n${found.join('\n')}`;
    expect(
      found.some((f) => patterns[i].test(f)),
      message,
    ).to.equal(true);
  }
  const unlisted = found.filter((f) => !f.endsWith('/') && !patterns.some((p) => p.test(f)));
  expect(unlisted, `${where(block)}: files of a checkpoint the listing does not show`).to.deep.equal([]);
}
