import { col, defineApp } from '../../lib/index.js';
import { nexmarkInput, nexmarkOutput, WATERMARK_DELAY } from './common.js';

/**
 * Nexmark q20, expand bid with auction: each bid on a category-10 auction with the auction's columns, a
 * stream-stream inner join of bids and auctions on `auction = id`. Flink's definition is a regular join with no
 * time bound, which keeps every bid in state forever; here a bid joins its auction during the auction's
 * lifetime (`B.dateTime BETWEEN A.dateTime AND A.expires`), which lets the watermark expire both sides' rows.
 */
export default defineApp({
  name: 'nexmark-q20',
  description: 'Nexmark q20: bids joined with their category-10 auction, within its lifetime',
  inputs: { events: nexmarkInput('auction,bid') },
  outputs: { out: nexmarkOutput('append') },
  build: ({ input }) => {
    const events = input('events');
    const bids = events
      .where(col('event_type').eq(2))
      .select(
        col('bid.auction').alias('auction'),
        col('bid.bidder').alias('bidder'),
        col('bid.price').alias('price'),
        col('bid.channel').alias('channel'),
        col('bid.url').alias('url'),
        col('dateTime'),
        col('bid.extra').alias('extra'),
      )
      .withWatermark('dateTime', WATERMARK_DELAY);
    const auctions = events
      .where(col('event_type').eq(1).and(col('auction.category').eq(10)))
      .select(
        col('auction.id').alias('id'),
        col('auction.itemName').alias('itemName'),
        col('auction.description').alias('description'),
        col('auction.initialBid').alias('initialBid'),
        col('auction.reserve').alias('reserve'),
        col('dateTime').alias('auctionDateTime'),
        col('auction.expires').alias('expires'),
        col('auction.seller').alias('seller'),
        col('auction.category').alias('category'),
        col('auction.extra').alias('auctionExtra'),
      )
      .withWatermark('auctionDateTime', WATERMARK_DELAY);
    return {
      out: bids
        .join(
          auctions,
          col('auction')
            .eq(col('id'))
            .and(col('dateTime').between(col('auctionDateTime'), col('expires'))),
        )
        .select(
          'auction',
          'bidder',
          'price',
          'channel',
          'url',
          'dateTime',
          'extra',
          'itemName',
          'description',
          'initialBid',
          'reserve',
          'auctionDateTime',
          'expires',
          'seller',
          'category',
          'auctionExtra',
        ),
    };
  },
});
