/**
 * Which version of Fetch and Produce sluice speaks with each broker: the highest one both sides speak,
 * from that broker's ApiVersions answer, asked once per broker connection object. Fetch v4 and Produce v3
 * (the lowest Kafka 4.0 accepts) are the floor, also for a broker that speaks only older ones (which then
 * refuses the request with UNSUPPORTED_VERSION).
 */
import { type ApiVersionRanges, askApiVersions, type KjsBroker } from '../kafkajs-internals.js';

/** Kafka's API key of Produce. */
export const PRODUCE_API_KEY = 0;
/** Kafka's API key of Fetch. */
export const FETCH_API_KEY = 1;

/** The versions sluice's own encoders speak (see fetch/v11.ts and produce/v8.ts). */
const SPOKEN: Record<number, { min: number; max: number }> = {
  [PRODUCE_API_KEY]: { min: 3, max: 8 },
  [FETCH_API_KEY]: { min: 4, max: 11 },
};

const answers = new WeakMap<KjsBroker, Promise<ApiVersionRanges>>();

/** The highest version of `apiKey` in both sluice's range and `ranges` (a broker's answer), or sluice's lowest. */
export function chooseVersion(apiKey: number, ranges: ApiVersionRanges): number {
  const ours = SPOKEN[apiKey];
  const theirs = ranges[apiKey];
  if (!theirs) return ours.min;
  const best = Math.min(ours.max, theirs.maxVersion);
  return best >= Math.max(ours.min, theirs.minVersion) ? best : ours.min;
}

/** The version of `apiKey` to send to `broker`; a failed ApiVersions request is asked again next time. */
export async function versionFor(broker: KjsBroker, apiKey: number): Promise<number> {
  let answer = answers.get(broker);
  if (!answer) {
    answer = askApiVersions(broker);
    answers.set(broker, answer);
    answer.catch(() => answers.delete(broker));
  }
  return chooseVersion(apiKey, await answer);
}
