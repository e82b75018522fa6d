/**
 * A utf8 column as Arrow lays it out: value `i` is `data[offsets[i] .. offsets[i+1])`. Generators that
 * fill columns write bytes here directly, skipping JS strings (encoding strings is the cost of building
 * Arrow utf8).
 */
export interface Utf8Column {
  /** `length + 1` offsets into `data`, starting at 0. */
  offsets: Int32Array;
  data: Uint8Array;
}

/** Number of values in a {@link Utf8Column}. */
export function utf8Length(col: Utf8Column): number {
  return col.offsets.length - 1;
}

const latin1 = new TextDecoder('latin1');
const utf8 = new TextDecoder();

/** Value `i` of a column as a JS string. */
export function utf8At(col: Utf8Column, i: number): string {
  return utf8.decode(col.data.subarray(col.offsets[i], col.offsets[i + 1]));
}

/** Value `i` of a column known to hold ASCII only (faster than {@link utf8At}). */
export function asciiAt(col: Utf8Column, i: number): string {
  return latin1.decode(col.data.subarray(col.offsets[i], col.offsets[i + 1]));
}

/** All values of a column as JS strings. */
export function utf8Strings(col: Utf8Column): string[] {
  const n = utf8Length(col);
  const out = new Array<string>(n);
  for (let i = 0; i < n; i++) out[i] = utf8At(col, i);
  return out;
}

/** ASCII bytes of `s`. */
export function asciiBytes(s: string): Uint8Array {
  const b = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) b[i] = s.charCodeAt(i);
  return b;
}

/** Bytes that are copied into columns often, with a DataView for word-sized copies. */
export interface ByteString {
  bytes: Uint8Array;
  view: DataView;
}

/** A {@link ByteString} of an ASCII string or of bytes. */
export function byteString(s: string | Uint8Array): ByteString {
  const bytes = typeof s === 'string' ? asciiBytes(s) : s;
  return { bytes, view: new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength) };
}

/** Appends values to a growing utf8 column. Values are built byte by byte between `end()` calls. */
export class Utf8ColumnBuilder {
  private offsets: Int32Array;
  private bytes: Uint8Array;
  private view: DataView;
  private n = 0;
  /** Write position in the data buffer; the current value starts at `offsets[n]`. */
  pos = 0;

  constructor(values: number, bytesPerValue: number) {
    this.offsets = new Int32Array(values + 1);
    this.bytes = new Uint8Array(Math.max(16, Math.ceil(values * bytesPerValue)));
    this.view = new DataView(this.bytes.buffer);
  }

  /**
   * Starts an empty column in this builder's buffers, grown to `values` values of `bytesPerValue` bytes if
   * smaller: the columns {@link finish} returned before are overwritten from here on. Writing into buffers
   * already touched is many times cheaper than into freshly allocated ones (first touch of new pages).
   */
  restart(values: number, bytesPerValue: number): this {
    if (this.offsets.length < values + 1) this.offsets = new Int32Array(values + 1);
    this.reserveTotal(Math.ceil(values * bytesPerValue));
    this.n = 0;
    this.pos = 0;
    return this;
  }

  private reserveTotal(size: number): void {
    if (size <= this.bytes.length) return;
    const next = new Uint8Array(Math.max(this.bytes.length * 2, size));
    next.set(this.bytes.subarray(0, this.pos));
    this.bytes = next;
    this.view = new DataView(next.buffer);
  }

  /** Makes room for `extra` more bytes of the current value and returns the buffer to write into at `pos`. */
  reserve(extra: number): Uint8Array {
    if (this.pos + extra > this.bytes.length) this.reserveTotal(this.pos + extra);
    return this.bytes;
  }

  /** Appends a byte string to the current value. */
  put(s: ByteString): void {
    this.putRange(s, 0, s.bytes.length);
  }

  /**
   * Appends `s.bytes[start .. end)` to the current value. Copies 4 bytes at a time through DataViews:
   * for the short strings of generated rows that is several times faster than `Uint8Array.set`.
   */
  putRange(s: ByteString, start: number, end: number): void {
    const buf = this.reserve(end - start);
    const dst = this.view;
    const src = s.view;
    let p = this.pos;
    let i = start;
    for (; i + 4 <= end; i += 4, p += 4) dst.setInt32(p, src.getInt32(i, true), true);
    const bytes = s.bytes;
    for (; i < end; i++) buf[p++] = bytes[i];
    this.pos = p;
  }

  /** Appends one byte to the current value. */
  putByte(c: number): void {
    this.reserve(1)[this.pos++] = c;
  }

  /** Byte length of the current (unfinished) value. */
  currentLength(): number {
    return this.pos - this.offsets[this.n];
  }

  /** Finishes the current value. */
  end(): void {
    if (this.n + 1 >= this.offsets.length) {
      const next = new Int32Array(this.offsets.length * 2);
      next.set(this.offsets);
      this.offsets = next;
    }
    this.offsets[++this.n] = this.pos;
  }

  /** The column built so far (views, not copies, trimmed to size). */
  finish(): Utf8Column {
    return { offsets: this.offsets.subarray(0, this.n + 1), data: this.bytes.subarray(0, this.pos) };
  }
}
