import type { Data, DataType } from 'apache-arrow';
import { dataFromValues, valuesOf } from '../arrow/columns.js';
import type { ArithmeticOp, ComparisonOp, LogicalOp } from './expression.js';
import {
  andValid,
  bigintsOf,
  doublesOf,
  type LType,
  materialise,
  NULL_SCALAR,
  type StrVal,
  stringsOf,
  type Val,
  type Valid,
  validOf,
} from './expression-vectors.js';

/**
 * Vectorised kernels over working values (see expression-vectors.ts). Operands arrive already coerced to a
 * common type by the analysis, so a kernel only switches on that type, once per column and never per row.
 * Spark's null rules: null in, null out; division and modulo by zero give null.
 */

const SAFE = 2 ** 53;

/** Validity with the rows whose divisor is zero cleared; `base` is not modified. */
function clearWhere(base: Valid, n: number, divisor: Float64Array | number): Valid {
  if (typeof divisor === 'number') return divisor === 0 ? new Uint8Array(n) : base;
  let out: Uint8Array | null = null;
  for (let i = 0; i < n; i++) {
    if (divisor[i] === 0) {
      if (!out) out = base ? base.slice() : new Uint8Array(n).fill(1);
      out[i] = 0;
    }
  }
  return out ?? base;
}

/** Element-wise double arithmetic; either side may be a scalar. */
function arithDoubles(op: ArithmeticOp, a: Float64Array | number, b: Float64Array | number, n: number): Float64Array {
  const out = new Float64Array(n);
  if (typeof a !== 'number' && typeof b === 'number') {
    switch (op) {
      case '+':
        for (let i = 0; i < n; i++) out[i] = a[i] + b;
        break;
      case '-':
        for (let i = 0; i < n; i++) out[i] = a[i] - b;
        break;
      case '*':
        for (let i = 0; i < n; i++) out[i] = a[i] * b;
        break;
      case '/':
        for (let i = 0; i < n; i++) out[i] = a[i] / b;
        break;
      case '%':
        for (let i = 0; i < n; i++) out[i] = a[i] % b;
        break;
    }
    return out;
  }
  const x = typeof a === 'number' ? new Float64Array(n).fill(a) : a;
  const y = typeof b === 'number' ? new Float64Array(n).fill(b) : b;
  switch (op) {
    case '+':
      for (let i = 0; i < n; i++) out[i] = x[i] + y[i];
      break;
    case '-':
      for (let i = 0; i < n; i++) out[i] = x[i] - y[i];
      break;
    case '*':
      for (let i = 0; i < n; i++) out[i] = x[i] * y[i];
      break;
    case '/':
      for (let i = 0; i < n; i++) out[i] = x[i] / y[i];
      break;
    case '%':
      for (let i = 0; i < n; i++) out[i] = x[i] % y[i];
      break;
  }
  return out;
}

function numOrScalar(v: Val, n: number): Float64Array | number {
  return v.k === 'scalar' ? Number(v.v) : doublesOf(v, n);
}

function needsBigints(v: Val): boolean {
  return v.k === 'big' || (v.k === 'scalar' && typeof v.v === 'bigint');
}

/** `l op r` where both sides are of numeric type `t` (int, long or double; '/' is always double). */
export function arithmetic(op: ArithmeticOp, t: LType, l: Val, r: Val, n: number): Val {
  if ((l.k === 'scalar' && l.v === null) || (r.k === 'scalar' && r.v === null)) return NULL_SCALAR;
  const a = numOrScalar(l, n);
  const b = numOrScalar(r, n);
  let valid = andValid(validOf(l, n), validOf(r, n), n);
  if (op === '/' || op === '%') valid = clearWhere(valid, n, b);
  if (t === 'long' && (needsBigints(l) || needsBigints(r))) return bigArithmetic(op, l, r, valid, n);
  const f = arithDoubles(op, a, b, n);
  if (t === 'int') {
    if (op === '*') {
      for (let i = 0; i < n; i++) f[i] = Math.imul(typeof a === 'number' ? a : a[i], typeof b === 'number' ? b : b[i]);
    } else {
      for (let i = 0; i < n; i++) f[i] |= 0;
    }
  } else if (t === 'long' && op !== '%') {
    for (let i = 0; i < n; i++) {
      const x = f[i];
      if ((x >= SAFE || x <= -SAFE) && (!valid || valid[i])) return bigArithmetic(op, l, r, valid, n);
    }
  }
  return { k: 'num', f, valid };
}

