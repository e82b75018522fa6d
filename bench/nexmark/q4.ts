import { avg, col, defineApp } from '../../lib/index.js';
import { nexmarkInput, nexmarkOutput } from './common.js';
import { winningBids } from './winning-bids.js';

/**
 * Nexmark q4, average price for a category: the average winning price of the auctions of each category. The
 * winning bids (see winning-bids.ts: a stream-stream join of auctions and bids, then the highest price per
 * auction) run in append mode, each auction once, when the watermark passes its expiry; they feed an average
 * per category that emits the categories each batch changed (update mode), as Flink's updating result does.
 */
export default defineApp({
  name: 'nexmark-q4',
  description: 'Nexmark q4: average winning price per category (auction-bid join, max per auction, avg)',
  inputs: { events: nexmarkInput('auction,bid') },
  outputs: { out: nexmarkOutput('update') },
  build: ({ input }) => ({
    out: winningBids(input('events'), ['id', 'expires', 'category'])
      .groupBy('category')
      .agg(avg(col('bid.price')).alias('avg_price')),
  }),
});
