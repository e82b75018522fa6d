/**
 * The one place every file write of the engine passes through (checkpoint logs, metadata, source logs,
 * state files, sink files and manifests, badRecordsPath, the progress log), so that a full disk or an
 * exceeded quota ends the same way wherever it strikes: the one-line `DISK_FULL` error naming the file.
 *
 * `SLUICE_WRITE_FAULT=<ENOSPC|EDQUOT>:<text>[:<n>]` makes the n-th write (1 by default, counted per thread)
 * to a path containing `<text>` fail with that error, as a full disk would, so that tests reach each writer
 * deterministically; nothing happens when it is unset.
 */
import * as path from 'node:path';
import { pathError } from '../errors.js';

interface WriteFault {
  code: string;
  pathPart: string;
  nth: number;
}

function parseFault(spec: string | undefined): WriteFault | null {
  const m = spec === undefined ? null : /^(ENOSPC|EDQUOT):(.+?)(?::(\d+))?$/.exec(spec);
  return m === null ? null : { code: m[1], pathPart: m[2], nth: m[3] === undefined ? 1 : Number(m[3]) };
}

const fault = parseFault(process.env.SLUICE_WRITE_FAULT);
let faultMatches = 0;

/** Throws the armed fault's error when this write to `file` is the one it aims at. */
function injectFault(file: string): void {
  if (fault === null || !path.resolve(file).includes(fault.pathPart)) return;
  if (++faultMatches !== fault.nth) return;
  const message = fault.code === 'ENOSPC' ? 'no space left on device' : 'disk quota exceeded';
  throw Object.assign(new Error(`${fault.code}: ${message}, write '${file}'`), {
    code: fault.code,
    syscall: 'write',
    path: file,
  });
}

/** A full disk or quota as DISK_FULL naming `file`; any other error unchanged. */
function diskFull(err: unknown, file: string): unknown {
  const e = err as NodeJS.ErrnoException;
  if (e?.code !== 'ENOSPC' && e?.code !== 'EDQUOT') return err;
  // A write on an open file reports no path: the message then names the file being written.
  if (typeof e.path !== 'string') e.path = file;
  return pathError(e, file);
}

/**
 * Runs `write`, which writes `file`, turning ENOSPC and EDQUOT into the DISK_FULL SluiceError. The caller
 * removes what a failed write left behind (a temporary or pending file).
 */
export async function guardedWrite<T>(file: string, write: () => Promise<T>): Promise<T> {
  try {
    injectFault(file);
    return await write();
  } catch (err) {
    throw diskFull(err, file);
  }
}

/** Synchronous {@link guardedWrite}. */
export function guardedWriteSync<T>(file: string, write: () => T): T {
  try {
    injectFault(file);
    return write();
  } catch (err) {
    throw diskFull(err, file);
  }
}
