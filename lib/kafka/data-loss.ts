import { SluiceError } from '../errors.js';
import type { TopicPartition } from './topic-partition.js';

/** Offsets in [fromOffset, untilOffset) that the broker no longer (or never) had when they were read. */
export interface DataLoss extends TopicPartition {
  fromOffset: number;
  untilOffset: number;
  /**
   * `retention`: the range starts below the partition's low watermark (deleted by retention or size
   * limits). `truncated`: the partition ends before the range does (topic recreated, unclean leader election).
   */
  reason: 'retention' | 'truncated';
}

/** Thrown by `KafkaClient.fetchRange` when offsets are gone and no `onDataLoss` handler was given. */
export class KafkaDataLossError extends SluiceError {
  readonly loss: DataLoss;
  constructor(loss: DataLoss) {
    const what =
      loss.reason === 'retention'
        ? 'were deleted from the broker (retention or size limit)'
        : 'are beyond the end of the partition (was the topic recreated or truncated?)';
    super(
      'KAFKA_DATA_LOSS',
      `offsets ${loss.fromOffset}..${loss.untilOffset - 1} of ${loss.topic}-${loss.partition} ${what}`,
      'set failOnDataLoss=false to skip lost offsets, or restart the query from a new checkpoint',
    );
    this.loss = loss;
  }
}
