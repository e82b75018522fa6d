import { count, sum } from '../../lib/api/functions.js';
import { defineApp } from '../../lib/app/app.js';

/** The JSON events bench/kafka-e2e.ts produces. */
export const BENCH_EVENT_SCHEMA = {
  user_id: 'string',
  event_type: 'string',
  page_url: 'string',
  ts: 'long',
  amount: 'double',
} as const;

/** Benchmark app: JSON events → count and sum of amount per user (update mode). */
export default defineApp({
  name: 'bench-kafka-aggregate',
  description: 'benchmark: parse JSON events and keep a count and a sum per user',
  inputs: {
    events: {
      describe: 'JSON events',
      default: 'kafka://localhost:9092/events',
      format: 'json',
      schema: BENCH_EVENT_SCHEMA,
    },
  },
  outputs: {
    totals: {
      describe: 'rows {user_id, events, amount} for every user a batch changed',
      default: 'noop:',
      outputMode: 'update',
    },
  },
  build: ({ input }) => ({
    totals: input('events').groupBy('user_id').agg(count('*').alias('events'), sum('amount').alias('amount')),
  }),
});
