import type { Clock } from '../util/clock.js';

/**
 * A clock that only moves when told to (Spark's ManualClock / StreamManualClock): processing-time
 * triggers and timeouts fire exactly when a test advances it.
 */
export class ManualClock implements Clock {
  private sleepers: { time: number; resolve: () => void }[] = [];

  constructor(private time = 0) {}

  now(): number {
    return this.time;
  }

  /** Moves time forward and wakes whatever waits for a time now reached. */
  advance(ms: number): void {
    this.time += ms;
    const due = this.sleepers.filter((s) => s.time <= this.time);
    this.sleepers = this.sleepers.filter((s) => s.time > this.time);
    for (const s of due) s.resolve();
  }

  sleepUntil(time: number, signal?: AbortSignal): Promise<void> {
    if (time <= this.time || signal?.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const entry = { time, resolve };
      this.sleepers.push(entry);
      signal?.addEventListener(
        'abort',
        () => {
          this.sleepers = this.sleepers.filter((s) => s !== entry);
          resolve();
        },
        { once: true },
      );
    });
  }
}
