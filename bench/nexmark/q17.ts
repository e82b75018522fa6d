import { avg, col, date_format, defineApp, max, min, sum } from '../../lib/index.js';
import { nexmarkInput, nexmarkOutput } from './common.js';
import { bidsPerRank } from './daily-statistics.js';

/**
 * Nexmark q17, auction statistics report: per auction and day, the bids in total and per price rank and the
 * lowest, highest, average and summed price. The reference's average of a BIGINT column is a BIGINT (the
 * fraction dropped), so the double average is cast to long. Update mode.
 */
export default defineApp({
  name: 'nexmark-q17',
  description: 'Nexmark q17: daily bids per auction and price rank, with min, max, average and total price',
  inputs: { events: nexmarkInput('bid') },
  outputs: { out: nexmarkOutput('update') },
  build: ({ input }) => ({
    out: input('events')
      .groupBy('auction', date_format('dateTime', 'yyyy-MM-dd').alias('day'))
      .agg(
        ...bidsPerRank(),
        min('price').alias('min_price'),
        max('price').alias('max_price'),
        avg('price').alias('avg_price'),
        sum('price').alias('sum_price'),
      )
      .select(
        'auction',
        'day',
        'total_bids',
        'rank1_bids',
        'rank2_bids',
        'rank3_bids',
        'min_price',
        'max_price',
        col('avg_price').cast('long').alias('avg_price'),
        'sum_price',
      ),
  }),
});
