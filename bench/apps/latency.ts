import { col, lit } from '../../lib/api/column.js';
import { count, max } from '../../lib/api/functions.js';
import { defineApp } from '../../lib/app/app.js';

/**
 * Latency benchmark app (bench/latency.ts): events carrying their send time go through a stateless filter and
 * projection, or a running count per user whose count tells the consumer which events the row covers.
 */
export default defineApp({
  name: 'bench-latency',
  description: 'benchmark: events with their send time, filtered and projected or counted per user',
  options: {
    query: { type: 'string', default: 'stateless', describe: 'stateless (filter and project) or aggregate' },
  },
  inputs: {
    events: {
      describe: 'JSON events {user_id, amount, sent}',
      default: 'file:none',
      format: 'json',
      schema: { user_id: 'string', amount: 'double', sent: 'double' },
    },
  },
  outputs: { out: { describe: 'events or running counts', default: 'noop:', outputMode: 'update' } },
  build: ({ input, options }) => {
    const events = input('events');
    return {
      out:
        options.query === 'aggregate'
          ? events.groupBy('user_id').agg(count('*').alias('n'), max('sent').alias('sent'))
          : events.where(col('amount').ge(lit(1))).select('user_id', 'amount', 'sent'),
    };
  },
});
