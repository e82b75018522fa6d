import type { GroupState } from '../../lib/api/group-state.js';
import { StatefulProcessor, type TimerValues, type ValueState } from '../../lib/api/stateful-processor.js';
import { defineApp } from '../../lib/app/app.js';
import { SluiceError } from '../../lib/errors.js';

/** How lines that cannot be read are handled (Spark's parse modes). */
type ParseMode = 'PERMISSIVE' | 'DROPMALFORMED' | 'FAILFAST';
const PARSE_MODES: readonly ParseMode[] = ['PERMISSIVE', 'DROPMALFORMED', 'FAILFAST'];

/** The two implementations of the session logic, with identical output. */
type StateApi = 'mapGroupsWithState' | 'transformWithState';
const STATE_APIS: readonly StateApi[] = ['mapGroupsWithState', 'transformWithState'];

interface Options {
  'session-timeout': number;
  mode: ParseMode;
  'state-api': StateApi;
}

/** One input line, read; `malformed` says why a line could not be read (PERMISSIVE mode). */
interface Transaction {
  sessionId: string | null;
  winAmount: number | null;
  deposit: boolean;
  malformed: string | null;
}

/** One output row (the Spark job's SessionUpdate, plus the timeout flag and the malformed-line report). */
interface SessionUpdate {
  sessionId: string | null;
  currentBalance: number | null;
  depositCurrentBalance: boolean;
  closedByTimeout: boolean;
  malformed: string | null;
}

const OUTPUT_SCHEMA = {
  sessionId: 'string',
  currentBalance: 'double',
  depositCurrentBalance: 'boolean',
  closedByTimeout: 'boolean',
  malformed: 'string',
} as const;

const TRANSACTION_SCHEMA = {
  sessionId: 'string',
  winAmount: 'double',
  deposit: 'boolean',
  malformed: 'string',
} as const;

/** Money is summed in binary floating point; rounding to micro-units keeps 2.76 + 7.07 at 9.83. */
function addAmount(balance: number, amount: number): number {
  return Math.round((balance + amount) * 1e6) / 1e6;
}

/** Why a line is not `sessionId,winAmount[,deposit]`, or null when it is. */
function problemOf(fields: string[]): string | null {
  if (fields.length < 2) return 'expected sessionId,winAmount[,deposit]';
  if (fields.length > 3) return `expected at most 3 fields, found ${fields.length}`;
  if (fields[0] === '') return 'the sessionId is empty';
  if (fields[1] === '' || !Number.isFinite(Number(fields[1]))) return `winAmount '${fields[1]}' is not a number`;
  if (fields.length === 3 && !/^(true|false)$/i.test(fields[2]))
    return `deposit flag '${fields[2]}' is not true or false`;
  return null;
}

/**
 * Reads one line. Blank lines carry nothing and are skipped. A malformed line is, by mode: reported in the
 * output (PERMISSIVE), skipped (DROPMALFORMED), or the end of the query (FAILFAST).
 */
function parseLine(line: string, mode: ParseMode): Transaction[] {
  if (line.trim() === '') return [];
  const fields = line.split(',').map((f) => f.trim());
  const problem = problemOf(fields);
  if (problem === null) {
    return [
      {
        sessionId: fields[0],
        winAmount: Number(fields[1]),
        deposit: fields[2]?.toLowerCase() === 'true',
        malformed: null,
      },
    ];
  }
  if (mode === 'DROPMALFORMED') return [];
  if (mode === 'FAILFAST') {
    throw new SluiceError(
      'MALFORMED_RECORD',
      `malformed line ${JSON.stringify(line)}: ${problem}`,
      'fix the line, or run with --mode PERMISSIVE (report it in the output) or --mode DROPMALFORMED (skip it)',
    );
  }
  return [{ sessionId: fields[0] || null, winAmount: null, deposit: false, malformed: `${problem}: ${line}` }];
}

function sessionRow(
  sessionId: string | null,
  currentBalance: number | null,
  depositCurrentBalance: boolean,
  closedByTimeout: boolean,
  malformed: string | null = null,
): SessionUpdate {
  return { sessionId, currentBalance, depositCurrentBalance, closedByTimeout, malformed };
}

/**
 * The session logic, applied to one session's lines of a batch in order, from its open balance (undefined
 * when it has none): a win adds to the balance; a deposit adds its amount, emits the balance with
 * depositCurrentBalance and closes the session, so a later line of the same id (even in the same batch)
 * opens a new one; a session still open that changed emits its running balance last. Returns the rows and
 * the balance left open.
 */
function applyLines(
  sessionId: string | null,
  events: Transaction[],
  open: number | undefined,
): { rows: SessionUpdate[]; balance: number | undefined } {
  const rows: SessionUpdate[] = [];
  let balance = open;
  let changed = false;
  for (const e of events) {
    if (e.malformed !== null) {
      rows.push(sessionRow(sessionId, null, false, false, e.malformed));
      continue;
    }
    balance = addAmount(balance ?? 0, e.winAmount!);
    changed = true;
    if (e.deposit) {
      rows.push(sessionRow(sessionId, balance, true, false));
      balance = undefined;
      changed = false;
    }
  }
  if (balance !== undefined && changed) rows.push(sessionRow(sessionId, balance, false, false));
  return { rows, balance };
}