/** 64-bit arithmetic with Java's wrap-around, for longs beyond 2^53. */
function bigArithmetic(op: ArithmeticOp, l: Val, r: Val, valid: Valid, n: number): Val {
  const a = bigintsOf(l, n);
  const b = bigintsOf(r, n);
  const out = new BigInt64Array(n);
  for (let i = 0; i < n; i++) {
    if (valid && !valid[i]) continue;
    switch (op) {
      case '+':
        out[i] = a[i] + b[i];
        break;
      case '-':
        out[i] = a[i] - b[i];
        break;
      case '*':
        out[i] = a[i] * b[i];
        break;
      case '%':
        out[i] = b[i] === 0n ? 0n : a[i] % b[i];
        break;
      case '/':
        throw new Error('internal: long division is double division');
    }
  }
  return { k: 'big', b: out, valid };
}

const FLIP: Record<ComparisonOp, ComparisonOp> = {
  '=': '=',
  '!=': '!=',
  '<': '>',
  '<=': '>=',
  '>': '<',
  '>=': '<=',
  '<=>': '<=>',
};

// The comparison loops use `+(x < y)` and bitwise ops instead of `?:` and `||`: V8 compiles those to
// branches, which mispredict on real data and made these loops up to 7x slower.

/** Column-versus-scalar comparison of doubles; NaN equals NaN and is larger than any number (Spark). */
function compareDoublesScalar(op: ComparisonOp, a: Float64Array, s: number, n: number, out: Uint8Array): void {
  if (Number.isNaN(s)) {
    for (let i = 0; i < n; i++) {
      const nan = +Number.isNaN(a[i]);
      out[i] =
        op === '=' || op === '<=>' || op === '>=' ? nan : op === '!=' || op === '<' ? nan ^ 1 : op === '<=' ? 1 : 0;
    }
    return;
  }
  switch (op) {
    case '=':
    case '<=>':
      for (let i = 0; i < n; i++) out[i] = +(a[i] === s);
      break;
    case '!=':
      for (let i = 0; i < n; i++) out[i] = +(a[i] !== s);
      break;
    case '<':
      for (let i = 0; i < n; i++) out[i] = +(a[i] < s);
      break;
    case '<=':
      for (let i = 0; i < n; i++) out[i] = +(a[i] <= s);
      break;
    case '>':
      for (let i = 0; i < n; i++) {
        const x = a[i];
        out[i] = +(x > s) | +Number.isNaN(x);
      }
      break;
    case '>=':
      for (let i = 0; i < n; i++) {
        const x = a[i];
        out[i] = +(x >= s) | +Number.isNaN(x);
      }
      break;
  }
}

function compareDoubles(op: ComparisonOp, a: Float64Array, b: Float64Array, n: number, out: Uint8Array): void {
  switch (op) {
    case '=':
    case '<=>':
      for (let i = 0; i < n; i++) {
        const x = a[i];
        const y = b[i];
        out[i] = +(x === y) | (+Number.isNaN(x) & +Number.isNaN(y));
      }
      break;
    case '!=':
      for (let i = 0; i < n; i++) {
        const x = a[i];
        const y = b[i];
        out[i] = (+(x === y) | (+Number.isNaN(x) & +Number.isNaN(y))) ^ 1;
      }
      break;
    case '<':
      for (let i = 0; i < n; i++) {
        const x = a[i];
        const y = b[i];
        out[i] = +(x < y) | (+!Number.isNaN(x) & +Number.isNaN(y));
      }
      break;
    case '<=':
      for (let i = 0; i < n; i++) {
        const x = a[i];
        const y = b[i];
        out[i] = +(x <= y) | +Number.isNaN(y);
      }
      break;
    case '>':
      for (let i = 0; i < n; i++) {
        const x = a[i];
        const y = b[i];
        out[i] = +(y < x) | (+!Number.isNaN(y) & +Number.isNaN(x));
      }
      break;
    case '>=':
      for (let i = 0; i < n; i++) {
        const x = a[i];
        const y = b[i];
        out[i] = +(y <= x) | +Number.isNaN(x);
      }
      break;
  }
}

function compareGeneric<T>(op: ComparisonOp, a: ArrayLike<T>, b: ArrayLike<T>, n: number, out: Uint8Array): void {
  for (let i = 0; i < n; i++) {
    const x = a[i];
    const y = b[i];
    let r: boolean;
    switch (op) {
      case '=':
      case '<=>':
        r = x === y;
        break;
      case '!=':
        r = x !== y;
        break;
      case '<':
        r = x < y;
        break;
      case '<=':
        r = x <= y;
        break;
      case '>':
        r = x > y;
        break;
      default:
        r = x >= y;
        break;
    }
    out[i] = r ? 1 : 0;
  }
}

/**
 * utf8 equality against one string, comparing bytes without decoding rows. Here the length test as a branch
 * measured faster than a branch-free compare of every row's first bytes.
 */
