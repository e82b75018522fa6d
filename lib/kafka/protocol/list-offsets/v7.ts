/**
 * The ListOffsets request, versions 4 to 7: an offset per partition for a timestamp, or for the special
 * timestamps earliest (-2) and latest (-1: the high watermark, or the last stable offset under read_committed).
 * From v4 each partition carries the leader epoch the client knows (KIP-320), so a broker that moved on refuses
 * with FENCED_LEADER_EPOCH instead of answering from a stale log; v6+ are flexible (KIP-482); v7 adds only the
 * max-timestamp lookup, which sluice does not use.
 */
import { encodedRequest, type KjsRequest, kafkajsProtocolError } from '../../kafkajs-internals.js';
import { isFlexible, LIST_OFFSETS_API_KEY } from '../api-versions.js';
import { RequestWriter } from '../request-writer.js';
import { ResponseReader } from '../response-reader.js';

/** ListOffsets' timestamp for the earliest offset. */
export const EARLIEST_TIMESTAMP = -2;
/** ListOffsets' timestamp for the latest offset. */
export const LATEST_TIMESTAMP = -1;

/** One partition to look up. */
export interface ListOffsetsPartition {
  partition: number;
  /** A record timestamp (epoch ms), or {@link EARLIEST_TIMESTAMP} / {@link LATEST_TIMESTAMP}. */
  timestamp: number;
  /** The leader epoch metadata gave; -1 (unknown) skips the broker's check. */
  currentLeaderEpoch: number;
}

/** One partition's answer: the offset, -1 where no record is as late as the timestamp. */
export interface ListedOffset {
  partition: number;
  offset: number;
}

/** A ListOffsets request (`version` 4 to 7) for partitions of one topic. */
export function listOffsetsRequest(
  version: number,
  topic: string,
  isolationLevel: number,
  partitions: ListOffsetsPartition[],
): KjsRequest<ListOffsetsAnswer, ListedOffset[]> {
  if (version < 4 || version > 7) throw new RangeError(`ListOffsets v${version} is not spoken (4 to 7 are)`);
  const w = new RequestWriter(isFlexible(LIST_OFFSETS_API_KEY, version));
  w.int32(-1).int8(isolationLevel); // replica id: a consumer
  w.arrayLength(1).string(topic).arrayLength(partitions.length);
  for (const p of partitions) w.int32(p.partition).int32(p.currentLeaderEpoch).int64(p.timestamp).taggedFields();
  const body = w.taggedFields().taggedFields().finish();
  return {
    request: encodedRequest(LIST_OFFSETS_API_KEY, 'ListOffsets', version, body),
    response: { decode: async (raw: Buffer) => decodeListOffsets(raw, version, topic), parse },
  };
}

/** A decoded answer: the topic's partitions with their error codes. */
export interface ListOffsetsAnswer {
  partitions: Array<ListedOffset & { errorCode: number }>;
}

/** Throws kafkajs' typed error for the first failed partition; gives the offsets otherwise. */
async function parse(res: ListOffsetsAnswer): Promise<ListedOffset[]> {
  const failed = res.partitions.find((p) => p.errorCode !== 0);
  if (failed) throw kafkajsProtocolError(failed.errorCode);
  return res.partitions.map(({ partition, offset }) => ({ partition, offset }));
}

/** Decodes a ListOffsets response of `version` (4 to 7), keeping `topic`'s partitions. */
export function decodeListOffsets(raw: Buffer, version: number, topic: string): ListOffsetsAnswer {
  const r = new ResponseReader(raw, isFlexible(LIST_OFFSETS_API_KEY, version));
  r.skip(4); // throttle time
  const partitions: ListOffsetsAnswer['partitions'] = [];
  for (let topics = r.arrayLength(), t = 0; t < topics; t++) {
    const name = r.string();
    for (let count = r.arrayLength(), p = 0; p < count; p++) {
      const partition = r.int32();
      const errorCode = r.int16();
      r.skip(8); // timestamp
      const offset = r.int64();
      r.skip(4); // leader epoch
      r.taggedFields();
      if (name === topic) partitions.push({ partition, errorCode, offset });
    }
    r.taggedFields();
  }
  return { partitions };
}
