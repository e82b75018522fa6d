/**
 * The aggregates q15 and q16 share: bids, distinct bidders and distinct auctions of a day, in total and per
 * price rank. The reference's `count(*) filter (where ...)` is Spark's `count_if(cond)`, and its
 * `count(distinct x) filter (where ...)` is `count_distinct(when(cond, x))`: `when` without `otherwise` is
 * null where the condition does not hold, and counts skip nulls.
 */
import { type AggregateColumn, type Column, col, count, count_distinct, count_if, when } from '../../lib/index.js';

/** The reference's price ranks: under 10 000, up to 1 M, and above. */
function ranks(): Column[] {
  const price = col('price');
  return [price.lt(10_000), price.ge(10_000).and(price.lt(1_000_000)), price.ge(1_000_000)];
}

/** count(*), count(distinct bidder) and count(distinct auction), each in total and per rank. */
export function dailyStatistics(): AggregateColumn[] {
  const [r1, r2, r3] = ranks();
  const bidders = col('bidder');
  const auctions = col('auction');
  return [
    count('*').alias('total_bids'),
    count_if(r1).alias('rank1_bids'),
    count_if(r2).alias('rank2_bids'),
    count_if(r3).alias('rank3_bids'),
    count_distinct(bidders).alias('total_bidders'),
    count_distinct(when(r1, bidders)).alias('rank1_bidders'),
    count_distinct(when(r2, bidders)).alias('rank2_bidders'),
    count_distinct(when(r3, bidders)).alias('rank3_bidders'),
    count_distinct(auctions).alias('total_auctions'),
    count_distinct(when(r1, auctions)).alias('rank1_auctions'),
    count_distinct(when(r2, auctions)).alias('rank2_auctions'),
    count_distinct(when(r3, auctions)).alias('rank3_auctions'),
  ];
}

/** Bids per rank: count(*) and the count of each rank (q17). */
export function bidsPerRank(): AggregateColumn[] {
  return dailyStatistics().slice(0, 4);
}
