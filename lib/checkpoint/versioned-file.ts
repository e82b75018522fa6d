/**
 * Checkpoint files with a format version: the first line is `v<N>`, the rest is the body (JSON for the
 * logs). Every read checks the version and the body, so a torn, hand-edited or foreign file is a clear
 * error naming the file instead of a query that silently starts over or replays the wrong data.
 */
import * as fsp from 'node:fs/promises';
import { SluiceError } from '../errors.js';
import {
  createFileAtomic,
  type FileContent,
  type PreparedFile,
  prepareFileAtomic,
  type StreamedContent,
  writeFileAtomic,
  writeFileSynced,
} from './atomic-file.js';

/** Checks a parsed body; returns what is wrong with it, or null when it is fine. */
export type Validator = (body: unknown) => string | null;

/** The format version this code writes and the newest it reads, unless a caller says otherwise. */
export const CURRENT_FORMAT_VERSION = 1;

/** Options of the versioned readers. */
export interface ReadVersionedOptions {
  /** The newest format version the caller understands; default {@link CURRENT_FORMAT_VERSION}. */
  maxVersion?: number;
}

const NEWLINE = 0x0a;

/** The error for a checkpoint file that cannot be trusted; `what` says what is wrong with it. */
export function corruptCheckpointFile(file: string, what: string, cause?: unknown): SluiceError {
  return new SluiceError(
    'CHECKPOINT_CORRUPT',
    `checkpoint file ${file} is corrupt: ${what}`,
    'restore the checkpoint directory from a backup, or delete it to start the query over ' +
      '(its progress and state are then lost)',
    { cause },
  );
}

/**
 * Writes `v<version>\n` followed by raw bytes, durably, under the file's final name (see
 * {@link writeFileSynced}): for binary checkpoint files whose bytes end with their own checksum (state files),
 * so that a write a crash interrupted is a corrupt file, not a shorter valid one. `opened`: see writeFileSynced.
 */
export async function writeVersionedRaw(
  file: string,
  data: Uint8Array | readonly Uint8Array[] | StreamedContent,
  version = CURRENT_FORMAT_VERSION,
  opened?: () => void,
): Promise<void> {
  const header = Buffer.from(`v${version}\n`);
  const body = data instanceof Uint8Array ? [data] : data;
  const content: FileContent = Array.isArray(body)
    ? [header, ...body]
    : {
        *chunks() {
          yield header;
          yield* (body as StreamedContent).chunks();
        },
      };
  await writeFileSynced(file, content, opened);
}

/**
 * Reads a file written by {@link writeVersionedRaw} and checks its version line.
 * Throws SluiceError CHECKPOINT_MISSING, CHECKPOINT_CORRUPT or CHECKPOINT_TOO_NEW.
 */
export async function readVersionedRaw(
  file: string,
  options: ReadVersionedOptions = {},
): Promise<{ version: number; data: Buffer }> {
  let bytes: Buffer;
  try {
    bytes = await fsp.readFile(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new SluiceError(
        'CHECKPOINT_MISSING',
        `checkpoint file ${file} does not exist`,
        'restore the checkpoint directory from a backup, or delete it to start the query over',
        { cause: err },
      );
    }
    throw err;
  }
  if (bytes.length === 0)
    throw corruptCheckpointFile(file, 'the file is empty (an interrupted write or a truncated copy)');
  const end = bytes.indexOf(NEWLINE);
  const line = bytes.subarray(0, end < 0 ? bytes.length : end).toString('utf8');
  const match = /^v([1-9][0-9]{0,8})$/.exec(line);
  if (end < 0 || !match) {
    const shown = line.length > 24 ? `${line.slice(0, 24)}...` : line;
    throw corruptCheckpointFile(
      file,
      `it does not start with a format version line like "v1" (found ${JSON.stringify(shown)})`,
    );
  }
  const version = Number(match[1]);
  const maxVersion = options.maxVersion ?? CURRENT_FORMAT_VERSION;
  if (version > maxVersion) {
    throw new SluiceError(
      'CHECKPOINT_TOO_NEW',
      `checkpoint file ${file} has format version v${version}, but this version of sluice reads up to v${maxVersion}`,
      'run the query with the newer sluice that wrote this checkpoint, or use a new checkpoint directory',
    );
  }
  return { version, data: bytes.subarray(end + 1) };
}

function versionedText(file: string, body: unknown, version: number): string {
  const json = JSON.stringify(body);
  if (json === undefined) throw new TypeError(`cannot write ${file}: its body is not JSON-serialisable`);
  return `v${version}\n${json}\n`;
}

/** Writes `body` as JSON after a version line, atomically. The file ends with a newline, its end marker. */
export async function writeVersioned(file: string, body: unknown, version = CURRENT_FORMAT_VERSION): Promise<void> {
  await writeFileAtomic(file, versionedText(file, body, version));
}

/** {@link writeVersioned} that creates the file only if it does not exist (see {@link createFileAtomic}); false when it did. */
export function createVersioned(file: string, body: unknown, version = CURRENT_FORMAT_VERSION): Promise<boolean> {
  return createFileAtomic(file, versionedText(file, body, version));
}

/** {@link createVersioned} in two steps: the synced content now, the file later (see {@link prepareFileAtomic}). */
export function prepareVersioned(file: string, body: unknown, version = CURRENT_FORMAT_VERSION): Promise<PreparedFile> {
  return prepareFileAtomic(file, versionedText(file, body, version));
}

/**
 * Reads a file written by {@link writeVersioned}: checks the version line, parses the JSON body and
 * runs `validate` on it. Any problem is a SluiceError naming the file (see {@link readVersionedRaw}).
 */
export async function readVersioned<T>(
  file: string,
  validate?: Validator,
  options: ReadVersionedOptions = {},
): Promise<T> {
  return (await readVersionedEntry<T>(file, validate, options)).body;
}

/** {@link readVersioned} that also returns the file's format version, for readers of several versions. */
export async function readVersionedEntry<T>(
  file: string,
  validate?: Validator,
  options: ReadVersionedOptions = {},
): Promise<{ version: number; body: T }> {
  const { version, data } = await readVersionedRaw(file, options);
  const text = data.toString('utf8');
  if (!text.endsWith('\n')) throw corruptCheckpointFile(file, 'it does not end with a newline, so it was cut short');
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch (err) {
    throw corruptCheckpointFile(file, `its body is not valid JSON (${(err as Error).message})`, err);
  }
  const problem = validate?.(body) ?? null;
  if (problem !== null) throw corruptCheckpointFile(file, problem);
  return { version, body: body as T };
}
