/**
 * `mkdir -p` that ends at once with the real cause. Node's recursive mkdir loops for ever where the kernel
 * answers ENOENT for a parent that exists (/proc, /sys), and reports a read-only file system as ENOENT.
 * These walk up once to the nearest existing directory, then create each missing level once, so whatever
 * the file system answers they end after one system call per level, with the error of the level that
 * failed. Give their errors to `pathError` (errors.ts) for the message.
 */
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';

/** An ENOTDIR error for `file`, a file found where a directory of `dir` belongs. */
function notADirectory(dir: string, file: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`ENOTDIR: not a directory, mkdir '${dir}'`), {
    code: 'ENOTDIR',
    syscall: 'mkdir',
    path: file,
  });
}

/** Whether `p` is a directory; null when it does not exist (or a file above it is in the way: walk on up to it). */
function statKind(p: string): boolean | null {
  try {
    const st = fs.statSync(p, { throwIfNoEntry: false });
    return st === undefined ? null : st.isDirectory();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOTDIR') return null;
    throw err;
  }
}

/** The directories of `dir` that do not exist, outermost first; throws ENOTDIR when a file is in the way. */
function missingLevels(dir: string): string[] {
  const missing: string[] = [];
  let at = path.resolve(dir);
  for (;;) {
    const kind = statKind(at);
    if (kind === true) break;
    if (kind === false) throw notADirectory(dir, at);
    missing.unshift(at);
    const parent = path.dirname(at);
    if (parent === at) break;
    at = parent;
  }
  return missing;
}

/**
 * Creates `dir` and its missing parents; returns the first directory it created (undefined when `dir`
 * existed), as `fs.mkdir(dir, { recursive: true })` does.
 */
export async function createDirectory(dir: string): Promise<string | undefined> {
  const missing = missingLevels(dir);
  for (const level of missing) {
    try {
      await fsp.mkdir(level);
    } catch (err) {
      // Another writer may have made it in the meantime; a file made in the meantime is still in the way.
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      if (statKind(level) !== true) throw notADirectory(dir, level);
    }
  }
  return missing[0];
}

/** Synchronous {@link createDirectory}. */
export function createDirectorySync(dir: string): string | undefined {
  const missing = missingLevels(dir);
  for (const level of missing) {
    try {
      fs.mkdirSync(level);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      if (statKind(level) !== true) throw notADirectory(dir, level);
    }
  }
  return missing[0];
}
