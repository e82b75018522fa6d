import { SluiceError } from '../errors.js';

/**
 * A produce request failed, and records of it may or may not have been written
 * (`KafkaClientOptions.resendFailedProduce` = false). `retriable` says whether trying again can help.
 */
export class KafkaProduceError extends SluiceError {
  readonly retriable: boolean;
  constructor(topic: string, cause: Error, retriable: boolean) {
    super(
      'KAFKA_PRODUCE_FAILED',
      `producing to Kafka topic ${topic} failed: ${cause.message}`,
      retriable
        ? 'the brokers may be unavailable; the records of the failed request may or may not have been written'
        : undefined,
      { cause },
    );
    this.retriable = retriable;
  }
}
