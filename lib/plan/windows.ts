/**
 * Event-time windows as grouping columns: tumbling and sliding windows (`window`), session windows
 * (`session_window`), and hash buckets (`bucket`). They are described here as plain specs; the aggregate
 * operator assigns rows to them.
 *
 * Conventions (the same as Spark's and Flink's, and what the tests check):
 * - a time window is [start, end): an event exactly at a window's end belongs to the next window;
 *   window starts are `startOffset + k·slide`;
 * - a session holds events at most `gap` apart: an event exactly `gap` after the previous one joins the
 *   session (the seed's "max 30 minutes between consecutive events", Flink's session windows); the
 *   session's window is [first event, last event + gap];
 * - a window is complete when the watermark reaches its end, and kept `allowedLateness` longer for late
 *   rows (on-time rows are always later than the watermark, so they never reach a completed window).
 */
import type { Expression } from './expression.js';

/** A plain grouping column. */
export interface KeyGrouping {
  kind: 'key';
  column: Expression;
}

/** Tumbling (slide = size) or sliding window over an event-time column. */
export interface TimeWindowGrouping {
  kind: 'window';
  time: Expression;
  sizeMs: number;
  slideMs: number;
  offsetMs: number;
  name: string;
}

/** Session window: a fixed gap, or a per-row gap column (milliseconds, or duration strings like '5 minutes'). */
export interface SessionWindowGrouping {
  kind: 'session';
  time: Expression;
  gapMs?: number;
  gap?: Expression;
  name: string;
}

/** `bucket(n, col)`: the murmur3 hash of the value modulo n (Iceberg's bucket transform, for partial sums). */
export interface BucketGrouping {
  kind: 'bucket';
  column: Expression;
  buckets: number;
  name: string;
}

export type Grouping = KeyGrouping | TimeWindowGrouping | SessionWindowGrouping | BucketGrouping;

/** The latest window start at or before `ts` (starts are offset + k·slide). */
export function lastWindowStart(ts: number, slideMs: number, offsetMs: number): number {
  const r = (ts - offsetMs) % slideMs;
  return ts - (r < 0 ? r + slideMs : r);
}

/** How many windows of a sliding window can contain one timestamp. */
export function windowsPerRow(w: TimeWindowGrouping): number {
  return Math.ceil(w.sizeMs / w.slideMs);
}
