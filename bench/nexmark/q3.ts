import { col, defineApp } from '../../lib/index.js';
import { nexmarkInput, nexmarkOutput } from './common.js';

/**
 * Nexmark q3, local item suggestion: the sellers in Oregon, Idaho or California who opened an auction in
 * category 10, a stream-stream inner join of auctions and persons on `seller = id`. Flink's definition is a
 * regular join with no time bound, so, as Spark does for an inner join without one, both sides' rows stay in
 * the join's state for the life of the query (the filters keep that to a few percent of the events).
 */
export default defineApp({
  name: 'nexmark-q3',
  description: 'Nexmark q3: sellers in OR, ID or CA of category-10 auctions (auction-person join)',
  inputs: { events: nexmarkInput('person,auction') },
  outputs: { out: nexmarkOutput('append') },
  build: ({ input }) => {
    const events = input('events');
    const auctions = events
      .where(col('event_type').eq(1).and(col('auction.category').eq(10)))
      .select(col('auction.id').alias('id'), col('auction.seller').alias('seller'));
    const persons = events
      .where(
        col('event_type')
          .eq(0)
          .and(col('person.state').eq('OR').or(col('person.state').eq('ID')).or(col('person.state').eq('CA'))),
      )
      .select(
        col('person.id').alias('pid'),
        col('person.name').alias('name'),
        col('person.city').alias('city'),
        col('person.state').alias('state'),
      );
    return {
      out: auctions.join(persons, col('seller').eq(col('pid'))).select('name', 'city', 'state', 'id'),
    };
  },
});
