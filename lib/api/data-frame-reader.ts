import type { Schema } from 'apache-arrow';
import { type SchemaSpec, schemaFromSpec, schemaToSpec } from '../arrow/schema.js';
import { SluiceError } from '../errors.js';
import type { FileSource } from '../sources/file-source.js';
import { readParquetFiles } from '../sources/parquet-files.js';
import { createSource } from '../sources/source-uri.js';
import { Dataset } from './dataset.js';
import { OptionsBuilder } from './options-builder.js';
import type { SessionState } from './session-state.js';

const FORMATS = ['json', 'csv', 'text', 'parquet'] as const;
type BatchFormat = (typeof FORMATS)[number];

/**
 * Reads static data, like Spark's DataFrameReader: `session.read.format('json').load(path)` or
 * `session.read.json(path)`. The result is a static Dataset, for the static side of a stream-static join: it is
 * read when a query using it starts, so a changed file takes effect when the query is started again. json and
 * csv take the file source's options (schema, header, sep, mode, ...); the path is a file or a directory.
 */
export class DataFrameReader extends OptionsBuilder {
  private fmt: BatchFormat = 'parquet';

  /** @internal */
  constructor(private readonly session: SessionState) {
    super();
  }

  /** Data format: json (JSON lines), csv, text or parquet (Spark's default). */
  format(name: string): this {
    const f = String(name).toLowerCase() as BatchFormat;
    if (!FORMATS.includes(f)) {
      throw new SluiceError(
        'BAD_OPTION',
        `session.read cannot read format '${name}'`,
        `use one of: ${FORMATS.join(', ')}`,
      );
    }
    this.fmt = f;
    return this;
  }

  /** Schema of the rows (json and csv), as a spec, a DDL string or an Arrow schema; inferred when not given. */
  schema(spec: SchemaSpec | Schema): this {
    this.opts.schema = JSON.stringify(schemaToSpec(schemaFromSpec(spec)));
    return this;
  }

  /** The static Dataset of the file or directory at `path`. */
  load(path: string): Dataset {
    if (typeof path !== 'string' || path === '') {
      throw new SluiceError('BAD_OPTION', 'session.read needs a path', "e.g. session.read.json('data/users.jsonl')");
    }
    const format = this.fmt;
    const options = { ...this.opts, path };
    // Options are checked now, as the streaming reader checks them, though the files are read at query start.
    const source = format === 'parquet' ? null : (createSource(format, options) as FileSource);
    return Dataset.fromRelation(this.session, `${format}:${path}`, () =>
      source ? source.readAll() : readParquetFiles(path),
    );
  }

  /** `format('json').load(path)`: JSON lines. */
  json(path: string): Dataset {
    return this.format('json').load(path);
  }

  /** `format('csv').load(path)`. */
  csv(path: string): Dataset {
    return this.format('csv').load(path);
  }

  /** `format('text').load(path)`: one string column named value per line. */
  text(path: string): Dataset {
    return this.format('text').load(path);
  }

  /** `format('parquet').load(path)`. */
  parquet(path: string): Dataset {
    return this.format('parquet').load(path);
  }
}
