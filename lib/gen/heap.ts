/**
 * A binary min-heap of values ordered by a numeric key, ties broken by insertion order, so the order in
 * which equal keys come out is stable (the generators' output must not depend on heap internals).
 */
export class KeyedHeap<T> {
  private keys: number[] = [];
  private seqs: number[] = [];
  private values: T[] = [];
  private nextSeq = 0;

  get size(): number {
    return this.keys.length;
  }

  /** Smallest key, or +Infinity when empty. */
  peekKey(): number {
    return this.keys.length === 0 ? Infinity : this.keys[0];
  }

  push(key: number, value: T): void {
    const keys = this.keys;
    const seqs = this.seqs;
    const values = this.values;
    const seq = this.nextSeq++;
    let i = keys.length;
    keys.push(key);
    seqs.push(seq);
    values.push(value);
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (keys[p] < key || (keys[p] === key && seqs[p] < seq)) break;
      keys[i] = keys[p];
      seqs[i] = seqs[p];
      values[i] = values[p];
      i = p;
    }
    keys[i] = key;
    seqs[i] = seq;
    values[i] = value;
  }

  /** Removes and returns the value with the smallest key (undefined when empty). */
  pop(): T | undefined {
    const keys = this.keys;
    const seqs = this.seqs;
    const values = this.values;
    const n = keys.length;
    if (n === 0) return undefined;
    const top = values[0];
    const key = keys[n - 1];
    const seq = seqs[n - 1];
    const value = values[n - 1];
    keys.pop();
    seqs.pop();
    values.pop();
    const m = n - 1;
    if (m > 0) {
      let i = 0;
      for (;;) {
        let c = 2 * i + 1;
        if (c >= m) break;
        if (c + 1 < m && (keys[c + 1] < keys[c] || (keys[c + 1] === keys[c] && seqs[c + 1] < seqs[c]))) c++;
        if (key < keys[c] || (key === keys[c] && seq < seqs[c])) break;
        keys[i] = keys[c];
        seqs[i] = seqs[c];
        values[i] = values[c];
        i = c;
      }
      keys[i] = key;
      seqs[i] = seq;
      values[i] = value;
    }
    return top;
  }
}
