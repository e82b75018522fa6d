/**
 * Which broker failures the client retries, and how a retry is reported. Loads without kafkajs, so callers
 * can format retry events before the client itself is loaded.
 */

/** Retry policy for broker calls that fail with retriable errors (broker down, leader moved, timeouts). */
export interface KafkaRetryOptions {
  /** Attempts after the first one. Default 10. */
  retries?: number;
  /** First back-off in ms, doubled each attempt (with ±20% jitter). Default 100. */
  initialMs?: number;
  /** Back-off ceiling in ms. Default 2000. */
  maxMs?: number;
}

/** Reported before each back-off, e.g. to show a stall in query progress. */
export interface KafkaRetryEvent {
  operation: string;
  attempt: number;
  delayMs: number;
  error: Error;
}

/** One line saying that a call to `bootstrap` failed and is being retried, for logs and notices. */
export function retryText(bootstrap: string, { operation, attempt, delayMs, error }: KafkaRetryEvent): string {
  return `Kafka ${operation} to ${bootstrap} failed (${error.message}); retrying in ${(delayMs / 1000).toFixed(1)} s (attempt ${attempt + 1})`;
}

/** Thrown inside a retry loop for conditions kafkajs does not flag itself (no leader known yet, ...). */
export class RetriableCondition extends Error {
  readonly retriable = true;
}

/** The fields of kafkajs' errors that tell whether a failure may pass. */
interface KjsError extends Error {
  retriable?: boolean;
  type?: string;
  cause?: unknown;
}

/** Whether trying `err`'s call again can help (kafkajs' `retriable` flag, with the exceptions below). */
export function isRetriable(err: unknown): boolean {
  const e = err as KjsError | undefined;
  if (!e || typeof e !== 'object') return false;
  // kafkajs' inner retrier gives up with a non-retriable wrapper; the broker may still come back.
  if (e.name === 'KafkaJSNumberOfRetriesExceeded') return e.cause === undefined || isRetriable(e.cause);
  if (e.name === 'KafkaJSOffsetOutOfRange') return false;
  return e.retriable === true;
}
