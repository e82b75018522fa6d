/**
 * `sluice run APP --group ID` with several processes on one machine against the test broker: the processes
 * share the input partitions (tasks) through the broker's group coordinator, and whatever happens to them
 * (killed mid-batch, a member joining or leaving, one paused until it lost its tasks) the output topic holds
 * exactly what one process alone writes over the same input. Waits are on conditions (output counts, log
 * lines), with generous limits, so the tests hold on a loaded machine.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { expect } from 'chai';
import { CLI, runCli } from '../support/cli.js';
import { consumeWithKcat, startBroker, type TestBroker } from '../support/kafka-broker.js';
import { type Browser, launchBrowser } from '../ui/browser.js';

/** The page's globals inside functions run by page.evaluate (the tests compile without the DOM library). */
interface PageElement {
  hidden: boolean;
  dataset: Record<string, string>;
  children: ArrayLike<{ textContent: string }>;
}
declare const document: {
  querySelectorAll(selector: string): Iterable<PageElement>;
  getElementById(id: string): PageElement;
};

/** One `sluice run --group` process and what it printed. */
class Member {
  stderr = '';
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  constructor(
    readonly name: string,
    readonly proc: ChildProcess,
  ) {
    proc.stderr!.on('data', (d: Buffer) => {
      this.stderr += d.toString();
    });
    proc.stdout!.resume();
    this.exited = new Promise((resolve) => proc.once('exit', (code, signal) => resolve({ code, signal })));
  }

