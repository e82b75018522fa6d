/**
 * The two stages of a group's app when an operator needs rows from every input partition: a global operator
 * (an aggregation over all rows, or by an event-time window alone), or, with `repartition`, the first keyed
 * operator over input that is not partitioned by its key. The output's plan is cut in front of that operator:
 * stage-1 tasks (one per input partition) run what is below it and write its input rows into a repartition
 * topic, stage-2 tasks (one per partition of that topic) read them and run the operator and what is above it,
 * into the output's sink. See lib/group/repartition-topic.ts for the records and the watermark they carry.
 */
import type { Schema } from 'apache-arrow';
import { Dataset } from '../api/dataset.js';
import { col } from '../api/functions.js';
import type { Session } from '../api/session.js';
import { schemaToSpec, type TypeSpec } from '../arrow/schema.js';
import { SluiceError, UsageError } from '../errors.js';
import {
  COMBINED_WATERMARK_COLUMN,
  repartitionTopic,
  UPSTREAM_COLUMN,
  UPSTREAM_WATERMARK_COLUMN,
} from '../group/repartition-topic.js';
import { analyze } from '../plan/analyzer.js';
import { type PlanNode, type StatefulNode, type WatermarkNode, walkPlan } from '../plan/logical-plan.js';
import { AggregateOperator } from '../plan/operators/aggregate.js';
import type { OutputMode } from '../sinks/output-mode.js';
import { RepartitionSink } from '../sinks/repartition-sink.js';
import type { StreamSink } from '../sinks/sink.js';
import { createSink } from '../sinks/sink-factory.js';
import { RepartitionSource } from '../sources/repartition-source.js';
import { createSource } from '../sources/source-uri.js';
import { partitionOf } from '../state/state-partitioner.js';

/** Where one output's plan is cut into two stages. */
export interface StageCut {
  /** The plan id of the operator stage 2 starts with. */
  operatorId: number;
  /** The operator as progress names it, e.g. `aggregate#12`. */
  operatorName: string;
  /** One stage-2 task over a topic of one partition (a global operator), or one per input partition. */
  global: boolean;
  topic: string;
  /** The output mode stage 1 writes in: the output's own when stateful operators run below the cut. */
  stage1OutputMode: OutputMode;
  /** The columns of the rows in the topic, as a schema spec of the records' JSON values. */
  valueSchema: Record<string, TypeSpec>;
  /** The event-time column and delay below the operator, when it reads the watermark. */
  eventTime?: { column: string; delayMs: number };
}

/** One query a stage runs for an output. */
export interface StageQuery {
  dataset: Dataset<unknown>;
  /** The sink, when it is not the output's own. */
  sink?: StreamSink;
  outputMode?: OutputMode;
  /** Writer options the stage adds. */
  options?: Record<string, string>;
  /** Whether the output's late-data output goes with this query (it does where the operator runs). */
  late: boolean;
}

/**
 * The stage-2 watermark is the combined one its source computes; the event-time column keeps a watermark node
 * of its own (the operators find their event-time column by it) with a delay so long it never decides.
 */
const NEVER_DECIDES_MS = 100 * 365 * 86_400_000;

/** Kafka columns that the repartition topic's records carry as key and partition, not in their values. */
const NOT_IN_VALUES = new Set(['key', 'partition', 'topic', 'headers']);

function isGlobal(n: StatefulNode): boolean {
  return n.operator instanceof AggregateOperator && n.operator.componentCount === 0;
}

function statefulNodes(root: PlanNode): StatefulNode[] {
  return walkPlan(root).filter((n): n is StatefulNode => n.kind === 'stateful');
}

function nodeById(root: PlanNode, id: number): StatefulNode {
  const n = statefulNodes(root).find((s) => s.id === id);
  if (!n) throw new Error(`operator ${id} is not in the plan it was found in`);
  return n;
}

/**
 * Where output `output` of app `app` is cut, or null when it runs whole in each input partition's task.
 * `repartition`: the input topics are not partitioned by the first keyed operator's key.
 */
