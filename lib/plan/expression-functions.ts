import { formatTimestamp, parseIsoTimestamp, type TimestampFormatter, timestampParser } from './expression-time.js';
import {
  andValid,
  bigintsOf,
  doublesOf,
  type LType,
  materialise,
  NULL_SCALAR,
  type Scalar,
  type StrVal,
  scalarOf,
  stringsOf,
  utf8Of,
  type Val,
  type Valid,
  validOf,
} from './expression-vectors.js';

/**
 * Casts and the scalar functions of the expression language, vectorised over working values
 * (expression-vectors.ts). Failed conversions give null, as Spark's non-ANSI mode does.
 */

const SAFE = 2 ** 53;
const INT_MIN = -2147483648;
const INT_MAX = 2147483647;
const LONG_MIN = -(2n ** 63n);
const LONG_MAX = 2n ** 63n - 1n;

/** Parses a double as Spark's cast does: trimmed decimal or scientific text, NaN and Infinity; else null. */
export function parseDouble(s: string): number | null {
  const x = Number(s);
  if (Number.isNaN(x)) {
    const t = s.trim().toLowerCase();
    if (t === 'nan') return NaN;
    if (t === 'inf' || t === '+inf' || t === 'infinity' || t === '+infinity') return Infinity;
    if (t === '-inf' || t === '-infinity') return -Infinity;
    return null;
  }
  // Number() also accepts '', '0x1f', '0b1' and '0o7', which Spark rejects.
  if (x === 0 && s.trim() === '') return null;
  if (Number.isInteger(x) && /^\s*[+-]?0[xXbBoO]/.test(s)) return null;
  return x;
}

/**
 * Parses an integer as Spark's cast does: trimmed, optional sign, digits, and an optional fraction that is
 * truncated ('12.7' → 12). Returns a number when below 2^53, a bigint otherwise, null when malformed or
 * outside the 64-bit range.
 */
export function parseIntegral(s: string): number | bigint | null {
  let i = 0;
  let end = s.length;
  while (i < end && s.charCodeAt(i) <= 32) i++;
  while (end > i && s.charCodeAt(end - 1) <= 32) end--;
  let neg = false;
  if (i < end && (s[i] === '+' || s[i] === '-')) {
    neg = s[i] === '-';
    i++;
  }
  const digitsStart = i;
  let v = 0;
  while (i < end) {
    const c = s.charCodeAt(i) - 48;
    if (c < 0 || c > 9) break;
    v = v * 10 + c;
    i++;
  }
  const digitsEnd = i;
  if (digitsEnd === digitsStart) return null;
  if (i < end && s[i] === '.') {
    i++;
    while (i < end) {
      const c = s.charCodeAt(i) - 48;
      if (c < 0 || c > 9) return null;
      i++;
    }
  }
  if (i !== end) return null;
  if (v < SAFE) return neg ? -v : v;
  const big = BigInt(s.slice(digitsStart, digitsEnd)) * (neg ? -1n : 1n);
  return big < LONG_MIN || big > LONG_MAX ? null : big;
}

/** Spark's string to boolean: t, true, y, yes, 1 / f, false, n, no, 0 (any case, trimmed); else null. */
export function parseBoolean(s: string): boolean | null {
  switch (s.trim().toLowerCase()) {
    case 't':
    case 'true':
    case 'y':
    case 'yes':
    case '1':
      return true;
    case 'f':
    case 'false':
    case 'n':
    case 'no':
    case '0':
      return false;
    default:
      return null;
  }
}

/** Java's Double.toString, which Spark uses for double to string: `1.0`, `0.5`, `1.0E7`, `1.2E-4`. */
export function javaDoubleString(x: number): string {
  if (Number.isNaN(x)) return 'NaN';
  if (x === Infinity) return 'Infinity';
  if (x === -Infinity) return '-Infinity';
  if (x === 0) return Object.is(x, -0) ? '-0.0' : '0.0';
  const a = Math.abs(x);
  if (a >= 1e-3 && a < 1e7) {
    const s = String(x);
    return s.includes('.') ? s : `${s}.0`;
  }
  const [m, e] = x.toExponential().split('e');
  return `${m.includes('.') ? m : `${m}.0`}E${e[0] === '+' ? e.slice(1) : e}`;
}

