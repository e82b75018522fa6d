/**
 * An app run by several processes that share its work through a Kafka consumer group, as Kafka Streams
 * instances do: `sluice run APP --group ID` on each machine (or several processes on one).
 *
 * The unit of work is a task: partition P of the app's Kafka inputs (of each of them, when it reads several
 * topics, which must then have the same number of partitions: co-partitioned, as Kafka Streams requires).
 * Task P runs the whole app over partition P alone, with a checkpoint of its own, `<checkpoint>/tasks/P/`:
 * its offsets, its state and its sinks' progress. So a task moves between processes alone: its new owner opens
 * the task's checkpoint and resumes from its last committed batch, as a restarted single process would.
 *
 * State therefore lives on storage every member reaches (one machine's disk, or NFS/EFS shared by several), as
 * Spark's and Flink's checkpoints do, rather than in changelog topics as in Kafka Streams: a moved task reads
 * its state from the same files it was written to, with nothing to restore from Kafka, and the checkpoint's
 * own claim fences its old owner.
 *
 * Fencing: each task's checkpoint is claimed by the one process running it (see CheckpointClaim), its claim
 * renewed every second and stale after the group's session timeout. A new owner waits until the old one has
 * stopped the task (after its batch in progress) or its claim went stale; an old owner that was paused and
 * wakes up finds its claim taken over and stops before it plans, writes or commits a batch. What a batch
 * wrote before the pause is completed by the new owner with the sinks' idempotent replay. A claim check is
 * followed by the write it guards, so an owner paused between the two would still write after waking: Kafka
 * sinks therefore also fence by producer epoch (the sink option `fencing=epoch`, the default here), and the
 * brokers refuse the old owner's write; its task stops as one found taken over (KAFKA_FENCED).
 *
 * A member that died is removed from the group by the members on its host as soon as they see its process gone
 * (each member's process is in the assignment), rather than after the session timeout: on one machine a
 * failover then costs a rebalance and the tasks' restore, not the session timeout too.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Session } from '../api/session.js';
import type { StreamingQuery } from '../api/streaming-query.js';
import { isRecord } from '../checkpoint/fields.js';
import { readVersioned, writeVersioned } from '../checkpoint/versioned-file.js';
import { asUsage, pathError, SluiceError, UsageError } from '../errors.js';
import type { QueryProgress } from '../exec/progress.js';
import { SharedLanes } from '../exec/worker-pool.js';
import { assignTasks, type MemberTasks } from '../group/sticky-task-assignor.js';
import { TaskManager } from '../group/task-manager.js';
import type { KafkaClient } from '../kafka/client.js';
import { KAFKA_CLIENT_OPTION_KEYS, kafkaClientOptions } from '../kafka/prefixed-options.js';
import { parseSinkUri } from '../sinks/sink-factory.js';
import { parseSourceUri } from '../sources/source-uri.js';
import { createDirectory } from '../util/create-directory.js';
import { parseDuration } from '../util/duration.js';
import { notice } from '../util/notices.js';
import { type ProcessIdentity, processAlive, thisProcess } from '../util/process-identity.js';
import {
  assignUris,
  buildApp,
  inputUri,
  type LoadedApp,
  parseAppOptions,
  type RunAppOptions,
  runApp,
} from './app-runner.js';
import { findCut, type RepartitionCluster, type StageCut, type StageSpec } from './group-stages.js';

/** How a process joins the group of an app's processes. */
export interface AppGroupOptions {
  /** The consumer group id: processes with the same id share the app's tasks. */
  id: string;
  /** The coordinator drops a member it has not heard from for this long, and its tasks move. Default 10 s. */
  sessionTimeout?: string | number;
  /**
   * The input topics are not partitioned by the key of the app's first keyed operator (their message key is
   * another, or none): repartition through an internal topic in front of it. Default false: Kafka's message
   * key is taken to be the operators' key, as `sluice gen --to kafka://` writes it.
   */
  repartition?: boolean;
  /** Called after each batch of output `output` of task `task` that this process runs (`NAME@stage2` for stage 2). */
  onProgress?: (task: number, output: string, p: QueryProgress) => void;
}

