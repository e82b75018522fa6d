/**
 * A log of one versioned JSON file per batch, `<dir>/<batchId>`, like Spark's HDFSMetadataLog. The
 * offset and commit logs are instances; sources and sinks may keep their own (e.g. a file list).
 */
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { SluiceError } from '../errors.js';
import { canonicalJson } from './fields.js';
import { createVersioned, prepareVersioned, readVersioned, type Validator, writeVersioned } from './versioned-file.js';

const BATCH_FILE = /^(0|[1-9][0-9]*)$/;

/** Checks an entry read from or written to the file of `batchId`; returns the problem or null. */
export type EntryValidator = (body: unknown, batchId: number) => string | null;

/** Options of {@link BatchLog.add}. */
export interface AddOptions {
  /** Replace an existing entry with different content (default: refuse). */
  overwrite?: boolean;
}

/** An entry written ahead by {@link BatchLog.prepare}, waiting to be added. */
export interface PreparedEntry {
  /** Adds the entry as {@link BatchLog.add} would; true when the file was written, false when it held this entry. */
  add(): Promise<boolean>;
  /** Removes what was written ahead, when the entry is not to be added after all. */
  discard(): Promise<void>;
}

/** A numbered log of JSON entries, one atomic, versioned file per batch id. */
export class BatchLog<T> {
  /**
   * @param dir the directory holding the files (created on the first add)
   * @param validate checks each entry on read (a failure is CHECKPOINT_CORRUPT) and on add (a bug)
   */
  constructor(
    readonly dir: string,
    private readonly validate?: EntryValidator,
  ) {}

  /** The file that holds the entry of `batchId`. */
  pathOf(batchId: number): string {
    if (!Number.isSafeInteger(batchId) || batchId < 0) throw new RangeError(`invalid batch id ${batchId}`);
    return path.join(this.dir, String(batchId));
  }

  /**
   * Writes the entry of `batchId` atomically. Adding the same content again is a no-op (a replayed
   * batch); different content for an existing batch is refused unless `overwrite`, because it means
   * two writers share the directory or a replay is not deterministic. A new entry is created exclusively,
   * so a writer that found no entry and was then paused (a process that lost its checkpoint meanwhile)
   * cannot replace the entry another wrote in between: it gets the same refusal.
   * @returns true when the file was written, false when it already held this entry
   */
  async add(batchId: number, entry: T, options: AddOptions = {}): Promise<boolean> {
    const file = this.checked(batchId, entry);
    if ((await this.get(batchId)) === null && (await createVersioned(file, entry))) return true;
    return this.addExisting(batchId, entry, options);
  }

  /**
   * {@link add} in two steps, for an entry known before it may be written: the entry's bytes are written and
   * synced now under a temporary name, and the returned {@link PreparedEntry.add} creates the file from them,
   * with the same checks, leaving it a link and a directory sync to wait for.
   */
  async prepare(batchId: number, entry: T): Promise<PreparedEntry> {
    const prepared = await prepareVersioned(this.checked(batchId, entry), entry);
    return {
      add: async () => (await prepared.create()) || this.addExisting(batchId, entry, {}),
      discard: () => prepared.discard(),
    };
  }

  /** The file of `batchId`, once `entry` is found valid for it. */
  private checked(batchId: number, entry: T): string {
    const file = this.pathOf(batchId);
    const problem = this.validate?.(entry, batchId) ?? null;
    if (problem !== null) throw new Error(`refusing to write an invalid entry to ${file}: ${problem}`);
    return file;
  }

  /** {@link add} once the exclusive creation found a file there (or none, when it vanished meanwhile). */
  private async addExisting(batchId: number, entry: T, options: AddOptions): Promise<boolean> {
    const file = this.pathOf(batchId);
    const existing = await this.get(batchId);
    if (existing !== null) {
      if (canonicalJson(existing) === canonicalJson(entry)) return false;
      if (!options.overwrite) {
        throw new SluiceError(
          'CHECKPOINT_CONFLICT',
          `checkpoint file ${file} already holds a different entry for batch ${batchId}`,
          'another query may be writing to the same checkpoint directory: stop it, or give each query its own',
        );
      }
    }
    await writeVersioned(file, entry);
    return true;
  }

  /** The entry of `batchId`, or null when there is none. A corrupt file throws CHECKPOINT_CORRUPT. */
  async get(batchId: number): Promise<T | null> {
    const file = this.pathOf(batchId);
    const validate: Validator | undefined = this.validate && ((body) => this.validate!(body, batchId));
    try {
      return await readVersioned<T>(file, validate);
    } catch (err) {
      if (err instanceof SluiceError && err.code === 'CHECKPOINT_MISSING') return null;
      throw err;
    }
  }

  /** The ids that have an entry, ascending. Temporary files and foreign names are ignored. */
  async batchIds(): Promise<number[]> {
    let names: string[];
    try {
      names = await fsp.readdir(this.dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
    return names
      .filter((n) => BATCH_FILE.test(n))
      .map(Number)
      .sort((a, b) => a - b);
  }

  /** The entry with the highest batch id, or null for an empty log. It is never skipped when corrupt. */
  async latest(): Promise<{ batchId: number; entry: T } | null> {
    const ids = await this.batchIds();
    if (ids.length === 0) return null;
    const batchId = ids[ids.length - 1];
    const entry = await this.get(batchId);
    // The file was listed a moment ago: if it is gone now, someone else is purging this log.
    if (entry === null) throw new Error(`checkpoint file ${this.pathOf(batchId)} disappeared while reading it`);
    return { batchId, entry };
  }

  /** Deletes the entries of all batch ids below `batchId`; returns the deleted ids. */
  async purgeBefore(batchId: number): Promise<number[]> {
    const doomed = (await this.batchIds()).filter((id) => id < batchId);
    for (const id of doomed) await fsp.rm(this.pathOf(id), { force: true });
    return doomed;
  }
}
