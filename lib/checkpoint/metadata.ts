/**
 * `<checkpoint>/metadata`: the query's identity and the settings fixed for the life of a checkpoint.
 * Settings such as the number of state partitions decide where state lives; running an old checkpoint
 * with a different value would read the wrong state, so a change is refused with the setting named.
 */
import { randomUUID } from 'node:crypto';
import * as path from 'node:path';
import { SluiceError } from '../errors.js';
import { checkFlatRecord, checkInteger, isRecord } from './fields.js';
import type { ConfValues } from './offset-log.js';
import { CURRENT_FORMAT_VERSION, readVersionedEntry, writeVersioned } from './versioned-file.js';

/** The contents of the metadata file. */
export interface CheckpointMetadata {
  /** The query's id: made once when the checkpoint is created, the same on every restart. */
  id: string;
  /** The checkpoint format version (the file's version line). */
  formatVersion: number;
  createdAtMs: number;
  /** Settings that must not change between runs, e.g. `numStatePartitions`, `source.0`. */
  conf: ConfValues;
}

/** The metadata file of checkpoint directory `dir`. */
export function metadataPath(dir: string): string {
  return path.join(dir, 'metadata');
}

function validateMetadata(body: unknown): string | null {
  if (!isRecord(body)) return 'the metadata is not a JSON object';
  if (typeof body.id !== 'string' || body.id === '')
    return `field "id" must be a non-empty string, found ${JSON.stringify(body.id)}`;
  return checkInteger(body, 'createdAtMs') ?? checkFlatRecord(body, 'conf', ['string', 'number', 'boolean']);
}

function show(v: string | number | boolean | undefined): string {
  return v === undefined ? '(not set)' : JSON.stringify(v);
}

/** Options of {@link openMetadata}. */
export interface OpenMetadataOptions {
  /**
   * Create the file when it is missing (default true). The checkpoint passes false when batches were
   * already logged: their metadata is lost, and a fresh one would skip the settings check.
   */
  create?: boolean;
  /** The clock for `createdAtMs`. */
  now?: () => number;
}

/**
 * Opens the metadata of checkpoint directory `dir`: creates it with a new query id on the first start;
 * on later starts checks that `conf` equals the recorded settings and throws CHECKPOINT_CONF_CHANGED
 * naming each changed setting otherwise.
 */
export async function openMetadata(
  dir: string,
  conf: ConfValues,
  options: OpenMetadataOptions = {},
): Promise<CheckpointMetadata> {
  const file = metadataPath(dir);
  let stored: { version: number; body: Omit<CheckpointMetadata, 'formatVersion'> };
  try {
    stored = await readVersionedEntry(file, validateMetadata);
  } catch (err) {
    if (!(err instanceof SluiceError && err.code === 'CHECKPOINT_MISSING')) throw err;
    if (options.create === false) {
      throw new SluiceError(
        'CHECKPOINT_CORRUPT',
        `checkpoint ${dir} has logged batches but its metadata file ${file} is missing`,
        'restore the checkpoint directory from a backup, or delete it to start the query over',
        { cause: err },
      );
    }
    const created = { id: randomUUID(), createdAtMs: (options.now ?? Date.now)(), conf: { ...conf } };
    await writeVersioned(file, created, CURRENT_FORMAT_VERSION);
    return { ...created, formatVersion: CURRENT_FORMAT_VERSION };
  }
  const { version, body } = stored;
  const keys = [...new Set([...Object.keys(body.conf), ...Object.keys(conf)])].sort();
  const changes = keys
    .filter((k) => body.conf[k] !== conf[k])
    .map((k) => `${k} was ${show(body.conf[k])} and is now ${show(conf[k])}`);
  if (changes.length > 0) {
    throw new SluiceError(
      'CHECKPOINT_CONF_CHANGED',
      `checkpoint ${dir} was created with different settings: ${changes.join('; ')}`,
      'these settings are fixed for the life of a checkpoint: run with the old values, ' +
        'or use a new checkpoint directory to start the query over',
    );
  }
  return { id: body.id, createdAtMs: body.createdAtMs, conf: body.conf, formatVersion: version };
}
