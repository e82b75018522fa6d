/**
 * The rows max_by/min_by keep of a group (its top-k form too) as one byte array, best first: per row its
 * numeric order and its packed row (packed-rows.ts). A group's kept rows are then one object in memory and
 * one byte string in state, instead of a pair and a row per kept row and a list around them, so the state
 * codec copies them in one piece, a restored group is one allocation, and the heap the garbage collector
 * traces holds a few objects per group whatever k is.
 *
 * Layout: a layout byte ({@link RANKED_ROWS_LAYOUT}), the row count as a uint32, then per row its order as
 * a float64, its packed row's length as a uint32 and the packed row. Orders are the numbers the partial
 * ranks by (event times as epoch ms), so rows rank exactly as the [order, row] pairs kept before did: by
 * order, then rows whose orders tie by their fields' values (unpacked only then), so the rows kept never
 * depend on arrival order.
 */
import { compareScalars } from './column-values.js';
import {
  CHUNK_BYTES,
  copyBytes,
  float64At,
  putFloat64,
  putUint32,
  type RowPacker,
  uint32At,
  unpackRow,
} from './packed-rows.js';

/** The first byte of a ranked-rows array: the layout after it, so that another can follow and old state still reads. */
export const RANKED_ROWS_LAYOUT = 1;
const HEADER_BYTES = 5;
/** Per row, before its packed bytes: the order (float64) and the length (uint32). */
const ENTRY_HEADER_BYTES = 12;

/** Where each row of a ranked-rows array is: its order and the bounds of its packed row. */
interface RankedRowsIndex {
  count: number;
  orders: Float64Array;
  starts: Int32Array;
  ends: Int32Array;
}

/** Whether a kept buffer is a ranked-rows array (rather than the [order, value] pairs of older state). */
export function isRankedRows(buffer: unknown): buffer is Uint8Array {
  return buffer instanceof Uint8Array;
}

/** The number of rows of a ranked-rows array. */
export function rankedRowCount(rows: Uint8Array): number {
  return uint32At(rows, 1);
}

/** Fills `index` from a ranked-rows array, growing it when the array has more rows than it has room for. */
function indexRankedRows(rows: Uint8Array, index: RankedRowsIndex): RankedRowsIndex {
  const n = rankedRowCount(rows);
  if (index.orders.length < n) {
    index.orders = new Float64Array(n);
    index.starts = new Int32Array(n);
    index.ends = new Int32Array(n);
  }
  let p = HEADER_BYTES;
  for (let r = 0; r < n; r++) {
    index.orders[r] = float64At(rows, p);
    const len = uint32At(rows, p + 8);
    index.starts[r] = p + ENTRY_HEADER_BYTES;
    index.ends[r] = p + ENTRY_HEADER_BYTES + len;
    p += ENTRY_HEADER_BYTES + len;
  }
  index.count = n;
  return index;
}

/** The packed rows of a ranked-rows array, best first (views of it). */
export function rankedRowValues(rows: Uint8Array): Uint8Array[] {
  const n = rankedRowCount(rows);
  const out = new Array<Uint8Array>(n);
  let p = HEADER_BYTES;
  for (let r = 0; r < n; r++) {
    const len = uint32At(rows, p + 8);
    out[r] = rows.subarray(p + ENTRY_HEADER_BYTES, p + ENTRY_HEADER_BYTES + len);
    p += ENTRY_HEADER_BYTES + len;
  }
  return out;
}

/** The best packed row of a ranked-rows array (a view of it), or null when it has none. */
export function bestRankedRow(rows: Uint8Array): Uint8Array | null {
  if (rankedRowCount(rows) === 0) return null;
  const start = HEADER_BYTES + ENTRY_HEADER_BYTES;
  return rows.subarray(start, start + uint32At(rows, HEADER_BYTES + 8));
}

/** The [order, packed row] pairs of a ranked-rows array, best first, as older state kept them. */
export function rankedRowPairs(rows: Uint8Array): [number, Uint8Array][] {
  const values = rankedRowValues(rows);
  let p = HEADER_BYTES;
  return values.map((v) => {
    const order = float64At(rows, p);
    p += ENTRY_HEADER_BYTES + v.length;
    return [order, v];
  });
}

/**
 * Writes ranked-rows arrays into shared chunks, each array a view of its chunk: one allocation per chunk
 * rather than one ArrayBuffer per group (see packed-rows.ts for why chunks stay small).
 */
export class RankedRowsWriter {
  private chunk = new Uint8Array(0);
  private pos = 0;
  private start = 0;

