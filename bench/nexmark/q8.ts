import { col, defineApp, window } from '../../lib/index.js';
import { nexmarkInput, nexmarkOutput, WATERMARK_DELAY } from './common.js';

/** Tumbling window length of q8. */
const WINDOW = '10 seconds';

/**
 * Nexmark q8, monitor new users: the people who registered and also opened an auction in the same 10 s
 * tumbling window. The reference joins persons grouped by (id, name, window) with auctions grouped by
 * (seller, window); a person registers once, so here it is a window-equality left semi join of persons with
 * auctions on the person id and the window, which emits each person once, at the first auction that matches.
 * The windows are columns of both sides over their event time, so the join drops both sides' rows once the
 * watermark has passed their window.
 */
export default defineApp({
  name: 'nexmark-q8',
  description: 'Nexmark q8: people who opened an auction in the 10 s window they registered in',
  inputs: { events: nexmarkInput('person,auction') },
  outputs: { out: nexmarkOutput('append') },
  build: ({ input }) => {
    const events = input('events').withWatermark('dateTime', WATERMARK_DELAY);
    // The fields are selected before the filter, so that it copies them and not the whole person or auction.
    const persons = events
      .select('event_type', col('person.id').alias('id'), col('person.name').alias('name'), window('dateTime', WINDOW))
      .where(col('event_type').eq(0))
      .select('id', 'name', 'window');
    const auctions = events
      .select('event_type', col('auction.seller').alias('seller'), window('dateTime', WINDOW))
      .where(col('event_type').eq(1))
      .select('seller', 'window');
    return {
      out: persons
        .alias('P')
        .join(
          auctions.alias('A'),
          col('P.id')
            .eq(col('A.seller'))
            .and(col('P.window').eq(col('A.window'))),
          'left_semi',
        )
        .select('id', 'name', col('window.start').alias('starttime')),
    };
  },
});
