/**
 * Wakes a query waiting between batches for a source's next data ({@link StreamSource.waitForData}): the
 * source notifies it as rows arrive.
 */
export class DataSignal {
  private waiters: (() => void)[] = [];

  /** Resolves at the next {@link notify}, or when `signal` aborts. */
  wait(signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      if (signal.aborted) return resolve();
      const done = (): void => {
        signal.removeEventListener('abort', done);
        this.waiters = this.waiters.filter((w) => w !== done);
        resolve();
      };
      this.waiters.push(done);
      signal.addEventListener('abort', done, { once: true });
    });
  }

  /** Wakes every waiter. */
  notify(): void {
    for (const w of [...this.waiters]) w();
  }
}
