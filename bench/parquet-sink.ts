/**
 * Parquet sink throughput on sluice's own batches: `rows` clickstream events (lib/gen/clickstream) as
 * Arrow batches of `batchRows` rows (built with batchFromColumns, not timed), each written as one
 * micro-batch through the sink's whole path (partitioning, encoding, commit protocol with fsyncs):
 * - ParquetSink (parquet-wasm) with snappy (default), no compression, zstd, and snappy partitioned by event_type,
 * - parquet-wasm encoding alone (no file system), to separate the writer from the protocol, also on
 *   4 columns (user_id, ts, event_type, amount), the workload the writer was chosen on,
 * - FileSink writing the same rows as JSON lines, the alternative writer runnable here.
 * parquetjs-lite, @dsnp/parquetjs and hyparquet-writer are not installed; their figures on the
 * 4-column workload, measured when the writer was chosen, are printed beside for comparison. Prints the median of `runs` runs
 * in rows/s (wall clock and per CPU-second), the output size, and the ratio of each to JSON lines (wall clock).
 *
 *   node dist/bench/parquet-sink.js [rows=1000000] [batchRows=100000] [runs=3]
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Table } from 'apache-arrow';
import { batchFromColumns, schemaFromSpec } from '../lib/arrow/index.js';
import { clickstream } from '../lib/gen/clickstream.js';
import { FileSink } from '../lib/sinks/file-sink.js';
import { encodeParquet, ParquetSink, type ParquetSinkOptions } from '../lib/sinks/parquet-sink.js';
import type { StreamSink } from '../lib/sinks/sink.js';
import { cpuSeconds, median } from './support.js';

const ROWS = Number(process.argv[2] ?? 1_000_000);
const BATCH_ROWS = Number(process.argv[3] ?? 100_000);
const RUNS = Number(process.argv[4] ?? 3);

const SCHEMA = schemaFromSpec({
  user_id: 'string',
  session_id: 'string',
  event_type: 'string',
  page_url: 'string',
  ts: 'timestamp',
  amount: 'double',
  device: 'string',
  country: 'string',
});

function makeBatches(): Table[] {
  const gen = clickstream({ count: ROWS, seed: 42, users: 10_000, timestampFormat: 'epoch-ms' });
  const tables: Table[] = [];
  for (let start = 0; start < ROWS; start += BATCH_ROWS) {
    const n = Math.min(BATCH_ROWS, ROWS - start);
    const cols: unknown[][] = SCHEMA.fields.map(() => new Array(n));
    for (let i = 0; i < n; i++) {
      const e = gen.next().value!;
      cols[0][i] = e.user_id;
      cols[1][i] = e.session_id;
      cols[2][i] = e.event_type;
      cols[3][i] = e.page_url;
      cols[4][i] = e.timestamp;
      cols[5][i] = e.metadata.amount === undefined ? null : Number(e.metadata.amount);
      cols[6][i] = e.device.type;
      cols[7][i] = e.geo.country;
    }
    tables.push(new Table([batchFromColumns(SCHEMA, cols, n)]));
  }
  return tables;
}

function dirBytes(dir: string): number {
  return (fs.readdirSync(dir, { recursive: true }) as string[])
    .map((rel) => fs.statSync(path.join(dir, rel)))
    .reduce((sum, st) => sum + (st.isFile() ? st.size : 0), 0);
}

interface Result {
  rowsPerSec: number;
  rowsPerCpuSec: number;
  mb: number;
}

async function timeSink(make: (dir: string) => StreamSink, batches: Table[]): Promise<Result> {
  const times: number[] = [];
  const cpus: number[] = [];
  let bytes = 0;
  for (let run = 0; run < RUNS; run++) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-bench-'));
    try {
      const sink = make(path.join(dir, 'out'));
      await sink.initialize({ queryId: 'bench', checkpointDir: dir, outputMode: 'append' });
      const c0 = process.cpuUsage();
      const t0 = performance.now();
      for (let b = 0; b < batches.length; b++) await sink.addBatch(b, batches[b]);
      times.push(performance.now() - t0);
      cpus.push(cpuSeconds(c0));
      bytes = dirBytes(path.join(dir, 'out'));
      await sink.close();
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }
  return { rowsPerSec: ROWS / (median(times) / 1000), rowsPerCpuSec: ROWS / median(cpus), mb: bytes / 1e6 };
}

function timeEncodeOnly(batches: readonly Table[]): Result {
  const times: number[] = [];
  const cpus: number[] = [];
  let bytes = 0;
  for (let run = 0; run < RUNS; run++) {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    bytes = batches.reduce((sum, t) => sum + encodeParquet(t, 'snappy').length, 0);
    times.push(performance.now() - t0);
    cpus.push(cpuSeconds(c0));
  }
  return { rowsPerSec: ROWS / (median(times) / 1000), rowsPerCpuSec: ROWS / median(cpus), mb: bytes / 1e6 };
}

const fmt = (r: number) => `${(r / 1e6).toFixed(2)}M rows/s`;

const batches = makeBatches();
// The first calls compile the wasm module's hot paths and grow its memory: keep them out of the runs.
encodeParquet(batches[0]);
console.log(
  `parquet sink bench: ${ROWS} clickstream rows in ${batches.length} batches of ${BATCH_ROWS}, median of ${RUNS} runs`,
);
console.log('rows/s by wall clock, and per CPU-second of this process (less sensitive to other load on the machine)');
const parquet = (options: ParquetSinkOptions) => (out: string) => new ParquetSink({ path: out, ...options });
const json = await timeSink((out) => new FileSink({ path: out }), batches);
const results: [string, Result][] = [
  ['ParquetSink snappy (default)', await timeSink(parquet({}), batches)],
  ['ParquetSink uncompressed', await timeSink(parquet({ compression: 'none' }), batches)],
  ['ParquetSink zstd', await timeSink(parquet({ compression: 'zstd' }), batches)],
  ['ParquetSink snappy, partitionBy event_type', await timeSink(parquet({ partitionBy: 'event_type' }), batches)],
  ['parquet-wasm encode only, snappy', timeEncodeOnly(batches)],
  [
    '  the same, 4 columns only',
    timeEncodeOnly(batches.map((t) => t.select(['user_id', 'ts', 'event_type', 'amount']))),
  ],
  ['FileSink JSON lines (alternative)', json],
];
for (const [name, r] of results) {
  console.log(
    `${name.padEnd(44)} ${fmt(r.rowsPerSec).padStart(16)} ${fmt(r.rowsPerCpuSec).padStart(16)}/cpu-s ` +
      `${r.mb.toFixed(1).padStart(6)} MB  ${(r.rowsPerSec / json.rowsPerSec).toFixed(2)}x JSON lines`,
  );
}
console.log(
  'not installed, measured when the writer was chosen (1M rows, 4 columns): parquetjs-lite 0.104M rows/s, ' +
    '@dsnp/parquetjs 0.22M, hyparquet-writer 0.88M (0.68M snappy), parquet-wasm 4.41M (3.47M snappy)',
);
