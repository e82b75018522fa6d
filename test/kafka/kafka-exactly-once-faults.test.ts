import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Table } from 'apache-arrow';
import { expect } from 'chai';
import { Session } from '../../lib/api/session.js';
import { batchFromRows } from '../../lib/arrow/columns.js';
import { schemaFromSpec } from '../../lib/arrow/schema.js';
import { KafkaClient } from '../../lib/kafka/client.js';
import { KafkaSink } from '../../lib/sinks/kafka-sink.js';
import { type CliResult, enrichEvents, enrichReference, runCli, TEST_APPS } from '../support/cli.js';
import { consumeWithKcat, produceWithKcat, startBroker, type TestBroker } from '../support/kafka-broker.js';
import { startSaslProxy } from '../support/sasl-proxy.js';

/** Kafka protocol numbers used with the test broker's `error` command. */
const API_PRODUCE = 0;
const ERR = {
  NOT_LEADER_OR_FOLLOWER: 6,
  REQUEST_TIMED_OUT: 7,
  MESSAGE_TOO_LARGE: 10,
  TOPIC_AUTHORIZATION_FAILED: 29,
} as const;

const EVENTS = 300;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Enriched {
  id: number;
  user: string;
  amount: number;
  tag: string;
}

/**
 * Kafka faults a production cluster shows, each ending with the output compared to a reference computed
 * here from the input: injected Produce errors, leaders moving, a broker dying mid-produce, a wrong
 * password and topics that do not exist. Output is read back by kcat, and no (batch, seq) may appear twice.
 */
