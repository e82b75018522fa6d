import type { RecordBatch, Schema } from 'apache-arrow';
import type { OutputMode } from '../../sinks/output-mode.js';
import type { StatefulContext, StatefulOperator } from '../stateful-operator.js';
import { type Grouping, groupBatches, keysOfBatch, outputBatch, partitionsOfBatch } from './grouping.js';

/** A running fold per key: `first` starts it from a key's first value, `add` folds in each later one. */
export interface KeyedFold {
  /** Operator name for messages and progress, e.g. `reduceGroups`. */
  name: string;
  first: (value: unknown) => unknown;
  add: (acc: unknown, value: unknown) => unknown;
  /** The output row of a key and its folded value. */
  row: (key: unknown, acc: unknown) => Record<string, unknown>;
}

/** The fold of `count()`: rows per key. Shared, so a plan description can recognise and rebuild it. */
export const COUNT_FOLD: KeyedFold = {
  name: 'count',
  first: () => 1,
  add: (acc: unknown) => (acc as number) + 1,
  row: (key: unknown, acc: unknown) => ({ key, count: acc }),
};

/**
 * reduceGroups and count of a keyed dataset (Spark's streaming aggregation of a KeyValueGroupedDataset):
 * the state of a key is its folded value. Update mode emits the keys that got rows in this batch (in order
 * of first appearance), complete mode every key (ordered by key encoding, the same in every run).
 * Append mode is refused: without event time a fold is never final.
 */
export class KeyedAggregateOperator implements StatefulOperator {
  readonly name: string;
  readonly outputSchema: Schema | null = null;
  readonly outputModes: readonly OutputMode[] = ['update', 'complete'];
  readonly outputModeHint: string;

  constructor(
    readonly grouping: Grouping,
    readonly fold: KeyedFold,
  ) {
    this.name = fold.name;
    this.outputModeHint = `${fold.name} emits running results that change with every batch: use outputMode('update') or outputMode('complete')`;
  }

  usesWatermark(): boolean {
    return false;
  }

  keysOf(batch: RecordBatch): unknown[] {
    return keysOfBatch(this.grouping, batch);
  }

  partitionsOf(batch: RecordBatch, numPartitions: number): Int32Array {
    return partitionsOfBatch(this.grouping, batch, numPartitions);
  }

  process(input: RecordBatch[], ctx: StatefulContext): RecordBatch[] {
    const { fold, grouping } = this;
    const state = ctx.state;
    const groups = groupBatches(grouping, input);
    const out: Record<string, unknown>[] = [];
    for (const { key, values } of groups.values()) {
      let acc: unknown;
      let i = 0;
      if (state.has(key)) acc = state.get(key);
      else acc = fold.first(values[i++]);
      for (; i < values.length; i++) acc = fold.add(acc, values[i]);
      state.put(key, acc);
      if (ctx.outputMode !== 'complete') out.push(fold.row(key, acc));
    }
    if (ctx.outputMode === 'complete') {
      for (const [key, acc] of state.sortedEntries()) out.push(fold.row(key, acc));
    }
    return outputBatch(out, null);
  }
}
