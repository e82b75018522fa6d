import type { Dataset } from '../../lib/api/dataset.js';
import {
  bucket,
  col,
  count,
  current_timestamp,
  max,
  min,
  round,
  session_window,
  sum,
} from '../../lib/api/functions.js';
import { defineApp } from '../../lib/app/app.js';
import { sampleData } from '../../lib/app/sample-data.js';

interface Options {
  gap: number;
  'max-out-of-orderness': number;
  'allowed-lateness': number;
  buckets: number;
}

const TRANSACTION_SCHEMA = { customer_id: 'string', amount: 'double', timestamp: 'timestamp' } as const;

/** Transactions with the watermark, and amounts as whole cents so that sums and differences stay exact. */
function transactions(input: Dataset, o: Options): Dataset {
  return input
    .withWatermark('timestamp', o['max-out-of-orderness'])
    .withColumn('cents', round(col('amount').multiply(100)).cast('long'));
}

function customerSessions(tx: Dataset, o: Options) {
  return tx.groupBy('customer_id', session_window('timestamp', o.gap)).allowedLateness(o['allowed-lateness']);
}

/**
 * Per-customer session sums as a changelog, whenever a batch changes them: `change: 1` for a session's new
 * sums, `-1` for the sums they replace (also those of sessions merged into it) and when the watermark closes
 * the session. Plain update mode would leave the rows of sessions a merge replaced in the sink.
 */
export function sessionSums(input: Dataset, o: Options): Dataset {
  return customerSessions(transactions(input, o), o)
    .changelog()
    .agg(
      sum('cents').alias('cents'),
      count('*').alias('transactions'),
      min('timestamp').alias('first_transaction'),
      max('timestamp').alias('last_transaction'),
    )
    .select(
      'customer_id',
      col('session_window.start').alias('session_start'),
      col('session_window.end').alias('session_end'),
      col('cents').divide(100).alias('total'),
      'transactions',
      'first_transaction',
      'last_transaction',
      'change',
    );
}

/**
 * The global total over the currently active sessions, in three stateful operators, as the original job's
 * topology: customer sessions as a changelog (a session's sum enters, is replaced, or leaves when the
 * watermark closes it), partial sums per bucket of customers (a changelog of each bucket's total), and the
 * global sum of the bucket totals.
 */
export function activeTotals(input: Dataset, o: Options): Dataset {
  const sessionChanges = customerSessions(transactions(input, o), o).changelog().agg(sum('cents').alias('cents'));
  const bucketChanges = sessionChanges
    .groupBy(bucket(o.buckets, 'customer_id'))
    .changelog()
    .agg(sum(col('cents').multiply(col('change'))).alias('cents'), sum('change').alias('sessions'));
  return bucketChanges
    .groupBy()
    .agg(
      sum(col('cents').multiply(col('change'))).alias('cents'),
      sum(col('sessions').multiply(col('change'))).alias('active_sessions'),
    )
    .select(col('cents').divide(100).alias('total'), 'active_sessions', current_timestamp().alias('updated_at'));
}

export default defineApp<Options>({
  name: 'active-session-totals',
  description:
    'Kafka Streams session sums: per-customer transaction sums in session windows, and the global total over active sessions',
  options: {
    gap: { type: 'duration', default: '5m', describe: 'inactivity gap that ends a customer session' },
    'max-out-of-orderness': {
      type: 'duration',
      default: '10s',
      describe: 'watermark delay: how far behind the latest transaction an on-time one may be',
    },
    'allowed-lateness': {
      type: 'duration',
      default: '0s',
      describe: 'keep a session this long after the watermark passes its end, for late transactions',
    },
    buckets: {
      type: 'number',
      default: 8,
      describe:
        "partial sums per bucket of customers before the global total (the Kafka Streams job's PARTITION_COUNT_FOR_TOTALS)",
    },
  },
  inputs: {
    transactions: {
      describe: 'JSON transactions {customer_id, amount, timestamp}',
      default: sampleData('transactions'),
      format: 'json',
      schema: TRANSACTION_SCHEMA,
    },
  },
  outputs: {
    sessions: {
      describe:
        'rows {customer_id, session_start, session_end, total, transactions, first_transaction, last_transaction, change}: ' +
        'change 1 for the new sums of a session a batch changed, -1 for the sums they replace and when the session closes',
      default: 'console:',
      outputMode: 'update',
      key: 'customer_id',
    },
    totals: {
      describe: 'rows {total, active_sessions, updated_at}: the sum over sessions still open, whenever it changes',
      default: 'console:',
      outputMode: 'update',
    },
  },
  build: ({ input, options }) => ({
    sessions: sessionSums(input('transactions'), options),
    totals: activeTotals(input('transactions'), options),
  }),
});
