import { avg, col, defineApp, max } from '../../lib/index.js';
import { nexmarkInput, nexmarkOutput } from './common.js';
import { auctionBids } from './winning-bids.js';

/**
 * Nexmark q4, average price for a category: the average winning price of the auctions of each category, as the
 * reference writes it: the highest price per auction (`MAX(B.price) ... GROUP BY A.id, A.category`) over the
 * auction-bid join (see winning-bids.ts), in append mode, each auction once, when the watermark passes its
 * expiry; then an average per category that emits the categories each batch changed (update mode), as Flink's
 * updating result does. Only the columns q4 reads go through the join.
 */
export default defineApp({
  name: 'nexmark-q4',
  description: 'Nexmark q4: average winning price per category (auction-bid join, max per auction, avg)',
  inputs: { events: nexmarkInput('auction,bid') },
  outputs: { out: nexmarkOutput('update') },
  build: ({ input }) => ({
    out: auctionBids(input('events'), ['category'], ['price'])
      .groupBy('id', 'expires', 'category')
      .agg(max('price').alias('final'))
      .groupBy('category')
      .agg(avg(col('final')).alias('avg_price')),
  }),
});
