import { col, interval } from '../../../lib/api/column.js';
import { defineApp } from '../../../lib/app/app.js';

/** A test app with a stream-stream join: each impression with the clicks within 30 s of it, or alone (left outer). */
export default defineApp({
  name: 'ad-clicks',
  description: 'test app: impressions left-outer-joined with their clicks',
  inputs: {
    impressions: {
      describe: 'JSON impressions {ad, shown, page}',
      default: 'file:data/none',
      format: 'json',
      schema: { ad: 'long', shown: 'timestamp', page: 'string' },
    },
    clicks: {
      describe: 'JSON clicks {adId, clicked, button}',
      default: 'file:data/none',
      format: 'json',
      schema: { adId: 'long', clicked: 'timestamp', button: 'string' },
    },
  },
  outputs: { out: { describe: 'impressions and their clicks', default: 'console:', outputMode: 'append' } },
  build: ({ input }) => ({
    out: input('impressions')
      .withWatermark('shown', '10 seconds')
      .alias('i')
      .join(
        input('clicks').withWatermark('clicked', '10 seconds').alias('c'),
        col('i.ad')
          .eq(col('c.adId'))
          .and(col('clicked').between(col('shown'), col('shown').plus(interval('30 seconds')))),
        'left_outer',
      ),
  }),
});