/** Copy of a validity (or all-valid) that a kernel may clear rows in. */
function writableValid(valid: Valid, n: number): Uint8Array {
  return valid ? valid.slice() : new Uint8Array(n).fill(1);
}

/** Runs a kernel on a one-row copy of a scalar, so literals fold through the same code as columns. */
export function foldScalar(v: Val, t: LType, run: (one: Val) => Val): Val {
  if (v.k !== 'scalar') return run(v);
  if (v.v === null) return v;
  return { k: 'scalar', v: scalarOf(run(materialise(v, t, 1))) };
}

/** Parses each string with `parse`; failures become null. */
function parseStrings<T>(
  v: StrVal,
  n: number,
  parse: (s: string) => T | null,
  store: (i: number, x: T) => void,
): Uint8Array {
  const strs = stringsOf(v, n);
  const valid = writableValid(v.valid, n);
  for (let i = 0; i < n; i++) {
    if (!valid[i]) continue;
    const x = parse(strs[i] as string);
    if (x === null) valid[i] = 0;
    else store(i, x);
  }
  return valid;
}

/** Numbers (as parsed) to a long value, falling back to BigInt64Array when one is beyond 2^53. */
function longsFrom(vals: (number | bigint)[], valid: Uint8Array, n: number): Val {
  const f = new Float64Array(n);
  let big = false;
  for (let i = 0; i < n; i++) {
    if (!valid[i]) continue;
    const x = vals[i];
    if (typeof x === 'bigint') {
      big = true;
      break;
    }
    f[i] = x;
  }
  if (!big) return { k: 'num', f, valid };
  const b = new BigInt64Array(n);
  for (let i = 0; i < n; i++) if (valid[i]) b[i] = BigInt(vals[i]);
  return { k: 'big', b, valid };
}

/** JVM double to long: NaN is 0, out of range saturates. */
function doubleToLong(x: number): number | bigint {
  if (Number.isNaN(x)) return 0;
  const t = Math.trunc(x);
  if (t > -SAFE && t < SAFE) return t;
  if (t >= 2 ** 63) return LONG_MAX;
  if (t <= -(2 ** 63)) return LONG_MIN;
  return BigInt(t);
}

