import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { expect } from 'chai';
import { Session } from '../../lib/api/session.js';
import { FileSource } from '../../lib/sources/file-source.js';
import { MemorySource } from '../../lib/sources/memory-source.js';
import { MemoryStream } from '../../lib/testing/index.js';
import { sleep } from '../../lib/util/clock.js';

type Ev = { user: string; amount: number };

describe('engine: a trigger-0 query waits for data instead of polling', () => {
  let dir = '';
  let calls = 0;
  const latestOffset = MemorySource.prototype.latestOffset;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-wake-'));
    calls = 0;
    MemorySource.prototype.latestOffset = function (this: MemorySource, start: unknown) {
      calls++;
      return latestOffset.call(this, start);
    };
  });
  afterEach(() => {
    MemorySource.prototype.latestOffset = latestOffset;
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('asks a memory stream for offsets only about once a second while idle, and runs a batch when rows arrive', async () => {
    const session = Session.local();
    const input = new MemoryStream<Ev>(session, { user: 'string', amount: 'double' });
    const q = await input
      .toDS()
      .filter((e) => e.amount > 1)
      .writeStream.format('memory')
      .queryName('woken')
      .option('checkpointLocation', path.join(dir, 'ckpt'))
      .start();
    input.addData([{ user: 'a', amount: 2 }]);
    await q.processAllAvailable();
    const before = calls;
    await sleep(1500);
    // Polling every 10 ms would ask about 150 times; waking asks when the safety-net wait ends.
    expect(calls - before).to.be.below(8);
    input.addData([{ user: 'b', amount: 3 }]);
    await q.processAllAvailable();
    expect(session.table('woken')).to.deep.equal([
      { user: 'a', amount: 2 },
      { user: 'b', amount: 3 },
    ]);
    await q.stop();
  });

  it('a file source keeps a waiting query asleep until a file is renamed into its directory', async () => {
    const input = path.join(dir, 'in');
    fs.mkdirSync(input);
    const source = new FileSource({ path: input, format: 'json', schema: { user: 'string', amount: 'double' } });
    await source.initialize({ dir: path.join(dir, 'source'), index: 0, queryId: 'wake' });
    expect(await source.latestOffset(null, {})).to.equal(null);
    const idle = new AbortController();
    const asleep = await Promise.race([
      source.waitForData(idle.signal).then(() => 'woke'),
      sleep(300).then(() => 'asleep'),
    ]);
    idle.abort();
    expect(asleep).to.equal('asleep');
    const waiting = source.waitForData(new AbortController().signal);
    fs.writeFileSync(path.join(input, '.a.json'), '{"user":"a","amount":1}\n');
    fs.renameSync(path.join(input, '.a.json'), path.join(input, 'a.json'));
    await waiting;
    expect(await source.latestOffset(null, {})).to.deep.equal({ files: 1 });
    await source.stop();
  });
});
