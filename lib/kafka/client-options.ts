/** Options of the Kafka client and of its calls. */
import type { DataLoss } from './data-loss.js';
import type { CompressionType } from './protocol/compression.js';
import type { KafkaRetryEvent, KafkaRetryOptions } from './retry.js';
import type { KafkaSecurity } from './security-options.js';

/** How a `KafkaClient` connects, retries, reads and writes. */
export interface KafkaClientOptions {
  clientId?: string;
  retry?: KafkaRetryOptions;
  onRetry?: (event: KafkaRetryEvent) => void;
  /**
   * `read_committed` hides records of aborted transactions and reads up to the last stable offset.
   * Default `read_uncommitted` (Kafka's and Spark's default).
   */
  isolationLevel?: 'read_uncommitted' | 'read_committed';
  /** Bytes per partition a fetch asks for (Kafka's max.partition.fetch.bytes). Default 8 MiB. */
  maxPartitionFetchBytes?: number;
  /** How long the broker may hold a fetch that has no records yet, in ms (Kafka's fetch.max.wait.ms). Default 100. */
  fetchMaxWaitMs?: number;
  /** Acknowledgements a produce request waits for: -1 every in-sync replica (default), 1 the leader only. */
  acks?: -1 | 1;
  /** Messages per produce request. Default 1000 (the fastest size measured against the test broker). */
  produceBatchSize?: number;
  /** How produced record batches are compressed (Kafka's `compression.type`). Default `none`. */
  compression?: CompressionType;
  /** Use kafkajs' idempotent producer (broker-side dedup of producer retries within one session). */
  idempotent?: boolean;
  /**
   * Whether `KafkaClient.produce` sends a chunk again when its request fails (default true). A request
   * that timed out may still have been written, so a resend can duplicate records (the librdkafka 2.0.2
   * test broker does not deduplicate idempotent producers). With false, a failed chunk throws
   * `KafkaProduceError` at once, so the caller can find out what was written before sending again.
   */
  resendFailedProduce?: boolean;
  /** Timeout for establishing a connection in ms. Default 3000. */
  connectionTimeoutMs?: number;
  /** Timeout for one request in ms. Default 30000. */
  requestTimeoutMs?: number;
  /** TLS and SASL; plaintext when absent. Plain data, so read tasks in worker threads get it too. */
  security?: KafkaSecurity;
  /** kafkajs' own logging. Default 'nothing': failures surface as errors and retry events instead. */
  logLevel?: 'nothing' | 'error' | 'warn' | 'info' | 'debug';
}

/** Options of `KafkaClient.fetchRange`. */
export interface FetchRangeOptions {
  /**
   * Bytes per partition per fetch request; grows by itself when one record set does not fit. Default
   * {@link KafkaClientOptions.maxPartitionFetchBytes}.
   */
  maxBytes?: number;
  /**
   * Called for offsets of the range that are gone; reading then continues with what is left.
   * Without it, lost offsets throw `KafkaDataLossError` (failOnDataLoss=true).
   */
  onDataLoss?: (loss: DataLoss) => void;
}
