/**
 * HyperLogLog sketches for approx_count_distinct: m = 2^p one-byte registers per group, so a window's
 * distinct-user estimate costs m bytes of state however many users it sees, and two sketches merge by
 * taking the larger register (windows of different partitions, batches or merged sessions combine exactly).
 *
 * Precision from the requested relative standard deviation as Spark computes it,
 * p = ceil(2 · log2(1.106 / rsd)): rsd 0.05 (the default) gives p = 9, 512 registers, a standard error of
 * 1.04 / √512 = 4.6%. Estimates below 2.5·m use linear counting (exact-ish for small sets); each value is
 * hashed with two 32-bit murmur3 hashes (register index from the first, the rank from the second), so there
 * is no 32-bit large-range saturation. test/aggregate/hyperloglog.test.ts measures the error.
 */
import { murmur3Bytes } from '../../state/state-partitioner.js';

const SEED_INDEX = 0x2f1e8a53;
const SEED_RANK = 0x7c9d4b11;

const f64 = new Float64Array(1);
const f64Bytes = new Uint8Array(f64.buffer);
const encoder = new TextEncoder();
let scratch = new Uint8Array(256);

/** The smallest and largest precision accepted (rsd about 0.39 down to 0.0043). */
export const MIN_PRECISION = 4;
export const MAX_PRECISION = 16;

/** Precision p for a relative standard deviation, as Spark computes it; throws RangeError outside [4, 16]. */
export function precisionForRsd(rsd: number): number {
  const p = Math.ceil(2 * Math.log2(1.106 / rsd));
  if (!Number.isFinite(p) || p < MIN_PRECISION || p > MAX_PRECISION) {
    throw new RangeError(`relative standard deviation ${rsd} is out of range: use a value from 0.005 to 0.39`);
  }
  return p;
}

/** Adds a value hashed as (index hash, rank hash) to `registers`. */
function addHashes(registers: Uint8Array, p: number, h1: number, h2: number): void {
  const idx = h1 >>> (32 - p);
  const rank = Math.clz32(h2) + 1;
  if (rank > registers[idx]) registers[idx] = rank;
}

/** Adds the utf8 string at bytes[start, end). */
export function addUtf8(registers: Uint8Array, p: number, bytes: Uint8Array, start: number, end: number): void {
  addHashes(registers, p, murmur3Bytes(bytes, start, end, SEED_INDEX), murmur3Bytes(bytes, start, end, SEED_RANK));
}

/** Adds a number (ints, doubles and timestamps in ms hash alike when equal). */
export function addNumber(registers: Uint8Array, p: number, v: number): void {
  f64[0] = v === 0 ? 0 : v;
  addHashes(registers, p, murmur3Bytes(f64Bytes, 0, 8, SEED_INDEX), murmur3Bytes(f64Bytes, 0, 8, SEED_RANK));
}

/** Adds any JS scalar: strings as utf8, numbers as float64, other values by their string form. */
export function addValue(registers: Uint8Array, p: number, v: unknown): void {
  if (typeof v === 'number') {
    addNumber(registers, p, v);
    return;
  }
  if (v instanceof Date) {
    addNumber(registers, p, v.getTime());
    return;
  }
  const s = typeof v === 'string' ? v : String(v);
  if (s.length * 3 > scratch.length) scratch = new Uint8Array(s.length * 3 + 64);
  const n = encoder.encodeInto(s, scratch).written;
  addUtf8(registers, p, scratch, 0, n);
}

/** Register-wise maximum of `b` into `a` (both of the same precision). */
export function mergeInto(a: Uint8Array, b: Uint8Array): Uint8Array {
  for (let i = 0; i < a.length; i++) if (b[i] > a[i]) a[i] = b[i];
  return a;
}

/** The cardinality estimate of a sketch, rounded to an integer. */
export function estimate(registers: Uint8Array): number {
  const m = registers.length;
  let sum = 0;
  let zeros = 0;
  for (let i = 0; i < m; i++) {
    const r = registers[i];
    sum += 1 / 2 ** r;
    if (r === 0) zeros++;
  }
  const alpha = m === 16 ? 0.673 : m === 32 ? 0.697 : m === 64 ? 0.709 : 0.7213 / (1 + 1.079 / m);
  const raw = (alpha * m * m) / sum;
  if (raw <= 2.5 * m && zeros > 0) return Math.round(m * Math.log(m / zeros));
  return Math.round(raw);
}
