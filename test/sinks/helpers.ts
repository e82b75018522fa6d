/** File listings and DuckDB read-back for the sink tests. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { type DuckDBConnection, DuckDBInstance } from '@duckdb/node-api';

/** Files under `dir`, relative, `/`-separated, sorted; hidden files included. */
export function listFiles(dir: string): string[] {
  return (fs.readdirSync(dir, { recursive: true }) as string[])
    .filter((rel) => fs.statSync(path.join(dir, rel)).isFile())
    .map((rel) => rel.split(path.sep).join('/'))
    .sort();
}

/** What `cat <dir>/**\/*.<ext>` reads: the non-hidden files with that extension, outside the log. */
export function visibleDataFiles(dir: string, ext: string): string[] {
  return listFiles(dir).filter(
    (rel) => !rel.split('/').some((s) => s.startsWith('.') || s === '_sluice_log') && rel.endsWith(ext),
  );
}

/** All JSON lines of the visible `.jsonl` files, parsed. */
export function readJsonLines(dir: string): Record<string, unknown>[] {
  return visibleDataFiles(dir, '.jsonl').flatMap((rel) =>
    fs
      .readFileSync(path.join(dir, rel), 'utf8')
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => JSON.parse(l) as Record<string, unknown>),
  );
}

let connection: Promise<DuckDBConnection> | undefined;

/** Rows of a DuckDB query, as JS values (BIGINT as bigint, timestamps as Date). One in-memory database per test run. */
export async function duckdb(sql: string): Promise<Record<string, unknown>[]> {
  connection ??= DuckDBInstance.create(':memory:').then((db) => db.connect());
  const reader = await (await connection).runAndReadAll(sql);
  return reader.getRowObjectsJS() as Record<string, unknown>[];
}

/** Column names and DuckDB types of a query's result. */
export async function duckdbTypes(sql: string): Promise<Record<string, string>> {
  connection ??= DuckDBInstance.create(':memory:').then((db) => db.connect());
  const reader = await (await connection).runAndReadAll(sql);
  const names = reader.columnNames();
  const types = reader.columnTypes().map(String);
  return Object.fromEntries(names.map((n, i) => [n, types[i]]));
}

/** `read_parquet` over every Parquet file a directory listing finds, as the issue's readers do. */
export function parquetGlob(dir: string): string {
  return `read_parquet('${path.join(dir, '**', '*.parquet').replace(/'/g, "''")}')`;
}
