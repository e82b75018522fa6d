import { Utf8Interner } from './aggregates/column-values.js';
import { foldScalar } from './expression-functions.js';
import { type StrVal, stringsOf, utf8Of, type Val } from './expression-vectors.js';

/**
 * The string functions that pick pieces out of text: regexp_extract and split_part, vectorised over
 * working values (expression-vectors.ts) with Spark's results for no match and missing parts: ''.
 */

const encoder = new TextEncoder();

/** Group `idx` of the first match of `re` in `s` ('' when there is none). */
function extract(re: RegExp, idx: number, s: string): string {
  const m = re.exec(s);
  return m?.[idx] ?? '';
}

/**
 * regexp_extract over strings. Equal strings recur (URLs, channels), so each distinct value is matched once
 * per call: a dictionary's values directly, utf8 rows interned by their bytes (each distinct value decoded
 * once, no string per row). The result is a dictionary over the distinct values' matches.
 */
export function regexpExtract(v: Val, re: RegExp, idx: number, n: number): Val {
  if (v.k === 'scalar') return foldScalar(v, 'string', (one) => regexpExtract(one, re, idx, 1));
  const sv = v as StrVal;
  const match = (s: string | null): string | null => (s === null ? null : extract(re, idx, s));
  if (sv.s.dict && sv.s.idx) return { k: 'str', s: { idx: sv.s.idx, dict: sv.s.dict.map(match) }, valid: sv.valid };
  if (sv.s.vo && sv.s.bytes) {
    const interner = new Utf8Interner();
    const ids = interner.idsOf(sv.s.vo, sv.s.bytes, n, sv.valid);
    return { k: 'str', s: { idx: ids, dict: interner.strings.map(match) }, valid: sv.valid };
  }
  const strs = stringsOf(sv, n);
  const seen = new Map<string, string>();
  const out = new Array<string | null>(n);
  for (let i = 0; i < n; i++) {
    const s = strs[i];
    if (s === null) {
      out[i] = null;
      continue;
    }
    let r = seen.get(s);
    if (r === undefined) {
      r = extract(re, idx, s);
      seen.set(s, r);
    }
    out[i] = r;
  }
  return { k: 'str', s: { strs: out }, valid: sv.valid };
}

/** Start of the first occurrence of `delim` in bytes[from, end), or -1. */
function indexOf(bytes: Uint8Array, delim: Uint8Array, from: number, end: number): number {
  const first = delim[0];
  const last = end - delim.length;
  outer: for (let k = from; k <= last; k++) {
    if (bytes[k] !== first) continue;
    for (let j = 1; j < delim.length; j++) if (bytes[k + j] !== delim[j]) continue outer;
    return k;
  }
  return -1;
}

/** Start of the last occurrence of `delim` in bytes[start, before), or -1. */
function lastIndexOf(bytes: Uint8Array, delim: Uint8Array, start: number, before: number): number {
  outer: for (let k = before - delim.length; k >= start; k--) {
    for (let j = 0; j < delim.length; j++) if (bytes[k + j] !== delim[j]) continue outer;
    return k;
  }
  return -1;
}

/**
 * split_part over utf8 bytes: part `part` (from 1, or from -1 at the end) of each string split at `delimiter`,
 * found and copied without decoding. UTF-8 is self-synchronising, so a byte match is a character match.
 */
export function splitPart(v: Val, delimiter: string, part: number, n: number): Val {
  if (v.k === 'scalar') return foldScalar(v, 'string', (one) => splitPart(one, delimiter, part, 1));
  const sv = v as StrVal;
  const { vo, bytes } = utf8Of(sv, n);
  const delim = encoder.encode(delimiter);
  const valid = sv.valid;
  const offsets = new Int32Array(n + 1);
  const out = new Uint8Array(vo[n] - vo[0]);
  let pos = 0;
  for (let i = 0; i < n; i++) {
    offsets[i] = pos;
    if (valid && !valid[i]) continue;
    const s = vo[i];
    const e = vo[i + 1];
    let from = -1;
    let to = -1;
    if (delim.length === 0) {
      if (part === 1 || part === -1) {
        from = s;
        to = e;
      }
    } else if (part > 0) {
      let at = s;
      for (let k = 1; k < part && at >= 0; k++) {
        const d = indexOf(bytes, delim, at, e);
        at = d < 0 ? -1 : d + delim.length;
      }
      if (at >= 0) {
        from = at;
        const d = indexOf(bytes, delim, at, e);
        to = d < 0 ? e : d;
      }
    } else {
      let at = e;
      for (let k = -1; k > part && at >= 0; k--) {
        const d = lastIndexOf(bytes, delim, s, at);
        at = d;
      }
      if (at >= 0) {
        to = at;
        const d = lastIndexOf(bytes, delim, s, at);
        from = d < 0 ? s : d + delim.length;
      }
    }
    for (let k = from; k < to; k++) out[pos++] = bytes[k];
  }
  offsets[n] = pos;
  return { k: 'str', s: { vo: offsets, bytes: out.subarray(0, pos) }, valid };
}
