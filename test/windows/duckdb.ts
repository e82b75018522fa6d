import * as fs from 'node:fs';
import * as path from 'node:path';

/** A DuckDB in-memory database for oracle queries. */
export interface Oracle {
  /** Rows as plain JSON values (BIGINT as numbers, lists as arrays, structs as objects). */
  query(sql: string): Promise<Record<string, unknown>[]>;
  /** Loads rows (plain objects of numbers and strings) into a table through a JSON-lines file. */
  load(table: string, rows: Record<string, unknown>[], columns: Record<string, string>, dir: string): Promise<void>;
  close(): void;
}

function plain(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(plain);
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, plain(x)]));
  if (typeof v === 'string' && /^-?\d+$/.test(v) && v.length < 16) return Number(v);
  return v;
}

export async function openOracle(): Promise<Oracle> {
  const { DuckDBInstance } = await import('@duckdb/node-api');
  const db = await DuckDBInstance.create(':memory:');
  const c = await db.connect();
  return {
    async query(sql) {
      const r = await c.runAndReadAll(sql);
      return r.getRowObjectsJson().map((row) => plain(row) as Record<string, unknown>);
    },
    async load(table, rows, columns, dir) {
      const file = path.join(dir, `${table}.jsonl`);
      fs.writeFileSync(file, `${rows.map((r) => JSON.stringify(r)).join('\n')}\n`);
      const cols = Object.entries(columns)
        .map(([k, t]) => `'${k}': '${t}'`)
        .join(', ');
      await c.run(
        `CREATE TABLE ${table} AS SELECT * FROM read_json('${file}', format = 'newline_delimited', columns = {${cols}})`,
      );
    },
    close() {
      c.closeSync();
      db.closeSync();
    },
  };
}
