import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import {
  isTempFileName,
  removeStaleTempFiles,
  writeFileAtomic,
  writeFileAtomicSync,
  writeFileSynced,
} from '../../lib/checkpoint/atomic-file.js';
import { useTmpDir } from './helpers.js';

const SIZE = 1 << 20;

/** Content that is recognisably complete: SIZE copies of one letter. */
function content(i: number): string {
  return String.fromCharCode(97 + (i % 26)).repeat(SIZE);
}

function isComplete(text: string): boolean {
  return text.length === SIZE && text === text[0].repeat(SIZE);
}

describe('checkpoint/atomic-file', () => {
  const tmp = useTmpDir();

  it('creates parent directories and writes strings and bytes', async () => {
    const a = path.join(tmp(), 'x', 'y', 'a');
    await writeFileAtomic(a, 'hello');
    expect(fs.readFileSync(a, 'utf8')).to.equal('hello');
    const b = path.join(tmp(), 'z', 'b');
    writeFileAtomicSync(b, new Uint8Array([1, 2, 3]));
    expect([...fs.readFileSync(b)]).to.deep.equal([1, 2, 3]);
    expect(fs.readdirSync(path.join(tmp(), 'x', 'y'))).to.deep.equal(['a']);
  });

  it('writes parts one after the other, a large one whole', async () => {
    const body = new Uint8Array(3 * SIZE + 7).map((_, i) => (i * 31) & 0xff);
    const parts = [new Uint8Array([9, 8]), body, new Uint8Array(0), new Uint8Array([7])];
    for (const write of [writeFileAtomic, writeFileSynced]) {
      const file = path.join(tmp(), `parts-${write.name}`);
      await write(file, parts);
      const read = fs.readFileSync(file);
      expect(read.length).to.equal(body.length + 3);
      expect([...read.subarray(0, 2)]).to.deep.equal([9, 8]);
      expect(Buffer.compare(read.subarray(2, 2 + body.length), body)).to.equal(0);
      expect(read[read.length - 1]).to.equal(7);
    }
  });

  it('never lets a concurrent reader see a partial file', async () => {
    const file = path.join(tmp(), 'f');
    await writeFileAtomic(file, content(0));
    let writing = true;
    const writer = (async () => {
      for (let i = 1; i <= 30; i++) await writeFileAtomic(file, content(i));
      writing = false;
    })();
    const seen = new Set<string>();
    let reads = 0;
    while (writing) {
      const text = await fs.promises.readFile(file, 'utf8');
      expect(isComplete(text), `read ${reads} saw a partial file of ${text.length} chars`).to.equal(true);
      seen.add(text[0]);
      reads++;
    }
    await writer;
    expect(reads).to.be.greaterThan(0);
    expect(fs.readFileSync(file, 'utf8')).to.equal(content(30));
    expect(fs.readdirSync(tmp())).to.deep.equal(['f']);
  });

  it('leaves the old content and a stale temp file at worst when the writer is killed', async function () {
    this.timeout(20000);
    const file = path.join(tmp(), 'f');
    const atomic = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../lib/checkpoint/atomic-file.js');
    const script = `
      const { writeFileAtomicSync } = await import(${JSON.stringify(atomic)});
      const target = ${JSON.stringify(file)};
      for (let i = 0; ; i++) {
        writeFileAtomicSync(target, String.fromCharCode(97 + (i % 26)).repeat(${SIZE}));
        if (i === 0) process.stdout.write('ready\\n');
      }`;
    for (const delayMs of [0, 3, 11, 29]) {
      const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      await new Promise<void>((resolve) => child.stdout.once('data', () => resolve()));
      await new Promise((r) => setTimeout(r, delayMs));
      child.kill('SIGKILL');
      await new Promise((r) => child.once('exit', r));
      expect(isComplete(fs.readFileSync(file, 'utf8')), `after a kill at ${delayMs} ms`).to.equal(true);
      const others = fs.readdirSync(tmp()).filter((n) => n !== 'f');
      expect(others.every(isTempFileName), `unexpected files ${others.join(', ')}`).to.equal(true);
      await removeStaleTempFiles(tmp());
      expect(fs.readdirSync(tmp())).to.deep.equal(['f']);
    }
  });

  it('removes its temp file and keeps the target when the rename fails', async () => {
    const target = path.join(tmp(), 'd');
    fs.mkdirSync(target);
    fs.writeFileSync(path.join(target, 'inside'), 'x');
    let failed: unknown;
    try {
      await writeFileAtomic(target, 'data');
    } catch (err) {
      failed = err;
    }
    expect(failed).to.be.instanceOf(Error);
    expect(() => writeFileAtomicSync(target, 'data')).to.throw();
    expect(fs.readdirSync(tmp())).to.deep.equal(['d']);
    expect(fs.readFileSync(path.join(target, 'inside'), 'utf8')).to.equal('x');
  });

  it('removeStaleTempFiles removes only temp files and tolerates a missing directory', async () => {
    fs.writeFileSync(path.join(tmp(), '3'), 'kept');
    fs.writeFileSync(path.join(tmp(), '.hidden'), 'kept');
    fs.writeFileSync(path.join(tmp(), '.4.123-abcdef.tmp'), 'partial');
    expect(await removeStaleTempFiles(tmp())).to.deep.equal(['.4.123-abcdef.tmp']);
    expect(fs.readdirSync(tmp()).sort()).to.deep.equal(['.hidden', '3']);
    expect(await removeStaleTempFiles(path.join(tmp(), 'missing'))).to.deep.equal([]);
  });
  it('writeFileSynced writes a new file under its name, and replaces an existing one without emptying it', async () => {
    const file = path.join(tmp(), 's', 'f');
    const bytes = (i: number): Uint8Array => Buffer.from(content(i));
    let openedEmpty = -1;
    await writeFileSynced(file, bytes(0), () => {
      openedEmpty = fs.statSync(file).size;
    });
    expect(openedEmpty, 'the new file exists, empty, before its bytes are written').to.equal(0);
    expect(fs.readFileSync(file, 'utf8')).to.equal(content(0));
    let writing = true;
    const writer = (async () => {
      for (let i = 1; i <= 30; i++)
        await writeFileSynced(file, bytes(i), () => expect.fail('an existing file was opened in place'));
      writing = false;
    })();
    let reads = 0;
    while (writing) {
      const text = await fs.promises.readFile(file, 'utf8');
      expect(isComplete(text), `read ${reads} saw a partial file of ${text.length} chars`).to.equal(true);
      reads++;
    }
    await writer;
    expect(reads).to.be.greaterThan(0);
    expect(fs.readFileSync(file, 'utf8')).to.equal(content(30));
    expect(fs.readdirSync(path.dirname(file))).to.deep.equal(['f']);
  });
});
