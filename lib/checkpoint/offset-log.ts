/**
 * The write-ahead plan of each batch, `<checkpoint>/offsets/<N>`: written before batch N runs, it fixes
 * the batch's input, processing time and watermark so that a re-run after a crash is identical.
 */
import { BatchLog } from './batch-log.js';
import { checkFlatRecord, checkInteger, isRecord } from './fields.js';

/** The offset range one source reads in a batch; offsets are whatever JSON the source chose. */
export interface SourceOffsets {
  /** Where the batch starts (exclusive of what earlier batches read); null for a source's first batch. */
  start: unknown | null;
  /** Where the batch ends; the next batch starts here. */
  end: unknown;
  /** What the source reads, as progress reports name it (absent in entries written before it was recorded). */
  description?: string;
}

/** Configuration values recorded with a plan (e.g. the shuffle partition count used to run it). */
export type ConfValues = Record<string, string | number | boolean>;

/** The plan of one batch. */
export interface OffsetEntry {
  batchId: number;
  /** One range per source, in the query's source order. */
  sources: SourceOffsets[];
  /** The batch's processing time (`current_timestamp()`, processing-time timeouts). */
  batchTimestampMs: number;
  /** The event-time watermark the batch runs with. */
  batchWatermarkMs: number;
  conf: ConfValues;
  /**
   * The stateful operators by name and id, as progress reports name them (`mapGroupsWithState#3`), so the
   * checkpoint can be read without the query; absent in entries written before they were recorded.
   */
  operators?: string[];
}

function validateOffsetEntry(body: unknown, batchId: number): string | null {
  if (!isRecord(body)) return 'the entry is not a JSON object';
  const idProblem = checkInteger(body, 'batchId');
  if (idProblem !== null) return idProblem;
  if (body.batchId !== batchId)
    return `field "batchId" is ${String(body.batchId)}, but the file is for batch ${batchId}`;
  const sources = body.sources;
  if (!Array.isArray(sources)) return `field "sources" must be an array, found ${JSON.stringify(sources)}`;
  for (let i = 0; i < sources.length; i++) {
    const s: unknown = sources[i];
    if (!isRecord(s) || !('start' in s) || s.end === undefined) {
      return `field "sources[${i}]" must be an object with "start" and "end", found ${JSON.stringify(s)}`;
    }
    if (s.description !== undefined && typeof s.description !== 'string')
      return `field "sources[${i}].description" must be a string, found ${JSON.stringify(s.description)}`;
  }
  const operators = body.operators;
  if (operators !== undefined && !(Array.isArray(operators) && operators.every((o) => typeof o === 'string')))
    return `field "operators" must be an array of strings, found ${JSON.stringify(operators)}`;
  return (
    checkInteger(body, 'batchTimestampMs') ??
    checkInteger(body, 'batchWatermarkMs') ??
    checkFlatRecord(body, 'conf', ['string', 'number', 'boolean'])
  );
}

/** The offset log of a checkpoint: one validated {@link OffsetEntry} per planned batch. */
export class OffsetLog extends BatchLog<OffsetEntry> {
  constructor(dir: string) {
    super(dir, validateOffsetEntry);
  }
}
