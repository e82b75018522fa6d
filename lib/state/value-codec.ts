/**
 * Compact binary encoding of the JS values that stateful operators keep as state keys and values.
 *
 * One tag byte per value, then its payload. Small non-negative integers and short strings fold their
 * value or length into the tag, so `{sum: 3}` costs 4 bytes with a field-name dictionary and the key
 * 'k123456' costs 8. Encodings are self-delimiting: a reader always knows where a value ends, which lets
 * the state store keep values as bytes in one arena and copy them between files and memory unparsed.
 *
 * Two modes:
 * - canonical ({@link encode}, {@link encodeKey}): self-contained, field names inline. The same value
 *   always gives the same bytes, in every thread and every run, so keys are hashed and ordered by them.
 * - dictionary ({@link ValueWriter} with a {@link FieldDictionary}): field names become small ids
 *   from a per-store dictionary that is written into every file that uses it.
 *
 * Strings are stored as utf8, so a lone UTF-16 surrogate (not valid text) reads back as U+FFFD.
 *
 * Supported: null, undefined, booleans, numbers (incl. -0, NaN, ±Infinity), strings, bigint, Date,
 * Uint8Array (Buffer decodes as Uint8Array), arrays, plain objects, Map and Set. Anything else (class
 * instances, functions, symbols, other typed arrays, cycles) is a SluiceError: state must survive a
 * restart, so it may only hold what can be written down and read back unchanged.
 */
import { SluiceError } from '../errors.js';

const T_NULL = 0x00;
const T_UNDEFINED = 0x01;
const T_FALSE = 0x02;
const T_TRUE = 0x03;
/** int32 as zigzag varint. */
const T_INT = 0x04;
const T_FLOAT = 0x05;
/** string of 64 bytes or more: varint byte length, utf8. */
const T_STRING = 0x06;
/** varint (byteLength << 1 | negative), magnitude little-endian. */
const T_BIGINT = 0x07;
const T_DATE = 0x08;
const T_ARRAY = 0x09;
/** varint field count, then per field a name reference and a value. */
const T_OBJECT = 0x0a;
const T_BYTES = 0x0b;
const T_MAP = 0x0c;
const T_SET = 0x0d;
/** 0x40..0x7f: string of (tag - 0x40) utf8 bytes. Exported for readers with a fast path for such keys. */
export const T_SHORT_STRING = 0x40;
const SHORT_STRING_MAX = 63;
/** 0x80..0xff: the integer (tag - 0x80). Exported like {@link T_SHORT_STRING}. */
export const T_SMALL_INT = 0x80;
const SMALL_INT_MAX = 127;

const MAX_DEPTH = 256;

const textEncoder = new TextEncoder();

/** Node's Buffer slice decoders: ~30% faster than `toString(encoding, start, end)` for short strings. */
interface BufferSlices {
  latin1Slice(start: number, end: number): string;
  utf8Slice(start: number, end: number): string;
}

function bufferView(bytes: Uint8Array): Buffer & BufferSlices {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength) as Buffer & BufferSlices;
}

/**
 * Latin1 strings (one char per byte) of byte ranges, e.g. of key encodings that are compared or used
 * as Map keys. Keeps one Buffer view per underlying array, since a view costs more than a short slice.
 */
export class Latin1View {
  private of: Uint8Array | null = null;
  private view = bufferView(new Uint8Array(0));

  /** `buf[start, end)` as a latin1 string. */
  slice(buf: Uint8Array, start: number, end: number): string {
    if (this.of !== buf) {
      this.of = buf;
      this.view = bufferView(buf);
    }
    return this.view.latin1Slice(start, end);
  }
}

function unsupported(what: string, hint: string): SluiceError {
  return new SluiceError('STATE_VALUE_UNSUPPORTED', `cannot store ${what} in state`, hint);
}

function describe(value: object): string {
  const ctor = (value as { constructor?: { name?: string } }).constructor;
  return ctor?.name ? `a ${ctor.name}` : 'an object with a custom prototype';
}

/**
 * Field names seen by one state store, numbered in order of first use. Values written with it refer to
 * names by id; files carry the dictionary so they can be read back. Bounded: once full (or for long
 * names, which are likely data rather than a schema) names are written inline, so objects used as
 * maps with data-dependent keys do not grow it without limit.
 */
