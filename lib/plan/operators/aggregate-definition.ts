import type { AggregateFunction, AggregateName, AggregateOptions } from '../aggregates/aggregate-functions.js';
import type { Expression } from '../expression.js';
import type { Grouping } from '../windows.js';

/** One aggregate of an `agg(...)` call. */
export interface AggregateCall {
  /** The built-in function and its options, which `fn` was made from (worker threads make it again). */
  name: AggregateName;
  options: AggregateOptions;
  fn: AggregateFunction;
  args: Expression[];
  alias?: string;
}

/** What `groupBy(...).agg(...)` describes. */
export interface AggregateDefinition {
  groupings: Grouping[];
  aggregates: AggregateCall[];
  allowedLatenessMs: number;
  changelog: boolean;
  /** An aggregation that is not a changelog runs below this one (it re-emits groups outside append mode). */
  afterAggregation?: boolean;
}
