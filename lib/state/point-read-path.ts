/**
 * How the point reads of a thread's disk stores go: through LMDB's memory map, or with pread (LmdbFileReader).
 *
 * A read through the map costs about a microsecond and a half while its pages are mapped, and tens of microseconds
 * when it faults on a page the budget's remaps unmapped (on a virtual machine, where the kernel maps the cached
 * pages around it too); a pread costs a few microseconds either way. Which is cheaper depends on how often reads
 * through the map fault and on what a fault costs on the machine, which neither the database's size against the
 * mapped budget nor the process's fault count tells (keys read with locality keep hitting mapped pages; the
 * process faults on fresh memory it allocates too). So the reads are timed, in windows of a few thousand, and the
 * next window goes the way that was cheaper in the last window of each: the map while it costs little, pread once
 * the map costs more than pread did. Pread windows go back to the map after a stretch that doubles each time the map
 * is still found the dearer, so that trying it again costs little where it stays the worse path.
 */

/** Database point reads per window. */
const WINDOW = 4096;
/** Mean milliseconds per read through the map above which pread is tried before its cost is known. */
const MAP_COST_WORTH_TRYING = 0.003;
/** Pread windows before the map is tried again, at first and at most. */
const MIN_PREAD_WINDOWS = 16;
const MAX_PREAD_WINDOWS = 1024;

/** See the file's comment. */
export class PointReadPath {
  /** Whether reads go with pread now. */
  pread = false;
  private reads = 0;
  /** Milliseconds the window's reads took. */
  private spent = 0;
  /** Mean milliseconds per read of the last window through the map (-1: none yet) and with pread. */
  private mapCost = -1;
  private preadCost = -1;
  private preadWindowsLeft = 0;
  private preadWindows = MIN_PREAD_WINDOWS;

  /** Notes a point read that took `ms` milliseconds, and at the end of a window chooses the path of the next. */
  read(ms: number): void {
    this.spent += ms;
    if (++this.reads < WINDOW) return;
    const cost = this.spent / this.reads;
    this.reads = 0;
    this.spent = 0;
    if (this.pread) {
      this.preadCost = cost;
      if (cost > this.mapCost || --this.preadWindowsLeft <= 0) this.pread = false;
      return;
    }
    this.mapCost = cost;
    if (this.preadCost < 0 ? cost > MAP_COST_WORTH_TRYING : cost > this.preadCost) {
      this.pread = true;
      this.preadWindowsLeft = this.preadWindows;
      this.preadWindows = Math.min(MAX_PREAD_WINDOWS, 2 * this.preadWindows);
    } else this.preadWindows = MIN_PREAD_WINDOWS;
  }
}
