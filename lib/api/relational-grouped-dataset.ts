import { SluiceError } from '../errors.js';
import { aggregateFunction } from '../plan/aggregates/aggregate-functions.js';
import { walkPlan } from '../plan/logical-plan.js';
import { AggregateOperator } from '../plan/operators/aggregate.js';
import type { Grouping } from '../plan/windows.js';
import { Column, col } from './column.js';
import type { Dataset } from './dataset.js';
import { parseDuration } from '../util/duration.js';
import { AggregateColumn, GroupingColumn, avg, count, max, min, sum } from './functions.js';

/** What groupBy accepts: column names, column expressions, and window / session_window / bucket. */
export type GroupingLike = string | Column | GroupingColumn;

/**
 * A Dataset grouped by columns (and at most one event-time window), Spark's RelationalGroupedDataset.
 * `agg(...)` runs the streaming aggregation; see lib/plan/operators/aggregate.ts for its output modes,
 * watermark and late-data rules.
 */
export class RelationalGroupedDataset {
  /** @internal */
  constructor(
    private readonly ds: Dataset<any>,
    private readonly groupings: readonly Grouping[],
    private readonly allowedLatenessMs = 0,
    private readonly asChangelog = false,
  ) {}

  /** @internal Grouping specs from groupBy's arguments. */
  static groupingsOf(cols: readonly GroupingLike[]): Grouping[] {
    return cols.map((c) => {
      if (c instanceof GroupingColumn) return c.spec;
      if (c instanceof Column) return { kind: 'key', column: c };
      if (typeof c === 'string' && c !== '') return { kind: 'key', column: col(c) };
      throw new SluiceError('BAD_EXPRESSION', `groupBy() takes column names, Columns, window(...), session_window(...) or bucket(...), got ${typeof c}`,
        "e.g. groupBy(window('ts', '1 minute'), 'user_id')");
    });
  }

  private get hasWindow(): boolean {
    return this.groupings.some((g) => g.kind === 'window' || g.kind === 'session');
  }

  /**
   * Keeps each window this long after the watermark passes its end (Flink's allowed lateness): rows behind
   * the watermark that fall into a kept window still update it (update mode emits it again; append mode
   * emits each window once, when it is finally closed). Needs a window or session_window in the grouping.
   */
  allowedLateness(duration: string | number): RelationalGroupedDataset {
    if (!this.hasWindow) {
      throw new SluiceError('ANALYSIS', 'allowedLateness() needs an event-time window in groupBy()',
        "group by window(...) or session_window(...), e.g. groupBy(session_window('ts', '30 minutes'), 'user_id')");
    }
    return new RelationalGroupedDataset(this.ds, this.groupings, parseDuration(duration, 'allowed lateness'), this.asChangelog);
  }

  /**
   * Makes `agg` emit a retract stream of the open groups, whatever the query's output mode: a row with
   * `change: 1` for each new or updated result, `change: -1` for the result it replaces, for sessions merged
   * into another and for windows the watermark closes. Aggregating `value × change` downstream gives totals
   * over the currently open windows (several stateful operators in one query).
   */
  changelog(): RelationalGroupedDataset {
    return new RelationalGroupedDataset(this.ds, this.groupings, this.allowedLatenessMs, true);
  }

  /** Aggregates each group: one output column per grouping column, then one per aggregate. */
  agg(...aggregates: AggregateColumn[]): Dataset<Record<string, unknown>> {
    for (const a of aggregates) {
      if (!(a instanceof AggregateColumn)) {
        throw new SluiceError('BAD_EXPRESSION', `agg() takes aggregate functions, got ${(a as unknown) instanceof Column ? `the column ${String(a)}` : typeof a}`,
          "use the functions of lib/api/functions.ts, e.g. agg(count('*'), sum('amount'))");
      }
    }
    const op = new AggregateOperator({
      groupings: [...this.groupings],
      aggregates: aggregates.map((a) => ({ fn: aggregateFunction(a.fn, a.args.length, a.options), args: [...a.args], alias: a.name })),
      allowedLatenessMs: this.allowedLatenessMs,
      changelog: this.asChangelog,
      afterAggregation: walkPlan(this.ds.plan).some((n) => n.kind === 'stateful' && n.operator instanceof AggregateOperator && !n.operator.def.changelog),
    });
    return this.ds.withStatefulOperator(op);
  }

  /** Rows per group, in a column named `count`. */
  count(): Dataset<Record<string, unknown>> {
    return this.agg(count('*').alias('count'));
  }

  /** `sum(c)` of each column. */
  sum(...columns: string[]): Dataset<Record<string, unknown>> {
    return this.agg(...columns.map((c) => sum(c)));
  }

  /** `avg(c)` of each column. */
  avg(...columns: string[]): Dataset<Record<string, unknown>> {
    return this.agg(...columns.map((c) => avg(c)));
  }

  /** Same as avg. */
  mean(...columns: string[]): Dataset<Record<string, unknown>> {
    return this.avg(...columns);
  }

  /** `min(c)` of each column. */
  min(...columns: string[]): Dataset<Record<string, unknown>> {
    return this.agg(...columns.map((c) => min(c)));
  }

  /** `max(c)` of each column. */
  max(...columns: string[]): Dataset<Record<string, unknown>> {
    return this.agg(...columns.map((c) => max(c)));
  }
}
