import { isRecord } from '../checkpoint/fields.js';
import { SluiceError } from '../errors.js';
import type { SourceOffset } from './source.js';

/**
 * The count in an offset of the shape `{ [field]: n }` (rows, events, lines, files so far), which the
 * rate, nexmark, socket and file sources write. Anything else comes from the checkpoint of another source.
 */
export function counterOf(offset: SourceOffset, field: string, source: string): number {
  const n = isRecord(offset) ? offset[field] : undefined;
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0) {
    throw new SluiceError(
      'CHECKPOINT_CORRUPT',
      `the ${source} source got an offset it did not write: ${JSON.stringify(offset)}`,
      'the checkpoint belongs to a different source; use a new checkpoint directory',
    );
  }
  return n;
}

/**
 * Counter range [from, to) cut into at most `parts` contiguous ranges of near-equal size (empty ones left
 * out), in order: the read tasks of sources that generate rows by their number.
 */
export function splitRange(from: number, to: number, parts: number): { from: number; to: number }[] {
  const out: { from: number; to: number }[] = [];
  for (let p = 0; p < parts; p++) {
    const a = from + Math.floor(((to - from) * p) / parts);
    const b = from + Math.floor(((to - from) * (p + 1)) / parts);
    if (b > a) out.push({ from: a, to: b });
  }
  return out;
}