export class FieldDictionary {
  /** At most this many names get ids. */
  static readonly MAX_NAMES = 256;
  /** Longer names are always written inline. */
  static readonly MAX_NAME_LENGTH = 64;
  private readonly ids = new Map<string, number>();
  private readonly list: string[] = [];

  /** The names by id. */
  get names(): readonly string[] {
    return this.list;
  }

  /** The id of `name`, assigning the next one if there is room; -1 when the name must be written inline. */
  idOf(name: string): number {
    const id = this.ids.get(name);
    if (id !== undefined) return id;
    if (this.list.length >= FieldDictionary.MAX_NAMES || name.length > FieldDictionary.MAX_NAME_LENGTH) return -1;
    this.list.push(name);
    this.ids.set(name, this.list.length - 1);
    return this.list.length - 1;
  }

  /**
   * Makes this dictionary agree with `names` (a dictionary read from a file), if possible: true when
   * one is a prefix of the other, after appending the extra names here. False means ids differ and
   * values written with `names` must be re-encoded.
   */
  adopt(names: readonly string[]): boolean {
    const common = Math.min(names.length, this.list.length);
    for (let i = 0; i < common; i++) if (names[i] !== this.list[i]) return false;
    for (let i = common; i < names.length; i++) {
      this.list.push(names[i]);
      this.ids.set(names[i], i);
    }
    return true;
  }
}

/**
 * Appends encoded values to a growable byte buffer. Reuse one writer (call {@link reset}) rather than
 * allocating per value. `dictionary` null means canonical encoding with inline field names.
 */
export class ValueWriter {
  /** The buffer; valid bytes are `buf[0, pos)`. Replaced when it grows. */
  buf: Uint8Array;
  /** Write position = number of valid bytes. */
  pos = 0;
  private view: DataView;
  /** The buffer as a Node Buffer, made again when the buffer grows. */
  private nodeBuffer: Buffer | null = null;
  private readonly dictionary: FieldDictionary | null;
  private readonly keyMode: boolean;

  /**
   * @param dictionary field-name ids to use, or null for canonical inline names
   * @param keyMode normalise as a Map key does: -0 is written as 0 and every NaN the same way
   * @param growth factor by which the buffer grows when full (large long-lived buffers use less than 2)
   */
  constructor(
    capacity = 256,
    dictionary: FieldDictionary | null = null,
    keyMode = false,
    private readonly growth = 2,
  ) {
    this.buf = new Uint8Array(Math.max(16, capacity));
    this.view = new DataView(this.buf.buffer);
    this.dictionary = dictionary;
    this.keyMode = keyMode;
  }

  /** Forgets the content, keeping the buffer. */
  reset(): void {
    this.pos = 0;
  }

  /** The whole buffer as a Buffer over the same memory: the same object until the buffer grows. */
  asBuffer(): Buffer {
    const buf = this.buf;
    if (this.nodeBuffer?.buffer !== buf.buffer) this.nodeBuffer = bufferView(buf);
    return this.nodeBuffer;
  }

  /** A copy of the written bytes. */
  bytes(): Uint8Array {
    return this.buf.slice(0, this.pos);
  }

  /** Makes room for `n` more bytes. */
  ensure(n: number): void {
    const need = this.pos + n;
    if (need <= this.buf.length) return;
    let cap = Math.ceil(this.buf.length * this.growth);
    while (cap < need) cap = Math.ceil(cap * this.growth);
    if (cap > 0x7fffffff) {
      if (need > 0x7fffffff) throw new RangeError('state buffer would exceed 2 GiB');
      cap = 0x7fffffff;
    }
    const next = new Uint8Array(cap);
    next.set(this.buf.subarray(0, this.pos));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }

  /** Appends one byte. */
  byte(b: number): void {
    if (this.pos >= this.buf.length) this.ensure(1);
    this.buf[this.pos++] = b;
  }

  /** Appends raw bytes. */
  raw(bytes: Uint8Array, start = 0, end = bytes.length): void {
    const n = end - start;
    this.ensure(n);
    if (n <= 32) {
      const buf = this.buf;
      let p = this.pos;
      for (let i = start; i < end; i++) buf[p++] = bytes[i];
    } else {
      this.buf.set(bytes.subarray(start, end), this.pos);
    }
    this.pos += n;
  }

