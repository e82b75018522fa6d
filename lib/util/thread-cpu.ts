import { openSync, readSync } from 'node:fs';

/** This thread's scheduler statistics (Linux): the first figure is the nanoseconds it ran on a CPU. */
const SCHEDSTAT = '/proc/thread-self/schedstat';

let fd: number | null | undefined;
const buf = Buffer.alloc(64);

/**
 * CPU time the calling thread has used, in milliseconds: with worker threads, process.cpuUsage() adds up
 * every thread, while a lane's share of a batch is its own thread's time. Read from the kernel's per-thread
 * scheduler statistics (about 10 µs a call); where those are missing, the process's CPU time stands in.
 */
export function threadCpuMs(): number {
  if (fd === undefined) {
    try {
      fd = openSync(SCHEDSTAT, 'r');
    } catch {
      fd = null;
    }
  }
  if (fd === null) {
    const u = process.cpuUsage();
    return (u.user + u.system) / 1000;
  }
  const n = readSync(fd, buf, 0, buf.length, 0);
  const text = buf.toString('latin1', 0, n);
  return Number(text.slice(0, text.indexOf(' '))) / 1e6;
}
