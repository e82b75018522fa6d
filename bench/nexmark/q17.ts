import { avg, col, date_format, defineApp, max, min, sum, timestamp_millis, unix_millis } from '../../lib/index.js';
import { nexmarkInput, nexmarkOutput } from './common.js';
import { bidsPerRank } from './daily-statistics.js';

const MS_PER_DAY = 86_400_000;

/**
 * Nexmark q17, auction statistics report: per auction and day, the bids in total and per price rank and the
 * lowest, highest, average and summed price. The reference's average of a BIGINT column is a BIGINT (the
 * fraction dropped), so the double average is cast to long. The reference groups by the formatted day; here
 * the group key is the day's number since the epoch (an integer column: no date string per row to format,
 * intern and hash) and only the output rows format it. Update mode.
 */
export default defineApp({
  name: 'nexmark-q17',
  description: 'Nexmark q17: daily bids per auction and price rank, with min, max, average and total price',
  inputs: { events: nexmarkInput('bid') },
  outputs: { out: nexmarkOutput('update') },
  build: ({ input }) => ({
    out: input('events')
      .groupBy('auction', unix_millis('dateTime').divide(MS_PER_DAY).cast('long').alias('day'))
      .agg(
        ...bidsPerRank(),
        min('price').alias('min_price'),
        max('price').alias('max_price'),
        avg('price').alias('avg_price'),
        sum('price').alias('sum_price'),
      )
      .select(
        'auction',
        date_format(timestamp_millis(col('day').multiply(MS_PER_DAY)), 'yyyy-MM-dd').alias('day'),
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
