import { col, defineApp, interval, max, window } from '../../lib/index.js';
import { nexmarkInput, nexmarkOutput, WATERMARK_DELAY } from './common.js';

/** Tumbling window length of q7. */
const WINDOW = '10 seconds';

/**
 * Nexmark q7, highest bid: the bids with the highest price of each 10 s tumbling window, written as the
 * reference writes it: the maximum price of each window (a window aggregation, emitted when the watermark
 * closes the window, its end as `dateTime`) joined back to the bids on the price, for bids within the window
 * (`M.dateTime - 10 s <= B.dateTime < M.dateTime`), a stream-stream join after a stateful operator. A window's maximum comes after every on-time bid of
 * the window, so the join keeps bids for one window and drops each maximum once it has joined.
 */
export default defineApp({
  name: 'nexmark-q7',
  description: 'Nexmark q7: the highest bids of each 10 s tumbling window (window max joined back to the bids)',
  inputs: { events: nexmarkInput('bid') },
  outputs: { out: nexmarkOutput('append') },
  build: ({ input }) => {
    const events = input('events').withWatermark('dateTime', WATERMARK_DELAY);
    // The maxima keep the name of the event-time column they are closed by: the join takes it as theirs.
    const maxima = events
      .groupBy(window('dateTime', WINDOW))
      .agg(max('price').alias('maxprice'))
      .select(col('window.end').alias('dateTime'), 'maxprice');
    const bids = events
      .select('auction', 'bidder', 'price', col('dateTime').alias('bidTime'), 'extra')
      .withWatermark('bidTime', WATERMARK_DELAY);
    return {
      out: bids
        .join(
          maxima,
          col('price')
            .eq(col('maxprice'))
            .and(col('bidTime').ge(col('dateTime').minus(interval(WINDOW))))
            .and(col('bidTime').lt(col('dateTime'))),
        )
        .select('auction', 'bidder', 'price', col('bidTime').alias('dateTime'), 'extra'),
    };
  },
});
