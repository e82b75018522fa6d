/**
 * The buffered rows of one side of a stream-stream join in one state partition, kept as columns (Spark keeps
 * them as UnsafeRows under keyWithIndexToValue): typed arrays for numbers and timestamps, offsets and bytes for
 * strings, with an index from join key to row positions. Matches are gathered from the columns by position
 * instead of being rebuilt from JS values, and rows the watermark evicts are marked dead and squeezed out once
 * they outnumber the live ones.
 */
import { type Data, type DataType, type RecordBatch, type Schema, Type } from 'apache-arrow';
import { dataFromValues, gatherVarBytes, isValid, mkData, valuesOf } from '../../arrow/index.js';

/** Row status bits: the row has been joined (outer and semi joins), the row was evicted. */
export const MATCHED = 1;
export const EVICTED = 2;

type Fixed = Float64Array | Float32Array | Int32Array | Int16Array | Int8Array | BigInt64Array | Uint32Array;
type FixedCtor = new (n: number) => Fixed;

function grow<T extends Fixed | Uint8Array | Float64Array>(a: T, need: number): T {
  if (need <= a.length) return a;
  const next = new (a.constructor as new (n: number) => T)(Math.max(need, a.length * 2, 64));
  next.set(a as never);
  return next;
}

/** A validity bitmap for rows of `valid` picked by `ids` (negative: null), or undefined when none is null. */
function bitmapOf(valid: Uint8Array, ids: ArrayLike<number>): { bitmap?: Uint8Array; nullCount: number } {
  const n = ids.length;
  let nullCount = 0;
  for (let i = 0; i < n; i++) {
    const r = ids[i];
    if (r < 0 || valid[r] === 0) nullCount++;
  }
  if (nullCount === 0) return { nullCount };
  const bitmap = new Uint8Array((n + 7) >> 3);
  for (let i = 0; i < n; i++) {
    const r = ids[i];
    if (r >= 0 && valid[r] !== 0) bitmap[i >> 3] |= 1 << (i & 7);
  }
  return { bitmap, nullCount };
}

/** A validity bitmap for rows [first, first + n) of `valid`, or undefined when none is null. */
function rangeBitmap(valid: Uint8Array, first: number, n: number): { bitmap?: Uint8Array; nullCount: number } {
  let nullCount = 0;
  for (let i = first; i < first + n; i++) if (valid[i] === 0) nullCount++;
  if (nullCount === 0) return { nullCount };
  const bitmap = new Uint8Array((n + 7) >> 3);
  for (let i = 0; i < n; i++) if (valid[first + i] !== 0) bitmap[i >> 3] |= 1 << (i & 7);
  return { bitmap, nullCount };
}

/** One buffered column: appended from Arrow data, gathered by row position into Arrow data. */
interface BufferedColumn {
  append(data: Data, rows: ArrayLike<number>, at: number): void;
  gather(ids: ArrayLike<number>): Data;
  /** Rows [first, first + n) as Arrow data over the column's own buffers where it can (no copy). */
  view(first: number, n: number): Data;
  /** Moves rows `keep` (increasing) to positions 0.. in place. */
  keep(keep: Int32Array): void;
}

/** Numbers, longs and timestamps: one typed-array slot per row. */
class FixedColumn implements BufferedColumn {
  private values: Fixed;
  private valid = new Uint8Array(64);

  constructor(private readonly type: DataType) {
    const ctor = (type as unknown as { ArrayType: FixedCtor }).ArrayType;
    this.values = new ctor(64);
  }

  append(data: Data, rows: ArrayLike<number>, at: number): void {
    const n = rows.length;
    this.values = grow(this.values, at + n);
    this.valid = grow(this.valid, at + n);
    const src = data.values as Fixed;
    const out = this.values;
    const noNulls = data.nullCount === 0;
    for (let i = 0; i < n; i++) {
      const r = rows[i];
      out[at + i] = src[r];
      this.valid[at + i] = noNulls || isValid(data, r) ? 1 : 0;
    }
  }

