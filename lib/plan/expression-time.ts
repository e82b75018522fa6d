import { SluiceError } from '../errors.js';

/**
 * Timestamp parsing and formatting for column expressions, all in UTC and in epoch milliseconds. Hand-written
 * over charCodeAt because Date.parse is lenient in engine-specific ways (it reads '2024-1-1' as local time)
 * and allocates a Date per row.
 */

const MS_PER_DAY = 86_400_000;

/** Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil). */
function daysFromCivil(y: number, m: number, d: number): number {
  const yy = m <= 2 ? y - 1 : y;
  const era = Math.floor(yy / 400);
  const yoe = yy - era * 400;
  const doy = Math.floor((153 * (m + (m > 2 ? -3 : 9)) + 2) / 5) + d - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146097 + doe - 719468;
}

function daysInMonth(y: number, m: number): number {
  if (m === 2) return (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0 ? 29 : 28;
  return m === 4 || m === 6 || m === 9 || m === 11 ? 30 : 31;
}

function pad(n: number, w: number): string {
  const s = String(n);
  return s.length >= w ? s : '0'.repeat(w - s.length) + s;
}

/** The UTC calendar fields of epoch ms (H. Hinnant's civil_from_days); weekday 0 is Monday. */
interface Civil {
  y: number;
  mo: number;
  d: number;
  h: number;
  mi: number;
  s: number;
  ms: number;
  weekday: number;
}

function civilOf(epochMs: number): Civil {
  const days = Math.floor(epochMs / MS_PER_DAY);
  let rest = epochMs - days * MS_PER_DAY;
  const z = days + 719468;
  const era = Math.floor(z / 146097);
  const doe = z - era * 146097;
  const yoe = Math.floor((doe - Math.floor(doe / 1460) + Math.floor(doe / 36524) - Math.floor(doe / 146096)) / 365);
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
  const mp = Math.floor((5 * doy + 2) / 153);
  const d = doy - Math.floor((153 * mp + 2) / 5) + 1;
  const mo = mp < 10 ? mp + 3 : mp - 9;
  const y = yoe + era * 400 + (mo <= 2 ? 1 : 0);
  const h = Math.floor(rest / 3_600_000);
  rest -= h * 3_600_000;
  const mi = Math.floor(rest / 60_000);
  rest -= mi * 60_000;
  const s = Math.floor(rest / 1000);
  const ms = Math.floor(rest - s * 1000);
  // 1970-01-01 was a Thursday (3 with Monday 0).
  const weekday = (((days + 3) % 7) + 7) % 7;
  return { y, mo, d, h, mi, s, ms, weekday };
}

/** Spark's text of a timestamp: `2024-05-01 10:00:00`, fractional seconds only when non-zero (`…:00.25`). */
export function formatTimestamp(epochMs: number): string {
  const { y, mo, d, h, mi, s, ms } = civilOf(epochMs);
  const base = `${pad(y, 4)}-${pad(mo, 2)}-${pad(d, 2)} ${pad(h, 2)}:${pad(mi, 2)}:${pad(s, 2)}`;
  return ms === 0 ? base : `${base}.${pad(ms, 3).replace(/0+$/, '')}`;
}

/** Epoch ms of validated fields, or null when a field is out of range. */
function toEpochMs(
  y: number,
  mo: number,
  d: number,
  h: number,
  mi: number,
  s: number,
  ms: number,
  offsetMin: number,
): number | null {
  if (mo < 1 || mo > 12 || d < 1 || d > daysInMonth(y, mo) || h > 23 || mi > 59 || s > 59) return null;
  return daysFromCivil(y, mo, d) * MS_PER_DAY + h * 3_600_000 + mi * 60_000 + s * 1000 + ms - offsetMin * 60_000;
}

/** A cursor over a string for the parsers below. */
class Scan {
  pos: number;
  constructor(
    readonly s: string,
    start: number,
    readonly end: number,
  ) {
    this.pos = start;
  }
  /** Reads between min and max digits; -1 if fewer than min. */
  digits(min: number, max: number): number {
    let v = 0;
    let k = 0;
    while (k < max && this.pos < this.end) {
      const c = this.s.charCodeAt(this.pos) - 48;
      if (c < 0 || c > 9) break;
      v = v * 10 + c;
      this.pos++;
      k++;
    }
    return k < min ? -1 : v;
  }
  /** Fraction digits as milliseconds (digits beyond the third are truncated); -1 if none. */
  fractionMs(maxDigits: number): number {
    let v = 0;
    let k = 0;
    while (k < maxDigits && this.pos < this.end) {
      const c = this.s.charCodeAt(this.pos) - 48;
      if (c < 0 || c > 9) break;
      if (k < 3) v = v * 10 + c;
      this.pos++;
      k++;
    }
    if (k === 0) return -1;
    for (let j = k; j < 3; j++) v *= 10;
    return v;
  }
  eat(ch: string): boolean {
    if (this.pos < this.end && this.s[this.pos] === ch) {
      this.pos++;
      return true;
    }
    return false;
  }
  peek(): string {
    return this.pos < this.end ? this.s[this.pos] : '';
  }
  done(): boolean {
    return this.pos >= this.end;
  }
  /** A zone: Z, UTC, GMT, UT, or an offset ±HH, ±HH:mm, ±HHmm (optionally after UTC/GMT). Offset minutes east, or null. */
  zone(): number | null {
    if (this.eat('Z')) return 0;
    const rest = this.s.slice(this.pos, this.end);
    const named = /^(UTC|GMT|UT)/.exec(rest);
    if (named) {
      this.pos += named[1].length;
      if (this.done()) return 0;
    }
    const sign = this.peek();
    if (sign !== '+' && sign !== '-') return null;
    this.pos++;
    const hh = this.digits(1, 2);
    if (hh < 0 || hh > 18) return null;
    let mm = 0;
    if (this.eat(':')) {
      mm = this.digits(2, 2);
      if (mm < 0) return null;
    } else if (!this.done() && this.peek() >= '0' && this.peek() <= '9') {
      mm = this.digits(2, 2);
      if (mm < 0) return null;
    }
    if (mm > 59) return null;
    return (sign === '-' ? -1 : 1) * (hh * 60 + mm);
  }
}

function isSpace(c: number): boolean {
  return c === 32 || c === 9 || c === 10 || c === 13;
}

/**
 * Parses ISO-8601-like text as Spark's cast to timestamp does: `yyyy`, `yyyy-[M]M`, `yyyy-[M]M-[d]d`, then
 * optionally `T` or a space and `[H]H:[m]m[:[s]s[.fraction]]`, then optionally a zone (`Z`, `+02:00`, `-0500`,
 * `UTC`). Without a zone the text is UTC. Surrounding whitespace is ignored. Returns epoch ms or null.
 */
export function parseIsoTimestamp(s: string): number | null {
  let start = 0;
  let end = s.length;
  while (start < end && isSpace(s.charCodeAt(start))) start++;
  while (end > start && isSpace(s.charCodeAt(end - 1))) end--;
  const p = new Scan(s, start, end);
  const y = p.digits(4, 4);
  if (y < 0) return null;
  let mo = 1;
  let d = 1;
  if (p.eat('-')) {
    mo = p.digits(1, 2);
    if (mo < 0) return null;
    if (p.eat('-')) {
      d = p.digits(1, 2);
      if (d < 0) return null;
    }
  }
  if (p.done()) return toEpochMs(y, mo, d, 0, 0, 0, 0, 0);
  let h = 0;
  let mi = 0;
  let sec = 0;
  let ms = 0;
  const sep = p.peek();
  if (sep === 'T' || sep === ' ') {
    p.pos++;
    h = p.digits(1, 2);
    if (h < 0 || !p.eat(':')) return null;
    mi = p.digits(1, 2);
    if (mi < 0) return null;
    if (p.eat(':')) {
      sec = p.digits(1, 2);
      if (sec < 0) return null;
      if (p.eat('.')) {
        ms = p.fractionMs(9);
        if (ms < 0) return null;
      }
    }
  }
  let offset = 0;
  if (!p.done()) {
    p.eat(' ');
    const z = p.zone();
    if (z === null || !p.done()) return null;
    offset = z;
  }
  return toEpochMs(y, mo, d, h, mi, sec, ms, offset);
}

const MONTHS = [
  'january',
  'february',
  'march',
  'april',
  'may',
  'june',
  'july',
  'august',
  'september',
  'october',
  'november',
  'december',
];
const DAYS = ['monday', 'tuesday', 'wednesday', 'thursday', 'friday', 'saturday', 'sunday'];

type Fields = {
  y: number;
  mo: number;
  d: number;
  h: number;
  mi: number;
  s: number;
  ms: number;
  pm: number;
  h12: boolean;
  off: number;
};
type Step = (p: Scan, f: Fields) => boolean;

function numberStep(count: number, maxWidth: number, set: (f: Fields, v: number) => void): Step {
  const min = count >= 2 ? count : 1;
  const max = count >= 2 ? count : maxWidth;
  return (p, f) => {
    const v = p.digits(min, max);
    if (v < 0) return false;
    set(f, v);
    return true;
  };
}

function nameStep(names: string[], short: boolean, set: (f: Fields, index: number) => void): Step {
  return (p, f) => {
    const rest = p.s.slice(p.pos, p.end).toLowerCase();
    for (let i = 0; i < names.length; i++) {
      const n = short ? names[i].slice(0, 3) : names[i];
      if (rest.startsWith(n)) {
        p.pos += n.length;
        set(f, i);
        return true;
      }
    }
    return false;
  };
}

function literalStep(text: string): Step {
  return (p) => {
    if (p.s.startsWith(text, p.pos) && p.pos + text.length <= p.end) {
      p.pos += text.length;
      return true;
    }
    return false;
  };
}

function letterStep(letter: string, count: number, pattern: string): Step {
  switch (letter) {
    case 'y':
    case 'u':
      return count === 2
        ? numberStep(2, 2, (f, v) => {
            f.y = 2000 + v;
          })
        : numberStep(4, 4, (f, v) => {
            f.y = v;
          });
    case 'M':
    case 'L':
      if (count >= 3)
        return nameStep(MONTHS, count === 3, (f, i) => {
          f.mo = i + 1;
        });
      return numberStep(count, 2, (f, v) => {
        f.mo = v;
      });
    case 'd':
      return numberStep(count, 2, (f, v) => {
        f.d = v;
      });
    case 'H':
      return numberStep(count, 2, (f, v) => {
        f.h = v;
      });
    case 'h':
      return numberStep(count, 2, (f, v) => {
        f.h = v;
        f.h12 = true;
      });
    case 'm':
      return numberStep(count, 2, (f, v) => {
        f.mi = v;
      });
    case 's':
      return numberStep(count, 2, (f, v) => {
        f.s = v;
      });
    case 'S':
      return (p, f) => {
        const v = p.fractionMs(count);
        if (v < 0) return false;
        f.ms = v;
        return true;
      };
    case 'a':
      return nameStep(['am', 'pm'], false, (f, i) => {
        f.pm = i;
      });
    case 'E':
      return nameStep(DAYS, count <= 3, () => undefined);
    case 'X':
    case 'x':
    case 'Z':
    case 'O':
      return (p, f) => {
        const z = p.zone();
        if (z === null) return false;
        f.off = z;
        return true;
      };
    default:
      throw new SluiceError(
        'ANALYSIS',
        `unsupported pattern letter '${letter}' in timestamp format '${pattern}'`,
        "use y M d H h m s S a E X (e.g. 'yyyy-MM-dd HH:mm:ss'); quote literal text with single quotes",
      );
  }
}

/** A piece of a datetime pattern: a run of one pattern letter, or literal text. */
type PatternToken = { letter: string; count: number } | { text: string };

/** Splits a Java/Spark datetime pattern into letter runs and literal text (quoted with single quotes). */
function patternTokens(pattern: string): PatternToken[] {
  const tokens: PatternToken[] = [];
  for (let i = 0; i < pattern.length; ) {
    const c = pattern[i];
    if (c === "'") {
      if (pattern[i + 1] === "'") {
        tokens.push({ text: "'" });
        i += 2;
        continue;
      }
      let text = '';
      let j = i + 1;
      while (j < pattern.length) {
        if (pattern[j] === "'") {
          if (pattern[j + 1] !== "'") break;
          text += "'";
          j += 2;
        } else text += pattern[j++];
      }
      if (j >= pattern.length) {
        throw new SluiceError(
          'ANALYSIS',
          `unterminated quote in timestamp format '${pattern}'`,
          'close literal text with a single quote, e.g. "yyyy-MM-dd\'T\'HH:mm"',
        );
      }
      tokens.push({ text });
      i = j + 1;
    } else if (/[A-Za-z]/.test(c)) {
      let j = i;
      while (pattern[j] === c) j++;
      tokens.push({ letter: c, count: j - i });
      i = j;
    } else {
      tokens.push({ text: c });
      i++;
    }
  }
  return tokens;
}

const compiled = new Map<string, (s: string) => number | null>();

/**
 * A parser for a Java/Spark datetime pattern ('yyyy-MM-dd HH:mm:ss', "yyyy-MM-dd'T'HH:mm:ss.SSSX",
 * 'dd/MM/yyyy', 'MMM d, yyyy h:mm a'). The whole text must match; no zone in the pattern means UTC.
 * Throws an ANALYSIS error for letters it does not support, so a bad pattern fails before any data.
 */
export function timestampParser(pattern: string): (s: string) => number | null {
  const cached = compiled.get(pattern);
  if (cached) return cached;
  const steps: Step[] = patternTokens(pattern).map((t) =>
    'text' in t ? literalStep(t.text) : letterStep(t.letter, t.count, pattern),
  );
  const parse = (s: string): number | null => {
    const p = new Scan(s, 0, s.length);
    const f: Fields = { y: 1970, mo: 1, d: 1, h: 0, mi: 0, s: 0, ms: 0, pm: -1, h12: false, off: 0 };
    for (const step of steps) if (!step(p, f)) return null;
    if (!p.done()) return null;
    let h = f.h;
    if (f.h12) {
      if (h < 1 || h > 12) return null;
      h = (h % 12) + (f.pm === 1 ? 12 : 0);
    } else if (f.pm === 1 && h < 12) h += 12;
    return toEpochMs(f.y, f.mo, f.d, h, f.mi, f.s, f.ms, f.off);
  };
  compiled.set(pattern, parse);
  return parse;
}

const capitalised = (name: string): string => name[0].toUpperCase() + name.slice(1);

/** The text of one letter run of a pattern for a timestamp's calendar fields, and the time span it can change on. */
function letterText(letter: string, count: number, pattern: string): { text: (c: Civil) => string; spanMs: number } {
  const num = (field: (c: Civil) => number, spanMs: number) => ({ text: (c: Civil) => pad(field(c), count), spanMs });
  switch (letter) {
    case 'y':
    case 'u':
      return count === 2 ? { text: (c) => pad(c.y % 100, 2), spanMs: MS_PER_DAY } : num((c) => c.y, MS_PER_DAY);
    case 'M':
    case 'L':
      if (count >= 3)
        return {
          text: (c) => capitalised(count === 3 ? MONTHS[c.mo - 1].slice(0, 3) : MONTHS[c.mo - 1]),
          spanMs: MS_PER_DAY,
        };
      return num((c) => c.mo, MS_PER_DAY);
    case 'd':
      return num((c) => c.d, MS_PER_DAY);
    case 'E':
      return {
        text: (c) => capitalised(count <= 3 ? DAYS[c.weekday].slice(0, 3) : DAYS[c.weekday]),
        spanMs: MS_PER_DAY,
      };
    case 'a':
      return { text: (c) => (c.h < 12 ? 'AM' : 'PM'), spanMs: 3_600_000 };
    case 'H':
      return num((c) => c.h, 3_600_000);
    case 'h':
      return num((c) => (c.h % 12 === 0 ? 12 : c.h % 12), 3_600_000);
    case 'm':
      return num((c) => c.mi, 60_000);
    case 's':
      return num((c) => c.s, 1000);
    case 'S':
      return { text: (c) => pad(c.ms, 3).padEnd(count, '0').slice(0, count), spanMs: 1 };
    default:
      throw new SluiceError(
        'ANALYSIS',
        `unsupported pattern letter '${letter}' in date format '${pattern}'`,
        "use y M d E H h m s S a (e.g. 'yyyy-MM-dd HH:mm'); quote literal text with single quotes",
      );
  }
}

/** Formats epoch ms as text; every instant of one span of `spanMs` (aligned to the epoch) has the same text. */
export interface TimestampFormatter {
  format(epochMs: number): string;
  spanMs: number;
}

/**
 * A formatter for a Java/Spark datetime pattern ('yyyy-MM-dd', 'HH:mm', "yyyy-MM-dd'T'HH:mm:ss.SSS"), in UTC.
 * Throws an ANALYSIS error for letters it does not support, so a bad pattern fails before any data.
 */
export function timestampFormatter(pattern: string): TimestampFormatter {
  let spanMs = MS_PER_DAY;
  const parts = patternTokens(pattern).map((t) => {
    if ('text' in t) return () => t.text;
    const l = letterText(t.letter, t.count, pattern);
    spanMs = Math.min(spanMs, l.spanMs);
    return l.text;
  });
  return {
    format: (epochMs) => {
      const c = civilOf(epochMs);
      let out = '';
      for (const p of parts) out += p(c);
      return out;
    },
    spanMs,
  };
}
