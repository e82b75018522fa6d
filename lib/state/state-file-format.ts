/**
 * The files of one state store directory, as Spark's HDFS-backed state store keeps them:
 * `<N>.delta` holds the puts and removes of version N, and `<N>.snapshot` (every few versions) the
 * whole state at version N. Loading version N reads the newest snapshot at or before N and applies the
 * deltas after it, so recovery time is bounded by the snapshot interval, not the stream length.
 *
 * Both kinds are versioned files (a `v<N>` line, see versioned-file.ts) with this binary body:
 * ```
 * u32 magic "SLST", byte kind (1 delta, 2 snapshot), varint state version,
 * varint name count, length-prefixed field names (the dictionary the values are encoded with),
 * delta:    u32 entry count, per entry: byte op (0 remove, 1 put, 2 put with timeout), key,
 *           and for puts the value and, with a timeout, f64 timeout
 * snapshot: u32 key count, varint record bytes, records (key then value bytes, as the arena holds
 *           them, so that loading is one copy), byte has-timeouts, then f64 timeout per key
 * u32 crc32 of everything before it
 * ```
 * Keys are in their canonical encoding, values in the dictionary encoding (see value-codec.ts).
 */
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { crc32 } from 'node:zlib';
import { isTempFileName, tempPathFor } from '../checkpoint/atomic-file.js';
import { corruptCheckpointFile, readVersionedRaw, writeVersionedRaw } from '../checkpoint/versioned-file.js';
import { SluiceError } from '../errors.js';
import { crashPoint } from '../util/crash-points.js';
import { type ArenaHashMap, indexHash } from './arena-hash-map.js';
import { isDeadWeight, OP_PUT, OP_PUT_WITH_TIMEOUT, OP_REMOVE, type PendingChanges } from './pending-changes.js';
import { SpillFile } from './spill-file.js';
import { type FieldDictionary, ValueReader, ValueWriter } from './value-codec.js';

/** Format version of delta and snapshot files (the `v<N>` line that starts them). */
export const STATE_FILE_FORMAT_VERSION = 1;
/**
 * Entries per chunk a file is replayed in, each in its own `apply` (see {@link replayStateVersion}): the disk
 * store's rebuild makes each chunk one transaction. A snapshot's entries come in key order and fill pages one
 * after the other; a delta's random updates each touch pages of their own, so its chunks may be given smaller.
 */
export const REPLAY_CHUNK = 4096;

/** "SLST": tells state files from anything else that might carry a `v1` line. */
const MAGIC = 0x54534c53;
const KIND_DELTA = 1;
const KIND_SNAPSHOT = 2;
const FILE_NAME = /^([0-9]{1,15})\.(delta|snapshot)$/;

/** The files of a store directory by version. */
interface StateFiles {
  deltas: Set<number>;
  snapshots: number[];
}

async function listStateFiles(dir: string): Promise<StateFiles> {
  const files: StateFiles = { deltas: new Set(), snapshots: [] };
  let names: string[];
  try {
    names = await fsp.readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return files;
    throw err;
  }
  for (const name of names) {
    if (isTempFileName(name)) continue;
    const m = FILE_NAME.exec(name);
    if (!m) continue;
    const version = Number(m[1]);
    if (m[2] === 'delta') files.deltas.add(version);
    else files.snapshots.push(version);
  }
  files.snapshots.sort((a, b) => a - b);
  return files;
}

/** The newest snapshot version at or before `version`, 0 when there is none. */
function baseSnapshot(files: StateFiles, version: number): number {
  let base = 0;
  for (const s of files.snapshots) if (s <= version) base = s;
  return base;
}

function deltaFile(dir: string, version: number): string {
  return path.join(dir, `${version}.delta`);
}

function snapshotFile(dir: string, version: number): string {
  return path.join(dir, `${version}.snapshot`);
}

/** A delta or snapshot file and the state version it holds. */
interface StateFile {
  file: string;
  kind: number;
  version: number;
}

