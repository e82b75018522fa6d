import { unix_millis } from '../../lib/api/column.js';
import { col, count, defineApp, window } from '../../lib/index.js';
import { nexmarkInput, nexmarkOutput, WATERMARK_DELAY } from './common.js';

/** A window's bid count for one auction, as the first aggregation emits it. */
interface AuctionCount {
  auction: number;
  num: number;
  starttime: Date;
  wstart: number;
}

/** The auctions with the most bids among one window's counts (all of them on a tie, as the reference's `num >= maxn`). */
function hottest(_wstart: number, counts: AuctionCount[]): { auction: number; num: number; starttime: Date }[] {
  let max = 0;
  for (const c of counts) if (c.num > max) max = c.num;
  return counts.filter((c) => c.num === max).map((c) => ({ auction: c.auction, num: c.num, starttime: c.starttime }));
}

/**
 * Nexmark q5, hot items: bids counted per auction in sliding windows of 10 s every 2 s, and per window the
 * auctions with the highest count. The first step is a windowed aggregation in append mode, so each
 * window's counts are emitted once, when the watermark closes it, and all in the same batch (every state
 * partition sees the batch's watermark). The second step groups those counts by window and keeps the
 * maximum: flatMapGroupsWithState without state, since a window's counts never span batches.
 */
export default defineApp({
  name: 'nexmark-q5',
  description: 'Nexmark q5: auctions with the most bids per sliding window (10 s every 2 s)',
  inputs: { events: nexmarkInput('bid') },
  outputs: { out: nexmarkOutput('append') },
  build: ({ input }) => ({
    out: input('events')
      .withWatermark('dateTime', WATERMARK_DELAY)
      .select('auction', 'dateTime')
      .groupBy(window('dateTime', '10 seconds', '2 seconds'), 'auction')
      .agg(count('*').alias('num'))
      .select<AuctionCount>(
        'auction',
        'num',
        col('window.start').alias('starttime'),
        unix_millis(col('window.start')).alias('wstart'),
      )
      .groupByKey<number>('wstart')
      .flatMapGroupsWithState(hottest, {
        outputMode: 'append',
        schema: { auction: 'long', num: 'long', starttime: 'timestamp' },
      }),
  }),
});
