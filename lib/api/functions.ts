/**
 * Column functions in one module, as PySpark's `pyspark.sql.functions`: the column expressions of
 * column.ts, the aggregate functions of `groupBy(...).agg(...)`, and the grouping functions `window`,
 * `session_window` and `bucket`.
 *
 * ```ts
 * import { col, count, sum, approx_count_distinct, top_k, window } from 'sluice';
 * events.withWatermark('ts', '5 minutes')
 *   .groupBy(window('ts', '1 minute'))
 *   .agg(count('*').alias('events'), approx_count_distinct('user_id').alias('users'), top_k('page_url', 10).alias('top_pages'));
 * ```
 */
import { SluiceError } from '../errors.js';
import type { AggregateName, AggregateOptions } from '../plan/aggregates/aggregate-functions.js';
import { precisionForRsd } from '../plan/aggregates/hyperloglog.js';
import type { Grouping } from '../plan/windows.js';
import { parseDuration } from '../util/duration.js';
import { Column, type ColumnOrName, col } from './column.js';

export type { CastTypeName } from '../plan/expression.js';
export type { ColumnOrLiteral, ColumnOrName, Literal } from './column.js';
export {
  abs,
  Column,
  coalesce,
  col,
  column,
  concat,
  current_timestamp,
  date_format,
  hour,
  interval,
  length,
  lit,
  lower,
  regexp_extract,
  round,
  split_part,
  struct,
  timestamp_millis,
  timestamp_seconds,
  to_timestamp,
  udf,
  unix_millis,
  unix_timestamp,
  upper,
  when,
} from './column.js';

function toColumn(c: ColumnOrName, fn: string): Column {
  if (c instanceof Column) return c;
  if (typeof c !== 'string' || c === '') {
    throw new SluiceError(
      'BAD_EXPRESSION',
      `${fn}() needs a Column or a column name`,
      `e.g. ${fn}('amount') or ${fn}(col('amount'))`,
    );
  }
  return col(c);
}

/**
 * An aggregate expression for `groupBy(...).agg(...)`. Name its result column with `.alias(name)`; without
 * one it gets Spark's generated name, e.g. `sum(amount)` or `count(1)`.
 */
export class AggregateColumn {
  /** @internal */
  constructor(
    readonly fn: AggregateName,
    readonly args: readonly Column[],
    readonly options: AggregateOptions = {},
    readonly name?: string,
  ) {}

  /** Names the result column. */
  alias(name: string): AggregateColumn {
    if (typeof name !== 'string' || name === '') {
      throw new SluiceError('BAD_EXPRESSION', 'alias needs a non-empty name', "e.g. count('*').alias('events')");
    }
    return new AggregateColumn(this.fn, this.args, this.options, name);
  }

  /** Same as alias. */
  as(name: string): AggregateColumn {
    return this.alias(name);
  }

  toString(): string {
    return `${this.fn}(${this.args.map(String).join(', ')})${this.name ? ` AS ${this.name}` : ''}`;
  }
}

/** Rows (`count()` or `count('*')`), or non-null values of a column. */
export function count(c: ColumnOrName = '*'): AggregateColumn {
  return c === '*' ? new AggregateColumn('count', []) : new AggregateColumn('count', [toColumn(c, 'count')]);
}

/**
 * Sum of the non-null values (null when there are none). A string column is read as decimal numbers, as the
 * Flink seed parses `metadata.amount`; text that is not a number counts as null. Integers sum to a long,
 * everything else to a double.
 */
export function sum(c: ColumnOrName): AggregateColumn {
  return new AggregateColumn('sum', [toColumn(c, 'sum')]);
}

/** Mean of the non-null values, as a double (strings are parsed as in {@link sum}). */
export function avg(c: ColumnOrName): AggregateColumn {
  return new AggregateColumn('avg', [toColumn(c, 'avg')]);
}

/** Same as avg. */
export const mean = avg;

