import * as fs from 'node:fs';
import * as path from 'node:path';
import { gzipSync } from 'node:zlib';
import { expect } from 'chai';
import { rowsFromBatch } from '../../lib/arrow/columns.js';
import { schemaToSpec } from '../../lib/arrow/schema.js';
import { FileSource, type FileSourceOptions, globToRegExp } from '../../lib/sources/file-source.js';
import { runReadTask } from '../../lib/sources/readers.js';
import type { SourceOffset } from '../../lib/sources/source.js';
import { sluiceErrorOf, useTmpDir } from '../checkpoint/helpers.js';

describe('file source', () => {
  const tmp = useTmpDir();
  let input = '';
  let ckpt = '';
  let clock = 1_700_000_000;

  beforeEach(() => {
    input = path.join(tmp(), 'in');
    ckpt = path.join(tmp(), 'ckpt', 'sources', '0');
    fs.mkdirSync(input);
  });

  /** Writes a file with an mtime later than every file written before, so the log order is known. */
  function put(name: string, content: string | Buffer): void {
    const file = path.join(input, name);
    fs.writeFileSync(file, content);
    clock += 10;
    fs.utimesSync(file, clock, clock);
  }

  async function open(options: Partial<FileSourceOptions> = {}): Promise<FileSource> {
    const src = new FileSource({ path: input, ...options });
    await src.initialize({ dir: ckpt, index: 0, queryId: 'q' });
    return src;
  }

  async function read(
    src: FileSource,
    start: SourceOffset | null,
    end: SourceOffset,
    batchId = 0,
  ): Promise<Record<string, unknown>[]> {
    const rows: Record<string, unknown>[] = [];
    for (const task of await src.planRead(start, end, batchId)) {
      for (const b of (await runReadTask(task, { batchId })).batches) rows.push(...rowsFromBatch(b));
    }
    return rows;
  }

  it('picks up new files each trigger, in modification-time order, and reads each once', async () => {
    put('b.json', '{"id":1}\n{"id":2}\n');
    put('a.json', '{"id":3}\n');
    const src = await open({ schema: 'id LONG' });
    const o1 = await src.latestOffset(null, {});
    expect(o1).to.deep.equal({ files: 2 });
    expect(await read(src, null, o1!)).to.deep.equal([{ id: 1 }, { id: 2 }, { id: 3 }]);
    expect(await src.latestOffset(o1, {})).to.deep.equal(o1);
    put('c.json', '{"id":4}');
    const o2 = await src.latestOffset(o1, {});
    expect(o2).to.deep.equal({ files: 3 });
    expect(await read(src, o1, o2!)).to.deep.equal([{ id: 4 }]);
  });

  it('returns null before the first file arrives', async () => {
    const src = await open({ schema: 'id LONG' });
    expect(await src.latestOffset(null, {})).to.equal(null);
  });

  it('admits at most maxFilesPerTrigger files per batch; the engine limit takes precedence', async () => {
    for (const n of [1, 2, 3, 4, 5]) put(`f${n}.json`, `{"id":${n}}\n`);
    const src = await open({ schema: 'id LONG', maxFilesPerTrigger: 2 });
    const o1 = await src.latestOffset(null, {});
    expect(await read(src, null, o1!)).to.deep.equal([{ id: 1 }, { id: 2 }]);
    const o2 = await src.latestOffset(o1, {});
    expect(await read(src, o1, o2!)).to.deep.equal([{ id: 3 }, { id: 4 }]);
    const o3 = await src.latestOffset(o2, { maxFiles: 10 });
    expect(await read(src, o2, o3!)).to.deep.equal([{ id: 5 }]);
  });

  it('plans the same tasks for the same range, also after a restart that sees more files', async () => {
    put('a.json', '{"id":1}\n');
    put('b.json', '{"id":2}\n');
    const first = await open({ schema: 'id LONG' });
    const end = await first.latestOffset(null, {});
    const tasks = await first.planRead(null, end!, 0);
    expect(await first.planRead(null, end!, 0)).to.deep.equal(tasks);
    put('c.json', '{"id":3}\n');
    fs.appendFileSync(path.join(input, 'a.json'), '{"id":99}\n');
    const again = await open({ schema: 'id LONG' });
    expect(await again.planRead(null, end!, 0)).to.deep.equal(tasks);
    expect(await read(again, null, end!)).to.deep.equal([{ id: 1 }, { id: 2 }]);
    expect(await again.latestOffset(end, {})).to.deep.equal({ files: 3 });
  });

  it('merges the file log every 64 rounds and recovers from a merge cut short', async () => {
    const src = await open({ schema: 'id LONG' });
    const logDir = path.join(ckpt, 'files');
    let saved = '';
    let end: SourceOffset | null = null;
    for (let i = 0; i < 70; i++) {
      put(`f${String(i).padStart(3, '0')}.json`, `{"id":${i}}\n`);
      end = await src.latestOffset(end, {});
      if (i === 5) saved = fs.readFileSync(path.join(logDir, '5'), 'utf8');
    }
    expect(
      fs
        .readdirSync(logDir)
        .map(Number)
        .sort((a, b) => a - b),
    ).to.deep.equal([0, 64, 65, 66, 67, 68, 69]);
    fs.writeFileSync(path.join(logDir, '5'), saved);
    const restarted = await open({ schema: 'id LONG' });
    expect(restarted.fileLog.map((f) => path.basename(f.path))).to.deep.equal(
      src.fileLog.map((f) => path.basename(f.path)),
    );
    expect(fs.existsSync(path.join(logDir, '5'))).to.equal(false);
    expect((await read(restarted, { files: 3 }, { files: 6 })).map((r) => r.id)).to.deep.equal([3, 4, 5]);
  });

  it('refuses an offset beyond its file log', async () => {
    const src = await open({ schema: 'id LONG' });
    const err = await sluiceErrorOf(() => src.planRead(null, { files: 4 }, 0));
    expect(err.message).to.contain('lists only 0');
  });

  it('infers the schema once, records it in the checkpoint and keeps it across restarts', async () => {
    put('a.json', '{"user":"u1","amount":2,"device":{"type":"web"}}\n');
    const src = await open();
    const spec = { user: 'string', amount: 'double', device: { type: 'string' } };
    expect(schemaToSpec(src.schema())).to.deep.equal(spec);
    const recorded = fs.readFileSync(path.join(ckpt, 'schema'), 'utf8');
    expect(recorded.startsWith('v1\n')).to.equal(true);
    expect(JSON.parse(recorded.slice(3))).to.deep.equal(spec);
    fs.rmSync(path.join(input, 'a.json'));
    put('0.json', '{"other":true}\n');
    const restarted = await open();
    expect(schemaToSpec(restarted.schema())).to.deep.equal(spec);
  });

  it('adds _corrupt_record to an inferred schema when the sample has malformed lines', async () => {
    put('a.json', '{"x":1}\n{broken\n');
    expect(schemaToSpec((await open()).schema())).to.deep.equal({ x: 'double', _corrupt_record: 'string' });
  });

  it('asks for a schema when there is nothing to infer it from', async () => {
    const err = await sluiceErrorOf(() => open());
    expect(err.code).to.equal('SCHEMA_REQUIRED');
    expect(err.message).to.contain('has no files yet');
  });

  it('says so when the directory does not exist', async () => {
    const src = new FileSource({ path: path.join(tmp(), 'nope') });
    const err = await sluiceErrorOf(() => src.initialize({ dir: ckpt, index: 0, queryId: 'q' }));
    expect(err.message).to.match(/directory .*nope does not exist/);
  });

  it('splits a big file into chunk tasks that read every line exactly once and number lines right', async () => {
    const lines = Array.from({ length: 500 }, (_, i) => JSON.stringify({ id: i, pad: 'x'.repeat(i % 37) }));
    put('big.json', `${lines.join('\n')}\n`);
    const src = await open({ schema: 'id LONG', maxBytesPerTask: 1000 });
    const end = await src.latestOffset(null, {});
    const tasks = await src.planRead(null, end!, 0);
    expect(tasks.length).to.be.greaterThan(10);
    expect((await read(src, null, end!)).map((r) => r.id)).to.deep.equal(lines.map((_, i) => i));

    fs.rmSync(ckpt, { recursive: true });
    lines[400] = '{"id":"four hundred"}';
    put('big2.json', `${lines.join('\n')}\n`);
    fs.rmSync(path.join(input, 'big.json'));
    const strict = await open({ schema: 'id LONG', maxBytesPerTask: 1000, mode: 'FAILFAST' });
    const e2 = await strict.latestOffset(null, {});
    const err = await sluiceErrorOf(() => read(strict, null, e2!));
    expect(err.message).to.contain(`file ${path.join(input, 'big2.json')} line 401`);
  });

  it('reads every line once for any chunk size, boundaries on and off line ends', async () => {
    put('small.txt', 'a\nbb\n\nccc\r\nd\neeeeeeeeee\nf');
    for (let size = 1; size <= 16; size++) {
      fs.rmSync(ckpt, { recursive: true, force: true });
      const src = await open({ format: 'text', maxBytesPerTask: size });
      const end = await src.latestOffset(null, {});
      expect(
        (await read(src, null, end!)).map((r) => r.value),
        `maxBytesPerTask=${size}`,
      ).to.deep.equal(['a', 'bb', '', 'ccc', 'd', 'eeeeeeeeee', 'f']);
    }
  });

  it('reads only the bytes a file had when it was found', async () => {
    put('a.json', '{"id":1}\n');
    const src = await open({ schema: 'id LONG' });
    const end = await src.latestOffset(null, {});
    fs.appendFileSync(path.join(input, 'a.json'), '{"id":2}\n');
    expect(await read(src, null, end!)).to.deep.equal([{ id: 1 }]);
  });

  it('names the file when it disappeared before it was read', async () => {
    put('a.json', '{"id":1}\n');
    const src = await open({ schema: 'id LONG' });
    const end = await src.latestOffset(null, {});
    fs.rmSync(path.join(input, 'a.json'));
    const err = await sluiceErrorOf(() => read(src, null, end!));
    expect(err.code).to.equal('FILE_CHANGED');
    expect(err.message).to.contain('a.json was deleted');
  });

  it('PERMISSIVE keeps a row whose value did not convert, with null, and counts it', async () => {
    put('a.json', '{"id":1}\n{"id":"x"}\n');
    const src = await open({ schema: 'id LONG' });
    const [task] = await src.planRead(null, (await src.latestOffset(null, {}))!, 0);
    const res = await runReadTask(task, { batchId: 0 });
    expect(rowsFromBatch(res.batches[0])).to.deep.equal([{ id: 1 }, { id: null }]);
    expect(res.numMalformed).to.equal(1);
  });

  it('FAILFAST names the file and line; DROPMALFORMED counts; badRecordsPath keeps the lines per batch and task', async () => {
    put('a.json', '{"id":1}\n{"id":"x"}\n{"id":3}\n');
    const failing = await open({ schema: 'id LONG', mode: 'FAILFAST' });
    const end = await failing.latestOffset(null, {});
    const err = await sluiceErrorOf(() => read(failing, null, end!));
    expect(err.message).to.contain(
      `malformed record in file ${path.join(input, 'a.json')} line 2: field 'id': expected an integer`,
    );

    const dropping = await open({ schema: 'id LONG', mode: 'DROPMALFORMED' });
    const [task] = await dropping.planRead(null, end!, 0);
    const res = await runReadTask(task, { batchId: 0 });
    expect(res.numMalformed).to.equal(1);
    expect(rowsFromBatch(res.batches[0])).to.deep.equal([{ id: 1 }, { id: 3 }]);

    const badDir = path.join(tmp(), 'bad');
    const keeping = await open({ schema: 'id LONG', badRecordsPath: badDir });
    expect(await read(keeping, null, end!, 4)).to.deep.equal([{ id: 1 }, { id: 3 }]);
    const written = fs.readFileSync(path.join(badDir, '4', 'source0-file0-part0.json'), 'utf8');
    expect(JSON.parse(written)).to.deep.equal({
      path: `file ${path.join(input, 'a.json')}`,
      line: 2,
      record: '{"id":"x"}',
      reason: 'field \'id\': expected an integer, found string "x"',
    });
  });

  it('filters names by pathGlobFilter and skips hidden and underscore files', async () => {
    put('a.json', '{"id":1}\n');
    put('b.txt', '{"id":2}\n');
    put('.hidden.json', '{"id":3}\n');
    put('_SUCCESS', '');
    put('c.jsonl', '{"id":4}\n');
    const src = await open({ schema: 'id LONG', pathGlobFilter: '*.{json,jsonl}' });
    const end = await src.latestOffset(null, {});
    expect(await read(src, null, end!)).to.deep.equal([{ id: 1 }, { id: 4 }]);
    expect(globToRegExp('part-?.[ct]sv').test('part-1.csv')).to.equal(true);
    expect(globToRegExp('part-?.[ct]sv').test('part-12.csv')).to.equal(false);
  });

  it('reads CSV with a header, text lines and gzip files', async () => {
    put('a.csv', 'name,score\n"x, y",1.5\nz,2\n');
    const csv = await open({ format: 'csv', header: true });
    expect(schemaToSpec(csv.schema())).to.deep.equal({ name: 'string', score: 'double' });
    const e1 = await csv.latestOffset(null, {});
    expect(await read(csv, null, e1!)).to.deep.equal([
      { name: 'x, y', score: 1.5 },
      { name: 'z', score: 2 },
    ]);

    fs.rmSync(ckpt, { recursive: true });
    fs.rmSync(path.join(input, 'a.csv'));
    put('log.txt', 'one\ntwo\n');
    put('more.txt.gz', gzipSync('three\nfour\n'));
    const text = await open({ format: 'text' });
    const e2 = await text.latestOffset(null, {});
    expect((await read(text, null, e2!)).map((r) => r.value)).to.deep.equal(['one', 'two', 'three', 'four']);
  });

  it('rejects a schema for text and bad limits at construction', () => {
    expect(() => new FileSource({ path: input, format: 'text', schema: 'a STRING' })).to.throw(
      /format text takes no schema/,
    );
    expect(() => new FileSource({ path: input, maxFilesPerTrigger: 0 })).to.throw(
      /maxFilesPerTrigger must be a positive integer/,
    );
    expect(() => new FileSource({ path: input, format: 'csv', schema: { a: ['string'] } })).to.throw(
      /CSV cannot hold field 'a'/,
    );
  });
});
