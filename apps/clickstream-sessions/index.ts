import type { Dataset } from '../../lib/api/dataset.js';
import {
  coalesce,
  col,
  collect_set,
  concat,
  count,
  lit,
  max,
  max_by,
  min,
  min_by,
  round,
  session_window,
  sum,
  when,
} from '../../lib/api/functions.js';
import { defineApp } from '../../lib/app/app.js';
import { sampleData } from '../../lib/app/sample-data.js';
import { CLICKSTREAM_SCHEMA } from '../clickstream-metrics/schema.js';

interface Options {
  gap: number;
  'max-out-of-orderness': number;
  'allowed-lateness': number;
}

/**
 * The Flink sessionization job: clickstream events sessionised per user with event-time session
 * windows, one output row per session once it is complete, and late events to a dead-letter output.
 */
export function sessionize(events: Dataset, o: Options): Dataset {
  const is = (type: string) => col('event_type').eq(type);
  const sessions = events
    .withWatermark('timestamp', o['max-out-of-orderness'])
    .groupBy('user_id', session_window('timestamp', o.gap))
    .allowedLateness(o['allowed-lateness'])
    .agg(
      min('timestamp').alias('start_time'),
      max('timestamp').alias('end_time'),
      count('*').alias('event_count'),
      count(when(is('page_view'), 1)).alias('page_view_count'),
      count(when(is('click'), 1)).alias('click_count'),
      count(when(is('purchase'), 1)).alias('purchase_count'),
      collect_set('page_url', { orderBy: 'timestamp' }).alias('pages_visited'),
      min_by('page_url', 'timestamp').alias('entry_page'),
      max_by('page_url', 'timestamp').alias('exit_page'),
      min_by('referrer', 'timestamp').alias('referrer'),
      min_by('device.type', 'timestamp').alias('device_type'),
      min_by('geo.country', 'timestamp').alias('country'),
      sum(when(is('purchase'), col('metadata.amount'))).alias('revenue'),
      count(when(is('purchase').and(col('metadata.amount').cast('double').isNull()), 1)).alias(
        'purchases_without_amount',
      ),
    );
  const startMs = col('start_time').cast('double').multiply(1000).cast('long');
  return sessions.select(
    concat(col('user_id'), lit('-'), startMs).alias('session_id'),
    'user_id',
    'start_time',
    'end_time',
    round(col('end_time').cast('double').minus(col('start_time').cast('double')), 3).alias('duration_seconds'),
    'event_count',
    'page_view_count',
    'click_count',
    'purchase_count',
    'pages_visited',
    'entry_page',
    'exit_page',
    'referrer',
    'device_type',
    'country',
    col('purchase_count').gt(0).alias('conversion'),
    round(coalesce(col('revenue'), lit(0)), 2).alias('revenue'),
    'purchases_without_amount',
  );
}

export default defineApp<Options>({
  name: 'clickstream-sessions',
  description:
    'Flink sessionization: sessionise clickstream events per user (event-time session windows), late events to a dead-letter output',
  options: {
    gap: {
      type: 'duration',
      default: '30m',
      describe: 'inactivity gap that ends a session (events at most this far apart share a session)',
    },
    'max-out-of-orderness': {
      type: 'duration',
      default: '5m',
      describe: 'watermark delay: how far behind the latest event an on-time event may be',
    },
    'allowed-lateness': {
      type: 'duration',
      default: '5m',
      describe: 'keep a session this long after the watermark passes its end, for late events',
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
    sessions: {
      describe: 'one row per complete session with its metrics',
      default: 'console:',
      outputMode: 'append',
      key: 'user_id',
    },
    late: {
      describe: 'events that arrived after their session was closed, with late_reason and late_watermark',
      default: 'console:',
      outputMode: 'append',
      lateOf: 'sessions',
      key: 'user_id',
    },
  },
  build: ({ input, options }) => ({ sessions: sessionize(input('events'), options) }),
});
