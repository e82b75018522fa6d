import type { Schema } from 'apache-arrow';
import { schemaToSpec, type SchemaSpec, schemaFromSpec } from '../arrow/schema.js';
import { createSource, parseSourceUri } from '../sources/source-uri.js';
import { Dataset } from './dataset.js';
import type { Session } from './session.js';

/** Builds a streaming source, like Spark's DataStreamReader: `readStream.format('file').option(...).load(path)`. */
export class DataStreamReader {
  private fmt = '';
  private readonly opts: Record<string, string> = {};

  /** @internal */
  constructor(private readonly session: Session) {}

  /** Source format: file, socket, rate, kafka, memory. */
  format(name: string): this {
    this.fmt = name;
    return this;
  }

  /** One source option (strings, numbers and booleans are accepted). */
  option(key: string, value: string | number | boolean): this {
    this.opts[key] = String(value);
    return this;
  }

  /** Several options at once. */
  options(values: Record<string, string | number | boolean>): this {
    for (const [k, v] of Object.entries(values)) this.option(k, v);
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
