/**
 * Bytes appended to a temporary file through a small buffer and read back in chunks: a section of a state file
 * that must be written after one of unknown length (a snapshot's timeouts after its records), or whose length
 * goes before it, without holding the section in memory.
 */
import * as fs from 'node:fs';
import { guardedWriteSync } from '../util/file-write.js';
import { removeFileIfPresent } from '../util/remove-file.js';

/** Bytes buffered before a write, and read back per chunk. */
const CHUNK_BYTES = 1 << 20;

/** An append-only temporary file; see the file's comment. */
export class SpillFile {
  private fd = -1;
  private readonly buf = Buffer.allocUnsafe(CHUNK_BYTES);
  private pos = 0;
  private written = 0;

  /** `file` must not exist; it is created on the first byte that leaves the buffer. */
  constructor(private readonly file: string) {}

  /** Bytes appended so far. */
  get length(): number {
    return this.written + this.pos;
  }

  /** Appends `bytes[start, end)`. */
  write(bytes: Uint8Array, start = 0, end = bytes.length): void {
    // Records are short: byte by byte while they fit the buffer, as a view per record costs more than the copy.
    if (end - start <= CHUNK_BYTES - this.pos) {
      const buf = this.buf;
      let p = this.pos;
      for (let i = start; i < end; i++) buf[p++] = bytes[i];
      this.pos = p;
      return;
    }
    for (let at = start; at < end; ) {
      if (this.pos === CHUNK_BYTES) this.flush();
      const n = Math.min(end - at, CHUNK_BYTES - this.pos);
      this.buf.set(bytes.subarray(at, at + n), this.pos);
      this.pos += n;
      at += n;
    }
  }

  /** Appends a little-endian float64. */
  float64(v: number): void {
    if (this.pos + 8 > CHUNK_BYTES) this.flush();
    this.buf.writeDoubleLE(v, this.pos);
    this.pos += 8;
  }

  /** The bytes appended, in chunks that share one buffer: each is valid until the next is asked for. */
  *chunks(): Generator<Uint8Array> {
    if (this.fd < 0) {
      if (this.pos > 0) yield this.buf.subarray(0, this.pos);
      return;
    }
    this.flush();
    for (let at = 0; at < this.written; ) {
      const n = fs.readSync(this.fd, this.buf, 0, Math.min(CHUNK_BYTES, this.written - at), at);
      if (n === 0) throw new Error(`${this.file}: ${this.written - at} bytes missing`);
      at += n;
      yield this.buf.subarray(0, n);
    }
  }

  /** Closes and deletes the file. */
  remove(): void {
    if (this.fd >= 0) {
      fs.closeSync(this.fd);
      this.fd = -1;
      removeFileIfPresent(this.file);
    }
    this.pos = 0;
    this.written = 0;
  }

  private flush(): void {
    if (this.pos === 0) return;
    guardedWriteSync(this.file, () => {
      if (this.fd < 0) this.fd = fs.openSync(this.file, 'wx+');
      for (let at = 0; at < this.pos; ) at += fs.writeSync(this.fd, this.buf, at, this.pos - at, this.written + at);
    });
    this.written += this.pos;
    this.pos = 0;
  }
}