/**
 * The session function of the mapGroupsWithState variant: {@link applyLines}, and an open session closes
 * with closedByTimeout when idle for the session timeout.
 */
function sessionUpdates(
  sessionId: string | null,
  events: Transaction[],
  state: GroupState<number>,
  timeoutMs: number,
): SessionUpdate[] {
  if (state.hasTimedOut) {
    const balance = state.get();
    state.remove();
    return [sessionRow(sessionId, balance, false, true)];
  }
  const { rows, balance } = applyLines(sessionId, events, state.getOption());
  if (balance === undefined) {
    state.remove();
    return rows;
  }
  state.update(balance);
  // Timeouts reset on every call: an open session is given the full timeout again from this batch.
  state.setTimeoutDuration(timeoutMs);
  return rows;
}

/**
 * The same sessions with Spark 4's transformWithState: the open balance in a ValueState, and one
 * processing-time timer per open session, moved to the session timeout after its latest batch.
 */
class DepositSessionProcessor extends StatefulProcessor<string | null, Transaction, SessionUpdate> {
  private balance!: ValueState<number>;

  constructor(private readonly timeoutMs: number) {
    super();
  }

  init(): void {
    this.balance = this.getHandle().getValueState<number>('balance', { schema: 'double' });
  }

  handleInputRows(sessionId: string | null, events: Transaction[], timerValues: TimerValues): SessionUpdate[] {
    const handle = this.getHandle();
    for (const t of handle.listTimers()) handle.deleteTimer(t);
    const { rows, balance } = applyLines(sessionId, events, this.balance.get());
    if (balance === undefined) {
      this.balance.clear();
    } else {
      this.balance.update(balance);
      handle.registerTimer(timerValues.getCurrentProcessingTimeInMs() + this.timeoutMs);
    }
    return rows;
  }

  override handleExpiredTimer(sessionId: string | null): SessionUpdate[] {
    const balance = this.balance.get();
    this.balance.clear();
    return balance === undefined ? [] : [sessionRow(sessionId, balance, false, true)];
  }
}

/**
 * The Spark Structured Streaming job (, "custom session windows" with mapGroupsWithState): per game
 * session, the running sum of the wins; a deposit line deposits the balance and closes the session.
 */
export default defineApp<Options>({
  name: 'deposit-sessions',
  description:
    'Spark mapGroupsWithState: running win balance per game session; a deposit closes the session; idle sessions time out',
  options: {
    'session-timeout': {
      type: 'duration',
      default: '30m',
      describe: 'close a session that got no line for this long (processing time), with closedByTimeout',
    },
    'state-api': {
      type: 'string',
      default: 'mapGroupsWithState',
      choices: STATE_APIS,
      describe:
        "the session logic's state API: mapGroupsWithState, or Spark 4's transformWithState (same output, state per variable)",
    },
    mode: {
      type: 'string',
      default: 'PERMISSIVE',
      choices: PARSE_MODES,
      describe:
        'malformed lines: PERMISSIVE reports them in the output, DROPMALFORMED skips them, FAILFAST stops the query',
    },
  },
  inputs: {
    lines: {
      describe: 'text lines sessionId,winAmount[,deposit] (e.g. session-1,2.5 and session-1,0,true)',
      default: 'socket://localhost:9999',
      format: 'text',
    },
  },
  outputs: {
    sessions: {
      describe: 'rows {sessionId, currentBalance, depositCurrentBalance, closedByTimeout, malformed}',
      default: 'console:',
      outputMode: 'update',
      key: 'sessionId',
    },
  },
  build: ({ input, options }) => {
    const timeoutMs = options['session-timeout'];
    if (!(timeoutMs > 0))
      throw new SluiceError(
        'BAD_OPTION',
        `--session-timeout must be positive, got ${timeoutMs} ms`,
        'e.g. --session-timeout 30m',
      );
    const mode = options.mode;
    const transactions = input('lines')
      .flatMap((row) => parseLine(String(row.value ?? ''), mode), TRANSACTION_SCHEMA)
      .groupByKey((t) => t.sessionId);
    return {
      sessions:
        options['state-api'] === 'transformWithState'
          ? transactions.transformWithState(new DepositSessionProcessor(timeoutMs), 'ProcessingTime', 'update', {
              schema: OUTPUT_SCHEMA,
            })
          : transactions.flatMapGroupsWithState(
              (id: string | null, events: Transaction[], state: GroupState<number>) =>
                sessionUpdates(id, events, state, timeoutMs),
              { outputMode: 'update', timeout: 'ProcessingTimeTimeout', schema: OUTPUT_SCHEMA },
            ),
    };
  },
});
