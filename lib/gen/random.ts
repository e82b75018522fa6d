/**
 * Seeded pseudo-random numbers for the data generators: the same seed gives the same sequence on every
 * machine. The stream itself is 32-bit integer arithmetic (`Math.imul`, shifts), never `Math.random`;
 * derived values use `Math.log`/`exp`/`sin`/`pow`, which V8 computes with its own fdlibm port, not the
 * platform's libm, so they are bit-identical across operating systems and CPUs.
 *
 * The generator is xoshiro128** (period 2^128 − 1), seeded through splitmix32 so that nearby seeds
 * (0, 1, 2 …) give unrelated streams.
 */

/** A seed: an integer (any safe integer, negative too) or a string (hashed). */
export type Seed = number | string;

const TWO_POW_32 = 4294967296;

/** One splitmix32 step from `x`: a well-mixed 32-bit value (unsigned). */
export function mix32(x: number): number {
  let z = (x + 0x9e3779b9) | 0;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return (z ^ (z >>> 16)) >>> 0;
}

/** FNV-1a hash of a string's UTF-16 code units, finished with {@link mix32}. */
export function hashString(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return mix32(h);
}

/**
 * A 32-bit digest of a seed. Integers keep all 53 bits (high and low words are mixed separately), so
 * seeds that differ only above bit 32 still differ.
 */
export function seedHash(seed: Seed): number {
  if (typeof seed === 'string') return hashString(seed);
  if (!Number.isSafeInteger(seed)) throw new RangeError(`a seed must be a safe integer or a string, got ${seed}`);
  const lo = seed >>> 0;
  const hi = Math.floor(seed / TWO_POW_32) | 0;
  return mix32(mix32(lo) ^ hi);
}

/** xoshiro128** seeded by splitmix32. Not for cryptography. */
export class Random {
  private s0 = 0;
  private s1 = 0;
  private s2 = 0;
  private s3 = 0;
  private spareNormal = NaN;

  constructor(seed: Seed = 0) {
    this.reseed(seedHash(seed));
  }

  /**
   * Restarts the stream from 32-bit words, e.g. `reseed(seedHash(seed), eventId)`. Reseeding a reused
   * instance is much cheaper than allocating one per item, which the Nexmark generator does per event.
   */
  reseed(a: number, b = 0): this {
    // State words are kept as signed int32 so V8 stores them unboxed.
    let x = mix32(a ^ Math.imul(b, 0x27d4eb2d)) ^ mix32(b);
    x = mix32(x);
    this.s0 = x | 0;
    x = mix32(x);
    this.s1 = x | 0;
    x = mix32(x);
    this.s2 = x | 0;
    x = mix32(x);
    this.s3 = x | 0;
    if ((this.s0 | this.s1 | this.s2 | this.s3) === 0) this.s0 = 1;
    this.spareNormal = NaN;
    return this;
  }

  /** An independent stream derived from this one's next output and `label` (e.g. 'timing', 'content'). */
  fork(label: string): Random {
    const r = new Random(0);
    r.reseed(this.uint32(), hashString(label));
    return r;
  }

  /**
   * Uniform 32 random bits as a signed int32. Hot loops should prefer this to {@link uint32}: V8 keeps
   * int32 values unboxed, while an unsigned value ≥ 2^31 becomes a heap number when passed around.
   */
  int32(): number {
    const s1 = this.s1;
    const result = Math.imul(rotl(Math.imul(s1, 5), 7), 9);
    const t = s1 << 9;
    this.s2 ^= this.s0;
    this.s3 ^= this.s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = rotl(this.s3, 11);
    return result;
  }

  /** Uniform unsigned 32-bit integer. */
  uint32(): number {
    return this.int32() >>> 0;
  }

  /** Uniform integer in [0, 65536). */
  uint16(): number {
    return this.int32() >>> 16;
  }

  /** Uniform float in [0, 1) with 32 bits of randomness. */
  float(): number {
    return (this.int32() >>> 0) / TWO_POW_32;
  }

  /** Uniform float in [0, 1) with 53 bits of randomness. */
  float53(): number {
    return ((this.uint32() >>> 5) * 67108864 + (this.uint32() >>> 6)) / 9007199254740992;
  }

  /** Uniform integer in [0, n) for 1 ≤ n ≤ 2^53 (relative bias below 2^-16 for small n, 2^-37 above). */
  int(n: number): number {
    if (n <= 0x10000) return Math.floor(this.float() * n);
    return Math.floor(this.float53() * n);
  }

  /** Uniform integer in [min, max], both inclusive. */
  intBetween(min: number, max: number): number {
    return min + this.int(max - min + 1);
  }

  /** True with probability `p`. */
  chance(p: number): boolean {
    return this.float() < p;
  }

  /** A uniformly chosen element of a non-empty array. */
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)];
  }

  /** Exponentially distributed float with the given mean (≥ 0). */
  exponential(mean: number): number {
    return -Math.log(1 - this.float53()) * mean;
  }

  /** Standard normal deviate (Box–Muller, the second value of each pair is kept for the next call). */
  normal(): number {
    if (!Number.isNaN(this.spareNormal)) {
      const v = this.spareNormal;
      this.spareNormal = NaN;
      return v;
    }
    const u = 1 - this.float53();
    const v = this.float53();
    const r = Math.sqrt(-2 * Math.log(u));
    this.spareNormal = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  }

  /** Log-normal float: `exp(mu + sigma·N(0,1))`; its median is `exp(mu)`. */
  logNormal(mu: number, sigma: number): number {
    return Math.exp(mu + sigma * this.normal());
  }

  /** Geometric integer ≥ 1 with the given mean (≥ 1): the number of trials up to the first success. */
  geometric(mean: number): number {
    if (mean <= 1) return 1;
    const p = 1 / mean;
    return 1 + Math.floor(Math.log(1 - this.float53()) / Math.log(1 - p));
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

/** Picks items with fixed relative weights in O(log n) (cumulative table and binary search). */
export class WeightedPicker<T> {
  private readonly items: T[];
  private readonly cumulative: Float64Array;

  constructor(entries: ReadonlyArray<readonly [T, number]>) {
    if (entries.length === 0) throw new RangeError('a weighted picker needs at least one entry');
    this.items = entries.map(([item]) => item);
    this.cumulative = new Float64Array(entries.length);
    let total = 0;
    entries.forEach(([, w], i) => {
      if (!(w >= 0)) throw new RangeError(`weights must be ≥ 0, got ${w}`);
      total += w;
      this.cumulative[i] = total;
    });
    if (total <= 0) throw new RangeError('the weights must not all be zero');
  }

  /** Index of the next pick. */
  pickIndex(rng: Random): number {
    const c = this.cumulative;
    const x = rng.float() * c[c.length - 1];
    let lo = 0;
    let hi = c.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (c[mid] > x) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  }

  /** The next pick. */
  pick(rng: Random): T {
    return this.items[this.pickIndex(rng)];
  }
}

/** Zipf weights `1/k^s` for ranks 1..n: a few items are very popular, most are rare (pages, products). */
export function zipfWeights(n: number, s = 1): number[] {
  const w = new Array<number>(n);
  for (let k = 1; k <= n; k++) w[k - 1] = 1 / k ** s;
  return w;
}
