/**
 * How the point reads of a thread's disk stores go: through LMDB's memory map, or with pread (LmdbFileReader).
 *
 * A read through the map costs about a microsecond and a half while its pages are mapped, and tens of microseconds
 * when it faults (on a virtual machine; the kernel maps the cached pages around it too); a pread costs a few
 * microseconds either way. Which wins depends on how often reads through the map fault, which the database's size
 * against the mapped budget does not tell: keys read in a pattern with locality (recent sessions, a skewed key
 * distribution) keep hitting the pages mapped. So the reads are counted in windows, and a window through the map
 * that faulted more than once per FAULTS_PER_READ_FOR_PREAD reads sends the next ones through pread. A window
 * through the map is tried again after a number of pread windows that doubles each time the map is still found
 * faulting, so that the tries cost little where the map stays the worse path.
 */

/** Database point reads per window. */
const WINDOW = 4096;
/** Page faults per read through the map above which pread is cheaper: about 1.5 + 35 f µs against 5 µs. */
const FAULTS_PER_READ_FOR_PREAD = 0.125;
/** Pread windows before the map is tried again, at first and at most. */
const MIN_PREAD_WINDOWS = 16;
const MAX_PREAD_WINDOWS = 1024;

/** See the file's comment. */
export class PointReadPath {
  /** Whether reads go with pread now. */
  pread = false;
  private reads = 0;
  /** Page faults of the process when the window began (-1: no window yet). */
  private faultsAt = -1;
  private preadWindowsLeft = 0;
  private preadWindows = MIN_PREAD_WINDOWS;

  /** @param faults the process's page faults so far */
  constructor(private readonly faults: () => number = () => process.resourceUsage().minorPageFault) {}

  /** Counts a database point read, and at the end of a window chooses the path of the next one. */
  counted(): void {
    if (++this.reads < WINDOW) return;
    this.reads = 0;
    const faults = this.faults();
    if (this.pread) {
      if (--this.preadWindowsLeft <= 0) this.pread = false;
    } else if (this.faultsAt >= 0) {
      if (faults - this.faultsAt > WINDOW * FAULTS_PER_READ_FOR_PREAD) {
        this.pread = true;
        this.preadWindowsLeft = this.preadWindows;
        this.preadWindows = Math.min(MAX_PREAD_WINDOWS, 2 * this.preadWindows);
      } else this.preadWindows = MIN_PREAD_WINDOWS;
    }
    this.faultsAt = faults;
  }
}
