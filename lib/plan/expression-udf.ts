import { valuesOf } from '../arrow/columns.js';
import { SluiceError } from '../errors.js';
import type { UserFunction } from './expression.js';
import { type LType, materialise, stringsOf, type Val, type Valid, validOf } from './expression-vectors.js';

/**
 * User-defined column functions (`udf(fn, returnType)`): the only row-at-a-time path of the expression
 * language. Argument columns are read as JS values once per batch, the function is called per row where no
 * argument is null, and its results are written back as a typed column.
 */

/** The rows of a value as the JS values rows carry: strings, numbers, booleans, Date, bigint beyond 2^53. */
function jsValues(v: Val, t: LType, n: number): unknown[] {
  const m = materialise(v, t, n);
  switch (m.k) {
    case 'str':
      return stringsOf(m, n);
    case 'data':
      return valuesOf(m.data);
    case 'scalar':
      return new Array(n).fill(m.v);
    case 'big':
      return Array.from(m.b, (x, i) =>
        m.valid && !m.valid[i] ? null : x >= -(2n ** 53n) && x <= 2n ** 53n ? Number(x) : x,
      );
    case 'bool':
      return Array.from(m.b, (x, i) => (m.valid && !m.valid[i] ? null : x === 1));
    case 'num': {
      const out = new Array<unknown>(n);
      const f = m.f;
      for (let i = 0; i < n; i++) out[i] = m.valid && !m.valid[i] ? null : t === 'timestamp' ? new Date(f[i]) : f[i];
      return out;
    }
  }
}

/** A result of the function as a number of the return type, or null when it is none. */
function numberOf(x: unknown, type: LType): number | null {
  if (x === null || x === undefined) return null;
  const d = x instanceof Date ? x.getTime() : typeof x === 'bigint' ? Number(x) : Number(x);
  if (Number.isNaN(d) && type !== 'double') return null;
  return type === 'int' ? d | 0 : type === 'long' || type === 'timestamp' ? Math.trunc(d) : d;
}

/** `fn` applied to each row of the argument values; null where an argument or the result is null. */
export function applyUserFunction(
  name: string,
  fn: UserFunction,
  args: { v: Val; t: LType }[],
  type: LType,
  n: number,
): Val {
  const cols = args.map((a) => jsValues(a.v, a.t, n));
  let argsValid: Valid = null;
  for (const a of args) {
    const valid = validOf(a.v, n);
    if (valid) {
      argsValid ??= new Uint8Array(n).fill(1);
      for (let i = 0; i < n; i++) argsValid[i] &= valid[i];
    }
  }
  const valid = new Uint8Array(n);
  const results = new Array<unknown>(n);
  const call = fn as (...xs: unknown[]) => unknown;
  const row = new Array<unknown>(cols.length);
  for (let i = 0; i < n; i++) {
    if (argsValid && !argsValid[i]) continue;
    for (let k = 0; k < cols.length; k++) row[k] = cols[k][i];
    let r: unknown;
    try {
      r = call(...row);
    } catch (err) {
      throw new SluiceError(
        'USER_CODE',
        `user-defined function ${name} failed: ${err instanceof Error ? err.message : String(err)}`,
        'fix the function or the input; the batch was not committed and runs again on restart',
        { cause: err },
      );
    }
    results[i] = r;
    if (r !== null && r !== undefined) valid[i] = 1;
  }
  switch (type) {
    case 'string':
      return { k: 'str', s: { strs: results.map((r, i) => (valid[i] ? String(r) : null)) }, valid };
    case 'boolean':
      return { k: 'bool', b: Uint8Array.from(results, (r, i) => (valid[i] && r ? 1 : 0)), valid };
    default: {
      const f = new Float64Array(n);
      for (let i = 0; i < n; i++) {
        if (!valid[i]) continue;
        const x = numberOf(results[i], type);
        if (x === null) valid[i] = 0;
        else f[i] = x;
      }
      return { k: 'num', f, valid };
    }
  }
}
