import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { Session } from '../../lib/api/session.js';
import { ManualClock } from '../../lib/testing/manual-clock.js';
import { MemoryStream } from '../../lib/testing/memory-stream.js';

const INDEX = fileURLToPath(new URL('../../lib/index.js', import.meta.url));

describe('Session.stop', function () {
  this.timeout(60_000);

  it('stops every query of the session', async () => {
    const session = Session.local({ clock: new ManualClock() });
    const a = new MemoryStream(session, { v: 'long' });
    const b = new MemoryStream(session, { v: 'long' });
    const qa = await a.toDS().writeStream.format('memory').queryName('a').start();
    const qb = await b.toDS().writeStream.format('memory').queryName('b').start();
    a.addData([{ v: 1 }]);
    await qa.processAllAvailable();
    expect(session.streams.active).to.have.length(2);
    await session.stop();
    expect([qa.isActive, qb.isActive]).to.deep.equal([false, false]);
    expect(session.streams.active).to.deep.equal([]);
    expect(session.table('a')).to.deep.equal([{ v: 1 }]);
  });

  it('releases the worker threads: a program that stops its session ends by itself', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-stop-'));
    const program = `
      import { loadApp, runApp } from ${JSON.stringify(INDEX)};
      const { session, queries } = await runApp(await loadApp('bank-account'), {
        threads: 2, trigger: { processingTime: '100 milliseconds' }, checkpoint: ${JSON.stringify(dir)},
        sinks: ['movements=memory:', 'accounts=noop:'],
      });
      for (const q of queries.values()) await q.processAllAvailable();
      await session.stop();
      console.log(session.table('bank-account.movements').length, session.streams.active.length);
    `;
    const res = spawnSync(process.execPath, ['--input-type=module', '-e', program], {
      encoding: 'utf8',
      timeout: 50_000,
    });
    fs.rmSync(dir, { recursive: true, force: true });
    expect(res.signal, 'the program did not end by itself').to.equal(null);
    expect(res.status, res.stderr).to.equal(0);
    expect(res.stdout.trim()).to.equal('2000 0');
  });
});
