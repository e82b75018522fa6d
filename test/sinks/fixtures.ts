/** Data and contexts shared by the sink tests and the crash child; no DuckDB here, the child stays light. */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  Dictionary,
  Field,
  Int32,
  makeData,
  makeVector,
  RecordBatch,
  Schema,
  Struct,
  Table,
  Utf8,
  vectorFromArray,
} from 'apache-arrow';
import { batchFromColumns, schemaFromSpec } from '../../lib/arrow/index.js';
import type { SinkContext } from '../../lib/sinks/sink.js';

/** A fresh temporary directory; remove it with {@link removeDir}. */
export function tempDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-'));
}

export function removeDir(dir: string): void {
  fs.rmSync(dir, { recursive: true, force: true });
}

export function sinkContext(dir: string, queryId = 'query-1'): SinkContext {
  return { queryId, checkpointDir: path.join(dir, 'ckpt-sinks'), outputMode: 'append' };
}

/** The schema of {@link eventTable}: one column of each kind the sinks must map. */
export const EVENT_SCHEMA = schemaFromSpec({
  id: 'long',
  user: 'string',
  grp: 'string',
  ts: 'timestamp',
  amount: 'double',
  pages: ['string'],
  device: { type: 'string', n: 'int' },
});

/**
 * Deterministic rows of batch `batchId`: ids `batchId * 1000 + i`, `grp` cycling over `groups` values,
 * with nulls sprinkled in every nullable kind of column.
 */
export function eventTable(batchId: number, rows: number, groups = 2): Table {
  const id: number[] = [];
  const user: (string | null)[] = [];
  const grp: string[] = [];
  const ts: (number | null)[] = [];
  const amount: (number | null)[] = [];
  const pages: (string[] | null)[] = [];
  const device: ({ type: string; n: number } | null)[] = [];
  for (let i = 0; i < rows; i++) {
    id.push(batchId * 1000 + i);
    user.push(i % 7 === 3 ? null : `u${i % 13}`);
    grp.push(`g${i % groups}`);
    ts.push(i % 11 === 5 ? null : Date.UTC(2024, 4, 1, 10) + batchId * 60_000 + i * 250);
    amount.push(i % 9 === 4 ? null : ((i * 37) % 1000) / 8);
    pages.push(i % 5 === 2 ? null : Array.from({ length: i % 3 }, (_, k) => `/p/${i + k}`));
    device.push(i % 6 === 1 ? null : { type: i % 2 ? 'mobile' : 'desktop', n: i });
  }
  return new Table([batchFromColumns(EVENT_SCHEMA, [id, user, grp, ts, amount, pages, device], rows)]);
}

/** Two record batches whose dictionaries differ, as two upstream tasks produce them. */
export function dictionaryTable(): Table {
  const type = new Dictionary(new Utf8(), new Int32(), 0);
  const schema = new Schema([new Field('event', type, true), new Field('n', new Int32(), true)]);
  const batch = (words: string[], idx: number[]) =>
    new RecordBatch(
      schema,
      makeData({
        type: new Struct(schema.fields),
        length: idx.length,
        nullCount: 0,
        children: [
          makeData({
            type,
            length: idx.length,
            data: Int32Array.from(idx),
            dictionary: makeVector(vectorFromArray(words, new Utf8())),
          }),
          makeData({ type: new Int32(), length: idx.length, data: Int32Array.from(idx.map((_, i) => i)) }),
        ],
      }),
    );
  return new Table([batch(['click', 'view'], [1, 0, 1]), batch(['buy', 'click'], [0, 1])]);
}

// The sink set-up shared by the crash tests and their child process.

/** The batch during which the child crashes. */
export const CRASH_BATCH = 3;
/** Rows per batch: with 2 groups and 30 rows per file, each batch has 4 files. */
export const CRASH_ROWS = 100;
/** Steps of one batch: 4 staged, committed, 4 published, done. */
export const CRASH_STEPS = 10;

export function crashSinkOptions(dir: string): { path: string; partitionBy: string; maxRowsPerFile: number } {
  return { path: path.join(dir, 'out'), partitionBy: 'grp', maxRowsPerFile: 30 };
}
