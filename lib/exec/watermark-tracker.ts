import type { WatermarkNode } from '../plan/logical-plan.js';
import { END_OF_INPUT_WATERMARK_MS } from '../sources/source.js';
import type { EventTimeStats } from './batch-context.js';

/**
 * The query's event-time watermark (Spark's WatermarkTracker): per withWatermark node the largest event
 * time seen so far minus its delay, combined over nodes by the multiple-watermark policy. It is computed
 * after each batch for the next one, and never goes back.
 */
export class WatermarkTracker {
  private current = 0;
  private readonly maxEventTime = new Map<number, number>();
  private moved = false;

  constructor(
    private readonly watermarks: readonly WatermarkNode[],
    private readonly policy: 'min' | 'max',
  ) {}

  /** The watermark the next batch runs with (ms). */
  get watermarkMs(): number {
    return this.current;
  }

  /**
   * Whether the last batch moved the watermark past the one it ran with: a batch without new data is then
   * due, to close what the watermark passed.
   */
  get movedInLastBatch(): boolean {
    return this.moved;
  }

  /**
   * Resumes from the watermark the last commit recorded for the batch after it; `moved` when that batch
   * moved it past the one it ran with, so that the batch without new data it calls for still runs.
   */
  restore(watermarkMs: number, moved = false): void {
    this.current = watermarkMs;
    this.moved = moved;
  }

  /**
   * Folds a finished batch's event-time statistics (per withWatermark node id) in and returns the next
   * batch's watermark. When the input has ended nothing can arrive late any more, so the watermark jumps to
   * the end of time and the operators can finish what they hold.
   */
  update(batchWatermarkMs: number, stats: Map<number, EventTimeStats>, inputEnded: boolean): number {
    const next = inputEnded ? END_OF_INPUT_WATERMARK_MS : this.advance(stats);
    this.moved = next > batchWatermarkMs;
    this.current = next;
    return next;
  }

  private advance(stats: Map<number, EventTimeStats>): number {
    for (const [id, s] of stats) {
      if (s.count > 0) this.maxEventTime.set(id, Math.max(this.maxEventTime.get(id) ?? -Infinity, s.max));
    }
    const candidates: number[] = [];
    for (const w of this.watermarks) {
      const max = this.maxEventTime.get(w.id);
      if (max !== undefined) candidates.push(max - w.delayMs);
    }
    if (candidates.length === 0) return this.current;
    const combine = this.policy === 'max' ? Math.max : Math.min;
    return Math.max(this.current, combine(...candidates));
  }
}
