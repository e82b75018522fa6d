/**
 * Atomic file replacement: readers see either the old content or the complete new content, never a
 * prefix. The data goes to a temporary name in the same directory (rename is only atomic within one
 * file system), is fsynced, renamed over the target, and the directory is fsynced so the rename
 * itself survives a power loss. Files whose content checks itself can skip the rename and its second
 * journal commit ({@link writeFileSynced}).
 */

import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { createDirectory, createDirectorySync } from '../util/create-directory.js';
import { guardedWrite, guardedWriteSync } from '../util/file-write.js';
import { removeFileIfPresent } from '../util/remove-file.js';

const TEMP_PREFIX = '.';
const TEMP_SUFFIX = '.tmp';

/** True for names made by {@link writeFileAtomic} for its temporary files; directory readers skip them. */
export function isTempFileName(name: string): boolean {
  return name.startsWith(TEMP_PREFIX) && name.endsWith(TEMP_SUFFIX);
}

/** A fresh temporary name beside `target`, which directory readers skip and a restart's clean-up removes. */
export function tempPathFor(target: string): string {
  const unique = `${process.pid}-${randomBytes(6).toString('hex')}`;
  return path.join(path.dirname(target), `${TEMP_PREFIX}${path.basename(target)}.${unique}${TEMP_SUFFIX}`);
}

// Some platforms (Windows, a few network file systems) cannot open or fsync a directory; the rename
// is still atomic there, only its durability is weaker, so those refusals are not errors.
function isUnsupportedDirSync(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException).code;
  return code === 'EISDIR' || code === 'EPERM' || code === 'EINVAL' || code === 'EACCES' || code === 'ENOTSUP';
}

/** fsync(2) of an open descriptor in libuv's thread pool: the call of a small write that waits for the disk. */
function fsyncFd(fd: number): Promise<void> {
  return new Promise((resolve, reject) => fs.fsync(fd, (err) => (err ? reject(err) : resolve())));
}

/** Creates `file` (which must not exist) in the thread pool: creating a file can take a few hundred microseconds. */
function createFd(file: string): Promise<number> {
  return new Promise((resolve, reject) => fs.open(file, 'wx', (err, fd) => (err ? reject(err) : resolve(fd))));
}

