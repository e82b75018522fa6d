import { type Field, Schema, Type } from 'apache-arrow';
import { SluiceError } from '../errors.js';
import type { OutputMode } from '../sinks/output-mode.js';
import { resultField } from './expression-eval.js';
import { resolveJoin } from './join.js';
import type { JoinNode, PlanNode, RelationNode, SourceNode, StatefulNode, WatermarkNode } from './logical-plan.js';
import { inputsOf, isStreaming, nodeName, walkPlan } from './logical-plan.js';
import { AggregateOperator } from './operators/aggregate.js';
import { StreamStreamJoinOperator } from './operators/stream-stream-join.js';

/** What the driver needs to know about a plan, checked when the query starts (as Spark's analyzer does). */
export interface Analysis {
  outputMode: OutputMode;
  sources: SourceNode[];
  /** Static relations (session.read), loaded once when the query starts. */
  relations: RelationNode[];
  /** Joins of the stream with a static Dataset, whose static side is hashed once per query. */
  streamStaticJoins: JoinNode[];
  statefulNodes: StatefulNode[];
  watermarks: WatermarkNode[];
  usesWatermark: boolean;
  /** Stateful node id → event-time column from the withWatermark below it. */
  eventTimeColumns: Record<number, string>;
  /**
   * Stateful node id → the output mode it runs in: the query's for the last one; append for a stream-stream
   * join or an aggregation that closes its groups by the watermark when it feeds another operator, so that it
   * emits each row once.
   */
  operatorOutputModes: Record<number, OutputMode>;
  multipleWatermarkPolicy: 'min' | 'max';
  /** Output schema once known (after `check`), null when a user function decides it per batch. */
  outputSchema: Schema | null;
  /**
   * Schema-level checks once the sources' and static relations' schemas are known (relations by node id);
   * throws SluiceError('ANALYSIS').
   */
  check(sourceSchemas: Schema[], relationSchemas?: ReadonlyMap<number, Schema>): void;
  /** A node's output schema as `check` derived it (null when a user function decides it per batch). */
  schemaOf(nodeId: number): Schema | null;
}

function analysisError(message: string, hint: string): SluiceError {
  return new SluiceError('ANALYSIS', message, hint);
}

function below(node: PlanNode): PlanNode[] {
  return walkPlan(node).filter((n) => n !== node);
}

