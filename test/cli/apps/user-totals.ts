import { count, sum, window } from '../../../lib/api/functions.js';
import type { GroupState } from '../../../lib/api/group-state.js';
import { defineApp } from '../../../lib/app/app.js';

interface Payment {
  ts: Date;
  user: string;
  amount: number;
}
interface Totals {
  count: number;
  total: number;
}

/**
 * A test app with two stateful outputs, so its checkpoint holds two queries: running totals per user
 * (mapGroupsWithState, object state) and payments per minute (a windowed aggregation with a watermark).
 */
export default defineApp({
  name: 'user-totals',
  description: 'test app: running totals per user and payments per minute',
  inputs: {
    payments: {
      describe: 'JSON lines {ts, user, amount}',
      default: 'file:data/none',
      format: 'json',
      schema: { ts: 'timestamp', user: 'string', amount: 'double' },
    },
  },
  outputs: {
    totals: { describe: 'running count and total per user', default: 'noop:', outputMode: 'update' },
    minutes: {
      describe: 'payments per minute, final once the watermark passes',
      default: 'noop:',
      outputMode: 'append',
    },
  },
  build: ({ input }) => ({
    totals: input<Payment>('payments')
      .groupByKey((p) => p.user)
      .mapGroupsWithState(
        (user: string, payments: Payment[], state: GroupState<Totals>) => {
          const t = state.getOption() ?? { count: 0, total: 0 };
          for (const p of payments) {
            t.count++;
            t.total += p.amount;
          }
          state.update(t);
          return { user, count: t.count, total: t.total };
        },
        { schema: { user: 'string', count: 'long', total: 'double' } },
      ),
    minutes: input('payments')
      .withWatermark('ts', '10 seconds')
      .groupBy(window('ts', '1 minute'))
      .agg(count('*').alias('n'), sum('amount').alias('amount')),
  }),
});
