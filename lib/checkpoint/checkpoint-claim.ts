/**
 * `<checkpoint>/owner`: the claim of the one process that runs a checkpoint's query. Two processes on one
 * checkpoint would plan, write and commit the same batches over each other, so a start claims the
 * directory first and is refused while another process holds it.
 *
 * The claim is a file, not a lock (advisory locks are not reliable on network file systems): it is created
 * with O_EXCL and holds the owner's pid, host, start time and a random nonce, and the owner rewrites it
 * every {@link ClaimOptions.heartbeatMs} as a heartbeat. A claim is stale, and the next start takes it over,
 * when its process is gone (same host, where a pid reused by another process counts as gone), or when its heartbeat is older than {@link ClaimOptions.staleAfterMs}
 * (any host: a process on another machine cannot be asked). A takeover moves the stale claim aside by an
 * atomic rename, so that of several processes taking over only one succeeds, and then creates its own with
 * O_EXCL. The owner checks that the claim is still its own before it writes a batch's plan and its commit,
 * so a process that lost its claim (paused past the timeout, then resumed) cannot commit.
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { SluiceError } from '../errors.js';
import { sleep } from '../util/clock.js';
import { guardedWrite } from '../util/file-write.js';
import { processAlive, thisProcess } from '../util/process-identity.js';
import { writeFileAtomic } from './atomic-file.js';
import { isRecord } from './fields.js';

/** The claim file's name in a checkpoint directory. */
export const CLAIM_FILE = 'owner';

/** Who holds a checkpoint. */
export interface ClaimRecord {
  pid: number;
  host: string;
  /** When the owner claimed the checkpoint (ms since the epoch). */
  startedAtMs: number;
  /** When the owner last confirmed it is alive (ms since the epoch). */
  heartbeatAtMs: number;
  /** Random, different for every claim: tells this claim from a later one by the same pid. */
  nonce: string;
  /** The owner's start time as its host's kernel counts it, where known (Linux): tells a reused pid apart. */
  processStart?: string;
}

/** Timing of the heartbeat. */
export interface ClaimOptions {
  /** How often the owner rewrites its claim. Default 10 s. */
  heartbeatMs?: number;
  /** A claim whose heartbeat is older than this is stale, on any host. Default 60 s. */
  staleAfterMs?: number;
}

const DEFAULT_HEARTBEAT_MS = 10_000;
const DEFAULT_STALE_AFTER_MS = 60_000;

function parseClaim(text: string): ClaimRecord | null {
  try {
    const c: unknown = JSON.parse(text);
    if (
      isRecord(c) &&
      Number.isSafeInteger(c.pid) &&
      typeof c.host === 'string' &&
      Number.isFinite(c.startedAtMs) &&
      Number.isFinite(c.heartbeatAtMs) &&
      typeof c.nonce === 'string'
    )
      return c as unknown as ClaimRecord;
  } catch {
    // A claim cut short by a crash while it was created: nobody holds it.
  }
  return null;
}

/**
 * The claim in `file`; null when there is none, or what is there is not a claim anyone could hold. A blocking
 * read: the claim is checked before every checkpoint write, a few times a batch, and a small file's blocking read
 * costs microseconds where fs/promises' costs a round trip through the thread pool.
 */
function readClaim(file: string): { claim: ClaimRecord | null; exists: boolean } {
  try {
    return { claim: parseClaim(fs.readFileSync(file, 'utf8')), exists: true };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { claim: null, exists: false };
    throw err;
  }
}

function describeOwner(c: ClaimRecord): string {
  return `process ${c.pid} on ${c.host} since ${new Date(c.startedAtMs).toISOString()}`;
}

/** The claim a running process holds on one checkpoint directory. */
export class CheckpointClaim {
  private timer: NodeJS.Timeout | undefined;
  private lostTo: ClaimRecord | null | undefined;
  private heartbeat: Promise<void> = Promise.resolve();

  private constructor(
    readonly dir: string,
    private record: ClaimRecord,
    private readonly heartbeatMs: number,
  ) {}

  private get file(): string {
    return path.join(this.dir, CLAIM_FILE);
  }