  /** Appends an unsigned integer below 2^32 as a varint. */
  varint32(v: number): void {
    this.ensure(5);
    const buf = this.buf;
    let p = this.pos;
    v >>>= 0;
    while (v > 0x7f) {
      buf[p++] = (v & 0x7f) | 0x80;
      v >>>= 7;
    }
    buf[p++] = v;
    this.pos = p;
  }

  /** Appends a non-negative safe integer (up to 2^53) as a varint. */
  varint(v: number): void {
    if (v < 0x100000000) {
      this.varint32(v);
      return;
    }
    this.ensure(8);
    while (v > 0x7f) {
      this.buf[this.pos++] = (v % 128) | 0x80;
      v = Math.floor(v / 128);
    }
    this.buf[this.pos++] = v;
  }

  /** Appends a float64, little-endian. */
  float64(v: number): void {
    this.ensure(8);
    this.view.setFloat64(this.pos, v, true);
    this.pos += 8;
  }

  /** Appends a little-endian uint32. */
  uint32(v: number): void {
    this.ensure(4);
    this.view.setUint32(this.pos, v, true);
    this.pos += 4;
  }

  /** Appends a varint byte length and the utf8 bytes of `s` (no tag). */
  lengthPrefixedString(s: string): void {
    const len = s.length;
    this.ensure(len + 5);
    const start = this.pos;
    this.varint32(len);
    const headerEnd = this.pos;
    const buf = this.buf;
    let i = 0;
    for (; i < len; i++) {
      const c = s.charCodeAt(i);
      if (c >= 0x80) break;
      buf[headerEnd + i] = c;
    }
    if (i === len) {
      this.pos = headerEnd + len;
      return;
    }
    this.pos = start;
    const n = Buffer.byteLength(s, 'utf8');
    this.varint32(n);
    this.ensure(n);
    textEncoder.encodeInto(s, this.buf.subarray(this.pos, this.pos + n));
    this.pos += n;
  }

  /** Appends the encoding of `value`. */
  write(value: unknown, depth = 0): void {
    switch (typeof value) {
      case 'string':
        this.writeString(value);
        return;
      case 'number':
        this.writeNumber(value);
        return;
      case 'boolean':
        this.byte(value ? T_TRUE : T_FALSE);
        return;
      case 'undefined':
        this.byte(T_UNDEFINED);
        return;
      case 'bigint':
        this.writeBigInt(value);
        return;
      case 'object':
        if (value === null) this.byte(T_NULL);
        else this.writeObject(value, depth);
        return;
      default:
        throw unsupported(
          `a ${typeof value}`,
          'state keys and values must be data: plain objects, arrays, strings, numbers, ' +
            'booleans, bigint, Date, Uint8Array, Map, Set, null',
        );
    }
  }

  private writeString(s: string): void {
    const len = s.length;
    if (len > SHORT_STRING_MAX) {
      this.byte(T_STRING);
      this.lengthPrefixedString(s);
      return;
    }
    this.ensure(len + 1);
    const buf = this.buf;
    const start = this.pos;
    let i = 0;
    for (; i < len; i++) {
      const c = s.charCodeAt(i);
      if (c >= 0x80) break;
      buf[start + 1 + i] = c;
    }
    if (i === len) {
      buf[start] = T_SHORT_STRING + len;
      this.pos = start + 1 + len;
      return;
    }
    const n = Buffer.byteLength(s, 'utf8');
    if (n > SHORT_STRING_MAX) {
      this.byte(T_STRING);
      this.varint32(n);
    } else {
      this.byte(T_SHORT_STRING + n);
    }
    this.ensure(n);
    textEncoder.encodeInto(s, this.buf.subarray(this.pos, this.pos + n));
    this.pos += n;
  }

  private writeNumber(v: number): void {
    if ((v | 0) === v) {
      if (v === 0 && 1 / v < 0 && !this.keyMode) {
        this.byte(T_FLOAT);
        this.float64(v);
      } else if (v >= 0 && v <= SMALL_INT_MAX) {
        this.byte(T_SMALL_INT + v);
      } else {
        this.byte(T_INT);
        this.varint32((v << 1) ^ (v >> 31));
      }
      return;
    }
    this.byte(T_FLOAT);
    this.float64(this.keyMode && Number.isNaN(v) ? NaN : v);
  }

