import { SluiceError } from '../../errors.js';
import { parseDuration } from '../../util/duration.js';

/**
 * How the keys of a mapGroupsWithState / flatMapGroupsWithState time out (Spark's GroupStateTimeout):
 * - `NoTimeout`: never; state lives until the function removes it.
 * - `ProcessingTimeTimeout`: `setTimeoutDuration(d)` fires once the batch processing time (from the offset
 *   log, so a replay sees the same time) reaches the time of that call plus `d`.
 * - `EventTimeTimeout`: `setTimeoutTimestamp(t)` fires once the watermark reaches `t`; needs withWatermark.
 */
export type GroupStateTimeout = 'NoTimeout' | 'ProcessingTimeTimeout' | 'EventTimeTimeout';

/**
 * The state of one key, handed to the function of mapGroupsWithState / flatMapGroupsWithState, with
 * Spark's GroupState semantics. Changes take effect when the function returns (for a returned generator:
 * once it is exhausted) and become part of the batch's state version.
 *
 * Timeouts are reset on every call: a function that wants the key to keep timing out sets the timeout
 * again each time it is called, as in Spark.
 *
 * @typeParam S the state value: anything the state store can encode (plain objects, arrays, primitives,
 * Date, Map, Set, bigint, Uint8Array); not null or undefined.
 */
export interface GroupState<S> {
  /** Whether the key has a state value. */
  readonly exists: boolean;
  /** The state value; throws when there is none (check `exists` or use `getOption`). */
  get(): S;
  /** The state value, or undefined when there is none. */
  getOption(): S | undefined;
  /** Sets the state value (null and undefined are rejected: use `remove`). */
  update(value: S): void;
  /** Removes the state value (an `update` later in the same call sets it again). */
  remove(): void;
  /**
   * ProcessingTimeTimeout only: the key times out once `duration` ('30 minutes', '10s', or ms) has
   * passed after this batch's processing time without the key receiving data.
   */
  setTimeoutDuration(duration: string | number): void;
  /**
   * EventTimeTimeout only: the key times out once the watermark reaches `timestamp` (ms or Date) plus
   * the optional `additionalDuration`. A timestamp earlier than the current watermark is an error.
   */
  setTimeoutTimestamp(timestamp: number | Date, additionalDuration?: string | number): void;
  /** True when the function is called because the key timed out (with no rows). */
  readonly hasTimedOut: boolean;
  /** The batch's event-time watermark in ms; throws when the query has no withWatermark. */
  getCurrentWatermarkMs(): number;
  /** The batch's processing time in ms (from the offset log: a replay sees the same value). */
  getCurrentProcessingTimeMs(): number;
}

function stateError(message: string, hint: string): SluiceError {
  return new SluiceError('GROUP_STATE', message, hint);
}

/** What the operator knows about a key before calling the function. */
export interface GroupStateInit<S> {
  timeoutKind: GroupStateTimeout;
  /** Reads the stored value (undefined when absent); called at most once, on first use. */
  load: () => S | undefined;
  /** Whether the store has a value for the key, without decoding it. */
  stored: boolean;
  hasTimedOut: boolean;
  processingTimeMs: number;
  /** The batch watermark, or undefined when the query has no withWatermark. */
  watermarkMs: number | undefined;
}

/**
 * The GroupState the operator hands to the function; after the call it reads back what to
 * write (`defined`, `value`, `updated`, `removed`, `timeoutMs`).
 */
export class GroupStateImpl<S> implements GroupState<S> {
  private loaded = false;
  private current: S | undefined;
  private isDefined: boolean;
  /** The function called update since the call started. */
  updated = false;
  /** The function called remove (and no update after it). */
  removed = false;
  /** Timeout to store with the key, -1 for none; reset on every call, as in Spark. */
  timeoutMs = -1;

  constructor(private readonly init: GroupStateInit<S>) {
    this.isDefined = init.stored;
  }

  get exists(): boolean {
    if (this.isDefined && !this.loaded) void this.value;
    return this.isDefined;
  }

