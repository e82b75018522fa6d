import type { Schema } from 'apache-arrow';
import { SluiceError } from '../../errors.js';
import { encodeKeyString } from '../../state/value-codec.js';
import type { KeyedState, StatefulContext } from '../stateful-operator.js';
import type { Group, Grouping } from './grouping.js';
import type { KeyIndex } from './key-index.js';
import { KeyedStateOperator, type StateClock } from './keyed-state-operator.js';
import { StatefulProcessorHandleImpl } from './transform-with-state-handle.js';
import type { StatefulProcessor, TimeMode, TimerValues } from './transform-with-state-processor.js';
import {
  dropVariable,
  expiriesOf,
  isVariablesKey,
  type KeyRow,
  migrateRowPerVariable,
  storeRow,
  timersOf,
  VARIABLES_KEY,
} from './transform-with-state-rows.js';
import { mergeDeclarations, type StateVariableRecords } from './transform-with-state-schema.js';

/** Everything that defines one transformWithState operator. */
export interface TransformWithStateSpec {
  grouping: Grouping;
  processor: StatefulProcessor<unknown, unknown, unknown>;
  timeMode: TimeMode;
  outputMode: 'append' | 'update';
  /** Validated [key, state] pairs handed to handleInitialState in the first batch of a checkpoint. */
  initialState: readonly (readonly [unknown, unknown])[];
  schema: Schema | null;
}

/** A processor with handleInitialState (StatefulProcessorWithInitialState). */
interface WithInitialState {
  handleInitialState(key: unknown, state: unknown, timerValues: TimerValues): void;
}

const CLOCKS: Record<TimeMode, StateClock> = { None: 'none', ProcessingTime: 'processing', EventTime: 'event' };

/**
 * Spark 4's transformWithState (TransformWithStateExec), on the loop of {@link KeyedStateOperator}. Per state
 * partition and batch:
 * 1. the processor's `init` declares its state variables, which are checked against what earlier batches
 *    declared (see transform-with-state-schema.ts), and variables dropped with deleteIfExists lose their values;
 * 2. values stored with a TTL whose expiry the batch's processing time reached are removed;
 * 3. with timeMode EventTime, rows at or behind the watermark are dropped and counted;
 * 4. the first batch of a checkpoint calls `handleInitialState` per initial-state key of the partition;
 * 5. `handleInputRows` once per key with rows, keys in order of first appearance, rows in source order;
 * 6. `handleExpiredTimer` once per timer due (processing time, or watermark with EventTime) by time, then
 *    by the key's encoding; each timer is deleted before its call;
 * 7. `close`.
 * The output of each call is taken in full (a generator runs to its end) before the next call.
 */
export class TransformWithStateOperator extends KeyedStateOperator {
  readonly name = 'transformWithState';
  private readonly handle: StatefulProcessorHandleImpl;
  private readonly timerValues = { processingTimeMs: 0, watermarkMs: -1 };
  private readonly timerValuesView: TimerValues = {
    getCurrentProcessingTimeInMs: () => this.timerValues.processingTimeMs,
    getCurrentWatermarkInMs: () => this.timerValues.watermarkMs,
  };
  /** Whether a declared variable has a TTL in this partition's batch. */
  private hasTtl = false;

  get userFunction(): unknown {
    return this.spec.processor.handleInputRows;
  }

  constructor(private readonly spec: TransformWithStateSpec) {
    const other = spec.outputMode === 'append' ? 'update' : 'append';
    super({
      grouping: spec.grouping,
      schema: spec.schema,
      clock: CLOCKS[spec.timeMode],
      outputMode: spec.outputMode,
      outputModeHint:
        `transformWithState was declared with outputMode '${spec.outputMode}', so the query must use outputMode('${spec.outputMode}'); ` +
        `or pass '${other}' to transformWithState`,
      watermarkHint:
        "transformWithState with timeMode 'EventTime' needs a watermark: call withWatermark('<event time column>', '<delay>') before groupByKey",
      initialState: spec.initialState,
      userCode: 'processor',
    });
    this.handle = new StatefulProcessorHandleImpl(spec.timeMode, this.name);
  }

  internalRows(state: KeyedState): number {
    return state.has(VARIABLES_KEY) ? 1 : 0;
  }

  protected override beginPartition(ctx: StatefulContext): void {
    const { spec, handle } = this;
    this.timerValues.processingTimeMs = ctx.processingTimeMs;
    this.timerValues.watermarkMs = ctx.eventTimeColumn === undefined ? -1 : ctx.watermarkMs;
    handle.bind(ctx.state, ctx.processingTimeMs);
    spec.processor.setHandle(handle);
    spec.processor.init(spec.outputMode, spec.timeMode);
    const records = this.checkDeclarations(ctx.state);
    this.hasTtl = Object.values(records).some((r) => r.ttlMs !== undefined);
    if (this.hasTtl) this.evictExpired(ctx.state, ctx.processingTimeMs);
  }

