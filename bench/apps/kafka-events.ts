import { defineApp } from '../../lib/app/app.js';
import { BENCH_EVENT_SCHEMA } from './kafka-aggregate.js';

/** Benchmark app: JSON events from Kafka written as they are (the sink under test decides the format). */
export default defineApp({
  name: 'bench-kafka-events',
  description: 'benchmark: parse JSON events and write their fields',
  inputs: {
    events: {
      describe: 'JSON events',
      default: 'kafka://localhost:9092/events',
      format: 'json',
      schema: BENCH_EVENT_SCHEMA,
    },
  },
  outputs: { events: { describe: 'the events', default: 'noop:', outputMode: 'append' } },
  build: ({ input }) => ({
    events: input('events').select('user_id', 'event_type', 'page_url', 'ts', 'amount'),
  }),
});
