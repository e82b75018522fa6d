import { SluiceError } from '../../errors.js';
import type { StateTypeSpec } from './transform-with-state-schema.js';

/**
 * Which clock a transformWithState processor's timers follow (Spark's TimeMode):
 * - `None`: no timers (registering one is an error);
 * - `ProcessingTime`: a timer fires once the batch processing time (from the offset log) reaches it;
 * - `EventTime`: a timer fires once the watermark reaches it; needs withWatermark, and rows at or behind
 *   the watermark are dropped.
 */
export type TimeMode = 'None' | 'ProcessingTime' | 'EventTime';

/** The time modes as constants, for code that reads like Spark's `TimeMode.ProcessingTime()`. */
export const TimeMode = {
  None: 'None',
  ProcessingTime: 'ProcessingTime',
  EventTime: 'EventTime',
} as const satisfies Record<TimeMode, TimeMode>;

/**
 * Time to live of a state variable (Spark's TTLConfig), in processing time: what a write stores expires
 * `ttlDuration` ('1 hour', '30s', or ms) after the processing time of the batch that wrote it, and is gone
 * from the next batch whose processing time reaches that point. A ValueState's value, a ListState's list
 * and a MapState's map expire as a whole, counted from their last write.
 */
export interface TTLConfig {
  ttlDuration: string | number;
}

/** How a state variable is declared: its value type (checked on every write and on restart) and TTL. */
export interface StateVariableOptions {
  /**
   * The type of what the variable stores: `'double'`, `['string']`, `{ balance: 'double', 'note?': 'string' }`
   * (a field whose name ends in `?` is optional). Writes that do not fit are refused, and a restart whose
   * declared type cannot read what an earlier run stored is refused, naming the operator and the field.
   * Without it the variable stores any value the state store can encode, unchecked.
   */
  schema?: StateTypeSpec;
  /** Expire what is stored after this long (processing time); without it state lives until cleared. */
  ttl?: TTLConfig;
}

/** The batch's clocks, handed to every processor call (Spark's TimerValues). */
export interface TimerValues {
  /** The batch's processing time in ms (from the offset log: a replay sees the same value). */
  getCurrentProcessingTimeInMs(): number;
  /** The batch's event-time watermark in ms, or -1 when the query has no withWatermark. */
  getCurrentWatermarkInMs(): number;
}

/** The timer that fired, handed to handleExpiredTimer (Spark's ExpiredTimerInfo). */
export interface ExpiredTimerInfo {
  /** The timestamp the timer was registered for, in ms. */
  getExpiryTimeInMs(): number;
}

/** One value per grouping key (Spark's ValueState). */
export interface ValueState<S> {
  /** Whether the current key has a value. */
  exists(): boolean;
  /** The current key's value, or undefined when it has none. */
  get(): S | undefined;
  /** Sets the current key's value (null and undefined are refused: use `clear`). */
  update(value: S): void;
  /** Removes the current key's value. */
  clear(): void;
}

/** A list of values per grouping key (Spark's ListState). */
export interface ListState<S> {
  /** Whether the current key has a non-empty list. */
  exists(): boolean;
  /** The current key's list (a copy; empty when it has none). */
  get(): S[];
  /** Replaces the current key's list (an empty array clears it). */
  put(values: S[]): void;
  appendValue(value: S): void;
  appendList(values: S[]): void;
  clear(): void;
}

/** A map per grouping key (Spark's MapState); iteration follows insertion order. */
export interface MapState<K, V> {
  /** Whether the current key has a non-empty map. */
  exists(): boolean;
  getValue(key: K): V | undefined;
  containsKey(key: K): boolean;
  updateValue(key: K, value: V): void;
  /** The entries as [key, value] pairs. */
  iterator(): [K, V][];
  keys(): K[];
  values(): V[];
  removeKey(key: K): void;
  clear(): void;
}

/**
 * What a processor uses to reach its state (Spark's StatefulProcessorHandle). State variables are declared
 * in `init`; every other call applies to the grouping key the processor is being called for.
 */
export interface StatefulProcessorHandle {
  getValueState<S>(name: string, options?: StateVariableOptions): ValueState<S>;
  getListState<S>(name: string, options?: StateVariableOptions): ListState<S>;
  getMapState<K, V>(name: string, options?: StateVariableOptions): MapState<K, V>;
  /**
   * Registers a timer of the current key at `expiryTimestampMs` (processing time or event time, by the
   * time mode); a key may have several. Registering an existing timer again is a no-op.
   */
  registerTimer(expiryTimestampMs: number): void;
  /** Deletes the current key's timer at `expiryTimestampMs`, if it has one. */
  deleteTimer(expiryTimestampMs: number): void;
  /** The current key's timers, earliest first. */
  listTimers(): number[];
  /** Removes every key's state of variable `name` (declared or left by an earlier version of the processor). */
  deleteIfExists(name: string): void;
}

/**
 * The logic of transformWithState (Spark 4's StatefulProcessor): extend it and implement `init` (declare the
 * state variables through `getHandle()`) and `handleInputRows`; override `handleExpiredTimer` for timers,
 * `close` for cleanup. One instance serves every state partition a thread runs: keep state in state variables,
 * never in fields, since fields are neither checkpointed nor shared between threads.
 *
 * Calls per state partition and batch: `init`, then `handleInitialState` for the initial state's keys (first
 * batch of a checkpoint only), `handleInputRows` once per key with rows (keys in order of first appearance,
 * rows in source order), `handleExpiredTimer` once per due timer (by time, then key), then `close`.
 *
 * @typeParam K the grouping key
 * @typeParam I the input rows (or what mapValues made of them)
 * @typeParam O the output rows
 */
export abstract class StatefulProcessor<K, I, O> {
  private handle: StatefulProcessorHandle | null = null;

  /** Declares the state variables (`this.getHandle().getValueState(...)`); called before each partition's batch. */
  abstract init(outputMode: 'append' | 'update', timeMode: TimeMode): void;

  /** Handles a key's rows of the batch; returns its output rows (an array, or any iterable, e.g. a generator). */
  abstract handleInputRows(key: K, rows: I[], timerValues: TimerValues): Iterable<O>;

  /** Handles a timer of `key` that is due; the timer is deleted before the call. */
  handleExpiredTimer(_key: K, _timerValues: TimerValues, _expiredTimerInfo: ExpiredTimerInfo): Iterable<O> {
    return [];
  }

  /** Called after each partition's batch. */
  close(): void {}

  /** @internal Set by the operator before `init`. */
  setHandle(handle: StatefulProcessorHandle): void {
    this.handle = handle;
  }

  /** The handle to declare and reach state variables and timers with. */
  getHandle(): StatefulProcessorHandle {
    if (this.handle === null) {
      throw new SluiceError(
        'STATEFUL_PROCESSOR',
        'StatefulProcessor.getHandle(): the processor has no handle before its operator calls init',
        'use the handle in init and the handle* methods, not in the constructor',
      );
    }
    return this.handle;
  }
}

/**
 * A StatefulProcessor whose state starts from `transformWithState(..., { initialState })` (Spark's
 * StatefulProcessorWithInitialState): `handleInitialState` is called once per initial-state key in the
 * first batch of a checkpoint, before any input row.
 *
 * @typeParam S the initial state of one key
 */
export abstract class StatefulProcessorWithInitialState<K, I, O, S> extends StatefulProcessor<K, I, O> {
  abstract handleInitialState(key: K, initialState: S, timerValues: TimerValues): void;
}
