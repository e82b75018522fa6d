import type { RecordBatch, Schema } from 'apache-arrow';
import { SluiceError } from '../../errors.js';
import type { OutputMode } from '../../sinks/output-mode.js';
import type { KeyedState, StatefulContext, StatefulOperator } from '../stateful-operator.js';
import { type GroupState, GroupStateImpl, type GroupStateTimeout } from './group-state.js';
import {
  type Grouping,
  groupBatches,
  initialEntriesOf,
  keysOfBatch,
  outputBatch,
  partitionsOfBatch,
} from './grouping.js';

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

/** Whether a user function's result can be iterated for its rows. */
export function isIterable(v: unknown): v is Iterable<unknown> {
  return (
    v !== null && typeof v === 'object' && typeof (v as { [Symbol.iterator]?: unknown })[Symbol.iterator] === 'function'
  );
}

/** Whether a user function returned a Promise (or any thenable), which stateful functions must not. */
export function isThenable(v: unknown): boolean {
  return v !== null && typeof v === 'object' && typeof (v as { then?: unknown }).then === 'function';
}

/** A grouping key as messages show it. */
export function describeKey(key: unknown): string {
  try {
    return JSON.stringify(key, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v)) ?? String(key);
  } catch {
    return String(key);
  }
}

/** Which rows of `batch` are after the watermark (1) or late (0, counted as dropped); null when all are kept. */
export function notLateRows(batch: RecordBatch, column: string, ctx: StatefulContext): Uint8Array | null {
  const i = batch.schema.fields.findIndex((f) => f.name === column);
  if (i < 0) return null;
  const data = batch.data.children[i];
  const values = data.values as ArrayLike<number | bigint>;
  const wm = ctx.watermarkMs;
  const keep = new Uint8Array(batch.numRows);
  for (let r = 0; r < batch.numRows; r++) {
    if (data.getValid(r) && Number(values[r]) <= wm) ctx.metrics.numRowsDroppedByWatermark++;
    else keep[r] = 1;
  }
  return keep;
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
export class MapGroupsWithStateOperator implements StatefulOperator {
  readonly name: string;
  readonly outputSchema: Schema | null;
  readonly outputModes: readonly OutputMode[];
  readonly outputModeHint: string;

  get userFunction(): unknown {
    return this.spec.fn;
  }

  constructor(private readonly spec: MapGroupsWithStateSpec) {
    this.name = spec.kind === 'map' ? 'mapGroupsWithState' : 'flatMapGroupsWithState';
    this.outputSchema = spec.schema;
    if (spec.kind === 'map') {
      this.outputModes = ['update'];
      this.outputModeHint =
        "mapGroupsWithState emits one updated row per key and batch: use outputMode('update'), or flatMapGroupsWithState with outputMode 'append'";
    } else {
      const mode = spec.outputMode ?? 'update';
      this.outputModes = [mode];
      this.outputModeHint =
        `flatMapGroupsWithState was declared with outputMode '${mode}', so the query must use outputMode('${mode}'); ` +
        `or declare flatMapGroupsWithState(fn, { outputMode: '${mode === 'append' ? 'update' : 'append'}', ... })`;
    }
  }

  usesWatermark(): boolean {
    return this.spec.timeout === 'EventTimeTimeout';
  }

  analyze(info: { outputMode: OutputMode; hasWatermark: boolean }): string | null {
    if (this.spec.timeout === 'EventTimeTimeout' && !info.hasWatermark) {
      return "EventTimeTimeout needs a watermark: call withWatermark('<event time column>', '<delay>') before groupByKey";
    }
    return null;
  }

  keysOf(batch: RecordBatch): unknown[] {
    return keysOfBatch(this.spec.grouping, batch);
  }

  partitionsOf(batch: RecordBatch, numPartitions: number): Int32Array {
    return partitionsOfBatch(this.spec.grouping, batch, numPartitions);
  }

  process(input: RecordBatch[], ctx: StatefulContext): RecordBatch[] {
    const { spec } = this;
    const state = ctx.state;
    const out: Record<string, unknown>[] = [];
    const eventTime = spec.timeout === 'EventTimeTimeout' ? ctx.eventTimeColumn : undefined;
    const keep = eventTime === undefined ? undefined : input.map((b) => notLateRows(b, eventTime, ctx));
    const groups = groupBatches(spec.grouping, input, keep);

    if (ctx.batchId === 0 && spec.initialState.length > 0) {
      for (const [key, value] of initialEntriesOf(spec.initialState, ctx.partition, ctx.numPartitions)) {
        state.put(key, value);
        groups.getOrCreate(key, () => ({ key, values: [] }));
      }
    }
    for (const g of groups.values()) this.call(g.key, g.values, false, state, ctx, out);

    const threshold = this.timeoutThreshold(ctx);
    if (threshold !== undefined) {
      for (const key of state.keysWithTimeoutAtOrBefore(threshold)) {
        if (groups.has(key)) continue;
        ctx.metrics.numKeysTimedOut++;
        this.call(key, [], true, state, ctx, out);
      }
    }
    this.reportNextTimeout(state, ctx);
    return outputBatch(out, spec.schema);
  }

  /** Timeouts at or before this time are due, or undefined when the operator has no due timeouts to look for. */
  private timeoutThreshold(ctx: StatefulContext): number | undefined {
    switch (this.spec.timeout) {
      case 'ProcessingTimeTimeout':
        return ctx.processingTimeMs;
      case 'EventTimeTimeout':
        return ctx.eventTimeColumn === undefined ? undefined : ctx.watermarkMs;
      default:
        return undefined;
    }
  }

  private reportNextTimeout(state: KeyedState, ctx: StatefulContext): void {
    if (this.spec.timeout === 'NoTimeout') return;
    const next = state.earliestTimeout();
    if (this.spec.timeout === 'ProcessingTimeTimeout') ctx.metrics.nextProcessingTimeoutMs = next;
    else ctx.metrics.nextEventTimeDeadlineMs = next;
  }

  /** Calls the function for one key and writes back its state changes. */
  private call(
    key: unknown,
    values: unknown[],
    timedOut: boolean,
    state: KeyedState,
    ctx: StatefulContext,
    out: Record<string, unknown>[],
  ): void {
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
    if (isThenable(result)) {
      throw new SluiceError(
        'USER_CODE',
        `${this.name} function returned a Promise for key ${describeKey(key)}`,
        'the function must be synchronous: do the async work before groupByKey or in foreachBatch',
      );
    }
    if (this.spec.kind === 'map') {
      out.push(this.checkRow(result, key));
    } else {
      if (!isIterable(result)) {
        throw new SluiceError(
          'USER_CODE',
          `flatMapGroupsWithState function returned ${result === null ? 'null' : typeof result} for key ${describeKey(key)}`,
          'return an array of rows (possibly empty) or any iterable, e.g. a generator',
        );
      }
      for (const row of result) out.push(this.checkRow(row, key));
    }
    this.writeBack(key, gs, stored, oldTimeout, state);
  }

  private checkRow(row: unknown, key: unknown): Record<string, unknown> {
    if (row === null || typeof row !== 'object' || Array.isArray(row)) {
      throw new SluiceError(
        'USER_CODE',
        `${this.name} function produced ${row === null ? 'null' : Array.isArray(row) ? 'an array' : typeof row} as a row for key ${describeKey(key)}`,
        this.spec.kind === 'map'
          ? 'return one row object per call; use flatMapGroupsWithState to return zero or several'
          : 'each row must be an object, e.g. { id, total }',
      );
    }
    return row as Record<string, unknown>;
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
