import * as fs from 'node:fs';
import * as path from 'node:path';
import type { ClickstreamArrival } from '../../lib/gen/clickstream.js';

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

/** Clickstream events as rows of the oracle's table (see {@link clickstreamSessionsSql}). */
export function clickstreamOracleRows(arrivals: ClickstreamArrival[]): Record<string, unknown>[] {
  return arrivals.map((a) => ({
    user_id: a.event.user_id,
    event_type: a.event.event_type,
    page_url: a.event.page_url,
    ms: a.ts,
    referrer: a.event.referrer,
    device: a.event.device.type,
    country: a.event.geo.country,
    amount: a.event.metadata.amount ?? null,
  }));
}

export const CLICKSTREAM_ORACLE_COLUMNS = {
  user_id: 'VARCHAR',
  event_type: 'VARCHAR',
  page_url: 'VARCHAR',
  ms: 'BIGINT',
  referrer: 'VARCHAR',
  device: 'VARCHAR',
  country: 'VARCHAR',
  amount: 'VARCHAR',
};

/**
 * The clickstream-sessions app's sessions by SQL: events of a user at most `gapMs` apart share a session,
 * and a session is emitted once the watermark `watermarkMs` is `closeAfterMs` (the gap plus the allowed
 * lateness) past its last event.
 */
export function clickstreamSessionsSql(
  table: string,
  closeAfterMs: number,
  watermarkMs: number,
  gapMs = 30 * 60_000,
): string {
  return `
      WITH marked AS (
        SELECT *, CASE WHEN ms - LAG(ms) OVER (PARTITION BY user_id ORDER BY ms) <= ${gapMs} THEN 0 ELSE 1 END AS starts
        FROM ${table}),
      s AS (SELECT *, SUM(starts) OVER (PARTITION BY user_id ORDER BY ms, starts DESC ROWS UNBOUNDED PRECEDING) AS sn FROM marked),
      pages AS (SELECT user_id, sn, page_url, MIN(ms) AS first_ms FROM s GROUP BY ALL),
      agg AS (
        SELECT user_id, sn, MIN(ms) AS start_ms, MAX(ms) AS end_ms, COUNT(*) AS event_count,
          COUNT(*) FILTER (WHERE event_type = 'page_view') AS page_view_count,
          COUNT(*) FILTER (WHERE event_type = 'click') AS click_count,
          COUNT(*) FILTER (WHERE event_type = 'purchase') AS purchase_count,
          first(page_url ORDER BY ms, page_url) AS entry_page,
          first(page_url ORDER BY ms DESC, page_url) AS exit_page,
          first(referrer ORDER BY ms, referrer) AS referrer,
          first(device ORDER BY ms, device) AS device_type,
          first(country ORDER BY ms, country) AS country,
          round(coalesce(SUM(TRY_CAST(amount AS DOUBLE)) FILTER (WHERE event_type = 'purchase'), 0), 2) AS revenue,
          COUNT(*) FILTER (WHERE event_type = 'purchase' AND TRY_CAST(amount AS DOUBLE) IS NULL) AS purchases_without_amount
        FROM s GROUP BY user_id, sn)
      SELECT agg.*, (SELECT list(page_url ORDER BY first_ms, page_url) FROM pages p WHERE p.user_id = agg.user_id AND p.sn = agg.sn) AS pages_visited
      FROM agg WHERE end_ms + ${closeAfterMs} <= ${watermarkMs}`;
}
