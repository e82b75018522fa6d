/**
 * sluice's codecs (protocol/compression.ts) registered with kafkajs, through its public `CompressionCodecs`,
 * for the compression types kafkajs does not implement (snappy, lz4, zstd). kafkajs decodes what sluice's
 * own decoder leaves to it (see protocol/fetch/fetched-partition.ts) and compresses for the idempotent
 * producer. A codec that other code in the process registered first is kept.
 */
import kafkajs from 'kafkajs';
import { codecById } from './protocol/compression.js';

const { CompressionCodecs, CompressionTypes } = kafkajs;

/** kafkajs' codec shape: it hands `compress` its encoder, `decompress` the bytes. */
interface KjsCodec {
  compress(encoder: { buffer: Buffer }): Promise<Buffer>;
  decompress(data: Buffer): Promise<Buffer>;
}

let registered = false;

/** Registers the codecs once; later calls do nothing. */
export function registerKafkajsCodecs(): void {
  if (registered) return;
  registered = true;
  const codecs = CompressionCodecs as unknown as Record<number, () => KjsCodec>;
  for (const type of [CompressionTypes.Snappy, CompressionTypes.LZ4, CompressionTypes.ZSTD]) {
    try {
      codecs[type]();
      continue; // someone registered a working codec
    } catch {
      // kafkajs' placeholder throws "not implemented"
    }
    const codec = codecById(type);
    const adapter: KjsCodec = {
      compress: (encoder) => codec.compress(encoder.buffer),
      decompress: (data) => codec.decompress(data),
    };
    codecs[type] = () => adapter;
  }
}