/** The name a task's output goes by in this process's progress lines and UI. */
export function taskOutputName(task: number, output: string): string {
  return `task ${task}/${output}`;
}

/** One process's part of an app run by a group. */
export interface AppGroupMember {
  /** The member id the group coordinator gave this process. */
  readonly memberId: string;
  /**
   * The tasks this process runs now: input partition P's stage-1 task and the stage-2 task of repartition
   * partition P go together as task P; a global operator's stage-2 task is task N for N input partitions.
   */
  tasks(): number[];
  /** The queries of each running task, by output name (stage-2 queries as `NAME@stage2`). */
  queries(): Map<number, Map<string, StreamingQuery>>;
  /** Stops the tasks after their batches in progress and leaves the group, so the others take the tasks at once. */
  stop(): Promise<void>;
  /** Resolves when the member was stopped; rejects when a task failed (the member then leaves the group). */
  awaitTermination(): Promise<void>;
}

/** The group protocol type of sluice's members: only members of this kind may join the group. */
const PROTOCOL_TYPE = 'sluice';
const DEFAULT_SESSION_TIMEOUT_MS = 10_000;
/** Under `<checkpoint>/tasks/`: the checkpoint of repartition partition P's stage-2 task is `stage2-P`. */
export const STAGE2_DIR_PREFIX = 'stage2-';
/** Under `<checkpoint>/tasks/`: the checkpoint of the global operators' stage-2 task. */
export const GLOBAL_TASK_DIR = 'stage2-global';

/** The Kafka inputs of the app as given: their names, URIs, topics and where their brokers are. */
interface KafkaInputs {
  uris: Record<string, string>;
  topics: string[];
  bootstrap: string;
  options: Record<string, string>;
}

function kafkaInputs(app: LoadedApp, sources: string[]): KafkaInputs {
  const given = assignUris('source', Object.keys(app.def.inputs), sources);
  const uris: Record<string, string> = {};
  const topics: string[] = [];
  let first: { bootstrap: string; options: Record<string, string> } | undefined;
  for (const name of Object.keys(app.def.inputs)) {
    const uri = given[name] ?? app.def.inputs[name].default;
    const { format, options } = parseSourceUri(uri);
    const topic = options.topic ?? options.subscribe;
    if (format !== 'kafka' || !topic) {
      throw new UsageError(
        'GROUP_NEEDS_KAFKA',
        `--group shares the partitions of Kafka inputs, but input ${name} is ${format === 'kafka' ? 'not a list of topics' : uri}`,
        'give every input as kafka://HOST:PORT/TOPIC (a pattern or assign is not supported with --group)',
      );
    }
    uris[name] = uri;
    topics.push(...topic.split(',').map((t) => t.trim()));
    first ??= { bootstrap: options.bootstrap ?? options['kafka.bootstrap.servers'], options };
  }
  if (!first) throw new UsageError('GROUP_NEEDS_KAFKA', `app ${app.def.name} has no inputs to share`);
  return { uris, topics, ...first };
}

/** The input URI of task `task`: the same source reading partition `task` of each of its topics. */
function taskSourceUri(uri: string, task: number): string {
  const { options } = parseSourceUri(uri);
  const topics = (options.topic ?? options.subscribe).split(',').map((t) => t.trim());
  const params = new URLSearchParams(uri.includes('?') ? uri.slice(uri.indexOf('?') + 1) : '');
  params.delete('topic');
  params.delete('subscribe');
  params.set('assign', JSON.stringify(Object.fromEntries(topics.map((t) => [t, [task]]))));
  const base = /^kafka:\/\/[^/?]+/.exec(uri)![0];
  return `${base}?${params.toString()}`;
}

