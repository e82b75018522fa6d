import { expect } from 'chai';
import { Session } from '../../lib/api/session.js';
import { KafkaSource } from '../../lib/sources/kafka/kafka-source.js';
import { sleep } from '../../lib/util/clock.js';
import { useKafkaFixture } from '../support/kafka-fixture.js';

for (const recent of [false, true]) {
  describe(`kafka source: a trigger-0 query waits on a Fetch for new records (librdkafka ${recent ? '2.15.1' : '2.0.2'} broker)`, function () {
    this.timeout(60_000);
    const kafka = useKafkaFixture({ name: 'wake', broker: { brokers: 1, recent } });

    it('awaitRecords answers false after its wait on partitions with nothing new, true once one of them has a record', async () => {
      const t = await kafka.topic(3);
      await kafka.client.produce(t, [{ value: 'old', partition: 1 }]);
      const ends = await kafka.client.fetchOffsets(t);
      const positions = ends.map((p) => ({ topic: t, partition: p.partition, offset: p.high }));
      const t0 = Date.now();
      expect(await kafka.client.awaitRecords(positions, 200)).to.equal(false);
      expect(Date.now() - t0, 'the broker held the Fetch for its wait').to.be.at.least(150);
      await kafka.client.produce(t, [{ value: 'new', partition: 2 }]);
      expect(await kafka.client.awaitRecords(positions, 200)).to.equal(true);
    });

    it('asks for offsets about once a second while idle, and runs a batch when a record arrives', async () => {
      const t = await kafka.topic(2);
      let calls = 0;
      const latestOffset = KafkaSource.prototype.latestOffset;
      KafkaSource.prototype.latestOffset = function (this: KafkaSource, ...args) {
        calls++;
        return latestOffset.apply(this, args);
      };
      const session = Session.local({ threads: 0 });
      try {
        const query = await session.readStream
          .load(`kafka://${kafka.broker.bootstrap}/${t}?startingOffsets=earliest`)
          .select('value')
          .writeStream.format('memory')
          .queryName('woken')
          .option('checkpointLocation', kafka.path('ckpt'))
          .start();
        await kafka.client.produce(t, [{ value: 'a', partition: 0 }]);
        const until = Date.now() + 20_000;
        while (session.table('woken').length < 1 && Date.now() < until) await sleep(20);
        const before = calls;
        await sleep(1500);
        // Polling every 10 ms would ask about 150 times; the wait asks again when its safety net ends.
        expect(calls - before).to.be.below(8);
        await kafka.client.produce(t, [{ value: 'b', partition: 1 }]);
        while (session.table('woken').length < 2 && Date.now() < until) await sleep(20);
        expect(session.table('woken')).to.deep.equal([{ value: 'a' }, { value: 'b' }]);
        await query.stop();
      } finally {
        KafkaSource.prototype.latestOffset = latestOffset;
        await session.stop();
      }
    });
  });
}
