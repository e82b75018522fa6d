/**
 * Kafka's 64-bit and variable-length integers as plain numbers. Offsets and timestamps stay far below
 * 2^53, so safe integers replace the `Long` objects kafkajs allocates per value.
 */

/** A big-endian int64 at `pos`, as a number. */
export function readInt64(buf: Buffer, pos: number): number {
  return buf.readInt32BE(pos) * 4294967296 + buf.readUInt32BE(pos + 4);
}

/** Reads a zigzag varint (up to 64 bits, as a safe number) at `at.pos` and moves `at.pos` past it. */
export function readVarLong(buf: Buffer, at: { pos: number }): number {
  let z = 0;
  let mul = 1;
  let b: number;
  do {
    b = buf[at.pos++];
    z += (b & 0x7f) * mul;
    mul *= 128;
  } while (b & 0x80);
  return z % 2 === 0 ? z / 2 : -(z + 1) / 2;
}

/** Bytes of a zigzag varint of a safe integer. */
export function sizeOfVarLong(v: number): number {
  let z = v >= 0 ? v * 2 : -v * 2 - 1;
  let n = 1;
  while (z >= 128) {
    z = Math.floor(z / 128);
    n++;
  }
  return n;
}

/** Writes a zigzag varint of a safe integer at `pos`; returns the position after it. */
export function writeVarLong(buf: Buffer, pos: number, v: number): number {
  let z = v >= 0 ? v * 2 : -v * 2 - 1;
  while (z >= 128) {
    buf[pos++] = (z % 128) | 128;
    z = Math.floor(z / 128);
  }
  buf[pos++] = z;
  return pos;
}

/** Reads an unsigned varint (flexible versions' lengths and tags, up to 32 bits) at `at.pos` and moves past it. */
export function readUVarint(buf: Buffer, at: { pos: number }): number {
  let v = 0;
  let mul = 1;
  let b: number;
  do {
    b = buf[at.pos++];
    v += (b & 0x7f) * mul;
    mul *= 128;
  } while (b & 0x80);
  return v;
}

/** Bytes of an unsigned varint. */
export function sizeOfUVarint(v: number): number {
  let n = 1;
  while (v >= 128) {
    v = Math.floor(v / 128);
    n++;
  }
  return n;
}

/** Writes an unsigned varint at `pos`; returns the position after it. */
export function writeUVarint(buf: Buffer, pos: number, v: number): number {
  while (v >= 128) {
    buf[pos++] = (v % 128) | 128;
    v = Math.floor(v / 128);
  }
  buf[pos++] = v;
  return pos;
}