/**
 * The sink URI of task `task`: directories get a `task=P` folder per task, so tasks' batch logs stay apart;
 * Kafka sinks fence by producer epoch unless the URI says otherwise, as only the brokers can stop a paused
 * member that wakes between its claim check and its produce request.
 */
function taskSinkUri(uri: string, task: string): string {
  const { format, options } = parseSinkUri(uri);
  if (format === 'kafka' && options.fencing === undefined) return `${uri}${uri.includes('?') ? '&' : '?'}fencing=epoch`;
  if (!['file', 'json', 'csv', 'parquet'].includes(format) || options.path === undefined) return uri;
  const q = uri.indexOf('?');
  const base = q < 0 ? uri : uri.slice(0, q);
  return `${base.replace(/\/+$/, '')}/task=${task}${q < 0 ? '' : uri.slice(q)}`;
}

interface Metadata {
  owned: number[];
  generation: number;
  /** The member's process, so that members on its host can tell when it died. */
  process?: ProcessIdentity;
}

/** What the leader hands each member: its tasks, and every member's process. */
interface Assignment {
  tasks: number[];
  members: Record<string, ProcessIdentity>;
}

/** How often a member looks whether the other members' processes on its host are still alive. */
const LIVENESS_CHECK_MS = 1000;

function parseMetadata(memberId: string, raw: Buffer): MemberTasks & { process?: ProcessIdentity } {
  try {
    const m = JSON.parse(raw.toString('utf8')) as Metadata;
    return {
      memberId,
      owned: Array.isArray(m.owned) ? m.owned : [],
      generation: Number(m.generation) || -1,
      process: m.process,
    };
  } catch {
    return { memberId, owned: [], generation: -1 };
  }
}

/**
 * Runs `app` as one member of group `group.id`: joins the group, and runs the tasks the group assigns to
 * this process, each over its own partition of the inputs with its own checkpoint under `<checkpoint>/tasks/`,
 * until stopped. The trigger must be an interval (a member runs until stopped). With `threads` N >= 1 every task
 * of the process runs on the same worker threads (N - 1 of them beside the process's own thread, or one for
 * N = 1), rather than N per task: the process uses its N threads however many tasks the group gives it.
 */
