/**
 * A query's checkpoint directory, laid out as docs/architecture.md describes:
 * ```
 * <checkpoint>/metadata                 query id, format version, fixed settings
 * <checkpoint>/offsets/<N>              the plan of batch N (write-ahead)
 * <checkpoint>/commits/<N>              batch N completed
 * <checkpoint>/state/<op>/<part>/...    state store files
 * <checkpoint>/sources/<i>/...          what source i needs to replay
 * <checkpoint>/sinks/...                what the sink needs to stay idempotent
 * ```
 */
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { pathError, SluiceError } from '../errors.js';
import { createDirectory } from '../util/create-directory.js';
import { removeStaleTempFiles } from './atomic-file.js';
import type { PreparedEntry } from './batch-log.js';
import { CheckpointClaim, type ClaimOptions } from './checkpoint-claim.js';
import { type CommitEntry, CommitLog } from './commit-log.js';
import { type CheckpointMetadata, type OpenMetadataOptions, openMetadata } from './metadata.js';
import { type ConfValues, type OffsetEntry, OffsetLog } from './offset-log.js';
import { pathSegment, stateDir } from './paths.js';

/** A checkpoint file written ahead, waiting to be put in place (see {@link Checkpoint.preparePlan}). */
export interface PreparedWrite {
  /** Puts the file in place; throws CHECKPOINT_IN_USE when another process has taken the checkpoint over. */
  write(): Promise<void>;
  /** Removes what was written ahead, when the file is not to be written after all. */
  discard(): Promise<void>;
}

/** What to run after a (re)start; see {@link Checkpoint.nextBatch}. */
export type NextBatch =
  | {
      /** Batch `batchId` was planned but not committed: run it again with exactly `offsets`. */
      rerun: true;
      batchId: number;
      offsets: OffsetEntry;
      /**
       * Batches before `batchId` whose commits are missing although a later batch was planned. A batch is
       * planned once the one before it is complete, whose commit is written meanwhile: after a crash at most
       * `batchId - 1` is missing; older ones only when their commits were deleted.
       */
      missingCommits: number[];
    }
  | {
      /** Batch `batchId` is new: plan it from where the previous batch ended. */
      rerun: false;
      batchId: number;
      /** The plan of batch `batchId - 1` (its `end` offsets are this batch's `start`), null for batch 0. */
      previousOffsets: OffsetEntry | null;
      previousCommit: CommitEntry | null;
    };

async function removeStaleTempFilesBelow(dir: string): Promise<void> {
  await removeStaleTempFiles(dir);
  for (const entry of await fsp.readdir(dir, { withFileTypes: true })) {
    if (entry.isDirectory()) await removeStaleTempFilesBelow(path.join(dir, entry.name));
  }
}

function inconsistent(dir: string, what: string): SluiceError {
  return new SluiceError(
    'CHECKPOINT_CORRUPT',
    `checkpoint ${dir} is inconsistent: ${what}`,
    'restore the checkpoint directory from a backup, or delete it to start the query over ' +
      '(its progress and state are then lost)',
  );
}

/** An open checkpoint directory. One process at a time may use it: see {@link CheckpointClaim}. */
export class Checkpoint {
  private constructor(
    readonly dir: string,
    readonly metadata: CheckpointMetadata,
    /** The plans of the batches. */
    readonly offsets: OffsetLog,
    /** The completed batches. */
    readonly commits: CommitLog,
    private readonly claim: CheckpointClaim,
  ) {}

  /**
   * Opens (creating on first use) the checkpoint in `dir`, removes temporary files a crash left
   * behind, and checks the fixed settings `conf` against those recorded at creation
   * (CHECKPOINT_CONF_CHANGED when one differs).
   */
  static async open(
    dir: string,
    conf: ConfValues,
    options: Pick<OpenMetadataOptions, 'now'> & { claim?: ClaimOptions } = {},
  ): Promise<Checkpoint> {
    try {
      await createDirectory(dir);
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      if (e.code !== 'ENOTDIR' || e.path !== path.resolve(dir))
        throw pathError(err, `the checkpoint directory ${dir}`, 'create');
      throw new SluiceError(
        'CHECKPOINT_LOCATION',
        `checkpoint location ${dir} is not a directory`,
        'give the checkpoint option a directory path (it is created if missing)',
        { cause: err },
      );
    }
    let claim: CheckpointClaim;
    try {
      claim = await CheckpointClaim.acquire(dir, options.claim);
    } catch (err) {
      throw pathError(err, `the checkpoint directory ${dir}`, 'use');
    }
    try {
      await removeStaleTempFilesBelow(dir);
      const offsets = new OffsetLog(path.join(dir, 'offsets'));
      const commits = new CommitLog(path.join(dir, 'commits'));
      const hasBatches = (await offsets.batchIds()).length > 0 || (await commits.batchIds()).length > 0;
      const metadata = await openMetadata(dir, conf, { now: options.now, create: !hasBatches });
      return new Checkpoint(dir, metadata, offsets, commits, claim);
    } catch (err) {
      await claim.release();
      throw pathError(err, `the checkpoint directory ${dir}`, 'use');
    }
  }

