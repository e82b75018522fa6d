/**
 * The completion record of each batch, `<checkpoint>/commits/<N>`: written after the sink committed
 * batch N. An offsets entry without a commit is a batch to run again on restart.
 */
import { BatchLog } from './batch-log.js';
import { checkInteger, isRecord } from './fields.js';

/** What a completed batch hands to the next one. */
export interface CommitEntry {
  batchId: number;
  /** The watermark the next batch runs with, computed from the event times this batch saw. */
  nextWatermarkMs: number;
  /** Wall-clock time of the commit, for progress and operators; never used to replay. */
  committedAtMs: number;
  /** The state version each stateful operator wrote, by operator id. */
  stateVersions?: Record<string, number>;
  /**
   * For a query with stateful operators, the processing time (ms) at which a processing-time timeout falls
   * due, or null when none is set: a restart runs a batch without new data only when one is due. Absent in
   * checkpoints written before it was recorded.
   */
  nextProcessingTimeoutMs?: number | null;
}

function validateCommitEntry(body: unknown, batchId: number): string | null {
  if (!isRecord(body)) return 'the entry is not a JSON object';
  const problem =
    checkInteger(body, 'batchId') ?? checkInteger(body, 'nextWatermarkMs') ?? checkInteger(body, 'committedAtMs');
  if (problem !== null) return problem;
  if (body.batchId !== batchId)
    return `field "batchId" is ${String(body.batchId)}, but the file is for batch ${batchId}`;
  if (body.nextProcessingTimeoutMs !== undefined && body.nextProcessingTimeoutMs !== null) {
    const p = checkInteger(body, 'nextProcessingTimeoutMs');
    if (p !== null) return p;
  }
  if (body.stateVersions === undefined) return null;
  if (!isRecord(body.stateVersions))
    return `field "stateVersions" must be an object, found ${JSON.stringify(body.stateVersions)}`;
  for (const op of Object.keys(body.stateVersions)) {
    const p = checkInteger(body.stateVersions, op);
    if (p !== null) return `in "stateVersions": ${p}`;
  }
  return null;
}

/** The commit log of a checkpoint: one validated {@link CommitEntry} per completed batch. */
export class CommitLog extends BatchLog<CommitEntry> {
  constructor(dir: string) {
    super(dir, validateCommitEntry);
  }
}
