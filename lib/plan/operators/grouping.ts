import { Type, type DataType, type Dictionary, type Float, type Int, type RecordBatch, type Schema } from 'apache-arrow';
import { batchFromRows, fieldIndex, inferSchema, rowsFromBatch, valuesOf } from '../../arrow/index.js';
import { SluiceError } from '../../errors.js';
import { partitionOf, partitionsOfData } from '../../state/state-partitioner.js';
import { KeyIndex } from './key-index.js';

/** How a keyed dataset finds the key of a row and the value its functions see. */
export interface Grouping {
  /** The grouping key of a row (a user function or a column read). */
  keyOf: (row: any) => unknown;
  /** The value handed to the group functions (mapValues), or the row itself when absent. */
  toValue?: (row: any) => unknown;
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

/** The grouping keys of a batch's rows (what the engine hashes into state partitions). */
export function keysOfBatch(grouping: Grouping, batch: RecordBatch): unknown[] {
  if (grouping.column === undefined) return rowsFromBatch(batch).map(grouping.keyOf);
  const i = fieldIndex(batch.schema, grouping.column);
  if (i < 0) {
    throw new SluiceError('ANALYSIS', `groupByKey column '${grouping.column}' is not in the rows`,
      `use one of: ${batch.schema.fields.map((f) => f.name).join(', ')}`);
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
    case Type.Utf8: return true;
    case Type.Int: return (type as Int).bitWidth <= 32;
    case Type.Float: return (type as Float).precision > 0;
    case Type.Dictionary: return (type as Dictionary).dictionary.typeId === Type.Utf8;
    default: return false;
  }
}

/**
 * The state partition of each row: `partitionOf` of each key {@link keysOfBatch} returns. A utf8, integer
 * (up to 32 bits), float or utf8-dictionary key column is hashed straight from its buffers, without
 * decoding a value; any other key goes through the JS values.
 */
export function partitionsOfBatch(grouping: Grouping, batch: RecordBatch, numPartitions: number): Int32Array {
  if (grouping.column !== undefined) {
    const i = fieldIndex(batch.schema, grouping.column);
    if (i >= 0 && hashesLikeItsValues(batch.schema.fields[i].type)) return partitionsOfData(batch.data.children[i], numPartitions);
  }
  const keys = keysOfBatch(grouping, batch);
  const out = new Int32Array(keys.length);
  for (let r = 0; r < keys.length; r++) out[r] = partitionOf(keys[r], numPartitions);
  return out;
}

/** The entries of an initial state whose keys belong to `partition`. */
export function initialEntriesOf(initial: readonly (readonly [unknown, unknown])[], partition: number, numPartitions: number): (readonly [unknown, unknown])[] {
  return initial.filter(([k]) => partitionOf(k, numPartitions) === partition);
}

/**
 * Validates and copies an initial state given as a Map or an iterable of [key, state] pairs: keys
 * appear once, states are not null or undefined.
 */
export function normaliseInitialState(initial: Iterable<readonly [unknown, unknown]> | Map<unknown, unknown> | undefined, where: string): (readonly [unknown, unknown])[] {
  if (initial === undefined) return [];
  const out: (readonly [unknown, unknown])[] = [];
  const seen = new KeyIndex<true>();
  for (const entry of initial) {
    if (!Array.isArray(entry) || entry.length !== 2) {
      throw new SluiceError('BAD_OPTION', `${where}: initialState must be a Map or an array of [key, state] pairs`, "e.g. initialState: [['alice', { balance: 10 }]]");
    }
    const [key, state] = entry;
    if (state === null || state === undefined) {
      throw new SluiceError('BAD_OPTION', `${where}: the initial state of key ${JSON.stringify(key)} is ${state}`, 'leave keys without state out of initialState');
    }
    if (seen.has(key)) {
      throw new SluiceError('BAD_OPTION', `${where}: initialState has key ${JSON.stringify(key)} more than once`, 'give each key one initial state');
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