/**
 * The files that make version `version` (> 0) of the store in `dir`, in the order they are read: the
 * newest snapshot at or before it, then the deltas after that snapshot. Throws SluiceError
 * CHECKPOINT_MISSING when a needed delta is gone.
 */
async function filesOfVersion(dir: string, version: number): Promise<StateFile[]> {
  const files = await listStateFiles(dir);
  const base = baseSnapshot(files, version);
  for (let v = base + 1; v <= version; v++) {
    if (!files.deltas.has(v)) {
      throw new SluiceError(
        'CHECKPOINT_MISSING',
        `cannot load state version ${version} from ${dir}: ${deltaFile(dir, v)} is missing ` +
          (base > 0 ? `(newest snapshot at or before it: ${base})` : '(and there is no snapshot before it)'),
        'the state files were deleted or purged past this version; restore the checkpoint directory from a ' +
          'backup, or delete it to start the query over',
      );
    }
  }
  const out: StateFile[] = [];
  if (base > 0) out.push({ file: snapshotFile(dir, base), kind: KIND_SNAPSHOT, version: base });
  for (let v = base + 1; v <= version; v++) out.push({ file: deltaFile(dir, v), kind: KIND_DELTA, version: v });
  return out;
}

/**
 * Fills `map`, which must be empty, with version `version` (> 0) of the store in `dir`: the newest
 * snapshot at or before it plus the deltas after that snapshot. Throws SluiceError CHECKPOINT_MISSING
 * when a needed file is gone and CHECKPOINT_CORRUPT (naming the file) when one is torn or damaged; the
 * map is then partly filled.
 */
export async function readStateVersion(dir: string, version: number, map: ArenaHashMap): Promise<void> {
  for (const f of await filesOfVersion(dir, version)) await readStateFile(f, map);
}

/**
 * Where replayed state files put their entries when the state is not an {@link ArenaHashMap} (the disk
 * store's database). Keys are canonical encodings, values encoded with {@link dict}; both are only valid
 * during the call.
 */
export interface StateChangeTarget {
  /** The dictionary the target's values are encoded with; a file's values are re-encoded when its ids differ. */
  readonly dict: FieldDictionary;
  put(key: Uint8Array, value: Uint8Array, timeout: number): void;
  /** Removes `key`; a no-op when absent. */
  remove(key: Uint8Array): void;
  /**
   * Takes a snapshot into the target, which is empty before its first chunk: its distinct keys, their values and
   * timeouts (-1: none) in the file's order, in chunks of at most {@link REPLAY_CHUNK} entries, so that
   * no array grows with the state; `total` is the snapshot's key count, so the chunk that brings the keys taken
   * to it is the last (an empty snapshot has one, empty). Keys stay valid until the last chunk is taken. Where
   * absent, each entry goes through {@link put}.
   */
  load?(keys: Uint8Array[], values: Uint8Array[], timeouts: Float64Array, total: number): void;
  /**
   * Called after a snapshot's last chunk until it returns true, each call on its own (see replayStateVersion's
   * `apply`): what waits for the whole snapshot (the disk store's timeout index), spread over several calls.
   */
  loadEnd?(): boolean;
}

/**
 * Whether the deltas of every version after `from` up to `to` are in `dir`, so that a store holding
 * version `from` can catch up with {@link replayStateVersion} without a snapshot.
 */
export async function hasDeltasAfter(dir: string, from: number, to: number): Promise<boolean> {
  const files = await listStateFiles(dir);
  for (let v = from + 1; v <= to; v++) if (!files.deltas.has(v)) return false;
  return true;
}

/**
 * Brings `target` from version `from` of the store in `dir` (0: empty) to version `to`, one file at a time,
 * calling `apply` around each chunk of {@link REPLAY_CHUNK} entries (`deltaChunk` of a delta's) and each of a
 * snapshot's end calls (e.g. to make each one transaction, so that none grows with the state): the deltas after
 * `from`, or for `from` 0 the newest snapshot at or before `to` and the deltas after it. Throws as
 * readStateVersion does.
 */