/** Casts a value of type `from` to type `to` (the analysis has checked the pair is allowed). */
export function cast(v: Val, from: LType, to: LType, n: number): Val {
  if (v.k === 'scalar') return foldScalar(v, from, (one) => cast(one, from, to, 1));
  if (from === 'null') return NULL_SCALAR;
  if (from === to) return v.k === 'data' ? v : ({ ...v, src: undefined } as Val);
  const valid = validOf(v, n);
  switch (to) {
    case 'string':
      return castToString(v, from, valid, n);
    case 'double': {
      if (from === 'string') {
        const f = new Float64Array(n);
        return {
          k: 'num',
          f,
          valid: parseStrings(v as StrVal, n, parseDouble, (i, x) => {
            f[i] = x;
          }),
        };
      }
      const d = doublesOf(v, n);
      if (from !== 'timestamp') return { k: 'num', f: d, valid };
      const f = new Float64Array(n);
      for (let i = 0; i < n; i++) f[i] = d[i] / 1000;
      return { k: 'num', f, valid };
    }
    case 'int': {
      const f = new Float64Array(n);
      if (from === 'string') {
        const ok = parseStrings(v as StrVal, n, parseIntegral, (i, x) => {
          f[i] = typeof x === 'number' ? x : NaN;
        });
        for (let i = 0; i < n; i++) if (ok[i] && !(f[i] >= INT_MIN && f[i] <= INT_MAX)) ok[i] = 0;
        return { k: 'num', f, valid: ok };
      }
      if (v.k === 'big') {
        for (let i = 0; i < n; i++) f[i] = Number(BigInt.asIntN(32, v.b[i]));
        return { k: 'num', f, valid };
      }
      const d = doublesOf(v, n);
      if (from === 'double') {
        for (let i = 0; i < n; i++) {
          const x = d[i];
          f[i] = Number.isNaN(x) ? 0 : x >= INT_MAX ? INT_MAX : x <= INT_MIN ? INT_MIN : Math.trunc(x);
        }
      } else if (from === 'timestamp') {
        for (let i = 0; i < n; i++) f[i] = Math.floor(d[i] / 1000) | 0;
      } else {
        for (let i = 0; i < n; i++) f[i] = d[i] | 0;
      }
      return { k: 'num', f, valid };
    }
    case 'long': {
      if (from === 'string') {
        const vals = new Array<number | bigint>(n);
        const ok = parseStrings(v as StrVal, n, parseIntegral, (i, x) => {
          vals[i] = x;
        });
        return longsFrom(vals, ok, n);
      }
      const d = doublesOf(v, n);
      if (from === 'timestamp') {
        const f = new Float64Array(n);
        for (let i = 0; i < n; i++) f[i] = Math.floor(d[i] / 1000);
        return { k: 'num', f, valid };
      }
      if (from === 'double') {
        // Typed all the way while every value is a safe integer (the usual case), no array of JS values.
        const f = new Float64Array(n);
        let i = 0;
        for (; i < n; i++) {
          const t = Math.trunc(d[i]);
          if (!(t > -SAFE && t < SAFE)) break;
          f[i] = t;
        }
        if (i === n) return { k: 'num', f, valid };
        const vals = new Array<number | bigint>(n);
        for (let j = 0; j < n; j++) vals[j] = doubleToLong(d[j]);
        return longsFrom(vals, writableValid(valid, n), n);
      }
      return { k: 'num', f: d, valid };
    }
    case 'boolean': {
      const b = new Uint8Array(n);
      if (from === 'string')
        return {
          k: 'bool',
          b,
          valid: parseStrings(v as StrVal, n, parseBoolean, (i, x) => {
            b[i] = x ? 1 : 0;
          }),
        };
      if (v.k === 'big') {
        for (let i = 0; i < n; i++) b[i] = v.b[i] !== 0n ? 1 : 0;
        return { k: 'bool', b, valid };
      }
      const d = doublesOf(v, n);
      for (let i = 0; i < n; i++) b[i] = d[i] !== 0 ? 1 : 0;
      return { k: 'bool', b, valid };
    }
    case 'timestamp': {
      const f = new Float64Array(n);
      if (from === 'string')
        return {
          k: 'num',
          f,
          valid: parseStrings(v as StrVal, n, parseIsoTimestamp, (i, x) => {
            f[i] = x;
          }),
        };
      return epochToTimestamps(v, valid, 1000, n);
    }
    default:
      throw new Error(`internal: cast from ${from} to ${to}`);
  }
}

/** Seconds or milliseconds since the epoch to a timestamp; NaN and infinities become null. */
function epochToTimestamps(v: Val, valid: Valid, msPerUnit: number, n: number): Val {
  const d = doublesOf(v, n);
  const f = new Float64Array(n);
  let out = valid;
  for (let i = 0; i < n; i++) {
    const ms = d[i] * msPerUnit;
    if (Number.isFinite(ms)) f[i] = ms;
    else {
      if (out === valid) out = writableValid(valid, n);
      out![i] = 0;
    }
  }
  return { k: 'num', f, valid: out };
}

function castToString(v: Val, from: LType, valid: Valid, n: number): Val {
  if (v.k === 'str') return { k: 'str', s: v.s, valid: v.valid };
  const out = new Array<string | null>(n);
  if (v.k === 'big') {
    for (let i = 0; i < n; i++) out[i] = valid && !valid[i] ? null : v.b[i].toString();
  } else if (v.k === 'bool') {
    for (let i = 0; i < n; i++) out[i] = valid && !valid[i] ? null : v.b[i] ? 'true' : 'false';
  } else {
    const d = doublesOf(v, n);
    const fmt = from === 'double' ? javaDoubleString : from === 'timestamp' ? formatTimestamp : String;
    for (let i = 0; i < n; i++) out[i] = valid && !valid[i] ? null : fmt(d[i]);
  }
  return { k: 'str', s: { strs: out }, valid };
}

