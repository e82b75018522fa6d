/**
 * Paths inside a checkpoint directory that more than one layer needs: the state store, the engine
 * that opens stores, and the tools that read a checkpoint all find state files here, so the layout
 * `<checkpoint>/state/<operator>/<partition>` is spelled out once.
 */
import * as path from 'node:path';

const SAFE_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/;

/**
 * `value` as one path segment, refusing anything that could leave the checkpoint directory. Segments
 * come from the plan, not from users, so a bad one is a bug (RangeError).
 */
export function pathSegment(what: string, value: string | number): string {
  const ok = typeof value === 'number' ? Number.isSafeInteger(value) && value >= 0 : SAFE_NAME.test(value);
  if (!ok) throw new RangeError(`invalid ${what} ${JSON.stringify(value)} for a checkpoint path`);
  return String(value);
}

/** The directory holding the state of every stateful operator of a checkpoint. */
export function stateRootDir(checkpointDir: string): string {
  return path.join(checkpointDir, 'state');
}

/** The directory holding every state partition of operator `operatorId`. */
export function operatorStateDir(checkpointDir: string, operatorId: string | number): string {
  return path.join(stateRootDir(checkpointDir), pathSegment('operator id', operatorId));
}

/**
 * The directory of the state store of operator `operatorId`, state partition `partition`. A string
 * partition is a directory name as listed, kept as it is.
 */
export function stateDir(checkpointDir: string, operatorId: string | number, partition: string | number): string {
  return path.join(operatorStateDir(checkpointDir, operatorId), pathSegment('state partition', partition));
}