export async function replayStateVersion(
  dir: string,
  from: number,
  to: number,
  target: StateChangeTarget,
  apply: (entries: () => void) => void,
  deltaChunk = REPLAY_CHUNK,
): Promise<void> {
  const files =
    from === 0
      ? await filesOfVersion(dir, to)
      : Array.from({ length: to - from }, (_, i) => ({
          file: deltaFile(dir, from + 1 + i),
          kind: KIND_DELTA,
          version: from + 1 + i,
        }));
  for (const f of files) {
    const { data, r, names } = await openStateFile(f);
    checkedFile(f.file, () => {
      replayBody(f.kind, r, data, names, target, apply, deltaChunk);
      if (r.pos !== r.end) throw new Error(`${r.end - r.pos} unexpected bytes after the last entry`);
    });
  }
}

/** The checksum that ends the delta file of `version` in `dir`, or null when there is none. */
export async function deltaChecksum(dir: string, version: number): Promise<number | null> {
  let data: Buffer;
  try {
    data = await fsp.readFile(deltaFile(dir, version));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
  return data.length < 4 ? null : data.readUInt32LE(data.length - 4);
}

function replayBody(
  kind: number,
  r: ValueReader,
  data: Buffer,
  names: string[],
  target: StateChangeTarget,
  apply: (entries: () => void) => void,
  deltaChunk: number,
): void {
  const sameIds = target.dict.adopt(names);
  let scratch: ValueWriter | null = null;
  /** The value at the reader, in the target's encoding; the reader moves past it. */
  const value = (): Uint8Array => {
    const vstart = r.pos;
    if (sameIds) {
      r.skip();
      return data.subarray(vstart, r.pos);
    }
    scratch ??= new ValueWriter(256, target.dict);
    scratch.reset();
    scratch.write(r.read());
    return scratch.buf.subarray(0, scratch.pos);
  };
  const n = r.uint32();
  if (kind === KIND_SNAPSHOT) {
    const recordBytes = r.varint();
    const end = r.pos + recordBytes;
    if (end >= r.end) throw new Error('its record section is cut short');
    // The timeouts follow the records; each chunk reads its own from where they lie.
    const timed = data[end] === 1;
    const timesAt = end + 1;
    const afterTimes = timesAt + (timed ? 8 * n : 0);
    if (afterTimes > r.end) throw new Error('its timeouts are cut short');
    for (let from = 0; from < n || from === 0; from += REPLAY_CHUNK) {
      const m = Math.min(n - from, REPLAY_CHUNK);
      const keys: Uint8Array[] = new Array(m);
      const values: Uint8Array[] = new Array(m);
      const timeouts = new Float64Array(m).fill(-1);
      for (let i = 0; i < m; i++) {
        if (r.pos >= end) throw new Error('its record section does not match its key count');
        const kstart = r.pos;
        r.skip();
        keys[i] = data.subarray(kstart, r.pos);
        values[i] = sameIds ? value() : value().slice();
        if (timed) timeouts[i] = data.readDoubleLE(timesAt + 8 * (from + i));
      }
      const load = target.load;
      apply(() => {
        if (load) load(keys, values, timeouts, n);
        else for (let i = 0; i < m; i++) target.put(keys[i], values[i], timeouts[i]);
      });
    }
    const loadEnd = target.loadEnd;
    if (target.load && loadEnd) {
      let done = false;
      while (!done) apply(() => (done = loadEnd()));
    }
    if (r.pos !== end) throw new Error('its record section does not match its key count');
    r.pos = afterTimes;
    return;
  }
  for (let from = 0; from < n || from === 0; from += deltaChunk) {
    const m = Math.min(n - from, deltaChunk);
    apply(() => {
      for (let i = 0; i < m; i++) {
        const op = r.byte();
        const kstart = r.pos;
        r.skip();
        const key = data.subarray(kstart, r.pos);
        if (op === OP_REMOVE) {
          target.remove(key);
          continue;
        }
        if (op !== OP_PUT && op !== OP_PUT_WITH_TIMEOUT) throw new Error(`unknown entry type ${op}`);
        const v = value();
        target.put(key, v, op === OP_PUT_WITH_TIMEOUT ? r.float64() : -1);
      }
    });
  }
}

/**
 * Deletes the files of `dir` no longer needed to load any version >= `minVersionToKeep`: everything
 * older than the newest snapshot at or before it. Returns the deleted file names, sorted. Without such
 * a snapshot nothing can go (the deltas from version 1 are still needed).
 */
export async function purgeStateFiles(dir: string, minVersionToKeep: number): Promise<string[]> {
  const files = await listStateFiles(dir);
  const base = baseSnapshot(files, minVersionToKeep);
  if (base === 0) return [];
  const doomed: string[] = [];
  for (const d of files.deltas) if (d < base) doomed.push(`${d}.delta`);
  for (const s of files.snapshots) if (s < base) doomed.push(`${s}.snapshot`);
  await Promise.all(doomed.map((name) => fsp.rm(path.join(dir, name), { force: true })));
  return doomed.sort();
}

/** Reads a state file and checks its frame; returns a reader at the first entry, with the file's field names. */
async function openStateFile({
  file,
  kind,
  version,
}: StateFile): Promise<{ data: Buffer; r: ValueReader; names: string[] }> {
  const { data } = await readVersionedRaw(file, { maxVersion: STATE_FILE_FORMAT_VERSION });
  return checkedFile(file, () => {
    if (data.length < 9) throw new Error('it is too short to be a state file');
    const stored = data.readUInt32LE(data.length - 4);
    if (crc32(data.subarray(0, data.length - 4)) !== stored) {
      throw new Error('its checksum does not match (a torn write or damaged bytes)');
    }
    const r = new ValueReader(data, [], 0, data.length - 4);
    if (r.uint32() !== MAGIC) throw new Error('it is not a sluice state file');
    const fileKind = r.byte();
    if (fileKind !== kind) {
      throw new Error(
        `it holds a ${fileKind === KIND_SNAPSHOT ? 'snapshot' : 'delta'} where a ` +
          `${kind === KIND_SNAPSHOT ? 'snapshot' : 'delta'} belongs`,
      );
    }
    const fileVersion = r.varint();
    if (fileVersion !== version) throw new Error(`it holds state version ${fileVersion}, not ${version}`);
    const names: string[] = [];
    const numNames = r.varint32();
    for (let i = 0; i < numNames; i++) names.push(r.lengthPrefixedString());
    r.setNames(names);
    return { data, r, names };
  });
}

/** Runs `f` over a file's bytes; what it throws (other than a SluiceError) becomes CHECKPOINT_CORRUPT naming the file. */
function checkedFile<T>(file: string, f: () => T): T {
  try {
    return f();
  } catch (err) {
    if (err instanceof SluiceError) throw err;
    throw corruptCheckpointFile(file, (err as Error).message, err);
  }
}

async function readStateFile(f: StateFile, map: ArenaHashMap): Promise<void> {
  const { data, r, names } = await openStateFile(f);
  checkedFile(f.file, () => {
    if (f.kind === KIND_SNAPSHOT) readSnapshotBody(r, data, names, map);
    else readDeltaBody(r, data, names, map);
    if (r.pos !== r.end) throw new Error(`${r.end - r.pos} unexpected bytes after the last entry`);
  });
}

function readSnapshotBody(r: ValueReader, data: Buffer, names: string[], map: ArenaHashMap): void {
  map.dict.adopt(names);
  const n = r.uint32();
  const recordBytes = r.varint();
  const start = r.pos;
  if (recordBytes > r.end - start || n > recordBytes) throw new Error('its record section is cut short');
  map.adoptRecords(data, start, recordBytes, n);
  r.pos = start + recordBytes;
  if (r.byte() === 1) {
    const timeouts = map.timeoutsToFill();
    for (let slot = 0; slot < n; slot++) timeouts[slot] = r.float64();
  }
}

function readDeltaBody(r: ValueReader, data: Buffer, names: string[], map: ArenaHashMap): void {
  const sameIds = map.dict.adopt(names);
  const n = r.uint32();
  let scratch: ValueWriter | null = null;
  for (let i = 0; i < n; i++) {
    const op = r.byte();
    const kstart = r.pos;
    r.skip();
    const klen = r.pos - kstart;
    const h = indexHash(data, kstart, kstart + klen);
    const slot = map.find(h, data, kstart, klen);
    if (op === OP_REMOVE) {
      if (slot < 0)
        throw new Error(
          `it removes a key that is not in the state (${data.toString('latin1', kstart, kstart + klen)})`,
        );
      map.remove(slot);
      continue;
    }
    if (op !== OP_PUT && op !== OP_PUT_WITH_TIMEOUT) throw new Error(`unknown entry type ${op}`);
    let src: Uint8Array = data;
    let vstart = r.pos;
    let vend: number;
    if (sameIds) {
      r.skip();
      vend = r.pos;
    } else {
      // The file numbered field names differently from this store: re-encode with the store's ids.
      const value = r.read();
      scratch ??= new ValueWriter(256, map.dict);
      scratch.reset();
      scratch.write(value);
      src = scratch.buf;
      vstart = 0;
      vend = scratch.pos;
    }
    const timeout = op === OP_PUT_WITH_TIMEOUT ? r.float64() : -1;
    if (slot >= 0) map.update(slot, src, vstart, vend, timeout);
    else map.insert(h, data, kstart, klen, src, vstart, vend, timeout);
  }
}

/** Writes the delta and snapshot files of one store, reusing one buffer across commits. */
export class StateFileWriter {
  private w = new ValueWriter(1 << 16, null, true);

  /**
   * Writes `<dir>/<version>.delta` durably (a torn one fails its checksum) from `changes`, whose values are
   * encoded with the field dictionary `names`: their entries as they are, no record copied. Returns how many
   * keys it puts and removes, and the file's checksum.
   */
  async writeDelta(
    dir: string,
    version: number,
    names: readonly string[],
    changes: PendingChanges,
  ): Promise<{ updated: number; removed: number; checksum: number }> {
    const w = this.w;
    w.reset();
    writeHeader(w, KIND_DELTA, version, names);
    const { count, runs } = changes.deltaEntries();
    w.uint32(count);
    const head = w.buf.subarray(0, w.pos);
    let checksum = crc32(head);
    for (const run of runs) checksum = crc32(run, checksum);
    const tail = Buffer.alloc(4);
    tail.writeUInt32LE(checksum);
    let removed = 0;
    for (let p = 0; p < changes.length; p++) if (changes.entry[p] >= 0 && changes.offset[p] < 0) removed++;
    // Version N is written by batch N-1: a crash here leaves an empty delta file that no commit refers to.
    await writeVersionedRaw(deltaFile(dir, version), [head, ...runs, tail], STATE_FILE_FORMAT_VERSION, () =>
      crashPoint('in-state-file', version - 1),
    );
    return { updated: count - removed, removed, checksum };
  }

  /** Writes `<dir>/<version>.snapshot` durably (a torn one fails its checksum): every entry of `map`. */
  async writeSnapshot(dir: string, version: number, map: ArenaHashMap): Promise<void> {
    const w = this.w;
    w.reset();
    writeHeader(w, KIND_SNAPSHOT, version, map.dict.names);
    w.uint32(map.count);
    const slots = map.slotCount;
    const ends = new Int32Array(slots);
    let recordBytes = 0;
    for (let slot = 0; slot < slots; slot++) {
      const off = map.recordOffset(slot);
      if (off < 0) continue;
      ends[slot] = map.recordEnd(slot);
      recordBytes += ends[slot] - off;
    }
    w.varint(recordBytes);
    w.ensure(recordBytes);
    for (let slot = 0; slot < slots; slot++) {
      const off = map.recordOffset(slot);
      if (off >= 0) w.raw(map.recordBuffer(slot), off, ends[slot]);
    }
    w.byte(map.hasTimeouts ? 1 : 0);
    if (map.hasTimeouts) {
      w.ensure(map.count * 8);
      for (let slot = 0; slot < slots; slot++) if (map.isLive(slot)) w.float64(map.timeout(slot));
    }
    w.uint32(crc32(w.buf.subarray(0, w.pos)));
    await writeVersionedRaw(snapshotFile(dir, version), w.buf.subarray(0, w.pos), STATE_FILE_FORMAT_VERSION);
  }

  /**
   * Writes `<dir>/<version>.snapshot` durably from entries that are not in an {@link ArenaHashMap}:
   * `forEachEntry` visits each of the `count` entries once (key in its canonical encoding, value encoded with
   * `names` from `valueStart` on, so that a record holding more before its value needs no view of its own), in
   * any order. The entries pass through two temporary files beside the snapshot (the records, whose
   * length the file gives before them, and the timeouts, which follow them), so that memory stays bounded
   * however large the state (a disk store's), at the cost of reading the records back once.
   */
  async writeSnapshotOf(
    dir: string,
    version: number,
    names: readonly string[],
    count: number,
    forEachEntry: (visit: (key: Uint8Array, value: Uint8Array, timeout: number, valueStart?: number) => void) => void,
  ): Promise<void> {
    const file = snapshotFile(dir, version);
    const records = new SpillFile(tempPathFor(file));
    const timeouts = new SpillFile(tempPathFor(file));
    try {
      let n = 0;
      let hasTimeouts = false;
      forEachEntry((key, value, timeout, valueStart = 0) => {
        if (n === count) throw new Error(`state snapshot ${version}: more entries than the ${count} counted`);
        records.write(key);
        records.write(value, valueStart);
        timeouts.float64(timeout);
        n++;
        if (timeout >= 0) hasTimeouts = true;
      });
      if (n !== count) throw new Error(`state snapshot ${version}: ${n} entries where ${count} were counted`);
      const w = this.w;
      w.reset();
      writeHeader(w, KIND_SNAPSHOT, version, names);
      w.uint32(count);
      w.varint(records.length);
      const head = w.buf.subarray(0, w.pos);
      await writeVersionedRaw(
        file,
        {
          *chunks() {
            const flag = Buffer.from([hasTimeouts ? 1 : 0]);
            let checksum = 0;
            for (const section of [[head], records.chunks(), [flag], hasTimeouts ? timeouts.chunks() : []]) {
              for (const chunk of section) {
                checksum = crc32(chunk, checksum);
                yield chunk;
              }
            }
            const tail = Buffer.alloc(4);
            tail.writeUInt32LE(checksum);
            yield tail;
          },
        },
        STATE_FILE_FORMAT_VERSION,
      );
    } finally {
      records.remove();
      timeouts.remove();
    }
  }

  /**
   * Gives back a buffer that a big batch or a snapshot grew and the last file left mostly unused, so it does not
   * stay as dead weight; one that each commit's delta keeps filling is kept (fresh pages cost more to touch).
   */
  releaseScratch(): void {
    if (isDeadWeight(this.w.buf.length, this.w.pos)) this.w = new ValueWriter(1 << 16, null, true);
  }
}

function writeHeader(w: ValueWriter, kind: number, version: number, names: readonly string[]): void {
  w.uint32(MAGIC);
  w.byte(kind);
  w.varint(version);
  w.varint32(names.length);
  for (const name of names) w.lengthPrefixedString(name);
}