export async function runAppInGroup(
  app: LoadedApp,
  run: Omit<RunAppOptions, 'onProgress'>,
  group: AppGroupOptions,
): Promise<AppGroupMember> {
  if (run.trigger && !('processingTime' in run.trigger)) {
    throw new UsageError(
      'GROUP_TRIGGER',
      'a group member runs until it is stopped: --group needs an interval trigger, not once or available-now',
      'e.g. --trigger 1s',
    );
  }
  if (group.id === '') throw new UsageError('BAD_OPTION', 'the group id is empty', 'e.g. --group bank-account');
  const sessionTimeoutMs =
    group.sessionTimeout === undefined
      ? DEFAULT_SESSION_TIMEOUT_MS
      : parseDuration(group.sessionTimeout, 'group session timeout');
  const inputs = await asUsage(() => kafkaInputs(app, run.sources ?? []));
  await asUsage(() => parseAppOptions(app.def, run.options ?? {}));
  const cuts = await asUsage(() => findCuts(app, run, inputs, group));
  const checkpoint = run.checkpoint ?? path.join('checkpoints', app.def.name);
  await claimGroupCheckpoint(checkpoint, group.id);
  const { KafkaClient } = await import('../kafka/client.js');
  const { GroupMembership } = await import('../kafka/group-membership.js');
  const client = await KafkaClient.connect(inputs.bootstrap, kafkaClientOptions('kafka source', inputs.options));
  const lanes = (run.threads ?? 0) === 0 ? undefined : new SharedLanes();
  let manager: TaskManager | undefined;
  try {
    const partitions = await client.listPartitions(inputs.topics);
    const counts = new Map<string, number>();
    for (const p of partitions) counts.set(p.topic, (counts.get(p.topic) ?? 0) + 1);
    const missing = inputs.topics.filter((t) => !counts.has(t));
    if (missing.length > 0)
      throw new SluiceError('GROUP_NO_TOPIC', `input topic ${missing.join(', ')} does not exist`, 'create it first');
    const taskCount = Math.max(...counts.values());
    if (new Set(counts.values()).size > 1) {
      throw new SluiceError(
        'GROUP_NOT_COPARTITIONED',
        `--group needs input topics with the same number of partitions (one task reads partition P of each), found ${[...counts].map(([t, n]) => `${t}: ${n}`).join(', ')}`,
        'repartition the inputs to one partition count',
      );
    }
    await checkRepartitionTopics(client, cuts, taskCount);
    const keyed = new Map([...cuts].filter(([, c]) => !c.global));
    const global = new Map([...cuts].filter(([, c]) => c.global));
    const cluster: RepartitionCluster = {
      bootstrap: inputs.bootstrap,
      clientOptions: Object.fromEntries(
        Object.entries(inputs.options).filter(([k]) => (KAFKA_CLIENT_OPTION_KEYS as readonly string[]).includes(k)),
      ),
      maxOffsetsPerTrigger: inputs.options.maxOffsetsPerTrigger,
    };
    const globalTask = global.size > 0 ? taskCount : null;
    const label = (task: number): string => (task === globalTask ? `${task} (global)` : String(task));
    const log = (message: string): void => notice(`group ${group.id}: ${message}`);
    const taskQueries = new Map<number, Map<string, StreamingQuery>>();
    /** Runs one stage of `task`: the app's queries as `stage` makes them, with the task's checkpoint `dir`. */
    const runStage = (
      task: number,
      dir: string,
      stage: StageSpec | undefined,
      sinkTask: string,
      outputName: (output: string) => string = (o) => o,
    ) =>
      runApp(app, {
        ...run,
        sources: Object.entries(inputs.uris).map(
          ([name, uri]) => `${name}=${taskSourceUri(uri, task === globalTask ? 0 : task)}`,
        ),
        sinks: assignedSinks(app, run.sinks ?? [], sinkTask),
        checkpoint: path.join(checkpoint, 'tasks', dir),
        checkpointClaim: { heartbeatMs: 1000, staleAfterMs: sessionTimeoutMs },
        lanes,
        onProgress: group.onProgress && ((output, p) => group.onProgress!(task, outputName(output), p)),
        stage,
      });
    const stage2Name = (output: string): string => `${output}@stage2`;
    const tasks = new TaskManager({
      retryMs: 500,
      log,
      label,
      start: async (task) => {
        const started: Map<string, StreamingQuery>[] = [];
        try {
          if (task === globalTask) {
            const { queries } = await runStage(
              task,
              GLOBAL_TASK_DIR,
              { stage: 2, cuts: [...global], cluster, partition: 0, upstreams: taskCount },
              'global',
              stage2Name,
            );
            started.push(new Map([...queries].map(([name, q]) => [stage2Name(name), q])));
          } else {
            const stage1 = await runStage(
              task,
              String(task),
              cuts.size > 0 ? { stage: 1, cuts: [...cuts], cluster, task, inputPartitions: taskCount } : undefined,
              String(task),
            );
            started.push(stage1.queries);
            if (keyed.size > 0) {
              const stage2 = await runStage(
                task,
                `${STAGE2_DIR_PREFIX}${task}`,
                { stage: 2, cuts: [...keyed], cluster, partition: task, upstreams: taskCount },
                String(task),
                stage2Name,
              );
              started.push(new Map([...stage2.queries].map(([name, q]) => [stage2Name(name), q])));
            }
          }
        } catch (err) {
          await Promise.all(started.flatMap((qs) => [...qs.values()].map((q) => q.stop())));
          throw err;
        }
        const queries = new Map(started.flatMap((qs) => [...qs]));
        taskQueries.set(task, queries);
        const all = [...queries.values()];
        return {
          stop: async () => {
            await Promise.all(all.map((q) => q.stop()));
            taskQueries.delete(task);
          },
          terminated: Promise.all(all.map((q) => q.awaitTermination())).then(
            () => undefined,
            async (err: unknown) => {
              await Promise.all(all.map((q) => q.stop()));
              taskQueries.delete(task);
              throw err;
            },
          ),
        };
      },
    });
    manager = tasks;
    let generation = -1;
    const me = thisProcess();
    // The members and their processes, as of the latest assignment; and those removed for a dead process.
    let members: Record<string, ProcessIdentity> = {};
    const evicted = new Set<string>();
    const membership = await GroupMembership.join(client, {
      groupId: group.id,
      protocolType: PROTOCOL_TYPE,
      protocolName: 'sticky',
      sessionTimeoutMs,
      rebalanceTimeoutMs: sessionTimeoutMs,
      heartbeatMs: Math.max(100, Math.floor(sessionTimeoutMs / 10)),
      metadata: () =>
        Buffer.from(JSON.stringify({ owned: tasks.assigned, generation, process: me } satisfies Metadata)),
      assign: (members) => {
        const parsed = members.map((m) => parseMetadata(m.memberId, m.metadata));
        const roster: Record<string, ProcessIdentity> = {};
        for (const m of parsed) if (m.process) roster[m.memberId] = m.process;
        const assignment = assignTasks(taskCount + (globalTask === null ? 0 : 1), parsed);
        return new Map(
          [...assignment].map(([id, t]) => [
            id,
            Buffer.from(JSON.stringify({ tasks: t, members: roster } satisfies Assignment)),
          ]),
        );
      },
      onAssignment: (gen, raw) => {
        generation = gen;
        let assigned: Partial<Assignment> = {};
        try {
          assigned = JSON.parse(raw.toString('utf8')) as Assignment;
        } catch {
          // An empty assignment (the leader had nothing for this member) is no tasks.
        }
        members = { ...assigned.members };
        void tasks.assign(`generation ${gen}`, assigned.tasks ?? []);
      },
      onLost: (reason) => {
        void tasks.revokeAll(`lost its tasks: ${reason}`);
      },
      onRetry: log,
    });
    // A member that died on this host is removed from the group at once, rather than after its session timeout:
    // its tasks move now, and their claims are taken over at once as its process is gone.
    const liveness = setInterval(() => {
      for (const [id, p] of Object.entries(members)) {
        if (evicted.has(id) || p.host !== me.host || processAlive(p)) continue;
        evicted.add(id);
        log(`member ${id} (process ${p.pid}) is gone: removing it from the group, so that its tasks move now`);
        void membership.evict(id);
      }
    }, LIVENESS_CHECK_MS);
    liveness.unref();
    let stopping: Promise<void> | null = null;
    const stop = (): Promise<void> =>
      (stopping ??= (async () => {
        clearInterval(liveness);
        await tasks.close();
        lanes?.release();
        await membership.leave();
        await client.close();
      })());
    // Ends with the first task failure or a membership that cannot go on, after leaving the group; or with stop().
    let stopped!: () => void;
    const ended = new Promise<void>((resolve) => {
      stopped = resolve;
    });
    const termination = Promise.race([
      ended,
      Promise.race([tasks.failure, membership.done]).catch(async (err: unknown) => {
        await stop();
        throw err;
      }),
    ]);
    termination.catch(() => undefined);
    return {
      memberId: membership.id,
      tasks: () => tasks.running,
      queries: () => new Map(taskQueries),
      stop: async () => {
        await stop();
        stopped();
      },
      awaitTermination: () => termination,
    };
  } catch (err) {
    await manager?.close();
    lanes?.release();
    await client.close();
    throw err;
  }
}

