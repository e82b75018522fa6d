import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { importCircles, readImportGraph } from './import-graph.js';

/** lib/ of the repository: this file runs as dist/test/structure/layers.test.js. */
const LIB = fileURLToPath(new URL('../../../lib/', import.meta.url));

/**
 * The layers of lib/, top to bottom. A unit is a folder of lib/, or a file directly in it. A unit may import
 * units of its own layer and of the layers below, but no two units may import each other.
 *
 * exec sits above plan: the executor runs plan nodes (it analyses the logical plan and applies its
 * operators), while nothing in plan needs the executor. util holds the runtime services every layer uses
 * (clock, durations, crash points, notices). gen generates data for the CLI and for the nexmark source,
 * and writes to Kafka with the Kafka client.
 */
const LAYERS: readonly (readonly string[])[] = [
  ['cli', 'index.ts'],
  ['app', 'ui'],
  ['api', 'testing'],
  ['exec'],
  ['plan'],
  ['sources', 'sinks'],
  ['state', 'gen', 'group'],
  ['checkpoint', 'kafka'],
  ['arrow'],
  ['util'],
  ['errors.ts'],
];

/** Layer of each unit, 0 at the top. */
const LAYER_OF = new Map(LAYERS.flatMap((units, layer) => units.map((u) => [u, layer] as const)));

function unitOf(file: string): string {
  const slash = file.indexOf('/');
  return slash < 0 ? file : file.slice(0, slash);
}

/** Imports from one unit to another, by `from -> to`, with the file-level edges behind each. */
function unitEdges(graph: Map<string, string[]>): Map<string, string[]> {
  const edges = new Map<string, string[]>();
  for (const [file, targets] of graph) {
    for (const target of targets) {
      const from = unitOf(file);
      const to = unitOf(target);
      if (from === to) continue;
      const key = `${from} -> ${to}`;
      if (!edges.has(key)) edges.set(key, []);
      edges.get(key)!.push(`${file} -> ${target}`);
    }
  }
  return edges;
}

describe('lib layering', () => {
  const graph = readImportGraph(LIB);
  const edges = unitEdges(graph);

  it('places every folder of lib in a layer', () => {
    const unplaced = [...new Set([...graph.keys()].map(unitOf))].filter((u) => !LAYER_OF.has(u)).sort();
    expect(unplaced, `lib units missing from the layer table in this test: ${unplaced.join(', ')}`).to.deep.equal([]);
  });

  it('has no import circle between files (type-only imports included)', () => {
    const circles = importCircles(graph).map(
      ({ circle, files }) => `${[...circle, circle[0]].join(' -> ')}  (files in the circle: ${files.join(', ')})`,
    );
    expect(circles, `import circles:\n${circles.join('\n')}`).to.deep.equal([]);
  });

  it('imports only into its own layer or the layers below', () => {
    const upward: string[] = [];
    for (const [key, fileEdges] of edges) {
      const [from, to] = key.split(' -> ');
      const fromLayer = LAYER_OF.get(from);
      const toLayer = LAYER_OF.get(to);
      if (fromLayer === undefined || toLayer === undefined || toLayer >= fromLayer) continue;
      for (const e of fileEdges) upward.push(`${e}  (${from} is below ${to})`);
    }
    expect(upward, `upward imports:\n${upward.join('\n')}`).to.deep.equal([]);
  });

  it('has no two folders that import each other', () => {
    const twoWay: string[] = [];
    for (const [key, fileEdges] of edges) {
      const [from, to] = key.split(' -> ');
      const back = edges.get(`${to} -> ${from}`);
      if (back && from < to) twoWay.push(`${from} <-> ${to}: ${fileEdges.join(', ')}; back: ${back.join(', ')}`);
    }
    expect(twoWay, `folders that import each other:\n${twoWay.join('\n')}`).to.deep.equal([]);
  });
});
