/**
 * The state watermarks of a stream-stream join, as Spark's StreamingJoinHelper computes them: from the event-time
 * range conjuncts of the join condition (`a.ts BETWEEN b.ts - interval AND b.ts + interval`), the event time at
 * or below which a buffered row of one side can never match a future row of the other side, given that the
 * other side's future rows are later than the watermark (rows at or below it are dropped as late).
 */
import { type Schema, type Struct, Type } from 'apache-arrow';
import type { Expression, ExprNode } from './expression.js';
import { splitColumnName } from './expression.js';
import type { InputSide } from './stateful-operator.js';

/**
 * A buffered row is useless once the value of its column `index` (its struct field `field`, when given) is at
 * or below the watermark plus `offsetMs`.
 */
export interface EvictionBound {
  index: number;
  field?: number;
  offsetMs: number;
}

/** `coef · column` terms and a constant (ms): the linear form of an event-time expression. */
interface Linear {
  terms: { side: InputSide; index: number; coef: number }[];
  constant: number;
}

const PAIR_COLUMN = /^_([lr])(\d+)$/;

/** The linear form of `n` over the pair columns `_l<i>` and `_r<i>` (see join.ts), or null when it has none. */
function linear(n: ExprNode, left: Schema, right: Schema): Linear | null {
  switch (n.kind) {
    case 'col': {
      const m = PAIR_COLUMN.exec(n.name);
      if (!m) return null;
      const side: InputSide = m[1] === 'l' ? 'left' : 'right';
      const index = Number(m[2]);
      const t = (side === 'left' ? left : right).fields[index]?.type.typeId;
      if (t !== Type.Timestamp && t !== Type.Int && t !== Type.Float) return null;
      return { terms: [{ side, index, coef: 1 }], constant: 0 };
    }
    case 'lit':
      return n.type === 'interval' || n.type === 'int' || n.type === 'double'
        ? { terms: [], constant: Number(n.value) }
        : null;
    case 'alias':
      return linear(n.child, left, right);
    case 'op': {
      if (n.op !== '+' && n.op !== '-') return null;
      const a = linear(n.left, left, right);
      const b = linear(n.right, left, right);
      if (!a || !b) return null;
      const s = n.op === '+' ? 1 : -1;
      return {
        terms: [...a.terms, ...b.terms.map((t) => ({ ...t, coef: s * t.coef }))],
        constant: a.constant + s * b.constant,
      };
    }
    default:
      return null;
  }
}

/**
 * From a conjunct `lhs op rhs` relating one column of each side (`left - right op c`), the bound it puts on one
 * side's buffered rows. It needs the other side's column to be that side's event-time column: only those are
 * known to be later than the watermark in future rows.
 */
function boundOf(
  n: ExprNode,
  left: Schema,
  right: Schema,
  eventTime: Record<InputSide, number>,
): { side: InputSide; bound: EvictionBound } | null {
  if (n.kind !== 'op' || !['<', '<=', '>', '>='].includes(n.op)) return null;
  const a = linear(n.left, left, right);
  const b = linear(n.right, left, right);
  if (!a || !b) return null;
  const terms = [...a.terms, ...b.terms.map((t) => ({ ...t, coef: -t.coef }))];
  const l = terms.filter((t) => t.side === 'left');
  const r = terms.filter((t) => t.side === 'right');
  if (l.length !== 1 || r.length !== 1 || l[0].coef !== -r[0].coef || Math.abs(l[0].coef) !== 1) return null;
  // lhs - rhs = ±(left - right) + (a.constant - b.constant), compared with 0.
  const k = a.constant - b.constant;
  const c = l[0].coef === 1 ? -k : k;
  const greater = (n.op === '>' || n.op === '>=') === (l[0].coef === 1);
  if (greater) {
    // left >= right + c: a future right row (right > watermark) needs left > watermark + c.
    if (r[0].index !== eventTime.right) return null;
    return { side: 'left', bound: { index: l[0].index, offsetMs: c } };
  }
  // left <= right + c, i.e. right >= left - c: a future left row needs right > watermark - c.
  if (l[0].index !== eventTime.left) return null;
  return { side: 'right', bound: { index: r[0].index, offsetMs: -c } };
}

function conjuncts(n: ExprNode): ExprNode[] {
  return n.kind === 'op' && n.op === 'AND' ? [...conjuncts(n.left), ...conjuncts(n.right)] : [n];
}

/**
 * Each side's eviction bounds from the non-key part of a join condition (over the pair columns), given each
 * side's event-time column index (-1 without a watermark). A side with no bound keeps its rows until the end.
 */
export function stateWatermarkBounds(
  residual: ExprNode | undefined,
  left: Schema,
  right: Schema,
  eventTime: Record<InputSide, number>,
): Record<InputSide, EvictionBound[]> {
  const out: Record<InputSide, EvictionBound[]> = { left: [], right: [] };
  for (const c of residual ? conjuncts(residual) : []) {
    const b = boundOf(c, left, right, eventTime);
    if (b) out[b.side].push(b.bound);
  }
  return out;
}

/**
 * The bounds a window-equality join gives: where key `k` is the end of a tumbling window over its side's event
 * time on both sides (`windows`: each side's such columns), a row of window [start, end) can only match rows
 * of that window, and once the watermark reaches end - 1 every such row of the other side is late. So a row is
 * useless when its window's end is at or below the watermark plus 1 ms.
 */
export function windowEqualityBounds(
  keys: Record<InputSide, Expression[]>,
  schemas: Record<InputSide, Schema>,
  windows: Record<InputSide, readonly string[]>,
): Record<InputSide, EvictionBound[]> {
  const out: Record<InputSide, EvictionBound[]> = { left: [], right: [] };
  const endOf = (side: InputSide, key: Expression): EvictionBound | null => {
    const e = key.expr;
    if (e.kind !== 'field' || e.name !== 'end' || e.child.kind !== 'col') return null;
    const parts = splitColumnName(e.child.name);
    if (parts.length !== 1 || !windows[side].includes(parts[0])) return null;
    const index = schemas[side].fields.findIndex((f) => f.name === parts[0]);
    const type = schemas[side].fields[index]?.type;
    if (type?.typeId !== Type.Struct) return null;
    return { index, field: (type as Struct).children.findIndex((f) => f.name === 'end'), offsetMs: 1 };
  };
  for (let k = 0; k < keys.left.length; k++) {
    const l = endOf('left', keys.left[k]);
    const r = endOf('right', keys.right[k]);
    if (l && r) {
      out.left.push(l);
      out.right.push(r);
    }
  }
  return out;
}
