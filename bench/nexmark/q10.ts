import { date_format, defineApp } from '../../lib/index.js';
import { nexmarkInput, nexmarkOutput } from './common.js';

/**
 * Nexmark q10, log to file system: every bid with its date and minute of the hour as text, for a file sink
 * partitioned by them (`file:DIR?format=csv&partitionBy=dt,hm`: folders `dt=2024-01-01/hm=00%3A00`, the
 * reference's `PARTITIONED BY (dt, hm)` filesystem table in CSV).
 */
export default defineApp({
  name: 'nexmark-q10',
  description: 'Nexmark q10: bids logged to files partitioned by date and minute',
  inputs: { events: nexmarkInput('bid') },
  outputs: { out: nexmarkOutput('append') },
  build: ({ input }) => ({
    out: input('events').select(
      'auction',
      'bidder',
      'price',
      'dateTime',
      'extra',
      date_format('dateTime', 'yyyy-MM-dd').alias('dt'),
      date_format('dateTime', 'HH:mm').alias('hm'),
    ),
  }),
});
