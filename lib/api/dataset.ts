import type { Schema } from 'apache-arrow';
import { SluiceError } from '../errors.js';
import { schemaFromSpec, type SchemaSpec } from '../arrow/schema.js';
import type { PlanNode, RowFunction } from '../plan/logical-plan.js';
import type { StatefulOperator } from '../plan/stateful-operator.js';
import type { StreamSource } from '../sources/source.js';
import { Column, col } from './column.js';
import { parseDuration } from '../util/duration.js';
import type { Session } from './session.js';
import { DataStreamWriter } from './stream-writer.js';
import { RelationalGroupedDataset, type GroupingLike } from './relational-grouped-dataset.js';
import { KeyValueGroupedDataset } from './grouped-dataset.js';

/** A column given by name or as an expression. */
export type ColumnLike = string | Column;

function toColumn(c: ColumnLike): Column {
  return typeof c === 'string' ? col(c) : c;
}

/**
 * A streaming Dataset: an immutable logical plan plus the session it belongs to. Operators return new
 * Datasets; nothing runs until `writeStream...start()`.
 *
 * Rows seen by user functions are plain objects: strings, numbers, booleans, `Date` for timestamps,
 * arrays for lists and objects for structs.
 */
export class Dataset<T = Record<string, unknown>> {
  /** @internal */
  constructor(readonly session: Session, readonly plan: PlanNode) {}

  /** @internal A Dataset reading from a source; every query started from it opens its own instance via `create`. */
  static fromSource(session: Session, description: string, create: () => StreamSource): Dataset {
    return new Dataset(session, { kind: 'source', id: session.nextOperatorId(), description, create });
  }

  private derive<U>(make: (id: number) => PlanNode): Dataset<U> {
    return new Dataset<U>(this.session, make(this.session.nextOperatorId()));
  }

  /**
   * One output row per input row. Give `schema` for a stable output type; without it the schema is
   * inferred from the rows the function returns.
   */
  map<U extends object>(fn: (row: T) => U, schema?: SchemaSpec | Schema): Dataset<U> {
    return this.derive((id) => ({ kind: 'map', id, input: this.plan, fn: fn as RowFunction, schema: schema ? schemaFromSpec(schema) : undefined }));
  }

  /** Any number of output rows per input row (the function returns an array or any iterable). */
  flatMap<U extends object>(fn: (row: T) => Iterable<U>, schema?: SchemaSpec | Schema): Dataset<U> {
    return this.derive((id) => ({ kind: 'flatMap', id, input: this.plan, fn: fn as RowFunction, schema: schema ? schemaFromSpec(schema) : undefined }));
  }

  /** Keeps rows for which the row predicate returns true, or where the boolean column expression is true. */
  filter(predicate: ((row: T) => boolean) | Column): Dataset<T> {
    return this.derive((id) => (predicate instanceof Column
      ? { kind: 'filter', id, input: this.plan, condition: predicate }
      : { kind: 'filter', id, input: this.plan, fn: predicate as RowFunction }));
  }

  /** Same as filter (Spark's SQL name). */
  where(predicate: ((row: T) => boolean) | Column): Dataset<T> {
    return this.filter(predicate);
  }

  /** Vectorised projection of column names or expressions (use `.alias(name)` to name expressions). */
  select<U = Record<string, unknown>>(...columns: ColumnLike[]): Dataset<U> {
    if (columns.length === 0) throw new SluiceError('ANALYSIS', 'select() needs at least one column', "e.g. select('user_id', col('amount').multiply(2).alias('double_amount'))");
    return this.derive((id) => ({ kind: 'project', id, input: this.plan, columns: columns.map(toColumn), keepInput: false }));
  }

  /**
   * Adds or replaces one column computed by an expression; the other columns keep their order.
   * Resolved when the query starts, against the input's columns.
   */
  withColumn<U = Record<string, unknown>>(name: string, expr: Column): Dataset<U> {
    return this.derive((id) => ({ kind: 'project', id, input: this.plan, columns: [expr.alias(name)], keepInput: true }));
  }

  /** Rows of both streams (columns matched by name; both must have the same columns). */
  union(...others: Dataset<T>[]): Dataset<T> {
    for (const o of others) {
      if (o.session !== this.session) throw new SluiceError('ANALYSIS', 'union() of datasets from different sessions', 'build both streams from the same Session');
    }
    return this.derive((id) => ({ kind: 'union', id, inputs: [this.plan, ...others.map((o) => o.plan)] }));
  }

  /**
   * Declares `column` (a timestamp) as event time: the watermark trails the largest event time seen by
   * `delay` (e.g. '5 minutes', '10s'). Stateful operators drop rows behind the watermark and close windows
   * and event-time timeouts when it passes them.
   */
  withWatermark(column: string, delay: string | number): Dataset<T> {
    const delayMs = parseDuration(delay, 'withWatermark delay');
    return this.derive((id) => ({ kind: 'watermark', id, input: this.plan, column, delayMs }));
  }

  /**
   * Groups rows by a key for stateful processing (mapGroupsWithState, flatMapGroupsWithState, reduceGroups,
   * count): `fn(row)` returns the key (a string, number, or an array of them for a composite key), or give
   * a column name to group by that column's value. The function must be deterministic.
   */
  groupByKey<K>(fn: ((row: T) => K) | string): KeyValueGroupedDataset<K, T> {
    if (typeof fn === 'string') {
      const column = fn;
      return new KeyValueGroupedDataset<K, T>(this, { keyOf: (row: Record<string, unknown>) => row[column], column });
    }
    if (typeof fn !== 'function') {
      throw new SluiceError('ANALYSIS', `groupByKey needs a key function or a column name, got ${typeof fn}`, "e.g. groupByKey((row) => row.user_id) or groupByKey('user_id')");
    }
    return new KeyValueGroupedDataset<K, T>(this, { keyOf: fn as (row: unknown) => unknown });
  }

  /**
   * Groups rows by columns for a streaming aggregation, Spark's groupBy: column names, column expressions,
   * and at most one `window(...)` or `session_window(...)` (plus `bucket(...)`) from lib/api/functions.ts.
   * `.agg(...)` then aggregates each group, e.g.
   * `groupBy(window('ts', '1 minute'), 'country').agg(count('*').alias('events'))`.
   */
  groupBy(...columns: GroupingLike[]): RelationalGroupedDataset {
    return new RelationalGroupedDataset(this, RelationalGroupedDataset.groupingsOf(columns));
  }

  /** @internal Appends a stateful operator; used by the grouped-dataset APIs. */
  withStatefulOperator<U>(operator: StatefulOperator): Dataset<U> {
    return this.derive((id) => ({ kind: 'stateful', id, input: this.plan, operator }));
  }

  /** Starts describing the streaming query that writes this Dataset out. */
  get writeStream(): DataStreamWriter<T> {
    return new DataStreamWriter<T>(this);
  }
}