/**
 * Where each output's plan is cut into stages (outputs that run whole in each input partition's task are left
 * out), found on the app built over partition 0 of its inputs; checked before anything connects.
 */
function findCuts(
  app: LoadedApp,
  run: RunAppOptions,
  inputs: KafkaInputs,
  group: AppGroupOptions,
): Map<string, StageCut> {
  const { def } = app;
  const options = parseAppOptions(def, run.options ?? {});
  const uris = Object.fromEntries(
    Object.entries(inputs.uris).map(([name, uri]) => [name, inputUri(def, name, taskSourceUri(uri, 0))]),
  );
  const outputs = buildApp(def, Session.local({ threads: 0 }), options, uris);
  const cuts = new Map<string, StageCut>();
  for (const [name, ds] of Object.entries(outputs)) {
    const cut = findCut(def.name, group.id, name, ds.plan, def.outputs[name].outputMode, {
      repartition: group.repartition === true,
    });
    if (cut) cuts.set(name, cut);
  }
  return cuts;
}

/**
 * Checks that each repartition topic exists with its partition count (the input's, or one for a global
 * operator): the brokers sluice is tested against cannot create topics, so the operator creates them, as the
 * error says.
 */
async function checkRepartitionTopics(
  client: KafkaClient,
  cuts: ReadonlyMap<string, StageCut>,
  inputPartitions: number,
): Promise<void> {
  const wanted = new Map([...cuts.values()].map((c) => [c.topic, c.global ? 1 : inputPartitions]));
  if (wanted.size === 0) return;
  const found = new Map<string, number>();
  for (const p of await client.listPartitions([...wanted.keys()])) found.set(p.topic, (found.get(p.topic) ?? 0) + 1);
  const wrong = [...wanted].filter(([topic, n]) => found.get(topic) !== n);
  if (wrong.length === 0) return;
  throw new SluiceError(
    'GROUP_REPARTITION_TOPIC',
    `the group's repartition topic${wrong.length === 1 ? '' : 's'} ${wrong
      .map(([t, n]) => `${t} (${n} partition${n === 1 ? '' : 's'}${found.has(t) ? `, found ${found.get(t)}` : ''})`)
      .join(', ')} ${wrong.length === 1 ? 'does' : 'do'} not exist as needed`,
    `create ${wrong.length === 1 ? 'it' : 'them'} first, e.g. ${wrong
      .map(([t, n]) => `kafka-topics.sh --create --topic ${t} --partitions ${n}`)
      .join('; ')}`,
  );
}

