import { col, defineApp, type GroupState } from '../../lib/index.js';
import { nexmarkInput, nexmarkOutput, WATERMARK_DELAY } from './common.js';

/** Tumbling window length of q7. */
const WINDOW_MS = 10_000;
/** Local maxima are kept per auction bucket, so the first step spreads over state partitions. */
const BUCKETS = 16;

interface Bid {
  auction: number;
  bidder: number;
  price: number;
  dateTime: Date;
  extra: string;
}
/** The highest price of one window seen in one bucket, and the bids at that price. */
interface WindowMax {
  max: number;
  bids: Bid[];
}
/** A bucket's open windows by start time (ms). */
type OpenWindows = Record<string, WindowMax>;
type Winner = Bid & { wstart: number };

const BID_SCHEMA = { auction: 'long', bidder: 'long', price: 'long', dateTime: 'timestamp', extra: 'string' } as const;

/**
 * Step 1, per auction bucket: the highest bids of each open window. When the watermark passes a window's
 * end, the bucket emits its bids at the window's maximum and forgets the window; an event-time timeout at
 * the earliest open end calls buckets that got no rows.
 */
function localMax(_bucket: number, bids: Bid[], state: GroupState<OpenWindows>): Winner[] {
  const windows = state.getOption() ?? {};
  for (const b of bids) {
    const t = b.dateTime.getTime();
    const start = t - (((t % WINDOW_MS) + WINDOW_MS) % WINDOW_MS);
    windows[start] ??= { max: -1, bids: [] };
    const w = windows[start];
    if (b.price > w.max) {
      w.max = b.price;
      w.bids = [b];
    } else if (b.price === w.max) w.bids.push(b);
  }
  const watermark = state.getCurrentWatermarkMs();
  const out: Winner[] = [];
  let nextEnd = Infinity;
  for (const key of Object.keys(windows)) {
    const end = Number(key) + WINDOW_MS;
    if (end <= watermark) {
      for (const b of windows[key].bids) out.push({ ...b, wstart: Number(key) });
      delete windows[key];
    } else nextEnd = Math.min(nextEnd, end);
  }
  if (nextEnd === Infinity) state.remove();
  else {
    state.update(windows);
    state.setTimeoutTimestamp(nextEnd);
  }
  return out;
}

/** Step 2, per window: the bids at the highest of the buckets' maxima (a window's winners all arrive in one batch). */
function globalMax(_wstart: number, winners: Winner[]): Bid[] {
  let max = -1;
  for (const w of winners) if (w.price > max) max = w.price;
  return winners
    .filter((w) => w.price === max)
    .map(({ auction, bidder, price, dateTime, extra }) => ({ auction, bidder, price, dateTime, extra }));
}

/**
 * Nexmark q7, highest bid: the bids with the highest price of each 10 s tumbling window. The reference
 * joins the window maxima back to the bid stream; sluice has no stream joins, so the join is a stateful
 * operator: flatMapGroupsWithState keeps, per window, the highest price and the bids at it, and emits
 * them when the watermark closes the window. It runs in two steps (per auction bucket, then per window)
 * so the per-bid work spreads over all state partitions.
 */
export default defineApp({
  name: 'nexmark-q7',
  description: 'Nexmark q7: the highest bids of each 10 s tumbling window',
  inputs: { events: nexmarkInput('bid') },
  outputs: { out: nexmarkOutput('append') },
  build: ({ input }) => ({
    out: input('events')
      .withWatermark('dateTime', WATERMARK_DELAY)
      .select<Bid>('auction', 'bidder', 'price', 'dateTime', 'extra', col('auction').mod(BUCKETS).alias('bucket'))
      .groupByKey<number>('bucket')
      .flatMapGroupsWithState(localMax, {
        outputMode: 'append',
        timeout: 'EventTimeTimeout',
        schema: { ...BID_SCHEMA, wstart: 'long' },
      })
      .groupByKey<number>('wstart')
      .flatMapGroupsWithState(globalMax, { outputMode: 'append', schema: BID_SCHEMA }),
  }),
});
