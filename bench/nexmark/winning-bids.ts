/**
 * The winning bid of each auction, which Nexmark q4 and q9 share: auctions joined with the bids made during
 * their lifetime (`B.dateTime BETWEEN A.dateTime AND A.expires`), then per auction the highest price (q4) or
 * the bid with the highest price, the earliest of equal bids (q9, the reference's
 * `ORDER BY B.price DESC, B.dateTime ASC`).
 *
 * The aggregation after the join runs in append mode: it groups by the auction's `expires`, which the join
 * output carries with a watermark of its own. Every bid that can still join an auction is later than the
 * watermark and no later than `expires`, so an auction's group is final once the watermark passes its expiry.
 *
 * Each side takes only the columns its query reads into the join: the join buffers and emits every column of
 * its inputs, so a string column nobody reads would be copied for every buffered row and every joined pair.
 */
import { type Column, col, type Dataset, max_by, struct } from '../../lib/index.js';
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

/** The bid columns the join can carry, named apart from the auction's. */
const BID_COLUMNS = {
  auction: col('bid.auction'),
  bidder: col('bid.bidder'),
  price: col('bid.price'),
  bidDateTime: col('dateTime'),
  bidExtra: col('bid.extra'),
} as const;

type AuctionColumn = (typeof AUCTION_COLUMNS)[number];
type BidColumn = keyof typeof BID_COLUMNS;

/** An auction column as the source nests it. */
function auctionColumn(c: AuctionColumn): Column {
  return c === 'dateTime' ? col('dateTime') : col(`auction.${c}`);
}

/**
 * The events of one type (1: auctions, 2: bids) as the columns `columns` (name to column). They are picked before
 * the filter, which then copies only them and not the whole nested auction and bid of every event.
 */
function eventsOf(
  events: Dataset<Record<string, unknown>>,
  type: number,
  columns: [string, Column][],
): Dataset<Record<string, unknown>> {
  return events
    .select(col('event_type'), ...columns.map(([name, c]) => c.alias(name)))
    .where(col('event_type').eq(type))
    .select(...columns.map(([name]) => name));
}

/**
 * Auctions joined with the bids made during their lifetime: the auction's `auctionColumns` (`id`, `dateTime` and
 * `expires` are always there: the condition and the watermark read them) and the bid's `bidColumns` (`auction`
 * and `bidDateTime` always), with a watermark on `expires`.
 */
export function auctionBids(
  events: Dataset<Record<string, unknown>>,
  auctionColumns: readonly AuctionColumn[],
  bidColumns: readonly BidColumn[],
): Dataset<Record<string, unknown>> {
  const auctionNeeds = new Set<AuctionColumn>(['id', 'dateTime', 'expires', ...auctionColumns]);
  const bidNeeds = new Set<BidColumn>(['auction', 'bidDateTime', ...bidColumns]);
  const auctions = eventsOf(
    events,
    1,
    AUCTION_COLUMNS.filter((c) => auctionNeeds.has(c)).map((c) => [c, auctionColumn(c)]),
  ).withWatermark('dateTime', WATERMARK_DELAY);
  const bids = eventsOf(
    events,
    2,
    (Object.keys(BID_COLUMNS) as BidColumn[]).filter((c) => bidNeeds.has(c)).map((c) => [c, BID_COLUMNS[c]]),
  ).withWatermark('bidDateTime', WATERMARK_DELAY);
  return auctions
    .join(
      bids,
      col('id')
        .eq(col('auction'))
        .and(col('bidDateTime').between(col('dateTime'), col('expires'))),
    )
    .withWatermark('expires', WATERMARK_DELAY);
}

/**
 * Per auction with at least one bid in its lifetime: the auction's columns (all of {@link AUCTION_COLUMNS}) and
 * its winning bid as a struct `bid` of `bidDateTime`, `bidder`, `price` and `bidExtra`.
 *
 * The winner is found on the auction's `id` and lifetime alone, and the auction's other columns are joined to it
 * afterwards: an auction's strings (a few hundred bytes) then cross one join once, instead of being copied into
 * every joined pair of its bids and hashed into the aggregation's key. The second join keeps an auction's row
 * until the watermark passes its expiry, the batch in which its winner comes out of the aggregation.
 */
export function winningBids(events: Dataset<Record<string, unknown>>): Dataset<Record<string, unknown>> {
  const winners = auctionBids(events, [], ['bidder', 'price', 'bidExtra'])
    .groupBy('id', 'expires')
    .agg(
      // Equal prices keep the smaller struct: the earlier bid (then the smaller bidder, then extra).
      max_by(struct('bidDateTime', 'bidder', 'price', 'bidExtra'), 'price').alias('bid'),
    );
  const details = eventsOf(
    events,
    1,
    AUCTION_COLUMNS.map((c) => [c === 'id' || c === 'expires' ? `a_${c}` : c, auctionColumn(c)]),
  );
  return details
    .join(
      winners,
      col('a_id')
        .eq(col('id'))
        .and(col('a_expires').ge(col('expires'))),
    )
    .select(...AUCTION_COLUMNS, 'bid');
}
