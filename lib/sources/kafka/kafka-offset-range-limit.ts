/**
 * Where a Kafka query starts and, for a bounded run, where it ends (Spark's KafkaOffsetRangeLimit):
 * `startingOffsets` (earliest, latest or per-partition JSON), `startingTimestamp` and
 * `startingOffsetsByTimestamp` (the first record at or after a time, by a ListOffsets request), and
 * `endingOffsets` (latest or per-partition JSON). Both are resolved once, on a query's first start, and
 * kept in its checkpoint.
 */
import { SluiceError } from '../../errors.js';
import type { KafkaClient } from '../../kafka/client.js';
import type { PartitionOffsets } from '../../kafka/topic-partition.js';

/** A Kafka source offset: topic → partition → the next offset to read. */
export type KafkaOffsets = Record<string, Record<string, number>>;

/** Where a new query starts, by precedence: a timestamp for all partitions, one per partition, or offsets. */
export type StartingOffsetsSpec =
  | { kind: 'offsets'; offsets: 'earliest' | 'latest' | KafkaOffsets }
  | { kind: 'timestamp'; timestamp: number }
  | { kind: 'byTimestamp'; timestamps: KafkaOffsets };

/** What a start by timestamp does for a partition with no record that late: fail, or start at its end. */
export type TimestampStrategy = 'error' | 'latest';

/** Sets one partition's offset, adding its topic when it is the first. */
export function setOffset(o: KafkaOffsets, topic: string, partition: number | string, offset: number): void {
  o[topic] ??= {};
  o[topic][partition] = offset;
}

/** Whether `body` has the shape of {@link KafkaOffsets}. */
export function isOffsets(body: unknown): body is KafkaOffsets {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return false;
  return Object.values(body).every(
    (parts) =>
      typeof parts === 'object' &&
      parts !== null &&
      Object.entries(parts).every(([p, o]) => /^\d+$/.test(p) && Number.isSafeInteger(o)),
  );
}

/** Offsets with topics and partitions in a fixed order, so equal positions serialise equally. */
export function sortedOffsets(o: KafkaOffsets): KafkaOffsets {
  const out: KafkaOffsets = {};
  for (const t of Object.keys(o).sort()) {
    const parts: Record<string, number> = {};
    for (const p of Object.keys(o[t]).sort((a, b) => Number(a) - Number(b))) parts[p] = o[t][p];
    out[t] = parts;
  }
  return out;
}

function parseJsonOffsets(value: string, min: number): KafkaOffsets | null {
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch {
    return null;
  }
  if (!isOffsets(parsed) || Object.values(parsed).some((parts) => Object.values(parts).some((o) => o < min)))
    return null;
  return parsed;
}

/** `earliest`, `latest` or per-partition offsets; a wrong value is a clear error. */
export function parseStartingOffsets(value: string): 'earliest' | 'latest' | KafkaOffsets {
  const v = value.trim();
  if (v === 'earliest' || v === 'latest') return v;
  const parsed = parseJsonOffsets(v, -2);
  if (!parsed) {
    throw new SluiceError(
      'BAD_OPTION',
      `startingOffsets must be earliest, latest or JSON like {"topic":{"0":23,"1":-2}}, found '${value}'`,
      'in the JSON, -2 means earliest and -1 latest',
    );
  }
  return parsed;
}

/** `latest` or per-partition offsets (-1 for latest); a wrong value is a clear error. */
export function parseEndingOffsets(value: string): 'latest' | KafkaOffsets {
  const v = value.trim();
  if (v === 'latest') return v;
  const parsed = parseJsonOffsets(v, -1);
  if (!parsed) {
    throw new SluiceError(
      'BAD_OPTION',
      `endingOffsets must be latest or JSON like {"topic":{"0":50,"1":-1}}, found '${value}'`,
      'in the JSON, -1 means the latest offset when the query first starts; a run cannot end at earliest',
    );
  }
  return parsed;
}

/** Per-partition timestamps in epoch milliseconds, `{"topic":{"0":1700000000000}}`. */
export function parseOffsetsByTimestamp(value: string): KafkaOffsets {
  const parsed = parseJsonOffsets(value.trim(), 0);
  if (!parsed) {
    throw new SluiceError(
      'BAD_OPTION',
      `startingOffsetsByTimestamp must be JSON like {"topic":{"0":1700000000000}}, found '${value}'`,
      'give a timestamp in epoch milliseconds for every partition',
    );
  }
  return parsed;
}

/**
 * The starting position of the options, by Spark's precedence: `startingTimestamp`, then
 * `startingOffsetsByTimestamp`, then `startingOffsets` (default latest).
 */