  /**
   * Claims `dir` (which must exist) for this process, taking over a stale claim; throws CHECKPOINT_IN_USE
   * naming the owner while another process holds it. Starts the heartbeat.
   */
  static async acquire(dir: string, options: ClaimOptions = {}): Promise<CheckpointClaim> {
    const staleAfterMs = options.staleAfterMs ?? DEFAULT_STALE_AFTER_MS;
    const file = path.join(dir, CLAIM_FILE);
    const now = Date.now();
    const record: ClaimRecord = {
      ...thisProcess(),
      startedAtMs: now,
      heartbeatAtMs: now,
      nonce: randomBytes(12).toString('hex'),
    };
    // Each round either creates the claim, is refused, or removes one stale claim; others taking over at
    // the same time can make a round fail, never loop for ever.
    for (let round = 0; round < 10; round++) {
      if (await createExclusive(file, record)) {
        const claim = new CheckpointClaim(dir, record, options.heartbeatMs ?? DEFAULT_HEARTBEAT_MS);
        claim.startHeartbeat();
        return claim;
      }
      const { claim: held, exists } = readClaim(file);
      if (!exists) continue;
      if (held !== null && !isStale(held, staleAfterMs)) throw inUse(dir, held);
      await moveAside(file, held);
    }
    throw new SluiceError(
      'CHECKPOINT_IN_USE',
      `checkpoint ${dir} is being claimed by other processes at the same time`,
      'start one process per checkpoint',
    );
  }

  /** Throws CHECKPOINT_IN_USE when another process has taken the claim over since this one made it. */
  async verify(): Promise<void> {
    if (this.lostTo === undefined) {
      let { claim } = readClaim(this.file);
      // A process taking over a stale claim moves the claim file aside for a moment and puts back one it
      // finds fresh: look again before concluding it is gone.
      if (claim === null) {
        await sleep(50);
        ({ claim } = readClaim(this.file));
      }
      if (claim?.nonce === this.record.nonce) return;
      this.lostTo = claim;
      this.stopHeartbeat();
    }
    const by =
      this.lostTo === null ? 'its claim file was removed' : `it was taken over by ${describeOwner(this.lostTo)}`;
    throw new SluiceError(
      'CHECKPOINT_IN_USE',
      `checkpoint ${this.dir} is no longer this process's: ${by}`,
      'this run stops without committing; make sure one process runs per checkpoint, and that the heartbeat is not held up for a minute',
    );
  }

  /** Stops the heartbeat and removes the claim if it is still this process's. */
  async release(): Promise<void> {
    this.stopHeartbeat();
    await this.heartbeat;
    if (this.lostTo !== undefined) return;
    const { claim } = readClaim(this.file);
    if (claim?.nonce === this.record.nonce) await fsp.rm(this.file, { force: true });
  }

  private startHeartbeat(): void {
    this.timer = setInterval(() => {
      this.heartbeat = this.heartbeat.then(() => this.beat());
    }, this.heartbeatMs);
    this.timer.unref();
  }

  private stopHeartbeat(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Rewrites the claim with a new heartbeat time, unless it was taken over (the next {@link verify} says so). */
  private async beat(): Promise<void> {
    if (this.timer === undefined) return;
    try {
      const { claim } = readClaim(this.file);
      if (claim?.nonce !== this.record.nonce) return;
      this.record = { ...this.record, heartbeatAtMs: Date.now() };
      await writeFileAtomic(this.file, JSON.stringify(this.record));
    } catch {
      // A missed heartbeat (a full disk, a network file system away for a moment) is retried at the next.
    }
  }
}

function isStale(c: ClaimRecord, staleAfterMs: number): boolean {
  if (c.host === os.hostname() && !processAlive(c)) return true;
  return Date.now() - c.heartbeatAtMs > staleAfterMs;
}

function inUse(dir: string, c: ClaimRecord): SluiceError {
  return new SluiceError(
    'CHECKPOINT_IN_USE',
    `checkpoint ${dir} is in use by ${describeOwner(c)}`,
    'stop that process first, or give this run its own checkpoint directory; the claim of a process that died ' +
      'is taken over at the next start (from another host once its heartbeat is a minute old)',
  );
}

/** Creates `file` holding `record` unless it exists; false when it does. */
async function createExclusive(file: string, record: ClaimRecord): Promise<boolean> {
  let handle: fsp.FileHandle;
  try {
    handle = await guardedWrite(file, () => fsp.open(file, 'wx'));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  }
  try {
    await guardedWrite(file, async () => {
      await handle.writeFile(JSON.stringify(record));
      await handle.sync();
    });
  } catch (err) {
    // A claim cut short (a full disk) is nobody's: remove it, so that it does not refuse the next start.
    await handle.close();
    await fsp.rm(file, { force: true });
    throw err;
  }
  await handle.close();
  return true;
}

/**
 * Renames the stale claim `seen` out of the way. When the file renamed turns out to be a newer claim (another
 * process took over between the read and the rename), it is put back unless a claim exists again by then.
 */
async function moveAside(file: string, seen: ClaimRecord | null): Promise<void> {
  const aside = `${file}.stale-${randomBytes(6).toString('hex')}`;
  try {
    await fsp.rename(file, aside);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  const { claim: moved } = readClaim(aside);
  if (moved !== null && moved.nonce !== seen?.nonce) {
    try {
      await fsp.link(aside, file);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
  }
  await fsp.rm(aside, { force: true });
}