  /** Starts an array of `count` rows taking at most `rowBytes` bytes of packed rows in all. */
  begin(count: number, rowBytes: number): void {
    const size = HEADER_BYTES + count * ENTRY_HEADER_BYTES + rowBytes;
    if (this.pos + size > this.chunk.length) {
      this.chunk = new Uint8Array(Math.max(CHUNK_BYTES, size));
      this.pos = 0;
    }
    this.start = this.pos;
    this.chunk[this.pos] = RANKED_ROWS_LAYOUT;
    putUint32(this.chunk, this.pos + 1, count);
    this.pos += HEADER_BYTES;
  }

  /** Appends row i of a struct column, packed, with its order (room for it was counted in {@link begin}). */
  addPacked(order: number, packer: RowPacker, i: number): void {
    const at = this.pos + ENTRY_HEADER_BYTES;
    const end = packer.write(i, this.chunk, at);
    putFloat64(this.chunk, this.pos, order);
    putUint32(this.chunk, this.pos + 8, end - at);
    this.pos = end;
  }

  /** Appends a packed row, bytes [start, end) of `from`, with its order. */
  addRow(order: number, from: Uint8Array, start: number, end: number): void {
    const len = end - start;
    putFloat64(this.chunk, this.pos, order);
    putUint32(this.chunk, this.pos + 8, len);
    copyBytes(from, start, len, this.chunk, this.pos + ENTRY_HEADER_BYTES);
    this.pos += ENTRY_HEADER_BYTES + len;
  }

  /** The array begun last, now complete. */
  end(): Uint8Array {
    return this.chunk.subarray(this.start, this.pos);
  }
}

/** Writes `pairs` ([order, packed row], best first) as a ranked-rows array. */
export function rankedRowsOf(pairs: readonly (readonly [number, Uint8Array])[], writer: RankedRowsWriter): Uint8Array {
  let bytes = 0;
  for (const [, row] of pairs) bytes += row.length;
  writer.begin(pairs.length, bytes);
  for (const [order, row] of pairs) writer.addRow(order, row, 0, row.length);
  return writer.end();
}

/**
 * Merges two ranked-rows arrays into the `k` best rows of both, best first (`sign` 1 for max_by, -1 for
 * min_by); rows that tie in order and value keep `older`'s first. Returns `older` itself when no row of
 * `newer` makes it in, and `newer` when only its rows do and it has no more than k.
 */
export class RankedRowsMerger {
  private readonly a: RankedRowsIndex;
  private readonly b: RankedRowsIndex;
  /** Per merged row: 0 from older, 1 from newer, and its position there. */
  private readonly side: Uint8Array;
  private readonly at: Int32Array;

  constructor(
    private readonly k: number,
    private readonly sign: number,
    private readonly writer: RankedRowsWriter,
  ) {
    this.a = { count: 0, orders: new Float64Array(k), starts: new Int32Array(k), ends: new Int32Array(k) };
    this.b = { count: 0, orders: new Float64Array(k), starts: new Int32Array(k), ends: new Int32Array(k) };
    this.side = new Uint8Array(k);
    this.at = new Int32Array(k);
  }

  merge(older: Uint8Array, newer: Uint8Array): Uint8Array {
    const a = indexRankedRows(older, this.a);
    const b = indexRankedRows(newer, this.b);
    const { k, side, at } = this;
    let i = 0;
    let j = 0;
    let n = 0;
    let bytes = 0;
    while (n < k && (i < a.count || j < b.count)) {
      const fromNewer = i === a.count || (j < b.count && this.before(newer, b, j, older, a, i));
      side[n] = fromNewer ? 1 : 0;
      if (fromNewer) {
        at[n] = j;
        bytes += b.ends[j] - b.starts[j];
        j++;
      } else {
        at[n] = i;
        bytes += a.ends[i] - a.starts[i];
        i++;
      }
      n++;
    }
    if (j === 0) return older;
    if (i === 0 && j === b.count) return newer;
    const w = this.writer;
    w.begin(n, bytes);
    for (let r = 0; r < n; r++) {
      const s = at[r];
      if (side[r] === 1) w.addRow(b.orders[s], newer, b.starts[s], b.ends[s]);
      else w.addRow(a.orders[s], older, a.starts[s], a.ends[s]);
    }
    return w.end();
  }

  /** Whether row j of `x` ranks strictly before row i of `y`. */
  private before(
    x: Uint8Array,
    xi: RankedRowsIndex,
    j: number,
    y: Uint8Array,
    yi: RankedRowsIndex,
    i: number,
  ): boolean {
    const c = compareScalars(xi.orders[j], yi.orders[i]) * this.sign;
    if (c !== 0) return c > 0;
    const rowX = unpackRow(x.subarray(xi.starts[j], xi.ends[j]));
    const rowY = unpackRow(y.subarray(yi.starts[i], yi.ends[i]));
    return compareScalars(rowX, rowY) < 0;
  }
}