export function findCut(
  app: string,
  group: string,
  output: string,
  root: PlanNode,
  outputMode: OutputMode,
  opts: { repartition: boolean },
): StageCut | null {
  const stateful = statefulNodes(root);
  const global = stateful.find(isGlobal);
  let cut: StatefulNode | undefined;
  if (global) {
    const keyedBelow = stateful.some((s) => s !== global && walkPlan(global).includes(s));
    if (opts.repartition && keyedBelow) {
      throw new UsageError(
        'GROUP_TWO_REPARTITIONS',
        `output ${output} of app ${app} has keyed operators below its global one: with --repartition it would need two repartition topics, and a group runs two stages`,
        'write the input keyed by the operators key (Kafka message key) and run without --repartition',
      );
    }
    cut = global;
  } else if (opts.repartition) {
    cut = stateful[0];
  }
  if (!cut) return null;
  if (cut.right) {
    throw new UsageError(
      'GROUP_JOIN',
      `output ${output} of app ${app} joins two streams, which a group cannot repartition yet`,
      'run it without --repartition on inputs partitioned by the join key',
    );
  }
  const below = walkPlan(cut.input);
  const stage1OutputMode = below.some((n) => n.kind === 'stateful') ? outputMode : 'append';
  const analysis = analyze(cut.input, { outputMode: stage1OutputMode });
  analysis.check(analysis.sources.map((s) => s.create().schema()));
  const schema = analysis.schemaOf(cut.input.id);
  if (!schema) {
    throw new SluiceError(
      'GROUP_SCHEMA',
      `the rows that reach ${cut.operator.name} in output ${output} of app ${app} have no schema before they are computed (a map without one)`,
      'declare the schema of map/flatMap functions in front of it',
    );
  }
  const full = analyze(root, { outputMode });
  const column = full.eventTimeColumns[cut.id];
  const watermark = below.filter((n): n is WatermarkNode => n.kind === 'watermark' && n.column === column).at(-1);
  const eventTime =
    column !== undefined && watermark && cut.operator.usesWatermark(column)
      ? { column, delayMs: watermark.delayMs }
      : undefined;
  return {
    operatorId: cut.id,
    operatorName: `${cut.operator.name}#${cut.id}`,
    global: global !== undefined,
    topic: repartitionTopic(group, cut.operator.name, cut.id),
    stage1OutputMode,
    valueSchema: valueSchemaOf(schema),
    eventTime,
  };
}

function valueSchemaOf(schema: Schema): Record<string, TypeSpec> {
  const spec = schemaToSpec(schema.select(schema.fields.map((f) => f.name).filter((n) => !NOT_IN_VALUES.has(n))));
  return { ...spec, [UPSTREAM_COLUMN]: 'int', [UPSTREAM_WATERMARK_COLUMN]: 'double' };
}

/** Where the repartition topics are and how to reach them (the input's bootstrap servers and client options). */
export interface RepartitionCluster {
  bootstrap: string;
  clientOptions: Record<string, string>;
  /** The input's maxOffsetsPerTrigger, which bounds stage 2's batches as it bounds stage 1's. */
  maxOffsetsPerTrigger?: string;
}

/**
 * The stage of a group's app one task runs, as plain data: the driver makes its queries from it and each worker
 * thread cuts the app's plan from it the same way (see {@link stageDatasets}), so their operator ids match.
 */
export type StageSpec =
  | {
      /** Input partition `task`'s stage 1: outputs without a cut run whole, cut ones up to their operator. */
      stage: 1;
      cuts: [string, StageCut][];
      cluster: RepartitionCluster;
      task: number;
      inputPartitions: number;
    }
  | {
      /** The stage 2 reading partition `partition` of the repartition topics, written by `upstreams` tasks. */
      stage: 2;
      cuts: [string, StageCut][];
      cluster: RepartitionCluster;
      partition: number;
      upstreams: number;
    };

/**
 * The Dataset of each output that `spec`'s stage runs (outputs the stage does not run are left out), built over
 * the app's Datasets in `session`. Stage 2's rows come from a repartition source made here, in the order of the
 * cuts, which gives its nodes the same ids in the driver and in every worker thread that builds them.
 */