function equalsBytes(v: StrVal, lit: Uint8Array, n: number, out: Uint8Array): void {
  const vo = v.s.vo!;
  const bytes = v.s.bytes!;
  const len = lit.length;
  for (let i = 0; i < n; i++) {
    const s = vo[i];
    if (vo[i + 1] - s !== len) continue;
    let k = 0;
    while (k < len && bytes[s + k] === lit[k]) k++;
    out[i] = +(k === len);
  }
}

const encoder = new TextEncoder();

/** Row-wise comparison of two values of type `t`. Result is boolean; `<=>` is never null. */
export function compare(op: ComparisonOp, t: LType, l: Val, r: Val, n: number): Val {
  if (l.k === 'scalar' && r.k !== 'scalar') return compare(FLIP[op], t, r, l, n);
  const nullSafe = op === '<=>';
  if (!nullSafe && r.k === 'scalar' && r.v === null) return NULL_SCALAR;
  const lValid = validOf(l, n);
  const rValid = validOf(r, n);
  const out = new Uint8Array(n);
  const scalar = r.k === 'scalar' && r.v !== null ? r.v : undefined;
  if (t === 'string') {
    const lv = l as StrVal;
    if (typeof scalar === 'string' && (op === '=' || op === '!=' || op === '<=>') && (lv.s.vo || lv.s.dict)) {
      if (lv.s.dict && lv.s.idx) {
        const hit = lv.s.dict.map((d) => d === scalar);
        for (let i = 0; i < n; i++) out[i] = hit[lv.s.idx[i]] ? 1 : 0;
      } else equalsBytes(lv, encoder.encode(scalar), n, out);
      if (op === '!=') for (let i = 0; i < n; i++) out[i] ^= 1;
    } else {
      const b = scalar !== undefined ? new Array(n).fill(scalar) : stringsOf(materialise(r, t, n) as StrVal, n);
      compareGeneric(op, stringsOf(lv, n), b, n, out);
    }
  } else if (t === 'long' && (needsBigints(l) || needsBigints(r))) {
    compareGeneric(op, bigintsOf(l, n), bigintsOf(r, n), n, out);
  } else if (typeof scalar === 'number' || typeof scalar === 'boolean') {
    compareDoublesScalar(op, doublesOf(l, n), Number(scalar), n, out);
  } else {
    compareDoubles(op, doublesOf(l, n), doublesOf(materialise(r, t, n), n), n, out);
  }
  if (!nullSafe) return { k: 'bool', b: out, valid: andValid(lValid, rValid, n) };
  if (lValid || rValid) {
    for (let i = 0; i < n; i++) {
      const a = lValid ? lValid[i] : 1;
      const b = rValid ? rValid[i] : 1;
      out[i] = a & b ? out[i] : a | b ? 0 : 1;
    }
  }
  return { k: 'bool', b: out, valid: null };
}

/** Boolean bytes and validity of a boolean value. */
function boolsOf(v: Val, n: number): { b: Uint8Array; valid: Valid } {
  if (v.k === 'bool') return v;
  if (v.k === 'scalar')
    return v.v === null
      ? { b: new Uint8Array(n), valid: new Uint8Array(n) }
      : { b: new Uint8Array(n).fill(v.v ? 1 : 0), valid: null };
  throw new Error(`internal: ${v.k} value is not boolean`);
}

/** Three-valued AND / OR. */
export function logical(op: LogicalOp, l: Val, r: Val, n: number): Val {
  const a = boolsOf(l, n);
  const b = boolsOf(r, n);
  const out = new Uint8Array(n);
  if (!a.valid && !b.valid) {
    if (op === 'AND') for (let i = 0; i < n; i++) out[i] = a.b[i] & b.b[i];
    else for (let i = 0; i < n; i++) out[i] = a.b[i] | b.b[i];
    return { k: 'bool', b: out, valid: null };
  }
  const valid = new Uint8Array(n);
  const av = a.valid;
  const bv = b.valid;
  for (let i = 0; i < n; i++) {
    const x = av ? av[i] : 1;
    const y = bv ? bv[i] : 1;
    const p = a.b[i];
    const q = b.b[i];
    if (op === 'AND') {
      // false wins over null
      const isFalse = (x & (p ^ 1)) | (y & (q ^ 1));
      valid[i] = isFalse | (x & y);
      out[i] = isFalse ? 0 : p & q;
    } else {
      const isTrue = (x & p) | (y & q);
      valid[i] = isTrue | (x & y);
      out[i] = isTrue;
    }
  }
  return { k: 'bool', b: out, valid };
}