describe('kafka faults: exactly once at the end', function () {
  this.timeout(120_000);
  let broker: TestBroker;
  let root: string;
  let reference: number[];
  let n = 0;
  const app = path.join(TEST_APPS, 'enrich.js');

  before(async () => {
    broker = await startBroker({ brokers: 2, topics: { events: 2 } });
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-kafka-eo-faults-'));
    const events = enrichEvents(EVENTS);
    produceWithKcat(
      broker.bootstrap,
      'events',
      events.map((e) => JSON.stringify(e)),
    );
    reference = enrichReference(events).map((e) => e.id);
  });
  after(async () => {
    await broker?.stop();
    fs.rmSync(root, { recursive: true, force: true });
  });

  async function outputTopic(partitions = 2): Promise<string> {
    const t = `out${++n}`;
    await broker.command(`topic ${t} ${partitions}`);
    return t;
  }

  /** `sluice run enrich` from `events` to `sink`, in batches of 50 input records, until the input is read. */
  const enrich = (sink: string, ckpt: string, sourceBootstrap = broker.bootstrap, sourceTopic = 'events') =>
    runCli([
      'run',
      app,
      '--source',
      `kafka://${sourceBootstrap}/${sourceTopic}?startingOffsets=earliest&maxOffsetsPerTrigger=50`,
      '--sink',
      sink,
      '--checkpoint',
      ckpt,
      '--trigger',
      'available-now',
      '--quiet',
    ]);

  /**
   * The ids in `topic` as kcat reads them, sorted, duplicates kept; checks on the way that every record has
   * one sluice header and no (batch, seq) is there twice.
   */
  function outputIds(topic: string): number[] {
    const records = consumeWithKcat(broker.bootstrap, topic);
    const origins = records.map((r) => /^sluice=[0-9a-f-]{36}:(\d+:\d+)$/.exec(r.headers)?.[1]);
    expect(
      origins.every((o) => o !== undefined),
      'one sluice header per record',
    ).to.equal(true);
    expect(new Set(origins).size, 'no (batch, seq) twice').to.equal(origins.length);
    return records.map((r) => (JSON.parse(r.value) as Enriched).id).sort((a, b) => a - b);
  }

  function ok(res: CliResult): void {
    expect(res.code, res.stderr).to.equal(0);
  }

  /** A user error as the CLI prints it: one line, exit 1, no stack trace. */
  function oneLineError(res: CliResult, pattern: RegExp): void {
    expect(res.code, res.stderr).to.equal(1);
    const lines = res.stderr.trim().split('\n');
    expect(lines, res.stderr).to.have.length(1);
    expect(lines[0]).to.match(/^sluice: /);
    expect(lines[0]).to.match(pattern);
    expect(res.stderr).to.not.match(/\n\s+at /);
  }

  /** Fails when Produce errors are still pending on the broker: the run under test met every one. */
  async function expectNoPendingProduceErrors(): Promise<void> {
    const probe = await KafkaClient.connect(broker.bootstrap, { resendFailedProduce: false });
    try {
      const t = await outputTopic(1);
      await probe.produce(t, [{ value: 'probe' }]);
    } finally {
      await probe.close();
    }
  }

  describe('Produce errors injected during the sink write', () => {
    it('retriable ones (NOT_LEADER_OR_FOLLOWER, REQUEST_TIMED_OUT) are retried: the run completes, every row once', async () => {
      const t = await outputTopic();
      await broker.command(`error ${API_PRODUCE} ${ERR.NOT_LEADER_OR_FOLLOWER} 3`);
      await broker.command(`error ${API_PRODUCE} ${ERR.REQUEST_TIMED_OUT} 3`);
      ok(await enrich(`kafka://${broker.bootstrap}/${t}`, path.join(root, `ck${n}`)));
      await expectNoPendingProduceErrors();
      expect(outputIds(t)).to.deep.equal(reference);
    });

    for (const [name, code, fix] of [
      ['MESSAGE_TOO_LARGE', ERR.MESSAGE_TOO_LARGE, /max\.message\.bytes/],
      ['TOPIC_AUTHORIZATION_FAILED', ERR.TOPIC_AUTHORIZATION_FAILED, /ACL|permission|authori[sz]/i],
    ] as const) {
      it(`${name} ends the run with one line naming it and the fix; a restart without the fault completes exactly once`, async () => {
        const t = await outputTopic();
        const ckpt = path.join(root, `ck${n}`);
        await broker.command(`error ${API_PRODUCE} ${code} 1000`);
        try {
          const res = await enrich(`kafka://${broker.bootstrap}/${t}`, ckpt);
          oneLineError(res, new RegExp(`${name}|${name.toLowerCase().replace(/_/g, ' ')}`, 'i'));
          expect(res.stderr).to.match(fix);
        } finally {
          await broker.command(`clear ${API_PRODUCE}`);
        }
        ok(await enrich(`kafka://${broker.bootstrap}/${t}`, ckpt));
        expect(outputIds(t)).to.deep.equal(reference);
      });
    }
  });

  describe('leaders move and brokers die while a query runs', () => {
    let client: KafkaClient;
    beforeEach(async () => {
      client = await KafkaClient.connect(broker.bootstrap, { retry: { retries: 50, maxMs: 300 } });
    });
    afterEach(async () => {
      await client.close();
    });

    const values = (from: number, to: number): string[] => Array.from({ length: to - from }, (_, i) => `v${from + i}`);

    async function waitFor(what: string, cond: () => Promise<boolean> | boolean, ms = 20_000): Promise<void> {
      const deadline = Date.now() + ms;
      while (!(await cond())) {
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
        await sleep(50);
      }
    }

    /** How many records `topic` holds (offsets, no read: polled while a query runs). */
    const count = async (topic: string): Promise<number> =>
      (await client.fetchOffsets(topic)).reduce((a, p) => a + p.high - p.low, 0);

    /** Every value in `topic` as kcat reads it, sorted; no (batch, seq) twice. */
    function outputValues(topic: string): string[] {
      const records = consumeWithKcat(broker.bootstrap, topic);
      const origins = records.map((r) => /^sluice=[0-9a-f-]{36}:(\d+:\d+)$/.exec(r.headers)?.[1]);
      expect(new Set(origins).size, 'no (batch, seq) twice').to.equal(origins.length);
      return records.map((r) => r.value).sort();
    }

    it('a source partition leader moves to the other broker mid-run: the query follows it, every record once', async () => {
      const input = `in${++n}`;
      const out = await outputTopic();
      await broker.command(`topic ${input} 2`);
      await broker.command(`leader ${input} 0 1`);
      await broker.command(`leader ${input} 1 1`);
      const produce = (vs: string[]) =>
        client.produce(
          input,
          vs.map((value, i) => ({ value, partition: i % 2 })),
        );
      const query = await Session.local({ threads: 0 })
        .readStream.load(`kafka://${broker.bootstrap}/${input}?startingOffsets=earliest&maxOffsetsPerTrigger=40`)
        .writeStream.format('kafka')
        .option('kafka.bootstrap.servers', broker.bootstrap)
        .option('topic', out)
        .option('checkpointLocation', path.join(root, `ck${n}`))
        .trigger({ processingTime: 50 })
        .start();
      try {
        await produce(values(0, 400));
        await waitFor('the query to be reading', async () => (await count(out)) >= 40);
        await broker.command(`leader ${input} 0 2`);
        await broker.command(`leader ${input} 1 2`);
        await produce(values(400, 600));
        await waitFor('all 600 records', async () => (await count(out)) >= 600);
        await sleep(300);
        expect(query.exception).to.equal(null);
        expect(outputValues(out)).to.deep.equal(values(0, 600).sort());
      } finally {
        await query.stop();
      }
    });

    /** Writes one large batch with `fault` applied once the batch is being sent; returns what is in `out`. */
    async function sinkBatchUnder(out: string, fault: () => Promise<void>, rows: string[]): Promise<string[]> {
      const ckpt = path.join(root, `ck${++n}`);
      const sink = new KafkaSink({ 'kafka.bootstrap.servers': broker.bootstrap, topic: out });
      await sink.initialize({
        queryId: '3f1c4c8e-3b8a-4bd4-9d2e-6f0a7f1d2c3b',
        checkpointDir: ckpt,
        outputMode: 'append',
      });
      try {
        const schema = schemaFromSpec({ value: 'string' });
        await sink.addBatch(0, new Table([batchFromRows([{ value: 'warm-up' }], schema)]));
        const writing = sink.addBatch(
          1,
          new Table([
            batchFromRows(
              rows.map((value) => ({ value })),
              schema,
            ),
          ]),
        );
        let written = false;
        // Settles in the check below, rejection included; this only notes when.
        void writing.then(
          () => {
            written = true;
          },
          () => undefined,
        );
        await waitFor('batch 1 to start', () => fs.existsSync(path.join(ckpt, 'kafka', '1')), 10_000);
        await fault();
        expect(written, 'the fault came while the batch was being written').to.equal(false);
        await writing;
      } finally {
        await sink.close();
      }
      return outputValues(out);
    }

    it('the sink topic leaders move to the other broker during the sink write: every row once', async () => {
      const out = await outputTopic();
      await broker.command(`leader ${out} 0 1`);
      await broker.command(`leader ${out} 1 1`);
      const rows = values(0, 100_000);
      const got = await sinkBatchUnder(
        out,
        async () => {
          await broker.command(`leader ${out} 0 2`);
          await broker.command(`leader ${out} 1 2`);
        },
        rows,
      );
      expect(got).to.deep.equal(['warm-up', ...rows].sort());
    });

    it('the leading broker is killed mid-produce and comes back: every row once', async () => {
      const out = await outputTopic();
      await broker.command(`leader ${out} 0 1`);
      await broker.command(`leader ${out} 1 1`);
      const rows = values(0, 100_000);
      const got = await sinkBatchUnder(
        out,
        async () => {
          await broker.command('down 1');
          await sleep(1500);
          await broker.command('up 1');
        },
        rows,
      );
      expect(got).to.deep.equal(['warm-up', ...rows].sort());
    });
  });

  describe('a wrong password and topics that do not exist', () => {
    it('a wrong SASL password: one line naming the fix, exit 1; with the right one the same checkpoint completes once', async () => {
      const proxy = await startSaslProxy({
        upstream: broker.brokers,
        mechanisms: ['SCRAM-SHA-256'],
        users: { alice: 'right' },
      });
      try {
        const t = await outputTopic();
        const ckpt = path.join(root, `ck${n}`);
        const sasl = (password: string) =>
          `kafka.security.protocol=SASL_PLAINTEXT&kafka.sasl.mechanism=SCRAM-SHA-256&kafka.sasl.username=alice&kafka.sasl.password=${password}`;
        const run = (password: string) =>
          runCli([
            'run',
            app,
            '--source',
            `kafka://${proxy.bootstrap}/events?startingOffsets=earliest&maxOffsetsPerTrigger=50&${sasl(password)}`,
            '--sink',
            `kafka://${proxy.bootstrap}/${t}?${sasl(password)}`,
            '--checkpoint',
            ckpt,
            '--trigger',
            'available-now',
            '--quiet',
          ]);
        const failed = await run('wrong');
        oneLineError(failed, /Kafka authentication failed with SASL SCRAM-SHA-256 .*check the username and password/);
        ok(await run('right'));
        expect(outputIds(t)).to.deep.equal(reference);
      } finally {
        await proxy.close();
      }
    });

    it('a source topic that does not exist: one line naming the topic and the fix, exit 1', async () => {
      const t = await outputTopic();
      const res = await enrich(
        `kafka://${broker.bootstrap}/${t}`,
        path.join(root, `ck${n}`),
        broker.bootstrap,
        'no-such-input',
      );
      oneLineError(res, /Kafka topic no-such-input does not exist.*(create|check)/);
    });

    it('a sink topic that does not exist: one line naming it and the fix, exit 1; once created, a restart writes every row once', async () => {
      const t = `late-topic${++n}`;
      const ckpt = path.join(root, `ck${n}`);
      oneLineError(
        await enrich(`kafka://${broker.bootstrap}/${t}`, ckpt),
        new RegExp(`Kafka topic ${t} does not exist.*create`),
      );
      await broker.command(`topic ${t} 2`);
      ok(await enrich(`kafka://${broker.bootstrap}/${t}`, ckpt));
      expect(outputIds(t)).to.deep.equal(reference);
    });
  });
});