/** Checks output-mode and watermark rules, and collects what the driver needs. */
export function analyze(
  root: PlanNode,
  opts: { outputMode: OutputMode; multipleWatermarkPolicy?: 'min' | 'max' },
): Analysis {
  const nodes = walkPlan(root);
  const sources = nodes.filter((n): n is SourceNode => n.kind === 'source');
  const statefulNodes = nodes.filter((n): n is StatefulNode => n.kind === 'stateful');
  const watermarks = nodes.filter((n): n is WatermarkNode => n.kind === 'watermark');
  const mode = opts.outputMode;
  if (sources.length === 0) {
    throw analysisError(
      'writeStream can be called only on a streaming Dataset, and this one reads only static data (session.read)',
      'read the input with session.readStream, and join it with the static Dataset',
    );
  }
  const joins = nodes.filter((n): n is JoinNode => n.kind === 'join');
  for (const j of joins) checkJoin(j);
  const streamStaticJoins = joins.filter((j) => !isStreaming(j.right));
  if (mode === 'complete' && statefulNodes.length === 0) {
    throw analysisError(
      'complete output mode is not supported when there are no streaming aggregations',
      "use outputMode('append') (or 'update'), or aggregate with groupBy(...).agg(...) first",
    );
  }
  const eventTimeColumns: Record<number, string> = {};
  const operatorOutputModes: Record<number, OutputMode> = {};
  for (const s of statefulNodes) {
    const wm = below(s).filter((n): n is WatermarkNode => n.kind === 'watermark');
    if (wm.length > 0) eventTimeColumns[s.id] = wm[wm.length - 1].column;
    const op = s.operator;
    // The query's output mode governs the last stateful operator; one feeding another only has to be able to emit appends.
    const isLast = !statefulNodes.some((o) => o !== s && below(o).includes(s));
    const emitsOnce =
      op instanceof StreamStreamJoinOperator ||
      (op instanceof AggregateOperator &&
        !op.def.changelog &&
        op.analyze({ outputMode: 'append', hasWatermark: wm.length > 0, eventTimeColumn: eventTimeColumns[s.id] }) ===
          null);
    operatorOutputModes[s.id] = !isLast && emitsOnce ? 'append' : mode;
    if (
      isLast ? !op.outputModes.includes(mode) : !op.outputModes.includes(mode) && !op.outputModes.includes('append')
    ) {
      throw analysisError(
        `${mode} output mode is not supported by ${nodeName(s)}`,
        op.outputModeHint ?? `use one of: ${op.outputModes.join(', ')}`,
      );
    }
    checkAfterJoin(s, eventTimeColumns[s.id], wm, mode);
    const stages = below(s).filter((n): n is StatefulNode => n.kind === 'stateful');
    const why = op.analyze?.({
      outputMode: operatorOutputModes[s.id],
      hasWatermark: wm.length > 0,
      eventTimeColumn: eventTimeColumns[s.id],
      appendsBelow: stages.every((n) => operatorOutputModes[n.id] === 'append'),
    });
    if (why) throw analysisError(`${nodeName(s)}: ${why}`, 'see the output mode rules in the README');
  }
  const analysis: Analysis = {
    outputMode: mode,
    sources,
    relations: nodes.filter((n): n is RelationNode => n.kind === 'relation'),
    streamStaticJoins,
    statefulNodes,
    watermarks,
    usesWatermark: statefulNodes.some((s) => s.operator.usesWatermark(eventTimeColumns[s.id])),
    eventTimeColumns,
    operatorOutputModes,
    multipleWatermarkPolicy: opts.multipleWatermarkPolicy ?? 'min',
    outputSchema: null,
    check(sourceSchemas: Schema[], relationSchemas = new Map()) {
      const schemas = new Map<number, Schema | null>(sources.map((s, i) => [s.id, sourceSchemas[i]]));
      for (const [id, schema] of relationSchemas) schemas.set(id, schema);
      for (const n of nodes)
        if (n.kind !== 'source' && n.kind !== 'relation') schemas.set(n.id, deriveSchema(n, schemas));
      derived = schemas;
      analysis.outputSchema = schemas.get(root.id) ?? null;
    },
    schemaOf(nodeId: number) {
      return derived.get(nodeId) ?? null;
    },
  };
  let derived = new Map<number, Schema | null>();
  return analysis;
}

/**
 * Spark's rules for a stateful operator after a stream-stream join (UnsupportedOperationChecker): the join emits a
 * pair when its later row arrives, so an operator above it sees rows whose earlier side may be behind the
 * watermark. Only an inner join qualifies (outer and semi joins emit rows once the watermark has passed them,
 * rows the operator above would drop as late), in append mode, and not for mapGroupsWithState; an operator that
 * closes state by an event time must take it from a withWatermark after the join, or from the sides' event
 * times when the join equates them, never from one side's event time alone.
 */
function checkAfterJoin(
  s: StatefulNode,
  eventTime: string | undefined,
  marks: WatermarkNode[],
  mode: OutputMode,
): void {
  const join = below(s).find((n): n is StatefulNode => n.kind === 'stateful' && n.right !== undefined);
  if (!join || !(join.operator instanceof StreamStreamJoinOperator)) return;
  const op = s.operator;
  const after = `${nodeName(s)} after the stream-stream join ${nodeName(join)}`;
  if (op.name === 'mapGroupsWithState' || op.name === 'flatMapGroupsWithState') {
    throw analysisError(
      `${after} is not supported`,
      'after a stream-stream join use an aggregation (groupBy(...).agg(...)) or another join, in append mode',
    );
  }
  const type = join.operator.spec.joinType;
  if (type !== 'inner') {
    throw analysisError(
      `${after} is not supported: a ${type} join emits rows the watermark has already passed, which ${nodeName(s)} would drop as late`,
      "join with 'inner' before another stateful operator, or write the join's output to a sink of its own",
    );
  }
  if (mode !== 'append' && !(op instanceof AggregateOperator)) {
    throw analysisError(
      `${after} is not supported in ${mode} output mode`,
      "use outputMode('append'): a stream-stream join emits each pair once",
    );
  }
  if (eventTime === undefined || !op.usesWatermark(eventTime)) return;
  const mark = marks[marks.length - 1];
  if (!below(join).includes(mark)) return;
  if (!join.operator.equatesEventTime(eventTime)) {
    throw analysisError(
      `${after}: ${nodeName(s)} closes its state by '${eventTime}', the event time of one side of the join, but the join emits a pair when its later row arrives, when the earlier row's '${eventTime}' may be behind the watermark`,
      `join on equal event times of both sides, or close by a column at or after both rows' event times with withWatermark on it after the join, e.g. joined.withWatermark('expires', '4 seconds').groupBy('id', 'expires')`,
    );
  }
}