  gather(ids: ArrayLike<number>): Data {
    const n = ids.length;
    const out = new (this.values.constructor as FixedCtor)(n);
    const src = this.values;
    for (let i = 0; i < n; i++) {
      const r = ids[i];
      if (r >= 0) out[i] = src[r];
    }
    const { bitmap, nullCount } = bitmapOf(this.valid, ids);
    return mkData({ type: this.type, length: n, nullCount, nullBitmap: bitmap, data: out });
  }

  view(first: number, n: number): Data {
    const { bitmap, nullCount } = rangeBitmap(this.valid, first, n);
    return mkData({
      type: this.type,
      length: n,
      nullCount,
      nullBitmap: bitmap,
      data: this.values.subarray(first, first + n),
    });
  }

  keep(keep: Int32Array): void {
    for (let i = 0; i < keep.length; i++) {
      this.values[i] = this.values[keep[i]];
      this.valid[i] = this.valid[keep[i]];
    }
  }
}

/** Strings and binaries: value offsets into one growing byte buffer. */
class VarColumn implements BufferedColumn {
  private offsets = new Int32Array(65);
  private bytes = new Uint8Array(1024);
  private valid = new Uint8Array(64);

  constructor(private readonly type: DataType) {}

  append(data: Data, rows: ArrayLike<number>, at: number): void {
    const n = rows.length;
    const vo = data.valueOffsets as Int32Array;
    const src = data.values as Uint8Array;
    let total = 0;
    for (let i = 0; i < n; i++) total += vo[rows[i] + 1] - vo[rows[i]];
    this.offsets = grow(this.offsets, at + n + 1);
    this.valid = grow(this.valid, at + n);
    let p = this.offsets[at];
    this.bytes = grow(this.bytes, p + total);
    const out = this.bytes;
    const noNulls = data.nullCount === 0;
    for (let i = 0; i < n; i++) {
      const r = rows[i];
      const s = vo[r];
      const e = vo[r + 1];
      if (e - s < 16) for (let k = s; k < e; k++) out[p++] = src[k];
      else {
        out.set(src.subarray(s, e), p);
        p += e - s;
      }
      this.offsets[at + i + 1] = p;
      this.valid[at + i] = noNulls || isValid(data, r) ? 1 : 0;
    }
  }

  gather(ids: ArrayLike<number>): Data {
    const n = ids.length;
    const { offsets, bytes } = gatherVarBytes(this.bytes, this.offsets, ids);
    const { bitmap, nullCount } = bitmapOf(this.valid, ids);
    return mkData({ type: this.type, length: n, nullCount, nullBitmap: bitmap, valueOffsets: offsets, data: bytes });
  }

  view(first: number, n: number): Data {
    const { bitmap, nullCount } = rangeBitmap(this.valid, first, n);
    // Offsets that do not start at 0 are valid Arrow; the IPC writer rebases them.
    return mkData({
      type: this.type,
      length: n,
      nullCount,
      nullBitmap: bitmap,
      valueOffsets: this.offsets.subarray(first, first + n + 1),
      data: this.bytes,
    });
  }

  keep(keep: Int32Array): void {
    const vo = this.offsets;
    const old = vo.slice();
    let p = 0;
    for (let i = 0; i < keep.length; i++) {
      const r = keep[i];
      const s = old[r];
      const e = old[r + 1];
      // Rows move only towards the front, so a row's bytes never overlap a later row's destination.
      this.bytes.copyWithin(p, s, e);
      vo[i] = p;
      p += e - s;
      vo[i + 1] = p;
      this.valid[i] = this.valid[r];
    }
    if (keep.length === 0) vo[0] = 0;
  }
}

/** Structs (a window-equality join's window): a buffered column per field and a validity byte per row. */
class StructColumn implements BufferedColumn {
  private readonly children: BufferedColumn[];
  private valid = new Uint8Array(64);

  constructor(private readonly type: DataType) {
    this.children = type.children.map((f) => columnFor(f.type));
  }

