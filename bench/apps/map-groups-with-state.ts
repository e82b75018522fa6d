import type { GroupState } from '../../lib/api/group-state.js';
import { StatefulProcessor, type TimerValues, type ValueState } from '../../lib/api/stateful-processor.js';
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

/** One output row. */
interface SumRow {
  key: string;
  sum: number;
  timedOut: boolean;
}

/** The same logic with transformWithState: the sum in a ValueState, one processing-time timer per key. */
class SumProcessor extends StatefulProcessor<string, Event, SumRow> {
  private state!: ValueState<Sum>;

  constructor(private readonly timeoutMs: number) {
    super();
  }

  init(): void {
    this.state = this.getHandle().getValueState<Sum>('sum');
  }

  handleInputRows(key: string, events: Event[], timerValues: TimerValues): SumRow[] {
    const handle = this.getHandle();
    let sum = this.state.get()?.sum ?? 0;
    for (const e of events) sum += e.amount;
    this.state.update({ sum });
    for (const t of handle.listTimers()) handle.deleteTimer(t);
    handle.registerTimer(timerValues.getCurrentProcessingTimeInMs() + this.timeoutMs);
    return [{ key, sum, timedOut: false }];
  }

  override handleExpiredTimer(key: string): SumRow[] {
    const sum = this.state.get()?.sum ?? 0;
    this.state.clear();
    return [{ key, sum, timedOut: true }];
  }
}

const SUM_SCHEMA = { key: 'string', sum: 'long', timedOut: 'boolean' } as const;

/**
 * Benchmark app: running sum per key through mapGroupsWithState with a processing-time timeout (or, with
 * `--state-api transformWithState`, the same logic with transformWithState and a timer per key).
 * Every call re-arms the key's timeout; a key idle for `--timeout` is removed and reported with `timedOut`.
 */
export default defineApp<{ timeout: number; 'state-api': 'mapGroupsWithState' | 'transformWithState' }>({
  name: 'bench-map-groups-with-state',
  description: 'benchmark: running sum per key with mapGroupsWithState and a processing-time timeout',
  options: {
    timeout: { type: 'duration', default: '1h', describe: 'remove a key idle for this long (processing time)' },
    'state-api': {
      type: 'string',
      default: 'mapGroupsWithState',
      choices: ['mapGroupsWithState', 'transformWithState'],
      describe: 'the state API the logic is written with',
    },
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
  build: ({ input, options }) => {
    const grouped = input<Event>('events').groupByKey<string>('key');
    if (options['state-api'] === 'transformWithState') {
      return {
        sums: grouped.transformWithState(new SumProcessor(options.timeout), 'ProcessingTime', 'update', {
          schema: SUM_SCHEMA,
        }),
      };
    }
    return {
      sums: grouped.mapGroupsWithState(
        (key: string, events: Event[], state: GroupState<Sum>): SumRow => {
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
        { timeout: 'ProcessingTimeTimeout', schema: SUM_SCHEMA },
      ),
    };
  },
});
