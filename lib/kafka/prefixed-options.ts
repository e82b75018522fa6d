/**
 * Client settings the Kafka source and sink take under Kafka's own names with Spark's `kafka.` prefix.
 * Light on purpose: it must not import kafkajs, so parsing options does not load the client.
 */
import { SluiceError } from '../errors.js';
import type { KafkaClientOptions } from './client-options.js';
import { KAFKA_SECURITY_OPTION_KEYS, kafkaSecurityOptions } from './security-options.js';

/** Settings both the source and the sink pass to the client. */
export const KAFKA_CLIENT_OPTION_KEYS = [
  'kafka.retries',
  'kafka.retry.backoff.ms',
  'kafka.retry.backoff.max.ms',
  'kafka.request.timeout.ms',
  'kafka.socket.connection.setup.timeout.ms',
  'kafka.client.id',
  ...KAFKA_SECURITY_OPTION_KEYS,
] as const;

/** Consumer settings the source passes to the client, besides `kafka.bootstrap.servers` and `kafka.group.id`. */
export const KAFKA_CONSUMER_OPTION_KEYS = [
  ...KAFKA_CLIENT_OPTION_KEYS,
  'kafka.isolation.level',
  'kafka.max.partition.fetch.bytes',
  'kafka.fetch.max.wait.ms',
] as const;

/** Producer settings the sink takes, besides `kafka.bootstrap.servers`. */
export const KAFKA_PRODUCER_OPTION_KEYS = [
  ...KAFKA_CLIENT_OPTION_KEYS,
  'kafka.acks',
  'kafka.max.request.size',
  'kafka.max.message.bytes',
] as const;

/** Settings Spark refuses too, each with what to use instead. */
const REFUSED: Record<string, string> = {
  'kafka.auto.offset.reset': 'set startingOffsets (earliest, latest or JSON offsets) instead',
  'kafka.enable.auto.commit':
    "the query's checkpoint records its progress; set kafka.group.id or groupIdPrefix to commit it for lag tools",
  'kafka.key.deserializer': 'keys are read as strings or bytes: set keyFormat',
  'kafka.value.deserializer': 'values are read as strings, bytes or JSON: set valueFormat',
  'kafka.key.serializer': 'the sink writes the key column as bytes (strings as UTF-8)',
  'kafka.value.serializer': 'the sink writes the value column as bytes (strings as UTF-8), or whole rows as JSON',
  'kafka.interceptor.classes': 'interceptors are Java classes; sluice has none',
  // Kafka's linger.ms holds records back for more to arrive; a micro-batch's output is all there when it is sent.
  'kafka.linger.ms':
    "the sink sends each micro-batch's records at once when the batch is complete, in record batches as large as max.message.bytes allows, so there is nothing to wait for: remove it",
};

/**
 * The error for a `kafka.` setting the source or sink does not take: why, for settings Spark refuses too,
 * otherwise the list of the ones it accepts.
 */
export function unknownKafkaSetting(owner: string, key: string, accepted: readonly string[]): SluiceError {
  const reason = REFUSED[key.toLowerCase()];
  return new SluiceError(
    'BAD_OPTION',
    `the ${owner} does not take the Kafka setting '${key}'`,
    reason ?? `the kafka.* settings it takes are: ${accepted.filter((k) => k.startsWith('kafka.')).join(', ')}`,
  );
}

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

function isolationLevel(owner: string, v: unknown): KafkaClientOptions['isolationLevel'] {
  if (v === undefined) return undefined;
  const s = String(v).trim().toLowerCase();
  if (s === 'read_committed' || s === 'read_uncommitted') return s;
  throw new SluiceError(
    'BAD_OPTION',
    `option kafka.isolation.level of the ${owner} must be read_committed or read_uncommitted, found ${JSON.stringify(v)}`,
  );
}

/** Kafka's `acks`: all (or -1) waits for every in-sync replica, 1 for the leader only. */
function acks(owner: string, v: unknown): KafkaClientOptions['acks'] {
  if (v === undefined) return undefined;
  const s = String(v).trim().toLowerCase();
  if (s === 'all' || s === '-1') return -1;
  if (s === '1') return 1;
  throw new SluiceError(
    'BAD_OPTION',
    `option kafka.acks of the ${owner} must be all, -1 or 1, found ${JSON.stringify(v)}`,
    s === '0'
      ? 'the sink reads a failed batch back before sending it again, which needs acknowledged writes: use all or 1'
      : undefined,
  );
}

/**
 * The client options (retries, timeouts, security) given by `kafka.*` settings. A streaming query outlives short broker outages: by default
 * calls retry 20 times with back-off doubling from 100 ms to 2 s (about 35 s in all) before the batch fails.
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
    connectionTimeoutMs: intOption(owner, options, 'kafka.socket.connection.setup.timeout.ms', 1),
    isolationLevel: isolationLevel(owner, options['kafka.isolation.level']),
    maxPartitionFetchBytes: intOption(owner, options, 'kafka.max.partition.fetch.bytes', 1),
    fetchMaxWaitMs: intOption(owner, options, 'kafka.fetch.max.wait.ms', 0),
    acks: acks(owner, options['kafka.acks']),
    security: kafkaSecurityOptions(owner, options),
  };
}