export function startingOffsetsSpec(options: {
  startingOffsets?: string;
  startingTimestamp?: number;
  startingOffsetsByTimestamp?: string;
}): StartingOffsetsSpec {
  if (options.startingTimestamp !== undefined) return { kind: 'timestamp', timestamp: options.startingTimestamp };
  if (options.startingOffsetsByTimestamp !== undefined)
    return { kind: 'byTimestamp', timestamps: parseOffsetsByTimestamp(options.startingOffsetsByTimestamp) };
  return { kind: 'offsets', offsets: parseStartingOffsets(options.startingOffsets ?? 'latest') };
}

/**
 * A value per partition from per-partition JSON: every partition of `ends` must be named and nothing else,
 * as Spark requires (a partition left out would otherwise start somewhere unsaid).
 */
function perPartition(
  option: string,
  given: KafkaOffsets,
  ends: PartitionOffsets[],
  resolve: (p: PartitionOffsets, value: number) => number,
): KafkaOffsets {
  const out: KafkaOffsets = {};
  for (const [topic, parts] of Object.entries(given)) {
    for (const [partition, value] of Object.entries(parts)) {
      const p = ends.find((e) => e.topic === topic && e.partition === Number(partition));
      if (!p) {
        throw new SluiceError(
          'BAD_OPTION',
          `${option} names ${topic}-${partition}, which the query does not read`,
          'name only existing partitions of the topics the query reads',
        );
      }
      setOffset(out, topic, partition, resolve(p, value));
    }
  }
  const missing = ends.filter((p) => out[p.topic]?.[p.partition] === undefined);
  if (missing.length > 0) {
    throw new SluiceError(
      'BAD_OPTION',
      `${option} does not name ${missing.map((p) => `${p.topic}-${p.partition}`).join(', ')}`,
      `give a value for every partition the query reads`,
    );
  }
  return sortedOffsets(out);
}

/** The offsets a new query starts from. Timestamps are looked up with ListOffsets requests. */
export async function resolveStartingOffsets(
  client: KafkaClient,
  ends: PartitionOffsets[],
  spec: StartingOffsetsSpec,
  strategy: TimestampStrategy,
): Promise<KafkaOffsets> {
  if (spec.kind === 'offsets') {
    const o = spec.offsets;
    if (o === 'earliest' || o === 'latest')
      return perPartition('startingOffsets', allAt(ends, o === 'earliest' ? -2 : -1), ends, at);
    return perPartition('startingOffsets', o, ends, at);
  }
  const timestamps =
    spec.kind === 'timestamp'
      ? perPartition('startingTimestamp', allAt(ends, spec.timestamp), ends, (_p, t) => t)
      : perPartition('startingOffsetsByTimestamp', spec.timestamps, ends, (_p, t) => t);
  const out: KafkaOffsets = {};
  const unmatched: string[] = [];
  for (const [topic, parts] of Object.entries(timestamps)) {
    const found = await client.offsetsForTimes(
      topic,
      Object.entries(parts).map(([p, timestamp]) => ({ partition: Number(p), timestamp })),
    );
    for (const { partition, offset } of found) {
      if (offset !== null) {
        setOffset(out, topic, partition, offset);
      } else if (strategy === 'latest') {
        setOffset(out, topic, partition, ends.find((e) => e.topic === topic && e.partition === partition)!.high);
      } else {
        unmatched.push(`${topic}-${partition} (${new Date(parts[partition]).toISOString()})`);
      }
    }
  }
  if (unmatched.length > 0) {
    throw new SluiceError(
      'KAFKA_NO_OFFSET_FOR_TIMESTAMP',
      `no record of ${unmatched.join(', ')} has a timestamp at or after the starting timestamp`,
      'give an earlier timestamp, or set startingOffsetsByTimestampStrategy=latest to start those partitions at their latest offset',
    );
  }
  return sortedOffsets(out);
}

/** The offsets a bounded run ends at: -1 (and `latest`) become each partition's next offset now. */
export function resolveEndingOffsets(ends: PartitionOffsets[], spec: 'latest' | KafkaOffsets): KafkaOffsets {
  return perPartition('endingOffsets', spec === 'latest' ? allAt(ends, -1) : spec, ends, at);
}

/** Every partition given the same value. */
function allAt(ends: PartitionOffsets[], value: number): KafkaOffsets {
  const out: KafkaOffsets = {};
  for (const p of ends) setOffset(out, p.topic, p.partition, value);
  return out;
}

/** An offset of per-partition JSON: -2 is the partition's earliest offset, -1 its next one. */
function at(p: PartitionOffsets, offset: number): number {
  return offset === -2 ? p.low : offset === -1 ? p.high : offset;
}