/** Smallest non-null value (numbers, strings by code unit, timestamps, booleans). */
export function min(c: ColumnOrName): AggregateColumn {
  return new AggregateColumn('min', [toColumn(c, 'min')]);
}

/** Largest non-null value. */
export function max(c: ColumnOrName): AggregateColumn {
  return new AggregateColumn('max', [toColumn(c, 'max')]);
}

/**
 * Value of the first row in arrival order (source order within a partition, earlier batches first; for
 * merged sessions, the earlier session's). With `ignoreNulls`, the first non-null value.
 */
export function first(c: ColumnOrName, ignoreNulls = false): AggregateColumn {
  return new AggregateColumn('first', [toColumn(c, 'first')], { ignoreNulls });
}

/** Value of the last row in arrival order; with `ignoreNulls`, the last non-null value. */
export function last(c: ColumnOrName, ignoreNulls = false): AggregateColumn {
  return new AggregateColumn('last', [toColumn(c, 'last')], { ignoreNulls });
}

/** Options of collect_list and collect_set. */
export interface CollectOptions {
  /** Order the values by this column (e.g. event time) instead of arrival order (list) or value order (set). */
  orderBy?: ColumnOrName;
}

/**
 * The non-null values as a list, in arrival order; with `orderBy`, sorted by that column (ties by value),
 * which makes the list independent of arrival order and batching.
 */
export function collect_list(c: ColumnOrName, options: CollectOptions = {}): AggregateColumn {
  const args = [toColumn(c, 'collect_list')];
  if (options.orderBy !== undefined) args.push(toColumn(options.orderBy, 'collect_list'));
  return new AggregateColumn('collect_list', args, { ordered: options.orderBy !== undefined });
}

/**
 * The distinct non-null values as a list sorted by value; with `orderBy`, ordered by the smallest `orderBy`
 * value each was seen with (ties by value): e.g. the distinct pages of a session in the order first visited.
 */
export function collect_set(c: ColumnOrName, options: CollectOptions = {}): AggregateColumn {
  const args = [toColumn(c, 'collect_set')];
  if (options.orderBy !== undefined) args.push(toColumn(options.orderBy, 'collect_set'));
  return new AggregateColumn('collect_set', args, { ordered: options.orderBy !== undefined });
}

/**
 * The number of rows whose boolean condition is true (Spark's `count_if`; SQL's `count(*) FILTER (WHERE
 * cond)`): null and false are not counted. Cheaper than the equivalent `count(when(cond, lit(1)))`, which
 * builds a column to count.
 */
export function count_if(condition: ColumnOrName): AggregateColumn {
  return new AggregateColumn('count_if', [toColumn(condition, 'count_if')]);
}

/** Exact number of distinct non-null values (the group's state holds the set of values). */
export function count_distinct(c: ColumnOrName): AggregateColumn {
  return new AggregateColumn('count_distinct', [toColumn(c, 'count_distinct')]);
}

/** Same as count_distinct (Spark's camel-case name). */
export const countDistinct = count_distinct;

/**
 * Estimated number of distinct non-null values with a HyperLogLog sketch of fixed size, whatever the
 * cardinality: 2^p bytes per group with p = ceil(2·log2(1.106 / rsd)) (rsd 0.05 → 512 bytes, standard
 * error 4.6%). Small sets (under 2.5·2^p values) are counted almost exactly. `rsd` from 0.005 to 0.39.
 */
export function approx_count_distinct(c: ColumnOrName, rsd = 0.05): AggregateColumn {
  try {
    precisionForRsd(rsd);
  } catch (err) {
    throw new SluiceError(
      'BAD_EXPRESSION',
      `approx_count_distinct: ${(err as Error).message}`,
      'the default rsd 0.05 uses 512 bytes per group',
    );
  }
  return new AggregateColumn('approx_count_distinct', [toColumn(c, 'approx_count_distinct')], { rsd });
}

