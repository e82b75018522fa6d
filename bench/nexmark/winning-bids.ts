/**
 * The winning bid of each auction, which Nexmark q4 and q9 share: auctions joined with the bids made during
 * their lifetime (`B.dateTime BETWEEN A.dateTime AND A.expires`), then per auction the bid with the highest
 * price, the earliest of equal bids (the reference's `ORDER BY B.price DESC, B.dateTime ASC`).
 *
 * The aggregation after the join runs in append mode: it groups by the auction's `expires`, which the join
 * output carries with a watermark of its own. Every bid that can still join an auction is later than the
 * watermark and no later than `expires`, so an auction's group is final once the watermark passes its expiry.
 */
import { col, type Dataset, max_by, struct } from '../../lib/index.js';
import { WATERMARK_DELAY } from './common.js';

/** The auction columns of a winning-bid row, in output order. */
export const AUCTION_COLUMNS = [
  'id',
  'itemName',
  'description',
  'initialBid',
  'reserve',
  'dateTime',
  'expires',
  'seller',
  'category',
  'extra',
] as const;

/**
 * Per auction with at least one bid in its lifetime: the auction's `columns` (those of {@link AUCTION_COLUMNS}
 * it asks for, `id` and `expires` always among them) and its winning bid as a struct `bid`.
 */
export function winningBids(
  events: Dataset<Record<string, unknown>>,
  columns: readonly (typeof AUCTION_COLUMNS)[number][],
): Dataset<Record<string, unknown>> {
  const auctions = events
    .where(col('event_type').eq(1))
    .select(...AUCTION_COLUMNS.map((c) => (c === 'dateTime' ? col('dateTime') : col(`auction.${c}`).alias(c))))
    .withWatermark('dateTime', WATERMARK_DELAY);
  const bids = events
    .where(col('event_type').eq(2))
    .select(
      col('bid.auction').alias('auction'),
      col('bid.bidder').alias('bidder'),
      col('bid.price').alias('price'),
      col('dateTime').alias('bidDateTime'),
      col('bid.extra').alias('bidExtra'),
    )
    .withWatermark('bidDateTime', WATERMARK_DELAY);
  const joined = auctions
    .join(
      bids,
      col('id')
        .eq(col('auction'))
        .and(col('bidDateTime').between(col('dateTime'), col('expires'))),
    )
    .withWatermark('expires', WATERMARK_DELAY);
  return joined.groupBy(...columns).agg(
    // Equal prices keep the smaller struct: the earlier bid (then the smaller bidder, then extra).
    max_by(struct('bidDateTime', 'bidder', 'price', 'bidExtra'), 'price').alias('bid'),
  );
}
