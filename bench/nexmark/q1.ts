import { col, defineApp } from '../../lib/index.js';
import { nexmarkInput, nexmarkOutput } from './common.js';

/** Nexmark q1, currency conversion: each bid with its price from dollars to euros (× 0.908). */
export default defineApp({
  name: 'nexmark-q1',
  description: 'Nexmark q1: bid prices converted to euros',
  inputs: { events: nexmarkInput('bid') },
  outputs: { out: nexmarkOutput('append') },
  build: ({ input }) => ({
    out: input('events').select('auction', 'bidder', col('price').multiply(0.908).alias('price'), 'dateTime', 'extra'),
  }),
});
