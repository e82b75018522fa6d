import type { GroupState } from '../../lib/api/group-state.js';
import { defineApp } from '../../lib/app/app.js';

/** One input event. */
interface Event {
  key: string;
  amount: number;
}

/** The state of a key: its running sum. */
interface Sum {
  sum: number;
}

/**
 * Benchmark app: running sum per key through mapGroupsWithState with a processing-time timeout.
 * Every call re-arms the key's timeout; a key idle for `--timeout` is removed and reported with `timedOut`.
 */
export default defineApp<{ timeout: number }>({
  name: 'bench-map-groups-with-state',
  description: 'benchmark: running sum per key with mapGroupsWithState and a processing-time timeout',
  options: {
    timeout: { type: 'duration', default: '1h', describe: 'remove a key idle for this long (processing time)' },
  },
  inputs: {
    events: {
      describe: 'JSON lines {key, amount}',
      default: 'file:none',
      format: 'json',
      schema: { key: 'string', amount: 'long' },
    },
  },
  outputs: {
    sums: { describe: 'running sum of each key updated in the batch', default: 'noop:', outputMode: 'update' },
  },
  build: ({ input, options }) => ({
    sums: input<Event>('events')
      .groupByKey<string>('key')
      .mapGroupsWithState(
        (key: string, events: Event[], state: GroupState<Sum>) => {
          if (state.hasTimedOut) {
            const sum = state.get().sum;
            state.remove();
            return { key, sum, timedOut: true };
          }
          let sum = state.exists ? state.get().sum : 0;
          for (const e of events) sum += e.amount;
          state.update({ sum });
          state.setTimeoutDuration(options.timeout);
          return { key, sum, timedOut: false };
        },
        { timeout: 'ProcessingTimeTimeout', schema: { key: 'string', sum: 'long', timedOut: 'boolean' } },
      ),
  }),
});
