/**
 * One member of a Kafka consumer group, on the classic group protocol (JoinGroup, SyncGroup, Heartbeat,
 * LeaveGroup) without a consumer: the member only learns which work is its own, and what it does with it
 * (reading partitions, running tasks) is the caller's. The group's leader computes the assignment from every
 * member's metadata with the caller's assignor, as Kafka's client-side assignors do.
 *
 * A member heartbeats on its own timer, so an assignment the caller takes long to act on (tasks restoring,
 * old owners finishing a batch) never costs it its membership. When the coordinator answers a heartbeat with
 * REBALANCE_IN_PROGRESS the member joins again keeping its member id; when it says the member is unknown (its
 * session expired while it was paused or cut off) the member has lost its work: the caller is told at once
 * (`onLost`) and the member joins as a new one.
 */
import { SluiceError } from '../errors.js';
import type { KafkaClient } from './client.js';
import type { KjsBroker } from './kafkajs-internals.js';

/** A member as the leader sees it when it assigns: its id and the metadata it joined with. */
export interface GroupMemberMetadata {
  memberId: string;
  metadata: Buffer;
}

/** Timing and callbacks of a {@link GroupMembership}. */
export interface GroupMembershipOptions {
  groupId: string;
  /** The group's protocol type: members of one group must agree on it (Kafka's consumers use `consumer`). */
  protocolType: string;
  /** The assignor's name, announced in JoinGroup. */
  protocolName: string;
  /** The coordinator drops a member it has not heard from for this long. */
  sessionTimeoutMs: number;
  /** How long the coordinator waits for every member to join again in a rebalance. */
  rebalanceTimeoutMs: number;
  /** Time between heartbeats (a third of the session timeout or less). */
  heartbeatMs: number;
  /** What this member tells the leader when it joins (e.g. the work it holds now). */
  metadata(): Buffer;
  /** Run on the leader: each member's assignment. */
  assign(members: GroupMemberMetadata[]): Map<string, Buffer>;
  /** A new assignment of `generation`; called in generation order, without waiting for the caller. */
  onAssignment(generation: number, assignment: Buffer): void;
  /** The member's session expired: whatever it was assigned may already be another member's. */
  onLost(reason: string): void;
  /** A failure the member retries (coordinator away, a join cut short). */
  onRetry?(message: string): void;
}

/** Kafka's error types (kafkajs' `type`) after which a member joins again as it is. */
const REJOIN = new Set(['REBALANCE_IN_PROGRESS', 'ILLEGAL_GENERATION', 'INVALID_REQUEST']);
const UNKNOWN_MEMBER = new Set(['UNKNOWN_MEMBER_ID', 'FENCED_INSTANCE_ID']);

function errorType(err: unknown): string | undefined {
  return (err as { type?: string } | null)?.type;
}

/** This process's membership of one consumer group. */
export class GroupMembership {
  private memberId = '';
  private generation = -1;
  private coordinator: KjsBroker | null = null;
  private stopped = false;
  private loop: Promise<void> = Promise.resolve();
  private wake: (() => void) | null = null;

  private constructor(
    private readonly client: KafkaClient,
    private readonly opts: GroupMembershipOptions,
  ) {}

  /** Joins the group and resolves once the first assignment was handed to `onAssignment`. */
  static async join(client: KafkaClient, opts: GroupMembershipOptions): Promise<GroupMembership> {
    if (opts.heartbeatMs * 3 > opts.sessionTimeoutMs) {
      throw new SluiceError(
        'BAD_OPTION',
        `the group heartbeat (${opts.heartbeatMs} ms) must be at most a third of the session timeout (${opts.sessionTimeoutMs} ms)`,
        'raise the session timeout or lower the heartbeat interval',
      );
    }
    const m = new GroupMembership(client, opts);
    await m.joinAndSync();
    m.loop = m.run();
    return m;
  }

  /** The id the coordinator gave this member. */
  get id(): string {
    return this.memberId;
  }

  /** The generation of the last assignment. */
  get currentGeneration(): number {
    return this.generation;
  }

  /** Rejects when the membership failed for good (e.g. the group belongs to another kind of client). */
  get done(): Promise<void> {
    return this.loop;
  }

