import { col, count, current_timestamp, defineApp, window } from '../../lib/index.js';
import { nexmarkInput, nexmarkOutput } from './common.js';

/**
 * Nexmark q12, processing-time windows: bids per bidder in 10 s tumbling windows of processing time.
 * A micro-batch's processing time is its batch time from the offset log (`current_timestamp()`, so a
 * replay sees the same value); the window is over that column, and a watermark of zero delay on it closes
 * each window once a batch starts after its end. Append mode: each window is emitted once.
 */
export default defineApp({
  name: 'nexmark-q12',
  description: 'Nexmark q12: bids per bidder in 10 s processing-time windows',
  inputs: { events: nexmarkInput('bid') },
  outputs: { out: nexmarkOutput('append') },
  build: ({ input }) => ({
    out: input('events')
      .select('bidder', current_timestamp().alias('p_time'))
      .withWatermark('p_time', '0 seconds')
      .groupBy(window('p_time', '10 seconds'), 'bidder')
      .agg(count('*').alias('bid_count'))
      .select('bidder', 'bid_count', col('window.start').alias('starttime'), col('window.end').alias('endtime')),
  }),
});
