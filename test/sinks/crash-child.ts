/**
 * A query process for the crash tests: writes batches 0..2 of a sink, then batch 3, and kills itself
 * with SIGKILL at the given step of batch 3's commit protocol (no cleanup runs, as in a real crash).
 * argv: kind ('parquet' | 'file'), output dir, crash step index.
 */

import type { CommitStep } from '../../lib/sinks/file-commit-protocol.js';
import { FileSink } from '../../lib/sinks/file-sink.js';
import { ParquetSink } from '../../lib/sinks/parquet-sink.js';
import { CRASH_BATCH, CRASH_ROWS, crashSinkOptions, eventTable, sinkContext } from './fixtures.js';

const [kind, dir, crashAt] = process.argv.slice(2);
let step = 0;
const onCommitStep = (_s: CommitStep, batchId: number) => {
  if (batchId === CRASH_BATCH && step++ === Number(crashAt)) process.kill(process.pid, 'SIGKILL');
};
const options = { ...crashSinkOptions(dir), onCommitStep };
const sink = kind === 'parquet' ? new ParquetSink(options) : new FileSink(options);
await sink.initialize(sinkContext(dir));
for (let b = 0; b <= CRASH_BATCH; b++) await sink.addBatch(b, eventTable(b, CRASH_ROWS));
