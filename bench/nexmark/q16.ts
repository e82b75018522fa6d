import { date_format, defineApp, max } from '../../lib/index.js';
import { nexmarkInput, nexmarkOutput } from './common.js';
import { dailyStatistics } from './daily-statistics.js';

/**
 * Nexmark q16, channel statistics report: q15 per channel and day, with the latest minute of the day a bid
 * came in. Update mode: each batch emits the (channel, day) rows it changed.
 */
export default defineApp({
  name: 'nexmark-q16',
  description: 'Nexmark q16: daily bids, distinct bidders and auctions per channel and price rank',
  inputs: { events: nexmarkInput('bid') },
  outputs: { out: nexmarkOutput('update') },
  build: ({ input }) => ({
    out: input('events')
      .groupBy('channel', date_format('dateTime', 'yyyy-MM-dd').alias('day'))
      .agg(max(date_format('dateTime', 'HH:mm')).alias('minute'), ...dailyStatistics()),
  }),
});
