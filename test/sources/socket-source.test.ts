import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { expect } from 'chai';
import { rowsFromBatch } from '../../lib/arrow/columns.js';
import { runReadTask } from '../../lib/sources/readers.js';
import { SocketSource, type SocketSourceOptions } from '../../lib/sources/socket-source.js';
import type { SourceOffset } from '../../lib/sources/source.js';
import { sluiceErrorOf, useTmpDir } from '../checkpoint/helpers.js';

/** A line server: every client gets what `send` writes; `dropClients` closes their connections. */
class LineServer {
  readonly clients = new Set<net.Socket>();
  connections = 0;
  private server = net.createServer((s) => {
    this.connections++;
    this.clients.add(s);
    s.on('close', () => this.clients.delete(s));
    s.on('error', () => {});
  });

  async listen(port = 0): Promise<number> {
    await new Promise<void>((resolve) => this.server.listen(port, '127.0.0.1', resolve));
    return (this.server.address() as net.AddressInfo).port;
  }

  send(text: string): void {
    for (const c of this.clients) c.write(text);
  }

  dropClients(): void {
    for (const c of this.clients) c.end();
  }

  async close(): Promise<void> {
    for (const c of this.clients) c.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

async function until(what: string, cond: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('socket source', () => {
  const tmp = useTmpDir();
  let server: LineServer;
  let port = 0;
  const open: SocketSource[] = [];
  const logged: string[] = [];

  beforeEach(async () => {
    server = new LineServer();
    port = await server.listen();
    logged.length = 0;
  });

  afterEach(async () => {
    for (const s of open.splice(0)) await s.stop();
    await server.close();
  });

  const dir = () => path.join(tmp(), 'sources', '0');

  async function start(options: Partial<SocketSourceOptions> = {}): Promise<SocketSource> {
    const src = new SocketSource({ host: '127.0.0.1', port, log: (m) => logged.push(m), ...options });
    open.push(src);
    const before = server.connections;
    await src.initialize({ dir: dir(), index: 0, queryId: 'q' });
    await until('the server to see the client', () => server.connections > before);
    return src;
  }

  async function read(
    src: SocketSource,
    start: SourceOffset | null,
    end: SourceOffset,
    batchId = 0,
  ): Promise<unknown[]> {
    const rows: unknown[] = [];
    for (const task of await src.planRead(start, end, batchId)) {
      for (const b of (await runReadTask(task, { batchId })).batches)
        rows.push(...rowsFromBatch(b).map((r) => r.value ?? r));
    }
    return rows;
  }

  it('logs received lines durably before offsets include them; offsets count lines', async () => {
    const src = await start();
    expect(await src.latestOffset(null, {})).to.equal(null);
    server.send('deposit,1\r\nwin,');
    server.send('5\nü€\n');
    await until('3 lines', () => src.receivedLines === 3);
    const o1 = await src.latestOffset(null, {});
    expect(o1).to.deep.equal({ lines: 3 });
    expect(src.durableLines).to.equal(3);
    expect(fs.readFileSync(path.join(dir(), 'receive-log', '0.log'), 'utf8')).to.equal('v1\ndeposit,1\nwin,5\nü€\n');
    expect(await read(src, null, o1!)).to.deep.equal(['deposit,1', 'win,5', 'ü€']);
    expect(src.rowCount(null, o1!)).to.equal(3);
    server.send('a\nb\n');
    await until('5 lines', () => src.receivedLines === 5);
    expect(await src.latestOffset(o1, { maxRows: 1 })).to.deep.equal({ lines: 4 });
    expect(await read(src, o1, { lines: 5 })).to.deep.equal(['a', 'b']);
  });

  it('replays a range from the receive log after a restart and appends new lines after it', async () => {
    const first = await start();
    server.send('1\n2\n3\n');
    await until('3 lines', () => first.receivedLines === 3);
    const end = await first.latestOffset(null, {});
    await first.stop();
    const second = await start();
    expect(await read(second, null, end!)).to.deep.equal(['1', '2', '3']);
    server.send('4\n');
    await until('4 lines', () => second.receivedLines === 4);
    const next = await second.latestOffset(end, {});
    expect(await read(second, end, next!)).to.deep.equal(['4']);
  });

  it('cuts a torn last line at recovery, keeping every complete line', async () => {
    const first = await start();
    server.send('a\nb\n');
    await until('2 lines', () => first.receivedLines === 2);
    await first.latestOffset(null, {});
    await first.stop();
    fs.appendFileSync(path.join(dir(), 'receive-log', '0.log'), 'c\nhalf a li');
    const second = await start();
    expect(second.durableLines).to.equal(3);
    expect(await read(second, { lines: 1 }, { lines: 3 })).to.deep.equal(['b', 'c']);
    expect(fs.readFileSync(path.join(dir(), 'receive-log', '0.log'), 'utf8')).to.equal('v1\na\nb\nc\n');
  });

  it('reconnects with backoff when the server goes away, and reports it', async () => {
    const src = await start({ maxReconnectDelayMs: 200 });
    server.send('before\n');
    await until('1 line', () => src.receivedLines === 1);
    server.dropClients();
    await until('the loss to be reported', () => logged.some((m) => m.includes('connection lost')));
    expect(logged[0]).to.contain(
      `socket source 127.0.0.1:${port}: connection lost (closed by the server); 1 lines received so far are kept`,
    );
    await until('the reconnect', () => src.connected && server.connections === 2);
    expect(logged.some((m) => m.includes('reconnected after'))).to.equal(true);
    server.send('after\n');
    await until('2 lines', () => src.receivedLines === 2);
    const end = await src.latestOffset(null, {});
    expect(await read(src, null, end!)).to.deep.equal(['before', 'after']);
  });

  it('keeps retrying while the server is down and says why', async () => {
    const src = await start({ maxReconnectDelayMs: 100 });
    await server.close();
    await until('a failed retry', () => logged.some((m) => m.includes('cannot reconnect (ECONNREFUSED)')), 5000);
    expect(src.connected).to.equal(false);
    server = new LineServer();
    await server.listen(port);
    await until('the reconnect', () => src.connected);
  });

  it('counts a last line the server did not end before closing', async () => {
    const src = await start({ maxReconnectDelayMs: 100 });
    server.send('x\ntail');
    await until('1 line', () => src.receivedLines === 1);
    server.dropClients();
    await until('the tail', () => src.receivedLines === 2);
    const end = await src.latestOffset(null, {});
    expect(await read(src, null, end!)).to.deep.equal(['x', 'tail']);
  });

  it('rolls segments and deletes the ones whose lines are all committed', async () => {
    const src = await start({ segmentBytes: 16 });
    const logDir = path.join(dir(), 'receive-log');
    let offset: SourceOffset | null = null;
    for (let k = 0; k < 4; k++) {
      server.send(`line-${k}-aaaaaaaaaa\n`);
      await until(`line ${k}`, () => src.receivedLines === k + 1);
      offset = await src.latestOffset(offset, {});
    }
    expect(fs.readdirSync(logDir).sort()).to.deep.equal(['0.log', '1.log', '2.log', '3.log', '4.log']);
    expect(await read(src, { lines: 1 }, { lines: 3 })).to.deep.equal(['line-1-aaaaaaaaaa', 'line-2-aaaaaaaaaa']);
    await src.commit({ lines: 3 });
    expect(fs.readdirSync(logDir).sort()).to.deep.equal(['3.log', '4.log']);
    expect(await read(src, { lines: 3 }, { lines: 4 })).to.deep.equal(['line-3-aaaaaaaaaa']);
    const err = await sluiceErrorOf(() => src.planRead({ lines: 1 }, { lines: 4 }, 5));
    expect(err.message).to.contain('no longer in the receive log');
  });

  it('decodes JSON lines; FAILFAST names the socket and the line', async () => {
    const src = await start({ format: 'json', schema: 'user STRING, amount DOUBLE', mode: 'FAILFAST' });
    server.send('{"user":"a","amount":1}\n{"user":"b","amount":"much"}\n');
    await until('2 lines', () => src.receivedLines === 2);
    const end = await src.latestOffset(null, {});
    expect(await read(src, null, { lines: 1 })).to.deep.equal([{ user: 'a', amount: 1 }]);
    const err = await sluiceErrorOf(() => read(src, null, end!));
    expect(err.message).to.contain(`malformed record in socket 127.0.0.1:${port} line 2: field 'amount'`);
  });

  it('fails at once when nothing listens at start and waitForServer is 0', async () => {
    await server.close();
    const src = new SocketSource({ host: '127.0.0.1', port, log: () => {}, waitForServerMs: 0 });
    const err = await sluiceErrorOf(() => src.initialize({ dir: dir(), index: 0, queryId: 'q' }));
    expect(err.code).to.equal('SOCKET_CONNECT');
    expect(err.message).to.equal(`cannot connect to socket 127.0.0.1:${port} (ECONNREFUSED)`);
    expect(err.hint).to.contain(`nc -lk ${port}`);
    server = new LineServer();
    await server.listen();
  });

  it('waits for a server that starts listening after the query, with a notice per retry', async () => {
    await server.close();
    const src = new SocketSource({ host: '127.0.0.1', port, log: (m) => logged.push(m) });
    open.push(src);
    const started = Date.now();
    const opened = src.initialize({ dir: dir(), index: 0, queryId: 'q' });
    await until('two retries', () => logged.length >= 2, 5000);
    server = new LineServer();
    await server.listen(port);
    await opened;
    expect(src.connected).to.equal(true);
    const retries = logged.filter((m) => m.includes('cannot connect'));
    expect(retries.length).to.be.at.least(2);
    expect(retries[0]).to.match(
      new RegExp(
        `^socket source 127\\.0\\.0\\.1:${port}: cannot connect \\(ECONNREFUSED\\); retrying in 250 ms ` +
          '\\(attempt 2; waits up to 30 s for the server, option waitForServer\\)$',
      ),
    );
    expect(logged.at(-1)).to.match(/connected after \d+ attempts$/);
    expect(Date.now() - started).to.be.below(30_000);
    server.send('hello\n');
    await until('the line', () => src.receivedLines === 1);
  });

  it('gives up after waitForServer, saying how long it tried', async () => {
    await server.close();
    const src = new SocketSource({ host: '127.0.0.1', port, log: (m) => logged.push(m), waitForServerMs: 1200 });
    const started = Date.now();
    const err = await sluiceErrorOf(() => src.initialize({ dir: dir(), index: 0, queryId: 'q' }));
    const took = Date.now() - started;
    expect(took).to.be.at.least(1200);
    expect(took).to.be.below(10_000);
    expect(err.message).to.equal(`cannot connect to socket 127.0.0.1:${port} (ECONNREFUSED) after trying for 1.2 s`);
    expect(err.hint).to.contain('?waitForServer=');
    expect(logged.filter((m) => m.includes('cannot connect')).length).to.be.at.least(2);
    server = new LineServer();
    await server.listen();
  });

  it('needs a schema for json and none for text', () => {
    expect(() => new SocketSource({ host: 'h', port: 1, format: 'json' })).to.throw(/needs a schema/);
    expect(() => new SocketSource({ host: 'h', port: 1, schema: 'a STRING' })).to.throw(/format text takes no schema/);
    expect(() => new SocketSource({ host: 'h', port: 0 })).to.throw(/needs a host and a port/);
  });
});
