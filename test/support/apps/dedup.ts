import { defineApp } from '../../../lib/app/app.js';

/** A test app: events resent by a producer's retries, deduplicated by id within the watermark. */
export default defineApp({
  name: 'dedup',
  description: 'test app: drops resent events by id within the watermark',
  inputs: {
    events: {
      describe: 'JSON events {id, user, amount, ts}',
      default: 'file:data/none',
      format: 'json',
      schema: { id: 'long', user: 'string', amount: 'double', ts: 'timestamp' },
    },
  },
  outputs: { out: { describe: 'each event once', default: 'console:', outputMode: 'append' } },
  build: ({ input }) => ({
    out: input('events').withWatermark('ts', '5 seconds').dropDuplicatesWithinWatermark('id'),
  }),
});
