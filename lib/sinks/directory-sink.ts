/**
 * What the directory sinks (file, parquet) share: the options for where and how rows are laid out, and
 * the exactly-once write of each batch through the {@link FileCommitProtocol}, partitioned into hive-style
 * folders and rolled by row count. A sink adds its own file encoding.
 */
import type { Table } from 'apache-arrow';
import { SluiceError } from '../errors.js';
import { type CommitObserver, FileCommitProtocol, type FileContents } from './file-commit-protocol.js';
import { checkPartitionColumns, partitionTable, rollingChunks } from './file-layout.js';
import type { SinkContext, StreamSink } from './sink.js';
import { integerOption, nameListOption, type SinkOptionValues, stringOption } from './sink-options.js';

/** Options every directory sink takes; strings are accepted for every value, as URI query parameters give them. */
export interface DirectorySinkOptions extends SinkOptionValues {
  /** The output directory (required). */
  path?: string;
  /** Rows per file before a new file is started; 0 (default) for one file per partition and batch. */
  maxRowsPerFile?: number | string;
  /** Spark's name for `maxRowsPerFile`. */
  maxRecordsPerFile?: number | string;
  /** Columns that become hive-style folders `col=value/`, as a list or comma-separated. */
  partitionBy?: string | string[];
  /** Called at each step of the commit protocol (logging; crash tests). */
  onCommitStep?: CommitObserver;
}

/** Reads `maxRowsPerFile` (or Spark's `maxRecordsPerFile`). */
function maxRowsPerFileOption(sink: string, options: SinkOptionValues): number {
  if (options.maxRowsPerFile !== undefined && options.maxRecordsPerFile !== undefined) {
    throw new SluiceError(
      'BAD_OPTION',
      `the ${sink} sink got both 'maxRowsPerFile' and 'maxRecordsPerFile'`,
      'they are the same setting: give one of them',
    );
  }
  const key = options.maxRecordsPerFile !== undefined ? 'maxRecordsPerFile' : 'maxRowsPerFile';
  return integerOption(sink, options, key, 0, 0);
}

/** Reads the required `path` option. */
function outputPathOption(sink: string, options: SinkOptionValues): string {
  const dir = stringOption(sink, options, 'path');
  if (dir === undefined) {
    throw new SluiceError(
      'BAD_OPTION',
      `the ${sink} sink needs option 'path', the output directory`,
      `write ${sink}:DIR, or .option('path', DIR)`,
    );
  }
  return dir;
}

/** Exactly-once output into a directory; a subclass encodes the rows of one file. */
export abstract class DirectorySink implements StreamSink {
  abstract readonly description: string;
  /** The output directory, absolute. */
  readonly path: string;
  readonly maxRowsPerFile: number;
  readonly partitionBy: readonly string[];
  private readonly protocol: FileCommitProtocol;

  /**
   * Checks the shared options (the subclass has checked that none is unknown); throws SluiceError
   * BAD_OPTION naming the option that is wrong. `sink` names the sink in errors and commit logs.
   */
  protected constructor(
    private readonly sink: string,
    options: DirectorySinkOptions,
    extension: string,
  ) {
    this.maxRowsPerFile = maxRowsPerFileOption(sink, options);
    this.partitionBy = nameListOption(sink, options, 'partitionBy');
    this.protocol = new FileCommitProtocol(outputPathOption(sink, options), sink, {
      extension,
      onStep: options.onCommitStep,
    });
    this.path = this.protocol.dir;
  }

  /** The contents of one file holding `rows`. */
  protected abstract encode(rows: Table): FileContents;

  /**
   * Refuses complete mode (every batch would append the whole result table again; Spark refuses it too)
   * and cleans up what a crash left in the directory (see FileCommitProtocol.recover).
   */
  async initialize(ctx: SinkContext): Promise<void> {
    if (ctx.outputMode === 'complete') {
      throw new SluiceError(
        'UNSUPPORTED_OUTPUT_MODE',
        `the ${this.sink} sink cannot write output mode 'complete'`,
        "use outputMode 'append' or 'update' (each batch's changed rows are appended), or a console, memory or foreachBatch sink",
      );
    }
    await this.protocol.recover(ctx.queryId);
  }

  async addBatch(batchId: number, data: Table): Promise<void> {
    checkPartitionColumns(this.sink, data.schema, this.partitionBy);
    await this.protocol.writeBatch(batchId, async (files) => {
      for (const { folder, table } of partitionTable(data, this.partitionBy)) {
        for (const chunk of rollingChunks(table, this.maxRowsPerFile))
          await files.add(folder, this.encode(chunk), chunk.numRows);
      }
    });
  }

  async close(): Promise<void> {
    // Every batch is durable when addBatch returns; there is nothing open to release.
  }
}
