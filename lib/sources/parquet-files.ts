import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { type RecordBatch, type Schema, tableFromIPC } from 'apache-arrow';
import { SluiceError } from '../errors.js';

/**
 * Every row of a Parquet file, or of the `.parquet` files of a directory (in name order; names starting with
 * `.` or `_` are skipped, as Spark skips them), read with parquet-wasm.
 */
export async function readParquetFiles(location: string): Promise<{ schema: Schema; batches: RecordBatch[] }> {
  let files: string[];
  try {
    files = (await fsp.stat(location)).isFile()
      ? [location]
      : (await fsp.readdir(location))
          .filter((n) => n.endsWith('.parquet') && !n.startsWith('.') && !n.startsWith('_'))
          .sort()
          .map((n) => path.join(location, n));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    throw new SluiceError(
      'PATH_NOT_FOUND',
      `path ${location} does not exist`,
      'give a Parquet file or a directory of them',
    );
  }
  if (files.length === 0) {
    throw new SluiceError(
      'SCHEMA_REQUIRED',
      `directory ${location} has no .parquet file to read a schema from`,
      'write the static data there first',
    );
  }
  // Loaded here: compiling its WebAssembly costs every thread that imports it ~50 ms of CPU, and the worker
  // threads, which import this module with the API, never read a static side.
  const { readParquet } = await import('parquet-wasm');
  let schema: Schema | null = null;
  const batches: RecordBatch[] = [];
  for (const f of files) {
    const table = tableFromIPC(readParquet(await fsp.readFile(f)).intoIPCStream());
    schema ??= table.schema;
    batches.push(...table.batches);
  }
  return { schema: schema!, batches };
}
