/**
 * The `k`-th smallest (0-based) of `values[0, n)`, by quickselect: linear on average, where sorting all `n`
 * to take one would cost n log n. Reorders `values[0, n)`; `values` holds no NaN.
 */
export function nthSmallest(values: Float64Array, n: number, k: number): number {
  if (!(k >= 0 && k < n)) throw new RangeError(`nthSmallest: k ${k} outside [0, ${n})`);
  let lo = 0;
  let hi = n - 1;
  while (lo < hi) {
    // Median of three as the pivot, so runs already in order (timeouts often are) stay linear.
    const mid = (lo + hi) >>> 1;
    const a = values[lo];
    const b = values[mid];
    const c = values[hi];
    const pivot = Math.max(Math.min(a, b), Math.min(Math.max(a, b), c));
    // Hoare's partition: values equal to the pivot go to both sides, so many equal values split evenly.
    let i = lo;
    let j = hi;
    while (i <= j) {
      while (values[i] < pivot) i++;
      while (values[j] > pivot) j--;
      if (i <= j) {
        const t = values[i];
        values[i] = values[j];
        values[j] = t;
        i++;
        j--;
      }
    }
    if (k <= j) hi = j;
    else if (k >= i) lo = i;
    else return values[k];
  }
  return values[k];
}
