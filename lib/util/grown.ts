/** Typed arrays that grow by copying into a larger one. */
type GrowableArray = Uint8Array | Int32Array | Float64Array;

/** A copy of `a` at the start of a new array of `size` elements (the rest zero): how a full typed array grows. */
export function grown<T extends GrowableArray>(a: T, size: number): T {
  const b = new (a.constructor as new (length: number) => T)(size);
  (b as GrowableArray).set(a);
  return b;
}
