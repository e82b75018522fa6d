import { col, defineApp, hour, lit, udf, when } from '../../lib/index.js';
import { nexmarkInput, nexmarkOutput } from './common.js';

/** The reference's `count_char` user-defined function: how many times `c` occurs in `s`. */
function countChar(s: string, c: string): number {
  let n = 0;
  for (let i = s.indexOf(c); i >= 0; i = s.indexOf(c, i + 1)) n++;
  return n;
}

const count_char = udf(countChar, 'long');

/**
 * Nexmark q14, calculation: the bids whose price in euros is between 1 M and 50 M, with the price in euros,
 * the part of the day the bid was made in (a `when` chain over the hour) and the number of 'c' in `extra`,
 * counted by a user-defined function.
 */
export default defineApp({
  name: 'nexmark-q14',
  description: 'Nexmark q14: bids priced 1 M to 50 M euros, with time of day and a user-defined function',
  inputs: { events: nexmarkInput('bid') },
  outputs: { out: nexmarkOutput('append') },
  build: ({ input }) => {
    const euros = col('price').multiply(0.908);
    const h = hour('dateTime');
    return {
      out: input('events')
        .where(euros.gt(1_000_000).and(euros.lt(50_000_000)))
        .select(
          'auction',
          'bidder',
          euros.alias('price'),
          when(h.ge(8).and(h.le(18)), 'dayTime')
            .when(h.le(6).or(h.ge(20)), 'nightTime')
            .otherwise('otherTime')
            .alias('bidTimeType'),
          'dateTime',
          'extra',
          count_char('extra', lit('c')).alias('c_counts'),
        ),
    };
  },
});
