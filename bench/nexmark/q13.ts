import { col, defineApp } from '../../lib/index.js';
import { nexmarkInput, nexmarkOutput } from './common.js';
import { SIDE_INPUT_FILE, SIDE_INPUT_KEYS } from './side-input.js';

/**
 * Nexmark q13, bounded side input join: every bid with the value of the side input's row keyed by
 * `auction % 10000`, a stream-static join whose static side (a CSV file) is read and hashed once per query.
 * Flink's definition joins `FOR SYSTEM_TIME AS OF` processing time; the side input never changes during a run.
 */
export default defineApp<{ sideInput: string }>({
  name: 'nexmark-q13',
  description: 'Nexmark q13: bids joined with a side input file on auction % 10000',
  options: {
    sideInput: {
      type: 'string',
      describe: 'CSV file of key,value rows (written by the benchmark)',
      default: SIDE_INPUT_FILE,
    },
  },
  inputs: { events: nexmarkInput('bid') },
  outputs: { out: nexmarkOutput('append') },
  build: ({ session, input, options }) => ({
    out: input('events')
      .select('auction', 'bidder', 'price', 'dateTime')
      .join(
        session.read.schema('key LONG, value STRING').csv(options.sideInput),
        col('auction').mod(SIDE_INPUT_KEYS).eq(col('key')),
      )
      .select('auction', 'bidder', 'price', 'dateTime', 'value'),
  }),
});
