import { type Dataset, defineApp, type GroupState } from 'sluice';

/** One input event, a JSON line such as `{"key":"alice","amount":12.5}`. */
export type Event = {
  key: string;
  amount: number;
};

/** The running total of a key; `final` is true on its last row, once the key has gone quiet. */
export type Total = {
  key: string;
  total: number;
  count: number;
  final: boolean;
};

/** What is kept per key between batches. */
interface Running {
  total: number;
  count: number;
}

/**
 * Running totals per key (Spark's mapGroupsWithState). Each batch emits the new total of every key it
 * saw; a key that gets no event for `idleMs` of processing time emits its final total and is forgotten.
 */
export function totalsPerKey(events: Dataset<Event>, idleMs: number): Dataset<Total> {
  return events
    .groupByKey((e) => e.key)
    .mapGroupsWithState(
      (key: string, rows: Event[], state: GroupState<Running>): Total => {
        if (state.hasTimedOut) {
          const last = state.get();
          state.remove();
          return { key, ...last, final: true };
        }
        const running = state.getOption() ?? { total: 0, count: 0 };
        for (const e of rows) {
          running.total += e.amount;
          running.count += 1;
        }
        state.update(running);
        // Every event gives the key the full idle period again.
        state.setTimeoutDuration(idleMs);
        return { key, ...running, final: false };
      },
      {
        timeout: 'ProcessingTimeTimeout',
        schema: { key: 'string', total: 'double', count: 'int', final: 'boolean' },
      },
    );
}

/** The app `sluice run ./dist/app.js` runs: its options, input and output, and the query between them. */
export default defineApp<{ idle: number }>({
  name: 'totals',
  description: 'running totals per key; a key that goes quiet is closed with its final total',
  options: {
    idle: { type: 'duration', default: '1m', describe: 'close a key after this long without events (processing time)' },
  },
  inputs: {
    events: {
      describe: 'JSON lines {"key": string, "amount": number}',
      default: 'file:data?maxFilesPerTrigger=1',
      format: 'json',
      schema: { key: 'string', amount: 'double' },
    },
  },
  outputs: {
    totals: { describe: 'rows {key, total, count, final}', default: 'console:', outputMode: 'update' },
  },
  build: ({ input, options }) => ({ totals: totalsPerKey(input<Event>('events'), options.idle) }),
});
