/**
 * Which state partition a grouping key belongs to. The answer must be the same in every thread, every
 * process and every run of a checkpoint, or a restarted query would look for a key's state in the
 * wrong partition: so it is a fixed-seed murmur3 of the key, never JS object identity or a Map order.
 *
 * Hash of a key by kind (the vectorised functions below compute exactly the same):
 * - string: murmur3 of its utf8 bytes;
 * - number: an int32 value (including -0) hashes as one 4-byte word; any other number by its float64
 *   bits (every NaN alike), so 3 from an Int32 column and 3 from a Float64 column land together;
 * - bigint within int64: its two 32-bit words; larger ones as below;
 * - anything else (null, arrays for composite keys, objects...): murmur3 of {@link encodeKey}.
 */
import { type Data, type DataType, makeVector, Type } from 'apache-arrow';
import { encodeKey } from './value-codec.js';

const SEED = 0x5eed5eed;

function mixK(k: number): number {
  k = Math.imul(k, 0xcc9e2d51);
  k = (k << 15) | (k >>> 17);
  return Math.imul(k, 0x1b873593);
}

function mixH(h: number, k: number): number {
  h ^= mixK(k);
  h = (h << 13) | (h >>> 19);
  return (Math.imul(h, 5) + 0xe6546b64) | 0;
}

/** murmur3's finalizer: every bit of `h` moves every bit of the result (a signed int32). */
export function fmix32(h: number): number {
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return h ^ (h >>> 16);
}

function fmix(h: number, len: number): number {
  return fmix32(h ^ len) >>> 0;
}

/** murmur3 (x86, 32 bit) of `bytes[start, end)`, as an unsigned int; the seed defaults to the partitioner's. */
export function murmur3Bytes(bytes: Uint8Array, start = 0, end = bytes.length, seed = SEED): number {
  let h = seed | 0;
  let i = start;
  const blocksEnd = start + ((end - start) & ~3);
  for (; i < blocksEnd; i += 4) {
    h = mixH(h, bytes[i] | (bytes[i + 1] << 8) | (bytes[i + 2] << 16) | (bytes[i + 3] << 24));
  }
  const rest = end - i;
  if (rest > 0) {
    let k = bytes[i];
    if (rest > 1) k |= bytes[i + 1] << 8;
    if (rest > 2) k |= bytes[i + 2] << 16;
    h ^= mixK(k);
  }
  return fmix(h, end - start);
}

const textEncoder = new TextEncoder();
let scratch = new Uint8Array(256);

/** murmur3 of the utf8 bytes of `s`, without materialising them for ASCII strings. */
export function hashString(s: string): number {
  const len = s.length;
  let h = SEED;
  let i = 0;
  const blocksEnd = len & ~3;
  for (; i < blocksEnd; i += 4) {
    const c0 = s.charCodeAt(i);
    const c1 = s.charCodeAt(i + 1);
    const c2 = s.charCodeAt(i + 2);
    const c3 = s.charCodeAt(i + 3);
    if ((c0 | c1 | c2 | c3) >= 0x80) return hashNonAscii(s);
    h = mixH(h, c0 | (c1 << 8) | (c2 << 16) | (c3 << 24));
  }
  const rest = len - i;
  if (rest > 0) {
    const c0 = s.charCodeAt(i);
    const c1 = rest > 1 ? s.charCodeAt(i + 1) : 0;
    const c2 = rest > 2 ? s.charCodeAt(i + 2) : 0;
    if ((c0 | c1 | c2) >= 0x80) return hashNonAscii(s);
    h ^= mixK(c0 | (c1 << 8) | (c2 << 16));
  }
  return fmix(h, len);
}

function hashNonAscii(s: string): number {
  if (scratch.length < s.length * 3) scratch = new Uint8Array(s.length * 3);
  const { written } = textEncoder.encodeInto(s, scratch);
  return murmur3Bytes(scratch, 0, written);
}

const f64 = new Float64Array(1);
const f64Words = new Int32Array(f64.buffer);
/** Index of the low 32-bit word of a float64 / int64 in this machine's byte order. */
const LO = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1 ? 0 : 1;
const HI = 1 - LO;

function hashInt32(v: number): number {
  return fmix(mixH(SEED, v), 4);
}

function hashWords(lo: number, hi: number): number {
  return fmix(mixH(mixH(SEED, lo), hi), 8);
}

/** Hash of a number key (see the module comment). */
export function hashNumber(v: number): number {
  if ((v | 0) === v) return hashInt32(v);
  f64[0] = Number.isNaN(v) ? NaN : v;
  return hashWords(f64Words[LO], f64Words[HI]);
}

const MIN_INT64 = -(2n ** 63n);
const MAX_INT64 = 2n ** 63n - 1n;

function hashBigInt(v: bigint): number {
  if (v < MIN_INT64 || v > MAX_INT64) return murmur3Bytes(encodeKey(v));
  return hashWords(Number(BigInt.asIntN(32, v)), Number(BigInt.asIntN(32, v >> 32n)));
}

/** The stable 32-bit hash of a state key (unsigned). */
export function hashKey(key: unknown): number {
  if (typeof key === 'string') return hashString(key);
  if (typeof key === 'number') return hashNumber(key);
  if (typeof key === 'bigint') return hashBigInt(key);
  return murmur3Bytes(encodeKey(key));
}

/**
 * The state partition of `key` among `numPartitions`: stable across threads, processes and runs.
 * Keys: strings, numbers, bigints, or any value the state codec encodes (arrays for composite keys).
 */
export function partitionOf(key: unknown, numPartitions: number): number {
  return hashKey(key) % numPartitions;
}

