/**
 * The `file:DIR` sink: JSON lines (default) or CSV files, written exactly once per batch as every
 * {@link DirectorySink} writes them. After any crash and restart, the `*.jsonl` / `*.csv` files of the
 * directory hold every output row exactly once.
 */
import type { Table } from 'apache-arrow';
import { DirectorySink, type DirectorySinkOptions } from './directory-sink.js';
import type { FileContents } from './file-commit-protocol.js';
import { csvLines, jsonLines, TEXT_EXTENSIONS, type TextFormat } from './file-text-formats.js';
import { checkKnownOptions, choiceOption } from './sink-options.js';

/** Options of {@link FileSink}; strings are accepted for every value, as URI query parameters give them. */
export interface FileSinkOptions extends DirectorySinkOptions {
  /** `json` (JSON lines, default) or `csv` (with a header line). */
  format?: TextFormat | string;
}

const KNOWN = ['path', 'format', 'maxRowsPerFile', 'maxRecordsPerFile', 'partitionBy', 'onCommitStep'];

/** Exactly-once JSON lines or CSV output into a directory. */
export class FileSink extends DirectorySink {
  readonly description: string;
  readonly format: TextFormat;

  /** Checks the options; throws SluiceError BAD_OPTION naming the option that is wrong. */
  constructor(options: FileSinkOptions) {
    checkKnownOptions('file', options, KNOWN);
    const format = choiceOption('file', options, 'format', ['json', 'csv'] as const, 'json');
    super('file', options, TEXT_EXTENSIONS[format]);
    this.format = format;
    this.description = `FileSink[${this.path}, ${this.format}]`;
  }

  protected encode(rows: Table): FileContents {
    return this.format === 'csv' ? csvLines(rows) : jsonLines(rows);
  }
}
