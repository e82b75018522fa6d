import * as fs from 'node:fs';
import * as path from 'node:path';
import ts from 'typescript';

/** Source files (paths relative to the scanned folder, `/`-separated) → the files of that folder they import. */
export type ImportGraph = Map<string, string[]>;

function sourceFiles(dir: string, under = ''): string[] {
  const files: string[] = [];
  for (const entry of fs.readdirSync(path.join(dir, under), { withFileTypes: true })) {
    const rel = under === '' ? entry.name : `${under}/${entry.name}`;
    if (entry.isDirectory()) files.push(...sourceFiles(dir, rel));
    else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts')) files.push(rel);
  }
  return files;
}

/**
 * The imports between the .ts files under `dir`: `import` (type-only too), `export ... from`, side-effect
 * imports and `import('...')`, in code and in type positions. TypeScript's own pre-processor finds them, so
 * an import written in a comment or a string does not count. Package and `node:` imports are left out.
 */
export function readImportGraph(dir: string): ImportGraph {
  const graph: ImportGraph = new Map();
  const files = sourceFiles(dir);
  const known = new Set(files);
  for (const file of files) {
    const text = fs.readFileSync(path.join(dir, file), 'utf8');
    const targets = new Set<string>();
    for (const { fileName } of ts.preProcessFile(text, true, true).importedFiles) {
      if (!fileName.startsWith('.')) continue;
      const target = path.posix.normalize(path.posix.join(path.posix.dirname(file), fileName)).replace(/\.js$/, '.ts');
      if (!known.has(target)) throw new Error(`${file} imports '${fileName}', which is not a .ts file under ${dir}`);
      targets.add(target);
    }
    graph.set(file, [...targets]);
  }
  return graph;
}

/** The strongly connected components of more than one file, or of a file that imports itself (Tarjan). */
function circularComponents(graph: ImportGraph): string[][] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const components: string[][] = [];
  const visit = (v: string): void => {
    index.set(v, index.size);
    low.set(v, index.get(v)!);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v)!, index.get(w)!));
      }
    }
    if (low.get(v) !== index.get(v)) return;
    const component: string[] = [];
    let w: string;
    do {
      w = stack.pop()!;
      onStack.delete(w);
      component.push(w);
    } while (w !== v);
    if (component.length > 1 || graph.get(v)?.includes(v)) components.push(component);
  };
  for (const v of graph.keys()) if (!index.has(v)) visit(v);
  return components;
}

/** A shortest circle through `start` inside `component`, as the files in import order, `start` first. */
function circleThrough(graph: ImportGraph, component: string[], start: string): string[] {
  const inside = new Set(component);
  const cameFrom = new Map<string, string>();
  const queue = [start];
  while (queue.length > 0) {
    const v = queue.shift()!;
    for (const w of graph.get(v) ?? []) {
      if (!inside.has(w)) continue;
      if (w === start) {
        const circle = [v];
        while (circle[0] !== start) circle.unshift(cameFrom.get(circle[0])!);
        return circle;
      }
      if (!cameFrom.has(w)) {
        cameFrom.set(w, v);
        queue.push(w);
      }
    }
  }
  throw new Error(`no circle through ${start}`);
}

/**
 * Every import circle between files: one per set of files that reach each other, shown as one concrete
 * circle (`a.ts -> b.ts -> a.ts`) followed by all the files of the set.
 */
export function importCircles(graph: ImportGraph): { circle: string[]; files: string[] }[] {
  return circularComponents(graph).map((component) => {
    const files = [...component].sort();
    return { circle: circleThrough(graph, component, files[0]), files };
  });
}