/** Boolean NOT; null stays null. */
export function not(v: Val, n: number): Val {
  if (v.k === 'scalar') return v.v === null ? v : { k: 'scalar', v: !v.v };
  const { b, valid } = boolsOf(v, n);
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = b[i] ^ 1;
  return { k: 'bool', b: out, valid };
}

/** IS NULL / IS NOT NULL (never null). */
export function isNull(v: Val, negated: boolean, n: number): Val {
  if (v.k === 'scalar') return { k: 'scalar', v: (v.v === null) !== negated };
  const valid = validOf(v, n);
  if (!valid) return { k: 'scalar', v: negated };
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = negated ? valid[i] : valid[i] ^ 1;
  return { k: 'bool', b: out, valid: null };
}

/**
 * Picks, per row, the value of input `pick[i]` (-1 = null): the common core of CASE WHEN and coalesce.
 * `inputs` are all of type `t`; opaque types (structs, lists) go through JS values.
 */
export function pickRows(inputs: Val[], pick: Int32Array, t: LType, arrow: DataType, n: number): Val {
  if (t === 'string') {
    const picked = pickDictionaries(inputs, pick, n);
    if (picked) return picked;
  }
  const valid = new Uint8Array(n);
  for (let i = 0; i < n; i++) valid[i] = pick[i] >= 0 ? 1 : 0;
  const vals = inputs.map((v) => materialise(v, t, n));
  switch (t) {
    case 'string':
    case 'binary': {
      const strs = vals.map((v) => stringsOf(v as StrVal, n));
      const out = new Array<string | null>(n);
      for (let i = 0; i < n; i++) out[i] = pick[i] >= 0 ? strs[pick[i]][i] : null;
      return { k: 'str', s: { strs: out }, valid };
    }
    case 'boolean': {
      const bs = vals.map((v) => boolsOf(v, n).b);
      const out = new Uint8Array(n);
      for (let i = 0; i < n; i++) if (pick[i] >= 0) out[i] = bs[pick[i]][i];
      return { k: 'bool', b: out, valid };
    }
    case 'double':
    case 'int':
    case 'long':
    case 'timestamp': {
      if (vals.some((v) => v.k === 'big')) {
        const bs = vals.map((v) => bigintsOf(v, n));
        const out = new BigInt64Array(n);
        for (let i = 0; i < n; i++) if (pick[i] >= 0) out[i] = bs[pick[i]][i];
        return { k: 'big', b: out, valid };
      }
      const fs = vals.map((v) => doublesOf(v, n));
      const out = new Float64Array(n);
      for (let i = 0; i < n; i++) if (pick[i] >= 0) out[i] = fs[pick[i]][i];
      return { k: 'num', f: out, valid };
    }
    default: {
      const js = inputs.map((v) => (v.k === 'data' ? valuesOf(v.data) : new Array(n).fill(null)));
      const out = new Array<unknown>(n);
      for (let i = 0; i < n; i++) out[i] = pick[i] >= 0 ? js[pick[i]][i] : null;
      const data: Data = dataFromValues(arrow, out);
      return { k: 'data', data };
    }
  }
}

/**
 * pickRows of string inputs that are all literals or dictionaries (CASE WHEN over labels and extracted
 * values): one dictionary of every input's entries, each row's index moved to its input's entries; no
 * string per row. Null when some input has another form.
 */
function pickDictionaries(inputs: Val[], pick: Int32Array, n: number): StrVal | null {
  const base = new Int32Array(inputs.length);
  const dict: (string | null)[] = [];
  for (let j = 0; j < inputs.length; j++) {
    const v = inputs[j];
    base[j] = dict.length;
    if (v.k === 'scalar' && (v.v === null || typeof v.v === 'string')) dict.push(v.v);
    else if (v.k === 'str' && v.s.idx && v.s.dict) for (const d of v.s.dict) dict.push(d);
    else return null;
  }
  const idx = new Int32Array(n);
  const valid = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const j = pick[i];
    if (j < 0) continue;
    const v = inputs[j];
    if (v.k === 'scalar') idx[i] = base[j];
    else {
      const sv = v as StrVal;
      if (sv.valid && !sv.valid[i]) continue;
      idx[i] = base[j] + (sv.s.idx as ArrayLike<number>)[i];
    }
    valid[i] = dict[idx[i]] === null ? 0 : 1;
  }
  return { k: 'str', s: { idx, dict }, valid };
}

/** Rows for which a condition value is true (valid and set). */
export function truthy(v: Val, n: number): Uint8Array {
  if (v.k === 'scalar') return new Uint8Array(n).fill(v.v === true ? 1 : 0);
  const { b, valid } = boolsOf(v, n);
  if (!valid) return b;
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = b[i] & valid[i];
  return out;
}
