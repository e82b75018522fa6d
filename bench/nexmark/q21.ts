import { col, defineApp, lower, regexp_extract, when } from '../../lib/index.js';
import { nexmarkInput, nexmarkOutput } from './common.js';

/**
 * Nexmark q21, add channel id: the bids of the four named channels, with their number, and the bids whose URL
 * carries a `channel_id` parameter, with its value. Spark's regexp_extract gives '' where the reference's
 * REGEXP_EXTRACT gives null (no match), so "has a channel id" is `!= ''`. The reference's filter (a channel id
 * in the URL, or one of the four channels) holds exactly where the CASE gives a non-empty id, so the id is
 * selected first and the filter reads it: the URL is parsed and the channel lowered once per row, not once in
 * the filter and again in the select (sluice does not eliminate common subexpressions), and the filter copies
 * the short id instead of the URL.
 */
export default defineApp({
  name: 'nexmark-q21',
  description: 'Nexmark q21: bids with the channel id from their channel name or URL',
  inputs: { events: nexmarkInput('bid') },
  outputs: { out: nexmarkOutput('append') },
  build: ({ input }) => {
    const channel = lower(col('channel'));
    return {
      out: input('events')
        .select(
          'auction',
          'bidder',
          'price',
          'channel',
          when(channel.eq('apple'), '0')
            .when(channel.eq('google'), '1')
            .when(channel.eq('facebook'), '2')
            .when(channel.eq('baidu'), '3')
            .otherwise(regexp_extract('url', '(&|^)channel_id=([^&]*)', 2))
            .alias('channel_id'),
        )
        .where(col('channel_id').ne('')),
    };
  },
});
