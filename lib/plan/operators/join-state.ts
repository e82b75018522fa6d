/**
 * The buffered rows of both sides of a stream-stream join in one state partition, Spark's
 * SymmetricHashJoinStateManager over sluice's versioned state store.
 *
 * In memory each side is a {@link JoinSideBuffer}: columns and a key index, kept by the operator from one batch
 * to the next. In the store, each batch's new rows of a side are one chunk: one state row holding the rows as
 * an Arrow IPC stream, written once, and beside it, only when some row of the chunk has been joined or
 * evicted, one holding a status byte per row. So a batch writes what it added and the statuses it changed,
 * never a key's earlier rows again; a chunk whose rows are all evicted is removed. A state row of counts
 * records the batch that last wrote the partition: when the operator's buffers are not of that batch (a
 * restart, a replayed batch, another thread that ran the partition since) they are rebuilt from the chunks.
 */
import { type RecordBatch, Schema, Table, tableFromIPC, tableToIPC } from 'apache-arrow';
import { batchOf, rowsFromBatch } from '../../arrow/index.js';
import type { InputSide, KeyedState } from '../stateful-operator.js';
import { EVICTED, JoinSideBuffer, MATCHED } from './join-side-buffer.js';
import { StateSchemaError } from './transform-with-state-schema.js';

/** State key of the partition's live row counts per side, the batch that wrote it, and the next chunk id. */
const COUNTS_KEY = ['\u0000sluice:join-rows'];
const CHUNK = '\u0000sluice:join-chunk';
const STATUS = '\u0000sluice:join-status';
const SIDE_NO: Record<InputSide, number> = { left: 0, right: 1 };
/** Chunk schema metadata: the side's join key columns, when the keys are plain columns (for inspecting state). */
const KEY_COLUMNS = 'sluice.join.keyColumns';
const SIDES = ['left', 'right'] as const;

/** What the counts row holds. */
type Counts = [left: number, right: number, batchId: number, buffersId: number, nextChunk: number];

/** Per row of a batch of one side: its join key's id and the watermark at which it can no longer match. */
export type RowInfo = (side: InputSide, batch: RecordBatch) => { keyIds: unknown[]; deadlines: Float64Array };

/** One chunk of buffered rows: a state row of the rows, and the status byte of each. */
interface Chunk {
  id: number;
  side: InputSide;
  status: Uint8Array;
  rows: number;
  live: number;
  /** Written this batch: its rows are buffer positions `first`.. until the next compaction. */
  fresh: boolean;
  first: number;
  dirty: boolean;
}

let nextBuffersId = 1;

function sameColumns(a: Schema, b: Schema): boolean {
  if (a === b) return true;
  if (a.fields.length !== b.fields.length) return false;
  return a.fields.every((f, i) => f.name === b.fields[i].name && String(f.type) === String(b.fields[i].type));
}

/** Both sides' buffered rows of one partition (see the module comment). */
export class JoinState {
  readonly sides: Record<InputSide, JoinSideBuffer>;
  readonly added: Record<InputSide, number> = { left: 0, right: 0 };
  readonly removed: Record<InputSide, number> = { left: 0, right: 0 };
  private readonly chunks = new Map<number, Chunk>();
  private readonly open: Record<InputSide, Chunk | null> = { left: null, right: null };
  /** The batch these buffers are the state after (NaN while a batch changes them), and their identity. */
  private batchId = -1;
  private readonly id = nextBuffersId++ + Math.random();
  private nextChunk = 0;

  /** Per side, the schema its chunks are written with. */
  private readonly chunkSchemas: Record<InputSide, Schema>;

  private constructor(
    readonly leftSchema: Schema,
    readonly rightSchema: Schema,
    keyColumns: Record<InputSide, string[] | null>,
  ) {
    this.sides = { left: new JoinSideBuffer(leftSchema), right: new JoinSideBuffer(rightSchema) };
    const chunkSchema = (schema: Schema, keys: string[] | null) =>
      new Schema(schema.fields, keys ? new Map([[KEY_COLUMNS, JSON.stringify(keys)]]) : new Map());
    this.chunkSchemas = {
      left: chunkSchema(leftSchema, keyColumns.left),
      right: chunkSchema(rightSchema, keyColumns.right),
    };
  }

  /**
   * Whether these buffers hold exactly what `state` holds, for sides of these columns (batches that crossed
   * threads carry equal schemas, not the same objects).
   */
  isCurrent(state: KeyedState, left: Schema, right: Schema): boolean {
    const c = state.get(COUNTS_KEY) as Counts | undefined;
    if (!sameColumns(left, this.leftSchema) || !sameColumns(right, this.rightSchema)) return false;
    return c === undefined ? this.batchId === -1 && this.nextChunk === 0 : c[3] === this.id && c[2] === this.batchId;
  }

