import { col, count, defineApp, session_window } from '../../lib/index.js';
import { nexmarkInput, nexmarkOutput, WATERMARK_DELAY } from './common.js';

/**
 * Nexmark q11, user sessions: the number of bids of each bidder per session, a session ending after 10 s
 * without bids. Append mode: a session is emitted once the watermark passes its end (last bid + 10 s).
 */
export default defineApp({
  name: 'nexmark-q11',
  description: 'Nexmark q11: bids per bidder session (10 s gap)',
  inputs: { events: nexmarkInput('bid') },
  outputs: { out: nexmarkOutput('append') },
  build: ({ input }) => ({
    out: input('events')
      .withWatermark('dateTime', WATERMARK_DELAY)
      .select('bidder', 'dateTime')
      .groupBy(session_window('dateTime', '10 seconds'), 'bidder')
      .agg(count('*').alias('bid_count'))
      .select(
        'bidder',
        'bid_count',
        col('session_window.start').alias('starttime'),
        col('session_window.end').alias('endtime'),
      ),
  }),
});
