import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { expect } from 'chai';
import { Session } from '../../lib/api/session.js';
import { useTmpDir } from '../checkpoint/helpers.js';

/** The sources through the engine: offsets in the offset log, malformed counts in progress, restarts that continue. */
describe('sources in a query', () => {
  const tmp = useTmpDir();

  it('a file source reads new files per batch, counts dropped lines in progress and continues after a restart', async () => {
    const input = path.join(tmp(), 'in');
    const ckpt = path.join(tmp(), 'ckpt');
    fs.mkdirSync(input);
    fs.writeFileSync(path.join(input, 'a.json'), '{"id":1,"user":"x"}\nnot json\n{"id":2,"user":"y"}\n');
    const run = async (name: string) => {
      const session = Session.local({ threads: 0 });
      const q = await session.readStream
        .format('json')
        .option('mode', 'DROPMALFORMED')
        .schema('id LONG, user STRING')
        .load(input)
        .writeStream.format('memory')
        .queryName(name)
        .option('checkpointLocation', ckpt)
        .start();
      await q.processAllAvailable();
      return { session, q };
    };
    const first = await run('first');
    expect(first.session.table('first')).to.deep.equal([
      { id: 1, user: 'x' },
      { id: 2, user: 'y' },
    ]);
    expect(first.q.lastProgress?.sources[0].numMalformedRows).to.equal(1);
    expect(first.q.lastProgress?.sources[0].endOffset).to.deep.equal({ files: 1 });
    await first.q.stop();

    fs.writeFileSync(path.join(input, 'b.json'), '{"id":3,"user":"z"}\n');
    const second = await run('second');
    expect(second.session.table('second')).to.deep.equal([{ id: 3, user: 'z' }]);
    expect(second.q.lastProgress?.sources[0].startOffset).to.deep.equal({ files: 1 });
    await second.q.stop();
  });

  it('a socket source feeds batches from its receive log and a restart continues after the committed lines', async () => {
    const clients = new Set<net.Socket>();
    const server = net.createServer((s) => {
      clients.add(s);
      s.on('close', () => clients.delete(s));
      s.on('error', () => {});
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as net.AddressInfo).port;
    const ckpt = path.join(tmp(), 'ckpt');
    const run = async (name: string, lines: string, expected: number) => {
      const session = Session.local({ threads: 0 });
      const q = await session.readStream
        .load(`socket://127.0.0.1:${port}`)
        .writeStream.format('memory')
        .queryName(name)
        .option('checkpointLocation', ckpt)
        .start();
      while (clients.size === 0) await new Promise((r) => setTimeout(r, 10));
      for (const c of clients) c.write(lines);
      const deadline = Date.now() + 5000;
      while (session.table(name).length < expected && Date.now() < deadline) {
        await q.processAllAvailable();
        await new Promise((r) => setTimeout(r, 20));
      }
      await q.stop();
      for (let i = 0; clients.size > 0 && i < 100; i++) await new Promise((r) => setTimeout(r, 10));
      return session.table(name);
    };
    try {
      expect(await run('one', 'deposit 5\nwin 3\n', 2)).to.deep.equal([{ value: 'deposit 5' }, { value: 'win 3' }]);
      expect(await run('two', 'win 7\n', 1)).to.deep.equal([{ value: 'win 7' }]);
    } finally {
      for (const c of clients) c.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    }
  });
});
