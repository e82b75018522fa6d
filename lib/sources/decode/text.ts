/**
 * Text decoder: one row per line in a single utf8 column `value` (Spark's text source). From bytes the
 * column is built by copying each line's bytes next to each other, without decoding them to JS strings.
 */
import { Field, type RecordBatch, Schema, Utf8 } from 'apache-arrow';
import { batchOf } from '../../arrow/batch-ops.js';
import { mkData, utf8Data } from '../../arrow/columns.js';
import type { ReadResult } from '../source.js';

/** The schema of text input: `value: string`. */
export const TEXT_SCHEMA = new Schema([new Field('value', new Utf8(), true)]);

/**
 * One row per line. Lines end at `\n`; a `\r` before it is dropped; a final line without a newline counts;
 * empty lines are empty strings (as in Spark). Text has no malformed records.
 */
export function decodeText(input: readonly string[] | Uint8Array): ReadResult {
  return {
    batches: [input instanceof Uint8Array ? textBatchFromBytes(input) : textBatchFromLines(input)],
    numMalformed: 0,
  };
}

function textBatchFromLines(lines: readonly string[]): RecordBatch {
  return batchOf(TEXT_SCHEMA, [utf8Data(lines)], lines.length);
}

function textBatchFromBytes(bytes: Uint8Array): RecordBatch {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = buf.length;
  let count = 0;
  for (let i = buf.indexOf(10); i >= 0; i = buf.indexOf(10, i + 1)) count++;
  if (n > 0 && buf[n - 1] !== 10) count++;
  const offsets = new Int32Array(count + 1);
  const out = new Uint8Array(n);
  let p = 0;
  let start = 0;
  for (let row = 0; row < count; row++) {
    let nl = buf.indexOf(10, start);
    if (nl < 0) nl = n;
    let end = nl;
    if (end > start && buf[end - 1] === 13) end--;
    const len = end - start;
    if (len < 32) for (let k = start; k < end; k++) out[p++] = buf[k];
    else {
      out.set(buf.subarray(start, end), p);
      p += len;
    }
    offsets[row + 1] = p;
    start = nl + 1;
  }
  const data = mkData({
    type: new Utf8(),
    length: count,
    nullCount: 0,
    valueOffsets: offsets,
    data: out.subarray(0, p),
  });
  return batchOf(TEXT_SCHEMA, [data], count);
}
