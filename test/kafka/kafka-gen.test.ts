import { expect } from 'chai';
import { keyOfLine } from '../../lib/gen/writers.js';
import { runCli } from '../support/cli.js';
import { consumeWithKcat, startBroker, type TestBroker } from '../support/kafka-broker.js';

/** `sluice gen … --to kafka://HOST:PORT/TOPIC`, read back by kcat. */
describe('sluice gen into Kafka', function () {
  this.timeout(60_000);
  let broker: TestBroker;

  before(async () => {
    broker = await startBroker({ brokers: 1, topics: { clicks: 4, bank: 3 } });
  });
  after(async () => {
    await broker?.stop();
  });

  it('keys each line by its first field', () => {
    expect(keyOfLine('{"user_id":"u17","ts":1}')).to.equal('u17');
    expect(keyOfLine('{ "account" : "acc-\\"3", "amount": 5 }')).to.equal('acc-\\"3');
    expect(keyOfLine('{"id":42,"x":1}')).to.equal('42');
    expect(keyOfLine('session-4,2.5,true')).to.equal('session-4');
    expect(keyOfLine('plain')).to.equal('plain');
  });

  it('writes the same records as to stdout, every user in one partition in order, partitions balanced', async () => {
    const args = ['gen', 'clickstream', '--count', '3000', '--seed', '5', '--users', '200'];
    const stdout = await runCli(args);
    expect(stdout.code, stdout.stderr).to.equal(0);
    const res = await runCli([...args, '--to', `kafka://${broker.bootstrap}/clicks`]);
    expect(res.code, res.stderr).to.equal(0);
    const expected = stdout.stdout.split('\n').filter(Boolean);
    const records = consumeWithKcat(broker.bootstrap, 'clicks');
    expect(records.map((r) => r.value).sort()).to.deep.equal([...expected].sort());
    const users = new Map<string, { partition: number; lines: string[] }>();
    for (const r of records) {
      const user = (JSON.parse(r.value) as { user_id: string }).user_id;
      expect(r.key).to.equal(user);
      const u = users.get(user) ?? { partition: r.partition, lines: [] };
      expect(r.partition, `user ${user} in one partition`).to.equal(u.partition);
      u.lines.push(r.value);
      users.set(user, u);
    }
    for (const [user, u] of users) {
      expect(u.lines, `order of ${user}`).to.deep.equal(
        expected.filter((l) => (JSON.parse(l) as { user_id: string }).user_id === user),
      );
    }
    const perPartition = [0, 1, 2, 3].map((p) => records.filter((r) => r.partition === p).length);
    for (const c of perPartition) expect(c, `partition sizes ${perPartition}`).to.be.greaterThan(3000 / 4 / 2);
  });

  it('refuses a topic that does not exist', async () => {
    const res = await runCli(['gen', 'bank', '--count', '5', '--to', `kafka://${broker.bootstrap}/nope`]);
    expect(res.code).to.not.equal(0);
    expect(res.stderr).to.contain('Kafka topic nope does not exist');
  });
});