function byAggregate(name: 'max_by' | 'min_by', c: ColumnOrName, ord: ColumnOrName, k?: number): AggregateColumn {
  const args = [toColumn(c, name), toColumn(ord, name)];
  if (k === undefined) return new AggregateColumn(name, args);
  if (!Number.isInteger(k) || k < 1 || k > 100_000)
    throw new SluiceError(
      'BAD_EXPRESSION',
      `${name} needs a number of values k from 1 to 100000, got ${k}`,
      `e.g. ${name}(struct('bidder', 'price'), 'price', 10)`,
    );
  return new AggregateColumn(name, args, { k });
}

/**
 * Value of `c` in the row with the largest `ord` (rows with a null `ord` are skipped). Ties on `ord` go to the
 * smaller value of `c`, so the result never depends on arrival order (Spark leaves ties unspecified). `c` may
 * be a struct, e.g. `max_by(struct('price', 'url'), 'dateTime')` for the whole latest row of each group.
 *
 * With `k` (Spark 4.2's third argument): a list of the values of the `k` rows with the largest `ord`, largest
 * first, ties as above: the top k rows per group, e.g. `max_by(struct('bidder', 'price'), 'price', 10)`.
 */
export function max_by(c: ColumnOrName, ord: ColumnOrName, k?: number): AggregateColumn {
  return byAggregate('max_by', c, ord, k);
}

/** Value of `c` in the row with the smallest `ord` (with `k`, of the `k` rows, smallest first); ties as in {@link max_by}. */
export function min_by(c: ColumnOrName, ord: ColumnOrName, k?: number): AggregateColumn {
  return byAggregate('min_by', c, ord, k);
}

/**
 * The `k` most frequent non-null values with their counts, most frequent first: a list of
 * `{ value, count }`. Equal counts are ordered by value, so which values make the cut is deterministic.
 * Counts are exact (the state holds a count per distinct value).
 */
export function top_k(c: ColumnOrName, k = 10): AggregateColumn {
  if (!Number.isInteger(k) || k < 1)
    throw new SluiceError('BAD_EXPRESSION', `top_k needs a positive integer k, got ${k}`, "e.g. top_k('page_url', 10)");
  return new AggregateColumn('top_k', [toColumn(c, 'top_k')], { k });
}

/** A map from each distinct non-null value to its number of rows (e.g. a device or country breakdown), keys sorted. */
export function count_by(c: ColumnOrName): AggregateColumn {
  return new AggregateColumn('count_by', [toColumn(c, 'count_by')]);
}

/** A grouping column computed by the aggregation itself: a window, a session window or a hash bucket. */
export class GroupingColumn {
  /** @internal */
  constructor(readonly spec: Exclude<Grouping, { kind: 'key' }>) {}

  /** Names the grouping's output column (default `window`, `session_window` or `bucket`). */
  alias(name: string): GroupingColumn {
    if (typeof name !== 'string' || name === '')
      throw new SluiceError(
        'BAD_EXPRESSION',
        'alias needs a non-empty name',
        "e.g. window('ts', '1 minute').alias('w')",
      );
    return new GroupingColumn({ ...this.spec, name });
  }

  /** Same as alias. */
  as(name: string): GroupingColumn {
    return this.alias(name);
  }

  /**
   * The grouping as a column of each row, for `select` and `withColumn`: a tumbling window's `{ start, end }`
   * struct, e.g. to join two streams on their windows. Session windows and buckets exist only in a grouping.
   */
  column(): Column {
    const s = this.spec;
    if (s.kind !== 'window') {
      throw new SluiceError(
        'ANALYSIS',
        `${s.kind === 'session' ? 'session_window' : 'bucket'}(...) cannot be a column: it only exists in a groupBy`,
        "group by it, e.g. groupBy('user', session_window('ts', '5 minutes')), or select a tumbling window(...)",
      );
    }
    const long = (v: number) => ({ kind: 'lit' as const, type: 'long' as const, value: String(v) });
    return new Column({
      kind: 'alias',
      name: s.name,
      child: { kind: 'call', fn: 'window', args: [s.time.expr, long(s.sizeMs), long(s.slideMs), long(s.offsetMs)] },
    });
  }
}

