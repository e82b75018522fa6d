/** Processing time as the driver sees it. Tests swap in a ManualClock to drive timeouts batch by batch. */
export interface Clock {
  now(): number;
  /** Resolves once `now()` has reached `time` (or the abort signal fires). */
  sleepUntil(time: number, signal?: AbortSignal): Promise<void>;
}

/** Wall-clock time. */
export class SystemClock implements Clock {
  now(): number {
    return Date.now();
  }

  sleepUntil(time: number, signal?: AbortSignal): Promise<void> {
    return sleep(Math.max(0, time - Date.now()), signal);
  }
}

/** Real-time sleep that ends early, without error, when `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done(): void {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}
