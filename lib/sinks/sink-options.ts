/**
 * Reading sink options. Options arrive as strings from URI query parameters (`parquet:out?maxRowsPerFile=1000`)
 * and from `writeStream.option(k, v)`, or typed from code, so every reader accepts both forms and turns
 * anything it cannot use into a SluiceError that names the sink and the option.
 */
import { SluiceError } from '../errors.js';

/** Options as given by the user: strings from URIs, or typed values from code. */
export type SinkOptionValues = Record<string, unknown>;

/**
 * Keys the engine may pass to every sink along with its own options (Spark passes them to sinks too);
 * sinks accept and ignore them.
 */
export const ENGINE_OPTION_KEYS: readonly string[] = ['checkpointLocation', 'queryName'];

function badOption(sink: string, key: string, value: unknown, expected: string): SluiceError {
  return new SluiceError(
    'BAD_OPTION',
    `option '${key}' of the ${sink} sink must be ${expected}, got ${JSON.stringify(value)}`,
    `fix '${key}' in the sink URI or in .option('${key}', ...)`,
  );
}

/**
 * Refuses keys that no reader of this sink understands, so that a typo (`compresion=zstd`) is an error
 * instead of a silently ignored setting.
 */
export function checkKnownOptions(sink: string, options: SinkOptionValues, known: readonly string[]): void {
  for (const key of Object.keys(options)) {
    if (options[key] === undefined || known.includes(key) || ENGINE_OPTION_KEYS.includes(key)) continue;
    throw new SluiceError(
      'BAD_OPTION',
      `the ${sink} sink has no option '${key}'`,
      `its options are: ${known.join(', ')}`,
    );
  }
}

/** A non-empty string option, or undefined when absent. */
export function stringOption(sink: string, options: SinkOptionValues, key: string): string | undefined {
  const v = options[key];
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || v.trim() === '') throw badOption(sink, key, v, 'a non-empty string');
  return v;
}

/** An integer option no smaller than `min`, or `fallback` when absent. */
export function integerOption(
  sink: string,
  options: SinkOptionValues,
  key: string,
  fallback: number,
  min: number,
): number {
  const v = options[key];
  if (v === undefined) return fallback;
  const n = typeof v === 'number' ? v : typeof v === 'string' && /^\s*-?\d+\s*$/.test(v) ? Number(v) : NaN;
  if (!Number.isSafeInteger(n) || n < min) throw badOption(sink, key, v, `an integer of at least ${min}`);
  return n;
}

/** A boolean option (`true`/`false` as strings too), or `fallback` when absent. */
export function booleanOption(sink: string, options: SinkOptionValues, key: string, fallback: boolean): boolean {
  const v = options[key];
  if (v === undefined) return fallback;
  if (typeof v === 'boolean') return v;
  if (typeof v === 'string' && /^(true|false)$/i.test(v.trim())) return v.trim().toLowerCase() === 'true';
  throw badOption(sink, key, v, 'true or false');
}

/** One of `choices` (case-insensitive), or `fallback` when absent. */
export function choiceOption<T extends string>(
  sink: string,
  options: SinkOptionValues,
  key: string,
  choices: readonly T[],
  fallback: T,
): T {
  const v = options[key];
  if (v === undefined) return fallback;
  const found = typeof v === 'string' ? choices.find((c) => c === v.trim().toLowerCase()) : undefined;
  if (found === undefined) throw badOption(sink, key, v, `one of ${choices.join(', ')}`);
  return found;
}

/** A list of names: a comma-separated string or an array of strings; empty when absent. */
export function nameListOption(sink: string, options: SinkOptionValues, key: string): string[] {
  const v = options[key];
  if (v === undefined) return [];
  const items = typeof v === 'string' ? v.split(',').map((s) => s.trim()) : Array.isArray(v) ? v : null;
  if (items === null || items.some((s) => typeof s !== 'string' || s.trim() === '')) {
    throw badOption(sink, key, v, 'a comma-separated list of column names');
  }
  const names = (items as string[]).map((s) => s.trim());
  const dup = names.find((s, i) => names.indexOf(s) !== i);
  if (dup !== undefined) throw badOption(sink, key, v, `a list without repeats ('${dup}' appears twice)`);
  return names;
}
