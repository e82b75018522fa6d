/**
 * The tasks one group member runs (Kafka Streams' TaskManager): it follows the member's assignment,
 * stopping the tasks that moved away and starting those that moved in, and says what moved and how long
 * each new task took to restore.
 *
 * A task moving in may still be held by its previous owner, which stops it only after its batch in progress
 * (or never, when it was paused or cut off): starting it fails with CHECKPOINT_IN_USE until that owner has
 * released the task's checkpoint or its claim went stale, and the manager tries again meanwhile, for as long
 * as the task stays assigned. That wait is what keeps two members from writing one task's batch at once.
 */
import { SluiceError } from '../errors.js';

/** A task running in this process. */
export interface RunningTask {
  /** Stops the task after its batch in progress and releases its checkpoint. */
  stop(): Promise<void>;
  /** Resolves when the task stopped by itself, rejects when it failed. */
  terminated: Promise<void>;
}

/** How a {@link TaskManager} starts tasks and reports. */
export interface TaskManagerOptions {
  /** Starts `task`; throws SluiceError CHECKPOINT_IN_USE while another process holds the task. */
  start(task: number): Promise<RunningTask>;
  /** One line for the operator (a rebalance, a task restored). */
  log(message: string): void;
  /** Time between attempts to take over a task that another process still holds. */
  retryMs: number;
  /** How the log names a task (default its number). */
  label?(task: number): string;
}

interface Slot {
  /** Set once started; undefined while waiting for the previous owner. */
  running?: RunningTask;
  /** Set when the task is no longer this member's: a start in progress gives up. */
  revoked: boolean;
  starting: Promise<void>;
}

/** Whether `err` says another process holds the task: its checkpoint's claim, or its Kafka sink's producer epoch. */
function inUse(err: unknown): boolean {
  return err instanceof SluiceError && (err.code === 'CHECKPOINT_IN_USE' || err.code === 'KAFKA_FENCED');
}

/** The tasks of one member, kept in line with its latest assignment. */
export class TaskManager {
  private readonly slots = new Map<number, Slot>();
  /** Assignments are applied one at a time, in order. */
  private queue: Promise<void> = Promise.resolve();
  private failWith: ((err: Error) => void) | null = null;
  private closed = false;
  /** Rejects with the first task failure that is not the loss of the task to another member. */
  readonly failure: Promise<never>;

  constructor(private readonly opts: TaskManagerOptions) {
    this.failure = new Promise<never>((_, reject) => {
      this.failWith = reject;
    });
    this.failure.catch(() => undefined);
  }

  /** The tasks assigned to this member (running, or waiting for their previous owner). */
  get assigned(): number[] {
    return [...this.slots.keys()].sort((a, b) => a - b);
  }

  /** The tasks running now. */
  get running(): number[] {
    return this.assigned.filter((t) => this.slots.get(t)!.running !== undefined);
  }

  /** Follows a new assignment: stops the tasks not in `tasks`, starts the new ones. */
  assign(description: string, tasks: number[]): Promise<void> {
    this.queue = this.queue.then(() => this.apply(description, tasks));
    return this.queue;
  }

  /** Stops every task: the member lost its membership, or is leaving. */
  revokeAll(description: string): Promise<void> {
    return this.assign(description, []);
  }

  /** Stops every task and starts no more. */
  async close(): Promise<void> {
    await this.revokeAll('stopping');
    this.closed = true;
    await this.queue;
  }

  private list(tasks: number[]): string {
    const label = this.opts.label ?? String;
    return tasks.length === 0 ? 'none' : tasks.map((t) => label(t)).join(', ');
  }

  private async apply(description: string, tasks: number[]): Promise<void> {
    if (this.closed) return;
    const wanted = new Set(tasks);
    const kept = this.assigned.filter((t) => wanted.has(t));
    const gone = this.assigned.filter((t) => !wanted.has(t));
    const added = [...wanted].filter((t) => !this.slots.has(t)).sort((a, b) => a - b);
    if (gone.length > 0 || added.length > 0 || description !== 'stopping')
      this.opts.log(
        `${description}: kept tasks ${this.list(kept)}; took ${this.list(added)}; gave up ${this.list(gone)}`,
      );
    await Promise.all(gone.map((t) => this.stopTask(t)));
    for (const t of added) this.startTask(t);
  }

  private async stopTask(task: number): Promise<void> {
    const slot = this.slots.get(task);
    if (!slot) return;
    slot.revoked = true;
    this.slots.delete(task);
    await slot.starting;
    await slot.running?.stop();
  }

  private startTask(task: number): void {
    const slot: Slot = { revoked: false, starting: Promise.resolve() };
    this.slots.set(task, slot);
    slot.starting = this.startWhenFree(task, slot);
  }

  /** Starts `task`, retrying while its previous owner holds it; gives up when the task is revoked meanwhile. */
  private async startWhenFree(task: number, slot: Slot): Promise<void> {
    const began = Date.now();
    let waited = false;
    while (!slot.revoked) {
      try {
        const running = await this.opts.start(task);
        if (slot.revoked) {
          // No longer this member's: however it ends (its new owner may have taken its claim meanwhile) is not news.
          running.terminated.catch(() => undefined);
          await running.stop();
          return;
        }
        slot.running = running;
        const wait = waited ? ', after waiting for its previous owner to let it go' : '';
        this.opts.log(`task ${this.list([task])} restored in ${((Date.now() - began) / 1000).toFixed(1)} s${wait}`);
        running.terminated.then(
          () => this.ended(task, slot, null),
          (err: unknown) => this.ended(task, slot, err as Error),
        );
        return;
      } catch (err) {
        // Revoked while it started: how the start ended (its new owner may have taken its claim) is not news.
        if (slot.revoked) return;
        if (!inUse(err)) {
          this.failWith?.(err as Error);
          return;
        }
        waited = true;
        await new Promise((r) => setTimeout(r, this.opts.retryMs));
      }
    }
  }

  /** A task that stopped on its own: lost to another member (then dropped), or failed (then the member fails). */
  private ended(task: number, slot: Slot, err: Error | null): void {
    if (slot.revoked || this.slots.get(task) !== slot) return;
    this.slots.delete(task);
    if (err === null) return;
    if (inUse(err)) {
      this.opts.log(`task ${this.list([task])} was taken over by another member; it stopped without committing`);
      return;
    }
    this.failWith?.(err);
  }
}
