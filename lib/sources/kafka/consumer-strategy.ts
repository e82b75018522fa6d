/**
 * Which partitions the Kafka source reads (Spark's ConsumerStrategy): exactly one of `assign` (fixed
 * partitions), `subscribe` (topics, with partitions added later) or `subscribePattern` (every topic whose
 * name matches, including topics created later).
 */
import { SluiceError } from '../../errors.js';
import type { KafkaClient } from '../../kafka/client.js';
import type { PartitionOffsets } from '../../kafka/topic-partition.js';

/** The partitions a Kafka source reads. */
export type ConsumerStrategy =
  | { kind: 'assign'; partitions: Record<string, number[]> }
  | { kind: 'subscribe'; topics: string[] }
  | { kind: 'subscribePattern'; pattern: RegExp; source: string };

const FORMS =
  'write kafka://HOST:PORT/TOPIC[,TOPIC], or set exactly one of subscribe (topics), subscribePattern (a regular expression) or assign (JSON like {"topic":[0,1]})';

/** Reads `assign`, `{"topic":[0,1]}`; a wrong value is a clear error. */
export function parseAssign(value: string): Record<string, number[]> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch {
    parsed = undefined;
  }
  const ok =
    typeof parsed === 'object' &&
    parsed !== null &&
    !Array.isArray(parsed) &&
    Object.keys(parsed).length > 0 &&
    Object.values(parsed).every(
      (ps) => Array.isArray(ps) && ps.length > 0 && ps.every((p) => Number.isSafeInteger(p) && p >= 0),
    );
  if (!ok) {
    throw new SluiceError(
      'BAD_OPTION',
      `assign must be JSON naming topics and their partitions like {"topic":[0,1]}, found '${value}'`,
    );
  }
  const out: Record<string, number[]> = {};
  for (const [topic, ps] of Object.entries(parsed as Record<string, number[]>))
    out[topic] = [...new Set(ps)].sort((a, b) => a - b);
  return out;
}

/** The strategy of the given options; anything but exactly one of them is a clear error. */
export function consumerStrategy(options: {
  topics?: string[];
  subscribePattern?: string;
  assign?: string;
}): ConsumerStrategy {
  const given = [
    options.topics && options.topics.length > 0 ? 'subscribe' : null,
    options.subscribePattern !== undefined ? 'subscribePattern' : null,
    options.assign !== undefined ? 'assign' : null,
  ].filter((g) => g !== null);
  if (given.length !== 1) {
    throw new SluiceError(
      'BAD_OPTION',
      given.length === 0
        ? 'the kafka source needs a topic'
        : `give the kafka source one of subscribe, subscribePattern and assign, not ${given.join(' and ')}`,
      FORMS,
    );
  }
  if (options.assign !== undefined) return { kind: 'assign', partitions: parseAssign(options.assign) };
  if (options.subscribePattern === undefined) return { kind: 'subscribe', topics: options.topics! };
  try {
    return {
      kind: 'subscribePattern',
      pattern: new RegExp(`^(?:${options.subscribePattern})$`),
      source: options.subscribePattern,
    };
  } catch (err) {
    throw new SluiceError(
      'BAD_OPTION',
      `subscribePattern '${options.subscribePattern}' is not a regular expression: ${(err as Error).message}`,
    );
  }
}

/** What the strategy reads, for descriptions: topics, the pattern, or topic-partition names. */
export function describeStrategy(s: ConsumerStrategy): string {
  if (s.kind === 'subscribe') return s.topics.join(',');
  if (s.kind === 'subscribePattern') return s.source;
  return Object.entries(s.partitions)
    .flatMap(([t, ps]) => ps.map((p) => `${t}-${p}`))
    .join(',');
}

/**
 * Every partition the strategy reads now, with its earliest and next offset, sorted by topic then partition.
 * Subscribed topics that do not exist (yet) are left out; assigned partitions must exist.
 */
export async function strategyPartitions(client: KafkaClient, s: ConsumerStrategy): Promise<PartitionOffsets[]> {
  if (s.kind === 'assign') {
    const topics = Object.keys(s.partitions).sort();
    const ends = await client.fetchOffsets(topics);
    const missing = topics.flatMap((t) =>
      s.partitions[t].filter((p) => !ends.some((e) => e.topic === t && e.partition === p)).map((p) => `${t}-${p}`),
    );
    if (missing.length > 0) {
      throw new SluiceError(
        'BAD_OPTION',
        `assign names ${missing.join(', ')}, which ${missing.length === 1 ? 'does' : 'do'} not exist`,
        'assign only existing partitions (they are numbered from 0)',
      );
    }
    return ends.filter((e) => s.partitions[e.topic].includes(e.partition));
  }
  const parts = await client.listPartitions(s.kind === 'subscribe' ? s.topics : s.pattern);
  const topics = [...new Set(parts.map((p) => p.topic))];
  return topics.length === 0 ? [] : client.fetchOffsets(topics);
}
