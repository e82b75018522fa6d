import * as fs from 'node:fs';
import * as path from 'node:path';
import { Table } from 'apache-arrow';
import { expect } from 'chai';
import { Session } from '../../lib/api/session.js';
import type { StreamingQuery } from '../../lib/api/streaming-query.js';
import { batchFromRows } from '../../lib/arrow/columns.js';
import { schemaFromSpec } from '../../lib/arrow/schema.js';
import { SluiceError } from '../../lib/errors.js';
import { KafkaSink } from '../../lib/sinks/kafka-sink.js';
import { useKafkaFixture } from '../support/kafka-fixture.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Kafka → query → Kafka while the broker fails: stalls are retried and shown, nothing is lost or doubled. */
describe('kafka query under broker faults', function () {
  this.timeout(120_000);

  const kafka = useKafkaFixture({
    name: 'faults',
    broker: { brokers: 1, topics: { in: 2, out: 2 } },
    client: { retry: { retries: 50, maxMs: 300 } },
    each: true,
  });

  const values = (from: number, to: number): string[] => Array.from({ length: to - from }, (_, i) => `v${from + i}`);

  async function produce(vs: string[]): Promise<void> {
    await kafka.client.produce(
      'in',
      vs.map((value, i) => ({ value, partition: i % 2 })),
    );
  }

  /** The value of every output record (the input's value column), sorted. */
  async function output(): Promise<string[]> {
    const out: string[] = [];
    for (const p of await kafka.client.fetchOffsets('out')) {
      for (const m of await kafka.client.fetchRange('out', p.partition, p.low, p.high)) out.push(m.value!.toString());
    }
    return out.sort();
  }

  async function waitFor(what: string, cond: () => Promise<boolean> | boolean, ms = 20_000): Promise<void> {
    const deadline = Date.now() + ms;
    while (!(await cond())) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await sleep(50);
    }
  }

  function start(ckpt: string, retry: string): Promise<StreamingQuery> {
    const session = Session.local({ threads: 0 });
    return session.readStream
      .load(`kafka://${kafka.broker.bootstrap}/in?startingOffsets=earliest&${retry}`)
      .writeStream.format('kafka')
      .option('kafka.bootstrap.servers', kafka.broker.bootstrap)
      .option('topic', 'out')
      .option('checkpointLocation', ckpt)
      .trigger({ processingTime: 100 })
      .start();
  }

  it('broker down mid-run: retries with back-off, status and progress show the stall, resumes with every record once', async () => {
    const query = await start(kafka.path('ck'), 'kafka.retry.backoff.max.ms=400');
    try {
      await produce(values(0, 50));
      await waitFor('the first 50 records', async () => (await output()).length === 50);

      await kafka.broker.command('down 1');
      await waitFor('the status to show the stall', () => query.status.message.includes('stalled: Kafka'), 10_000);
      expect(query.status.message).to.match(/retrying in \d+ ms/);
      await sleep(1500);
      expect(query.isActive, 'still running while the broker is away').to.equal(true);

      await kafka.broker.command('up 1');
      await produce(values(50, 100));
      await waitFor('all 100 records', async () => (await output()).length >= 100);
      await sleep(300);
      expect(await output()).to.deep.equal(values(0, 100).sort());
      expect(query.exception).to.equal(null);
      const stalled = query.recentProgress.find((p) => (p.sources[0].metrics?.brokerRetries ?? 0) > 0);
      expect(stalled, 'a progress report counts the retries').to.not.equal(undefined);
      expect(stalled!.sources[0].metrics!.brokerRetryWaitMs).to.be.greaterThan(0);
      await waitFor('the stall to clear from the status', () => !query.status.message.includes('stalled'), 10_000);
    } finally {
      await query.stop();
    }
  });

  it("a read task's retried fetches show in the batch's progress as readRetries", async () => {
    const query = await start(kafka.path('ck'), 'kafka.retry.backoff.ms=20&kafka.retry.backoff.max.ms=50');
    try {
      await produce(values(0, 10));
      await waitFor('the first 10 records', async () => (await output()).length === 10);
      // Fetch (API key 1) answers NOT_LEADER_OR_FOLLOWER (6) twice; nothing but the query's read tasks fetches
      // until its progress shows the records read.
      await kafka.broker.command('error 1 6 2');
      await produce(values(10, 20));
      const read = (): number => query.recentProgress.reduce((a, p) => a + p.numInputRows, 0);
      await waitFor('the query to read 20 records', () => read() >= 20);
      expect(await output()).to.deep.equal(values(0, 20).sort());
      const retried = query.recentProgress.filter((p) => (p.sources[0].metrics?.readRetries ?? 0) > 0);
      const total = retried.map((p) => p.sources[0].metrics!.readRetries).reduce((a, b) => a + b, 0);
      expect(total).to.equal(2);
      expect(retried[0].sources[0].metrics!.readRetryWaitMs).to.be.greaterThan(0);
    } finally {
      await query.stop();
    }
  });

  it('an outage longer than the retry budget stops the query with a clear error; a restart continues exactly once', async () => {
    const ckpt = kafka.path('ck');
    const query = await start(ckpt, 'kafka.retries=2&kafka.retry.backoff.ms=50&kafka.retry.backoff.max.ms=100');
    await produce(values(0, 20));
    await waitFor('the first 20 records', async () => (await output()).length === 20);
    await kafka.broker.command('down 1');
    const err = await query.awaitTermination().then(
      () => null,
      (e: Error) => e,
    );
    expect(err).to.be.instanceOf(SluiceError);
    expect((err as SluiceError).code).to.equal('KAFKA_UNAVAILABLE');
    expect((err as SluiceError).hint).to.contain(kafka.broker.bootstrap.split(',')[0]);

    await kafka.broker.command('up 1');
    await produce(values(20, 40));
    const again = await start(ckpt, 'kafka.retry.backoff.max.ms=400');
    try {
      await waitFor('all 40 records', async () => (await output()).length >= 40);
      await sleep(300);
      expect(await output()).to.deep.equal(values(0, 40).sort());
    } finally {
      await again.stop();
    }
  });

  it('a produce whose answer comes after the request timeout is not sent again blindly: no record twice', async () => {
    const ckpt = kafka.path('ck');
    const sink = new KafkaSink({
      'kafka.bootstrap.servers': kafka.broker.bootstrap,
      topic: 'out',
      'kafka.request.timeout.ms': 500,
    });
    await sink.initialize({ queryId: 'q', checkpointDir: ckpt, outputMode: 'append' });
    try {
      await sink.addBatch(0, new Table([batchFromRows([{ value: 'warm-up' }], schemaFromSpec({ value: 'string' }))]));
      const rows = values(0, 100_000).map((value) => ({ value }));
      const writing = sink.addBatch(1, new Table([batchFromRows(rows, schemaFromSpec({ value: 'string' }))]));
      // Once batch 1 starts sending, every answer is late: requests time out although the broker wrote them.
      // (Delayed at once: the sink produces a few hundred thousand records a second, so waiting for the first
      // records to show up could find the whole batch written.)
      await waitFor('batch 1 to start', () => fs.existsSync(path.join(ckpt, 'kafka', '1')), 10_000);
      await kafka.broker.command('rtt 1 800');
      await waitFor('some records of batch 1', async () => (await output()).length > 1, 10_000);
      await sleep(1500);
      expect(sink.stallMessage(), 'the sink says it is stalled').to.match(
        /^Kafka .* failed \(attempt \d+, retrying in/,
      );
      await kafka.broker.command('rtt 1 0');
      await writing;
      expect(await output()).to.deep.equal(['warm-up', ...values(0, 100_000)].sort());
    } finally {
      await sink.close();
    }
  });
});
