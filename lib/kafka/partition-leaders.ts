/**
 * Partition leaders with their leader epochs (KIP-320) and topic ids, from sluice's own Metadata request
 * (v7+, see protocol/metadata/v12.ts): kafkajs' Metadata stops at v6, which carries neither. Fetch sends the
 * epoch back, so a broker whose view is newer (FENCED_LEADER_EPOCH) or older (UNKNOWN_LEADER_EPOCH) than
 * the client's refuses instead of serving a log that may diverge; the client then forgets what it knew,
 * asks again and repeats the fetch from the same offset.
 */
import { type KjsCluster, kafkajsProtocolError, sendRequest, shareConnects } from './kafkajs-internals.js';
import { brokerVersions, commonVersion, METADATA_API_KEY } from './protocol/api-versions.js';
import { metadataRequest } from './protocol/metadata/v12.js';

/** One partition's leader and its epoch. */
export interface PartitionLeader {
  /** The leader's node id, -1 while the partition has none. */
  leader: number;
  leaderEpoch: number;
}

/** What Metadata v7+ tells about one topic. */
export interface TopicLeaders {
  /** The topic's id, or null when the broker's Metadata version predates ids (v10). */
  topicId: Buffer | null;
  partitions: Map<number, PartitionLeader>;
}

/** The leaders of the topics a client reads, asked once each until {@link PartitionLeaders.forget}. */
export class PartitionLeaders {
  private readonly topics = new Map<string, Promise<TopicLeaders | null>>();

  constructor(private readonly cluster: KjsCluster) {}

  /**
   * The leaders of `topic`'s partitions; null when the broker asked speaks no Metadata version with leader
   * epochs (then kafkajs' leaders serve, with epochs unknown).
   */
  of(topic: string): Promise<TopicLeaders | null> {
    let known = this.topics.get(topic);
    if (!known) {
      known = this.ask(topic);
      this.topics.set(topic, known);
      known.catch(() => this.topics.delete(topic));
    }
    return known;
  }

  /** Drops everything known: leaders may have moved. */
  forget(): void {
    this.topics.clear();
  }

  private async ask(topic: string): Promise<TopicLeaders | null> {
    const broker = shareConnects(await this.cluster.brokerPool.findConnectedBroker());
    const version = commonVersion(METADATA_API_KEY, await brokerVersions(broker));
    if (version === null) return null;
    const res = await sendRequest(broker, metadataRequest(version, [topic]));
    const t = res.topics.find((x) => x.name === topic);
    if (!t) return { topicId: null, partitions: new Map() };
    // LEADER_NOT_AVAILABLE and the like are kafkajs' retriable errors: the caller's retry asks again.
    if (t.errorCode !== 0) throw kafkajsProtocolError(t.errorCode);
    return {
      topicId: t.topicId,
      partitions: new Map(t.partitions.map((p) => [p.partition, { leader: p.leader, leaderEpoch: p.leaderEpoch }])),
    };
  }
}
