/** The records the client reads and writes. */

/** A record read from Kafka. */
export interface KafkaMessage {
  offset: number;
  /** Milliseconds since the epoch (create time or log-append time, whichever the topic uses). */
  timestamp: number;
  key: Buffer | null;
  value: Buffer | null;
  /** Undefined when the record has none; a key repeated in the record maps to an array, in order. */
  headers?: Record<string, Buffer | Buffer[]>;
}

/** A record to write. Without `partition`, kafkajs' default (Java-compatible murmur2) partitioner picks one. */
export interface ProduceMessage {
  key?: Buffer | string | null;
  value: Buffer | string | null;
  /**
   * An array value writes the header once per element, in order. Name-value pairs keep their order as given,
   * repeated names included (Spark's `headers` column).
   */
  headers?: Record<string, Buffer | string | Array<Buffer | string>> | Array<[string, Buffer | string | null]>;
  partition?: number;
  /** Create time in ms since the epoch; the broker's clock when omitted. */
  timestamp?: number;
}

/** Where a produced chunk landed. */
export interface ProduceResult {
  partition: number;
  /** Offset of the first record of the chunk written to this partition. */
  baseOffset: number;
}
