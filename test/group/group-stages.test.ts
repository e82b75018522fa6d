/**
 * The five seed apps over Kafka with `sluice run --group` and three processes on one machine against the test
 * broker, one of them killed (SIGKILL) in a batch, after its output and before its commit: each gives what one
 * process alone gives over the same input. Apps whose operator needs rows from every input partition run in two stages
 * through repartition topics: a global operator (active-session-totals' total, clickstream-metrics' windows
 * over all users), or, with --repartition, the keyed operators of input not partitioned by their key.
 *
 * Event-time apps get input in event-time order followed by one record per partition a day later, which moves
 * every task's watermark past every window and session of the input: then the single process's global
 * watermark and the group's (per stage-1 task, and the minimum over upstream tasks in stage 2) close the same
 * windows, and the outputs must be equal. Outputs whose rows depend on where batches end (update mode) are
 * compared by what every batching agrees on. Waits are on conditions, with generous limits.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { expect } from 'chai';
import { CLI, runCli } from '../support/cli.js';
import {
  consumeWithKcat,
  type KcatRecord,
  produceWithKcat,
  startBroker,
  type TestBroker,
} from '../support/kafka-broker.js';

const PARTITIONS = 4;

/** One `sluice run --group` process and what it printed. */
interface Member {
  name: string;
  proc: ChildProcess;
  stderr: string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

describe('sluice run --group: the seed apps in two stages, three processes, one killed mid-batch', function () {
  this.timeout(900_000);
  let broker: TestBroker;
  let root: string;
  const members: Member[] = [];

  before(async () => {
    broker = await startBroker({ brokers: 1 });
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-group-stages-'));
  });
  afterEach(async () => {
    for (const m of members.splice(0)) {
      m.proc.kill('SIGKILL');
      await m.exited;
    }
  });
  after(async () => {
    await broker?.stop();
    fs.rmSync(root, { recursive: true, force: true });
  });

  async function sluice(args: string[]): Promise<string> {
    const r = await runCli(args, { timeoutMs: 240_000 });
    expect(r.code, `sluice ${args.join(' ')}\n${r.stderr}`).to.equal(0);
    return r.stdout;
  }

  /** Generated input lines of `kind` (in event-time order). */
  async function generate(kind: string, count: number): Promise<string[]> {
    const out = await sluice(['gen', kind, '--count', String(count), '--to', '-']);
    return out.trim().split('\n');
  }

  /** Input topic `topic` with `lines` keyed by their entity (as `sluice gen --to kafka://` writes them). */
  async function keyedInput(topic: string, kind: string, count: number): Promise<void> {
    await broker.command(`topic ${topic} ${PARTITIONS}`);
    await sluice(['gen', kind, '--count', String(count), '--to', `kafka://${broker.bootstrap}/${topic}`]);
  }

  /** Input topic `topic` with `lines` dealt over its partitions in turn: not partitioned by any key. */
  async function dealtInput(topic: string, lines: string[]): Promise<void> {
    await broker.command(`topic ${topic} ${PARTITIONS}`);
    for (let p = 0; p < PARTITIONS; p++)
      produceWithKcat(
        broker.bootstrap,
        topic,
        lines.filter((_, i) => i % PARTITIONS === p),
        p,
      );
  }

  /** One record per partition a day after the input: every task's watermark passes every window of the input. */
  function flush(topic: string, template: string, idField: string): void {
    for (let p = 0; p < PARTITIONS; p++) {
      const row = { ...JSON.parse(template), [idField]: `flush-${p}`, timestamp: '2024-01-02T00:00:00.000Z' };
      produceWithKcat(broker.bootstrap, topic, [JSON.stringify(row)], p);
    }
  }

  const source = (topic: string) =>
    `kafka://${broker.bootstrap}/${topic}?startingOffsets=earliest&maxOffsetsPerTrigger=100`;
  const records = (topic: string) => consumeWithKcat(broker.bootstrap, topic).map((r) => r.value);

  /** Output topics `<prefix>-<output>` and the `--sink` flags writing into them. */
  async function sinks(prefix: string, outputs: string[]): Promise<string[]> {
    const flags: string[] = [];
    for (const o of outputs) {
      await broker.command(`topic ${prefix}-${o} 1`);
      flags.push('--sink', `${o}=kafka://${broker.bootstrap}/${prefix}-${o}`);
    }
    return flags;
  }

  /**
   * What one process alone writes over `input`: the reference, per output. It reads the input in one batch: its
   * single watermark (the largest event time of all partitions minus the delay) then finds no row of one
   * partition behind the rows of another, which batches of a few rows per partition would.
   */
  async function reference(app: string, input: string, outputs: string[], extra: string[] = []): Promise<void> {
    await sluice([
      'run',
      app,
      '--source',
      `kafka://${broker.bootstrap}/${input}?startingOffsets=earliest`,
      ...(await sinks(`${input}-ref`, outputs)),
      ...extra,
      '--checkpoint',
      path.join(root, `${input}-ref`),
      '--trigger',
      'available-now',
      '--quiet',
    ]);
  }

  function member(name: string, args: string[], env: Record<string, string> = {}): Member {
    const proc = spawn(process.execPath, [CLI, ...args], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const m: Member = {
      name,
      proc,
      stderr: '',
      exited: new Promise((resolve) => proc.once('exit', (code, signal) => resolve({ code, signal }))),
    };
    proc.stderr!.on('data', (d: Buffer) => {
      m.stderr += d.toString();
    });
    proc.stdout!.resume();
    members.push(m);
    return m;
  }

  /**
   * Runs `app` with --group on three processes (the first killed after the sink of its third batch) until
   * `done()` holds, then stops the others with SIGTERM. The repartition topics are created from the one line
   * a member prints when they are missing.
   */
  async function runGroup(
    app: string,
    input: string,
    outputs: string[],
    extra: string[],
    done: () => boolean,
  ): Promise<void> {
    const group = `${input}-group`;
    const args = [
      'run',
      app,
      '--source',
      source(input),
      ...(await sinks(`${input}-out`, outputs)),
      ...extra,
      '--checkpoint',
      path.join(root, group),
      '--trigger',
      '200ms',
      '--group',
      group,
      '--group-session-timeout',
      '6s',
      '--quiet',
    ];
    const missing = await runCli(args, { timeoutMs: 120_000 });
    expect(missing.code, missing.stderr).to.equal(1);
    expect(missing.stderr).to.match(/^sluice: error: the group's repartition topics? .* not exist as needed/m);
    const topics = [...missing.stderr.matchAll(/--topic (\S+) --partitions (\d+)/g)];
    expect(topics.length, missing.stderr).to.be.greaterThan(0);
    for (const [, topic, n] of topics) await broker.command(`topic ${topic} ${n}`);
    // Killed between writing a batch's output and committing it, in whichever task of it first gets there (a
    // stage-2 task of windows may write nothing for many batches, so not in the middle of the write itself).
    const victim = member('victim', args, { SLUICE_CRASH_AT: 'after-sink:2' });
    let killed = false;
    void victim.exited.then(({ signal }) => {
      killed = signal === 'SIGKILL';
    });
    const others = ['b', 'c'].map((n) => member(n, args));
    const deadline = Date.now() + 600_000;
    while (!killed || !done()) {
      if (Date.now() > deadline)
        throw new Error(
          `${app}: ${killed ? "the group's output never matched" : 'the victim was never killed'}:\n${members.map((m) => `${m.name}: ${m.stderr}`).join('\n')}`,
        );
      await new Promise((r) => setTimeout(r, 1000));
    }
    for (const m of others) m.proc.kill('SIGTERM');
    for (const m of others) expect(await m.exited, `${m.name}:\n${m.stderr}`).to.deep.equal({ code: 0, signal: null });
  }

  const sorted = (values: string[]) => [...values].sort();
  /** Rows without the columns that say when they were written. */
  const without = (values: string[], ...fields: string[]) =>
    values.map((v) => {
      const row = JSON.parse(v) as Record<string, unknown>;
      for (const f of fields) delete row[f];
      return JSON.stringify(row);
    });

  it('bank-account with --repartition: movements and final balances as one process', async () => {
    await keyedInput('ops', 'bank', 2000);
    const outputs = ['movements', 'accounts'];
    await reference('bank-account', 'ops', outputs);
    const movements = sorted(records('ops-ref-movements'));
    const balances = finalBalances(records('ops-ref-accounts'));
    expect(movements).to.have.length(2000);
    await runGroup(
      'bank-account',
      'ops',
      outputs,
      ['--repartition'],
      () =>
        records('ops-out-movements').length >= movements.length &&
        JSON.stringify(finalBalances(records('ops-out-accounts'))) === JSON.stringify(balances),
    );
    expect(sorted(records('ops-out-movements'))).to.deep.equal(movements);
    expect(finalBalances(records('ops-out-accounts'))).to.deep.equal(balances);
    // sluice group lists the stage-1 and the stage-2 task of each partition.
    const shown = await sluice(['group', 'ops-group', '--checkpoint', path.join(root, 'ops-group')]);
    for (let p = 0; p < PARTITIONS; p++) {
      expect(shown).to.match(new RegExp(`^${p}\\s`, 'm'));
      expect(shown).to.match(new RegExp(`^stage2-${p}\\s`, 'm'));
    }
  });

  it('deposit-sessions with --repartition: every deposited balance as one process', async () => {
    await keyedInput('lines', 'deposits', 2000);
    await reference('deposit-sessions', 'lines', ['sessions']);
    const deposits = (values: string[]) =>
      sorted(values.filter((v) => (JSON.parse(v) as { depositCurrentBalance: boolean }).depositCurrentBalance));
    const expected = deposits(records('lines-ref-sessions'));
    expect(expected.length).to.be.greaterThan(10);
    await runGroup(
      'deposit-sessions',
      'lines',
      ['sessions'],
      ['--repartition'],
      () => deposits(records('lines-out-sessions')).length >= expected.length,
    );
    expect(deposits(records('lines-out-sessions'))).to.deep.equal(expected);
  });

  it('active-session-totals: the global total runs as one task; closed sessions and the last total as one process', async () => {
    const lines = await generate('transactions', 2000);
    await broker.command(`topic tx ${PARTITIONS}`);
    await sluice(['gen', 'transactions', '--count', '2000', '--to', `kafka://${broker.bootstrap}/tx`]);
    flush('tx', lines[0], 'customer_id');
    const outputs = ['sessions', 'totals'];
    await reference('active-session-totals', 'tx', outputs);
    const closed = closedSessions(consumeWithKcat(broker.bootstrap, 'tx-ref-sessions'));
    const total = without(records('tx-ref-totals'), 'updated_at').at(-1);
    expect(closed.length).to.be.greaterThan(50);
    await runGroup(
      'active-session-totals',
      'tx',
      outputs,
      [],
      () =>
        closedSessions(consumeWithKcat(broker.bootstrap, 'tx-out-sessions')).length >= closed.length &&
        without(records('tx-out-totals'), 'updated_at').at(-1) === total,
    );
    expect(closedSessions(consumeWithKcat(broker.bootstrap, 'tx-out-sessions'))).to.deep.equal(closed);
    expect(without(records('tx-out-totals'), 'updated_at').at(-1)).to.equal(total);
  });

  it('clickstream-sessions with --repartition at --threads 2 over input dealt over the partitions: the same sessions', async () => {
    const lines = await generate('clickstream', 3000);
    await dealtInput('clicks', lines);
    flush('clicks', lines[0], 'user_id');
    const outputs = ['sessions', 'late'];
    await reference('clickstream-sessions', 'clicks', outputs);
    const sessions = sorted(records('clicks-ref-sessions'));
    expect(sessions.length).to.be.greaterThan(50);
    expect(records('clicks-ref-late')).to.deep.equal([]);
    await runGroup(
      'clickstream-sessions',
      'clicks',
      outputs,
      // Each member's stage-1 and stage-2 tasks share its one worker thread, which rebuilds either stage's plan.
      ['--repartition', '--threads', '2'],
      () => records('clicks-out-sessions').length >= sessions.length,
    );
    expect(sorted(records('clicks-out-sessions'))).to.deep.equal(sessions);
    expect(records('clicks-out-late')).to.deep.equal([]);
  });

  it('clickstream-metrics over input dealt over the partitions: the windows over all users as one process', async () => {
    const lines = await generate('clickstream', 3000);
    await dealtInput('views', lines);
    flush('views', lines[0], 'user_id');
    const outputs = ['metrics-1m', 'metrics-5m', 'metrics-1h'];
    await reference('clickstream-metrics', 'views', outputs);
    const windows = Object.fromEntries(outputs.map((o) => [o, sorted(records(`views-ref-${o}`))]));
    expect(windows['metrics-1m'].length).to.be.greaterThan(2);
    await runGroup('clickstream-metrics', 'views', outputs, [], () =>
      outputs.every((o) => records(`views-out-${o}`).length >= windows[o].length),
    );
    for (const o of outputs) expect(sorted(records(`views-out-${o}`)), o).to.deep.equal(windows[o]);
  });
});

/** Each account's balance after the last snapshot written of it (a key's snapshots are in order in its partition). */
function finalBalances(values: string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const v of values) {
    const { account, balance } = JSON.parse(v) as { account: string; balance: number };
    out[account] = balance;
  }
  return Object.fromEntries(Object.entries(out).sort(([a], [b]) => (a < b ? -1 : 1)));
}

interface SessionChange {
  customer_id: string;
  session_start: string;
  session_end: string;
  change: number;
}

/**
 * The sessions a changelog closed: rows withdrawn (change -1) that no row added by the same batch for the
 * same customer covers (a batch that merges or extends a session withdraws its old sums and adds the new ones;
 * the watermark closing a session only withdraws it). A record's batch is in its `sluice` header
 * (`<queryId>:<batchId>:<seq>`). Sorted, so batchings that grew sessions in different steps compare equal.
 */
function closedSessions(records: KcatRecord[]): string[] {
  const batchOf = (r: KcatRecord) => r.headers.replace(/:\d+$/, '');
  const added = new Map<string, SessionChange[]>();
  for (const r of records) {
    const row = JSON.parse(r.value) as SessionChange;
    if (row.change === 1) added.set(batchOf(r), [...(added.get(batchOf(r)) ?? []), row]);
  }
  const closed: string[] = [];
  for (const r of records) {
    const row = JSON.parse(r.value) as SessionChange;
    if (row.change !== -1) continue;
    const replaced = (added.get(batchOf(r)) ?? []).some(
      (o) =>
        o.customer_id === row.customer_id && o.session_start <= row.session_start && o.session_end >= row.session_end,
    );
    if (!replaced) closed.push(r.value);
  }
  return closed.sort();
}
