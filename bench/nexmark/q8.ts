import { col, defineApp, first, max, when, window } from '../../lib/index.js';
import { nexmarkInput, nexmarkOutput, WATERMARK_DELAY } from './common.js';

/**
 * Nexmark q8, monitor new users: the people who registered and also opened an auction in the same 10 s
 * tumbling window. The reference joins persons grouped by (id, name, window) with auctions grouped by
 * (seller, window); here one aggregation over both kinds does the join: rows are grouped by window and
 * person id (the person's id, or the auction's seller), and a group is kept when it saw both a person
 * and an auction. Append mode: each window's result is emitted once, when the watermark closes it.
 */
export default defineApp({
  name: 'nexmark-q8',
  description: 'Nexmark q8: people who opened an auction in the 10 s window they registered in',
  inputs: { events: nexmarkInput('person,auction') },
  outputs: { out: nexmarkOutput('append') },
  build: ({ input }) => {
    const isPerson = col('event_type').eq(0);
    return {
      out: input('events')
        .withWatermark('dateTime', WATERMARK_DELAY)
        .select(
          'dateTime',
          when(isPerson, col('person.id')).otherwise(col('auction.seller')).alias('id'),
          col('person.name').alias('name'),
          isPerson.alias('is_person'),
          isPerson.not().alias('is_auction'),
        )
        .groupBy(window('dateTime', '10 seconds'), 'id')
        .agg(first('name', true).alias('name'), max('is_person').alias('person'), max('is_auction').alias('auction'))
        .where(col('person').and(col('auction')))
        .select('id', 'name', col('window.start').alias('starttime')),
    };
  },
});
