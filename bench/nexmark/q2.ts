import { col, defineApp } from '../../lib/index.js';
import { nexmarkInput, nexmarkOutput } from './common.js';

/** Nexmark q2, selection: the bids on every 123rd auction, with their price. */
export default defineApp({
  name: 'nexmark-q2',
  description: 'Nexmark q2: bids on auctions whose id is a multiple of 123',
  inputs: { events: nexmarkInput('bid') },
  outputs: { out: nexmarkOutput('append') },
  build: ({ input }) => ({
    out: input('events').where(col('auction').mod(123).eq(0)).select('auction', 'price'),
  }),
});
