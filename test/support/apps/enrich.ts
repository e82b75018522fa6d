import { col } from '../../../lib/api/column.js';
import { defineApp } from '../../../lib/app/app.js';

/** A stateless test app: JSON events, a column filter, a row function, one file output. */
export default defineApp({
  name: 'enrich',
  description: 'test app: keeps positive amounts and tags them',
  inputs: {
    events: {
      describe: 'JSON events {id, user, amount}',
      default: 'file:data/none',
      format: 'json',
      schema: { id: 'long', user: 'string', amount: 'double' },
    },
  },
  outputs: { out: { describe: 'enriched events', default: 'console:', outputMode: 'append' } },
  build: ({ input }) => ({
    out: input<{ id: number; user: string; amount: number }>('events')
      .where(col('amount').gt(0))
      .map((e) => ({ id: e.id, user: e.user, amount: e.amount, tag: `${e.user}-${e.id % 7}` }), {
        id: 'long',
        user: 'string',
        amount: 'double',
        tag: 'string',
      }),
  }),
});
