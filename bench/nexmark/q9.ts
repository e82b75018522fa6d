import { col, defineApp } from '../../lib/index.js';
import { nexmarkInput, nexmarkOutput } from './common.js';
import { AUCTION_COLUMNS, winningBids } from './winning-bids.js';

/**
 * Nexmark q9, winning bids: each auction with its highest bid made during its lifetime (the earliest of equal
 * bids), a stream-stream join of auctions and bids followed by an aggregation per auction (see winning-bids.ts).
 * Each auction is emitted once, when the watermark passes its expiry.
 */
export default defineApp({
  name: 'nexmark-q9',
  description: 'Nexmark q9: the winning bid of each auction (auction-bid join, then max per auction)',
  inputs: { events: nexmarkInput('auction,bid') },
  outputs: { out: nexmarkOutput('append') },
  build: ({ input }) => ({
    out: winningBids(input('events')).select(
      ...AUCTION_COLUMNS,
      col('id').alias('auction'),
      col('bid.bidder').alias('bidder'),
      col('bid.price').alias('price'),
      col('bid.bidDateTime').alias('bid_dateTime'),
      col('bid.bidExtra').alias('bid_extra'),
    ),
  }),
});
