import * as path from 'node:path';
import { expect } from 'chai';
import type { Dataset } from '../../lib/api/dataset.js';
import { count, max, sum } from '../../lib/api/functions.js';
import { Session } from '../../lib/api/session.js';
import type { ProduceMessage } from '../../lib/kafka/messages.js';
import { useKafkaFixture } from '../support/kafka-fixture.js';

type Row = Record<string, unknown>;

/**
 * Column pruning on the Kafka source: a query that aggregates two JSON fields and one Kafka column decodes only
 * those, and its results are the same as those of a query that reads every column.
 */
describe('kafka column pruning', function () {
  this.timeout(120_000);
  const kafka = useKafkaFixture({ name: 'pruning' });
  let n = 0;

  const SCHEMA = 'user STRING, page STRING, kind STRING, amount DOUBLE, ts LONG';
  const byUser = (rows: Row[]) => [...rows].sort((a, b) => String(a.user).localeCompare(String(b.user)));

  /** Totals per user over the topic, in complete mode; the query's explain text. */
  async function totals(
    topic: string,
    threads: number,
    shape: (events: Dataset<Row>) => Dataset<Row>,
  ): Promise<{ rows: Row[]; explain: string; inputRows: number }> {
    const session = Session.local({ threads });
    try {
      const name = `totals${++n}`;
      const events = session.readStream
        .format('kafka')
        .option('kafka.bootstrap.servers', kafka.broker.bootstrap)
        .option('subscribe', topic)
        .option('startingOffsets', 'earliest')
        .option('maxOffsetsPerTrigger', 250)
        .option('valueFormat', 'json')
        .option('schema', SCHEMA)
        .option('includeHeaders', true)
        .load() as Dataset<Row>;
      const query = await shape(events)
        .groupBy('user')
        .agg(count('*').alias('events'), sum('amount').alias('amount'), max('offset').alias('last_offset'))
        .writeStream.format('memory')
        .queryName(name)
        .outputMode('complete')
        .option('checkpointLocation', path.join(kafka.root, name))
        .trigger({ availableNow: true })
        .start();
      await query.awaitTermination();
      const inputRows = query.recentProgress.reduce((a, p) => a + p.numInputRows, 0);
      return { rows: byUser(session.table(name) as Row[]), explain: query.explain(), inputRows };
    } finally {
      await session.stop();
    }
  }

  it('decodes only the columns an aggregation reads, with the same results at threads 0 and 2', async () => {
    const topic = await kafka.topic(3);
    const users = ['ann', 'bob', 'cy', 'dee', 'eve'];
    const messages: ProduceMessage[] = [];
    const expected = new Map<string, { events: number; amount: number; last_offset: number }>();
    const perPartition = [0, 0, 0];
    for (let i = 0; i < 900; i++) {
      const user = users[(i * 7) % users.length];
      const partition = users.indexOf(user) % 3;
      const amount = (i % 13) + 0.25;
      messages.push({
        key: user,
        value: JSON.stringify({ user, page: `/p/${i % 17}`, kind: i % 2 ? 'click' : 'view', amount, ts: i }),
        partition,
        headers: { trace: `t${i}` },
      });
      const t = expected.get(user) ?? { events: 0, amount: 0, last_offset: -1 };
      expected.set(user, { events: t.events + 1, amount: t.amount + amount, last_offset: perPartition[partition]++ });
    }
    await kafka.client.produce(topic, messages);

    const pruned = await totals(topic, 0, (events) => events);
    // A row function sees whole rows, so nothing below it is pruned.
    const whole = await totals(topic, 0, (events) => events.filter(() => true));
    const pool = await totals(topic, 2, (events) => events);

    expect(pruned.explain).to.match(/ReadSchema: \[user, amount, offset\]$/m);
    expect(whole.explain).to.match(
      /ReadSchema: \[user, page, kind, amount, ts, key, topic, partition, offset, timestamp, headers\]$/m,
    );
    expect(pool.explain).to.match(/ReadSchema: \[user, amount, offset\]$/m);
    const want = byUser([...expected].map(([user, t]) => ({ user, ...t })));
    expect(pruned.rows).to.deep.equal(want);
    expect(whole.rows).to.deep.equal(want);
    expect(pool.rows).to.deep.equal(want);
    expect([pruned.inputRows, whole.inputRows, pool.inputRows]).to.deep.equal([900, 900, 900]);
  });
});
