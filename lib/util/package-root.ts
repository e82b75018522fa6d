import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

let cached: string | undefined;

/**
 * The directory of the installed sluice package: the one holding its package.json, `data/` (the sample data)
 * and `dist/`. Found from this module's own location, so it is the same whatever the current directory is,
 * in a clone of the repository as in `node_modules/sluice` of a project that installed the package.
 */
export function packageRoot(): string {
  if (cached !== undefined) return cached;
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (isSluicePackage(path.join(dir, 'package.json'))) {
      cached = dir;
      return dir;
    }
    const parent = path.dirname(dir);
    // An installation without sluice's package.json above its modules is broken: a bug, not a user mistake.
    if (parent === dir) throw new Error(`no package.json of sluice above ${fileURLToPath(import.meta.url)}`);
    dir = parent;
  }
}

/** A path inside the sluice package, e.g. `packagePath('data', 'bank')`. */
export function packagePath(...segments: string[]): string {
  return path.join(packageRoot(), ...segments);
}

function isSluicePackage(file: string): boolean {
  try {
    return (JSON.parse(fs.readFileSync(file, 'utf8')) as { name?: unknown }).name === 'sluice';
  } catch {
    return false;
  }
}