/** Epoch seconds (msPerUnit 1000) or milliseconds (1) as a timestamp: timestamp_seconds, timestamp_millis. */
export function epochToTimestamp(v: Val, msPerUnit: number, n: number): Val {
  if (v.k === 'scalar') return foldScalar(v, 'double', (one) => epochToTimestamp(one, msPerUnit, 1));
  return epochToTimestamps(v, validOf(v, n), msPerUnit, n);
}

/** Epoch milliseconds (long) of a timestamp. */
export function unixMillis(v: Val, n: number): Val {
  if (v.k === 'scalar') return foldScalar(v, 'timestamp', (one) => unixMillis(one, 1));
  const d = doublesOf(v, n);
  const f = new Float64Array(n);
  for (let i = 0; i < n; i++) f[i] = Math.floor(d[i]);
  return { k: 'num', f, valid: validOf(v, n) };
}

/** Strings to timestamps, ISO-8601 or by a pattern; unparsable → null. */
export function parseTimestamps(v: Val, format: string | null, n: number): Val {
  if (v.k === 'scalar') return foldScalar(v, 'string', (one) => parseTimestamps(one, format, 1));
  const parse = format === null ? parseIsoTimestamp : timestampParser(format);
  const f = new Float64Array(n);
  return {
    k: 'num',
    f,
    valid: parseStrings(v as StrVal, n, parse, (i, x) => {
      f[i] = x;
    }),
  };
}

/** True when bytes[start, end) are all ASCII. */
function isAscii(bytes: Uint8Array, start: number, end: number): boolean {
  for (let k = start; k < end; k++) if (bytes[k] > 127) return false;
  return true;
}

/** lower / upper: on bytes when the column is ASCII, on the dictionary when dictionary-encoded. */
export function changeCase(v: Val, upper: boolean, n: number): Val {
  if (v.k === 'scalar') return foldScalar(v, 'string', (one) => changeCase(one, upper, 1));
  const sv = v as StrVal;
  const conv = upper ? (s: string) => s.toUpperCase() : (s: string) => s.toLowerCase();
  if (sv.s.dict && sv.s.idx) {
    return {
      k: 'str',
      s: { idx: sv.s.idx, dict: sv.s.dict.map((s) => (s === null ? null : conv(s))) },
      valid: sv.valid,
    };
  }
  const { vo, bytes } = sv.s.vo && sv.s.bytes ? { vo: sv.s.vo, bytes: sv.s.bytes } : { vo: null, bytes: null };
  if (vo && bytes && isAscii(bytes, vo[0], vo[n])) {
    const base = vo[0];
    const out = bytes.slice(base, vo[n]);
    const from = upper ? 97 : 65;
    const delta = upper ? -32 : 32;
    for (let k = 0; k < out.length; k++) {
      const c = out[k];
      if (c >= from && c < from + 26) out[k] = c + delta;
    }
    const offsets = new Int32Array(n + 1);
    for (let i = 0; i <= n; i++) offsets[i] = vo[i] - base;
    return { k: 'str', s: { vo: offsets, bytes: out }, valid: sv.valid };
  }
  return { k: 'str', s: { strs: stringsOf(sv, n).map((s) => (s === null ? null : conv(s))) }, valid: sv.valid };
}