  private writeBigInt(v: bigint): void {
    this.byte(T_BIGINT);
    const negative = v < 0n;
    let m = negative ? -v : v;
    const bytes: number[] = [];
    while (m > 0n) {
      bytes.push(Number(m & 0xffn));
      m >>= 8n;
    }
    this.varint32(bytes.length * 2 + (negative ? 1 : 0));
    this.ensure(bytes.length);
    for (const b of bytes) this.buf[this.pos++] = b;
  }

  private writeObject(value: object, depth: number): void {
    if (depth >= MAX_DEPTH) {
      throw unsupported(
        `a value nested more than ${MAX_DEPTH} levels deep`,
        'check the state for a cycle (an object that contains itself)',
      );
    }
    if (Array.isArray(value)) {
      const n = value.length;
      this.byte(T_ARRAY);
      this.varint32(n);
      for (let i = 0; i < n; i++) this.write(value[i], depth + 1);
      return;
    }
    const proto = Object.getPrototypeOf(value);
    if (proto === Object.prototype || proto === null) {
      const obj = value as Record<string, unknown>;
      const names = Object.keys(obj);
      this.byte(T_OBJECT);
      this.varint32(names.length);
      const dict = this.dictionary;
      for (const name of names) {
        const id = dict === null ? -1 : dict.idOf(name);
        if (id < 0) {
          this.byte(0);
          this.lengthPrefixedString(name);
        } else {
          this.varint32(id + 1);
        }
        this.write(obj[name], depth + 1);
      }
      return;
    }
    if (value instanceof Date) {
      this.byte(T_DATE);
      this.float64(value.getTime());
      return;
    }
    if (value instanceof Uint8Array) {
      this.byte(T_BYTES);
      this.varint32(value.length);
      this.raw(value);
      return;
    }
    if (value instanceof Map) {
      this.byte(T_MAP);
      this.varint32(value.size);
      for (const [k, v] of value) {
        this.write(k, depth + 1);
        this.write(v, depth + 1);
      }
      return;
    }
    if (value instanceof Set) {
      this.byte(T_SET);
      this.varint32(value.size);
      for (const v of value) this.write(v, depth + 1);
      return;
    }
    throw unsupported(
      describe(value),
      'convert it to a plain object, array, Map, Set, Date or Uint8Array first ' +
        '(class instances and Arrow rows cannot be restored after a restart; e.g. use row.toJSON())',
    );
  }
}

/**
 * Reads encoded values from a byte range. Every read checks bounds: a truncated or garbled input is
 * an error, never a silently wrong value.
 */
export class ValueReader {
  /** Next read position. */
  pos: number;
  /** End of the readable range (exclusive). */
  end: number;
  private buf: Uint8Array;
  // Views of `buf`, made on first use: a reader switched between buffers should not pay for them per switch.
  private nodeBufOrNull: (Buffer & BufferSlices) | null = null;
  private viewOrNull: DataView | null = null;
  private names: readonly string[];

  /** @param names the dictionary the values were written with (empty for canonical encodings) */
  constructor(buf: Uint8Array, names: readonly string[] = [], start = 0, end = buf.length) {
    this.buf = buf;
    this.names = names;
    this.pos = start;
    this.end = end;
  }

  /** Points the reader at another buffer (e.g. after the arena grew) without allocating a new reader. */
  setBuffer(buf: Uint8Array, start = 0, end = buf.length): void {
    if (buf !== this.buf) {
      this.buf = buf;
      this.nodeBufOrNull = null;
      this.viewOrNull = null;
    }
    this.pos = start;
    this.end = end;
  }

  /** Switches the field-name dictionary. */
  setNames(names: readonly string[]): void {
    this.names = names;
  }

  /** The underlying buffer. */
  get bytes(): Uint8Array {
    return this.buf;
  }

  private get view(): DataView {
    this.viewOrNull ??= new DataView(this.buf.buffer, this.buf.byteOffset, this.buf.byteLength);
    return this.viewOrNull;
  }

  private get nodeBuf(): Buffer & BufferSlices {
    this.nodeBufOrNull ??= bufferView(this.buf);
    return this.nodeBufOrNull;
  }

  private truncated(): Error {
    return new RangeError(`encoded value is truncated or corrupt at byte ${this.pos}`);
  }

