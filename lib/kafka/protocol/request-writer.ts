/**
 * Writes a request body field by field, in the classic encoding or in the flexible one of KIP-482 (compact
 * strings, arrays and bytes with unsigned-varint lengths, tagged fields). Versioned encoders call the same
 * methods for both, so each request's layout is written once.
 */
import { sizeOfUVarint, writeUVarint } from './primitives.js';

/** A request body under construction; {@link RequestWriter.finish} gives the bytes. */
export class RequestWriter {
  private buf: Buffer;
  private pos = 0;

  /**
   * @param flexible Whether the request's version is a flexible one.
   * @param sizeHint Expected body size, so large bodies (Produce) are not copied while growing.
   */
  constructor(
    readonly flexible: boolean,
    sizeHint = 256,
  ) {
    this.buf = Buffer.allocUnsafe(sizeHint);
    // kafkajs writes request header v1; header v2 of flexible requests adds (empty) tagged fields after the
    // client id, which therefore lead the body.
    if (flexible) this.taggedFields();
  }

  private room(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const grown = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + n));
    this.buf.copy(grown, 0, 0, this.pos);
    this.buf = grown;
  }

  int8(v: number): this {
    this.room(1);
    this.pos = this.buf.writeInt8(v, this.pos);
    return this;
  }

  int16(v: number): this {
    this.room(2);
    this.pos = this.buf.writeInt16BE(v, this.pos);
    return this;
  }

  int32(v: number): this {
    this.room(4);
    this.pos = this.buf.writeInt32BE(v, this.pos);
    return this;
  }

  /** A safe integer as int64 (offsets, timestamps), written as two halves: no BigInt per field. */
  int64(v: number): this {
    this.room(8);
    const high = Math.floor(v / 4294967296);
    this.buf.writeInt32BE(high, this.pos);
    this.pos = this.buf.writeUInt32BE(v - high * 4294967296, this.pos + 4);
    return this;
  }

  bool(v: boolean): this {
    return this.int8(v ? 1 : 0);
  }

  /** A 16-byte UUID (a topic id). */
  uuid(id: Buffer): this {
    this.room(16);
    this.pos += id.copy(this.buf, this.pos, 0, 16);
    return this;
  }

  private uvarint(v: number): this {
    this.room(5);
    this.pos = writeUVarint(this.buf, this.pos, v);
    return this;
  }

  /** A (nullable) string: int16 length, or unsigned-varint length + 1 (0 for null) when flexible. */
  string(s: string | null): this {
    if (s === null) return this.flexible ? this.uvarint(0) : this.int16(-1);
    const len = Buffer.byteLength(s);
    if (this.flexible) this.uvarint(len + 1);
    else this.int16(len);
    this.room(len);
    this.pos += this.buf.write(s, this.pos, 'utf8');
    return this;
  }

  /** An array's length (null is -1): int32, or unsigned-varint length + 1 when flexible. */
  arrayLength(n: number | null): this {
    if (this.flexible) return this.uvarint(n === null ? 0 : n + 1);
    return this.int32(n ?? -1);
  }

  /** Bytes (a record set) with their length: int32, or unsigned-varint length + 1 when flexible. */
  bytes(b: Buffer): this {
    if (this.flexible) this.uvarint(b.length + 1);
    else this.int32(b.length);
    this.room(b.length);
    this.pos += b.copy(this.buf, this.pos);
    return this;
  }

  /** An empty set of tagged fields, where a flexible version has one; nothing otherwise. */
  taggedFields(): this {
    return this.flexible ? this.uvarint(0) : this;
  }

  /** The body written so far. */
  finish(): Buffer {
    return this.buf.subarray(0, this.pos);
  }
}

/** Bytes a record set of `n` bytes takes with its length in front. */
export function sizeOfBytes(n: number, flexible: boolean): number {
  return n + (flexible ? sizeOfUVarint(n + 1) : 4);
}
