import type { Schema } from 'apache-arrow';
import { type SchemaSpec, schemaFromSpec } from '../arrow/schema.js';
import { SluiceError } from '../errors.js';
import { aggregateFunction } from '../plan/aggregates/aggregate-functions.js';
import { joinType } from '../plan/join-type.js';
import { isStreaming, type LoadedRelation, type PlanNode, type RowFunction, walkPlan } from '../plan/logical-plan.js';
import { AggregateOperator } from '../plan/operators/aggregate.js';
import { DeduplicateOperator } from '../plan/operators/deduplicate.js';
import { type Grouping as KeyOfGrouping, normaliseInitialState } from '../plan/operators/grouping.js';
import { COUNT_FOLD, KeyedAggregateOperator } from '../plan/operators/keyed-aggregate.js';
import {
  type FlatMapGroupsFunction,
  type MapGroupsFunction,
  MapGroupsWithStateOperator,
} from '../plan/operators/map-groups-with-state.js';
import { type StreamJoinSpec, StreamStreamJoinOperator } from '../plan/operators/stream-stream-join.js';
import { TransformWithStateOperator } from '../plan/operators/transform-with-state.js';
import { type StatefulProcessor, TimeMode } from '../plan/operators/transform-with-state-processor.js';
import type { StatefulOperator } from '../plan/stateful-operator.js';
import type { Grouping } from '../plan/windows.js';
import type { StreamSource } from '../sources/source.js';
import { parseDuration } from '../util/duration.js';
import { Column, col } from './column.js';
import { AggregateColumn, avg, count, GroupingColumn, max, min, sum } from './functions.js';
import { GROUP_STATE_TIMEOUTS, type GroupStateTimeout } from './group-state.js';
import type { SessionState } from './session-state.js';
import { DataStreamWriter } from './stream-writer.js';

// Dataset and its two grouped forms live in one file because their types refer to each other (groupBy
// returns a grouped dataset, agg and mapGroupsWithState return a Dataset), and files must not import in a circle.

/** The join types of {@link Dataset.join}, with Spark's spellings (case and underscores do not matter). */
export type JoinHow =
  | 'inner'
  | 'left_outer'
  | 'left'
  | 'leftouter'
  | 'left_semi'
  | 'semi'
  | 'leftsemi'
  | 'left_anti'
  | 'anti'
  | 'leftanti'
  | 'right_outer'
  | 'right'
  | 'full_outer'
  | 'full'
  | 'outer'
  | (string & {});

/** A column given by name or as an expression. */
/** A column name, an expression, or a tumbling `window(...)` (its `{ start, end }` struct). */
export type ColumnLike = string | Column | GroupingColumn;

/** The columns of dropDuplicates(...) given as names or one array of names; undefined for all columns. */
function dedupColumns(where: string, columns: string[] | [string[]]): string[] | undefined {
  const names = columns.length === 1 && Array.isArray(columns[0]) ? columns[0] : (columns as string[]);
  if (names.some((c) => typeof c !== 'string' || c === '')) {
    throw new SluiceError('ANALYSIS', `${where} takes column names`, `e.g. ${where}('user_id', 'event_id')`);
  }
  return names.length === 0 ? undefined : names;
}