/** The file in a group's checkpoint directory that names the group. */
export const GROUP_MARKER = 'group';

/** The group whose tasks checkpoint in `dir`, or null when no group ran there. */
export async function checkpointGroup(dir: string): Promise<string | null> {
  const marker = path.join(dir, GROUP_MARKER);
  if (!fs.existsSync(marker)) return null;
  const { group } = await readVersioned<{ group: string }>(marker, (b) =>
    isRecord(b) && typeof b.group === 'string' ? null : 'field "group" must be a string',
  );
  return group;
}

/**
 * Records group `id` in the checkpoint `dir`: two groups on one checkpoint would run each task twice over, so a
 * checkpoint another group wrote is refused.
 */
async function claimGroupCheckpoint(dir: string, id: string): Promise<void> {
  const owner = await checkpointGroup(dir);
  if (owner === id) return;
  if (owner !== null) {
    throw new UsageError(
      'GROUP_OTHER_CHECKPOINT',
      `checkpoint ${dir} holds the tasks of group ${owner}, not ${id}`,
      `run with --group ${owner}, or give group ${id} its own --checkpoint directory`,
    );
  }
  try {
    await createDirectory(dir);
    await writeVersioned(path.join(dir, GROUP_MARKER), { group: id });
  } catch (err) {
    throw pathError(err, `the checkpoint directory ${dir}`, 'create');
  }
}

/** The `--sink` values of task `task`: the given ones and the app's defaults, directories made per task. */
function assignedSinks(app: LoadedApp, sinks: string[], task: string): string[] {
  const given = assignUris('sink', Object.keys(app.def.outputs), sinks);
  return Object.keys(app.def.outputs).map(
    (name) => `${name}=${taskSinkUri(given[name] ?? app.def.outputs[name].default, task)}`,
  );
}
