/**
 * The side input of Nexmark q13 (nexmark/nexmark's `side_input` table, a CSV file of `key,value`): one row per
 * key 0..9999, the value a string, written once to a fixed path that the q13 app reads by default.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

/** Keys of the side input: q13 joins each bid on `auction % SIDE_INPUT_KEYS`. */
export const SIDE_INPUT_KEYS = 10_000;

/** Where the q13 app reads the side input unless given `--side-input`. */
export const SIDE_INPUT_FILE = path.join(os.tmpdir(), 'sluice-nexmark', `side_input-${SIDE_INPUT_KEYS}.csv`);

/** The value of a key in the side input. */
export function sideInputValue(key: number): string {
  return `side-${key}`;
}

/** Writes the side input to {@link SIDE_INPUT_FILE} unless it is there (atomically, so runs can share it). */
export function writeSideInput(): void {
  if (fs.existsSync(SIDE_INPUT_FILE)) return;
  fs.mkdirSync(path.dirname(SIDE_INPUT_FILE), { recursive: true });
  const lines = Array.from({ length: SIDE_INPUT_KEYS }, (_, k) => `${k},${sideInputValue(k)}`);
  const tmp = `${SIDE_INPUT_FILE}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, `${lines.join('\n')}\n`);
  fs.renameSync(tmp, SIDE_INPUT_FILE);
}
