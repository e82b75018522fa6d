import { badOption, cents, idOf, isCount, withDefaults } from './common.js';
import { Random, type Seed } from './random.js';

/**
 * Game sessions for the deposit-sessions app (sum the wins of a session; a deposit event deposits the balance and
 * closes the session), as the text lines the app reads from a socket: `sessionId,winAmount` for a win
 * and `sessionId,winAmount,true` for the deposit that closes the session (its win counts too).
 *
 * Several sessions are open at once and their lines interleave. Every session that ends does so with
 * a deposit line; sessions still open when the count is reached stay open (no deposit line). A session
 * id is never reused, so a deposit is always the last line of its id.
 */
export interface DepositRecord {
  /** `session-000042`. */
  sessionId: string;
  /** Win of this event, ≥ 0, with cents. */
  winAmount: number;
  /** True on the line that deposits the balance and closes the session. */
  deposit: boolean;
}

/** Options of {@link deposits}. Every option has a default. */
export interface DepositsOptions {
  /** Number of lines (Infinity: endless). Default 10 000. */
  count?: number;
  /** PRNG seed. Default 1. */
  seed?: Seed;
  /** Number of sessions open at the same time (their lines interleave). Default 20. */
  concurrentSessions?: number;
  /** Mean number of lines of a session, the deposit line included. Default 6. */
  meanSessionEvents?: number;
  /** Fraction of win lines whose win is 0 (a lost round). Default 0.3. */
  zeroWinFraction?: number;
}

/** The defaults of {@link DepositsOptions}. */
export const DEPOSITS_DEFAULTS = {
  count: 10_000,
  seed: 1,
  concurrentSessions: 20,
  meanSessionEvents: 6,
  zeroWinFraction: 0.3,
} satisfies Required<DepositsOptions>;

interface OpenGameSession {
  id: string;
  remaining: number;
}

/** The records behind the lines, in stream order. */
export function* depositRecords(options: DepositsOptions = {}): Generator<DepositRecord> {
  const o = withDefaults<DepositsOptions>(DEPOSITS_DEFAULTS, options);
  if (!isCount(o.count)) throw badOption(`count must be a non-negative integer (or Infinity), got ${o.count}`);
  if (!Number.isSafeInteger(o.concurrentSessions) || o.concurrentSessions < 1) {
    throw badOption(`concurrentSessions must be a positive integer, got ${o.concurrentSessions}`);
  }
  if (!(o.meanSessionEvents >= 1)) throw badOption(`meanSessionEvents must be ≥ 1, got ${o.meanSessionEvents}`);
  if (!(o.zeroWinFraction >= 0 && o.zeroWinFraction <= 1))
    throw badOption(`zeroWinFraction must be between 0 and 1, got ${o.zeroWinFraction}`);
  const rng = new Random(o.seed).fork('deposits');
  const open: OpenGameSession[] = [];
  let sessions = 0;
  for (let i = 0; i < o.count; i++) {
    if (open.length < o.concurrentSessions) {
      open.push({ id: idOf('session', sessions++, 100_000), remaining: rng.geometric(o.meanSessionEvents) });
    }
    const slot = rng.int(open.length);
    const s = open[slot];
    const winAmount = rng.chance(o.zeroWinFraction) ? 0 : cents(rng.logNormal(Math.log(5), 1.2));
    s.remaining--;
    const deposit = s.remaining === 0;
    if (deposit) {
      open[slot] = open[open.length - 1];
      open.pop();
    }
    yield { sessionId: s.id, winAmount, deposit };
  }
}

/** A record as the seed's socket line. */
export function depositLine(r: DepositRecord): string {
  return r.deposit ? `${r.sessionId},${r.winAmount},true` : `${r.sessionId},${r.winAmount}`;
}

/** Socket lines `sessionId,winAmount[,true]` in stream order (see {@link DepositsOptions}). */
export function* deposits(options: DepositsOptions = {}): Generator<string> {
  for (const r of depositRecords(options)) yield depositLine(r);
}
