/**
 * How a batch's rows are laid out in files: hive-style partition folders `k=v/k2=w` (Spark's partitionBy:
 * the partition columns leave the data files and live in the folder names, where DuckDB's hive
 * partitioning and Spark read them back) and rolling to a new file every `maxRowsPerFile` rows.
 */
import { type Data, type DataType, type RecordBatch, Schema, Table, Type } from 'apache-arrow';
import { batchOf, isValid, mkData, takeData, valuesOf } from '../arrow/index.js';
import { SluiceError } from '../errors.js';

/** The folder value Spark and Hive use for a null (or empty string) partition value. */
export const HIVE_DEFAULT_PARTITION = '__HIVE_DEFAULT_PARTITION__';

/** Rows of one partition folder. */
export interface PartitionSlice {
  /** `''` without partitioning, else `k=v[/k2=w…]`, escaped. */
  folder: string;
  /** The rows, without the partition columns. */
  table: Table;
}

const PARTITION_TYPES = new Set<Type>([Type.Utf8, Type.Int, Type.Float, Type.Bool, Type.Timestamp, Type.Date]);

function isPartitionType(type: DataType): boolean {
  if (type.typeId === Type.Dictionary) return isPartitionType((type as unknown as { dictionary: DataType }).dictionary);
  return PARTITION_TYPES.has(type.typeId);
}

/**
 * Checks `partitionBy` against the output schema: every column must exist, have a scalar type, and at
 * least one column must stay in the data files (Spark refuses the same).
 */
export function checkPartitionColumns(sink: string, schema: Schema, partitionBy: readonly string[]): void {
  const names = schema.fields.map((f) => f.name);
  for (const col of partitionBy) {
    const field = schema.fields.find((f) => f.name === col);
    if (!field) {
      throw new SluiceError(
        'BAD_OPTION',
        `option 'partitionBy' of the ${sink} sink names column '${col}', which the output does not have`,
        `the output columns are: ${names.join(', ')}`,
      );
    }
    if (!isPartitionType(field.type)) {
      throw new SluiceError(
        'BAD_OPTION',
        `option 'partitionBy' of the ${sink} sink names column '${col}' of type ${field.type}, which cannot name a folder`,
        'partition by string, number, boolean or timestamp columns',
      );
    }
  }
  if (partitionBy.length > 0 && partitionBy.length >= names.length) {
    throw new SluiceError(
      'BAD_OPTION',
      `option 'partitionBy' of the ${sink} sink uses all output columns, so the data files would be empty`,
      'leave at least one column out of partitionBy',
    );
  }
}

