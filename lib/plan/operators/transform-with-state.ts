import type { RecordBatch, Schema } from 'apache-arrow';
import { SluiceError } from '../../errors.js';
import type { OutputMode } from '../../sinks/output-mode.js';
import { encodeKeyString } from '../../state/value-codec.js';
import type { KeyedState, StatefulContext, StatefulOperator } from '../stateful-operator.js';
import {
  type Grouping,
  groupBatches,
  initialEntriesOf,
  keysOfBatch,
  outputBatch,
  partitionsOfBatch,
} from './grouping.js';
import { describeKey, isIterable, isThenable, notLateRows } from './map-groups-with-state.js';
import { isTimerRow, parseRowKey, StatefulProcessorHandleImpl, VARIABLES_KEY } from './transform-with-state-handle.js';
import type { StatefulProcessor, TimeMode, TimerValues } from './transform-with-state-processor.js';
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

/**
 * Spark 4's transformWithState (TransformWithStateExec). Per state partition and batch:
 * 1. the processor's `init` declares its state variables, which are checked against what earlier batches
 *    declared (see transform-with-state-schema.ts), and variables dropped with deleteIfExists lose their rows;
 * 2. rows stored with a TTL whose expiry the batch's processing time reached are removed;
 * 3. with timeMode EventTime, rows at or behind the watermark are dropped and counted;
 * 4. the first batch of a checkpoint calls `handleInitialState` per initial-state key of the partition;
 * 5. `handleInputRows` once per key with rows, keys in order of first appearance, rows in source order;
 * 6. `handleExpiredTimer` once per timer due (processing time, or watermark with EventTime) by time, then
 *    by the key's encoding; each timer is deleted before its call;
 * 7. `close`.
 * The output of each call is taken in full (a generator runs to its end) before the next call.
 */
export class TransformWithStateOperator implements StatefulOperator {
  readonly name = 'transformWithState';
  readonly outputSchema: Schema | null;
  readonly outputModes: readonly OutputMode[];
  readonly outputModeHint: string;
  private readonly handle: StatefulProcessorHandleImpl;
  private readonly timerValues = { processingTimeMs: 0, watermarkMs: -1 };
  private readonly timerValuesView: TimerValues = {
    getCurrentProcessingTimeInMs: () => this.timerValues.processingTimeMs,
    getCurrentWatermarkInMs: () => this.timerValues.watermarkMs,
  };

  get userFunction(): unknown {
    return this.spec.processor.handleInputRows;
  }

  constructor(private readonly spec: TransformWithStateSpec) {
    this.outputSchema = spec.schema;
    this.outputModes = [spec.outputMode];
    const other = spec.outputMode === 'append' ? 'update' : 'append';
    this.outputModeHint =
      `transformWithState was declared with outputMode '${spec.outputMode}', so the query must use outputMode('${spec.outputMode}'); ` +
      `or pass '${other}' to transformWithState`;
    this.handle = new StatefulProcessorHandleImpl(spec.timeMode, this.name);
  }

  usesWatermark(): boolean {
    return this.spec.timeMode === 'EventTime';
  }

  analyze(info: { outputMode: OutputMode; hasWatermark: boolean }): string | null {
    if (this.spec.timeMode === 'EventTime' && !info.hasWatermark) {
      return "transformWithState with timeMode 'EventTime' needs a watermark: call withWatermark('<event time column>', '<delay>') before groupByKey";
    }
    return null;
  }

  keysOf(batch: RecordBatch): unknown[] {
    return keysOfBatch(this.spec.grouping, batch);
  }

  partitionsOf(batch: RecordBatch, numPartitions: number): Int32Array {
    return partitionsOfBatch(this.spec.grouping, batch, numPartitions);
  }

  internalRows(state: KeyedState): number {
    return state.has(VARIABLES_KEY) ? 1 : 0;
  }

