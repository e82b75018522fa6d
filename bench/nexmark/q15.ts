import { date_format, defineApp } from '../../lib/index.js';
import { nexmarkInput, nexmarkOutput } from './common.js';
import { dailyStatistics } from './daily-statistics.js';

/**
 * Nexmark q15, bidding statistics report: per day, the bids, distinct bidders and distinct auctions, in
 * total and per price rank. Exact distinct counts (count_distinct keeps each group's set of values). The
 * reference groups without a window, so each batch updates the day's row: update mode.
 */
export default defineApp({
  name: 'nexmark-q15',
  description: 'Nexmark q15: daily bids, distinct bidders and auctions per price rank',
  inputs: { events: nexmarkInput('bid') },
  outputs: { out: nexmarkOutput('update') },
  build: ({ input }) => ({
    out: input('events')
      .groupBy(date_format('dateTime', 'yyyy-MM-dd').alias('day'))
      .agg(...dailyStatistics()),
  }),
});