/** Characters of a string (Unicode code points, as Spark counts), or bytes of a binary; an int. */
export function lengthOf(v: Val, from: LType, n: number): Val {
  if (v.k === 'scalar') return foldScalar(v, from, (one) => lengthOf(one, from, 1));
  const sv = v as StrVal;
  const f = new Float64Array(n);
  if (sv.s.dict && sv.s.idx) {
    const lens = sv.s.dict.map((s) => (s === null ? 0 : codePoints(s)));
    for (let i = 0; i < n; i++) f[i] = lens[sv.s.idx[i]];
  } else if (sv.s.vo && sv.s.bytes) {
    const { vo, bytes } = sv.s;
    for (let i = 0; i < n; i++) {
      const s = vo[i];
      const e = vo[i + 1];
      if (from === 'binary') {
        f[i] = e - s;
        continue;
      }
      let c = 0;
      for (let k = s; k < e; k++) if ((bytes[k] & 0xc0) !== 0x80) c++;
      f[i] = c;
    }
  } else {
    const strs = stringsOf(sv, n);
    for (let i = 0; i < n; i++) {
      const s = strs[i];
      f[i] = s === null ? 0 : codePoints(s);
    }
  }
  return { k: 'num', f, valid: sv.valid };
}

function codePoints(s: string): number {
  let c = 0;
  for (let k = 0; k < s.length; k++) if ((s.charCodeAt(k) & 0xfc00) !== 0xdc00) c++;
  return c;
}

const encoder = new TextEncoder();

/** Concatenation of string values by copying utf8 bytes; null if any input is null. */
export function concatStrings(args: Val[], n: number): Val {
  if (args.some((a) => a.k === 'scalar' && a.v === null)) return NULL_SCALAR;
  if (args.every((a) => a.k === 'scalar')) return { k: 'scalar', v: args.map((a) => (a as { v: Scalar }).v).join('') };
  const parts = args.map((a) => (a.k === 'scalar' ? { lit: encoder.encode(String(a.v)) } : utf8Of(a as StrVal, n)));
  let valid: Valid = null;
  for (const a of args) if (a.k !== 'scalar') valid = andValid(valid, a.k === 'str' ? a.valid : validOf(a, n), n);
  const offsets = new Int32Array(n + 1);
  let total = 0;
  for (let i = 0; i < n; i++) {
    if (!valid || valid[i]) {
      for (const p of parts) total += 'lit' in p ? p.lit!.length : p.vo[i + 1] - p.vo[i];
    }
    offsets[i + 1] = total;
  }
  const out = new Uint8Array(total);
  for (let i = 0; i < n; i++) {
    if (valid && !valid[i]) continue;
    let at = offsets[i];
    for (const p of parts) {
      if ('lit' in p) {
        out.set(p.lit!, at);
        at += p.lit!.length;
        continue;
      }
      const s = p.vo[i];
      const e = p.vo[i + 1];
      if (e - s < 16) for (let k = s; k < e; k++) out[at++] = p.bytes[k];
      else {
        out.set(p.bytes.subarray(s, e), at);
        at += e - s;
      }
    }
  }
  return { k: 'str', s: { vo: offsets, bytes: out }, valid };
}

/** Absolute value of a numeric value of type `t` (int keeps Java's wrap-around at the minimum). */
export function absolute(v: Val, t: LType, n: number): Val {
  if (v.k === 'scalar') return foldScalar(v, t, (one) => absolute(one, t, 1));
  if (v.k === 'big') {
    const b = new BigInt64Array(n);
    for (let i = 0; i < n; i++) b[i] = v.b[i] < 0n ? -v.b[i] : v.b[i];
    return { k: 'big', b, valid: v.valid };
  }
  const d = doublesOf(v, n);
  const f = new Float64Array(n);
  if (t === 'int') for (let i = 0; i < n; i++) f[i] = Math.abs(d[i]) | 0;
  else for (let i = 0; i < n; i++) f[i] = Math.abs(d[i]);
  return { k: 'num', f, valid: validOf(v, n) };
}

/**
 * Half-up rounding of a double to `digits` decimals, on the shortest decimal text of the value as Spark's
 * BigDecimal path does (so round(2.675, 2) is 2.68 although the double is slightly below 2.675).
 */