function checkPartitions(numPartitions: number): void {
  if (!Number.isInteger(numPartitions) || numPartitions < 1) {
    throw new RangeError(`number of state partitions must be a positive integer, got ${numPartitions}`);
  }
}

/**
 * Partitions of the strings of a utf8 column given as Arrow buffers: string i is
 * `data[valueOffsets[i], valueOffsets[i + 1])`. Equals `partitionOf(string i)` for every i.
 * Nulls are not looked at; see {@link partitionsOfData} for columns with nulls.
 */
export function partitionsOfUtf8(
  valueOffsets: Int32Array,
  data: Uint8Array,
  numPartitions: number,
  length = valueOffsets.length - 1,
  out = new Int32Array(length),
): Int32Array {
  checkPartitions(numPartitions);
  for (let r = 0; r < length; r++) {
    const start = valueOffsets[r];
    const end = valueOffsets[r + 1];
    let h = SEED;
    let i = start;
    const blocksEnd = start + ((end - start) & ~3);
    for (; i < blocksEnd; i += 4) {
      h = mixH(h, data[i] | (data[i + 1] << 8) | (data[i + 2] << 16) | (data[i + 3] << 24));
    }
    const rest = end - i;
    if (rest > 0) {
      let k = data[i];
      if (rest > 1) k |= data[i + 1] << 8;
      if (rest > 2) k |= data[i + 2] << 16;
      h ^= mixK(k);
    }
    out[r] = fmix(h, end - start) % numPartitions;
  }
  return out;
}

/** Typed arrays whose elements read as JS numbers. */
export type NumberArray =
  | Int8Array
  | Int16Array
  | Int32Array
  | Uint8Array
  | Uint16Array
  | Uint32Array
  | Float32Array
  | Float64Array;

/** Partitions of numeric keys; equals `partitionOf(values[i])` for every i. */
export function partitionsOfNumbers(
  values: NumberArray,
  numPartitions: number,
  length = values.length,
  out = new Int32Array(length),
): Int32Array {
  checkPartitions(numPartitions);
  if (
    values instanceof Int32Array ||
    values instanceof Int16Array ||
    values instanceof Int8Array ||
    values instanceof Uint16Array ||
    values instanceof Uint8Array
  ) {
    for (let i = 0; i < length; i++) out[i] = hashInt32(values[i]) % numPartitions;
  } else {
    for (let i = 0; i < length; i++) out[i] = hashNumber(values[i]) % numPartitions;
  }
  return out;
}

/** Partitions of int64/uint64 keys (as the bigints Arrow returns for them); equals `partitionOf(values[i])`. */
export function partitionsOfBigInts(
  values: BigInt64Array | BigUint64Array,
  numPartitions: number,
  length = values.length,
  out = new Int32Array(length),
): Int32Array {
  checkPartitions(numPartitions);
  const words = new Int32Array(values.buffer, values.byteOffset, values.length * 2);
  const unsigned = values instanceof BigUint64Array;
  for (let i = 0; i < length; i++) {
    const hi = words[2 * i + HI];
    out[i] = (unsigned && hi < 0 ? hashBigInt(values[i]) : hashWords(words[2 * i + LO], hi)) % numPartitions;
  }
  return out;
}

function isNumberArray(values: unknown): values is NumberArray {
  return (
    values instanceof Int32Array ||
    values instanceof Float64Array ||
    values instanceof Int8Array ||
    values instanceof Int16Array ||
    values instanceof Uint8Array ||
    values instanceof Uint16Array ||
    values instanceof Uint32Array ||
    values instanceof Float32Array
  );
}

/**
 * Partitions of the keys in one Arrow column: equals `partitionOf(vector.get(i))` for every row,
 * nulls included. Typed-array fast paths for utf8, int8–64, uint8–64, float32/64 and dictionaries of
 * those (each dictionary value hashed once); other types go row by row.
 */
export function partitionsOfData(data: Data, numPartitions: number): Int32Array {
  checkPartitions(numPartitions);
  const n = data.length;
  let out: Int32Array;
  const type: DataType = data.type;
  if (type.typeId === Type.Utf8) {
    out = partitionsOfUtf8(data.valueOffsets as Int32Array, data.values as Uint8Array, numPartitions, n);
  } else if ((type.typeId === Type.Int || type.typeId === Type.Float) && isNumberArray(data.values)) {
    out = partitionsOfNumbers(data.values, numPartitions, n);
  } else if (
    type.typeId === Type.Int &&
    (data.values instanceof BigInt64Array || data.values instanceof BigUint64Array)
  ) {
    out = partitionsOfBigInts(data.values, numPartitions, n);
  } else if (type.typeId === Type.Dictionary && data.dictionary && isNumberArray(data.values)) {
    const dict = data.dictionary;
    const dictParts = new Int32Array(dict.length);
    let at = 0;
    for (const chunk of dict.data) {
      dictParts.set(partitionsOfData(chunk, numPartitions), at);
      at += chunk.length;
    }
    const indices = data.values;
    out = new Int32Array(n);
    for (let i = 0; i < n; i++) out[i] = dictParts[indices[i]];
  } else {
    const vector = makeVector(data);
    out = new Int32Array(n);
    for (let i = 0; i < n; i++) out[i] = partitionOf(vector.get(i), numPartitions);
    return out;
  }
  if (data.nullCount > 0) {
    const nullPartition = partitionOf(null, numPartitions);
    for (let i = 0; i < n; i++) if (!data.getValid(i)) out[i] = nullPartition;
  }
  return out;
}
