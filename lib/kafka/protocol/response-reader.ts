/**
 * Reads a response body field by field, in the classic encoding or in the flexible one of KIP-482; the
 * counterpart of request-writer.ts. Tagged fields are skipped: none that sluice needs is tagged.
 */
import { readInt64, readUVarint } from './primitives.js';

/** A response body being read front to back. */
export class ResponseReader {
  /** The position of the next field. */
  pos = 0;

  /**
   * @param buf The response after its correlation id (what kafkajs' connection hands to `decode`).
   * @param flexible Whether the response's version is a flexible one: its header (v1) then ends with tagged fields.
   */
  constructor(
    readonly buf: Buffer,
    readonly flexible: boolean,
  ) {
    if (flexible) this.taggedFields();
  }

  int8(): number {
    return this.buf.readInt8(this.pos++);
  }

  int16(): number {
    this.pos += 2;
    return this.buf.readInt16BE(this.pos - 2);
  }

  int32(): number {
    this.pos += 4;
    return this.buf.readInt32BE(this.pos - 4);
  }

  int64(): number {
    this.pos += 8;
    return readInt64(this.buf, this.pos - 8);
  }

  /** An int64 as a decimal string (producer ids use all 64 bits). */
  int64String(): string {
    this.pos += 8;
    return this.buf.readBigInt64BE(this.pos - 8).toString();
  }

  bool(): boolean {
    return this.buf[this.pos++] !== 0;
  }

  /** A 16-byte UUID (a topic id), as a view into the response. */
  uuid(): Buffer {
    this.pos += 16;
    return this.buf.subarray(this.pos - 16, this.pos);
  }

  skip(bytes: number): void {
    this.pos += bytes;
  }

  /** A length written as unsigned varint + 1 (flexible) or int16/int32; -1 for null. */
  private length(classicBytes: 2 | 4): number {
    if (this.flexible) return readUVarint(this.buf, this) - 1;
    return classicBytes === 2 ? this.int16() : this.int32();
  }

  /** A (nullable) string. */
  string(): string | null {
    const len = this.length(2);
    if (len < 0) return null;
    this.pos += len;
    return this.buf.toString('utf8', this.pos - len, this.pos);
  }

  /** An array's length; -1 for a null array. */
  arrayLength(): number {
    return this.length(4);
  }

  /** Bytes with their length in front: their offset and length in the buffer; length -1 for null. */
  bytesAt(): { start: number; length: number } {
    const length = this.length(4);
    const start = this.pos;
    this.pos += Math.max(0, length);
    return { start, length };
  }

  /** Skips a set of tagged fields, where a flexible version has one. */
  taggedFields(): void {
    if (!this.flexible) return;
    const count = readUVarint(this.buf, this);
    for (let i = 0; i < count; i++) {
      readUVarint(this.buf, this); // tag
      this.pos += readUVarint(this.buf, this);
    }
  }
}