  process(input: RecordBatch[], ctx: StatefulContext): RecordBatch[] {
    const { spec, handle } = this;
    const state = ctx.state;
    const out: Record<string, unknown>[] = [];
    const eventTime = spec.timeMode === 'EventTime' ? ctx.eventTimeColumn : undefined;
    this.timerValues.processingTimeMs = ctx.processingTimeMs;
    this.timerValues.watermarkMs = ctx.eventTimeColumn === undefined ? -1 : ctx.watermarkMs;
    handle.bind(state, ctx.processingTimeMs);
    spec.processor.setHandle(handle);
    try {
      spec.processor.init(spec.outputMode, spec.timeMode);
      const records = this.checkDeclarations(state);
      if (Object.values(records).some((r) => r.ttlMs !== undefined)) this.evictExpired(state, ctx.processingTimeMs);

      if (ctx.batchId === 0 && spec.initialState.length > 0) {
        const withInitial = spec.processor as unknown as Partial<WithInitialState>;
        if (typeof withInitial.handleInitialState !== 'function') {
          throw new SluiceError(
            'BAD_OPTION',
            'transformWithState was given an initialState, but its processor has no handleInitialState',
            'extend StatefulProcessorWithInitialState and implement handleInitialState(key, initialState, timerValues)',
          );
        }
        for (const [key, value] of initialEntriesOf(spec.initialState, ctx.partition, ctx.numPartitions)) {
          handle.setKey(key);
          withInitial.handleInitialState(key, value, this.timerValuesView);
          handle.endKey();
        }
      }

      const keep = eventTime === undefined ? undefined : input.map((b) => notLateRows(b, eventTime, ctx));
      for (const g of groupBatches(spec.grouping, input, keep).values()) {
        handle.setKey(g.key);
        this.collect(spec.processor.handleInputRows(g.key, g.values, this.timerValuesView), g.key, out);
        handle.endKey();
      }

      const threshold = this.timerThreshold(ctx);
      if (threshold !== undefined) this.fireTimers(state, threshold, ctx, out);
      if (spec.timeMode === 'ProcessingTime' || (spec.timeMode === 'None' && this.hasTtl(records))) {
        ctx.metrics.nextProcessingTimeoutMs = state.earliestTimeout();
      }
      spec.processor.close();
    } finally {
      handle.unbind();
    }
    return outputBatch(out, spec.schema);
  }

  private hasTtl(records: StateVariableRecords): boolean {
    return Object.values(records).some((r) => r.ttlMs !== undefined);
  }

  /** Checks this batch's declarations against the stored ones, records them, and drops deleted variables. */
  private checkDeclarations(state: KeyedState): StateVariableRecords {
    const handle = this.handle;
    const stored = state.get(VARIABLES_KEY) as StateVariableRecords | undefined;
    const merged = mergeDeclarations(stored, handle.declared);
    let dropped = false;
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
      dropped = true;
      const doomed: unknown[] = [];
      for (const [key] of state.entries())
        if (Array.isArray(key) && key.length === 2 && key[0] === name) doomed.push(key);
      for (const key of doomed) state.remove(key);
    }
    if (dropped || stored === undefined || JSON.stringify(stored) !== JSON.stringify(merged)) {
      state.put(VARIABLES_KEY, merged);
    }
    return merged;
  }

  /** Removes the rows whose TTL expiry the processing time reached (timer rows are left to fireTimers). */
  private evictExpired(state: KeyedState, now: number): void {
    for (const key of state.keysWithTimeoutAtOrBefore(now)) {
      if (!isTimerRow(key)) state.remove(key);
    }
  }

  /** Timers at or before this time are due, or undefined when the operator has none to fire. */
  private timerThreshold(ctx: StatefulContext): number | undefined {
    switch (this.spec.timeMode) {
      case 'ProcessingTime':
        return ctx.processingTimeMs;
      case 'EventTime':
        return ctx.eventTimeColumn === undefined ? undefined : ctx.watermarkMs;
      default:
        return undefined;
    }
  }

  /** Calls handleExpiredTimer for every timer due at `threshold`, by time and then key encoding. */
  private fireTimers(state: KeyedState, threshold: number, ctx: StatefulContext, out: Record<string, unknown>[]): void {
    const due: { t: number; s: string; key: unknown }[] = [];
    for (const row of state.keysWithTimeoutAtOrBefore(threshold)) {
      if (!isTimerRow(row)) continue;
      const key = parseRowKey(row)!.key;
      const s = encodeKeyString(key);
      for (const t of state.get(row) as number[]) {
        if (t > threshold) break;
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
      this.collect(processor.handleExpiredTimer(key, this.timerValuesView, { getExpiryTimeInMs: () => t }), key, out);
      handle.endKey();
    }
  }

  private collect(result: unknown, key: unknown, out: Record<string, unknown>[]): void {
    if (isThenable(result)) {
      throw new SluiceError(
        'USER_CODE',
        `transformWithState processor returned a Promise for key ${describeKey(key)}`,
        'the processor must be synchronous: do the async work before groupByKey or in foreachBatch',
      );
    }
    if (!isIterable(result)) {
      throw new SluiceError(
        'USER_CODE',
        `transformWithState processor returned ${result === null ? 'null' : typeof result} for key ${describeKey(key)}`,
        'return an array of rows (possibly empty) or any iterable, e.g. a generator',
      );
    }
    for (const row of result) {
      if (row === null || typeof row !== 'object' || Array.isArray(row)) {
        throw new SluiceError(
          'USER_CODE',
          `transformWithState processor produced ${row === null ? 'null' : Array.isArray(row) ? 'an array' : typeof row} as a row for key ${describeKey(key)}`,
          'each row must be an object, e.g. { id, total }',
        );
      }
      out.push(row as Record<string, unknown>);
    }
  }
}