// Spark's ExternalCatalogUtils.escapePathName: characters that break paths or hive parsing become %XX.
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are among the escaped ones
const ESCAPED = /[\u0000-\u001f"#%'*/:=?\\\u007f{[\]^]/g;

/** A partition column name or value made safe for a folder name, as Spark escapes it. */
export function escapePathName(s: string): string {
  return s.replace(ESCAPED, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')}`);
}

function pad2(n: number): string {
  return n < 10 ? `0${n}` : String(n);
}

/** Spark's partition value text of a timestamp: `yyyy-MM-dd HH:mm:ss[.SSS]`, here in UTC. */
function timestampText(d: Date): string {
  const base =
    `${d.getUTCFullYear()}-${pad2(d.getUTCMonth() + 1)}-${pad2(d.getUTCDate())} ` +
    `${pad2(d.getUTCHours())}:${pad2(d.getUTCMinutes())}:${pad2(d.getUTCSeconds())}`;
  const ms = d.getUTCMilliseconds();
  return ms === 0 ? base : `${base}.${String(ms).padStart(3, '0').replace(/0+$/, '')}`;
}

function valueText(v: unknown): string {
  if (v === null || v === undefined || v === '') return HIVE_DEFAULT_PARTITION;
  return escapePathName(v instanceof Date ? timestampText(v) : String(v));
}

/** `name=value` folder segments of every row of one column; dictionary values are formatted once. */
function folderSegments(name: string, data: Data): string[] {
  const prefix = `${escapePathName(name)}=`;
  const n = data.length;
  const out = new Array<string>(n);
  if (data.type.typeId === Type.Dictionary) {
    const dict = valuesOf((data.dictionary as unknown as { data: Data[] }).data[0]).map((v) => prefix + valueText(v));
    const idx = data.values as Int32Array;
    const nullSegment = prefix + HIVE_DEFAULT_PARTITION;
    for (let i = 0; i < n; i++) out[i] = isValid(data, i) ? dict[idx[i]] : nullSegment;
    return out;
  }
  if (data.type.typeId === Type.Int && (data.type as unknown as { bitWidth: number }).bitWidth === 64) {
    // Exact 64-bit text: valuesOf turns int64 into (rounded) numbers.
    const vals = data.values as BigInt64Array;
    for (let i = 0; i < n; i++) out[i] = prefix + (isValid(data, i) ? String(vals[i]) : HIVE_DEFAULT_PARTITION);
    return out;
  }
  // Partition columns have few distinct values: escape each once.
  const vals = valuesOf(data);
  const seen = new Map<unknown, string>();
  for (let i = 0; i < n; i++) {
    const v = vals[i];
    const key = v instanceof Date ? v.getTime() : v;
    let segment = seen.get(key);
    if (segment === undefined) {
      segment = prefix + valueText(v);
      seen.set(key, segment);
    }
    out[i] = segment;
  }
  return out;
}

/** Rows `indices` of one column; dictionary columns keep their dictionary and gather only the indices. */
function takeColumn(data: Data, indices: readonly number[]): Data {
  if (data.type.typeId !== Type.Dictionary) return takeData(data, indices);
  const n = indices.length;
  const src = data.values as Int32Array;
  const out = new (src.constructor as Int32ArrayConstructor)(n);
  let bitmap: Uint8Array | undefined;
  let nullCount = 0;
  for (let i = 0; i < n; i++) out[i] = src[indices[i]];
  if (data.nullCount > 0) {
    bitmap = new Uint8Array((n + 7) >> 3);
    for (let i = 0; i < n; i++) {
      if (isValid(data, indices[i])) bitmap[i >> 3] |= 1 << (i & 7);
      else nullCount++;
    }
  }
  return mkData({ type: data.type, length: n, nullCount, nullBitmap: bitmap, data: out, dictionary: data.dictionary });
}

/**
 * Splits `table` by the values of `partitionBy` into one slice per folder, in first-seen order. Without
 * partition columns it is one slice with folder `''`. Empty tables give no slices. Call
 * {@link checkPartitionColumns} first.
 */
export function partitionTable(table: Table, partitionBy: readonly string[]): PartitionSlice[] {
  if (table.numRows === 0) return [];
  if (partitionBy.length === 0) return [{ folder: '', table }];
  const fields = table.schema.fields;
  const keyIdx = partitionBy.map((c) => fields.findIndex((f) => f.name === c));
  const dataIdx = fields.map((_, i) => i).filter((i) => !keyIdx.includes(i));
  const dataSchema = new Schema(
    dataIdx.map((i) => fields[i]),
    table.schema.metadata,
  );
  const groups = new Map<string, RecordBatch[]>();
  for (const batch of table.batches) {
    const n = batch.numRows;
    if (n === 0) continue;
    const columns = batch.data.children;
    const segments = keyIdx.map((k) => folderSegments(fields[k].name, columns[k]));
    const rowsOf = new Map<string, number[]>();
    for (let r = 0; r < n; r++) {
      let key = segments[0][r];
      for (let k = 1; k < segments.length; k++) key += `/${segments[k][r]}`;
      let rows = rowsOf.get(key);
      if (!rows) {
        rows = [];
        rowsOf.set(key, rows);
      }
      rows.push(r);
    }
    for (const [folder, rows] of rowsOf) {
      const children =
        rowsOf.size === 1 ? dataIdx.map((i) => columns[i]) : dataIdx.map((i) => takeColumn(columns[i], rows));
      let list = groups.get(folder);
      if (!list) {
        list = [];
        groups.set(folder, list);
      }
      list.push(batchOf(dataSchema, children, rows.length));
    }
  }
  return [...groups].map(([folder, batches]) => ({ folder, table: new Table(dataSchema, batches) }));
}

/** `table` in consecutive pieces of at most `maxRows` rows (0: no limit). */
export function rollingChunks(table: Table, maxRows: number): Table[] {
  if (maxRows <= 0 || table.numRows <= maxRows) return [table];
  const out: Table[] = [];
  for (let start = 0; start < table.numRows; start += maxRows) out.push(table.slice(start, start + maxRows));
  return out;
}