  /** Waits until the member printed a line matching `re` (after `from` characters of its output). */
  async waitFor(re: RegExp, from = 0, timeoutMs = 120_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!re.test(this.stderr.slice(from))) {
      if (Date.now() > deadline) throw new Error(`member ${this.name} never printed ${re}:\n${this.stderr}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  /** The tasks the member holds after its latest assignment, from its log. */
  tasks(): number[] {
    const lines = [
      ...this.stderr.matchAll(/(?:generation \d+|lost its tasks[^:]*: .*?): kept tasks ([^;]*); took ([^;]*);/g),
    ];
    const last = lines.at(-1);
    if (!last) return [];
    const parse = (s: string) => (s === 'none' ? [] : s.split(', ').map(Number));
    return [...parse(last[1]), ...parse(last[2])].sort((a, b) => a - b);
  }
}

describe('sluice run --group: several processes share an app through a Kafka consumer group', function () {
  this.timeout(600_000);
  let broker: TestBroker;
  let root: string;
  const members: Member[] = [];
  let seed = 0;
  let browser: Browser | undefined;

  before(async () => {
    broker = await startBroker({ brokers: 1 });
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-group-'));
  });
  afterEach(async () => {
    for (const m of members.splice(0)) {
      m.proc.kill('SIGCONT');
      m.proc.kill('SIGKILL');
      await m.exited;
    }
  });
  after(async () => {
    await browser?.close();
    await broker?.stop();
    fs.rmSync(root, { recursive: true, force: true });
  });

  async function sluice(args: string[]): Promise<void> {
    const r = await runCli(args, { timeoutMs: 240_000 });
    expect(r.code, `sluice ${args.join(' ')}\n${r.stderr}`).to.equal(0);
  }

  /** Bank operations into `topic` (keyed by account), a new seed each call. */
  async function operations(topic: string, count: number): Promise<void> {
    await sluice([
      'gen',
      'bank',
      '--count',
      String(count),
      '--seed',
      String(++seed),
      '--to',
      `kafka://${broker.bootstrap}/${topic}`,
    ]);
  }

  const source = (topic: string) =>
    `kafka://${broker.bootstrap}/${topic}?startingOffsets=earliest&maxOffsetsPerTrigger=100`;
  const values = (topic: string): string[] =>
    consumeWithKcat(broker.bootstrap, topic)
      .map((r) => r.value)
      .sort();

  /** What one process alone writes over all of `topic`: the reference. */
  async function reference(topic: string, name: string): Promise<string[]> {
    await broker.command(`topic ${name} 2`);
    await sluice([
      'run',
      'bank-account',
      '--source',
      source(topic),
      '--sink',
      `movements=kafka://${broker.bootstrap}/${name}`,
      '--sink',
      'accounts=console:',
      '--checkpoint',
      path.join(root, `${name}-ck`),
      '--trigger',
      'available-now',
      '--quiet',
    ]);
    return values(name);
  }

  function member(
    name: string,
    group: string,
    topic: string,
    out: string,
    opts: { env?: Record<string, string>; sessionTimeout?: string; args?: string[] } = {},
  ): Member {
    const args = [
      CLI,
      'run',
      'bank-account',
      '--source',
      source(topic),
      '--sink',
      `movements=kafka://${broker.bootstrap}/${out}`,
      '--sink',
      'accounts=console:',
      '--checkpoint',
      path.join(root, `${group}-ck`),
      '--trigger',
      '200ms',
      '--group',
      group,
      '--group-session-timeout',
      opts.sessionTimeout ?? '6s',
      ...(opts.args ?? ['--quiet']),
    ];
    const m = new Member(
      name,
      spawn(process.execPath, args, { env: { ...process.env, ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'] }),
    );
    members.push(m);
    return m;
  }

  /** Waits until `topic` has at least `count` records. */
  async function waitForOutput(topic: string, count: number, timeoutMs = 240_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const n = consumeWithKcat(broker.bootstrap, topic).length;
      if (n >= count) return;
      if (Date.now() > deadline)
        throw new Error(
          `${topic} has ${n} of ${count} records:\n${members.map((m) => `${m.name}: ${m.stderr}`).join('\n')}`,
        );
      await new Promise((r) => setTimeout(r, 500));
    }
  }

  /** Stops the members still running with SIGTERM; each leaves the group and exits 0. */
  async function stopAll(): Promise<void> {
    const running = members.filter((m) => m.proc.exitCode === null && m.proc.signalCode === null);
    for (const m of running) m.proc.kill('SIGTERM');
    for (const m of running) expect(await m.exited, `${m.name}:\n${m.stderr}`).to.deep.equal({ code: 0, signal: null });
  }

  it('three processes write exactly what one process writes, each running a third of the tasks', async () => {
    await broker.command('topic ops3 6');
    await operations('ops3', 3000);
    const expected = await reference('ops3', 'ref3');
    await broker.command('topic out3 2');
    const ms = ['a', 'b', 'c'].map((n) => member(n, 'three', 'ops3', 'out3'));
    await waitForOutput('out3', expected.length);
    await stopAll();
    expect(values('out3')).to.deep.equal(expected);
    // Sticky assignment: once all three are in, each holds two of the six tasks.
    const held = ms.map((m) => m.stderr.match(/task \d+ restored/g)?.length ?? 0);
    expect(
      held.every((n) => n >= 2),
      ms.map((m) => m.stderr).join('\n'),
    ).to.equal(true);
  });

  it('members at --threads 2 run all their tasks on one worker thread per process, output exactly once', async () => {
    await broker.command('topic opst 4');
    await operations('opst', 3000);
    await broker.command('topic outt 2');
    const threads = ['--quiet', '--threads', '2'];
    const a = member('a', 'threads', 'opst', 'outt', { args: threads });
    // Alone, it runs the four tasks, each with two queries: eight queries that take turns on one worker thread.
    for (const t of [0, 1, 2, 3]) await a.waitFor(new RegExp(`task ${t} restored`));
    await waitForOutput('outt', 1000);
    const idle = spawnSync(
      process.execPath,
      ['-e', 'console.log(require("fs").readdirSync("/proc/self/task").length)'],
      {
        encoding: 'utf8',
      },
    );
    const added = fs.readdirSync(`/proc/${a.proc.pid}/task`).length - Number(idle.stdout);
    // Node's own threads are in the idle count; libuv's file-system pool adds up to four, the shared lane one.
    expect(added, `threads beyond an idle Node process: ${added}`).to.be.within(1, 6);
    const others = ['b', 'c'].map((n) => member(n, 'threads', 'opst', 'outt', { args: threads }));
    for (const m of others) await m.waitFor(/task \d+ restored/);
    await operations('opst', 1500);
    const expected = await reference('opst', 'reft');
    await waitForOutput('outt', expected.length);
    await stopAll();
    expect(values('outt')).to.deep.equal(expected);
  });

  it('a member killed mid-batch (SIGKILL in the sink) loses its tasks to the others, output exactly once', async () => {
    await broker.command('topic opsk 6');
    await operations('opsk', 3000);
    await broker.command('topic outk 2');
    const victim = member('victim', 'kill', 'opsk', 'outk', { env: { SLUICE_CRASH_AT: 'in-sink:3' } });
    const others = ['b', 'c'].map((n) => member(n, 'kill', 'opsk', 'outk'));
    const dead = await victim.exited;
    const heard = others.map((m) => m.stderr.length);
    expect(dead.signal, victim.stderr).to.equal('SIGKILL');
    const held = victim.tasks();
    expect(held, victim.stderr).to.not.be.empty;
    await operations('opsk', 1500);
    const expected = await reference('opsk', 'refk');
    await waitForOutput('outk', expected.length);
    // The tasks the victim held run on the others now; a member on its host saw its process gone and removed it
    // from the group without waiting for its session timeout.
    await Promise.all(others.map((m) => m.waitFor(/generation \d+: kept tasks/)));
    const removed = new RegExp(`\\(process ${victim.proc.pid}\\) is gone: removing it from the group`);
    await Promise.race(others.map((m) => m.waitFor(removed)));
    // Each task it held was restored on one of the others from its checkpoint, with the time that took.
    for (const t of held)
      await Promise.race(others.map((m, i) => m.waitFor(new RegExp(`task ${t} restored in [\\d.]+ s`), heard[i])));
    await stopAll();
    expect(values('outk')).to.deep.equal(expected);
  });

  it('a member joining and one leaving move tasks with the fewest moves, output exactly once', async () => {
    await broker.command('topic opsj 4');
    await operations('opsj', 2000);
    await broker.command('topic outj 2');
    const a = member('a', 'join', 'opsj', 'outj');
    const b = member('b', 'join', 'opsj', 'outj');
    await a.waitFor(/restored/);
    await b.waitFor(/restored/);
    // Two members share four tasks two and two.
    const deadline = Date.now() + 120_000;
    while (a.tasks().length + b.tasks().length !== 4 || a.tasks().length !== 2) {
      if (Date.now() > deadline) throw new Error(`no even split:\n${a.stderr}\n${b.stderr}`);
      await new Promise((r) => setTimeout(r, 200));
    }
    const before = { a: a.tasks(), b: b.tasks() };
    const from = { a: a.stderr.length, b: b.stderr.length };
    const c = member('c', 'join', 'opsj', 'outj');
    await c.waitFor(/task \d+ restored/);
    await operations('opsj', 1000);
    // The newcomer took one task; a and b kept at least one each of theirs (sticky).
    await a.waitFor(/generation \d+: kept tasks/, from.a);
    await b.waitFor(/generation \d+: kept tasks/, from.b);
    expect(c.tasks()).to.have.length(1);
    for (const [m, was] of [
      [a, before.a],
      [b, before.b],
    ] as const)
      expect(
        m.tasks().every((t) => was.includes(t)),
        m.stderr,
      ).to.equal(true);
    // b leaves (SIGTERM): it hands its tasks over at once, without waiting for the session timeout.
    const cFrom = c.stderr.length;
    b.proc.kill('SIGTERM');
    expect(await b.exited, b.stderr).to.deep.equal({ code: 0, signal: null });
    await c.waitFor(/generation \d+: kept tasks/, cFrom);
    await operations('opsj', 1000);
    const expected = await reference('opsj', 'refj');
    await waitForOutput('outj', expected.length);
    await stopAll();
    expect(a.tasks().length + c.tasks().length).to.equal(4);
    expect(values('outj')).to.deep.equal(expected);
  });

  it('a rolling restart (each member in turn stopped with SIGTERM and started again) while input flows: output exactly once', async () => {
    await broker.command('topic opsr 6');
    await operations('opsr', 1500);
    await broker.command('topic outr 2');
    const names = ['a', 'b', 'c'];
    const first = names.map((n) => member(n, 'rolling', 'opsr', 'outr'));
    for (const m of first) await m.waitFor(/task \d+ restored in \d+\.\d s/);
    // Operations keep arriving at a steady pace while every member is restarted once.
    const producer = spawn(
      process.execPath,
      [
        CLI,
        'gen',
        'bank',
        '--count',
        '6000',
        '--rate',
        '200',
        '--seed',
        String(++seed),
        '--to',
        `kafka://${broker.bootstrap}/opsr`,
      ],
      { stdio: 'ignore' },
    );
    const produced = new Promise<number | null>((resolve) => producer.once('exit', resolve));
    for (const [i, old] of first.entries()) {
      const othersFrom = new Map(members.map((m) => [m, m.stderr.length]));
      old.proc.kill('SIGTERM');
      expect(await old.exited, old.stderr).to.deep.equal({ code: 0, signal: null });
      // Leaving the group hands its tasks over at once: a member still running takes them in a new generation.
      const survivor = first[i + 1] ?? members.at(-1)!;
      await survivor.waitFor(/generation \d+: kept tasks [^;]*; took (?!none)/, othersFrom.get(survivor) ?? 0);
      const restarted = member(`${names[i]}2`, 'rolling', 'opsr', 'outr');
      // The new process gets its share back: a rebalance that says what moved, and each task's restore time.
      await restarted.waitFor(/generation \d+: kept tasks none; took \d+(, \d+)*; gave up none/);
      await restarted.waitFor(/task \d+ restored in \d+\.\d s/);
    }
    expect(await produced).to.equal(0);
    const expected = await reference('opsr', 'refr');
    await waitForOutput('outr', expected.length);
    await stopAll();
    expect(values('outr')).to.deep.equal(expected);
    // Every member that ran at the end held two of the six tasks.
    const last = members.slice(-3);
    expect(
      last.map((m) => m.tasks().length),
      last.map((m) => m.stderr).join('\n'),
    ).to.deep.equal([2, 2, 2]);
  });

  it('a member shows its tasks: progress lines and --progress-log name the task, the UI lists each task and follows a rebalance', async () => {
    await broker.command('topic opsv 4');
    await operations('opsv', 1200);
    await broker.command('topic outv 2');
    const log = path.join(root, 'visible-progress.jsonl');
    const a = member('a', 'visible', 'opsv', 'outv', { args: ['--ui', '0', '--progress-log', log] });
    const url = /sluice: UI at (http:\/\/127\.0\.0\.1:\d+\/)/;
    await a.waitFor(url);
    browser = await launchBrowser();
    const page = await browser.newPage();
    await page.goto(url.exec(a.stderr)![1]);
    /** The tasks table of the page: task, query, status, last batch, input rows, state rows per row. */
    const shownTasks = () =>
      page.evaluate(() =>
        document.getElementById('tasks').hidden
          ? []
          : [...document.querySelectorAll('#tasks tbody tr')].map((r) =>
              [...Array.from(r.children)].map((c) => c.textContent),
            ),
      );
    const waitForTasks = async (tasks: number[]) => {
      const want = tasks.flatMap((t) => [`task ${t}/accounts`, `task ${t}/movements`]);
      const deadline = Date.now() + 120_000;
      for (;;) {
        const rows = await shownTasks();
        const got = rows.filter((r) => r[2] === 'active' && r[3] !== '-').map((r) => r[1]);
        if (JSON.stringify(got) === JSON.stringify(want)) return rows;
        if (Date.now() > deadline)
          throw new Error(`the page shows ${JSON.stringify(rows)}, not tasks ${tasks}:\n${a.stderr}`);
        await new Promise((r) => setTimeout(r, 300));
      }
    };
    // Alone in the group, the member runs all four tasks, and its page lists them with their batches and state.
    const alone = await waitForTasks([0, 1, 2, 3]);
    expect(alone.filter((r) => r[1].endsWith('/accounts')).every((r) => Number(r[5].replace(/,/g, '')) > 0)).to.equal(
      true,
    );
    // Its batch lines name the task of each output.
    await a.waitFor(/\[task 3\/movements\] batch \d+: \d+ rows in/);
    const from = a.stderr.length;
    const b = member('b', 'visible', 'opsv', 'outv');
    // The rebalance is logged with what moved, and the restore of each task taken with its time.
    await b.waitFor(/generation \d+: kept tasks none; took \d+, \d+; gave up none/);
    await b.waitFor(/task \d+ restored in \d+\.\d s/);
    await a.waitFor(/generation \d+: kept tasks \d+, \d+; took none; gave up \d+, \d+/, from);
    await operations('opsv', 400);
    // The page follows: only the two tasks the member kept.
    await waitForTasks(a.tasks());
    const expected = await reference('opsv', 'refv');
    await waitForOutput('outv', expected.length);
    await stopAll();
    expect(values('outv')).to.deep.equal(expected);
    // The progress log has a line per batch of each task's output, naming both.
    const lines = fs
      .readFileSync(log, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { output: string; task: number; batchId: number; numInputRows: number });
    expect(new Set(lines.map((l) => `${l.task}/${l.output}`))).to.deep.equal(
      new Set([0, 1, 2, 3].flatMap((t) => [`${t}/accounts`, `${t}/movements`])),
    );
    const movements = lines.filter((l) => l.output === 'movements');
    const keptRows = movements.filter((l) => a.tasks().includes(l.task)).reduce((n, l) => n + l.numInputRows, 0);
    expect(keptRows).to.be.greaterThan(0);
  });

  it('a paused member (SIGSTOP) that wakes after losing its tasks is fenced: it commits and writes nothing', async () => {
    await broker.command('topic opsz 4');
    await operations('opsz', 2000);
    await broker.command('topic outz 2');
    const zombie = member('zombie', 'zombie', 'opsz', 'outz', { sessionTimeout: '4s' });
    const other = member('other', 'zombie', 'opsz', 'outz', { sessionTimeout: '4s' });
    await zombie.waitFor(/task \d+ restored/);
    await other.waitFor(/task \d+ restored/);
    const held = () => zombie.tasks();
    while (held().length !== 2) await new Promise((r) => setTimeout(r, 200));
    const lost = held();
    const otherFrom = other.stderr.length;
    zombie.proc.kill('SIGSTOP');
    await operations('opsz', 2000);
    // The other member is given the zombie's tasks once its session expired, and restores them.
    for (const t of lost) await other.waitFor(new RegExp(`task ${t} restored`), otherFrom);
    const expected = await reference('opsz', 'refz');
    await waitForOutput('outz', expected.length);
    const zombieFrom = zombie.stderr.length;
    zombie.proc.kill('SIGCONT');
    // The zombie learns it lost its tasks (from the coordinator, or from the claims its tasks find taken).
    await zombie.waitFor(/lost its tasks|taken over by another member/, zombieFrom);
    await operations('opsz', 500);
    const final = await reference('opsz', 'refz2');
    await waitForOutput('outz', final.length);
    await stopAll();
    expect(values('outz')).to.deep.equal(final);
    // The Kafka sinks of a group fence by producer epoch: each lost task's new owner bumped the zombie's epoch.
    for (const t of lost) {
      const file = path.join(root, 'zombie-ck', 'tasks', String(t), 'movements', 'sinks', 'kafka', 'producer');
      expect(JSON.parse(fs.readFileSync(file, 'utf8').split('\n')[1]).epoch, `task ${t}`).to.be.at.least(1);
    }
  });
});