  /** Reads one byte. */
  byte(): number {
    if (this.pos >= this.end) throw this.truncated();
    return this.buf[this.pos++];
  }

  /** Reads a varint below 2^32. */
  varint32(): number {
    const buf = this.buf;
    let p = this.pos;
    let b = p < this.end ? buf[p++] : -1;
    if (b < 0x80) {
      if (b < 0) throw this.truncated();
      this.pos = p;
      return b;
    }
    let v = b & 0x7f;
    let shift = 7;
    for (;;) {
      if (p >= this.end || shift > 28) throw this.truncated();
      b = buf[p++];
      v |= (b & 0x7f) << shift;
      if (b < 0x80) break;
      shift += 7;
    }
    this.pos = p;
    return v >>> 0;
  }

  /** Reads a varint up to 2^53. */
  varint(): number {
    let v = 0;
    let scale = 1;
    for (;;) {
      const b = this.byte();
      v += (b & 0x7f) * scale;
      if (b < 0x80) return v;
      scale *= 128;
      if (scale > 2 ** 56) throw this.truncated();
    }
  }

  /** Reads a little-endian float64. */
  float64(): number {
    if (this.pos + 8 > this.end) throw this.truncated();
    const v = this.view.getFloat64(this.pos, true);
    this.pos += 8;
    return v;
  }

  /** Reads a little-endian uint32. */
  uint32(): number {
    if (this.pos + 4 > this.end) throw this.truncated();
    const v = this.view.getUint32(this.pos, true);
    this.pos += 4;
    return v;
  }

  /** Reads `n` utf8 bytes as a string. */
  utf8(n: number): string {
    const start = this.pos;
    const stop = start + n;
    if (stop > this.end) throw this.truncated();
    this.pos = stop;
    const buf = this.buf;
    for (let i = start; i < stop; i++) {
      if (buf[i] >= 0x80) return this.nodeBuf.utf8Slice(start, stop);
    }
    return this.nodeBuf.latin1Slice(start, stop);
  }

  /** Reads a varint length and that many utf8 bytes. */
  lengthPrefixedString(): string {
    return this.utf8(this.varint32());
  }

  /** Reads one value. */
  read(): unknown {
    const tag = this.byte();
    if (tag >= T_SMALL_INT) return tag - T_SMALL_INT;
    if (tag >= T_SHORT_STRING) return this.utf8(tag - T_SHORT_STRING);
    switch (tag) {
      case T_NULL:
        return null;
      case T_UNDEFINED:
        return undefined;
      case T_FALSE:
        return false;
      case T_TRUE:
        return true;
      case T_INT: {
        const z = this.varint32();
        return (z >>> 1) ^ -(z & 1);
      }
      case T_FLOAT:
        return this.float64();
      case T_STRING:
        return this.lengthPrefixedString();
      case T_BIGINT:
        return this.readBigInt();
      case T_DATE:
        return new Date(this.float64());
      case T_ARRAY: {
        const n = this.varint32();
        if (n > this.end - this.pos) throw this.truncated();
        const out = new Array(n);
        for (let i = 0; i < n; i++) out[i] = this.read();
        return out;
      }
      case T_OBJECT: {
        const n = this.varint32();
        const out: Record<string, unknown> = {};
        for (let i = 0; i < n; i++) {
          const ref = this.varint32();
          let name: string;
          if (ref === 0) {
            name = this.lengthPrefixedString();
          } else {
            const known = this.names[ref - 1];
            if (known === undefined) throw new RangeError(`encoded value refers to unknown field name #${ref - 1}`);
            name = known;
          }
          const v = this.read();
          // Assigning '__proto__' would set the prototype instead of creating the field.
          if (name === '__proto__')
            Object.defineProperty(out, name, { value: v, enumerable: true, writable: true, configurable: true });
          else out[name] = v;
        }
        return out;
      }
      case T_BYTES: {
        const n = this.varint32();
        if (this.pos + n > this.end) throw this.truncated();
        const out = this.buf.slice(this.pos, this.pos + n);
        this.pos += n;
        return out;
      }
      case T_MAP: {
        const n = this.varint32();
        const out = new Map<unknown, unknown>();
        for (let i = 0; i < n; i++) {
          const k = this.read();
          out.set(k, this.read());
        }
        return out;
      }
      case T_SET: {
        const n = this.varint32();
        const out = new Set<unknown>();
        for (let i = 0; i < n; i++) out.add(this.read());
        return out;
      }
      default:
        this.pos--;
        throw new RangeError(`encoded value has unknown tag 0x${tag.toString(16)} at byte ${this.pos}`);
    }
  }

