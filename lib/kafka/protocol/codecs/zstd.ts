/**
 * Kafka's zstd codec (id 4), with @mongodb-js/zstd (the zstd library through napi-rs). Producers stream
 * their batches into the compressor, so frames usually carry no content size; this library's decoder grows
 * its output as it goes. Version 1.2.2 is pinned: it is the last to ship its binaries inside per-platform npm
 * packages (later ones download them at install).
 */
import type * as Zstd from '@mongodb-js/zstd';
import type { CompressionCodec } from './codec.js';
import { lazyLibrary } from './library.js';

const zstd = lazyLibrary<typeof Zstd>('zstd', '@mongodb-js/zstd');

/** Kafka's default zstd level (the Java producer's `compression.zstd.level`). */
const LEVEL = 3;

export const zstdCodec: CompressionCodec = {
  id: 4,
  name: 'zstd',
  compress: (data) => zstd().compress(data, LEVEL),
  decompress: (data) => zstd().decompress(data),
};
