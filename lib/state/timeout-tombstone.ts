/**
 * A range tombstone over the (timeout, key) order of a disk store's records: every record whose timeout and then
 * canonical key encoding sort at or before it is deleted, whether or not its bytes are still in the database.
 *
 * A closing batch removes the keys a due-key scan returned, which are exactly the live keys at or before the scan's
 * last one in that order. Their timeout index entries are neighbours, but their records are scattered over the
 * whole key order, and removing them one by one from a B-tree much larger than the batch rewrites nearly every leaf
 * page. Moving a tombstone past them instead leaves their records where they are, dead, for a later sweep to drop
 * in key order, many to a page: a RocksDB DeleteRange on the timeout order rather than the key order.
 */
import { compareBytes } from './byte-order.js';

/** A position in the (timeout, key encoding) order; `key` null stands after every key of `time`. */
export interface TimeoutPosition {
  time: number;
  key: Uint8Array | null;
}

/** No record is covered: timeouts are never negative (-1 is none). */
export const NOWHERE: TimeoutPosition = { time: -1, key: null };

/** Whether position (time, the key bytes `buf[start, end)`) is at or before `at`. */
export function atOrBefore(at: TimeoutPosition, time: number, buf: Uint8Array, start: number, end: number): boolean {
  if (time < 0 || time > at.time) return false;
  if (time < at.time || at.key === null) return true;
  return compareBytes(buf, start, end, at.key, 0, at.key.length) <= 0;
}

/** The later of two positions. */
export function later(a: TimeoutPosition, b: TimeoutPosition): TimeoutPosition {
  if (a.time !== b.time) return a.time > b.time ? a : b;
  if (a.key === null) return a;
  if (b.key === null) return b;
  return compareBytes(a.key, 0, a.key.length, b.key, 0, b.key.length) >= 0 ? a : b;
}

/** A position as the database's meta holds it. */
export function toMeta(at: TimeoutPosition): [number, number[] | null] {
  return [at.time, at.key === null ? null : Array.from(at.key)];
}

/** The position {@link toMeta} saved; NOWHERE for anything else (a database written before tombstones). */
export function fromMeta(saved: unknown): TimeoutPosition {
  if (!Array.isArray(saved) || typeof saved[0] !== 'number') return NOWHERE;
  const key = saved[1];
  return { time: saved[0], key: Array.isArray(key) ? Uint8Array.from(key as number[]) : null };
}
