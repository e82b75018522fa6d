/**
 * The order of byte strings as LMDB's default comparison has it (bytes compared unsigned, a prefix first), for
 * keys laid end to end in one buffer. A commit writes its changes in that order so that each of its small
 * transactions rewrites the pages of one key range.
 *
 * Short keys (state keys of numbers and short strings) are sorted by a least-significant-digit radix sort of
 * their bytes, padded with zeros and then told apart by length: a few linear passes over typed arrays instead of
 * a comparison sort over strings made from the bytes, which allocates a string per key and calls a comparator
 * about n log n times.
 */

import { Latin1View } from './value-codec.js';

/** Longest key the radix sort takes: each byte position costs a pass (skipped when all keys agree there). */
const RADIX_MAX_BYTES = 12;
/**
 * Keys longer than that are sorted apart by comparison and merged in while they are at most this inverse share of
 * the keys: a state partition's few long keys (an operator's metadata under a name) beside many short ones.
 */
const LONG_KEYS_SHARE = 8;

/**
 * The indexes `0..n-1` of the keys `buf[start[i], start[i + 1])`, in ascending byte order of their keys. Keys
 * must be distinct, as a commit's are (one change per key).
 */
export function byteOrder(buf: Uint8Array, start: Int32Array, n: number): Int32Array {
  let long = 0;
  for (let i = 0; i < n; i++) if (start[i + 1] - start[i] > RADIX_MAX_BYTES) long++;
  if (long === 0 || long * LONG_KEYS_SHARE > n) {
    const all = new Int32Array(n);
    for (let i = 0; i < n; i++) all[i] = i;
    return long === 0 ? radixOrder(buf, start, all) : comparisonOrder(buf, start, all);
  }
  const short = new Int32Array(n - long);
  const longOnes = new Int32Array(long);
  for (let i = 0, s = 0, l = 0; i < n; i++) {
    if (start[i + 1] - start[i] > RADIX_MAX_BYTES) longOnes[l++] = i;
    else short[s++] = i;
  }
  const a = radixOrder(buf, start, short);
  const b = comparisonOrder(buf, start, longOnes);
  const order = new Int32Array(n);
  for (let i = 0, j = 0, o = 0; o < n; o++) {
    const takeA =
      j === b.length ||
      (i < a.length && compareBytes(buf, start[a[i]], start[a[i] + 1], buf, start[b[j]], start[b[j] + 1]) < 0);
    order[o] = takeA ? a[i++] : b[j++];
  }
  return order;
}

/** How `a[aStart, aEnd)` compares with `b[bStart, bEnd)` in LMDB's default order: < 0, 0 or > 0. */
export function compareBytes(
  a: Uint8Array,
  aStart: number,
  aEnd: number,
  b: Uint8Array,
  bStart: number,
  bEnd: number,
): number {
  const n = Math.min(aEnd - aStart, bEnd - bStart);
  for (let i = 0; i < n; i++) {
    const d = a[aStart + i] - b[bStart + i];
    if (d !== 0) return d;
  }
  return aEnd - aStart - (bEnd - bStart);
}

/** `order` (indexes of keys of at most RADIX_MAX_BYTES bytes) sorted by a radix sort of their keys. */
function radixOrder(buf: Uint8Array, start: Int32Array, order: Int32Array): Int32Array {
  const n = order.length;
  let maxLength = 0;
  for (let i = 0; i < n; i++) {
    const len = start[order[i] + 1] - start[order[i]];
    if (len > maxLength) maxLength = len;
  }
  if (n < 2) return order;
  let next: Int32Array = new Int32Array(n);
  const counts = new Int32Array(256);
  // Least significant first: the length (a key padded with zeros sorts after its prefix), then the bytes from
  // the last position to the first. Each pass is stable, so the earlier passes order the ties of the later ones.
  for (let pass = 0; pass <= maxLength; pass++) {
    const pos = pass === 0 ? -1 : maxLength - pass;
    counts.fill(0);
    for (let i = 0; i < n; i++) counts[digit(buf, start, order[i], pos)]++;
    let uniform = false;
    for (let d = 0; d < 256; d++) {
      if (counts[d] === n) uniform = true;
      if (counts[d] !== 0) break;
    }
    if (uniform) continue;
    let sum = 0;
    for (let d = 0; d < 256; d++) {
      const c = counts[d];
      counts[d] = sum;
      sum += c;
    }
    for (let i = 0; i < n; i++) {
      const k = order[i];
      next[counts[digit(buf, start, k, pos)]++] = k;
    }
    const swap = order;
    order = next;
    next = swap;
  }
  return order;
}

/** The radix digit of key `k` in a pass: its length for `pos` -1, else its byte at `pos`, 0 past its end. */
function digit(buf: Uint8Array, start: Int32Array, k: number, pos: number): number {
  const s = start[k];
  const len = start[k + 1] - s;
  if (pos < 0) return len;
  return pos < len ? buf[s + pos] : 0;
}

/** `order` sorted by its keys as latin1 strings, whose comparison is their bytes'. */
function comparisonOrder(buf: Uint8Array, start: Int32Array, order: Int32Array): Int32Array {
  const latin1 = new Latin1View();
  const keys = new Array<string>(start.length - 1);
  for (const k of order) keys[k] = latin1.slice(buf, start[k], start[k + 1]);
  return order.sort((a, b) => (keys[a] < keys[b] ? -1 : keys[a] > keys[b] ? 1 : 0));
}
