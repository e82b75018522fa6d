/**
 * The five seed apps with Kafka input and Kafka or Parquet output, through `sluice run`, against the test
 * broker. Input is generated twice with the same seed: into part files and, by `sluice gen --to kafka://`,
 * into a topic. Each app runs over the files (the reference) and over the topic with the worker pool; with
 * the same rows per batch (one file per trigger, `maxOffsetsPerTrigger` rows of a one-partition topic) the
 * outputs must be the same rows.
 */

import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { expect } from 'chai';
import { duckdb, parquetGlob } from '../sinks/helpers.js';
import { runCli } from '../support/cli.js';
import { consumeWithKcat, startBroker, type TestBroker } from '../support/kafka-broker.js';

type Row = Record<string, unknown>;

describe('seed apps with Kafka sources and Kafka or Parquet sinks', function () {
  this.timeout(600_000);
  let broker: TestBroker;
  let root: string;

  before(async () => {
    broker = await startBroker({ brokers: 1 });
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-kafka-apps-'));
  });
  after(async () => {
    await broker?.stop();
    fs.rmSync(root, { recursive: true, force: true });
  });

  async function sluice(args: string[]): Promise<void> {
    const r = await runCli(args, { timeoutMs: 240_000 });
    expect(r.code, `sluice ${args.join(' ')}\n${r.stderr}`).to.equal(0);
  }

  /** Generates `dataset` into part files of `rows` lines and into a new topic of `partitions` partitions, both called `name`. */
  async function generate(
    name: string,
    dataset: string,
    args: string[],
    rows: number,
    partitions = 1,
  ): Promise<{ dir: string; topic: string }> {
    const dir = path.join(root, name);
    const topic = name;
    await broker.command(`topic ${topic} ${partitions}`);
    await sluice(['gen', dataset, ...args, '--rows-per-file', String(rows), '--to', `file:${dir}/`]);
    await sluice(['gen', dataset, ...args, '--to', `kafka://${broker.bootstrap}/${topic}`]);
    return { dir, topic };
  }

  async function outputTopic(name: string): Promise<string> {
    await broker.command(`topic ${name} 2`);
    return `kafka://${broker.bootstrap}/${name}`;
  }

  const kafkaSource = (topic: string, rows: number): string =>
    `kafka://${broker.bootstrap}/${topic}?startingOffsets=earliest&maxOffsetsPerTrigger=${rows}`;
  const run = (app: string, source: string, sinks: string[], ckpt: string, threads: number) =>
    sluice([
      'run',
      app,
      '--source',
      source,
      ...sinks.flatMap((s) => ['--sink', s]),
      '--checkpoint',
      path.join(root, ckpt),
      '--trigger',
      'available-now',
      '--threads',
      String(threads),
      '--quiet',
    ]);

  /** Output rows as JSON text, sorted: a Kafka topic's values, JSON-lines files, or Parquet read by DuckDB. */
  const fromKafka = (topic: string): string[] =>
    consumeWithKcat(broker.bootstrap, topic)
      .map((r) => r.value)
      .sort();
  function fromFiles(dir: string): string[] {
    if (!fs.existsSync(dir)) return [];
    return (fs.readdirSync(dir, { recursive: true }) as string[])
      .filter((f) => f.endsWith('.jsonl'))
      .flatMap((f) => fs.readFileSync(path.join(dir, f), 'utf8').split('\n').filter(Boolean))
      .sort();
  }
  /**
   * Each record key of a topic with the partitions it is on, read by kcat (`%k %p`): the app's natural key
   * must put every record of one key on one partition, so per-key order holds on the topic.
   */
  function partitionsByKey(topic: string): Map<string, Set<number>> {
    const r = spawnSync(
      'kcat',
      ['-b', broker.bootstrap, '-C', '-t', topic, '-o', 'beginning', '-e', '-q', '-f', '%k %p\n'],
      { encoding: 'utf8', timeout: 30_000, maxBuffer: 1 << 28 },
    );
    expect(r.status, r.stderr).to.equal(0);
    const out = new Map<string, Set<number>>();
    for (const line of r.stdout.split('\n').filter(Boolean)) {
      const [key, partition] = line.split(' ');
      if (!out.has(key)) out.set(key, new Set());
      out.get(key)!.add(Number(partition));
    }
    return out;
  }
  function expectKeyedBy(topic: string, field: string): void {
    const byKey = partitionsByKey(topic);
    const keys = new Set(fromKafka(topic).map((v) => String((JSON.parse(v) as Row)[field])));
    expect([...byKey.keys()].sort()).to.deep.equal([...keys].sort());
    expect([...byKey.values()].filter((ps) => ps.size !== 1)).to.deep.equal([]);
    // Two partitions and many keys: both partitions are used.
    expect(new Set([...byKey.values()].flatMap((ps) => [...ps])).size).to.equal(2);
  }
  async function fromParquet(dir: string): Promise<string[]> {
    const rows = await duckdb(`SELECT to_json(t)::VARCHAR AS j FROM ${parquetGlob(dir)} t`);
    return rows.map((r) => String(r.j)).sort();
  }
  const without = (rows: string[], field: string): string[] =>
    rows
      .map((r) => {
        const o = JSON.parse(r) as Row;
        delete o[field];
        return JSON.stringify(o);
      })
      .sort();

  it('deposit-sessions: text lines from Kafka, sessions to Kafka', async () => {
    const rows = 400;
    const input = await generate('deposits-in', 'deposits', ['--count', '2000', '--seed', '3'], rows);
    const ref = path.join(root, 'deposits-ref');
    await run('deposit-sessions', `file:${input.dir}?maxFilesPerTrigger=1`, [`file:${ref}`], 'deposits-ref-ck', 0);
    const sink = await outputTopic('deposit-sessions');
    await run('deposit-sessions', kafkaSource(input.topic, rows), [sink], 'deposits-ck', 2);
    const expected = fromFiles(ref);
    expect(expected.length).to.be.above(100);
    expect(fromKafka('deposit-sessions')).to.deep.equal(expected);
    expectKeyedBy('deposit-sessions', 'sessionId');
  });

  it('bank-account: operations keyed by account over 3 partitions, movements to Kafka, balances to Parquet', async () => {
    const input = await generate('bank-in', 'bank', ['--count', '3000', '--seed', '7', '--accounts', '40'], 500, 3);
    const ref = path.join(root, 'bank-ref');
    await run(
      'bank-account',
      `file:${input.dir}`,
      [`movements=file:${ref}/movements`, `accounts=parquet:${ref}/accounts`],
      'bank-ref-ck',
      0,
    );
    const out = path.join(root, 'bank');
    const movements = await outputTopic('bank-movements');
    await run(
      'bank-account',
      kafkaSource(input.topic, 700),
      [`movements=${movements}`, `accounts=parquet:${out}/accounts`],
      'bank-ck',
      2,
    );
    // Batches differ from the reference (three partitions), but each account's operations keep their order.
    const expected = fromFiles(`${ref}/movements`);
    expect(expected).to.have.length(3000);
    expect(fromKafka('bank-movements')).to.deep.equal(expected);
    expectKeyedBy('bank-movements', 'account');
    const finalBalances = async (dir: string) =>
      duckdb(
        `SELECT account, arg_max(balance, filename)::BIGINT AS balance FROM read_parquet('${dir}/**/*.parquet', filename = true) GROUP BY account ORDER BY account`,
      );
    const balances = await finalBalances(`${out}/accounts`);
    expect(balances).to.have.length(40);
    expect(balances).to.deep.equal(await finalBalances(`${ref}/accounts`));
  });

  it('active-session-totals: sessions to Parquet, running totals to Kafka', async () => {
    const rows = 400;
    const input = await generate(
      'transactions-in',
      'transactions',
      ['--count', '2400', '--seed', '5', '--customers', '60', '--max-out-of-orderness', '5s'],
      rows,
    );
    const ref = path.join(root, 'ast-ref');
    await run(
      'active-session-totals',
      `file:${input.dir}?maxFilesPerTrigger=1`,
      [`sessions=parquet:${ref}/sessions`, `totals=file:${ref}/totals`],
      'ast-ref-ck',
      0,
    );
    const out = path.join(root, 'ast');
    const totals = await outputTopic('ast-totals');
    await run(
      'active-session-totals',
      kafkaSource(input.topic, rows),
      [`sessions=parquet:${out}/sessions`, `totals=${totals}`],
      'ast-ck',
      2,
    );
    const expectedSessions = await fromParquet(`${ref}/sessions`);
    expect(expectedSessions.length).to.be.above(50);
    expect(await fromParquet(`${out}/sessions`)).to.deep.equal(expectedSessions);
    // updated_at is the batch's processing time, different in every run.
    const expectedTotals = without(fromFiles(`${ref}/totals`), 'updated_at');
    expect(expectedTotals.length).to.be.above(2);
    expect(without(fromKafka('ast-totals'), 'updated_at')).to.deep.equal(expectedTotals);
  });

  it('clickstream-sessions: sessions to Kafka, late events to Parquet', async () => {
    const rows = 500;
    const input = await generate(
      'clicks-late',
      'clickstream',
      [
        '--count',
        '3000',
        '--seed',
        '9',
        '--users',
        '100',
        '--spacing',
        '2s',
        '--max-out-of-orderness',
        '5m',
        '--late-fraction',
        '0.02',
        '--late-by',
        '40m..90m',
      ],
      rows,
    );
    const ref = path.join(root, 'cs-ref');
    await run(
      'clickstream-sessions',
      `file:${input.dir}?maxFilesPerTrigger=1`,
      [`sessions=file:${ref}/sessions`, `late=parquet:${ref}/late`],
      'cs-ref-ck',
      0,
    );
    const out = path.join(root, 'cs');
    const sessions = await outputTopic('cs-sessions');
    await run(
      'clickstream-sessions',
      kafkaSource(input.topic, rows),
      [`sessions=${sessions}`, `late=parquet:${out}/late`],
      'cs-ck',
      2,
    );
    const expected = fromFiles(`${ref}/sessions`);
    expect(expected.length).to.be.above(100);
    expect(fromKafka('cs-sessions')).to.deep.equal(expected);
    expectKeyedBy('cs-sessions', 'user_id');
    const late = await fromParquet(`${ref}/late`);
    expect(late.length).to.be.above(10);
    // Late rows are input rows as read: from Kafka they carry where they came from.
    const kafkaLate = await fromParquet(`${out}/late`);
    expect(kafkaLate.every((r) => /"topic":"clicks-late","partition":0,"offset":\d+/.test(r))).to.equal(true);
    expect(['key', 'topic', 'partition', 'offset'].reduce((rows, f) => without(rows, f), kafkaLate)).to.deep.equal(
      late,
    );
  });

  it('clickstream-metrics: 1-minute and 1-hour windows to Kafka, 5-minute windows to Parquet', async () => {
    const rows = 600;
    const input = await generate(
      'clicks',
      'clickstream',
      ['--count', '3000', '--seed', '4', '--users', '200', '--spacing', '1s', '--max-out-of-orderness', '5m'],
      rows,
    );
    const ref = path.join(root, 'cm-ref');
    await run(
      'clickstream-metrics',
      `file:${input.dir}?maxFilesPerTrigger=1`,
      [`metrics-1m=file:${ref}/1m`, `metrics-5m=parquet:${ref}/5m`, `metrics-1h=file:${ref}/1h`],
      'cm-ref-ck',
      0,
    );
    const out = path.join(root, 'cm');
    const [m1, m1h] = [await outputTopic('cm-1m'), await outputTopic('cm-1h')];
    await run(
      'clickstream-metrics',
      kafkaSource(input.topic, rows),
      [`metrics-1m=${m1}`, `metrics-5m=parquet:${out}/5m`, `metrics-1h=${m1h}`],
      'cm-ck',
      2,
    );
    const expected1m = fromFiles(`${ref}/1m`);
    expect(expected1m.length).to.be.above(10);
    expect(fromKafka('cm-1m')).to.deep.equal(expected1m);
    expect(fromKafka('cm-1h')).to.deep.equal(fromFiles(`${ref}/1h`));
    const expected5m = await fromParquet(`${ref}/5m`);
    expect(expected5m.length).to.be.above(10);
    expect(await fromParquet(`${out}/5m`)).to.deep.equal(expected5m);
  });
});