  append(data: Data, rows: ArrayLike<number>, at: number): void {
    const n = rows.length;
    this.valid = grow(this.valid, at + n);
    const noNulls = data.nullCount === 0;
    for (let i = 0; i < n; i++) this.valid[at + i] = noNulls || isValid(data, rows[i]) ? 1 : 0;
    this.children.forEach((c, k) => {
      c.append(data.children[k], rows, at);
    });
  }

  gather(ids: ArrayLike<number>): Data {
    const { bitmap, nullCount } = bitmapOf(this.valid, ids);
    const children = this.children.map((c) => c.gather(ids));
    return mkData({ type: this.type, length: ids.length, nullCount, nullBitmap: bitmap, children });
  }

  view(first: number, n: number): Data {
    const { bitmap, nullCount } = rangeBitmap(this.valid, first, n);
    const children = this.children.map((c) => c.view(first, n));
    return mkData({ type: this.type, length: n, nullCount, nullBitmap: bitmap, children });
  }

  keep(keep: Int32Array): void {
    for (const c of this.children) c.keep(keep);
    for (let i = 0; i < keep.length; i++) this.valid[i] = this.valid[keep[i]];
  }
}

/** Any other type (booleans, lists, maps): JS values, built back into Arrow when gathered. */
class ValueColumn implements BufferedColumn {
  private values: unknown[] = [];

  constructor(private readonly type: DataType) {}

  append(data: Data, rows: ArrayLike<number>, at: number): void {
    const vals = valuesOf(data);
    for (let i = 0; i < rows.length; i++) this.values[at + i] = vals[rows[i]];
  }

  gather(ids: ArrayLike<number>): Data {
    const out = new Array<unknown>(ids.length);
    for (let i = 0; i < ids.length; i++) out[i] = ids[i] >= 0 ? this.values[ids[i]] : null;
    return dataFromValues(this.type, out);
  }

  view(first: number, n: number): Data {
    return dataFromValues(this.type, this.values.slice(first, first + n));
  }

  keep(keep: Int32Array): void {
    for (let i = 0; i < keep.length; i++) this.values[i] = this.values[keep[i]];
    this.values.length = keep.length;
  }
}

function columnFor(type: DataType): BufferedColumn {
  switch (type.typeId) {
    case Type.Int:
    case Type.Float:
    case Type.Timestamp:
      return new FixedColumn(type);
    case Type.Utf8:
    case Type.Binary:
      return new VarColumn(type);
    case Type.Struct:
      return new StructColumn(type);
    default:
      return new ValueColumn(type);
  }
}

/** Where a buffered row came from: its chunk of the state and its position there. */
export interface RowOrigin {
  chunk: number;
  row: number;
}

/** One side's buffered rows (see the module comment). Row positions change only in {@link compact}. */
export class JoinSideBuffer {
  /** Rows held, dead ones included, and the live ones. */
  length = 0;
  live = 0;
  private readonly columns: BufferedColumn[];
  private keyIds: unknown[] = [];
  /** Per row: the watermark at which it can no longer match, its status bits, its chunk and place there. */
  deadline = new Float64Array(64);
  status = new Uint8Array(64);
  chunk = new Int32Array(64);
  chunkRow = new Int32Array(64);
  private readonly index = new Map<unknown, number[]>();
  /** No live row has a deadline below this: eviction skips the scan while the watermark is under it. */
  private minDeadline = Infinity;
  /**
   * Every row before this position is dead: rows arrive roughly in event time, so the watermark evicts a prefix
   * and eviction scans from here instead of over the dead rows again until they are squeezed out.
   */
  private firstLive = 0;

  constructor(readonly schema: Schema) {
    this.columns = schema.fields.map((f) => columnFor(f.type));
  }

  /** Positions of the live rows buffered under `keyId`, in arrival order. */
  rowsOf(keyId: unknown): readonly number[] | undefined {
    return this.index.get(keyId);
  }