  /** Leaves the group, so that the others take its work over at once rather than after the session timeout. */
  async leave(): Promise<void> {
    this.stopped = true;
    this.wake?.();
    await this.loop.catch(() => undefined);
    if (this.memberId === '' || this.coordinator === null) return;
    await this.coordinator.leaveGroup({ groupId: this.opts.groupId, memberId: this.memberId }).catch(() => undefined);
  }

  /**
   * Removes another member from the group (a LeaveGroup in its name), for a member whose process is known to be
   * gone: the group rebalances now instead of after that member's session timeout. A member the coordinator
   * no longer knows is left as it is.
   */
  async evict(memberId: string): Promise<void> {
    if (this.stopped || this.coordinator === null || memberId === this.memberId) return;
    await this.coordinator.leaveGroup({ groupId: this.opts.groupId, memberId }).catch(() => undefined);
  }

  private async joinAndSync(): Promise<void> {
    const o = this.opts;
    for (;;) {
      if (this.stopped) return;
      try {
        this.coordinator ??= await this.client.groupCoordinator(o.groupId);
        const joined = await this.coordinator.joinGroup({
          groupId: o.groupId,
          sessionTimeout: o.sessionTimeoutMs,
          rebalanceTimeout: o.rebalanceTimeoutMs,
          memberId: this.memberId,
          protocolType: o.protocolType,
          groupProtocols: [{ name: o.protocolName, metadata: o.metadata() }],
        });
        this.memberId = joined.memberId;
        const leader = joined.leaderId === joined.memberId;
        const groupAssignment = leader
          ? [...o.assign(joined.members.map((mm) => ({ memberId: mm.memberId, metadata: mm.memberMetadata })))].map(
              ([memberId, memberAssignment]) => ({ memberId, memberAssignment }),
            )
          : [];
        // librdkafka's coordinator ends a sync as soon as the leader's assignment covers every member, and answers
        // a follower's SyncGroup after that with INVALID_REQUEST: the leader lets the followers' go first.
        if (leader && joined.members.length > 1) await this.pause(Math.min(o.heartbeatMs, 1000));
        if (this.stopped) return;
        const synced = await this.coordinator.syncGroup({
          groupId: o.groupId,
          generationId: joined.generationId,
          memberId: this.memberId,
          groupAssignment,
        });
        this.generation = joined.generationId;
        o.onAssignment(this.generation, synced.memberAssignment);
        return;
      } catch (err) {
        const type = errorType(err);
        if (type === 'INCONSISTENT_GROUP_PROTOCOL') {
          throw new SluiceError(
            'GROUP_IN_USE',
            `consumer group ${o.groupId} is used by other clients (not sluice members running the same app)`,
            'give --group an id of its own',
            { cause: err },
          );
        }
        if (UNKNOWN_MEMBER.has(type ?? '')) this.memberId = '';
        else if (!REJOIN.has(type ?? '')) {
          // The coordinator may have moved or be away: find it again.
          this.coordinator = null;
          o.onRetry?.(`joining group ${o.groupId} failed (${type ?? (err as Error).message}); retrying`);
          await this.pause(Math.min(o.heartbeatMs, 1000));
        }
      }
    }
  }

  private async run(): Promise<void> {
    const o = this.opts;
    while (!this.stopped) {
      await this.pause(o.heartbeatMs);
      if (this.stopped) return;
      try {
        await this.coordinator!.heartbeat({
          groupId: o.groupId,
          groupGenerationId: this.generation,
          memberId: this.memberId,
        });
      } catch (err) {
        const type = errorType(err) ?? '';
        if (UNKNOWN_MEMBER.has(type) || type === 'ILLEGAL_GENERATION') {
          // A generation went by without this member (it was paused or cut off): its work may be others' now.
          if (UNKNOWN_MEMBER.has(type)) this.memberId = '';
          o.onLost(`the group's coordinator no longer knows this member (${type.toLowerCase().replaceAll('_', ' ')})`);
        } else if (type !== 'REBALANCE_IN_PROGRESS') {
          this.coordinator = null;
          o.onRetry?.(`heartbeat to group ${o.groupId} failed (${(err as Error).message}); joining again`);
        }
        await this.joinAndSync();
      }
    }
  }

  /** Waits `ms`, or less when {@link leave} is called. */
  private pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(done, ms);
      function done(): void {
        clearTimeout(t);
        resolve();
      }
      this.wake = done;
    });
  }
}
