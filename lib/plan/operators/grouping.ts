import {
  type DataType,
  type Dictionary,
  type Float,
  type Int,
  type RecordBatch,
  type Schema,
  Type,
} from 'apache-arrow';
import {
  batchFromRows,
  fieldIndex,
  inferSchema,
  isValid,
  keepMadeRows,
  rowBuilder,
  rowsFromBatch,
  takeMadeRows,
  textBuffer,
  valuesOf,
} from '../../arrow/index.js';
import { SluiceError } from '../../errors.js';
import { partitionOf, partitionsOfData } from '../../state/state-partitioner.js';
import { KeyIndex } from './key-index.js';

/** How a keyed dataset finds the key of a row and the value its functions see. */
export interface Grouping {
  /** The grouping key of a row (a user function or a column read). */
  keyOf: (row: Record<string, unknown>) => unknown;
  /** The value handed to the group functions (mapValues), or the row itself when absent. */
  toValue?: (row: Record<string, unknown>) => unknown;
  /** Set when the key is a column's value: keys are then read from the column, not from row objects. */
  column?: string;
}

/** One key's rows in a batch, in source order. */
export interface Group {
  key: unknown;
  values: unknown[];
}

/**
 * Groups a partition's rows by key: groups in order of their key's first appearance and rows in source
 * order within a group, so the calls an operator makes are the same in every run and thread count.
 */
export function groupRows(grouping: Grouping, rowsPerBatch: Iterable<Record<string, unknown>[]>): KeyIndex<Group> {
  const groups = new KeyIndex<Group>();
  const { keyOf, toValue } = grouping;
  for (const rows of rowsPerBatch) {
    for (const row of rows) {
      const key = keyOf(row);
      groups.getOrCreate(key, () => ({ key, values: [] })).values.push(toValue ? toValue(row) : row);
    }
  }
  return groups;
}

/** Rows `keep[i] === 1` of `rows`, or all of them without a mask. */
function keptRows(rows: Record<string, unknown>[], keep: Uint8Array | null | undefined): Record<string, unknown>[] {
  if (!keep) return rows;
  const out: Record<string, unknown>[] = [];
  for (let i = 0; i < rows.length; i++) if (keep[i] === 1) out.push(rows[i]);
  return out;
}

/** Placeholder of a group's values until their count is known (saves an array per group). */
const NO_VALUES: unknown[] = [];

/**
 * Groups the rows of a partition's batches by key, like {@link groupRows} over their rows (same groups,
 * same order; `keep`, per batch, masks out rows such as late ones). When the key is a utf8 column, rows
 * are grouped by the key's bytes before any row object exists: a hash table over the bytes (no JS Map,
 * no closure per row), one string per distinct key shared by its rows (no decode per row), and each
 * group's values array allocated at its final length. (Arrow utf8 is valid UTF-8, so equal bytes are
 * equal strings.)
 */
