import type { Schema } from 'apache-arrow';
import type { KeyedState, StatefulContext } from '../stateful-operator.js';
import { type GroupState, GroupStateImpl, type GroupStateTimeout } from './group-state.js';
import type { Group, Grouping } from './grouping.js';
import type { KeyIndex } from './key-index.js';
import { KeyedStateOperator, type StateClock } from './keyed-state-operator.js';

/** The function of mapGroupsWithState: one output row per call. */
export type MapGroupsFunction<K, V, S, U> = (key: K, values: V[], state: GroupState<S>) => U;
/** The function of flatMapGroupsWithState: any number of output rows per call (an array, or any iterable). */
export type FlatMapGroupsFunction<K, V, S, U> = (key: K, values: V[], state: GroupState<S>) => Iterable<U>;

/** Everything that defines one mapGroupsWithState / flatMapGroupsWithState operator. */
export interface MapGroupsWithStateSpec {
  kind: 'map' | 'flatMap';
  grouping: Grouping;
  fn: (key: unknown, values: unknown[], state: GroupState<unknown>) => unknown;
  timeout: GroupStateTimeout;
  /** flatMap only: the output mode the function's rows are meant for. */
  outputMode?: 'append' | 'update';
  /** Validated [key, state] pairs seeded into the state by the first batch of a checkpoint. */
  initialState: readonly (readonly [unknown, unknown])[];
  schema: Schema | null;
}

/**
 * mapGroupsWithState and flatMapGroupsWithState (Spark's FlatMapGroupsWithStateExec). Per state partition
 * and batch:
 * 1. with EventTimeTimeout and a watermark, rows at or behind the watermark are dropped and counted;
 * 2. the first batch of a checkpoint seeds the initial state of the partition's keys;
 * 3. the function is called once per key that has rows, keys in order of first appearance, each with
 *    its rows in source order; then once for each initial-state key without rows (first batch only);
 * 4. keys whose timeout is due (processing time, or watermark for EventTimeTimeout) and that got no
 *    rows in this batch are called with no rows and `hasTimedOut` true, by timeout then key;
 * 5. each call's state changes are written once the function (or the iterable it returned) is done.
 * State values are stored as the user's value itself (binary-encoded by the store), with the timeout
 * next to it; a key with a timeout but no value keeps an `undefined` value.
 */
export class MapGroupsWithStateOperator extends KeyedStateOperator {
  readonly name: string;

  get userFunction(): unknown {
    return this.spec.fn;
  }

  constructor(private readonly spec: MapGroupsWithStateSpec) {
    const mode = spec.kind === 'map' ? 'update' : (spec.outputMode ?? 'update');
    super({
      grouping: spec.grouping,
      schema: spec.schema,
      clock: CLOCKS[spec.timeout],
      outputMode: mode,
      outputModeHint:
        spec.kind === 'map'
          ? "mapGroupsWithState emits one updated row per key and batch: use outputMode('update'), or flatMapGroupsWithState with outputMode 'append'"
          : `flatMapGroupsWithState was declared with outputMode '${mode}', so the query must use outputMode('${mode}'); ` +
            `or declare flatMapGroupsWithState(fn, { outputMode: '${mode === 'append' ? 'update' : 'append'}', ... })`,
      watermarkHint:
        "EventTimeTimeout needs a watermark: call withWatermark('<event time column>', '<delay>') before groupByKey",
      initialState: spec.initialState,
      userCode: 'function',
    });
    this.name = spec.kind === 'map' ? 'mapGroupsWithState' : 'flatMapGroupsWithState';
  }

  /** Initial-state keys without rows in the batch are called after the keys with rows, with no rows. */
  protected seed(entries: Iterable<readonly [unknown, unknown]>, groups: KeyIndex<Group>, ctx: StatefulContext): void {
    for (const [key, value] of entries) {
      ctx.state.put(key, value);
      groups.getOrCreate(key, () => ({ key, values: [] }));
    }
  }

  protected handleRows(key: unknown, values: unknown[], ctx: StatefulContext, out: Record<string, unknown>[]): void {
    this.call(key, values, false, ctx, out);
  }

  /** Keys whose timeout is due and that got no rows in this batch, by timeout then key. */
  protected fireDue(
    threshold: number,
    groups: KeyIndex<Group>,
    ctx: StatefulContext,
    out: Record<string, unknown>[],
  ): void {
    for (const key of ctx.state.keysWithTimeoutAtOrBefore(threshold)) {
      if (groups.has(key)) continue;
      ctx.metrics.numKeysTimedOut++;
      this.call(key, [], true, ctx, out);
    }
  }

  protected override endPartition(ctx: StatefulContext): void {
    if (this.spec.timeout === 'NoTimeout') return;
    const next = ctx.state.earliestTimeout();
    if (this.spec.timeout === 'ProcessingTimeTimeout') ctx.metrics.nextProcessingTimeoutMs = next;
    else ctx.metrics.nextEventTimeDeadlineMs = next;
  }

  /** Calls the function for one key and writes back its state changes. */
  private call(
    key: unknown,
    values: unknown[],
    timedOut: boolean,
    ctx: StatefulContext,
    out: Record<string, unknown>[],
  ): void {
    const state = ctx.state;
    const stored = state.has(key);
    const oldTimeout = stored ? state.getTimeout(key) : -1;
    const gs = new GroupStateImpl<unknown>({
      timeoutKind: this.spec.timeout,
      load: () => state.get(key),
      stored,
      hasTimedOut: timedOut,
      processingTimeMs: ctx.processingTimeMs,
      watermarkMs: ctx.eventTimeColumn === undefined ? undefined : ctx.watermarkMs,
    });
    const result = this.spec.fn(key, values, gs);
    if (this.spec.kind === 'map') {
      this.emit(
        result,
        key,
        out,
        'return one row object per call; use flatMapGroupsWithState to return zero or several',
      );
    } else {
      this.emitAll(result, key, out);
    }
    this.writeBack(key, gs, stored, oldTimeout, state);
  }

  /** Persists what the call did: a new value, a removal, or a changed timeout (timeouts reset on every call). */
  private writeBack(
    key: unknown,
    gs: GroupStateImpl<unknown>,
    stored: boolean,
    oldTimeout: number,
    state: KeyedState,
  ): void {
    if (!gs.updated && !gs.removed && gs.timeoutMs === oldTimeout) return;
    const value = gs.value;
    if (value !== undefined) {
      state.put(key, value, gs.timeoutMs);
    } else if (gs.timeoutMs >= 0) {
      state.put(key, undefined, gs.timeoutMs);
    } else if (stored) {
      state.remove(key);
    }
  }
}

const CLOCKS: Record<GroupStateTimeout, StateClock> = {
  NoTimeout: 'none',
  ProcessingTimeTimeout: 'processing',
  EventTimeTimeout: 'event',
};
