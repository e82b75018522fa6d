/**
 * The `file:DIR` sink: JSON lines (default) or CSV files, written exactly once per batch through the
 * shared {@link FileCommitProtocol}. After any crash and restart, the `*.jsonl` / `*.csv` files of the
 * directory hold every output row exactly once.
 */
import type { Table } from 'apache-arrow';
import { SluiceError } from '../errors.js';
import { FileCommitProtocol, type CommitObserver } from './file-commit-protocol.js';
import { checkPartitionColumns, partitionTable, rollingChunks } from './file-layout.js';
import { TEXT_EXTENSIONS, csvLines, jsonLines, type TextFormat } from './file-text-formats.js';
import {
  checkKnownOptions, choiceOption, integerOption, nameListOption, stringOption, type SinkOptionValues,
} from './sink-options.js';
import type { SinkContext, StreamSink } from './sink.js';

/** Options of {@link FileSink}; strings are accepted for every value, as URI query parameters give them. */
export interface FileSinkOptions extends SinkOptionValues {
  /** The output directory (required). */
  path?: string;
  /** `json` (JSON lines, default) or `csv` (with a header line). */
  format?: TextFormat | string;
  /** Rows per file before a new file is started; 0 (default) for one file per partition and batch. */
  maxRowsPerFile?: number | string;
  /** Spark's name for `maxRowsPerFile`. */
  maxRecordsPerFile?: number | string;
  /** Columns that become hive-style folders `col=value/`, as a list or comma-separated. */
  partitionBy?: string | string[];
  /** Called at each step of the commit protocol (logging; crash tests). */
  onCommitStep?: CommitObserver;
}

const KNOWN = ['path', 'format', 'maxRowsPerFile', 'maxRecordsPerFile', 'partitionBy', 'onCommitStep'];

/** Reads `maxRowsPerFile` (or Spark's `maxRecordsPerFile`) for the file-based sinks. */
export function maxRowsPerFileOption(sink: string, options: SinkOptionValues): number {
  if (options.maxRowsPerFile !== undefined && options.maxRecordsPerFile !== undefined) {
    throw new SluiceError('BAD_OPTION', `the ${sink} sink got both 'maxRowsPerFile' and 'maxRecordsPerFile'`,
      'they are the same setting: give one of them');
  }
  const key = options.maxRecordsPerFile !== undefined ? 'maxRecordsPerFile' : 'maxRowsPerFile';
  return integerOption(sink, options, key, 0, 0);
}

/** Reads the required `path` option of a file-based sink. */
export function outputPathOption(sink: string, options: SinkOptionValues): string {
  const dir = stringOption(sink, options, 'path');
  if (dir === undefined) {
    throw new SluiceError('BAD_OPTION', `the ${sink} sink needs option 'path', the output directory`,
      `write ${sink}:DIR, or .option('path', DIR)`);
  }
  return dir;
}

/** Refuses complete mode: every batch would append the whole result table again (Spark refuses it too). */
export function checkAppendableOutput(sink: string, ctx: SinkContext): void {
  if (ctx.outputMode === 'complete') {
    throw new SluiceError('UNSUPPORTED_OUTPUT_MODE', `the ${sink} sink cannot write output mode 'complete'`,
      "use outputMode 'append' or 'update' (each batch's changed rows are appended), or a console, memory or foreachBatch sink");
  }
}

/** Exactly-once JSON lines or CSV output into a directory. */
export class FileSink implements StreamSink {
  readonly description: string;
  /** The output directory, absolute. */
  readonly path: string;
  readonly format: TextFormat;
  readonly maxRowsPerFile: number;
  readonly partitionBy: readonly string[];
  private readonly protocol: FileCommitProtocol;

  /** Checks the options; throws SluiceError BAD_OPTION naming the option that is wrong. */
  constructor(options: FileSinkOptions) {
    checkKnownOptions('file', options, KNOWN);
    this.format = choiceOption('file', options, 'format', ['json', 'csv'] as const, 'json');
    this.maxRowsPerFile = maxRowsPerFileOption('file', options);
    this.partitionBy = nameListOption('file', options, 'partitionBy');
    this.protocol = new FileCommitProtocol(outputPathOption('file', options), 'file',
      { extension: TEXT_EXTENSIONS[this.format], onStep: options.onCommitStep });
    this.path = this.protocol.dir;
    this.description = `FileSink[${this.path}, ${this.format}]`;
  }

  /** Cleans up what a crash left in the directory (see FileCommitProtocol.recover). */
  async initialize(ctx: SinkContext): Promise<void> {
    checkAppendableOutput('file', ctx);
    await this.protocol.recover(ctx.queryId);
  }

  async addBatch(batchId: number, data: Table): Promise<void> {
    checkPartitionColumns('file', data.schema, this.partitionBy);
    const encode = this.format === 'csv' ? csvLines : jsonLines;
    await this.protocol.writeBatch(batchId, async (files) => {
      for (const { folder, table } of partitionTable(data, this.partitionBy)) {
        for (const chunk of rollingChunks(table, this.maxRowsPerFile)) await files.add(folder, encode(chunk), chunk.numRows);
      }
    });
  }

  async close(): Promise<void> {
    // Every batch is durable when addBatch returns; there is nothing open to release.
  }
}
