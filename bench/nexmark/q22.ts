import { defineApp, split_part } from '../../lib/index.js';
import { nexmarkInput, nexmarkOutput } from './common.js';

/**
 * Nexmark q22, get URL directories: each bid with the first three directories of its URL. The reference's
 * `SPLIT_INDEX(url, '/', 3)` counts parts from 0; Spark's split_part counts from 1, so the parts are 4 to 6.
 */
export default defineApp({
  name: 'nexmark-q22',
  description: 'Nexmark q22: bids with the first three directories of their URL',
  inputs: { events: nexmarkInput('bid') },
  outputs: { out: nexmarkOutput('append') },
  build: ({ input }) => ({
    out: input('events').select(
      'auction',
      'bidder',
      'price',
      'channel',
      split_part('url', '/', 4).alias('dir1'),
      split_part('url', '/', 5).alias('dir2'),
      split_part('url', '/', 6).alias('dir3'),
    ),
  }),
});
