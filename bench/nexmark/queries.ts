/** The Nexmark queries of bench/nexmark and the published Flink figures they are compared with. */
import { writeSideInput } from './side-input.js';

export interface NexmarkQuery {
  name: string;
  /** The event kinds the query reads (the nexmark source's `kinds`). */
  kinds: string;
  /**
   * Flink 1.13's throughput per core, events/s (nexmark/nexmark README: 100 M events at 10 M events/s,
   * 8 task managers, exactly-once checkpoints every 3 minutes, RocksDB state backend).
   */
  flinkPerCore: number;
  summary: string;
  /** Writes what the query reads besides its events (q13's side input file), before a run. */
  prepare?: () => void;
  /** The sink the query writes to, given a fresh directory (default `noop:`, the reference's blackhole table). */
  sink?: (dir: string) => string;
}

export const NEXMARK_QUERIES: readonly NexmarkQuery[] = [
  { name: 'q0', kinds: 'bid', flinkPerCore: 155_020, summary: 'pass-through' },
  { name: 'q1', kinds: 'bid', flinkPerCore: 157_940, summary: 'currency conversion' },
  { name: 'q2', kinds: 'bid', flinkPerCore: 175_210, summary: 'selection' },
  { name: 'q3', kinds: 'person,auction', flinkPerCore: 152_120, summary: 'local item suggestion (stream-stream join)' },
  {
    name: 'q4',
    kinds: 'auction,bid',
    flinkPerCore: 34_330,
    summary: 'average price per category (join, then max and avg)',
  },
  { name: 'q5', kinds: 'bid', flinkPerCore: 22_140, summary: 'hot items (sliding window)' },
  { name: 'q7', kinds: 'bid', flinkPerCore: 12_330, summary: 'highest bid (window max joined back)' },
  { name: 'q8', kinds: 'person,auction', flinkPerCore: 146_140, summary: 'new users (window semi join)' },
  { name: 'q9', kinds: 'auction,bid', flinkPerCore: 14_240, summary: 'winning bids (join, then max per auction)' },
  { name: 'q11', kinds: 'bid', flinkPerCore: 39_700, summary: 'user sessions (session window)' },
  { name: 'q12', kinds: 'bid', flinkPerCore: 75_670, summary: 'processing-time windows' },
  {
    name: 'q13',
    kinds: 'bid',
    flinkPerCore: 130_730,
    summary: 'bounded side input join (stream-static)',
    prepare: writeSideInput,
  },
  { name: 'q20', kinds: 'auction,bid', flinkPerCore: 18_980, summary: 'expand bid with auction (stream-stream join)' },
  {
    name: 'q10',
    kinds: 'bid',
    flinkPerCore: 57_810,
    summary: 'log to file system (CSV, partitioned by date and minute)',
    sink: (dir) => `file:${dir}?format=csv&partitionBy=dt,hm`,
  },
  { name: 'q14', kinds: 'bid', flinkPerCore: 161_230, summary: 'calculation (user-defined function)' },
  { name: 'q15', kinds: 'bid', flinkPerCore: 72_420, summary: 'bidding statistics (count distinct)' },
  { name: 'q16', kinds: 'bid', flinkPerCore: 18_650, summary: 'channel statistics (count distinct)' },
  { name: 'q17', kinds: 'bid', flinkPerCore: 116_800, summary: 'auction statistics' },
  { name: 'q18', kinds: 'bid', flinkPerCore: 53_700, summary: 'last bid per bidder and auction (max_by)' },
  { name: 'q19', kinds: 'bid', flinkPerCore: 44_040, summary: 'top 10 bids per auction (max_by with k)' },
  { name: 'q21', kinds: 'bid', flinkPerCore: 98_490, summary: 'add channel id (regexp_extract)' },
  { name: 'q22', kinds: 'bid', flinkPerCore: 129_960, summary: 'URL directories (split_part)' },
];

export function nexmarkQuery(name: string): NexmarkQuery {
  const q = NEXMARK_QUERIES.find((x) => x.name === name);
  if (!q)
    throw new Error(`no Nexmark query '${name}'; the queries are ${NEXMARK_QUERIES.map((x) => x.name).join(', ')}`);
  return q;
}
