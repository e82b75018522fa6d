/**
 * What the Nexmark query apps share: the input they declare and the event-time rules of the reference
 * suite (nexmark/nexmark, the Flink SQL queries): the watermark trails the largest event time by 4 s.
 */
import type { AppInput, AppOutput } from '../../lib/index.js';

/** The reference DDL's `WATERMARK FOR dateTime AS dateTime - INTERVAL '4' SECOND`. */
export const WATERMARK_DELAY = '4 seconds';

/** The `events` input of a query app: the Nexmark source with the event kinds the query reads. */
export function nexmarkInput(kinds: string): AppInput {
  return { describe: `Nexmark events (${kinds})`, default: `nexmark:?events=100000&kinds=${kinds}` };
}

/** The `out` output of a query app: a no-op sink by default, as the reference's blackhole table. */
export function nexmarkOutput(outputMode: AppOutput['outputMode']): AppOutput {
  return { describe: 'query result', default: 'noop:', outputMode };
}
