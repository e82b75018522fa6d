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

/** A mistake in how a command is called (an argument that cannot be used): the CLI exits with 2, not 1. */
export class UsageError extends SluiceError {}

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

const PERMISSION_CODES = new Set(['EACCES', 'EPERM', 'EROFS']);
const IN_THE_WAY_CODES = new Set(['ENOTDIR', 'EEXIST']);
const FULL_CODES = new Set(['ENOSPC', 'EDQUOT']);

/**
 * Turns a file-system error on a path the user chose (an output, checkpoint or dead-letter directory, a
 * log file) into a SluiceError naming `what` and the fix: no permission, a file where a directory
 * belongs (or the reverse), a missing parent directory, a full disk. Other errors are returned unchanged,
 * so a bug still shows its stack.
 * @param what e.g. `the checkpoint directory /data/ckpt`
 * @param verb what sluice was doing with it, for the message: `cannot <verb> <what>`
 */
export function pathError(err: unknown, what: string, verb = 'write'): unknown {
  const e = err as NodeJS.ErrnoException;
  const at = typeof e?.path === 'string' ? e.path : undefined;
  const where = at ? ` (${e.code} on ${at})` : '';
  if (PERMISSION_CODES.has(e?.code ?? '')) {
    return new SluiceError(
      'PATH_NOT_WRITABLE',
      `cannot ${verb} ${what}: permission denied${where}`,
      'choose a location you can write to, or fix its permissions',
      { cause: err },
    );
  }
  if (IN_THE_WAY_CODES.has(e?.code ?? '')) {
    return new SluiceError(
      'PATH_NOT_WRITABLE',
      `cannot ${verb} ${what}: a file is in the way where a directory is needed${where}`,
      'give a directory path, or move that file away',
      { cause: err },
    );
  }
  if (e?.code === 'EISDIR') {
    return new SluiceError(
      'PATH_NOT_WRITABLE',
      `cannot ${verb} ${what}: it is a directory${where}`,
      'give a file path',
      { cause: err },
    );
  }
  if (e?.code === 'ENOENT') {
    return new SluiceError(
      'PATH_NOT_WRITABLE',
      `cannot ${verb} ${what}: a parent directory does not exist${where}`,
      'create the directory first, or fix the path',
      { cause: err },
    );
  }
  if (FULL_CODES.has(e?.code ?? '')) {
    return new SluiceError(
      'DISK_FULL',
      `cannot ${verb} ${what}: no space left on the device${where}`,
      'free some space and run again; a batch that was cut short was not committed and runs again on restart',
      { cause: err },
    );
  }
  return err;
}
