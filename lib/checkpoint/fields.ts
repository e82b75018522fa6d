/**
 * Small checks for the fields of checkpoint entries. Each returns a description of the problem, or
 * null, so validators can chain them with `??`.
 */

/** True for a non-null, non-array object. */
export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** `obj[key]` must be an integer no smaller than `min`. */
export function checkInteger(obj: Record<string, unknown>, key: string, min = 0): string | null {
  const v = obj[key];
  if (typeof v !== 'number' || !Number.isSafeInteger(v))
    return `field "${key}" must be an integer, found ${JSON.stringify(v)}`;
  if (v < min) return `field "${key}" must be at least ${min}, found ${v}`;
  return null;
}

/** `obj[key]` must be an object whose values are all of the allowed primitive types. */
export function checkFlatRecord(
  obj: Record<string, unknown>,
  key: string,
  allowed: ReadonlyArray<'string' | 'number' | 'boolean'>,
): string | null {
  const v = obj[key];
  if (!isRecord(v)) return `field "${key}" must be an object, found ${JSON.stringify(v)}`;
  for (const [k, item] of Object.entries(v)) {
    if (!allowed.includes(typeof item as 'string')) {
      return `field "${key}.${k}" must be a ${allowed.join(' or ')}, found ${JSON.stringify(item)}`;
    }
  }
  return null;
}

/**
 * JSON text with object keys sorted, so two values that are equal as data compare equal as strings
 * whatever order their keys were written in.
 */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => {
    if (!isRecord(v)) return v;
    const sorted: Record<string, unknown> = {};
    for (const k of Object.keys(v).sort()) sorted[k] = v[k];
    return sorted;
  });
}
