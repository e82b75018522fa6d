/**
 * Which process on this host is which, across the processes of one deployment: a pid with the process's start
 * time, so that a pid the kernel gave to another process since counts as gone.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';

/** A process as others on its host can check it. */
export interface ProcessIdentity {
  pid: number;
  host: string;
  /** Its start time as its host's kernel counts it, where known (Linux). */
  processStart?: string;
}

/** Process `pid`'s start time in clock ticks since boot (field 22 of /proc/PID/stat); undefined off Linux. */
function processStart(pid: number | 'self'): string | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces and parentheses: count fields after its closing one.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

/** This process. */
export function thisProcess(): ProcessIdentity {
  return { pid: process.pid, host: os.hostname(), processStart: processStart('self') };
}

/** Whether process `p`, which must be on this host, is alive (and its pid not reused by another). */
export function processAlive(p: ProcessIdentity): boolean {
  try {
    process.kill(p.pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  const start = p.processStart === undefined ? undefined : processStart(p.pid);
  return start === undefined || start === p.processStart;
}
