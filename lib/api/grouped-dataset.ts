import type { Schema } from 'apache-arrow';
import { schemaFromSpec, type SchemaSpec } from '../arrow/schema.js';
import { SluiceError } from '../errors.js';
import { normaliseInitialState, type Grouping } from '../plan/operators/grouping.js';
import { KeyedAggregateOperator } from '../plan/operators/keyed-aggregate.js';
import {
  MapGroupsWithStateOperator, type FlatMapGroupsFunction, type MapGroupsFunction,
} from '../plan/operators/map-groups-with-state.js';
import type { Dataset } from './dataset.js';
import { GROUP_STATE_TIMEOUTS, type GroupStateTimeout } from './group-state.js';

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

function checkTimeout(timeout: unknown, where: string): GroupStateTimeout {
  if (timeout === undefined) return 'NoTimeout';
  if (!GROUP_STATE_TIMEOUTS.includes(timeout as GroupStateTimeout)) {
    throw new SluiceError('BAD_OPTION', `${where}: unknown timeout '${String(timeout)}'`, `use one of: ${GROUP_STATE_TIMEOUTS.join(', ')}`);
  }
  return timeout as GroupStateTimeout;
}

function checkFunction(fn: unknown, where: string): void {
  if (typeof fn !== 'function') throw new SluiceError('BAD_OPTION', `${where} needs a function, got ${typeof fn}`, `e.g. ${where}((key, values, state) => ...)`);
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
  constructor(private readonly ds: Dataset<any>, private readonly grouping: Grouping) {}

  /** The same grouping, with each value replaced by `fn(value)` before the group functions see it. */
  mapValues<W>(fn: (value: V) => W): KeyValueGroupedDataset<K, W> {
    checkFunction(fn, 'mapValues');
    const before = this.grouping.toValue;
    const toValue = before ? (row: unknown) => fn(before(row) as V) : (row: unknown) => fn(row as V);
    return new KeyValueGroupedDataset<K, W>(this.ds, { keyOf: this.grouping.keyOf, column: this.grouping.column, toValue });
  }

  /**
   * Calls `fn(key, values, state)` once per key with new rows in a batch, and once per key whose timeout
   * is due (with no values and `state.hasTimedOut` true); each call returns one output row. Queries using
   * it must run in update output mode.
   */
  mapGroupsWithState<S, U extends object>(fn: MapGroupsFunction<K, V, S, U>, options: MapGroupsWithStateOptions<K, S> = {}): Dataset<U> {
    checkFunction(fn, 'mapGroupsWithState');
    return this.withState('map', fn, options);
  }

  /**
   * Like mapGroupsWithState, but each call returns any number of rows: an array or any iterable. A
   * generator may update the state while it yields; the state is written once it is exhausted.
   * `outputMode` declares whether the rows are final (append) or updates (update); the query must match.
   */
  flatMapGroupsWithState<S, U extends object>(fn: FlatMapGroupsFunction<K, V, S, U>, options: FlatMapGroupsWithStateOptions<K, S>): Dataset<U> {
    checkFunction(fn, 'flatMapGroupsWithState');
    const mode = options?.outputMode;
    if (mode !== 'append' && mode !== 'update') {
      throw new SluiceError('BAD_OPTION', `flatMapGroupsWithState: outputMode must be 'append' or 'update', got ${JSON.stringify(mode)}`,
        "e.g. flatMapGroupsWithState(fn, { outputMode: 'update', timeout: 'ProcessingTimeTimeout' })");
    }
    return this.withState('flatMap', fn, options);
  }

  /**
   * Running reduction of each key's values: rows `{ key, value }`, one per key updated in the batch
   * (update mode) or for every key (complete mode).
   */
  reduceGroups(fn: (a: V, b: V) => V): Dataset<{ key: K; value: V }> {
    checkFunction(fn, 'reduceGroups');
    return this.ds.withStatefulOperator(new KeyedAggregateOperator(this.grouping, {
      name: 'reduceGroups',
      first: (v: unknown) => v,
      add: (acc: unknown, v: unknown) => {
        const r = fn(acc as V, v as V);
        if (r === null || r === undefined) {
          throw new SluiceError('USER_CODE', `reduceGroups function returned ${r}`, 'return the combined value of its two arguments');
        }
        return r;
      },
      row: (key: unknown, acc: unknown) => ({ key, value: acc }),
    }));
  }

  /** Running count of rows per key: rows `{ key, count }` (update or complete mode). */
  count(): Dataset<{ key: K; count: number }> {
    return this.ds.withStatefulOperator(new KeyedAggregateOperator(this.grouping, {
      name: 'count',
      first: () => 1,
      add: (acc: unknown) => (acc as number) + 1,
      row: (key: unknown, acc: unknown) => ({ key, count: acc }),
    }));
  }

  private withState<S, U extends object>(kind: 'map' | 'flatMap', fn: MapGroupsFunction<K, V, S, U> | FlatMapGroupsFunction<K, V, S, U>,
    options: MapGroupsWithStateOptions<K, S> | FlatMapGroupsWithStateOptions<K, S>): Dataset<U> {
    const where = kind === 'map' ? 'mapGroupsWithState' : 'flatMapGroupsWithState';
    const timeout = checkTimeout(options.timeout, where);
    const initialState = normaliseInitialState(options.initialState as Iterable<readonly [unknown, unknown]> | undefined, where);
    return this.ds.withStatefulOperator(new MapGroupsWithStateOperator({
      kind,
      grouping: this.grouping,
      fn,
      timeout,
      outputMode: 'outputMode' in options ? options.outputMode : undefined,
      initialState,
      schema: options.schema ? schemaFromSpec(options.schema) : null,
    } as never));
  }
}
