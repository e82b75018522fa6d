import { col, defineApp, interval, timestamp_millis, unix_millis } from '../../lib/index.js';
import { nexmarkInput, nexmarkOutput, WATERMARK_DELAY } from './common.js';

/** Tumbling window length of q8. */
const WINDOW_MS = 10_000;

/** The start of the 10 s tumbling window of `dateTime`. */
const windowStart = timestamp_millis(unix_millis('dateTime').minus(unix_millis('dateTime').mod(WINDOW_MS)));

/**
 * Nexmark q8, monitor new users: the people who registered and also opened an auction in the same 10 s
 * tumbling window. The reference joins persons grouped by (id, name, window) with auctions grouped by
 * (seller, window); a person registers once, so here it is a window-equality left semi join of persons with
 * auctions on the person id and the window start, which emits each person once, at the first auction that
 * matches. Two rows of one window are less than a window apart, a range the join's state watermark uses to
 * drop both sides' rows once the watermark has passed their window.
 */
export default defineApp({
  name: 'nexmark-q8',
  description: 'Nexmark q8: people who opened an auction in the 10 s window they registered in',
  inputs: { events: nexmarkInput('person,auction') },
  outputs: { out: nexmarkOutput('append') },
  build: ({ input }) => {
    const events = input('events').withWatermark('dateTime', WATERMARK_DELAY);
    const persons = events
      .where(col('event_type').eq(0))
      .select(
        col('person.id').alias('id'),
        col('person.name').alias('name'),
        'dateTime',
        windowStart.alias('starttime'),
      );
    const auctions = events
      .where(col('event_type').eq(1))
      .select(col('auction.seller').alias('seller'), 'dateTime', windowStart.alias('starttime'));
    const sameWindow = col('P.starttime').eq(col('A.starttime'));
    const withinWindow = col('A.dateTime').between(
      col('P.dateTime').minus(interval(WINDOW_MS)),
      col('P.dateTime').plus(interval(WINDOW_MS)),
    );
    return {
      out: persons
        .alias('P')
        .join(auctions.alias('A'), col('P.id').eq(col('A.seller')).and(sameWindow).and(withinWindow), 'left_semi')
        .select('id', 'name', 'starttime'),
    };
  },
});
