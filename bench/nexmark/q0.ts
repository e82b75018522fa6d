import { defineApp } from '../../lib/index.js';
import { nexmarkInput, nexmarkOutput } from './common.js';

/** Nexmark q0, pass-through: every bid, its columns as the reference selects them (the cost of source and engine). */
export default defineApp({
  name: 'nexmark-q0',
  description: 'Nexmark q0: pass-through of bids',
  inputs: { events: nexmarkInput('bid') },
  outputs: { out: nexmarkOutput('append') },
  build: ({ input }) => ({
    out: input('events').select('auction', 'bidder', 'price', 'dateTime', 'extra'),
  }),
});