/** Makes a directory's entries (creations, renames) durable; a no-op where the platform cannot sync directories. */
export async function fsyncDir(dir: string): Promise<void> {
  let fd: number | undefined;
  try {
    fd = fs.openSync(dir, 'r');
    await fsyncFd(fd);
  } catch (err) {
    if (!isUnsupportedDirSync(err)) throw err;
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

function fsyncDirSync(dir: string): void {
  let fd: number | undefined;
  try {
    fd = fs.openSync(dir, 'r');
    fs.fsyncSync(fd);
  } catch (err) {
    if (!isUnsupportedDirSync(err)) throw err;
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

/**
 * What {@link writeFileAtomic} and {@link writeFileSynced} write: text, bytes, or parts of bytes written one
 * after the other, so that a header and a large body go out without first being copied into one buffer.
 */
export type FileContent = string | Uint8Array | readonly Uint8Array[] | StreamedContent;

/**
 * Content too large to hold in memory at once, made chunk by chunk: each chunk is written before the next is
 * asked for, so a chunk may reuse the buffer of the one before. `chunks` may be called again for a second
 * attempt at the write, and must then give the same bytes.
 */
export interface StreamedContent {
  chunks(): Iterable<Uint8Array>;
}

function isStreamed(data: FileContent): data is StreamedContent {
  return typeof data === 'object' && 'chunks' in data;
}

/**
 * Content up to this size is written with blocking write calls, which take microseconds for a small file; the
 * file's creation and its fsync go to the thread pool, through the callback API, and its close is blocking. A
 * batch's checkpoint writes made dozens of calls of fs/promises, each a round trip through the thread pool with
 * a FileHandle's bookkeeping (writeFile on a handle also stats it): about twice the time of these, by the clock
 * and in the event loop's CPU. Larger content is written in the thread pool too, so that the event loop is free
 * while its bytes are copied.
 */
const BLOCKING_WRITE_MAX_BYTES = 1 << 20;

function contentParts(data: FileContent): Iterable<Uint8Array> {
  if (typeof data === 'string') return [Buffer.from(data)];
  if (isStreamed(data)) return data.chunks();
  return Array.isArray(data) ? data : [data as Uint8Array];
}

/** write(2) of `part` from byte `at` on, in the thread pool; resolves to the bytes written. */
function writeFd(fd: number, part: Uint8Array, at: number): Promise<number> {
  return new Promise((resolve, reject) =>
    fs.write(fd, part, at, part.byteLength - at, null, (err, n) => (err ? reject(err) : resolve(n))),
  );
}

/**
 * Creates `file`, which must not exist, writes `data` and fsyncs it, with `alongside` (another sync) awaited
 * beside the file's; `opened` runs once the file exists, empty (a crash point's place). A failure to create
 * the file is thrown as it is; a later one removes the file first.
 */
async function writeNewFile(
  file: string,
  data: FileContent,
  opened?: () => void,
  alongside?: () => Promise<void>,
): Promise<void> {
  const blocking =
    !isStreamed(data) && [...contentParts(data)].reduce((n, p) => n + p.byteLength, 0) <= BLOCKING_WRITE_MAX_BYTES;
  const fd = await createFd(file);
  try {
    opened?.();
    for (const part of contentParts(data))
      for (let at = 0; at < part.byteLength; )
        at += blocking ? fs.writeSync(fd, part, at, part.byteLength - at) : await writeFd(fd, part, at);
    await Promise.all([fsyncFd(fd), alongside?.()]);
  } catch (err) {
    fs.closeSync(fd);
    removeFileIfPresent(file);
    throw err;
  }
  fs.closeSync(fd);
}

/**
 * Writes `data` to `file` atomically and durably, creating missing parent directories.
 * On failure the temporary file is removed and the previous content of `file` is untouched; a full disk
 * is the DISK_FULL SluiceError.
 */
export function writeFileAtomic(file: string, data: FileContent): Promise<void> {
  return guardedWrite(file, () => writeAtomic(file, data));
}

/**
 * Writes `data` to a new temporary file beside `file` (creating missing parent directories) and syncs it;
 * returns its path, for the caller to move into place. On failure nothing of it is left.
 */
async function writeTemp(file: string, data: FileContent): Promise<string> {
  await createDirectory(path.dirname(file));
  const temp = tempPathFor(file);
  await writeNewFile(temp, data);
  return temp;
}

async function writeAtomic(file: string, data: FileContent): Promise<void> {
  const temp = await writeTemp(file, data);
  try {
    fs.renameSync(temp, file);
  } catch (err) {
    removeFileIfPresent(temp);
    throw err;
  }
  await fsyncDir(path.dirname(file));
}

/**
 * Writes `data` to a new `file` under its final name and makes it durable with one journal commit instead of
 * the two of {@link writeFileAtomic}: the file and its directory are synced together, as nothing has to wait
 * for a rename. An interrupted write leaves a prefix under the final name, so this is only for files whose
 * content checks itself (a trailing checksum). A file that exists already (a batch run again, or a paused
 * process writing what its successor wrote) is replaced as {@link writeFileAtomic} does, so a complete file is
 * never emptied, not even for a moment. `opened` runs once a new file is created, empty, before its bytes are
 * written (a crash point's place).
 */
export function writeFileSynced(file: string, data: FileContent, opened?: () => void): Promise<void> {
  return guardedWrite(file, () => writeSynced(file, data, opened));
}

async function writeSynced(file: string, data: FileContent, opened?: () => void): Promise<void> {
  const dir = path.dirname(file);
  await createDirectory(dir);
  try {
    await writeNewFile(file, data, opened, () => fsyncDir(dir));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return writeAtomic(file, data);
    throw err;
  }
}

/**
 * Creates `file` holding `data`, atomically and durably, unless it exists: false then, and `file` is untouched.
 * The complete file is hard-linked into place (link fails on an existing name, on network file systems too),
 * so of several writers creating one file exactly one succeeds and no reader sees a prefix. Where the file
 * system has no hard links, the file is renamed into place, which replaces a file created meanwhile.
 */
export async function createFileAtomic(file: string, data: string | Uint8Array): Promise<boolean> {
  return (await prepareFileAtomic(file, data)).create();
}

/** A file's content written and synced under a temporary name beside it, not yet under its own. */
export interface PreparedFile {
  /** Creates the file from the prepared content as {@link createFileAtomic} does; false when it existed. */
  create(): Promise<boolean>;
  /** Removes the prepared content when the file is not to be created after all. */
  discard(): Promise<void>;
}

/**
 * The first half of {@link createFileAtomic}, for content known before the file may appear: its bytes and
 * their sync are done now, so that {@link PreparedFile.create} is left with the link and the directory's
 * sync, one journal commit instead of two. Whatever the caller does, the file appears whole or not at all.
 */
export async function prepareFileAtomic(file: string, data: string | Uint8Array): Promise<PreparedFile> {
  const temp = await guardedWrite(file, () => writeTemp(file, data));
  return {
    create: () =>
      guardedWrite(file, async () => {
        let created = true;
        try {
          fs.linkSync(temp, file);
        } catch (err) {
          const code = (err as NodeJS.ErrnoException).code;
          if (code === 'EEXIST') created = false;
          else if (code === 'EPERM' || code === 'ENOTSUP' || code === 'ENOSYS') fs.renameSync(temp, file);
          else throw err;
        } finally {
          removeFileIfPresent(temp);
        }
        if (created) await fsyncDir(path.dirname(file));
        return created;
      }),
    discard: async () => removeFileIfPresent(temp),
  };
}

/** Synchronous {@link writeFileAtomic}, for shutdown paths and callers that cannot await. */
export function writeFileAtomicSync(file: string, data: string | Uint8Array): void {
  guardedWriteSync(file, () => writeAtomicSync(file, data));
}

function writeAtomicSync(file: string, data: string | Uint8Array): void {
  const dir = path.dirname(file);
  createDirectorySync(dir);
  const temp = tempPathFor(file);
  try {
    const fd = fs.openSync(temp, 'wx');
    try {
      fs.writeFileSync(fd, data);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(temp, file);
  } catch (err) {
    removeFileIfPresent(temp);
    throw err;
  }
  fsyncDirSync(dir);
}

/**
 * Deletes temporary files that a crashed writer left in `dir` (not recursive) and returns their names.
 * Call it only while no other process writes into `dir`, e.g. when a query opens its checkpoint.
 * A missing directory has nothing to clean.
 */
export async function removeStaleTempFiles(dir: string): Promise<string[]> {
  let names: string[];
  try {
    names = await fsp.readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  const stale = names.filter(isTempFileName);
  for (const name of stale) removeFileIfPresent(path.join(dir, name));
  return stale;
}
