import type { Schema } from 'apache-arrow';
import { type SchemaSpec, schemaFromSpec, schemaToSpec } from '../arrow/schema.js';
import { createSource, parseSourceUri } from '../sources/source-uri.js';
import { Dataset } from './dataset.js';
import { OptionsBuilder } from './options-builder.js';
import type { SessionState } from './session-state.js';

/**
 * Builds a streaming source, like Spark's DataStreamReader: `readStream.format('file').option(...).load(path)`.
 * Options are the source's (see the format's documentation).
 */
export class DataStreamReader extends OptionsBuilder {
  private fmt = '';

  /** @internal */
  constructor(private readonly session: SessionState) {
    super();
  }

  /** Source format: file, socket, rate, kafka, memory. */
  format(name: string): this {
    this.fmt = name;
    return this;
  }

  /** Schema of the decoded rows (json and csv formats), as a spec, a DDL string or an Arrow schema. */
  schema(spec: SchemaSpec | Schema): this {
    this.opts.schema = JSON.stringify(schemaToSpec(schemaFromSpec(spec)));
    return this;
  }

  /** The stream. `path` is the file directory (or the URI, e.g. `socket://localhost:9999`). */
  load(path?: string): Dataset {
    let format = this.fmt;
    const options = { ...this.opts };
    if (path !== undefined) {
      if (format === '' || /^[a-z]+:/.test(path)) {
        const parsed = parseSourceUri(path);
        format = format || parsed.format;
        Object.assign(options, parsed.options, this.opts);
      } else {
        options.path = path;
      }
    }
    return Dataset.fromSource(this.session, `${format}:${options.path ?? ''}`, () => createSource(format, options));
  }
}
