/**
 * `sluice group <id> --checkpoint DIR [--bootstrap HOST:PORT]`: the members of a group, the tasks each runs,
 * and per task its last committed batch, input offsets, lag and state size. Read from the tasks' checkpoints,
 * which every member writes on shared storage (a task's claim names the process that runs it), so it works
 * with coordinators that do not answer DescribeGroups; nothing is written.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { checkpointGroup, GLOBAL_TASK_DIR, STAGE2_DIR_PREFIX } from '../app/app-group.js';
import { CLAIM_FILE } from '../checkpoint/checkpoint-claim.js';
import { isRecord } from '../checkpoint/fields.js';
import { SluiceError, UsageError } from '../errors.js';
import { inspectCheckpoint, type QueryCheckpointSummary } from './checkpoint-inspector.js';
import { onceFlag } from './flags.js';
import { formatBytes, formatTable } from './text-table.js';

interface GroupArgs {
  id: string;
  checkpoint: string;
  bootstrap?: string;
}

/** One task as its checkpoint shows it. */
interface TaskView {
  /** The task's directory under `<checkpoint>/tasks/`: `P` (stage 1, or the whole app), `stage2-P`, `stage2-global`. */
  task: string;
  /** The partition its sources read: P, or 0 for the global task's topic of one partition. */
  partition: number;
  /** `pid N on HOST`, or null when no process holds the task. */
  owner: string | null;
  lastCommittedBatch: number | null;
  /** Next offset to read per topic of the task's partition (the least over the app's outputs). */
  offsets: Map<string, number>;
  stateBytes: number;
}

/** The process holding a query's checkpoint claim, when its heartbeat is recent. */
function claimOwner(dir: string): string | null {
  try {
    const c: unknown = JSON.parse(fs.readFileSync(path.join(dir, CLAIM_FILE), 'utf8'));
    if (!isRecord(c) || typeof c.pid !== 'number' || typeof c.host !== 'string') return null;
    return `pid ${c.pid} on ${c.host}`;
  } catch {
    return null;
  }
}

function taskView(task: string, queries: QueryCheckpointSummary[]): TaskView {
  const partition = Number(/(\d+)$/.exec(task)?.[1] ?? 0);
  const offsets = new Map<string, number>();
  for (const q of queries) {
    for (const s of q.sources) {
      if (!isRecord(s.end)) continue;
      for (const [topic, parts] of Object.entries(s.end)) {
        const next = isRecord(parts) ? Number(parts[String(partition)]) : Number.NaN;
        if (Number.isFinite(next)) offsets.set(topic, Math.min(offsets.get(topic) ?? next, next));
      }
    }
  }
  const committed = queries.map((q) => q.lastCommittedBatch).filter((b): b is number => b !== null);
  return {
    task,
    partition,
    owner: queries.map((q) => claimOwner(q.dir)).find((o) => o !== null) ?? null,
    lastCommittedBatch: committed.length === 0 ? null : Math.min(...committed),
    offsets,
    stateBytes: queries.reduce((sum, q) => sum + q.stateOperators.reduce((s, o) => s + o.diskBytes, 0), 0),
  };
}