  /** Writes the commit of batch `batchId` (commits/N), once sure this process still owns the checkpoint. */
  async commitBatch(batchId: number, entry: CommitEntry): Promise<void> {
    await this.claim.verify();
    await this.commits.add(batchId, entry);
  }

  /**
   * Writes the plan of batch `batchId` (offsets/N) in two steps, for a plan known before it may be written: its
   * bytes are written and synced now, and {@link PreparedWrite.write} puts the file in place once sure this
   * process still owns the checkpoint, leaving one journal commit to wait for instead of two.
   */
  async preparePlan(batchId: number, entry: OffsetEntry): Promise<PreparedWrite> {
    return this.owned(await this.offsets.prepare(batchId, entry));
  }

  /** {@link commitBatch} in two steps, as {@link preparePlan}. */
  async prepareCommit(batchId: number, entry: CommitEntry): Promise<PreparedWrite> {
    return this.owned(await this.commits.prepare(batchId, entry));
  }

  private owned(prepared: PreparedEntry): PreparedWrite {
    return {
      write: async () => {
        try {
          await this.claim.verify();
        } catch (err) {
          await prepared.discard();
          throw err;
        }
        await prepared.add();
      },
      discard: () => prepared.discard(),
    };
  }

  /** Throws CHECKPOINT_IN_USE when another process has taken this checkpoint over since it was opened. */
  verifyOwner(): Promise<void> {
    return this.claim.verify();
  }

  /** Gives the checkpoint up, for the next process to claim. */
  close(): Promise<void> {
    return this.claim.release();
  }

  /** The query's id, the same on every restart from this checkpoint. */
  get queryId(): string {
    return this.metadata.id;
  }

  /** The directory of source `index` (its position in the query's sources). */
  sourceDir(index: number): string {
    return path.join(this.dir, 'sources', pathSegment('source index', index));
  }

  /** The directory of one partition of a stateful operator's state. */
  stateDir(operatorId: string | number, partition: number): string {
    return stateDir(this.dir, operatorId, partition);
  }

  /** The directory where the sink may keep what it needs to stay idempotent. */
  sinkDir(): string {
    return path.join(this.dir, 'sinks');
  }

  /**
   * Decides what to run after a start: the next new batch when the latest plan is committed, otherwise the
   * latest plan again (offsets/N without commits/N). As in Spark, that holds also when the newest commits
   * were deleted by hand to re-run batches: only the latest planned batch runs again, from its own logged
   * offsets (the batches before it completed, or it would not have been planned), and `missingCommits`
   * says which commits are gone. A commit without its plan is CHECKPOINT_CORRUPT, never a silent reset.
   */
  async nextBatch(): Promise<NextBatch> {
    const plan = await this.offsets.latest();
    const commit = await this.commits.latest();
    const committed = commit?.batchId ?? -1;
    if (plan === null) {
      if (commit !== null)
        throw inconsistent(this.dir, `commits/${committed} exists but the offsets directory is empty`);
      return { rerun: false, batchId: 0, previousOffsets: null, previousCommit: null };
    }
    const planned = plan.batchId;
    if (committed === planned) {
      return { rerun: false, batchId: planned + 1, previousOffsets: plan.entry, previousCommit: commit!.entry };
    }
    if (committed > planned) {
      throw inconsistent(this.dir, `commits/${committed} exists but the latest plan is offsets/${planned}`);
    }
    const oldestPlan = (await this.offsets.batchIds())[0];
    const missingCommits: number[] = [];
    for (let id = Math.max(committed + 1, oldestPlan); id < planned; id++) missingCommits.push(id);
    return { rerun: true, batchId: planned, offsets: plan.entry, missingCommits };
  }

  /**
   * Deletes the offsets and commits of old batches, keeping the last `retainBatches` committed ones
   * and any uncommitted plan. Returns the lowest batch id kept, so state stores and sources can drop
   * what only older batches need.
   */
  async purge(retainBatches: number): Promise<number> {
    if (!Number.isSafeInteger(retainBatches) || retainBatches < 1) {
      throw new RangeError(`retainBatches must be an integer of at least 1, got ${retainBatches}`);
    }
    const commit = await this.commits.latest();
    if (commit === null) return 0;
    const keepFrom = Math.max(0, commit.batchId + 1 - retainBatches);
    await this.offsets.purgeBefore(keepFrom);
    await this.commits.purgeBefore(keepFrom);
    return keepFrom;
  }
}
