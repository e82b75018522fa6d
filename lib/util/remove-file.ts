/**
 * Removing a file that may already be gone, with one blocking unlink(2): what `fs.rm(file, { force: true })`
 * does with a stat first and a round trip through the thread pool for each call.
 */
import * as fs from 'node:fs';

/** Removes `file` if it is there; a missing file is not an error. */
export function removeFileIfPresent(file: string): void {
  try {
    fs.unlinkSync(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}
