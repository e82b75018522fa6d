import type { Dataset } from '../api/dataset.js';
import type { Session } from '../api/session.js';
import type { SchemaSpec } from '../arrow/schema.js';
import type { OutputMode } from '../sinks/output-mode.js';

/** One command-line option of an app (`sluice run <app> --name value`). */
export interface AppOption {
  type: 'string' | 'number' | 'boolean' | 'duration';
  describe: string;
  default?: string | number | boolean;
  choices?: readonly (string | number)[];
}

/** A named input of an app; `--source NAME=URI` (or just `--source URI` for the first) replaces the default. */
export interface AppInput {
  describe: string;
  /**
   * Source URI used when the user gives none, e.g. `socket://localhost:9999`, or `sampleData('bank')` for
   * sample data shipped with sluice. A relative `file:` path is relative to the directory sluice runs in.
   */
  default: string;
  /** Decoding when the URI does not say (`format=json|csv|text`). */
  format?: 'json' | 'csv' | 'text';
  /** Schema of the decoded rows (json/csv). */
  schema?: SchemaSpec;
}

/** A named output of an app; `--sink NAME=URI` (or just `--sink URI` for the first) replaces the default. */
export interface AppOutput {
  describe: string;
  /** Sink URI used when the user gives none, e.g. `console:`. */
  default: string;
  outputMode: OutputMode;
  /** This output receives the rows that the query of output `lateOf` finds behind its watermark (a dead-letter output). */
  lateOf?: string;
  /**
   * The column that is the natural key of the rows (an account, a user). A Kafka sink keys its records by it
   * unless the sink URI names a `keyColumn`, so one key's records land on one partition, in order.
   */
  key?: string;
}

/** What an app's build function receives. */
export interface AppContext<O> {
  session: Session;
  /** Parsed and validated option values (durations in milliseconds). */
  options: O;
  /** The stream of a declared input. */
  input<T = Record<string, unknown>>(name: string): Dataset<T>;
}

/**
 * An app: a module whose default export is `defineApp({...})`. Worker threads import the same module and
 * call `build` again to find the user functions, so `build` must be deterministic: the same options must
 * build the same query, with no I/O and no randomness.
 */
export interface AppDefinition<O = Record<string, unknown>> {
  name: string;
  /** One line for `sluice apps`. */
  description: string;
  options?: Record<string, AppOption>;
  inputs: Record<string, AppInput>;
  outputs: Record<string, AppOutput>;
  /** Builds one Dataset per declared output. */
  build(ctx: AppContext<O>): Record<string, Dataset<unknown>>;
}

/** Declares an app (identity function that gives type checking). */
export function defineApp<O = Record<string, unknown>>(def: AppDefinition<O>): AppDefinition<O> {
  return def;
}
