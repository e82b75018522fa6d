import { encodeKeyString } from '../../state/value-codec.js';

/**
 * A map from grouping keys to values that treats equal keys as one: strings and numbers by value (as a
 * JS Map does), every other key (arrays for composite keys, bigints, booleans, null, Dates) by its
 * canonical state encoding, so `['a', 1]` from two rows is one group. Iterates in insertion order.
 */
export class KeyIndex<T> {
  private readonly plain = new Map<string | number, T>();
  private readonly encoded = new Map<string, T>();
  private readonly order: T[] = [];
  /** How to find the key of a value, for an index built from values whose maps are not filled yet. */
  private keyOfValue: ((value: T) => unknown) | null = null;

  private static isPlain(key: unknown): key is string | number {
    return typeof key === 'string' || typeof key === 'number';
  }

  /**
   * An index of `values` (distinct keys, in this order) whose lookup maps are only built on the first
   * lookup: a caller that just iterates the values pays nothing for them.
   */
  static of<T>(values: T[], keyOf: (value: T) => unknown): KeyIndex<T> {
    const index = new KeyIndex<T>();
    for (const v of values) index.order.push(v);
    index.keyOfValue = keyOf;
    return index;
  }

  private fillMaps(): void {
    const keyOf = this.keyOfValue!;
    this.keyOfValue = null;
    for (const v of this.order) {
      const key = keyOf(v);
      if (KeyIndex.isPlain(key)) this.plain.set(key, v);
      else this.encoded.set(encodeKeyString(key), v);
    }
  }

  get(key: unknown): T | undefined {
    if (this.keyOfValue) this.fillMaps();
    return KeyIndex.isPlain(key) ? this.plain.get(key) : this.encoded.get(encodeKeyString(key));
  }

  /** The value of `key`, created by `make` (and remembered in insertion order) when absent. */
  getOrCreate(key: unknown, make: () => T): T {
    if (this.keyOfValue) this.fillMaps();
    const plain = KeyIndex.isPlain(key);
    const mk = plain ? key : encodeKeyString(key);
    const map = (plain ? this.plain : this.encoded) as Map<string | number, T>;
    let v = map.get(mk);
    if (v === undefined) {
      v = make();
      map.set(mk, v);
      this.order.push(v);
    }
    return v;
  }

  has(key: unknown): boolean {
    return this.get(key) !== undefined;
  }

  get size(): number {
    return this.order.length;
  }

  /** Values in the order their keys were first added. */
  values(): readonly T[] {
    return this.order;
  }
}
