import * as fs from 'node:fs';
import * as path from 'node:path';

/**
 * Errors a user can cause and fix. The CLI prints `message` (and `hint`) on one line without a stack
 * trace; anything that is not a SluiceError is a bug and keeps its stack.
 */
export class SluiceError extends Error {
  /** What to do about it, printed after the message. */
  readonly hint?: string;
  /** A stable machine-readable code, e.g. 'CHECKPOINT_CORRUPT'. */
  readonly code: string;
  constructor(code: string, message: string, hint?: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'SluiceError';
    this.code = code;
    this.hint = hint;
  }
}

/** Thrown when user code (a map function, a state function, a foreachBatch callback) fails inside a batch. */
export class UserCodeError extends SluiceError {
  readonly operator: string;
  readonly batchId: number;
  constructor(operator: string, batchId: number, cause: unknown) {
    const why = cause instanceof Error ? cause.message : String(cause);
    super(
      'USER_CODE',
      `user function of operator ${operator} failed in batch ${batchId}: ${why}`,
      'fix the function or the input; the batch was not committed and runs again on restart',
      { cause },
    );
    this.operator = operator;
    this.batchId = batchId;
  }
}

/** One-line description of any error for logs and the CLI. */
export function describeError(err: unknown): string {
  if (err instanceof SluiceError) return err.hint ? `${err.message} (${err.hint})` : err.message;
  if (err instanceof Error) return err.message;
  return String(err);
}

/**
 * A mistake in how sluice was called: an unknown flag, app or name, a flag without its value, or a value
 * a flag cannot take. The CLI exits 2 for it, and 1 for other user errors.
 */
export class UsageError extends SluiceError {
  constructor(code: string, message: string, hint?: string, options?: { cause?: unknown }) {
    super(code, message, hint, options);
    this.name = 'UsageError';
  }
}

/**
 * Runs `check` over values that came from the command line: a SluiceError it throws becomes a UsageError
 * with the same code, message and hint (a source URI the user typed is bad usage, the same URI in an app's
 * code is not).
 */
export async function asUsage<T>(check: () => T | Promise<T>): Promise<T> {
  try {
    return await check();
  } catch (err) {
    if (!(err instanceof SluiceError) || err instanceof UsageError) throw err;
    throw new UsageError(err.code, err.message, err.hint, { cause: err });
  }
}

/**
 * What ENOENT means for `at`: a directory on the way is missing (named), or the parent exists and its file
 * system refuses new entries, as /proc and /sys do.
 */
function missingCause(at: string | undefined): { cause: string; hint: string } {
  const create = 'create the directory first, or fix the path';
  if (at === undefined) return { cause: 'a parent directory does not exist', hint: create };
  const parent = path.dirname(path.resolve(at));
  let existing = parent;
  while (!fs.existsSync(existing) && path.dirname(existing) !== existing) existing = path.dirname(existing);
  if (existing === parent)
    return {
      cause: `the file system of ${parent} does not allow creating files or directories in it`,
      hint: 'choose a location on a regular file system',
    };
  let firstMissing = parent;
  while (path.dirname(firstMissing) !== existing) firstMissing = path.dirname(firstMissing);
  return { cause: `a parent directory does not exist (${firstMissing})`, hint: create };
}

const PERMISSION_CODES = new Set(['EACCES', 'EPERM']);
const IN_THE_WAY_CODES = new Set(['ENOTDIR', 'EEXIST']);
const FULL_CODES = new Set(['ENOSPC', 'EDQUOT']);

/**
 * Turns a file-system error on a path the user chose (an output, checkpoint or dead-letter directory, a
 * log file) into a SluiceError naming `what`, the real cause and the fix: a read-only file system, no
 * permission, a file where a directory belongs (or the reverse), a missing parent directory, a file system
 * that takes no new entries (/proc), a full disk. This is the one place that maps fs error codes to
 * messages. Other errors are returned unchanged, so a bug still shows its stack.
 * @param what e.g. `the checkpoint directory /data/ckpt`
 * @param verb what sluice was doing with it, for the message: `cannot <verb> <what>`
 */
export function pathError(err: unknown, what: string, verb = 'write'): unknown {
  const e = err as NodeJS.ErrnoException;
  const code = e?.code ?? '';
  const at = typeof e?.path === 'string' ? e.path : undefined;
  const where = at ? ` (${code} on ${at})` : '';
  const fail = (sluiceCode: string, cause: string, hint: string): SluiceError =>
    new SluiceError(sluiceCode, `cannot ${verb} ${what}: ${cause}${where}`, hint, { cause: err });
  if (code === 'EROFS')
    return fail('PATH_NOT_WRITABLE', 'the file system is read-only', 'choose a location on a writable file system');
  if (PERMISSION_CODES.has(code))
    return fail('PATH_NOT_WRITABLE', 'permission denied', 'choose a location you can write to, or fix its permissions');
  if (IN_THE_WAY_CODES.has(code))
    return fail(
      'PATH_NOT_WRITABLE',
      'a file is in the way where a directory is needed',
      'give a directory path, or move that file away',
    );
  if (code === 'EISDIR') return fail('PATH_NOT_WRITABLE', 'it is a directory', 'give a file path');
  if (code === 'ENOENT') {
    const { cause, hint } = missingCause(at);
    return fail('PATH_NOT_WRITABLE', cause, hint);
  }
  if (FULL_CODES.has(code))
    return fail(
      'DISK_FULL',
      'no space left on the device',
      'free some space and run again; a batch that was cut short was not committed and runs again on restart',
    );
  return err;
}