  /** The value to write, undefined when the key has none. */
  get value(): S | undefined {
    if (!this.loaded) {
      this.loaded = true;
      if (this.isDefined) {
        this.current = this.init.load();
        // A timeout-only entry (timeout set without a value) is stored as undefined.
        if (this.current === undefined) this.isDefined = false;
      }
    }
    return this.isDefined ? this.current : undefined;
  }

  get(): S {
    const v = this.value;
    if (!this.isDefined) {
      throw stateError(
        this.removed
          ? 'GroupState.get(): the state was removed in this call'
          : 'GroupState.get(): this key has no state',
        'check state.exists first, or use state.getOption()',
      );
    }
    return v as S;
  }

  getOption(): S | undefined {
    return this.value;
  }

  update(value: S): void {
    if (value === null || value === undefined) {
      throw stateError(
        `GroupState.update(${value}): ${value} is not a valid state value`,
        'call state.remove() to drop the state of this key',
      );
    }
    this.loaded = true;
    this.current = value;
    this.isDefined = true;
    this.updated = true;
    this.removed = false;
  }

  remove(): void {
    this.loaded = true;
    this.current = undefined;
    this.isDefined = false;
    this.updated = false;
    this.removed = true;
  }

  setTimeoutDuration(duration: string | number): void {
    if (this.init.timeoutKind !== 'ProcessingTimeTimeout') {
      throw stateError(
        `GroupState.setTimeoutDuration() needs timeout 'ProcessingTimeTimeout', but this operator uses '${this.init.timeoutKind}'`,
        this.init.timeoutKind === 'EventTimeTimeout'
          ? 'use state.setTimeoutTimestamp(ms) with EventTimeTimeout'
          : "pass { timeout: 'ProcessingTimeTimeout' } to mapGroupsWithState / flatMapGroupsWithState",
      );
    }
    const ms = parseDuration(duration, 'timeout duration');
    if (!(ms > 0))
      throw stateError(
        `GroupState.setTimeoutDuration(${JSON.stringify(duration)}): the duration must be positive`,
        "e.g. state.setTimeoutDuration('30 minutes')",
      );
    this.timeoutMs = this.init.processingTimeMs + ms;
  }

  setTimeoutTimestamp(timestamp: number | Date, additionalDuration?: string | number): void {
    if (this.init.timeoutKind !== 'EventTimeTimeout') {
      throw stateError(
        `GroupState.setTimeoutTimestamp() needs timeout 'EventTimeTimeout', but this operator uses '${this.init.timeoutKind}'`,
        this.init.timeoutKind === 'ProcessingTimeTimeout'
          ? 'use state.setTimeoutDuration(d) with ProcessingTimeTimeout'
          : "pass { timeout: 'EventTimeTimeout' } to mapGroupsWithState / flatMapGroupsWithState (and withWatermark before groupByKey)",
      );
    }
    const base = timestamp instanceof Date ? timestamp.getTime() : timestamp;
    const extra =
      additionalDuration === undefined ? 0 : parseDuration(additionalDuration, 'additional timeout duration');
    const ms = base + extra;
    if (!Number.isFinite(ms) || ms <= 0) {
      throw stateError(
        `GroupState.setTimeoutTimestamp(): the timeout timestamp must be a positive time in ms, got ${String(ms)}`,
        'pass an event time (ms since the epoch or a Date), e.g. the latest event time of the key plus a gap',
      );
    }
    const wm = this.init.watermarkMs;
    if (wm !== undefined && ms < wm) {
      throw stateError(
        `GroupState.setTimeoutTimestamp(${ms}): the timeout timestamp is earlier than the current watermark ${wm}`,
        'a timeout behind the watermark would fire at once; set it at or after state.getCurrentWatermarkMs()',
      );
    }
    this.timeoutMs = Math.floor(ms);
  }

  get hasTimedOut(): boolean {
    return this.init.hasTimedOut;
  }

  getCurrentWatermarkMs(): number {
    if (this.init.watermarkMs === undefined) {
      throw stateError(
        'GroupState.getCurrentWatermarkMs(): the query has no watermark',
        "call withWatermark('<event time column>', '<delay>') before groupByKey",
      );
    }
    return this.init.watermarkMs;
  }

  getCurrentProcessingTimeMs(): number {
    return this.init.processingTimeMs;
  }
}