function positiveDuration(v: string | number, what: string): number {
  const ms = parseDuration(v, what);
  if (!(ms > 0))
    throw new SluiceError('BAD_DURATION', `${what} must be longer than zero, got '${v}'`, "e.g. '1 minute'");
  return ms;
}

/**
 * Tumbling (no slide) or sliding event-time windows, Spark's `window`: a struct column `{ start, end }`
 * (timestamps). Windows are [start, end) with starts at `startTime + k·slide` since the epoch; a row belongs
 * to every window that contains its event time (size / slide of them). `timeColumn` is a timestamp (or
 * epoch milliseconds), normally the column of withWatermark.
 */
export function window(
  timeColumn: ColumnOrName,
  windowDuration: string | number,
  slideDuration?: string | number,
  startTime?: string | number,
): GroupingColumn {
  const sizeMs = positiveDuration(windowDuration, 'window duration');
  const slideMs = slideDuration === undefined ? sizeMs : positiveDuration(slideDuration, 'window slide duration');
  if (slideMs > sizeMs) {
    throw new SluiceError(
      'BAD_DURATION',
      `the window slide (${slideDuration}) is longer than the window (${windowDuration})`,
      'use a slide up to the window duration (equal gives tumbling windows)',
    );
  }
  const offsetMs = startTime === undefined ? 0 : parseDuration(startTime, 'window start time');
  if (offsetMs >= slideMs) {
    throw new SluiceError(
      'BAD_DURATION',
      `the window start time (${startTime}) must be shorter than the slide (${slideDuration ?? windowDuration})`,
      "e.g. window('ts', '1 hour', '1 hour', '15 minutes') for windows starting at a quarter past",
    );
  }
  return new GroupingColumn({
    kind: 'window',
    time: toColumn(timeColumn, 'window'),
    sizeMs,
    slideMs,
    offsetMs,
    name: 'window',
  });
}

/**
 * Session windows, Spark's `session_window`: rows of a key at most `gapDuration` apart form one session, a
 * struct column `{ start, end }` with start the first event time and end the last event time plus the gap.
 * An event exactly `gap` after the previous one still joins (as the Flink seed defines sessions). The gap
 * may be a column (per-row gap in milliseconds, or duration text like '5 minutes'); rows whose gap is null
 * or not positive go to the late-data output with that reason. Sessions that a new row bridges merge.
 */
export function session_window(timeColumn: ColumnOrName, gapDuration: string | number | Column): GroupingColumn {
  const time = toColumn(timeColumn, 'session_window');
  if (gapDuration instanceof Column)
    return new GroupingColumn({ kind: 'session', time, gap: gapDuration, name: 'session_window' });
  return new GroupingColumn({
    kind: 'session',
    time,
    gapMs: positiveDuration(gapDuration, 'session gap'),
    name: 'session_window',
  });
}

/**
 * Hash bucket of a column, 0 to numBuckets - 1 (an int column named `bucket`): the murmur3 hash the engine
 * partitions state with. Grouping by a bucket computes partial results per bucket, e.g. partial sums before a
 * global total (Iceberg calls this transform bucket).
 */
export function bucket(numBuckets: number, c: ColumnOrName): GroupingColumn {
  if (!Number.isInteger(numBuckets) || numBuckets < 1 || numBuckets > 65536) {
    throw new SluiceError(
      'BAD_EXPRESSION',
      `bucket() needs a number of buckets from 1 to 65536, got ${numBuckets}`,
      "e.g. bucket(8, 'customer_id')",
    );
  }
  return new GroupingColumn({ kind: 'bucket', column: toColumn(c, 'bucket'), buckets: numBuckets, name: 'bucket' });
}