export function stageDatasets(
  spec: StageSpec,
  built: Record<string, Dataset<unknown>>,
  session: Session,
): Record<string, Dataset<unknown>> {
  const cuts = new Map(spec.cuts);
  const out: Record<string, Dataset<unknown>> = {};
  if (spec.stage === 1) {
    for (const [name, ds] of Object.entries(built)) {
      const cut = cuts.get(name);
      out[name] = cut ? new Dataset(session, nodeById(ds.plan, cut.operatorId).input) : ds;
    }
    return out;
  }
  const { cluster, partition, upstreams } = spec;
  for (const [name, cut] of cuts) {
    const options = {
      ...cluster.clientOptions,
      bootstrap: cluster.bootstrap,
      assign: JSON.stringify({ [cut.topic]: [partition] }),
      startingOffsets: 'earliest',
      valueFormat: 'json',
      schema: JSON.stringify(cut.valueSchema),
      ...(cluster.maxOffsetsPerTrigger !== undefined && { maxOffsetsPerTrigger: cluster.maxOffsetsPerTrigger }),
    };
    let rows: Dataset<unknown> = Dataset.fromSource(
      session,
      `repartition:${cut.topic}/${partition}`,
      () => new RepartitionSource(createSource('kafka', options), upstreams),
    );
    if (cut.eventTime) {
      rows = rows
        .withWatermark(COMBINED_WATERMARK_COLUMN, 0)
        .withWatermark(cut.eventTime.column, NEVER_DECIDES_MS)
        .where(col(UPSTREAM_WATERMARK_COLUMN).isNull());
    }
    out[name] = new Dataset(session, graft(built[name].plan, cut.operatorId, rows.plan));
  }
  return out;
}

/**
 * The queries of `spec`'s stage. Stage 1: outputs without a cut run whole, as in a single process; cut outputs
 * run up to their operator and write into its repartition topic. Stage 2: each output's plan from its operator
 * up, over the topic instead of what stage 1 ran.
 */
export async function stageQueries(
  spec: StageSpec,
  built: Record<string, Dataset<unknown>>,
  session: Session,
): Promise<Record<string, StageQuery>> {
  const datasets = stageDatasets(spec, built, session);
  const cuts = new Map(spec.cuts);
  const out: Record<string, StageQuery> = {};
  for (const [name, dataset] of Object.entries(datasets)) {
    const cut = cuts.get(name);
    if (spec.stage === 2) {
      out[name] = { dataset, options: cut?.eventTime ? { multipleWatermarkPolicy: 'max' } : {}, late: true };
      continue;
    }
    if (!cut) {
      out[name] = { dataset, late: true };
      continue;
    }
    const { cluster } = spec;
    const op = nodeById(built[name].plan, cut.operatorId).operator;
    // A group member's Kafka sinks fence by producer epoch (see app-group.ts), the repartition topic's too.
    const kafka = await createSink(
      'kafka',
      { ...cluster.clientOptions, bootstrap: cluster.bootstrap, topic: cut.topic, fencing: 'epoch' },
      { memoryTables: session.memoryTables, queryName: name },
    );
    const sink = new RepartitionSink({
      kafka,
      numPartitions: cut.global ? 1 : spec.inputPartitions,
      upstream: spec.task,
      eventTime: cut.eventTime,
      partitionsOf: (batch, n) => {
        if (n === 1) return new Int32Array(batch.numRows);
        if (op.partitionsOf) return op.partitionsOf(batch, n);
        const keys = op.keysOf(batch);
        return Int32Array.from(keys, (k) => partitionOf(k, n));
      },
    });
    out[name] = { dataset, sink, outputMode: cut.stage1OutputMode, late: false };
  }
  return out;
}

/** `root` with the input of operator `id` replaced by `input` (the nodes above it copied, keeping their ids). */
function graft(root: PlanNode, id: number, input: PlanNode): PlanNode {
  const done = new Map<number, PlanNode>();
  const visit = (n: PlanNode): PlanNode => {
    const seen = done.get(n.id);
    if (seen) return seen;
    let copy: PlanNode;
    if (n.kind === 'stateful' && n.id === id) copy = { ...n, input };
    else {
      switch (n.kind) {
        case 'source':
        case 'relation':
          copy = n;
          break;
        case 'union':
          copy = { ...n, inputs: n.inputs.map(visit) };
          break;
        case 'join':
          copy = { ...n, left: visit(n.left), right: visit(n.right) };
          break;
        case 'stateful':
          copy = { ...n, input: visit(n.input), ...(n.right && { right: visit(n.right) }) };
          break;
        default:
          copy = { ...n, input: visit(n.input) };
      }
    }
    done.set(n.id, copy);
    return copy;
  };
  return visit(root);
}