  /**
   * Buffers rows `rows` of `batch` (this side's schema) with their key ids, deadlines and status, as rows
   * `chunkRows` of state chunk `chunk`.
   */
  append(
    batch: RecordBatch,
    rows: ArrayLike<number>,
    keyIds: ArrayLike<unknown>,
    deadlines: ArrayLike<number>,
    status: ArrayLike<number>,
    chunk: number,
    chunkRows: ArrayLike<number>,
  ): void {
    const n = rows.length;
    if (n === 0) return;
    const at = this.length;
    batch.data.children.forEach((d, c) => {
      this.columns[c].append(d, rows, at);
    });
    const need = at + n;
    this.deadline = grow(this.deadline, need);
    this.status = grow(this.status, need);
    this.chunk = grow(this.chunk, need);
    this.chunkRow = grow(this.chunkRow, need);
    for (let i = 0; i < n; i++) {
      const p = at + i;
      const id = keyIds[i];
      this.keyIds[p] = id;
      this.deadline[p] = deadlines[i];
      this.status[p] = status[i];
      this.chunk[p] = chunk;
      this.chunkRow[p] = chunkRows[i];
      if (deadlines[i] < this.minDeadline) this.minDeadline = deadlines[i];
      const list = this.index.get(id);
      if (list) list.push(p);
      else this.index.set(id, [p]);
    }
    this.length = need;
    this.live += n;
  }

  /** Column `c` of rows `ids` (a negative id gives a null) as Arrow data of the column's type. */
  gather(c: number, ids: ArrayLike<number>): Data {
    return this.columns[c].gather(ids);
  }

  /**
   * Column `c` of rows [first, first + n) over the buffer's own memory where the type allows: valid until the
   * buffer next changes (an append may reallocate, a compaction moves rows), so it is for writing out at once.
   */
  view(c: number, first: number, n: number): Data {
    return this.columns[c].view(first, n);
  }

  /**
   * Marks dead the live rows whose deadline the watermark reached and drops them from the key index; returns
   * their positions in arrival order (still readable until the next {@link compact}).
   */
  evict(watermarkMs: number): Int32Array {
    if (this.minDeadline > watermarkMs) return new Int32Array(0);
    const out: number[] = [];
    let min = Infinity;
    let firstLive = -1;
    for (let p = this.firstLive; p < this.length; p++) {
      if (this.status[p] & EVICTED) continue;
      const d = this.deadline[p];
      if (d <= watermarkMs) {
        this.status[p] |= EVICTED;
        out.push(p);
      } else {
        if (firstLive < 0) firstLive = p;
        if (d < min) min = d;
      }
    }
    this.minDeadline = min;
    this.firstLive = firstLive < 0 ? this.length : firstLive;
    this.live -= out.length;
    if (this.live === 0) this.index.clear();
    else {
      const touched = new Set<unknown>();
      for (let k = 0; k < out.length; k++) touched.add(this.keyIds[out[k]]);
      for (const id of touched) {
        const kept = (this.index.get(id) as number[]).filter((p) => (this.status[p] & EVICTED) === 0);
        if (kept.length > 0) this.index.set(id, kept);
        else this.index.delete(id);
      }
    }
    return Int32Array.from(out);
  }

  /** Squeezes out the dead rows once they outnumber the live ones, renumbering the rest in order. */
  compact(): void {
    const dead = this.length - this.live;
    if (dead < 1024 || dead < this.live) return;
    const keep = new Int32Array(this.live);
    let k = 0;
    for (let p = 0; p < this.length; p++) if ((this.status[p] & EVICTED) === 0) keep[k++] = p;
    for (const c of this.columns) c.keep(keep);
    this.index.clear();
    for (let i = 0; i < keep.length; i++) {
      const p = keep[i];
      const id = this.keyIds[p];
      this.keyIds[i] = id;
      this.deadline[i] = this.deadline[p];
      this.status[i] = this.status[p];
      this.chunk[i] = this.chunk[p];
      this.chunkRow[i] = this.chunkRow[p];
      const list = this.index.get(id);
      if (list) list.push(i);
      else this.index.set(id, [i]);
    }
    this.keyIds.length = keep.length;
    this.length = keep.length;
    this.firstLive = 0;
  }
}
