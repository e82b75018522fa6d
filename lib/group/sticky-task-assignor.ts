/**
 * Kafka Streams' sticky task assignment, for tasks numbered 0..n-1: every member gets n/m tasks (some one
 * more), and a member keeps the tasks it already runs as far as its share allows, so that a rebalance moves
 * only the tasks that must move (those of a member that left, or those a new member needs for its share).
 * A task moving means its state is read anew by its next owner, which is why fewer moves is the aim.
 */

/** What a member says it runs when it joins. */
export interface MemberTasks {
  memberId: string;
  /** The tasks it runs now. */
  owned: number[];
  /** The generation in which it was given them; the newer claim wins when two members say they own a task. */
  generation: number;
}

/**
 * Each member's tasks, every task of `0..taskCount-1` given to exactly one member. Deterministic: the same
 * members (in any order) get the same assignment.
 */
export function assignTasks(taskCount: number, members: MemberTasks[]): Map<string, number[]> {
  const sorted = [...members].sort((a, b) => (a.memberId < b.memberId ? -1 : a.memberId > b.memberId ? 1 : 0));
  const out = new Map<string, number[]>(sorted.map((m) => [m.memberId, []]));
  if (sorted.length === 0) return out;
  // A task two members claim (one of them was paused through a rebalance) stays with the newer generation.
  const holder = new Map<number, MemberTasks>();
  for (const m of sorted) {
    for (const t of m.owned) {
      if (!Number.isSafeInteger(t) || t < 0 || t >= taskCount) continue;
      const other = holder.get(t);
      if (!other || m.generation > other.generation) holder.set(t, m);
    }
  }
  const base = Math.floor(taskCount / sorted.length);
  let extra = taskCount % sorted.length;
  // Members keeping the most tasks get the shares of one more, so fewer tasks move.
  const byKept = [...sorted].sort((a, b) => keptCount(b, holder) - keptCount(a, holder));
  const quota = new Map<string, number>();
  for (const m of byKept) quota.set(m.memberId, base + (extra-- > 0 ? 1 : 0));
  const free: number[] = [];
  for (let t = 0; t < taskCount; t++) {
    const m = holder.get(t);
    const mine = m && out.get(m.memberId)!;
    if (mine && mine.length < quota.get(m.memberId)!) mine.push(t);
    else free.push(t);
  }
  for (const m of sorted) {
    const mine = out.get(m.memberId)!;
    while (mine.length < quota.get(m.memberId)!) mine.push(free.shift()!);
    mine.sort((a, b) => a - b);
  }
  return out;
}

function keptCount(m: MemberTasks, holder: Map<number, MemberTasks>): number {
  let n = 0;
  for (const t of m.owned) if (holder.get(t) === m) n++;
  return n;
}
