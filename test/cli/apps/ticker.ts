import { count, window } from '../../../lib/api/functions.js';
import type { GroupState } from '../../../lib/api/group-state.js';
import { defineApp } from '../../../lib/app/app.js';

interface Tick { timestamp: Date; value: number }

/**
 * A test app that runs until stopped: the rate source's ticks counted per bucket (mapGroupsWithState)
 * and per second (a windowed aggregation with a watermark), for the live status, the UI and signals.
 */
export default defineApp<{ buckets: number }>({
  name: 'ticker',
  description: 'test app: rate ticks counted per bucket and per second',
  options: { buckets: { type: 'number', default: 8, describe: 'number of buckets (keys of the state)' } },
  inputs: { ticks: { describe: 'the rate source', default: 'rate:?rowsPerSecond=200' } },
  outputs: {
    buckets: { describe: 'ticks per bucket', default: 'noop:', outputMode: 'update' },
    seconds: { describe: 'ticks per second of event time', default: 'noop:', outputMode: 'append' },
  },
  build: ({ input, options }) => ({
    buckets: input<Tick>('ticks').groupByKey((t) => `b${t.value % options.buckets}`).mapGroupsWithState(
      (bucket: string, ticks: Tick[], state: GroupState<number>) => {
        const n = (state.getOption() ?? 0) + ticks.length;
        state.update(n);
        return { bucket, ticks: n };
      }, { schema: { bucket: 'string', ticks: 'long' } }),
    seconds: input('ticks').withWatermark('timestamp', '1 second').groupBy(window('timestamp', '1 second')).agg(count('*').alias('n')),
  }),
});