/** Prints the group's members and tasks; returns the exit code. */
export async function groupCommand(
  args: GroupArgs,
  out: (text: string) => void = (t) => process.stdout.write(t),
): Promise<number> {
  const dir = onceFlag(args.checkpoint, 'checkpoint');
  const owner = await checkpointGroup(dir);
  if (owner === null) {
    throw new UsageError(
      'NOT_A_GROUP_CHECKPOINT',
      `${dir} is not the checkpoint of a group`,
      'give the --checkpoint directory the members run with (sluice run APP --group ID --checkpoint DIR)',
    );
  }
  if (owner !== args.id) {
    throw new UsageError('GROUP_OTHER_CHECKPOINT', `checkpoint ${dir} holds group ${owner}, not ${args.id}`);
  }
  const tasksDir = path.join(dir, 'tasks');
  // Stage-1 tasks (or whole-app tasks) by partition, then stage-2 tasks by partition, then the global one.
  const order = (n: string): number[] => [
    n.startsWith(STAGE2_DIR_PREFIX) ? (n === GLOBAL_TASK_DIR ? 2 : 1) : 0,
    Number(/(\d+)$/.exec(n)?.[1] ?? 0),
  ];
  const ids = fs.existsSync(tasksDir)
    ? fs
        .readdirSync(tasksDir)
        .filter((n) => /^\d+$/.test(n) || new RegExp(`^${STAGE2_DIR_PREFIX}\\d+$`).test(n) || n === GLOBAL_TASK_DIR)
        .sort((a, b) => {
          const [x, y] = [order(a), order(b)];
          return x[0] - y[0] || x[1] - y[1];
        })
    : [];
  const tasks = await Promise.all(
    ids.map(async (t) => taskView(t, await inspectCheckpoint(path.join(tasksDir, t), { skipState: true }))),
  );
  const ends = args.bootstrap === undefined ? null : await endOffsets(args.bootstrap, tasks);
  const lagOf = (t: TaskView): string => {
    if (!ends) return '';
    let lag = 0;
    for (const [topic, next] of t.offsets) lag += Math.max(0, (ends.get(`${topic}/${t.partition}`) ?? next) - next);
    return String(lag);
  };
  const members = new Map<string, string[]>();
  for (const t of tasks) if (t.owner) members.set(t.owner, [...(members.get(t.owner) ?? []), t.task]);
  const rows = tasks.map((t) => [
    t.task,
    t.owner ?? '(none)',
    t.lastCommittedBatch === null ? '-' : String(t.lastCommittedBatch),
    [...t.offsets].map(([topic, o]) => `${topic}:${o}`).join(' '),
    ...(ends ? [lagOf(t)] : []),
    formatBytes(t.stateBytes),
  ]);
  const header = ['task', 'member', 'batch', 'next offsets', ...(ends ? ['lag'] : []), 'state'];
  const lines = [
    `group ${args.id}: ${tasks.length} task${tasks.length === 1 ? '' : 's'}, ${members.size} member${members.size === 1 ? '' : 's'} running (checkpoint ${dir})`,
    ...[...members].map(([m, ts]) => `  ${m}: task${ts.length === 1 ? '' : 's'} ${ts.join(', ')}`),
    '',
    formatTable(header, rows),
  ];
  out(`${lines.join('\n')}\n`);
  return 0;
}

/** The end offset of each task's partition, by `topic/partition`. */
async function endOffsets(bootstrap: string, tasks: TaskView[]): Promise<Map<string, number>> {
  const topics = [...new Set(tasks.flatMap((t) => [...t.offsets.keys()]))];
  if (topics.length === 0) return new Map();
  const { KafkaClient } = await import('../kafka/client.js');
  const client = await KafkaClient.connect(bootstrap, { retry: { retries: 2 } });
  try {
    const parts = await client.fetchOffsets(topics);
    return new Map(parts.map((p) => [`${p.topic}/${p.partition}`, p.high]));
  } catch (err) {
    throw new SluiceError('KAFKA_ERROR', `could not read the end offsets of ${topics.join(', ')}`, undefined, {
      cause: err,
    });
  } finally {
    await client.close();
  }
}

/** `sluice group <id>`. */
export const groupCommandModule: CommandModule<object, GroupArgs> = {
  command: 'group <id>',
  describe: "Show a group's members, the tasks each runs, and per task its batch, offsets, lag and state size",
  builder: (y: Argv) =>
    y
      .positional('id', { type: 'string', demandOption: true, describe: 'the group id (sluice run --group ID)' })
      .option('checkpoint', {
        type: 'string',
        requiresArg: true,
        demandOption: true,
        describe: 'the checkpoint directory the members run with',
      })
      .option('bootstrap', {
        type: 'string',
        requiresArg: true,
        describe: 'Kafka bootstrap servers (HOST:PORT): adds the lag of each task',
      })
      .example(
        '$0 group bank-account --checkpoint /mnt/shared/bank --bootstrap broker:9092',
        'who runs which task, and how far behind each is',
      ) as unknown as Argv<GroupArgs>,
  handler: async (argv: ArgumentsCamelCase<GroupArgs>) => {
    process.exitCode = await groupCommand(argv as GroupArgs);
  },
};