  /** The buffers of the rows `state` holds, rebuilt from its chunks. */
  static load(
    state: KeyedState,
    left: Schema,
    right: Schema,
    keyColumns: Record<InputSide, string[] | null>,
    rowInfo: RowInfo,
  ): JoinState {
    const js = new JoinState(left, right, keyColumns);
    const counts = state.get(COUNTS_KEY) as Counts | undefined;
    if (!counts) return js;
    // Before rows were buffered as columns, the counts row held the two sides' counts alone and each join key
    // had a state row of its own; reading on would drop those rows without a word.
    if (counts.length !== 5) {
      throw new StateSchemaError(
        'the join state was written by an earlier sluice, which buffered rows one state row per join key',
        'start the query with a new checkpoint directory (or finish it with the sluice that wrote it)',
      );
    }
    js.nextChunk = counts[4];
    const found: { side: InputSide; id: number; bytes: Uint8Array }[] = [];
    const statuses = new Map<number, Uint8Array>();
    for (const [k, v] of state.entries()) {
      if (!Array.isArray(k)) continue;
      if (k[0] === CHUNK) found.push({ side: SIDES[k[1] as number], id: k[2] as number, bytes: v as Uint8Array });
      else if (k[0] === STATUS) statuses.set(k[2] as number, v as Uint8Array);
    }
    found.sort((a, b) => a.id - b.id);
    for (const f of found) {
      let rowsBefore = 0;
      const status = statuses.get(f.id);
      const batches = tableFromIPC(f.bytes).batches;
      const total = batches.reduce((n, b) => n + b.numRows, 0);
      const chunk: Chunk = {
        id: f.id,
        side: f.side,
        status: status ? Uint8Array.from(status) : new Uint8Array(total),
        rows: total,
        live: 0,
        fresh: false,
        first: 0,
        dirty: false,
      };
      js.chunks.set(f.id, chunk);
      for (const batch of batches) {
        const info = rowInfo(f.side, batch);
        const rows: number[] = [];
        for (let i = 0; i < batch.numRows; i++) if ((chunk.status[rowsBefore + i] & EVICTED) === 0) rows.push(i);
        js.appendRows(f.side, batch, rows, info, chunk, rowsBefore);
        rowsBefore += batch.numRows;
      }
    }
    js.batchId = counts[2];
    return js;
  }

  private appendRows(
    side: InputSide,
    batch: RecordBatch,
    rows: number[],
    info: { keyIds: unknown[]; deadlines: Float64Array },
    chunk: Chunk,
    chunkRowBase: number,
  ): void {
    const n = rows.length;
    const keyIds = new Array<unknown>(n);
    const deadlines = new Float64Array(n);
    const status = new Uint8Array(n);
    const chunkRows = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      const r = rows[i];
      keyIds[i] = info.keyIds[r];
      deadlines[i] = info.deadlines[r];
      chunkRows[i] = chunkRowBase + r;
      status[i] = chunk.status[chunkRows[i]];
    }
    this.sides[side].append(batch, rows, keyIds, deadlines, status, chunk.id, chunkRows);
    chunk.live += n;
  }

  /** Marks that a batch is changing the buffers: if it fails, they no longer match any stored version. */
  begin(): void {
    this.batchId = Number.NaN;
    this.added.left = this.added.right = this.removed.left = this.removed.right = 0;
  }

  /** Buffers rows `rows` of `batch`, a batch of `side`, with their key ids, deadlines and matched flags. */
  add(
    side: InputSide,
    batch: RecordBatch,
    rows: Int32Array,
    keyIds: unknown[],
    deadlines: Float64Array,
    matched: Uint8Array,
  ): void {
    const n = rows.length;
    if (n === 0) return;
    let chunk = this.open[side];
    if (!chunk) {
      chunk = {
        id: this.nextChunk++,
        side,
        status: new Uint8Array(Math.max(64, n)),
        rows: 0,
        live: 0,
        fresh: true,
        first: this.sides[side].length,
        dirty: false,
      };
      this.open[side] = chunk;
      this.chunks.set(chunk.id, chunk);
    }
    if (chunk.rows + n > chunk.status.length) {
      const next = new Uint8Array(Math.max(chunk.rows + n, chunk.status.length * 2));
      next.set(chunk.status);
      chunk.status = next;
    }
    chunk.status.set(matched, chunk.rows);
    const chunkRows = new Int32Array(n);
    for (let i = 0; i < n; i++) chunkRows[i] = chunk.rows + i;
    this.sides[side].append(batch, rows, keyIds, deadlines, matched, chunk.id, chunkRows);
    chunk.rows += n;
    chunk.live += n;
    this.added[side] += n;
  }

  /** Marks buffered row `pos` of `side` as joined; returns whether it was not before. */
  markMatched(side: InputSide, pos: number): boolean {
    const buf = this.sides[side];
    if (buf.status[pos] & MATCHED) return false;
    buf.status[pos] |= MATCHED;
    const chunk = this.chunks.get(buf.chunk[pos]) as Chunk;
    chunk.status[buf.chunkRow[pos]] |= MATCHED;
    chunk.dirty = true;
    return true;
  }

  /**
   * Ends the batch: writes the new chunks, evicts the rows whose deadline the watermark reached (calling
   * `onEvict` with each side's evicted positions, in arrival order, while they can still be gathered), writes
   * the changed statuses and the counts as the state of batch `batchId`.
   */
  finish(
    state: KeyedState,
    batchId: number,
    watermarkMs: number,
    onEvict: (side: InputSide, positions: Int32Array) => void,
  ): void {
    for (const side of SIDES) {
      const chunk = this.open[side];
      if (!chunk) continue;
      const buf = this.sides[side];
      // The chunk's rows are the buffer's last ones: serialised from views of its columns, not gathered first.
      const batch = batchOf(
        this.chunkSchemas[side],
        buf.schema.fields.map((_, c) => buf.view(c, chunk.first, chunk.rows)),
        chunk.rows,
      );
      state.put([CHUNK, SIDE_NO[side], chunk.id], tableToIPC(new Table([batch]), 'stream'));
      this.open[side] = null;
    }
    if (watermarkMs > 0) {
      for (const side of SIDES) {
        const buf = this.sides[side];
        const evicted = buf.evict(watermarkMs);
        if (evicted.length === 0) continue;
        for (let i = 0; i < evicted.length; i++) {
          const p = evicted[i];
          const chunk = this.chunks.get(buf.chunk[p]) as Chunk;
          chunk.status[buf.chunkRow[p]] |= EVICTED;
          chunk.live--;
          chunk.dirty = true;
        }
        this.removed[side] += evicted.length;
        onEvict(side, evicted);
        buf.compact();
      }
    }
    for (const chunk of this.chunks.values()) {
      const key = [STATUS, SIDE_NO[chunk.side], chunk.id];
      if (chunk.live === 0 && !chunk.fresh) {
        state.remove([CHUNK, SIDE_NO[chunk.side], chunk.id]);
        state.remove(key);
        this.chunks.delete(chunk.id);
      } else if (chunk.dirty || (chunk.fresh && chunk.status.subarray(0, chunk.rows).some((s) => s !== 0))) {
        state.put(key, chunk.status.slice(0, chunk.rows));
      }
      chunk.dirty = false;
      chunk.fresh = false;
    }
    const counts: Counts = [this.sides.left.live, this.sides.right.live, batchId, this.id, this.nextChunk];
    state.put(COUNTS_KEY, counts);
    this.batchId = batchId;
  }

  /** State rows that hold counts rather than buffered rows. */
  static internalRows(state: KeyedState): number {
    return state.has(COUNTS_KEY) ? 1 : 0;
  }
}

