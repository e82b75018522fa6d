import { count, window } from '../../../lib/api/functions.js';
import type { GroupState } from '../../../lib/api/group-state.js';
import { defineApp } from '../../../lib/app/app.js';

interface Tick {
  timestamp: Date;
  value: number;
}

/**
 * A test app that runs until stopped: the rate source's ticks counted per bucket (mapGroupsWithState)
 * and per second (a windowed aggregation with a watermark), for the live status, the UI and signals.
 */
export default defineApp<{ buckets: number; 'fail-at': number; 'slow-ms': number }>({
  name: 'ticker',
  description: 'test app: rate ticks counted per bucket and per second',
  options: {
    buckets: { type: 'number', default: 8, describe: 'number of buckets (keys of the state)' },
    'fail-at': {
      type: 'number',
      default: 0,
      describe: 'throw once a bucket has counted this many ticks (0: never), to test failures',
    },
    'slow-ms': {
      type: 'number',
      default: 0,
      describe: 'spend this long on each bucket of each batch, to test what happens during a batch',
    },
  },
  inputs: { ticks: { describe: 'the rate source', default: 'rate:?rowsPerSecond=200' } },
  outputs: {
    buckets: { describe: 'ticks per bucket', default: 'noop:', outputMode: 'update' },
    seconds: { describe: 'ticks per second of event time', default: 'noop:', outputMode: 'append' },
  },
  build: ({ input, options }) => ({
    buckets: input<Tick>('ticks')
      .groupByKey((t) => `b${t.value % options.buckets}`)
      .mapGroupsWithState(
        (bucket: string, ticks: Tick[], state: GroupState<number>) => {
          const n = (state.getOption() ?? 0) + ticks.length;
          for (const end = Date.now() + options['slow-ms']; Date.now() < end; );
          if (options['fail-at'] > 0 && n >= options['fail-at']) throw new Error(`bucket ${bucket} reached ${n} ticks`);
          state.update(n);
          return { bucket, ticks: n };
        },
        { schema: { bucket: 'string', ticks: 'long' } },
      ),
    seconds: input('ticks')
      .withWatermark('timestamp', '1 second')
      .groupBy(window('timestamp', '1 second'))
      .agg(count('*').alias('n')),
  }),
});