  private readBigInt(): bigint {
    const header = this.varint32();
    const n = header >>> 1;
    if (this.pos + n > this.end) throw this.truncated();
    let v = 0n;
    for (let i = n - 1; i >= 0; i--) v = (v << 8n) | BigInt(this.buf[this.pos + i]);
    this.pos += n;
    return header & 1 ? -v : v;
  }

  /** Moves past one value without building it; cheaper than {@link read} when only its extent matters. */
  skip(): void {
    const tag = this.byte();
    if (tag >= T_SMALL_INT) return;
    if (tag >= T_SHORT_STRING) {
      this.advance(tag - T_SHORT_STRING);
      return;
    }
    switch (tag) {
      case T_NULL:
      case T_UNDEFINED:
      case T_FALSE:
      case T_TRUE:
        return;
      case T_INT:
        this.varint32();
        return;
      case T_FLOAT:
      case T_DATE:
        this.advance(8);
        return;
      case T_STRING:
      case T_BYTES:
        this.advance(this.varint32());
        return;
      case T_BIGINT:
        this.advance(this.varint32() >>> 1);
        return;
      case T_ARRAY:
      case T_SET: {
        const n = this.varint32();
        for (let i = 0; i < n; i++) this.skip();
        return;
      }
      case T_MAP: {
        const n = this.varint32();
        for (let i = 0; i < n; i++) {
          this.skip();
          this.skip();
        }
        return;
      }
      case T_OBJECT: {
        const n = this.varint32();
        for (let i = 0; i < n; i++) {
          if (this.varint32() === 0) this.advance(this.varint32());
          this.skip();
        }
        return;
      }
      default:
        this.pos--;
        throw new RangeError(`encoded value has unknown tag 0x${tag.toString(16)} at byte ${this.pos}`);
    }
  }

  private advance(n: number): void {
    if (this.pos + n > this.end) throw this.truncated();
    this.pos += n;
  }
}

const canonicalWriter = new ValueWriter(1024);
const keyWriter = new ValueWriter(256, null, true);

/** Canonical encoding of `value` (field names inline): a fresh, self-contained byte array. */
export function encode(value: unknown): Uint8Array {
  canonicalWriter.reset();
  canonicalWriter.write(value);
  return canonicalWriter.bytes();
}

/**
 * Canonical encoding of a state key, normalised the way a JS Map compares keys: -0 encodes as 0 and
 * all NaNs alike. Equal keys give equal bytes in every thread and every run. Object fields, Map and
 * Set entries keep their order, so `{a, b}` and `{b, a}` are different keys (use arrays for composites).
 */
export function encodeKey(key: unknown): Uint8Array {
  keyWriter.reset();
  keyWriter.write(key);
  return keyWriter.bytes();
}

/**
 * {@link encodeKey} as a latin1 string (one char per byte): usable as a Map key, and comparing two
 * such strings with `<` orders them exactly as their bytes.
 */
export function encodeKeyString(key: unknown): string {
  keyWriter.reset();
  keyWriter.write(key);
  return bufferView(keyWriter.buf).latin1Slice(0, keyWriter.pos);
}

/** The key encoded by {@link encodeKeyString}. */
export function decodeKeyString(s: string): unknown {
  return decode(Buffer.from(s, 'latin1'));
}

/**
 * Decodes one value written by {@link encode} (or a {@link ValueWriter} with dictionary `names`).
 * Throws a RangeError when the bytes are truncated, have trailing bytes, or are not an encoding.
 */
export function decode(bytes: Uint8Array, names: readonly string[] = []): unknown {
  const reader = new ValueReader(bytes, names);
  const value = reader.read();
  if (reader.pos !== bytes.length) {
    throw new RangeError(`encoded value has ${bytes.length - reader.pos} unexpected trailing bytes`);
  }
  return value;
}

/** Byte-wise comparison of two byte arrays: negative, zero or positive. */
export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const d = a[i] - b[i];
    if (d !== 0) return d;
  }
  return a.length - b.length;
}
