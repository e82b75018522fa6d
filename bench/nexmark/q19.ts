import { defineApp, max_by, struct } from '../../lib/index.js';
import { nexmarkInput, nexmarkOutput } from './common.js';

/** How many bids q19 keeps per auction. */
export const TOP_BIDS = 10;

/**
 * Nexmark q19, auction top-N: the 10 highest bids of each auction. The reference keeps the rows numbered
 * 1 to 10 by `ROW_NUMBER() OVER (PARTITION BY auction ORDER BY price DESC)`; here a top-N aggregate keeps
 * them per auction, Spark's `max_by(col, ord, k)`: a list of the bids (highest price first, so a bid's
 * rank number is its position + 1). Bids at the same price go to the smaller row (by bidder, then the
 * other fields), so the cut at 10 never depends on arrival order. Update mode: each batch emits the
 * auctions whose top 10 it changed.
 */
export default defineApp({
  name: 'nexmark-q19',
  description: 'Nexmark q19: the 10 highest bids of each auction',
  inputs: { events: nexmarkInput('bid') },
  outputs: { out: nexmarkOutput('update') },
  build: ({ input }) => ({
    out: input('events')
      .groupBy('auction')
      .agg(
        max_by(struct('bidder', 'price', 'channel', 'url', 'dateTime', 'extra'), 'price', TOP_BIDS).alias('top_bids'),
      ),
  }),
});
