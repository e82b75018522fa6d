import { defineApp, max_by, struct } from '../../lib/index.js';
import { nexmarkInput, nexmarkOutput } from './common.js';

/**
 * Nexmark q18, find last bid: each bidder's latest bid on each auction. The reference keeps row number 1 of
 * `ROW_NUMBER() OVER (PARTITION BY bidder, auction ORDER BY dateTime DESC)`; here an aggregate keeps the
 * whole latest row: `max_by(struct(...), 'dateTime')` per (bidder, auction). Bids at the same time go to the
 * smaller row (by price, then channel, url, extra), so the result never depends on arrival order. Update
 * mode: each batch emits the pairs whose latest bid it changed.
 */
export default defineApp({
  name: 'nexmark-q18',
  description: 'Nexmark q18: the latest bid of each bidder on each auction',
  inputs: { events: nexmarkInput('bid') },
  outputs: { out: nexmarkOutput('update') },
  build: ({ input }) => ({
    out: input('events')
      .groupBy('bidder', 'auction')
      .agg(max_by(struct('price', 'channel', 'url', 'dateTime', 'extra'), 'dateTime').alias('bid'))
      .select('auction', 'bidder', 'bid.price', 'bid.channel', 'bid.url', 'bid.dateTime', 'bid.extra'),
  }),
});
