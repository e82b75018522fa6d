/**
 * Summarises V8 CPU profiles (`node --cpu-prof`, e.g. from `run.js --profile DIR`): self time by cost
 * component (source generation, Arrow building, transfer between threads, operators, state store,
 * checkpoint and file IO, sink, engine, GC), by module and by function, over every profile in a directory
 * (one per thread).
 *
 *   node dist/bench/nexmark/profile-summary.js DIR [--top 25]
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
}
interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

/** Cost components, first match wins: [name, test on the module path or function name]. */
const COMPONENTS: [string, RegExp][] = [
  ['GC', /^\(garbage collector\)$/],
  ['idle (waiting for other threads or IO)', /^\((idle|program)\)$/],
  ['source: event generation', /lib\/gen\/|lib\/sources\//],
  [
    'transfer between threads (batch transfer, piscina)',
    /lib\/exec\/batch-transfer|apache-arrow\/(ipc|io|fb)\/|piscina|node:internal\/worker|structuredClone|MessagePort/,
  ],
  ['state store (incl. value codec)', /lib\/state\//],
  [
    'checkpoint logs and file IO',
    /lib\/checkpoint\/|^(open|close|write|read|fsync|rename|unlink|fstat|mkdir|rmdir|readdir|lstat|stat|openFileHandle)\w*$|node:internal\/fs/,
  ],
  ['stateful operators (aggregate, mapGroupsWithState)', /lib\/plan\/operators\/|lib\/plan\/aggregates\//],
  ['expressions (select, filter)', /lib\/plan\/expression/],
  ['Arrow building and reading', /lib\/arrow\/|apache-arrow\//],
  ['sink', /lib\/sinks\//],
  ['engine: driver, tasks, exchange', /lib\/exec\/|lib\/plan\/|lib\/api\//],
  ['user functions (query apps)', /bench\/nexmark\//],
  ['string decoding (rows for user functions)', /^(latin1Slice|utf8Slice|decode)$/],
  ['module loading and startup', /node:internal\/modules|compileSourceTextModule/],
];

function moduleOf(cf: CallFrame): string {
  const url = cf.url.replace(/^file:\/\/.*?\/dist\//, '').replace(/^file:\/\/.*node_modules\//, '');
  return url || cf.functionName || '(native)';
}

function componentOf(cf: CallFrame): string {
  const m = moduleOf(cf);
  for (const [name, re] of COMPONENTS) if (re.test(m) || re.test(cf.functionName)) return name;
  return 'other (native, node internals)';
}

/** Self time in ms per key over all profiles in `dir`. */
export function summarise(dir: string, keyOf: (cf: CallFrame) => string): { total: number; rows: [string, number][] } {
  const totals = new Map<string, number>();
  let total = 0;
  for (const file of fs.readdirSync(dir).filter((f) => f.endsWith('.cpuprofile'))) {
    const p = JSON.parse(fs.readFileSync(path.join(dir, file), 'utf8')) as CpuProfile;
    const byId = new Map(p.nodes.map((n) => [n.id, n]));
    for (let i = 0; i < p.samples.length; i++) {
      const ms = (p.timeDeltas[i] ?? 0) / 1000;
      const key = keyOf(byId.get(p.samples[i])!.callFrame);
      totals.set(key, (totals.get(key) ?? 0) + ms);
      total += ms;
    }
  }
  return { total, rows: [...totals].sort((a, b) => b[1] - a[1]) };
}

function print(title: string, s: { total: number; rows: [string, number][] }, top: number): void {
  console.log(`\n${title} (${(s.total / 1000).toFixed(2)} s sampled)`);
  for (const [k, ms] of s.rows.slice(0, top))
    console.log(`${((100 * ms) / s.total).toFixed(1).padStart(5)}%  ${(ms / 1000).toFixed(2).padStart(7)} s  ${k}`);
}

function main(): void {
  const dir = process.argv[2];
  const topAt = process.argv.indexOf('--top');
  const top = topAt > 0 ? Number(process.argv[topAt + 1]) : 25;
  if (!dir || !fs.existsSync(dir)) {
    console.error('usage: node dist/bench/nexmark/profile-summary.js DIR [--top N]  (DIR holds .cpuprofile files)');
    process.exit(2);
  }
  print('self time by component', summarise(dir, componentOf), top);
  print('self time by module', summarise(dir, moduleOf), top);
  print(
    'self time by function',
    summarise(dir, (cf) => `${cf.functionName || '(anonymous)'}  ${moduleOf(cf)}:${cf.lineNumber + 1}`),
    top,
  );
}

main();
