/** Checks of flag values that yargs cannot make; a bad value is bad usage (exit 2). */
import { UsageError } from '../errors.js';

/** A flag that takes one value must not be given twice (yargs then makes an array of the values). */
export function onceFlag<T>(raw: T | T[], flag: string): T {
  if (Array.isArray(raw))
    throw new UsageError('BAD_OPTION', `--${flag} is given ${raw.length} times (${raw.join(' ')})`, 'give it once');
  return raw;
}

/**
 * The value of an integer flag, checked against what the user typed (these flags have no yargs type,
 * because yargs' number type turns `--threads abc` into NaN before any check can see it).
 */
export function integerFlag(raw: unknown, flag: string, what: string, min: number, max: number, hint: string): number {
  const text = Array.isArray(raw) ? raw.join(' ') : String(raw);
  onceFlag(raw, flag);
  const n = Number(text);
  if (!/^\s*-?\d+\s*$/.test(text) || n < min || n > max)
    throw new UsageError(
      'BAD_OPTION',
      `--${flag} must be ${what} ${max === Infinity ? `of at least ${min}` : `from ${min} to ${max}`}, got ${text}`,
      hint,
    );
  return n;
}