export function groupBatches(
  grouping: Grouping,
  batches: readonly RecordBatch[],
  keep?: readonly (Uint8Array | null)[],
): KeyIndex<Group> {
  const column = grouping.column;
  const keyColumns = column === undefined ? [] : batches.map((b) => fieldIndex(b.schema, column));
  if (
    column === undefined ||
    batches.some((b, k) => keyColumns[k] < 0 || b.schema.fields[keyColumns[k]].type.typeId !== Type.Utf8)
  ) {
    return groupRows(
      grouping,
      batches.map((b, k) => keptRows(takeMadeRows(b) ?? rowsFromBatch(b), keep?.[k])),
    );
  }
  let total = 0;
  for (const b of batches) total += b.numRows;
  let size = 16;
  while (size < total * 2) size *= 2;
  const table = new Int32Array(size);
  const mask = size - 1;
  // Per group (at most one per row): hash, and where its key's bytes are (batch, start, end) to compare rows with.
  const gHash = new Int32Array(total);
  const gBatch = new Int32Array(total);
  const gStart = new Int32Array(total);
  const gEnd = new Int32Array(total);
  const counts = new Int32Array(total);
  const keyBytes = batches.map((b, k) => b.data.children[keyColumns[k]].values as Uint8Array);
  const groups: Group[] = [];
  let nullGroup = -1;
  const groupOf = batches.map((b) => new Int32Array(b.numRows));
  for (let k = 0; k < batches.length; k++) {
    const data = batches[k].data.children[keyColumns[k]];
    const offsets = data.valueOffsets as Int32Array;
    const bytes = keyBytes[k];
    const text = textBuffer(bytes);
    const hasNulls = data.nullCount > 0;
    const keepK = keep?.[k];
    const gid = groupOf[k];
    for (let r = 0; r < data.length; r++) {
      if (keepK && keepK[r] !== 1) {
        gid[r] = -1;
        continue;
      }
      if (hasNulls && !isValid(data, r)) {
        if (nullGroup < 0) {
          nullGroup = groups.length;
          groups.push({ key: null, values: NO_VALUES });
          gBatch[nullGroup] = -1;
        }
        gid[r] = nullGroup;
        counts[nullGroup]++;
        continue;
      }
      const start = offsets[r];
      const end = offsets[r + 1];
      const len = end - start;
      let h = 0x811c9dc5 | 0; // int32 like Math.imul, so an empty key (no bytes mixed in) matches its stored hash
      for (let i = start; i < end; i++) h = Math.imul(h ^ bytes[i], 0x01000193);
      let slot = h & mask;
      let g = -1;
      for (let e = table[slot]; e !== 0; e = table[slot]) {
        const c = e - 1;
        if (gHash[c] === h && gEnd[c] - gStart[c] === len) {
          const other = keyBytes[gBatch[c]];
          const os = gStart[c] - start;
          let i = start;
          while (i < end && other[os + i] === bytes[i]) i++;
          if (i === end) {
            g = c;
            break;
          }
        }
        slot = (slot + 1) & mask;
      }
      if (g < 0) {
        g = groups.length;
        table[slot] = g + 1;
        groups.push({ key: text.utf8Slice(start, end), values: NO_VALUES });
        gHash[g] = h;
        gBatch[g] = k;
        gStart[g] = start;
        gEnd[g] = end;
      }
      gid[r] = g;
      counts[g]++;
    }
  }
  for (let g = 0; g < groups.length; g++) groups[g].values = new Array(counts[g]);
  const filled = new Int32Array(groups.length);
  const { toValue } = grouping;
  for (let k = 0; k < batches.length; k++) {
    const batch = batches[k];
    const make = rowBuilder(batch.schema.fields.map((f) => f.name));
    const gid = groupOf[k];
    // The key column's values are the groups' strings, not a decode per row.
    const keys = new Array<unknown>(batch.numRows);
    for (let r = 0; r < batch.numRows; r++) if (gid[r] >= 0) keys[r] = groups[gid[r]].key;
    const cols = batch.data.children.map((c, i) => (i === keyColumns[k] ? keys : valuesOf(c)));
    for (let r = 0; r < batch.numRows; r++) {
      const g = gid[r];
      if (g < 0) continue;
      const row = make(cols, r);
      groups[g].values[filled[g]++] = toValue ? toValue(row) : row;
    }
  }
  return KeyIndex.of(groups, (g) => g.key);
}

/** The grouping keys of a batch's rows (what the engine hashes into state partitions). */
export function keysOfBatch(grouping: Grouping, batch: RecordBatch): unknown[] {
  if (grouping.column === undefined) return rowsFromBatch(batch).map(grouping.keyOf);
  const i = fieldIndex(batch.schema, grouping.column);
  if (i < 0) {
    throw new SluiceError(
      'ANALYSIS',
      `groupByKey column '${grouping.column}' is not in the rows`,
      `use one of: ${batch.schema.fields.map((f) => f.name).join(', ')}`,
    );
  }
  return valuesOf(batch.data.children[i]);
}

