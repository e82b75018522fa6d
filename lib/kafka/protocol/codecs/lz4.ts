/**
 * Kafka's lz4 codec (id 3): the LZ4 frame format, with lz4-napi (lz4_flex through napi-rs).
 *
 * Frames are written by lz4-napi (independent 64 KiB blocks, no checksums: what Java's
 * KafkaLZ4BlockInputStream reads). Frames are read here block by block with lz4-napi's block decoder,
 * which measured faster on Kafka batches than lz4-napi's own frame decoder (BENCHMARKS.md, "Kafka
 * codecs"). Linked blocks, which kafka-python's producer writes, are decoded with the 64 KiB before them
 * as the dictionary. Checksums are not verified: the record batch's CRC covers the compressed bytes.
 */
import type * as Lz4 from 'lz4-napi';
import type { CompressionCodec } from './codec.js';
import { lazyLibrary } from './library.js';

const lz4 = lazyLibrary<typeof Lz4>('lz4', 'lz4-napi');

const FRAME_MAGIC = 0x184d2204;
/** Skippable frames have magic 0x184D2A50 to 0x184D2A5F. */
const SKIPPABLE_MAGIC = 0x184d2a50;
/** Block maximum sizes by the BD byte's size id (4-7). */
const BLOCK_MAX_SIZES = [0, 0, 0, 0, 64 << 10, 256 << 10, 1 << 20, 4 << 20];
/** How far back a match of a linked block may reach. */
const WINDOW = 64 << 10;
const UNCOMPRESSED_BLOCK = 0x80000000;

function malformed(why: string): Error {
  return new Error(`malformed LZ4 frame: ${why}`);
}

/** The last `WINDOW` bytes of `parts` (a frame's output so far), a view when the last part holds them all. */
function window(parts: Buffer[], total: number): Buffer {
  const last = parts[parts.length - 1];
  if (last.length >= WINDOW || parts.length === 1) return last.subarray(Math.max(0, last.length - WINDOW));
  const out = Buffer.allocUnsafe(Math.min(WINDOW, total));
  let at = out.length;
  for (let i = parts.length - 1; i >= 0 && at > 0; i--) {
    const p = parts[i];
    const n = Math.min(at, p.length);
    p.copy(out, at - n, p.length - n);
    at -= n;
  }
  return out;
}

/** Decodes one compressed block of at most `maxSize` bytes, after `dict` when the blocks are linked. */
function decodeBlock(block: Buffer, maxSize: number, dict: Buffer | undefined): Buffer {
  // lz4-napi's block decoder takes the output size as a 4-byte prefix; an upper bound is allowed.
  const input = Buffer.allocUnsafe(4 + block.length);
  input.writeUInt32LE(maxSize, 0);
  block.copy(input, 4);
  return lz4().uncompressSync(input, dict);
}

/** The content of one or more concatenated LZ4 frames. */
export function decodeLz4Frames(data: Buffer): Buffer {
  const parts: Buffer[] = [];
  let total = 0;
  let pos = 0;
  while (pos < data.length) {
    if (pos + 7 > data.length) throw malformed('truncated header');
    const magic = data.readUInt32LE(pos);
    if ((magic & 0xfffffff0) >>> 0 === SKIPPABLE_MAGIC) {
      pos += 8 + data.readUInt32LE(pos + 4);
      continue;
    }
    if (magic !== FRAME_MAGIC) throw malformed(`magic ${magic.toString(16)}`);
    const flags = data[pos + 4];
    if (flags >> 6 !== 1) throw malformed(`version ${flags >> 6}`);
    const linked = (flags & 0x20) === 0;
    const blockChecksums = (flags & 0x10) !== 0;
    const contentChecksum = (flags & 0x04) !== 0;
    if ((flags & 0x01) !== 0) throw malformed('a dictionary id, which Kafka producers never set');
    const maxSize = BLOCK_MAX_SIZES[(data[pos + 5] >> 4) & 7];
    if (maxSize === 0) throw malformed('block size id');
    pos += 6 + ((flags & 0x08) !== 0 ? 8 : 0) + 1; // flags, block descriptor, content size, header checksum
    const frame: Buffer[] = [];
    let frameSize = 0;
    for (;;) {
      if (pos + 4 > data.length) throw malformed('truncated block');
      const word = data.readUInt32LE(pos);
      pos += 4;
      if (word === 0) break;
      const size = (word & ~UNCOMPRESSED_BLOCK) >>> 0;
      if (size > maxSize || pos + size > data.length) throw malformed('block runs past the end');
      const block = data.subarray(pos, pos + size);
      pos += size + (blockChecksums ? 4 : 0);
      const out =
        (word & UNCOMPRESSED_BLOCK) !== 0
          ? block
          : decodeBlock(block, maxSize, linked && frame.length > 0 ? window(frame, frameSize) : undefined);
      frame.push(out);
      frameSize += out.length;
    }
    if (contentChecksum) pos += 4;
    parts.push(...frame);
    total += frameSize;
  }
  return parts.length === 1 ? parts[0] : Buffer.concat(parts, total);
}

export const lz4Codec: CompressionCodec = {
  id: 3,
  name: 'lz4',
  compress: async (data) => lz4().compressFrameSync(data),
  decompress: async (data) => decodeLz4Frames(data),
};
