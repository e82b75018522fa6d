import { SluiceError } from '../errors.js';

const UNITS: Record<string, number> = {
  ms: 1,
  millisecond: 1,
  milliseconds: 1,
  s: 1000,
  sec: 1000,
  secs: 1000,
  second: 1000,
  seconds: 1000,
  m: 60_000,
  min: 60_000,
  mins: 60_000,
  minute: 60_000,
  minutes: 60_000,
  h: 3_600_000,
  hour: 3_600_000,
  hours: 3_600_000,
  d: 86_400_000,
  day: 86_400_000,
  days: 86_400_000,
};

/**
 * Milliseconds of a duration written as Spark does ('5 minutes', '10 seconds', '1 hour 30 minutes') or
 * short ('5m', '10s', '1h30m', '250ms'); a number, or a string of one, is taken as milliseconds.
 */
export function parseDuration(value: string | number, what: string): number {
  if (typeof value === 'number') {
    if (Number.isFinite(value) && value >= 0) return value;
  } else {
    const text = value.trim().toLowerCase();
    const re = /(\d+(?:\.\d+)?)\s*([a-z]+)/g;
    let total = 0;
    let consumed = '';
    for (const m of text.matchAll(re)) {
      const unit = UNITS[m[2]];
      if (unit === undefined) {
        consumed = '';
        break;
      }
      total += Number(m[1]) * unit;
      consumed += m[0];
    }
    if (consumed.replace(/\s+/g, '') === text.replace(/\s+/g, '') && consumed !== '') return Math.round(total);
    if (/^\d+(?:\.\d+)?$/.test(text)) return Math.round(Number(text));
  }
  throw new SluiceError(
    'BAD_DURATION',
    `cannot read ${what} '${value}' as a duration`,
    "write e.g. '500ms', '10s', '5m', '1h', '5 minutes' or '1 hour 30 minutes'",
  );
}
