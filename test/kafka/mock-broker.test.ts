import { spawn, spawnSync } from 'node:child_process';
import { expect } from 'chai';
import { MOCK_BROKER_BINARY, startBroker, type TestBroker } from '../support/kafka-broker.js';

describe('kafka mock broker (test support)', () => {
  let broker: TestBroker;

  before(async () => {
    broker = await startBroker({ brokers: 2, topics: { events: 3, other: 1 } });
  });

  after(async () => {
    await broker?.stop();
  });

  it('prints a bootstrap address with one entry per broker', () => {
    expect(broker.brokers).to.have.length(2);
    for (const b of broker.brokers) expect(b).to.match(/^127\.0\.0\.1:\d+$/);
  });

  it('serves metadata of the topics it was started with to kcat', () => {
    const r = spawnSync('kcat', ['-b', broker.bootstrap, '-L', '-J'], { encoding: 'utf8', timeout: 10_000 });
    expect(r.status, r.stderr).to.equal(0);
    const md = JSON.parse(r.stdout) as { topics: Array<{ topic: string; partitions: unknown[] }>; brokers: unknown[] };
    expect(md.brokers).to.have.length(2);
    const byName = Object.fromEntries(md.topics.map((t) => [t.topic, t.partitions.length]));
    expect(byName).to.include({ events: 3, other: 1 });
  });

  it('answers ok to valid commands and rejects malformed ones', async () => {
    await broker.command('topic created-later 5');
    await broker.command('down 2');
    await broker.command('up 2');
    await broker.command('error 1 6 1');
    await broker.command('clear 1');
    await broker.command('rtt 1 0');
    await broker.command('leader events 0 2');
    await expectRejection(broker.command('bogus 1'), /unknown or malformed/);
    await expectRejection(broker.command('down x'), /unknown or malformed/);
    await expectRejection(broker.command('topic t 0'), /unknown or malformed/);
    const r = spawnSync('kcat', ['-b', broker.bootstrap, '-L', '-t', 'created-later', '-J'], {
      encoding: 'utf8',
      timeout: 10_000,
    });
    const md = JSON.parse(r.stdout) as { topics: Array<{ topic: string; partitions: unknown[] }> };
    expect(md.topics.find((t) => t.topic === 'created-later')?.partitions).to.have.length(5);
  });

  it('exits cleanly on SIGTERM, and rejects commands afterwards', async () => {
    const b = await startBroker({ topics: { t: 1 } });
    expect(await b.stop()).to.equal(0);
    await expectRejection(b.command('down 1'), /exited/);
  });

  it('exits cleanly when its stdin closes (the test runner went away)', async () => {
    const child = spawn(MOCK_BROKER_BINARY, ['1'], { stdio: ['pipe', 'pipe', 'inherit'] });
    await new Promise((resolve) => child.stdout.once('data', resolve));
    const code = new Promise((resolve) => child.once('exit', resolve));
    child.stdin.end();
    expect(await code).to.equal(0);
  });

  it('refuses a malformed topic argument with a usage message', () => {
    const r = spawnSync(MOCK_BROKER_BINARY, ['1', 'no-partitions'], { encoding: 'utf8', input: '' });
    expect(r.status).to.equal(2);
    expect(r.stderr).to.match(/expected name:partitions/);
  });
});

async function expectRejection(p: Promise<unknown>, re: RegExp): Promise<void> {
  try {
    await p;
  } catch (err) {
    expect((err as Error).message).to.match(re);
    return;
  }
  expect.fail('expected a rejection');
}
