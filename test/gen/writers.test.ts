import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { expect } from 'chai';
import { SluiceError } from '../../lib/errors.js';
import { openWriter, registerWriterScheme, writeRecords, writerSchemes } from '../../lib/gen/writers.js';

/** Connects to `address` and collects everything received until the server ends the connection. */
function receiveAll(address: string): { connected: Promise<void>; text: Promise<string> } {
  const i = address.lastIndexOf(':');
  const socket = net.connect(Number(address.slice(i + 1)), address.slice(0, i));
  let text = '';
  socket.setEncoding('utf8');
  socket.on('data', (d: string) => {
    text += d;
  });
  return {
    connected: new Promise((resolve) => socket.once('connect', () => resolve())),
    text: new Promise((resolve, reject) => {
      socket.once('end', () => resolve(text));
      socket.once('error', reject);
    }),
  };
}

async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', () => resolve()));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

describe('gen/writers', () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-'));
  });
  afterEach(() => {
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('writes objects as JSON lines and strings as text lines to one file, atomically', async () => {
    const file = path.join(dir, 'out.jsonl');
    const records = [{ a: 1 }, 'plain text', { b: 'x,y' }];
    const summary = await writeRecords(records, `file:${file}`);
    expect(summary).to.include({ written: 3, aborted: false });
    expect(summary.files).to.deep.equal([file]);
    expect(fs.readFileSync(file, 'utf8')).to.equal('{"a":1}\nplain text\n{"b":"x,y"}\n');
    expect(fs.readdirSync(dir)).to.deep.equal(['out.jsonl']);
  });

  it('splits a directory target into numbered part files and continues the numbering on the next run', async () => {
    const target = `file:${path.join(dir, 'parts')}/`;
    const first = await writeRecords(
      Array.from({ length: 10 }, (_, i) => `line ${i}`),
      target,
      { rowsPerFile: 3, extension: 'txt' },
    );
    expect(first.files!.map((f) => path.basename(f))).to.deep.equal([
      'part-0000.txt',
      'part-0001.txt',
      'part-0002.txt',
      'part-0003.txt',
    ]);
    expect(fs.readFileSync(path.join(dir, 'parts', 'part-0003.txt'), 'utf8')).to.equal('line 9\n');
    await writeRecords(['again'], `file:${path.join(dir, 'parts')}`, { extension: 'txt' });
    expect(fs.readdirSync(path.join(dir, 'parts')).sort()).to.deep.equal([
      'part-0000.txt',
      'part-0001.txt',
      'part-0002.txt',
      'part-0003.txt',
      'part-0004.txt',
    ]);
    const all = fs
      .readdirSync(path.join(dir, 'parts'))
      .sort()
      .map((f) => fs.readFileSync(path.join(dir, 'parts', f), 'utf8'))
      .join('');
    expect(all).to.equal(`${Array.from({ length: 10 }, (_, i) => `line ${i}\n`).join('')}again\n`);
  });

  it('serves lines to a client of the socket server, holding them until it connects', async () => {
    const writer = await openWriter('socket://127.0.0.1:0');
    expect(writer.address).to.match(/^127\.0\.0\.1:\d+$/);
    let firstWritten = false;
    const first = Promise.resolve(writer.write('line 0')).then(() => {
      firstWritten = true;
    });
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(firstWritten, 'sent before any client connected').to.equal(false);
    const a = receiveAll(writer.address!);
    await first;
    const b = receiveAll(writer.address!);
    await b.connected;
    for (let i = 1; i <= 1000; i++) await writer.write(`line ${i}`);
    const result = await writer.close();
    expect(result.clients).to.equal(2);
    const expected = Array.from({ length: 1001 }, (_, i) => `line ${i}\n`).join('');
    expect(await a.text).to.equal(expected);
    expect(await b.text).to.equal(expected.slice('line 0\n'.length));
  });

  it('paces writes at the requested rate and reports progress', async () => {
    const port = await freePort();
    const progress: number[] = [];
    const run = writeRecords(
      Array.from({ length: 30 }, (_, i) => ({ i })),
      `socket://127.0.0.1:${port}`,
      {
        rate: 100,
        onProgress: (n) => progress.push(n),
      },
    );
    await new Promise((resolve) => setTimeout(resolve, 20));
    const client = receiveAll(`127.0.0.1:${port}`);
    const summary = await run;
    expect(summary.written).to.equal(30);
    expect(summary.elapsedMs).to.be.within(270, 5000); // 29 intervals of 10 ms after the client connected
    expect(progress.at(-1)).to.equal(30);
    expect(
      (await client.text)
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l).i),
    ).to.deep.equal(Array.from({ length: 30 }, (_, i) => i));
  });

  it('stops when the signal aborts and still completes the file', async () => {
    const ac = new AbortController();
    function* endless(): Generator<string> {
      for (let i = 0; ; i++) {
        if (i === 5000) ac.abort();
        yield `row ${i}`;
      }
    }
    const file = path.join(dir, 'stopped.txt');
    const summary = await writeRecords(endless(), `file:${file}`, { signal: ac.signal });
    expect(summary).to.include({ aborted: true, written: 5000 });
    expect(fs.readFileSync(file, 'utf8').split('\n')).to.have.length(5001);
  });

  it('names unknown schemes and malformed targets, listing what is accepted', async () => {
    for (const [uri, re] of [
      ['kafkaa://broker/topic', /unknown target scheme 'kafkaa'/],
      ['data/out.jsonl', /needs a scheme/],
      ['socket://localhost', /malformed socket target/],
      ['file:', /names no path/],
    ] as const) {
      const err = await openWriter(uri).then(
        () => null,
        (e: unknown) => e,
      );
      expect(err, uri).to.be.instanceOf(SluiceError);
      expect((err as SluiceError).message).to.match(re);
      expect((err as SluiceError).hint).to.match(/file|socket/);
    }
    const busy = net.createServer();
    await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', () => resolve()));
    const port = (busy.address() as net.AddressInfo).port;
    const err = await openWriter(`socket://127.0.0.1:${port}`).then(
      () => null,
      (e: unknown) => e,
    );
    busy.close();
    expect(err).to.be.instanceOf(SluiceError);
    expect((err as SluiceError).message).to.contain(`cannot listen on 127.0.0.1:${port}`);
  });

  it('accepts new schemes through registerWriterScheme', async () => {
    const seen: string[] = [];
    registerWriterScheme('memory-test', async (rest) => ({
      description: `memory ${rest}`,
      write: (line) => {
        seen.push(line);
      },
      close: async () => ({}),
    }));
    expect(writerSchemes()).to.include('memory-test');
    const summary = await writeRecords([{ x: 1 }, 'y'], 'memory-test:sink');
    expect(summary.target).to.equal('memory sink');
    expect(seen).to.deep.equal(['{"x":1}', 'y']);
  });
});
