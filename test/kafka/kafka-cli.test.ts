import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { expect } from 'chai';
import { duckdb, parquetGlob } from '../sinks/helpers.js';
import {
  type CliResult,
  crashThenRestart,
  type Enriched,
  enrichEvents,
  enrichReference,
  runCli,
  TEST_APPS,
} from '../support/cli.js';
import { consumeWithKcat, produceWithKcat, startBroker, type TestBroker } from '../support/kafka-broker.js';

const EVENTS = 600;
const PER_TRIGGER = 100;

/**
 * Kafka in, Kafka or Parquet out, through `sluice run` as a user runs it: input produced by kcat, output
 * read back by kcat (or DuckDB), the CLI killed with SIGKILL at every commit step and at random moments.
 */
describe('kafka end to end through the CLI', function () {
  this.timeout(300_000);
  let broker: TestBroker;
  let root: string;
  let reference: Enriched[];
  let n = 0;
  const app = path.join(TEST_APPS, 'enrich.js');

  before(async () => {
    broker = await startBroker({ brokers: 1, topics: { events: 4 } });
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-kafka-cli-'));
    const events = enrichEvents(EVENTS);
    produceWithKcat(
      broker.bootstrap,
      'events',
      events.map((e) => JSON.stringify(e)),
    );
    reference = enrichReference(events);
  });
  after(async () => {
    await broker?.stop();
    fs.rmSync(root, { recursive: true, force: true });
  });

  const source = (): string =>
    `kafka://${broker.bootstrap}/events?startingOffsets=earliest&maxOffsetsPerTrigger=${PER_TRIGGER}`;
  const args = (sink: string, ckpt: string, threads = 0): string[] => [
    'run',
    app,
    '--source',
    source(),
    '--sink',
    sink,
    '--checkpoint',
    ckpt,
    '--trigger',
    'available-now',
    '--threads',
    String(threads),
    '--quiet',
  ];
  const byId = (a: Enriched, b: Enriched): number => a.id - b.id;

  /** A fresh output topic (the mock creates it with this many partitions). */
  async function outputTopic(partitions = 3): Promise<string> {
    const t = `enriched${++n}`;
    await broker.command(`topic ${t} ${partitions}`);
    return t;
  }

  /**
   * The output topic as kcat sees it: every record's value parsed, sorted by id (duplicates kept). Checks on
   * the way that every record carries exactly the one `sluice=<query>:<batch>:<seq>` header, of one query,
   * and that no (batch, seq) appears twice: what the sink's replay deduplicates by.
   */
  function kafkaOutput(topic: string): Enriched[] {
    const records = consumeWithKcat(broker.bootstrap, topic);
    const origins = records.map((r) => {
      const m = /^sluice=([0-9a-f-]{36}):(\d+):(\d+)$/.exec(r.headers);
      if (!m)
        expect.fail(
          `record at ${r.partition}/${r.offset} has headers '${r.headers}', expected one sluice=<query>:<batch>:<seq>`,
        );
      return m;
    });
    expect(new Set(origins.map((m) => m[1])).size, 'one query wrote the topic').to.be.at.most(1);
    const seqs = origins.map((m) => `${m[2]}:${m[3]}`);
    expect(new Set(seqs).size, 'no (batch, seq) twice').to.equal(seqs.length);
    return records.map((r) => JSON.parse(r.value) as Enriched).sort(byId);
  }

  async function parquetOutput(dir: string): Promise<Enriched[]> {
    if (!fs.existsSync(dir)) return [];
    const rows = await duckdb(`SELECT id, "user", amount, tag FROM ${parquetGlob(dir)} ORDER BY id`);
    return rows.map((r) => ({ id: Number(r.id), user: String(r.user), amount: Number(r.amount), tag: String(r.tag) }));
  }

  function ok(res: CliResult): void {
    expect(res.code, res.stderr).to.equal(0);
  }

  it('kcat input → app (2 worker threads) → Kafka topic read by kcat: every row once', async () => {
    const t = await outputTopic();
    ok(await runCli(args(`kafka://${broker.bootstrap}/${t}`, path.join(root, `ck${++n}`), 2)));
    expect(kafkaOutput(t)).to.deep.equal(reference);
  });

  it('input spread over partitions, in-process (read tasks prefetch): the run ends on its own, every row once', async () => {
    // Concurrent fetches on a new connection once leaked a socket in kafkajs, and the CLI never exited.
    await broker.command('topic spread 4');
    for (let p = 0; p < 4; p++) {
      produceWithKcat(
        broker.bootstrap,
        'spread',
        Array.from({ length: 150 }, (_, i) =>
          JSON.stringify({ id: i * 4 + p, user: `u${(i * 4 + p) % 5}`, amount: ((i * 4 + p) % 9) - 2 }),
        ),
        p,
      );
    }
    const t = await outputTopic();
    const res = await runCli(
      [
        'run',
        app,
        '--source',
        `kafka://${broker.bootstrap}/spread?startingOffsets=earliest&maxOffsetsPerTrigger=${PER_TRIGGER}`,
        '--sink',
        `kafka://${broker.bootstrap}/${t}`,
        '--checkpoint',
        path.join(root, `ck${++n}`),
        '--trigger',
        'available-now',
        '--threads',
        '0',
        '--quiet',
      ],
      { timeoutMs: 30_000 },
    );
    ok(res);
    expect(kafkaOutput(t)).to.deep.equal(reference);
  });

  const points = ['before-offsets', 'after-offsets', 'in-read', 'in-sink', 'after-sink', 'after-commit'];
  for (const point of points) {
    it(`Kafka sink: killed at ${point} of batches 0 and 2, restarted, every output record exactly once`, async () => {
      for (const batch of [0, 2]) {
        const t = await outputTopic();
        const ckpt = path.join(root, `ck${++n}`);
        await crashThenRestart(args(`kafka://${broker.bootstrap}/${t}`, ckpt), `${point}:${batch}`);
        expect(kafkaOutput(t), `${point}:${batch}`).to.deep.equal(reference);
      }
    });
  }

  for (const point of ['in-sink', 'after-sink']) {
    it(`Kafka sink with fencing=epoch: killed at ${point} of batch 2, restarted with the next epoch, every output record exactly once`, async () => {
      const t = await outputTopic();
      const ckpt = path.join(root, `ck${++n}`);
      await crashThenRestart(args(`kafka://${broker.bootstrap}/${t}?fencing=epoch`, ckpt), `${point}:2`);
      expect(kafkaOutput(t)).to.deep.equal(reference);
      const [file] = fs
        .readdirSync(ckpt, { recursive: true, encoding: 'utf8' })
        .filter((f) => f.endsWith(path.join('sinks', 'kafka', 'producer')));
      const producer = fs.readFileSync(path.join(ckpt, file), 'utf8');
      expect(JSON.parse(producer.split('\n')[1]).epoch, 'the restart bumped the epoch').to.equal(1);
    });
  }

  it('Kafka sink: killed at random moments with 2 worker threads, every output record exactly once', async () => {
    const t = await outputTopic();
    const ckpt = path.join(root, `ck${++n}`);
    let killed = 0;
    for (let i = 0; i < 6; i++) {
      const res = await runCli(args(`kafka://${broker.bootstrap}/${t}`, ckpt, 2), { timeoutMs: 400 + i * 250 });
      if (res.signal === 'SIGKILL') killed++;
      else ok(res);
    }
    ok(await runCli(args(`kafka://${broker.bootstrap}/${t}`, ckpt, 2)));
    expect(killed, 'some runs were killed mid-way').to.be.greaterThan(0);
    expect(kafkaOutput(t)).to.deep.equal(reference);
  });

  for (const point of points) {
    it(`Parquet sink: killed at ${point} of batch 2, restarted, DuckDB reads every row once`, async () => {
      const out = path.join(root, `pq${++n}`);
      const ckpt = path.join(root, `ck${++n}`);
      await crashThenRestart(args(`parquet:${out}`, ckpt), `${point}:2`);
      expect(await parquetOutput(out)).to.deep.equal(reference);
    });
  }

  it('Parquet sink: killed at random moments with 2 worker threads, DuckDB reads every row once', async () => {
    const out = path.join(root, `pq${++n}`);
    const ckpt = path.join(root, `ck${++n}`);
    for (let i = 0; i < 5; i++) await runCli(args(`parquet:${out}`, ckpt, 2), { timeoutMs: 400 + i * 250 });
    ok(await runCli(args(`parquet:${out}`, ckpt, 2)));
    expect(await parquetOutput(out)).to.deep.equal(reference);
  });

  it('commits deleted by hand: the restart re-runs the latest planned batch with a notice, as a replay (Kafka, Parquet)', async () => {
    const t = await outputTopic();
    const pq = path.join(root, `pq${++n}`);
    for (const sink of [`kafka://${broker.bootstrap}/${t}`, `parquet:${pq}`]) {
      const ckpt = path.join(root, `ck${++n}`);
      ok(await runCli(args(sink, ckpt)));
      const commits = path.join(ckpt, 'out', 'commits');
      const last = Math.max(...fs.readdirSync(commits).map(Number));
      expect(last, 'batches of at most PER_TRIGGER rows').to.be.at.least(EVENTS / PER_TRIGGER - 1);
      for (const id of [last - 2, last - 1, last]) fs.rmSync(path.join(commits, String(id)));
      const res = await runCli(args(sink, ckpt).filter((a) => a !== '--quiet'));
      ok(res);
      expect(res.stdout + res.stderr, sink).to.contain(
        `the commits of batches ${last - 2}-${last - 1} are missing; re-running the latest planned batch ${last} ` +
          `from offsets/${last}`,
      );
      expect(fs.existsSync(path.join(commits, String(last))), 'the re-run batch is committed').to.equal(true);
    }
    expect(kafkaOutput(t)).to.deep.equal(reference);
    expect(await parquetOutput(pq)).to.deep.equal(reference);
  });

  it('a sink topic that does not exist stops the run with a clear error and commits nothing', async () => {
    const ckpt = path.join(root, `ck${++n}`);
    const res = await runCli(args(`kafka://${broker.bootstrap}/no-such-topic`, ckpt));
    expect(res.code).to.not.equal(0);
    expect(res.stderr).to.contain('Kafka topic no-such-topic does not exist');
    expect(res.stderr).to.not.match(/\n\s+at /, 'no stack trace');
    expect(fs.existsSync(path.join(ckpt, 'out', 'commits', '0'))).to.equal(false);
  });
});
