/** Kafka's gzip codec (id 1): Node's zlib, as the Java client's GZIPOutputStream writes it. */
import zlib from 'node:zlib';
import type { CompressionCodec } from './codec.js';

export const gzipCodec: CompressionCodec = {
  id: 1,
  name: 'gzip',
  compress: async (data) => zlib.gzipSync(data),
  decompress: async (data) => zlib.gunzipSync(data),
};
