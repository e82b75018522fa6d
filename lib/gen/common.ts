import { SluiceError } from '../errors.js';

/** Default event time of the first generated event: 2024-01-01T00:00:00Z, fixed so output is reproducible. */
export const DEFAULT_START_TIME = Date.UTC(2024, 0, 1);

/** How generated records carry their event time. */
export type TimestampFormat = 'iso' | 'epoch-ms';

/** The accepted {@link TimestampFormat} names. */
export const TIMESTAMP_FORMATS: readonly TimestampFormat[] = ['iso', 'epoch-ms'];

const minutePrefixes = new Map<number, string>();

/**
 * `ts` (epoch ms) as an ISO-8601 UTC string with milliseconds (`2024-01-01T00:00:04.531Z`, what
 * `Date.toISOString` gives), or as the number itself. The `YYYY-MM-DDTHH:MM:` prefix is cached per
 * minute: formatting is a large part of generating events otherwise.
 */
export function formatTimestamp(ts: number, format: TimestampFormat): string | number {
  if (format !== 'iso') return ts;
  const minute = Math.floor(ts / 60_000);
  let prefix = minutePrefixes.get(minute);
  if (prefix === undefined) {
    const iso = new Date(minute * 60_000).toISOString();
    if (iso.length !== 24) return new Date(ts).toISOString();
    if (minutePrefixes.size >= 4096) minutePrefixes.clear();
    prefix = iso.slice(0, 17);
    minutePrefixes.set(minute, prefix);
  }
  const ms = ts - minute * 60_000;
  const sec = Math.floor(ms / 1000);
  const milli = ms - sec * 1000;
  return `${prefix}${sec < 10 ? '0' : ''}${sec}.${milli < 10 ? '00' : milli < 100 ? '0' : ''}${milli}Z`;
}

/** `prefix-000042`-style id for item `n` (0-based, printed 1-based) of `total`, zero-padded to ≥ 4 digits. */
export function idOf(prefix: string, n: number, total: number): string {
  const width = Math.max(4, String(total).length);
  return `${prefix}-${String(n + 1).padStart(width, '0')}`;
}

/** True for a usable event count: a non-negative safe integer, or Infinity for an endless stream. */
export function isCount(n: number): boolean {
  return n === Infinity || (Number.isSafeInteger(n) && n >= 0);
}

/** The error generators throw for an invalid option value. */
export function badOption(message: string): SluiceError {
  return new SluiceError('GEN_BAD_OPTION', message, "fix the option's value (see `sluice gen --help`)");
}

/** Amount rounded to cents (avoids 0.1 + 0.2 artefacts in generated data). */
export function cents(x: number): number {
  return Math.round(x * 100) / 100;
}

/** `defaults` overridden by the options the caller set (undefined means "use the default"). */
export function withDefaults<T extends object>(defaults: Required<T>, options: T): Required<T> {
  const out = { ...defaults };
  for (const [k, v] of Object.entries(options)) if (v !== undefined) (out as Record<string, unknown>)[k] = v;
  return out;
}

/** Throws {@link badOption} unless `format` is a known timestamp format. */
export function checkTimestampFormat(format: string): asserts format is TimestampFormat {
  if (!(TIMESTAMP_FORMATS as readonly string[]).includes(format)) {
    throw badOption(`unknown timestamp format '${format}'; accepted: ${TIMESTAMP_FORMATS.join(', ')}`);
  }
}
