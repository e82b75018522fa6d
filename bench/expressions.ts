/**
 * Column-expression micro-benchmark over one 1M-row Arrow batch (user_id, event_type, amount):
 * - filter `amount > 10 AND event_type = 'click'` with filterIndices,
 * - projection `user_id, amount * 1.1, upper(event_type), amount > 50` with compileProjection,
 * each against a hand-written loop over the same typed arrays in the same invocation. Both sides are checked
 * to produce the same result. Prints the median and the best of `runs` runs in rows/s and the ratio engine / loop.
 *
 *   node dist/bench/expressions.js [rows=1000000] [runs=5]
 */
import type { Data, RecordBatch } from 'apache-arrow';
import { col, upper } from '../lib/api/column.js';
import { batchFromColumns, schemaFromSpec } from '../lib/arrow/index.js';
import { compileFilter, compileProjection } from '../lib/plan/expression-eval.js';
import { median } from './support.js';

const ROWS = Number(process.argv[2] ?? 1_000_000);
const RUNS = Number(process.argv[3] ?? 5);
const ctx = { batchTimestampMs: 1_700_000_000_000 };

function makeBatch(n: number): RecordBatch {
  let seed = 42;
  const rnd = (): number => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed / 2147483648;
  };
  const users = new Array<string>(n);
  const types = new Array<string>(n);
  const amounts = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    users[i] = `u${Math.floor(rnd() * 10_000)}`;
    const r = rnd();
    types[i] = r < 0.7 ? 'page_view' : r < 0.97 ? 'click' : 'purchase';
    amounts[i] = Math.round(rnd() * 10_000) / 100;
  }
  return batchFromColumns(
    schemaFromSpec({ user_id: 'string', event_type: 'string', amount: 'double' }),
    [users, types, amounts],
    n,
  );
}

/** The filter written by hand: one fused loop, bytes compared in place. */
function handFilter(batch: RecordBatch): Int32Array {
  const amount = batch.data.children[2].values as Float64Array;
  const et = batch.data.children[1];
  const vo = et.valueOffsets as Int32Array;
  const bytes = et.values as Uint8Array;
  const click = new TextEncoder().encode('click');
  const n = batch.numRows;
  const out = new Int32Array(n);
  let k = 0;
  for (let i = 0; i < n; i++) {
    if (!(amount[i] > 10)) continue;
    const s = vo[i];
    if (vo[i + 1] - s !== 5) continue;
    if (
      bytes[s] === click[0] &&
      bytes[s + 1] === click[1] &&
      bytes[s + 2] === click[2] &&
      bytes[s + 3] === click[3] &&
      bytes[s + 4] === click[4]
    )
      out[k++] = i;
  }
  return out.slice(0, k);
}

/** The projection written by hand: the three computed columns' buffers. */
function handProjection(batch: RecordBatch): { eur: Float64Array; upperBytes: Uint8Array; big: Uint8Array } {
  const n = batch.numRows;
  const amount = batch.data.children[2].values as Float64Array;
  const et = batch.data.children[1];
  const vo = et.valueOffsets as Int32Array;
  const src = (et.values as Uint8Array).subarray(vo[0], vo[n]);
  const eur = new Float64Array(n);
  for (let i = 0; i < n; i++) eur[i] = amount[i] * 1.1;
  const upperBytes = new Uint8Array(src.length);
  for (let k = 0; k < src.length; k++) {
    const c = src[k];
    upperBytes[k] = c >= 97 && c <= 122 ? c - 32 : c;
  }
  const offsets = new Int32Array(n + 1);
  for (let i = 0; i <= n; i++) offsets[i] = vo[i] - vo[0];
  const big = new Uint8Array((n + 7) >> 3);
  for (let i = 0; i < n; i++) if (amount[i] > 50) big[i >> 3] |= 1 << (i & 7);
  return { eur, upperBytes, big };
}

function time<T>(fn: () => T): { ms: number; result: T } {
  const t0 = performance.now();
  const result = fn();
  return { ms: performance.now() - t0, result };
}

function equalArrays(a: ArrayLike<number>, b: ArrayLike<number>, n = a.length): boolean {
  if (a.length < n || b.length < n) return false;
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Median and best run: on a shared 2-core machine the best run is the steadier figure. */
function report(name: string, engineMs: number[], loopMs: number[]): void {
  const rate = (ms: number): string => `${(ROWS / ms / 1000).toFixed(1)}M`;
  const e = median(engineMs);
  const l = median(loopMs);
  const eb = Math.min(...engineMs);
  const lb = Math.min(...loopMs);
  console.log(
    `${name.padEnd(11)} engine ${rate(e)} rows/s (best ${rate(eb)})   hand loop ${rate(l)} rows/s (best ${rate(lb)})` +
      `   engine/loop ${(l / e).toFixed(2)} (best ${(lb / eb).toFixed(2)})`,
  );
}

const batch = makeBatch(ROWS);
const filter = compileFilter(col('amount').gt(10).and(col('event_type').eq('click')), batch.schema);
const projection = compileProjection(
  [
    col('user_id'),
    col('amount').multiply(1.1).alias('amount_eur'),
    upper(col('event_type')).alias('type'),
    col('amount').gt(50).alias('big'),
  ],
  batch.schema,
);

const filterMs: number[] = [];
const filterLoopMs: number[] = [];
const projMs: number[] = [];
const projLoopMs: number[] = [];
for (let r = 0; r < RUNS + 1; r++) {
  const f = time(() => filter.indices(batch, ctx));
  const fl = time(() => handFilter(batch));
  if (!equalArrays(f.result, fl.result) || f.result.length !== fl.result.length)
    throw new Error('filter results differ from the hand loop');
  const p = time(() => projection.apply(batch, ctx));
  const pl = time(() => handProjection(batch));
  const [, eur, type, big] = p.result.data.children as Data[];
  if (
    !equalArrays(eur.values as Float64Array, pl.result.eur) ||
    !equalArrays(type.values as Uint8Array, pl.result.upperBytes) ||
    !equalArrays(big.values as Uint8Array, pl.result.big)
  ) {
    throw new Error('projection results differ from the hand loop');
  }
  if (r === 0) continue; // warm-up
  filterMs.push(f.ms);
  filterLoopMs.push(fl.ms);
  projMs.push(p.ms);
  projLoopMs.push(pl.ms);
}
console.log(
  `column expressions over ${ROWS} rows, median of ${RUNS} runs after one warm-up (${filter.indices(batch, ctx).length} rows pass the filter)`,
);
report('filter', filterMs, filterLoopMs);
report('projection', projMs, projLoopMs);
