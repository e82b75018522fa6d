/**
 * A transactional producer (Kafka's transactional id): its producer id and epoch, the sequence number each
 * partition expects next, and the partitions of its open transaction. The transaction coordinator fences
 * every producer that holds an older epoch of the same id, cluster-wide: whatever such a producer sends next
 * is refused (INVALID_PRODUCER_EPOCH, or PRODUCER_FENCED), which is how a paused process that lost its work
 * is kept from writing after its successor started.
 */
import type { ProducerEpoch } from './protocol/transactions/init-producer-id.js';

/** The producer id and epoch of a producer that has none yet. */
export const NO_PRODUCER: ProducerEpoch = { producerId: -1, epoch: -1 };

/** The state of one transactional producer, kept by the client calls that write through it. */
export class ProducerTransaction {
  /** The next sequence number of each partition (`topic`, NUL, partition), from 0 in each epoch. */
  readonly sequences = new Map<string, number>();
  /** The partitions added to the open transaction (same keys). */
  readonly partitions = new Set<string>();

  /**
   * @param transactionalId Kafka's transactional id.
   * @param producer The producer id and epoch InitProducerId gave.
   * @param timeoutMs How long the coordinator lets a transaction stay open before it aborts it.
   */
  constructor(
    readonly transactionalId: string,
    public producer: ProducerEpoch,
    readonly timeoutMs: number,
  ) {}

  /** Takes a new producer id or epoch: sequences restart from 0, and no transaction is open. */
  renew(producer: ProducerEpoch): void {
    this.producer = producer;
    this.sequences.clear();
    this.partitions.clear();
  }
}

/** The key of a partition in {@link ProducerTransaction}'s maps. */
export function partitionKey(topic: string, partition: number): string {
  return `${topic}\0${partition}`;
}

/** Kafka's name of the broker error behind `err` (following its causes), or null when there is none. */
export function brokerErrorType(err: unknown): string | null {
  for (let e = err as { type?: unknown; cause?: unknown } | undefined, depth = 0; e && depth < 8; depth++) {
    if (typeof e.type === 'string') return e.type;
    e = e.cause as typeof e;
  }
  return null;
}

/** Whether `err` says a newer producer with the same transactional id exists: this one is fenced. */
export function isFenced(err: unknown): boolean {
  const type = brokerErrorType(err);
  return type === 'INVALID_PRODUCER_EPOCH' || type === 'PRODUCER_FENCED';
}

/** Whether `err` says the broker does not know the producer id (a broker restarted, or the id expired). */
export function isUnknownProducer(err: unknown): boolean {
  const type = brokerErrorType(err);
  return type === 'INVALID_PRODUCER_ID_MAPPING' || type === 'UNKNOWN_PRODUCER_ID';
}
