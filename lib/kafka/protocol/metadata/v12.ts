/**
 * The Metadata request, versions 7 to 12: the first that carry each partition's leader epoch (KIP-320),
 * which Fetch and ListOffsets send back so a broker that moved on refuses a stale view; from v10 also each
 * topic's id, which Fetch v13+ names topics by. Versions 9+ are flexible (KIP-482).
 */
import { encodedRequest, type KjsRequest } from '../../kafkajs-internals.js';
import { isFlexible, METADATA_API_KEY } from '../api-versions.js';
import { RequestWriter } from '../request-writer.js';
import { ResponseReader } from '../response-reader.js';

/** One partition's leader as Metadata gives it. */
export interface PartitionLeader {
  partition: number;
  errorCode: number;
  /** The leader's node id, -1 when the partition has none. */
  leader: number;
  leaderEpoch: number;
}

/** One topic of a Metadata response. */
export interface TopicMetadata {
  name: string;
  errorCode: number;
  /** The topic's id (16 bytes), or null before v10 or when the broker has none (all zeros). */
  topicId: Buffer | null;
  partitions: PartitionLeader[];
}

/** A Metadata response. */
export interface MetadataResponse {
  brokers: Array<{ nodeId: number; host: string; port: number }>;
  controllerId: number;
  topics: TopicMetadata[];
}

/**
 * A Metadata request (`version` 7 to 12) for `topics`, or for every topic when null; never creates a topic.
 */
export function metadataRequest(
  version: number,
  topics: string[] | null,
): KjsRequest<MetadataResponse, MetadataResponse> {
  if (version < 7 || version > 12) throw new RangeError(`Metadata v${version} is not spoken (7 to 12 are)`);
  const w = new RequestWriter(isFlexible(METADATA_API_KEY, version));
  w.arrayLength(topics === null ? null : topics.length);
  for (const name of topics ?? []) {
    if (version >= 10) w.uuid(NO_TOPIC_ID);
    w.string(name).taggedFields();
  }
  w.bool(false); // allow auto topic creation
  if (version >= 8 && version <= 10) w.bool(false); // include cluster authorized operations
  if (version >= 8) w.bool(false); // include topic authorized operations
  const body = w.taggedFields().finish();
  return {
    request: encodedRequest(METADATA_API_KEY, 'Metadata', version, body),
    response: { decode: async (raw: Buffer) => decodeMetadataResponse(raw, version), parse: async (res) => res },
  };
}

/** The all-zero topic id: "none" in requests and answers. */
const NO_TOPIC_ID = Buffer.alloc(16);

/** Decodes a Metadata response of `version` (7 to 12). */
export function decodeMetadataResponse(raw: Buffer, version: number): MetadataResponse {
  const r = new ResponseReader(raw, isFlexible(METADATA_API_KEY, version));
  r.skip(4); // throttle time
  const brokers: MetadataResponse['brokers'] = [];
  for (let n = r.arrayLength(), i = 0; i < n; i++) {
    const nodeId = r.int32();
    const host = r.string() ?? '';
    const port = r.int32();
    r.string(); // rack
    r.taggedFields();
    brokers.push({ nodeId, host, port });
  }
  r.string(); // cluster id
  const controllerId = r.int32();
  const topics: TopicMetadata[] = [];
  for (let n = r.arrayLength(), t = 0; t < n; t++) {
    const errorCode = r.int16();
    const name = r.string() ?? '';
    const id = version >= 10 ? Buffer.from(r.uuid()) : null;
    r.skip(1); // is internal
    const partitions: PartitionLeader[] = [];
    for (let pn = r.arrayLength(), p = 0; p < pn; p++) {
      const partitionError = r.int16();
      const partition = r.int32();
      const leader = r.int32();
      const leaderEpoch = r.int32();
      for (let list = 0; list < 3; list++) r.skip(4 * Math.max(0, r.arrayLength())); // replicas, ISR, offline
      r.taggedFields();
      partitions.push({ partition, errorCode: partitionError, leader, leaderEpoch });
    }
    if (version >= 8) r.skip(4); // topic authorized operations
    r.taggedFields();
    topics.push({ name, errorCode, topicId: id && !id.equals(NO_TOPIC_ID) ? id : null, partitions });
  }
  return { brokers, controllerId, topics };
}
