/**
 * Kafka's snappy codec (id 2), with the napi-rs `snappy` package. Two layouts exist on topics: the Java
 * client writes snappy-java's framing (a header, then length-prefixed blocks), librdkafka writes one raw
 * snappy block. Both are read; sluice writes a raw block as librdkafka does, which every client reads
 * (snappy-java falls back to a raw block when the header is absent).
 */
import type * as Snappy from 'snappy';
import type { CompressionCodec } from './codec.js';
import { lazyLibrary } from './library.js';

const snappy = lazyLibrary<typeof Snappy>('snappy', 'snappy');

/** snappy-java's stream header: magic, then int32 version and int32 compatible version. */
const JAVA_MAGIC = Buffer.from([0x82, 0x53, 0x4e, 0x41, 0x50, 0x50, 0x59, 0x00]);
const JAVA_HEADER = 16;

function uncompressBlock(block: Buffer): Buffer {
  return snappy().uncompressSync(block, { asBuffer: true }) as Buffer;
}

function decompress(data: Buffer): Buffer {
  if (data.length < JAVA_HEADER || data.compare(JAVA_MAGIC, 0, JAVA_MAGIC.length, 0, JAVA_MAGIC.length) !== 0) {
    return uncompressBlock(data);
  }
  const blocks: Buffer[] = [];
  let total = 0;
  for (let pos = JAVA_HEADER; pos < data.length; ) {
    const len = data.readInt32BE(pos);
    pos += 4;
    if (len < 0 || pos + len > data.length) throw new Error('snappy-java block runs past the end of the data');
    const block = uncompressBlock(data.subarray(pos, pos + len));
    blocks.push(block);
    total += block.length;
    pos += len;
  }
  return blocks.length === 1 ? blocks[0] : Buffer.concat(blocks, total);
}

export const snappyCodec: CompressionCodec = {
  id: 2,
  name: 'snappy',
  compress: async (data) => snappy().compressSync(data),
  decompress: async (data) => decompress(data),
};
