import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';

/** dist/lib of the build: this file runs as dist/test/structure/worker-imports.test.js. */
const DIST_LIB = fileURLToPath(new URL('../../lib/', import.meta.url));

/**
 * The packages that the compiled modules reachable from `entries` import statically (type imports are gone
 * from the compiled code; `import()` calls, which load on first use, are not followed).
 */
function staticPackages(entries: string[]): Set<string> {
  const seen = new Set<string>();
  const packages = new Set<string>();
  const visit = (file: string): void => {
    if (seen.has(file)) return;
    seen.add(file);
    const code = fs.readFileSync(file, 'utf8');
    for (const m of code.matchAll(/^(?:import|export)\s+(?:[^;'"]*?\s+from\s+)?'([^']+)'/gm)) {
      const spec = m[1];
      if (spec.startsWith('.')) visit(path.resolve(path.dirname(file), spec));
      else if (!spec.startsWith('node:')) packages.add(spec);
    }
  };
  for (const e of entries) visit(path.join(DIST_LIB, e));
  return packages;
}

describe('what a worker thread loads', () => {
  it('reaches neither the disk store database, the Parquet reader nor the Kafka client from the pool worker and the app runner', () => {
    // A worker thread loads the pool worker, and the app runner to rebuild an app query's plan; each package
    // it compiles again costs the thread's start-up CPU (lmdb and parquet-wasm ~50 ms each, kafkajs ~70 ms), so
    // those load on use.
    const packages = staticPackages(['exec/pool-worker.js', 'app/app-runner.js']);
    expect([...packages]).to.include.members(['apache-arrow', 'piscina']);
    expect([...packages]).to.not.include.members(['lmdb']);
    expect([...packages]).to.not.include.members(['parquet-wasm']);
    expect([...packages]).to.not.include.members(['kafkajs']);
  });
});
