import { SluiceError } from '../errors.js';

/** What fixes a produce refusal no retry gets past, by Kafka's error name. */
const FIXES: Record<string, (topic: string) => string> = {
  MESSAGE_TOO_LARGE: (topic) =>
    `raise max.message.bytes of topic ${topic} or the brokers' message.max.bytes, or give the sink a lower kafka.max.message.bytes so it sends smaller batches`,
  RECORD_LIST_TOO_LARGE: (topic) =>
    `raise max.message.bytes of topic ${topic}, or give the sink a lower kafka.max.message.bytes so it sends smaller batches`,
  TOPIC_AUTHORIZATION_FAILED: (topic) =>
    `grant the client's principal Write and Describe on topic ${topic} with an ACL: kafka-acls --add --allow-principal User:NAME --operation Write --operation Describe --topic ${topic}`,
  CLUSTER_AUTHORIZATION_FAILED: () => "grant the client's principal IdempotentWrite on the cluster with an ACL",
  INVALID_REQUIRED_ACKS: () => 'set kafka.acks to all or 1',
  POLICY_VIOLATION: (topic) => `the brokers' create or alter policy refuses writes to ${topic}: ask its operators`,
};

/** Fields of kafkajs' broker errors: `type` is Kafka's error name, e.g. `MESSAGE_TOO_LARGE`. */
interface BrokerErrorFields extends Error {
  type?: unknown;
}

/**
 * A produce request failed, and records of it may or may not have been written
 * (`KafkaClientOptions.resendFailedProduce` = false). `retriable` says whether trying again can help; when it
 * cannot, the message names Kafka's error and the hint what fixes it.
 */
export class KafkaProduceError extends SluiceError {
  readonly retriable: boolean;
  constructor(topic: string, cause: Error, retriable: boolean) {
    const type = (cause as BrokerErrorFields).type;
    const name = typeof type === 'string' && type !== '' && type !== 'UNKNOWN' ? type : null;
    super(
      'KAFKA_PRODUCE_FAILED',
      `producing to Kafka topic ${topic} failed: ${name ? `${name}: ` : ''}${cause.message}`,
      retriable
        ? 'the brokers may be unavailable; the records of the failed request may or may not have been written'
        : `${(name && FIXES[name]?.(topic)) ?? 'remove the cause the broker names'}; then restart the query: the sink writes the failed batch exactly once`,
      { cause },
    );
    this.retriable = retriable;
  }
}