/** The rows a join's state partition buffers (both sides), or null when `state` is not a join's. */
export function joinBufferedRows(state: { get(key: unknown): unknown }): number | null {
  const c = state.get(COUNTS_KEY) as Counts | undefined;
  return c ? c[0] + c[1] : null;
}

/** A join key's buffered rows of both sides, as `sluice checkpoint --state` shows them. */
export interface JoinStateRow {
  key: unknown;
  value: { left: Record<string, unknown>[]; right: Record<string, unknown>[] };
}

/**
 * The buffered rows of a join's state partition grouped by join key (null when the keys are not plain columns),
 * with `matched` on the rows of a side whose matches the join tracks; null when `entries` are not a join's state.
 */
export function joinStateRows(entries: Iterable<[unknown, unknown]>): JoinStateRow[] | null {
  const chunks: { side: InputSide; id: number; bytes: Uint8Array }[] = [];
  const statuses = new Map<number, Uint8Array>();
  let isJoin = false;
  for (const [k, v] of entries) {
    if (!Array.isArray(k)) continue;
    if (k.length === 1 && k[0] === COUNTS_KEY[0]) isJoin = true;
    else if (k[0] === CHUNK) chunks.push({ side: SIDES[k[1] as number], id: k[2] as number, bytes: v as Uint8Array });
    else if (k[0] === STATUS) statuses.set(k[2] as number, v as Uint8Array);
  }
  if (!isJoin) return null;
  chunks.sort((a, b) => a.id - b.id);
  const byKey = new Map<string, JoinStateRow>();
  for (const c of chunks) {
    const status = statuses.get(c.id);
    let at = 0;
    for (const batch of tableFromIPC(c.bytes).batches) {
      const keyColumns = JSON.parse(batch.schema.metadata.get(KEY_COLUMNS) ?? 'null') as string[] | null;
      for (const row of rowsFromBatch(batch)) {
        const s = status?.[at++] ?? 0;
        if (s & EVICTED) continue;
        const key = keyColumns ? (keyColumns.length === 1 ? row[keyColumns[0]] : keyColumns.map((n) => row[n])) : null;
        const id = JSON.stringify(key);
        let entry = byKey.get(id);
        if (!entry) {
          entry = { key, value: { left: [], right: [] } };
          byKey.set(id, entry);
        }
        entry.value[c.side].push(status ? { ...row, matched: (s & MATCHED) !== 0 } : row);
      }
    }
  }
  return [...byKey.values()];
}
