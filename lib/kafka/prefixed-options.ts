/**
 * Client options the Kafka source and sink share, under Kafka's own names with Spark's `kafka.` prefix.
 * Light on purpose: it must not import kafkajs, so parsing options does not load the client.
 */
import { SluiceError } from '../errors.js';
import type { KafkaClientOptions } from './client-options.js';

/** Option names accepted by the source and the sink for the client. */
export const KAFKA_CLIENT_OPTION_KEYS = [
  'kafka.retries',
  'kafka.retry.backoff.ms',
  'kafka.retry.backoff.max.ms',
  'kafka.request.timeout.ms',
  'kafka.client.id',
] as const;

function intOption(owner: string, options: Record<string, unknown>, key: string, min: number): number | undefined {
  const v = options[key];
  if (v === undefined) return undefined;
  const n = typeof v === 'number' ? v : typeof v === 'string' && /^\s*\d+\s*$/.test(v) ? Number(v) : NaN;
  if (!Number.isSafeInteger(n) || n < min) {
    throw new SluiceError(
      'BAD_OPTION',
      `option ${key} of the ${owner} must be an integer of at least ${min}, found ${JSON.stringify(v)}`,
    );
  }
  return n;
}

/**
 * The retry budget and timeouts from `kafka.*` options. A streaming query outlives short broker outages:
 * by default calls retry 20 times with back-off doubling from 100 ms to 2 s (about 35 s in all) before the
 * batch fails.
 */
export function kafkaClientOptions(owner: string, options: Record<string, unknown>): KafkaClientOptions {
  const clientId = options['kafka.client.id'];
  return {
    clientId: clientId === undefined ? undefined : String(clientId),
    retry: {
      retries: intOption(owner, options, 'kafka.retries', 0) ?? 20,
      initialMs: intOption(owner, options, 'kafka.retry.backoff.ms', 1),
      maxMs: intOption(owner, options, 'kafka.retry.backoff.max.ms', 1),
    },
    requestTimeoutMs: intOption(owner, options, 'kafka.request.timeout.ms', 1),
  };
}