export function roundHalfUp(x: number, digits: number): number {
  if (!Number.isFinite(x) || x === 0) return x;
  const a = Math.abs(x);
  const scaled = digits >= 0 ? a * 10 ** digits : a / 10 ** -digits;
  if (scaled >= SAFE) return x;
  const frac = scaled - Math.floor(scaled);
  let r: number;
  if (Math.abs(frac - 0.5) < 1e-6) {
    const text = String(a);
    r = text.includes('e') ? Math.floor(scaled + 0.5) : Math.floor(Number(`${text}e${digits}`) + 0.5);
  } else {
    r = Math.floor(scaled + 0.5);
  }
  const back = digits >= 0 ? Number(`${r}e-${digits}`) : r * 10 ** -digits;
  return x < 0 ? -back : back;
}

/** round(v, digits) for int, long and double values. */
export function roundValue(v: Val, t: LType, digits: number, n: number): Val {
  if (v.k === 'scalar') return foldScalar(v, t, (one) => roundValue(one, t, digits, 1));
  if (t !== 'double' && digits >= 0) return { ...v, src: undefined } as Val;
  if (v.k === 'big') {
    const q = 10n ** BigInt(-digits);
    const b = new BigInt64Array(n);
    for (let i = 0; i < n; i++) {
      const x = v.b[i];
      const m = (((x < 0n ? -x : x) + q / 2n) / q) * q;
      b[i] = x < 0n ? -m : m;
    }
    return { k: 'big', b, valid: v.valid };
  }
  const d = doublesOf(v, n);
  const f = new Float64Array(n);
  for (let i = 0; i < n; i++) f[i] = roundHalfUp(d[i], digits);
  if (t === 'int') for (let i = 0; i < n; i++) f[i] |= 0;
  if (t === 'long' && f.some((x) => Math.abs(x) >= SAFE))
    return roundValue({ k: 'big', b: bigintsOf(v, n), valid: validOf(v, n) }, t, digits, n);
  return { k: 'num', f, valid: validOf(v, n) };
}

/**
 * Timestamps as text in a datetime pattern. Consecutive rows in one span of the pattern's finest field (a
 * day for 'yyyy-MM-dd', a minute for 'HH:mm') share their text, so it is formatted and encoded once per
 * span change, and rows copy its bytes.
 */
export function formatTimestamps(v: Val, formatter: TimestampFormatter, n: number): Val {
  if (v.k === 'scalar') return foldScalar(v, 'timestamp', (one) => formatTimestamps(one, formatter, 1));
  const d = doublesOf(v, n);
  const valid = validOf(v, n);
  const span = formatter.spanMs;
  const offsets = new Int32Array(n + 1);
  let out = new Uint8Array(Math.max(16, n * 10));
  let pos = 0;
  let lastKey = Number.NaN;
  let text = new Uint8Array(0);
  for (let i = 0; i < n; i++) {
    if (!valid || valid[i]) {
      const key = Math.floor(d[i] / span);
      if (key !== lastKey) {
        lastKey = key;
        text = encoder.encode(formatter.format(d[i]));
      }
      if (pos + text.length > out.length) {
        const grown = new Uint8Array(Math.max(out.length * 2, pos + text.length));
        grown.set(out.subarray(0, pos));
        out = grown;
      }
      for (let k = 0; k < text.length; k++) out[pos++] = text[k];
    }
    offsets[i + 1] = pos;
  }
  return { k: 'str', s: { vo: offsets, bytes: out.subarray(0, pos) }, valid };
}

const MS_PER_HOUR = 3_600_000;
const MS_PER_DAY = 86_400_000;

/** The hour of the day (UTC) of timestamps, as ints. */
export function hourOf(v: Val, n: number): Val {
  if (v.k === 'scalar') return foldScalar(v, 'timestamp', (one) => hourOf(one, 1));
  const d = doublesOf(v, n);
  const f = new Float64Array(n);
  for (let i = 0; i < n; i++) f[i] = Math.floor((((d[i] % MS_PER_DAY) + MS_PER_DAY) % MS_PER_DAY) / MS_PER_HOUR);
  return { k: 'num', f, valid: validOf(v, n) };
}