/** The operators a static side may have: it is evaluated once, in the driver, before the first batch. */
const STATIC_SIDE_KINDS: readonly string[] = ['relation', 'map', 'flatMap', 'filter', 'project'];

/** Spark's rules for joins with a streaming side (UnsupportedOperationChecker), and sluice's own limits. */
function checkJoin(j: JoinNode): void {
  const leftStreaming = isStreaming(j.left);
  const rightStreaming = isStreaming(j.right);
  if (!leftStreaming && rightStreaming) {
    // Dataset.join has turned inner and right outer joins with a static left side around; these remain.
    const spark: Record<string, string> = {
      left_outer: 'LeftOuter',
      left_semi: 'LeftSemi',
      left_anti: 'LeftAnti',
      full_outer: 'FullOuter',
    };
    throw analysisError(
      `${spark[j.joinType] ?? j.joinType} join with a streaming DataFrame/Dataset on the right and a static DataFrame/Dataset on the left is not supported`,
      "with the static side on the left use 'inner' or 'right_outer' (every stream row kept), or put the stream on the left",
    );
  }
  if (!leftStreaming) return;
  if (j.joinType === 'full_outer') {
    throw analysisError(
      'Full outer joins with a streaming DataFrame/Dataset on the left and a static DataFrame/Dataset on the right are not supported',
      "use 'left_outer' to keep every stream row; rows of the static side alone are never final in a stream",
    );
  }
  if (j.joinType === 'right_outer') {
    throw analysisError(
      'Right outer join with a streaming DataFrame/Dataset on the left and a static DataFrame/Dataset on the right is not supported',
      "use 'left_outer' to keep every stream row, or 'inner'",
    );
  }
  for (const n of walkPlan(j.right)) {
    if (!STATIC_SIDE_KINDS.includes(n.kind) || (n.kind !== 'relation' && inputsOf(n).length !== 1)) {
      throw analysisError(
        `${nodeName(j)}: the static side of a join may only select, filter and map a relation read by session.read, not ${nodeName(n)}`,
        'prepare the static data in a file and read it with session.read',
      );
    }
  }
}

function deriveSchema(
  n: Exclude<PlanNode, SourceNode | RelationNode>,
  schemas: Map<number, Schema | null>,
): Schema | null {
  const inputs = inputsOf(n).map((i) => schemas.get(i.id) ?? null);
  const input = inputs[0];
  switch (n.kind) {
    case 'map':
    case 'flatMap':
      return n.schema ?? null;
    case 'filter':
      return input;
    case 'union':
      return inputs.find((s) => s !== null) ?? null;
    case 'join':
      return input && inputs[1] ? resolveJoin(n, input, inputs[1]).schema : null;
    case 'stateful':
      if (n.right) return input && inputs[1] ? (n.operator.resolveOutputSchema?.(input, inputs[1]) ?? null) : null;
      return input && n.operator.resolveOutputSchema ? n.operator.resolveOutputSchema(input) : n.operator.outputSchema;
    case 'watermark': {
      if (!input) return null;
      const f = input.fields.find((x) => x.name === n.column);
      if (!f) {
        throw analysisError(
          `withWatermark column '${n.column}' does not exist`,
          `use one of: ${input.fields.map((x) => x.name).join(', ')}`,
        );
      }
      if (f.type.typeId !== Type.Timestamp && f.type.typeId !== Type.Int && f.type.typeId !== Type.Float) {
        throw analysisError(
          `withWatermark column '${n.column}' is ${f.type}, not a timestamp`,
          `convert it first, e.g. withColumn('${n.column}', to_timestamp(col('${n.column}')))`,
        );
      }
      return input;
    }
    case 'project': {
      if (!input) return null;
      const fields: Field[] = n.keepInput ? [...input.fields] : [];
      for (const c of n.columns) {
        const f = resultField(c, input);
        const at = n.keepInput ? fields.findIndex((x) => x.name === f.name) : -1;
        if (at >= 0) fields[at] = f;
        else fields.push(f);
      }
      return new Schema(fields);
    }
  }
}
