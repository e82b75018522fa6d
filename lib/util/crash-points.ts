/**
 * Named points in the commit protocol where recovery tests kill the process (SIGKILL, no cleanup).
 * `SLUICE_CRASH_AT=<point>:<batchId>` arms one; nothing happens when it is unset.
 */
export type CrashPoint =
  | 'before-offsets'
  | 'after-offsets'
  | 'in-read'
  | 'in-state-file'
  | 'in-sink'
  | 'after-sink'
  | 'after-commit';

const armed = process.env.SLUICE_CRASH_AT;

/** Kills the process right here when the recovery test armed this point for this batch. */
export function crashPoint(point: CrashPoint, batchId: number): void {
  if (armed !== undefined && armed === `${point}:${batchId}`) process.kill(process.pid, 'SIGKILL');
}
