import type { Dataset } from '../../lib/api/dataset.js';
import {
  approx_count_distinct,
  coalesce,
  col,
  count,
  count_by,
  count_distinct,
  type GroupingColumn,
  lit,
  round,
  sum,
  top_k,
  when,
  window,
} from '../../lib/api/functions.js';
import { defineApp } from '../../lib/app/app.js';
import { sampleData } from '../../lib/app/sample-data.js';
import { CLICKSTREAM_SCHEMA } from './schema.js';

interface Options {
  'max-out-of-orderness': number;
  'allowed-lateness': number;
  'unique-users': 'exact' | 'approx';
}

/**
 * The Flink aggregation job's metrics of one window size: total events, unique users, page views, clicks, purchases,
 * revenue, the 10 most viewed pages, device and country breakdowns.
 */
export function windowMetrics(events: Dataset, w: GroupingColumn, o: Options): Dataset {
  const is = (type: string) => col('event_type').eq(type);
  return events
    .withWatermark('timestamp', o['max-out-of-orderness'])
    .groupBy(w)
    .allowedLateness(o['allowed-lateness'])
    .agg(
      count('*').alias('total_events'),
      (o['unique-users'] === 'approx' ? approx_count_distinct('user_id') : count_distinct('user_id')).alias(
        'unique_users',
      ),
      count(when(is('page_view'), 1)).alias('page_views'),
      count(when(is('click'), 1)).alias('clicks'),
      count(when(is('purchase'), 1)).alias('purchases'),
      sum(when(is('purchase'), col('metadata.amount'))).alias('revenue'),
      top_k(when(is('page_view'), col('page_url')), 10).alias('top_pages'),
      count_by('device.type').alias('device_breakdown'),
      count_by('geo.country').alias('country_breakdown'),
    )
    .select(
      col('window.start').alias('window_start'),
      col('window.end').alias('window_end'),
      'total_events',
      'unique_users',
      'page_views',
      'clicks',
      'purchases',
      round(coalesce(col('revenue'), lit(0)), 2).alias('revenue'),
      'top_pages',
      'device_breakdown',
      'country_breakdown',
    );
}

const OUTPUT_COLUMNS =
  'window_start, window_end, total_events, unique_users, page_views, clicks, purchases, revenue, top_pages, device_breakdown, country_breakdown';

export default defineApp<Options>({
  name: 'clickstream-metrics',
  description: 'Flink aggregations: 1-minute, 5-minute sliding and hourly clickstream metrics (event-time windows)',
  options: {
    'max-out-of-orderness': {
      type: 'duration',
      default: '5m',
      describe: 'watermark delay: how far behind the latest event an on-time event may be',
    },
    'allowed-lateness': {
      type: 'duration',
      default: '0s',
      describe: 'keep a window this long after the watermark passes its end (it is written once, after that)',
    },
    'unique-users': {
      type: 'string',
      default: 'exact',
      choices: ['exact', 'approx'],
      describe:
        'unique users: exact (a set of users per window) or approx (HyperLogLog, 512 bytes per window, ~4.6% error)',
    },
  },
  inputs: {
    events: {
      describe: 'JSON clickstream events (see the README)',
      default: sampleData('clickstream'),
      format: 'json',
      schema: CLICKSTREAM_SCHEMA,
    },
  },
  outputs: {
    'metrics-1m': {
      describe: `1-minute tumbling windows: ${OUTPUT_COLUMNS}`,
      default: 'console:',
      outputMode: 'append',
    },
    'metrics-5m': {
      describe: `5-minute windows sliding by 1 minute: ${OUTPUT_COLUMNS}`,
      default: 'console:',
      outputMode: 'append',
    },
    'metrics-1h': { describe: `1-hour tumbling windows: ${OUTPUT_COLUMNS}`, default: 'console:', outputMode: 'append' },
  },
  build: ({ input, options }) => ({
    'metrics-1m': windowMetrics(input('events'), window('timestamp', '1 minute'), options),
    'metrics-5m': windowMetrics(input('events'), window('timestamp', '5 minutes', '1 minute'), options),
    'metrics-1h': windowMetrics(input('events'), window('timestamp', '1 hour'), options),
  }),
});