  protected seed(entries: Iterable<readonly [unknown, unknown]>): void {
    const withInitial = this.spec.processor as unknown as Partial<WithInitialState>;
    if (typeof withInitial.handleInitialState !== 'function') {
      throw new SluiceError(
        'BAD_OPTION',
        'transformWithState was given an initialState, but its processor has no handleInitialState',
        'extend StatefulProcessorWithInitialState and implement handleInitialState(key, initialState, timerValues)',
      );
    }
    for (const [key, value] of entries) {
      this.handle.setKey(key);
      withInitial.handleInitialState(key, value, this.timerValuesView);
      this.handle.endKey();
    }
  }

  protected handleRows(key: unknown, values: unknown[], _ctx: StatefulContext, out: Record<string, unknown>[]): void {
    this.handle.setKey(key);
    this.emitAll(this.spec.processor.handleInputRows(key, values, this.timerValuesView), key, out);
    this.handle.endKey();
  }

  /** Calls handleExpiredTimer for every timer due at `threshold`, by time and then key encoding. */
  protected fireDue(
    threshold: number,
    _groups: KeyIndex<Group>,
    ctx: StatefulContext,
    out: Record<string, unknown>[],
  ): void {
    const state = ctx.state;
    const due: { t: number; s: string; key: unknown }[] = [];
    for (const key of state.keysWithTimeoutAtOrBefore(threshold)) {
      let s: string | undefined;
      for (const t of timersOf(state.get(key) as KeyRow, state.getTimeout(key))) {
        if (t > threshold) break;
        s ??= encodeKeyString(key);
        due.push({ t, s, key });
      }
    }
    due.sort((a, b) => a.t - b.t || (a.s < b.s ? -1 : a.s > b.s ? 1 : 0));
    const handle = this.handle;
    const processor = this.spec.processor;
    for (const { t, key } of due) {
      handle.setKey(key);
      // A handler called earlier in this loop may have deleted this timer.
      if (!handle.listTimers().includes(t)) continue;
      handle.deleteTimer(t);
      ctx.metrics.numKeysTimedOut++;
      this.emitAll(processor.handleExpiredTimer(key, this.timerValuesView, { getExpiryTimeInMs: () => t }), key, out);
      handle.endKey();
    }
  }

  protected override endPartition(ctx: StatefulContext): void {
    if (this.spec.timeMode === 'ProcessingTime' || (this.spec.timeMode === 'None' && this.hasTtl)) {
      ctx.metrics.nextProcessingTimeoutMs = ctx.state.earliestTimeout();
    }
    this.spec.processor.close();
  }

  protected override releasePartition(): void {
    this.handle.unbind();
  }

  /** Checks this batch's declarations against the stored ones, records them, and drops deleted variables. */
  private checkDeclarations(state: KeyedState): StateVariableRecords {
    const handle = this.handle;
    const current = state.get(VARIABLES_KEY) as StateVariableRecords | undefined;
    const stored = current ?? migrateRowPerVariable(state);
    const merged = mergeDeclarations(stored, handle.declared);
    const doomed: string[] = [];
    for (const name of handle.deleted) {
      if (handle.declared.has(name)) {
        throw new SluiceError(
          'STATEFUL_PROCESSOR',
          `deleteIfExists('${name}') drops a variable init also declares`,
          'delete the old variable before declaring one of the same name in a later version of the processor, not in the same one',
        );
      }
      if (merged[name] === undefined) continue;
      delete merged[name];
      doomed.push(name);
    }
    if (doomed.length > 0) this.dropVariables(state, doomed);
    if (doomed.length > 0 || current === undefined || JSON.stringify(stored) !== JSON.stringify(merged)) {
      state.put(VARIABLES_KEY, merged);
    }
    return merged;
  }

  /** Removes the values of the named variables from every key's row. */
  private dropVariables(state: KeyedState, names: string[]): void {
    const changed: [unknown, KeyRow, number[]][] = [];
    for (const [key, row] of state.entries()) {
      if (isVariablesKey(key)) continue;
      const r = row as KeyRow;
      if (!names.some((name) => r[name] !== undefined)) continue;
      const timers = timersOf(r, state.getTimeout(key));
      for (const name of names) dropVariable(r, name);
      changed.push([key, r, timers]);
    }
    for (const [key, row, timers] of changed) storeRow(state, key, row, timers);
  }

  /** Removes the values whose TTL expiry the processing time reached (timers are left to fireDue). */
  private evictExpired(state: KeyedState, now: number): void {
    for (const key of state.keysWithTimeoutAtOrBefore(now)) {
      const row = state.get(key) as KeyRow;
      const expiries = expiriesOf(row);
      if (expiries === undefined) continue;
      const timers = timersOf(row, state.getTimeout(key));
      let expired = false;
      for (const name in expiries) {
        if (expiries[name] > now) continue;
        dropVariable(row, name);
        expired = true;
      }
      if (expired) storeRow(state, key, row, timers);
    }
  }
}
