import { col, lit } from '../../lib/api/column.js';
import { defineApp } from '../../lib/app/app.js';

/** Benchmark app: JSON clickstream → filter (non page views) → projection, no state. */
export default defineApp({
  name: 'bench-stateless',
  description: 'benchmark: parse, filter and project clickstream events',
  inputs: {
    events: {
      describe: 'clickstream JSON lines',
      default: 'file:none',
      format: 'json',
      schema: { user_id: 'string', event_type: 'string', page_url: 'string', timestamp: 'timestamp' },
    },
  },
  outputs: { out: { describe: 'kept events', default: 'noop:', outputMode: 'append' } },
  build: ({ input }) => ({
    out: input('events')
      .where(col('event_type').ne(lit('page_view')))
      .select('user_id', 'event_type', 'page_url', 'timestamp'),
  }),
});
