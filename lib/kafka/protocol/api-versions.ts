/**
 * Which version of Fetch, Produce, ListOffsets, Metadata and the transaction requests sluice speaks with each
 * broker: the highest one
 * both sides speak, from that broker's ApiVersions answer, asked once per broker connection object. Fetch v4
 * and Produce v3 (the lowest Kafka 4.0 accepts) are the floor, also for a broker that speaks only older ones
 * (which then refuses the request with UNSUPPORTED_VERSION). Metadata and ListOffsets have no floor: below
 * the versions that carry leader epochs (v7, v4), kafkajs' own requests serve (see {@link commonVersion}); a
 * broker without the transaction requests cannot fence a producer, which the Kafka sink reports.
 */
import { type ApiVersionRanges, askApiVersions, type KjsBroker } from '../kafkajs-internals.js';

/** Kafka's API key of Produce. */
export const PRODUCE_API_KEY = 0;
/** Kafka's API key of Fetch. */
export const FETCH_API_KEY = 1;
/** Kafka's API key of ListOffsets. */
export const LIST_OFFSETS_API_KEY = 2;
/** Kafka's API key of Metadata. */
export const METADATA_API_KEY = 3;
/** Kafka's API key of InitProducerId. */
export const INIT_PRODUCER_ID_API_KEY = 22;
/** Kafka's API key of AddPartitionsToTxn. */
export const ADD_PARTITIONS_TO_TXN_API_KEY = 24;
/** Kafka's API key of EndTxn. */
export const END_TXN_API_KEY = 26;

/**
 * The versions sluice's own encoders speak (see fetch/v16.ts, produce/v10.ts, list-offsets/v7.ts, metadata/v12.ts
 * and transactions/). InitProducerId starts at v3, the first that carries the current producer id and epoch;
 * AddPartitionsToTxn stops at v3, as v4 on is the brokers' own batched form.
 */
const SPOKEN: Record<number, { min: number; max: number }> = {
  [PRODUCE_API_KEY]: { min: 3, max: 10 },
  [FETCH_API_KEY]: { min: 4, max: 16 },
  [LIST_OFFSETS_API_KEY]: { min: 4, max: 7 },
  [METADATA_API_KEY]: { min: 7, max: 12 },
  [INIT_PRODUCER_ID_API_KEY]: { min: 3, max: 4 },
  [ADD_PARTITIONS_TO_TXN_API_KEY]: { min: 1, max: 3 },
  [END_TXN_API_KEY]: { min: 1, max: 3 },
};

/** The first version of each API in Kafka's flexible encoding (KIP-482). */
const FIRST_FLEXIBLE: Record<number, number> = {
  [PRODUCE_API_KEY]: 9,
  [FETCH_API_KEY]: 12,
  [LIST_OFFSETS_API_KEY]: 6,
  [METADATA_API_KEY]: 9,
  [INIT_PRODUCER_ID_API_KEY]: 2,
  [ADD_PARTITIONS_TO_TXN_API_KEY]: 3,
  [END_TXN_API_KEY]: 3,
};

/** Whether `version` of `apiKey` uses the flexible encoding (compact fields, tagged fields, header v2). */
export function isFlexible(apiKey: number, version: number): boolean {
  return version >= FIRST_FLEXIBLE[apiKey];
}

const answers = new WeakMap<KjsBroker, Promise<ApiVersionRanges>>();

/** The highest version of `apiKey` in both sluice's range and `ranges` (a broker's answer), or null when none is. */
export function commonVersion(apiKey: number, ranges: ApiVersionRanges): number | null {
  const ours = SPOKEN[apiKey];
  const theirs = ranges[apiKey];
  if (!theirs) return null;
  const best = Math.min(ours.max, theirs.maxVersion);
  return best >= Math.max(ours.min, theirs.minVersion) ? best : null;
}

/** The highest version of `apiKey` in both sluice's range and `ranges` (a broker's answer), or sluice's lowest. */
export function chooseVersion(apiKey: number, ranges: ApiVersionRanges): number {
  return commonVersion(apiKey, ranges) ?? SPOKEN[apiKey].min;
}

/** `broker`'s ApiVersions answer; a failed ApiVersions request is asked again next time. */
export function brokerVersions(broker: KjsBroker): Promise<ApiVersionRanges> {
  let answer = answers.get(broker);
  if (!answer) {
    answer = askApiVersions(broker);
    answers.set(broker, answer);
    answer.catch(() => answers.delete(broker));
  }
  return answer;
}

/** The version of `apiKey` to send to `broker`. */
export async function versionFor(broker: KjsBroker, apiKey: number): Promise<number> {
  return chooseVersion(apiKey, await brokerVersions(broker));
}
