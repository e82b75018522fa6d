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
    super('USER_CODE', `user function of operator ${operator} failed in batch ${batchId}: ${why}`,
      'fix the function or the input; the batch was not committed and runs again on restart', { cause });
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