function toColumn(c: ColumnLike): Column {
  return typeof c === 'string' ? col(c) : c instanceof GroupingColumn ? c.column() : c;
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
  constructor(
    readonly session: SessionState,
    readonly plan: PlanNode,
    /** The name `alias()` gave this Dataset: join conditions qualify its columns with it (`col('b.price')`). */
    readonly aliasName?: string,
  ) {}

  /** @internal A Dataset reading from a source; every query started from it opens its own instance via `create`. */
  static fromSource(session: SessionState, description: string, create: () => StreamSource): Dataset {
    return new Dataset(session, { kind: 'source', id: session.nextOperatorId(), description, create });
  }

  /** @internal A static Dataset (session.read): `load` reads its rows each time a query using it starts. */
  static fromRelation(session: SessionState, description: string, load: () => Promise<LoadedRelation>): Dataset {
    return new Dataset(session, { kind: 'relation', id: session.nextOperatorId(), description, load });
  }

  /** Whether the Dataset reads a stream (readStream), rather than only static data (read). */
  get isStreaming(): boolean {
    return isStreaming(this.plan);
  }

  /**
   * The same Dataset under a name, for join conditions to tell its columns from the other side's:
   * `bids.alias('b').join(side.alias('s'), col('b.auction').eq(col('s.key')))`. The name qualifies columns
   * only in the condition of a join.
   */
  alias(name: string): Dataset<T> {
    if (typeof name !== 'string' || name === '' || name.includes('.')) {
      throw new SluiceError(
        'BAD_OPTION',
        `alias needs a non-empty name without dots, got '${String(name)}'`,
        "e.g. alias('bids')",
      );
    }
    return new Dataset<T>(this.session, this.plan, name);
  }

  /** Same as alias (Spark's `as`). */
  as(name: string): Dataset<T> {
    return this.alias(name);
  }

  /**
   * Joins with another Dataset, Spark's `join(right, on, how)`. `on` is a column name or a list of them that
   * both sides have (each appears once in the output, first, with the left side's values), or a boolean
   * condition with at least one equality between a column of each side (`col('l.id').eq(col('r.user_id'))`;
   * name the sides with alias() where they share a column name). `how` is 'inner' (default), 'left_outer'
   * ('left'), 'left_semi' ('semi') or 'left_anti' ('anti'), with Spark's other spellings.
   *
   * With a static right side (session.read), each stream batch is joined with the static rows, which are read
   * and hashed once when the query starts: a changed file takes effect when the query is started again.
   * As in Spark, a stream-static join cannot be right or full outer; with the static side on the left
   * (`static.join(stream, ...)`) it is inner or right outer, its output the static side's columns first.
   *
   * With a streaming right side it is Spark's stream-stream join: both sides' rows are kept in the checkpointed
   * state, and each matching pair is emitted once, when its later row arrives; 'right_outer' and 'full_outer'
   * work too, 'left_anti' does not. An event-time range in the condition lets buffered rows expire once the
   * watermark shows no match can come; outer joins need one, and a watermark on both sides. Append mode only:
   * ```ts
   * impressions.withWatermark('shown', '10 seconds').alias('i').join(
   *   clicks.withWatermark('clicked', '10 seconds').alias('c'),
   *   col('i.ad').eq(col('c.ad')).and(col('clicked').between(col('shown'), col('shown').plus(interval('1 minute')))),
   *   'left_outer')
   * ```
   */
  join(
    right: Dataset<unknown>,
    on: string | string[] | Column,
    how: JoinHow = 'inner',
  ): Dataset<Record<string, unknown>> {
    if (!(right instanceof Dataset)) {
      throw new SluiceError(
        'ANALYSIS',
        `join() needs a Dataset to join with, got ${typeof right}`,
        "e.g. stream.join(session.read.json('users.jsonl'), 'user_id')",
      );
    }
    if (right.session !== this.session) {
      throw new SluiceError(
        'ANALYSIS',
        'join() of datasets from different sessions',
        'build both from the same Session',
      );
    }
    const joinTypeOf = joinType(how);
    const using = typeof on === 'string' ? [on] : Array.isArray(on) ? on : undefined;
    if (using ? using.length === 0 || using.some((u) => typeof u !== 'string' || u === '') : !(on instanceof Column)) {
      throw new SluiceError(
        'ANALYSIS',
        'join() needs the columns to join on, as names or a condition',
        "e.g. join(users, 'user_id') or join(users.alias('u'), col('user_id').eq(col('u.id')))",
      );
    }
    if (isStreaming(this.plan) && isStreaming(right.plan)) {
      if (joinTypeOf === 'left_anti') {
        throw new SluiceError(
          'ANALYSIS',
          'left_anti joins of two streams are not supported',
          'a row can only be called unmatched at the end of a stream; use left_outer and keep the rows whose right columns are null',
        );
      }
      const spec: StreamJoinSpec = {
        joinType: joinTypeOf,
        using,
        condition: using ? undefined : (on as Column),
        leftAlias: this.aliasName,
        rightAlias: right.aliasName,
        leftEventTime: eventTimeColumnOf(this.plan),
        rightEventTime: eventTimeColumnOf(right.plan),
        leftAfterStateful: walkPlan(this.plan).some((n) => n.kind === 'stateful'),
        rightAfterStateful: walkPlan(right.plan).some((n) => n.kind === 'stateful'),
        leftWindows: windowColumnsOf(this.plan, eventTimeColumnOf(this.plan)),
        rightWindows: windowColumnsOf(right.plan, eventTimeColumnOf(right.plan)),
      };
      return this.derive((id) => ({
        kind: 'stateful',
        id,
        input: this.plan,
        right: right.plan,
        operator: new StreamStreamJoinOperator(spec),
      }));
    }
    if (
      !isStreaming(this.plan) &&
      isStreaming(right.plan) &&
      (joinTypeOf === 'inner' || joinTypeOf === 'right_outer')
    ) {
      // The stream probes the static side's hash table whichever side the user wrote it on.
      return this.derive((id) => ({
        kind: 'join',
        id,
        left: right.plan,
        right: this.plan,
        joinType: joinTypeOf === 'inner' ? 'inner' : 'left_outer',
        using,
        condition: using ? undefined : (on as Column),
        leftAlias: right.aliasName,
        rightAlias: this.aliasName,
        staticFirst: true,
      }));
    }
    return this.derive((id) => ({
      kind: 'join',
      id,
      left: this.plan,
      right: right.plan,
      joinType: joinTypeOf,
      using,
      condition: using ? undefined : (on as Column),
      leftAlias: this.aliasName,
      rightAlias: right.aliasName,
    }));
  }

  private derive<U>(make: (id: number) => PlanNode): Dataset<U> {
    return new Dataset<U>(this.session, make(this.session.nextOperatorId()));
  }

  /**
   * One output row per input row. Give `schema` for a stable output type; without it the schema is
   * inferred from the rows the function returns.
   */
  map<U extends object>(fn: (row: T) => U, schema?: SchemaSpec | Schema): Dataset<U> {
    return this.derive((id) => ({
      kind: 'map',
      id,
      input: this.plan,
      fn: fn as RowFunction,
      schema: schema ? schemaFromSpec(schema) : undefined,
    }));
  }

  /** Any number of output rows per input row (the function returns an array or any iterable). */
  flatMap<U extends object>(fn: (row: T) => Iterable<U>, schema?: SchemaSpec | Schema): Dataset<U> {
    return this.derive((id) => ({
      kind: 'flatMap',
      id,
      input: this.plan,
      fn: fn as RowFunction,
      schema: schema ? schemaFromSpec(schema) : undefined,
    }));
  }

  /** Keeps rows for which the row predicate returns true, or where the boolean column expression is true. */
  filter(predicate: ((row: T) => boolean) | Column): Dataset<T> {
    return this.derive((id) =>
      predicate instanceof Column
        ? { kind: 'filter', id, input: this.plan, condition: predicate }
        : { kind: 'filter', id, input: this.plan, fn: predicate as RowFunction },
    );
  }

  /** Same as filter (Spark's SQL name). */
  where(predicate: ((row: T) => boolean) | Column): Dataset<T> {
    return this.filter(predicate);
  }

  /** Vectorised projection of column names or expressions (use `.alias(name)` to name expressions). */
  select<U = Record<string, unknown>>(...columns: ColumnLike[]): Dataset<U> {
    if (columns.length === 0)
      throw new SluiceError(
        'ANALYSIS',
        'select() needs at least one column',
        "e.g. select('user_id', col('amount').multiply(2).alias('double_amount'))",
      );
    return this.derive((id) => ({
      kind: 'project',
      id,
      input: this.plan,
      columns: columns.map(toColumn),
      keepInput: false,
    }));
  }

  /**
   * Adds or replaces one column computed by an expression; the other columns keep their order.
   * Resolved when the query starts, against the input's columns.
   */
  withColumn<U = Record<string, unknown>>(name: string, expr: Column | GroupingColumn): Dataset<U> {
    return this.derive((id) => ({
      kind: 'project',
      id,
      input: this.plan,
      columns: [toColumn(expr).alias(name)],
      keepInput: true,
    }));
  }

  /** Rows of both streams (columns matched by name; both must have the same columns). */
  union(...others: Dataset<T>[]): Dataset<T> {
    for (const o of others) {
      if (o.session !== this.session)
        throw new SluiceError(
          'ANALYSIS',
          'union() of datasets from different sessions',
          'build both streams from the same Session',
        );
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
      throw new SluiceError(
        'ANALYSIS',
        `groupByKey needs a key function or a column name, got ${typeof fn}`,
        "e.g. groupByKey((row) => row.user_id) or groupByKey('user_id')",
      );
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

  /**
   * Drops rows whose `columns` (every column when none are given) equal those of an earlier row, keeping the
   * first (Spark's dropDuplicates). Each key is kept in state; with the withWatermark column among `columns`,
   * a key is forgotten once the watermark passes its event time, and rows behind the watermark are dropped.
   * Without it, state grows with every distinct key. Progress counts dropped rows in the operator's
   * `customMetrics.numDroppedDuplicateRows`.
   */
  dropDuplicates(...columns: string[] | [string[]]): Dataset<T> {
    return this.withStatefulOperator(new DeduplicateOperator({ columns: dedupColumns('dropDuplicates', columns) }));
  }

  /**
   * Drops rows whose `columns` equal those of an earlier row seen within the watermark delay (Spark 3.5's
   * dropDuplicatesWithinWatermark): a key's first row is remembered until the watermark passes its event time
   * plus the delay of withWatermark, which must come before. Use it when duplicates carry different event
   * times (e.g. a producer's retries), so the event-time column need not be among `columns`.
   */
  dropDuplicatesWithinWatermark(...columns: string[] | [string[]]): Dataset<T> {
    const watermarks = walkPlan(this.plan).filter((n) => n.kind === 'watermark');
    const delayMs = watermarks.length > 0 ? watermarks[watermarks.length - 1].delayMs : 0;
    return this.withStatefulOperator(
      new DeduplicateOperator({
        columns: dedupColumns('dropDuplicatesWithinWatermark', columns),
        withinWatermark: { delayMs },
      }),
    );
  }

  /** @internal Appends a stateful operator; used by the grouped-dataset APIs. */
  withStatefulOperator<U>(operator: StatefulOperator): Dataset<U> {
    return this.derive((id) => ({ kind: 'stateful', id, input: this.plan, operator }));
  }

  /** Starts describing the streaming query that writes this Dataset out. */
  get writeStream(): DataStreamWriter<T> {
    return new DataStreamWriter<T>(this.session, this.plan);
  }
}

export type { FlatMapGroupsFunction, MapGroupsFunction };

/** Initial state of mapGroupsWithState: a Map from key to state, or [key, state] pairs. */
export type InitialState<K, S> = Map<K, S> | Iterable<readonly [K, S]>;

/** Options of {@link KeyValueGroupedDataset.mapGroupsWithState}. */
export interface MapGroupsWithStateOptions<K, S> {
  /** How keys time out; default 'NoTimeout'. */
  timeout?: GroupStateTimeout;
  /**
   * State of keys before the first batch. It seeds the state when a checkpoint starts (batch 0) and is
   * ignored on restarts; keys found only here are called in the first batch with no rows.
   */
  initialState?: InitialState<K, S>;
  /** Output schema; without it each batch's schema is inferred from the rows the function returns. */
  schema?: SchemaSpec | Schema;
}

/** Options of {@link KeyValueGroupedDataset.flatMapGroupsWithState}. */
export interface FlatMapGroupsWithStateOptions<K, S> extends MapGroupsWithStateOptions<K, S> {
  /** The output mode the function's rows are meant for; the query must be written in the same mode. */
  outputMode: 'append' | 'update';
}

/** Options of {@link KeyValueGroupedDataset.transformWithState}. */
export interface TransformWithStateOptions<K, S> {
  /**
   * State of keys before the first batch, handed to the processor's handleInitialState (it must extend
   * StatefulProcessorWithInitialState) in the first batch of a checkpoint; ignored on restarts.
   */
  initialState?: InitialState<K, S>;
  /** Output schema; without it each batch's schema is inferred from the rows the processor returns. */
  schema?: SchemaSpec | Schema;
}

function checkTimeout(timeout: unknown, where: string): GroupStateTimeout {
  if (timeout === undefined) return 'NoTimeout';
  if (!GROUP_STATE_TIMEOUTS.includes(timeout as GroupStateTimeout)) {
    throw new SluiceError(
      'BAD_OPTION',
      `${where}: unknown timeout '${String(timeout)}'`,
      `use one of: ${GROUP_STATE_TIMEOUTS.join(', ')}`,
    );
  }
  return timeout as GroupStateTimeout;
}

function checkFunction(fn: unknown, where: string): void {
  if (typeof fn !== 'function')
    throw new SluiceError(
      'BAD_OPTION',
      `${where} needs a function, got ${typeof fn}`,
      `e.g. ${where}((key, values, state) => ...)`,
    );
}

/**
 * A Dataset grouped by a key (Spark's KeyValueGroupedDataset), from `Dataset.groupByKey`.
 *
 * Ordering guarantee (stronger than Spark's): in every batch a group function sees a key's rows in
 * source order (the order of the input partition they came from), and keys are called in the order
 * their first row appears, then timed-out keys by timeout and key. The same input, state and batch
 * boundaries give the same calls and output in every run, restart and thread count.
 *
 * @typeParam K the key type (strings, numbers, or arrays of them for composite keys)
 * @typeParam V the value type the group functions see (the row, or what mapValues made of it)
 */
export class KeyValueGroupedDataset<K, V> {
  /** @internal */
  constructor(
    private readonly ds: Dataset<unknown>,
    private readonly grouping: KeyOfGrouping,
  ) {}

  /** The same grouping, with each value replaced by `fn(value)` before the group functions see it. */
  mapValues<W>(fn: (value: V) => W): KeyValueGroupedDataset<K, W> {
    checkFunction(fn, 'mapValues');
    const before = this.grouping.toValue;
    const toValue = before
      ? (row: Record<string, unknown>) => fn(before(row) as V)
      : (row: Record<string, unknown>) => fn(row as V);
    return new KeyValueGroupedDataset<K, W>(this.ds, {
      keyOf: this.grouping.keyOf,
      column: this.grouping.column,
      toValue,
    });
  }

  /**
   * Calls `fn(key, values, state)` once per key with new rows in a batch, and once per key whose timeout
   * is due (with no values and `state.hasTimedOut` true); each call returns one output row. Queries using
   * it must run in update output mode.
   */
  mapGroupsWithState<S, U extends object>(
    fn: MapGroupsFunction<K, V, S, U>,
    options: MapGroupsWithStateOptions<K, S> = {},
  ): Dataset<U> {
    checkFunction(fn, 'mapGroupsWithState');
    return this.withState('map', fn, options);
  }

  /**
   * Like mapGroupsWithState, but each call returns any number of rows: an array or any iterable. A
   * generator may update the state while it yields; the state is written once it is exhausted.
   * `outputMode` declares whether the rows are final (append) or updates (update); the query must match.
   */
  flatMapGroupsWithState<S, U extends object>(
    fn: FlatMapGroupsFunction<K, V, S, U>,
    options: FlatMapGroupsWithStateOptions<K, S>,
  ): Dataset<U> {
    checkFunction(fn, 'flatMapGroupsWithState');
    const mode = options?.outputMode;
    if (mode !== 'append' && mode !== 'update') {
      throw new SluiceError(
        'BAD_OPTION',
        `flatMapGroupsWithState: outputMode must be 'append' or 'update', got ${JSON.stringify(mode)}`,
        "e.g. flatMapGroupsWithState(fn, { outputMode: 'update', timeout: 'ProcessingTimeTimeout' })",
      );
    }
    return this.withState('flatMap', fn, options);
  }

  /**
   * Spark 4's transformWithState: a {@link StatefulProcessor} handles each key's rows and timers with state
   * variables (ValueState, ListState, MapState, each with an optional TTL) and any number of timers per key.
   * `timeMode` picks the timers' clock ('None' has no timers; 'EventTime' needs withWatermark); `outputMode`
   * says whether its rows are final ('append') or updates ('update'), and the query must be written in it.
   * Timers fire in batches without new data too, as mapGroupsWithState's timeouts do.
   */
  transformWithState<U extends object, S = never>(
    processor: StatefulProcessor<K, V, U>,
    timeMode: TimeMode,
    outputMode: 'append' | 'update',
    options: TransformWithStateOptions<K, S> = {},
  ): Dataset<U> {
    const where = 'transformWithState';
    const isProcessor =
      processor !== null &&
      typeof processor === 'object' &&
      typeof (processor as { init?: unknown }).init === 'function' &&
      typeof (processor as { handleInputRows?: unknown }).handleInputRows === 'function' &&
      typeof (processor as { setHandle?: unknown }).setHandle === 'function';
    if (!isProcessor) {
      throw new SluiceError(
        'BAD_OPTION',
        `${where} needs a StatefulProcessor, got ${processor === null ? 'null' : typeof processor}`,
        'pass an instance of a class that extends StatefulProcessor and implements init and handleInputRows',
      );
    }
    const timeModes: readonly string[] = Object.values(TimeMode);
    if (!timeModes.includes(timeMode)) {
      throw new SluiceError(
        'BAD_OPTION',
        `${where}: unknown timeMode ${JSON.stringify(timeMode)}`,
        `use one of: ${timeModes.join(', ')}`,
      );
    }
    if (outputMode !== 'append' && outputMode !== 'update') {
      throw new SluiceError(
        'BAD_OPTION',
        `${where}: outputMode must be 'append' or 'update', got ${JSON.stringify(outputMode)}`,
        "e.g. transformWithState(new MyProcessor(), 'ProcessingTime', 'update')",
      );
    }
    const initialState = normaliseInitialState(
      options.initialState as Iterable<readonly [unknown, unknown]> | undefined,
      where,
    );
    return this.ds.withStatefulOperator(
      new TransformWithStateOperator({
        grouping: this.grouping,
        processor: processor as StatefulProcessor<unknown, unknown, unknown>,
        timeMode,
        outputMode,
        initialState,
        schema: options.schema ? schemaFromSpec(options.schema) : null,
      }),
    );
  }

  /**
   * Running reduction of each key's values: rows `{ key, value }`, one per key updated in the batch
   * (update mode) or for every key (complete mode).
   */
  reduceGroups(fn: (a: V, b: V) => V): Dataset<{ key: K; value: V }> {
    checkFunction(fn, 'reduceGroups');
    return this.ds.withStatefulOperator(
      new KeyedAggregateOperator(this.grouping, {
        name: 'reduceGroups',
        first: (v: unknown) => v,
        add: (acc: unknown, v: unknown) => {
          const r = fn(acc as V, v as V);
          if (r === null || r === undefined) {
            throw new SluiceError(
              'USER_CODE',
              `reduceGroups function returned ${r}`,
              'return the combined value of its two arguments',
            );
          }
          return r;
        },
        row: (key: unknown, acc: unknown) => ({ key, value: acc }),
      }),
    );
  }

  /** Running count of rows per key: rows `{ key, count }` (update or complete mode). */
  count(): Dataset<{ key: K; count: number }> {
    return this.ds.withStatefulOperator(new KeyedAggregateOperator(this.grouping, COUNT_FOLD));
  }

  private withState<S, U extends object>(
    kind: 'map' | 'flatMap',
    fn: MapGroupsFunction<K, V, S, U> | FlatMapGroupsFunction<K, V, S, U>,
    options: MapGroupsWithStateOptions<K, S> | FlatMapGroupsWithStateOptions<K, S>,
  ): Dataset<U> {
    const where = kind === 'map' ? 'mapGroupsWithState' : 'flatMapGroupsWithState';
    const timeout = checkTimeout(options.timeout, where);
    const initialState = normaliseInitialState(
      options.initialState as Iterable<readonly [unknown, unknown]> | undefined,
      where,
    );
    return this.ds.withStatefulOperator(
      new MapGroupsWithStateOperator({
        kind,
        grouping: this.grouping,
        fn,
        timeout,
        outputMode: 'outputMode' in options ? options.outputMode : undefined,
        initialState,
        schema: options.schema ? schemaFromSpec(options.schema) : null,
      } as never),
    );
  }
}

/** What groupBy accepts: column names, column expressions, and window / session_window / bucket. */
export type GroupingLike = string | Column | GroupingColumn;

/**
 * A Dataset grouped by columns (and at most one event-time window), Spark's RelationalGroupedDataset.
 * `agg(...)` runs the streaming aggregation; see lib/plan/operators/aggregate.ts for its output modes,
 * watermark and late-data rules.
 */
export class RelationalGroupedDataset {
  /** @internal */
  constructor(
    private readonly ds: Dataset<unknown>,
    private readonly groupings: readonly Grouping[],
    private readonly allowedLatenessMs = 0,
    private readonly asChangelog = false,
  ) {}

  /** @internal Grouping specs from groupBy's arguments. */
  static groupingsOf(cols: readonly GroupingLike[]): Grouping[] {
    return cols.map((c) => {
      if (c instanceof GroupingColumn) return c.spec;
      if (c instanceof Column) return { kind: 'key', column: c };
      if (typeof c === 'string' && c !== '') return { kind: 'key', column: col(c) };
      throw new SluiceError(
        'BAD_EXPRESSION',
        `groupBy() takes column names, Columns, window(...), session_window(...) or bucket(...), got ${typeof c}`,
        "e.g. groupBy(window('ts', '1 minute'), 'user_id')",
      );
    });
  }

  private get hasWindow(): boolean {
    return this.groupings.some((g) => g.kind === 'window' || g.kind === 'session');
  }

  /**
   * Keeps each window this long after the watermark passes its end (Flink's allowed lateness): rows behind
   * the watermark that fall into a kept window still update it (update mode emits it again; append mode
   * emits each window once, when it is finally closed). Needs a window or session_window in the grouping.
   */
  allowedLateness(duration: string | number): RelationalGroupedDataset {
    if (!this.hasWindow) {
      throw new SluiceError(
        'ANALYSIS',
        'allowedLateness() needs an event-time window in groupBy()',
        "group by window(...) or session_window(...), e.g. groupBy(session_window('ts', '30 minutes'), 'user_id')",
      );
    }
    return new RelationalGroupedDataset(
      this.ds,
      this.groupings,
      parseDuration(duration, 'allowed lateness'),
      this.asChangelog,
    );
  }

  /**
   * Makes `agg` emit a retract stream of the open groups, whatever the query's output mode: a row with
   * `change: 1` for each new or updated result, `change: -1` for the result it replaces, for sessions merged
   * into another and for windows the watermark closes. Aggregating `value × change` downstream gives totals
   * over the currently open windows (several stateful operators in one query).
   */
  changelog(): RelationalGroupedDataset {
    return new RelationalGroupedDataset(this.ds, this.groupings, this.allowedLatenessMs, true);
  }

  /** Aggregates each group: one output column per grouping column, then one per aggregate. */
  agg(...aggregates: AggregateColumn[]): Dataset<Record<string, unknown>> {
    for (const a of aggregates) {
      if (!(a instanceof AggregateColumn)) {
        throw new SluiceError(
          'BAD_EXPRESSION',
          `agg() takes aggregate functions, got ${(a as unknown) instanceof Column ? `the column ${String(a)}` : typeof a}`,
          "use the functions of lib/api/functions.ts, e.g. agg(count('*'), sum('amount'))",
        );
      }
    }
    const op = new AggregateOperator({
      groupings: [...this.groupings],
      aggregates: aggregates.map((a) => ({
        name: a.fn,
        options: a.options,
        fn: aggregateFunction(a.fn, a.args.length, a.options),
        args: [...a.args],
        alias: a.name,
      })),
      allowedLatenessMs: this.allowedLatenessMs,
      changelog: this.asChangelog,
      afterAggregation: walkPlan(this.ds.plan).some(
        (n) => n.kind === 'stateful' && n.operator instanceof AggregateOperator && !n.operator.def.changelog,
      ),
    });
    return this.ds.withStatefulOperator(op);
  }

  /** Rows per group, in a column named `count`. */
  count(): Dataset<Record<string, unknown>> {
    return this.agg(count('*').alias('count'));
  }

  /** `sum(c)` of each column. */
  sum(...columns: string[]): Dataset<Record<string, unknown>> {
    return this.agg(...columns.map((c) => sum(c)));
  }

  /** `avg(c)` of each column. */
  avg(...columns: string[]): Dataset<Record<string, unknown>> {
    return this.agg(...columns.map((c) => avg(c)));
  }

  /** Same as avg. */
  mean(...columns: string[]): Dataset<Record<string, unknown>> {
    return this.avg(...columns);
  }

  /** `min(c)` of each column. */
  min(...columns: string[]): Dataset<Record<string, unknown>> {
    return this.agg(...columns.map((c) => min(c)));
  }

  /** `max(c)` of each column. */
  max(...columns: string[]): Dataset<Record<string, unknown>> {
    return this.agg(...columns.map((c) => max(c)));
  }
}

/** The columns `plan`'s projections make tumbling windows of its event-time column `eventTime`. */
function windowColumnsOf(plan: PlanNode, eventTime: string | undefined): string[] {
  const out: string[] = [];
  for (const n of walkPlan(plan)) {
    if (n.kind !== 'project' || eventTime === undefined) continue;
    for (const c of n.columns) {
      const e = c.expr;
      if (e.kind !== 'alias') continue;
      let inner = e.child;
      while (inner.kind === 'alias') inner = inner.child;
      if (inner.kind !== 'call' || inner.fn !== 'window') continue;
      const time = inner.args[0];
      if (time.kind === 'col' && time.name === eventTime) out.push(e.name);
    }
  }
  return out;
}

/** The event-time column of the withWatermark nearest the top of `plan`, if any. */
function eventTimeColumnOf(plan: PlanNode): string | undefined {
  const marks = walkPlan(plan).filter((n) => n.kind === 'watermark');
  const last = marks[marks.length - 1];
  return last?.kind === 'watermark' ? last.column : undefined;
}
