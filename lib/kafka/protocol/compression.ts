/**
 * Kafka's compression codecs, by the id a record batch carries in the low three bits of its attributes and
 * by the name `compression.type` gives. Only a batch's records section is compressed; the batch header
 * stays plain (see record-batch.ts).
 *
 * The libraries behind the codecs (chosen by decode speed, see BENCHMARKS.md "Kafka codecs") are loaded on
 * first use, so reading and writing uncompressed topics never loads a native module.
 */
import { SluiceError } from '../../errors.js';
import type { CompressionCodec } from './codecs/codec.js';
import { gzipCodec } from './codecs/gzip.js';
import { lz4Codec } from './codecs/lz4.js';
import { snappyCodec } from './codecs/snappy.js';
import { zstdCodec } from './codecs/zstd.js';

/** `compression.type` values of a Kafka producer, as the Kafka sink accepts them. */
export const COMPRESSION_TYPES = ['none', 'gzip', 'snappy', 'lz4', 'zstd'] as const;

/** A `compression.type`. */
export type CompressionType = (typeof COMPRESSION_TYPES)[number];

export type { CompressionCodec };

const BY_ID: ReadonlyArray<CompressionCodec | undefined> = [undefined, gzipCodec, snappyCodec, lz4Codec, zstdCodec];

/**
 * The codec of a record batch's compression id (1-4).
 * @throws SluiceError `KAFKA_UNKNOWN_CODEC` for an id Kafka does not define.
 */
export function codecById(id: number): CompressionCodec {
  const codec = BY_ID[id];
  if (!codec) {
    throw new SluiceError(
      'KAFKA_UNKNOWN_CODEC',
      `a Kafka record batch uses compression id ${id}, which Kafka does not define`,
      'the topic holds data sluice cannot read: check what wrote it',
    );
  }
  return codec;
}

/** The codec of a `compression.type`; null for `none`. */
export function codecByName(type: CompressionType): CompressionCodec | null {
  return BY_ID.find((c) => c?.name === type) ?? null;
}