/**
 * Whether the vectorised hash of a column of this type (partitionsOfData, from the Arrow buffers) equals
 * the hash of the JS values {@link keysOfBatch} reads from it. Not so for 64-bit integers (read as
 * numbers, hashed as bigints from the buffers), half floats (hashed as their bits) and other types.
 */
function hashesLikeItsValues(type: DataType): boolean {
  switch (type.typeId) {
    case Type.Utf8:
      return true;
    case Type.Int:
      return (type as Int).bitWidth <= 32;
    case Type.Float:
      return (type as Float).precision > 0;
    case Type.Dictionary:
      return (type as Dictionary).dictionary.typeId === Type.Utf8;
    default:
      return false;
  }
}

/**
 * The state partition of each row: `partitionOf` of each key {@link keysOfBatch} returns. A utf8, integer
 * (up to 32 bits), float or utf8-dictionary key column is hashed straight from its buffers, without
 * decoding a value; any other key goes through the JS values. The rows a key function was called on are kept
 * with the batch (see lib/arrow/batch-rows.ts), for its state partition to hand to the group functions.
 */
export function partitionsOfBatch(grouping: Grouping, batch: RecordBatch, numPartitions: number): Int32Array {
  if (grouping.column !== undefined) {
    const i = fieldIndex(batch.schema, grouping.column);
    if (i >= 0 && hashesLikeItsValues(batch.schema.fields[i].type))
      return partitionsOfData(batch.data.children[i], numPartitions);
  }
  let keys: unknown[];
  if (grouping.column === undefined) {
    // The rows the key function needs are the rows the state partitions hand to the group functions.
    const rows = rowsFromBatch(batch);
    keepMadeRows(batch, rows);
    keys = rows.map(grouping.keyOf);
  } else keys = keysOfBatch(grouping, batch);
  const out = new Int32Array(keys.length);
  for (let r = 0; r < keys.length; r++) out[r] = partitionOf(keys[r], numPartitions);
  return out;
}

/** The entries of an initial state whose keys belong to `partition`. */
export function initialEntriesOf(
  initial: readonly (readonly [unknown, unknown])[],
  partition: number,
  numPartitions: number,
): (readonly [unknown, unknown])[] {
  return initial.filter(([k]) => partitionOf(k, numPartitions) === partition);
}

/**
 * Validates and copies an initial state given as a Map or an iterable of [key, state] pairs: keys
 * appear once, states are not null or undefined.
 */
export function normaliseInitialState(
  initial: Iterable<readonly [unknown, unknown]> | Map<unknown, unknown> | undefined,
  where: string,
): (readonly [unknown, unknown])[] {
  if (initial === undefined) return [];
  const out: (readonly [unknown, unknown])[] = [];
  const seen = new KeyIndex<true>();
  for (const entry of initial) {
    if (!Array.isArray(entry) || entry.length !== 2) {
      throw new SluiceError(
        'BAD_OPTION',
        `${where}: initialState must be a Map or an array of [key, state] pairs`,
        "e.g. initialState: [['alice', { balance: 10 }]]",
      );
    }
    const [key, state] = entry;
    if (state === null || state === undefined) {
      throw new SluiceError(
        'BAD_OPTION',
        `${where}: the initial state of key ${JSON.stringify(key)} is ${state}`,
        'leave keys without state out of initialState',
      );
    }
    if (seen.has(key)) {
      throw new SluiceError(
        'BAD_OPTION',
        `${where}: initialState has key ${JSON.stringify(key)} more than once`,
        'give each key one initial state',
      );
    }
    seen.getOrCreate(key, () => true);
    out.push([key, state]);
  }
  return out;
}

/** Output rows as a record batch of the declared schema, or of one inferred from the rows. */
export function outputBatch(rows: Record<string, unknown>[], schema: Schema | null): RecordBatch[] {
  if (rows.length === 0) return [];
  return [batchFromRows(rows, schema ?? inferSchema(rows))];
}
