/** One partition of a topic. */
export interface TopicPartition {
  topic: string;
  partition: number;
}

/** Offsets of one partition: `low` is the first offset still stored, `high` the next offset to be written. */
export interface PartitionOffsets extends TopicPartition {
  low: number;
  high: number;
}
