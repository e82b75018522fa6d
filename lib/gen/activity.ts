import { badOption, isCount } from './common.js';
import { KeyedHeap } from './heap.js';
import { Random, type Seed } from './random.js';

/**
 * Bursty per-user activity in event-time order: the skeleton of the clickstream and transaction
 * generators. Users have sessions (bursts of events) separated by idle periods, and the invariants a
 * sessionising job relies on hold by construction:
 *
 * - two consecutive events of one session are at most `sessionGapMs / 2` apart;
 * - a user's next session starts more than `sessionGapMs + 1 s` after the end of the previous one.
 *
 * So a session window with gap `sessionGapMs` over the event times finds exactly the generator's
 * sessions, with no event near the gap boundary (edge cases belong in hand-written tests).
 *
 * Model: a global clock advances by exponential steps of mean `meanSpacingMs`; at each step one event is
 * emitted. Up to `concurrency` sessions are open at once; a free slot starts a session for a user who
 * has been idle long enough, otherwise a uniformly chosen open session gets the event, so a session's
 * events are on average `concurrency × meanSpacingMs` apart. Session lengths are geometric with mean
 * `meanSessionEvents`. When no session is open and no user is eligible, the clock jumps to the next
 * eligible user (the only case where the spacing exceeds the configured mean).
 */
export interface ActivityOptions {
  /** Number of events to produce (Infinity: endless). */
  count: number;
  /** PRNG seed: the same seed and options give the same activity. */
  seed: Seed;
  /** Number of distinct users (≥ 1). */
  users: number;
  /** Event time of the start of the simulation, epoch milliseconds. */
  startTime: number;
  /** Mean event-time distance between two consecutive events over all users, milliseconds (> 0). */
  meanSpacingMs: number;
  /** Mean number of events per session (≥ 1). */
  meanSessionEvents: number;
  /**
   * Mean event-time distance between two events of the same session, milliseconds. Sets how many
   * sessions are open at once (`meanThinkTimeMs / meanSpacingMs`, at most half the users).
   */
  meanThinkTimeMs: number;
  /** The inactivity gap that separates sessions, milliseconds (> 2000). */
  sessionGapMs: number;
}

/** One event of the activity; `state` is the per-session value the caller created for its session. */
export interface ActivityEvent<S = undefined> {
  /** Event time, epoch milliseconds (integer). Non-decreasing over the sequence. */
  ts: number;
  /** User index in [0, users). */
  user: number;
  /** Serial number of the session over all users (0, 1, 2 … in order of session start). */
  session: number;
  /** Index of the session among the user's sessions (0 for the user's first). */
  userSession: number;
  /** Position of this event in its session (0 for the first). */
  index: number;
  /**
   * Events still planned in this session after this one (0 for the planned last event). A session can
   * end earlier than planned when it was not picked for `sessionGapMs / 2`; this is rare with sane options.
   */
  remaining: number;
  /** The session's caller-defined state, created at its first event and dropped when it ends. */
  state: S;
}

interface OpenSession<S> {
  user: number;
  session: number;
  userSession: number;
  index: number;
  remaining: number;
  lastTs: number;
  state: S;
}

/** Idle margin added to the session gap so no consecutive-session gap is near the boundary. */
const SESSION_MARGIN_MS = 1000;

/** Validates activity options; returns a message naming the first bad one, or undefined. */
export function checkActivityOptions(o: ActivityOptions): string | undefined {
  if (!isCount(o.count)) return `count must be a non-negative integer (or Infinity), got ${o.count}`;
  if (!Number.isSafeInteger(o.users) || o.users < 1) return `users must be a positive integer, got ${o.users}`;
  if (!Number.isFinite(o.startTime)) return `startTime must be epoch milliseconds, got ${o.startTime}`;
  if (!(o.meanSpacingMs > 0)) return `meanSpacingMs must be > 0, got ${o.meanSpacingMs}`;
  if (!(o.meanSessionEvents >= 1)) return `meanSessionEvents must be ≥ 1, got ${o.meanSessionEvents}`;
  if (!(o.meanThinkTimeMs > 0)) return `meanThinkTimeMs must be > 0, got ${o.meanThinkTimeMs}`;
  if (!(o.sessionGapMs > 2 * SESSION_MARGIN_MS))
    return `sessionGapMs must be > ${2 * SESSION_MARGIN_MS}, got ${o.sessionGapMs}`;
  return undefined;
}

/**
 * The activity as an iterable in event-time order. `newState` creates the state of each session (the
 * generators keep the current page or the open balance there). Throws SluiceError GEN_BAD_OPTION on invalid options.
 */
export function* activity<S = undefined>(
  o: ActivityOptions,
  newState: () => S = () => undefined as S,
): Generator<ActivityEvent<S>> {
  const bad = checkActivityOptions(o);
  if (bad) throw badOption(bad);
  const root = new Random(o.seed);
  const clockRng = root.fork('clock');
  const choiceRng = root.fork('choice');
  const concurrency = Math.max(1, Math.min(Math.floor(o.users / 2), Math.round(o.meanThinkTimeMs / o.meanSpacingMs)));
  const maxInSessionGap = Math.floor(o.sessionGapMs / 2);

  const waiting = new KeyedHeap<number>();
  for (let u = 0; u < o.users; u++) waiting.push(o.startTime, u);
  const eligible: number[] = [];
  const open: OpenSession<S>[] = [];
  const userSessions = new Uint32Array(o.users);
  let sessions = 0;
  let clock = o.startTime;

  const close = (s: OpenSession<S>, slot: number): void => {
    open[slot] = open[open.length - 1];
    open.pop();
    const idle = o.sessionGapMs + SESSION_MARGIN_MS + 1 + Math.floor(choiceRng.exponential(o.sessionGapMs / 2));
    waiting.push(s.lastTs + idle, s.user);
  };

  for (let produced = 0; produced < o.count; ) {
    clock += clockRng.exponential(o.meanSpacingMs);
    let ts = Math.floor(clock);
    for (;;) {
      while (waiting.peekKey() <= ts) eligible.push(waiting.pop()!);
      if (open.length < concurrency && eligible.length > 0) {
        const k = choiceRng.int(eligible.length);
        const user = eligible[k];
        eligible[k] = eligible[eligible.length - 1];
        eligible.pop();
        open.push({
          user,
          session: sessions++,
          userSession: userSessions[user]++,
          index: 0,
          remaining: choiceRng.geometric(o.meanSessionEvents) - 1,
          lastTs: ts,
          state: newState(),
        });
        const s = open[open.length - 1];
        yield {
          ts,
          user,
          session: s.session,
          userSession: s.userSession,
          index: 0,
          remaining: s.remaining,
          state: s.state,
        };
        if (s.remaining === 0) close(s, open.length - 1);
        produced++;
        break;
      }
      if (open.length > 0) {
        const slot = choiceRng.int(open.length);
        const s = open[slot];
        if (ts - s.lastTs > maxInSessionGap) {
          close(s, slot);
          continue;
        }
        s.index++;
        s.remaining--;
        s.lastTs = ts;
        yield {
          ts,
          user: s.user,
          session: s.session,
          userSession: s.userSession,
          index: s.index,
          remaining: s.remaining,
          state: s.state,
        };
        if (s.remaining === 0) close(s, slot);
        produced++;
        break;
      }
      // Nobody is active and nobody may start yet: jump to the first user who may.
      clock = Math.max(clock, waiting.peekKey());
      ts = Math.floor(clock);
    }
  }
}
