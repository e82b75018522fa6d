import * as fs from 'node:fs';
import * as path from 'node:path';
import { Field, makeData, Schema, Table, TimestampMicrosecond } from 'apache-arrow';
import { expect } from 'chai';
import { batchFromColumns, batchOf, schemaFromSpec } from '../../lib/arrow/index.js';
import { SluiceError } from '../../lib/errors.js';
import { FileSink, type FileSinkOptions } from '../../lib/sinks/file-sink.js';
import { csvField, csvLines, jsonLines } from '../../lib/sinks/file-text-formats.js';
import { dictionaryTable, eventTable, removeDir, sinkContext, tempDir } from './fixtures.js';
import { duckdb, listFiles, readJsonLines, visibleDataFiles } from './helpers.js';

function expectBadOption(make: () => unknown, option: string): void {
  let err: unknown;
  try {
    make();
  } catch (e) {
    err = e;
  }
  expect(err).to.be.instanceOf(SluiceError);
  expect((err as SluiceError).code).to.equal('BAD_OPTION');
  expect((err as SluiceError).message).to.include(`'${option}'`);
}

const MIXED_SCHEMA = schemaFromSpec({
  id: 'long',
  name: 'string',
  at: 'timestamp',
  score: 'double',
  ok: 'boolean',
  tags: ['string'],
  meta: { k: 'string' },
});

function mixedTable(): Table {
  return new Table([
    batchFromColumns(
      MIXED_SCHEMA,
      [
        [2n ** 53n + 1n, 2, null],
        ['plain', 'a,b "q"\nline two', ''],
        [Date.UTC(2024, 4, 1, 10, 30, 0, 5), null, 0],
        [1.5, NaN, null],
        [true, false, null],
        [['x', 'y'], [], null],
        [{ k: 'v' }, null, { k: null }],
      ],
      3,
    ),
  ]);
}

describe('file sink', function () {
  this.timeout(30_000);
  let dir: string;
  let out: string;
  beforeEach(() => {
    dir = tempDir();
    out = path.join(dir, 'out');
  });
  afterEach(() => removeDir(dir));

  const started = async (options: FileSinkOptions = {}) => {
    const sink = new FileSink({ path: out, ...options });
    await sink.initialize(sinkContext(dir));
    return sink;
  };
  const read = (rel: string) => fs.readFileSync(path.join(out, rel), 'utf8');

  it('writes JSON lines: ISO-8601 UTC timestamps, exact 64-bit integers, nulls, nested values', async () => {
    const sink = await started();
    await sink.addBatch(0, mixedTable());
    expect(visibleDataFiles(out, '.jsonl')).to.deep.equal(['part-00000000-00000.jsonl']);
    expect(read('part-00000000-00000.jsonl')).to.equal(
      [
        '{"id":9007199254740993,"name":"plain","at":"2024-05-01T10:30:00.005Z","score":1.5,"ok":true,"tags":["x","y"],"meta":{"k":"v"}}',
        '{"id":2,"name":"a,b \\"q\\"\\nline two","at":null,"score":null,"ok":false,"tags":[],"meta":null}',
        '{"id":null,"name":"","at":"1970-01-01T00:00:00.000Z","score":null,"ok":null,"tags":null,"meta":{"k":null}}',
        '',
      ].join('\n'),
    );
  });

  it('writes timestamps as Date.toISOString does, across minutes, before 1970, after 9999 and in microseconds', () => {
    const ms = [
      0,
      999,
      59_999,
      60_000,
      Date.UTC(2024, 4, 1, 10, 30, 59, 999),
      -1,
      -86_400_001,
      253402300799999,
      253402300800000,
      null,
    ];
    const expected = ms.map((v) => (v === null ? null : new Date(v).toISOString()));
    const atMs = new Table([batchFromColumns(schemaFromSpec({ ts: 'timestamp' }), [ms], ms.length)]);
    const lines = (t: Table) =>
      Buffer.concat([...jsonLines(t)])
        .toString('utf8')
        .trim()
        .split('\n')
        .map((l) => (JSON.parse(l) as { ts: string | null }).ts);
    expect(lines(atMs)).to.deep.equal(expected);
    const type = new TimestampMicrosecond('UTC');
    const micros = BigInt64Array.from([1_714_559_400_005_999n, -1n]);
    const atMicros = new Table([
      batchOf(new Schema([new Field('ts', type)]), [makeData({ type, length: 2, data: micros })], 2),
    ]);
    expect(lines(atMicros)).to.deep.equal(['2024-05-01T10:30:00.005Z', '1969-12-31T23:59:59.999Z']);
  });

  it('escapes and quotes strings byte for byte as JSON.stringify and RFC 4180 do, plain and dictionary-encoded', () => {
    const strings = [
      '',
      'plain',
      'quote " and \\ backslash',
      'tab\tnew\nline\r\u0001\u001f\u007f',
      'a,b',
      'ünïcødé €',
      '😀 emoji',
      '"',
      ',',
    ];
    const t = new Table([batchFromColumns(schemaFromSpec({ s: 'string' }), [strings], strings.length)]);
    const text = (chunks: Iterable<Uint8Array>) => Buffer.concat([...chunks]).toString('utf8');
    expect(text(jsonLines(t))).to.equal(strings.map((s) => `{"s":${JSON.stringify(s)}}\n`).join(''));
    expect(text(csvLines(t))).to.equal(`s\n${strings.map((s) => `${csvField(s)}\n`).join('')}`);
    expect(text(jsonLines(dictionaryTable()))).to.equal(
      ['view', 'click', 'view', 'buy', 'click'].map((e, i) => `{"event":"${e}","n":${[0, 1, 2, 0, 1][i]}}\n`).join(''),
    );
    expect(text(csvLines(dictionaryTable()))).to.equal('event,n\nview,0\nclick,1\nview,2\nbuy,0\nclick,1\n');
  });

  it('writes CSV with a header and RFC 4180 quoting that DuckDB reads back', async () => {
    const sink = await started({ format: 'csv' });
    await sink.addBatch(0, mixedTable());
    const file = 'part-00000000-00000.csv';
    expect(visibleDataFiles(out, '.csv')).to.deep.equal([file]);
    expect(read(file)).to.equal(
      [
        'id,name,at,score,ok,tags,meta',
        '9007199254740993,plain,2024-05-01T10:30:00.005Z,1.5,true,"[""x"",""y""]","{""k"":""v""}"',
        '2,"a,b ""q""\nline two",,NaN,false,[],',
        ',"",1970-01-01T00:00:00.000Z,,,,"{""k"":null}"',
        '',
      ].join('\n'),
    );
    const rows = await duckdb(
      `SELECT id, name FROM read_csv('${path.join(out, file)}', header = true, quote = '"', escape = '"', allow_quoted_nulls = false, all_varchar = true)`,
    );
    expect(rows).to.deep.equal([
      { id: '9007199254740993', name: 'plain' },
      { id: '2', name: 'a,b "q"\nline two' },
      { id: null, name: '' },
    ]);
  });

  it('partitions into folders and rolls files by row count', async () => {
    const sink = await started({ partitionBy: 'grp', maxRecordsPerFile: 15 });
    await sink.addBatch(4, eventTable(4, 40));
    expect(visibleDataFiles(out, '.jsonl')).to.deep.equal([
      'grp=g0/part-00000004-00000.jsonl',
      'grp=g0/part-00000004-00001.jsonl',
      'grp=g1/part-00000004-00002.jsonl',
      'grp=g1/part-00000004-00003.jsonl',
    ]);
    expect(read('grp=g0/part-00000004-00000.jsonl').split('\n').filter(Boolean)).to.have.length(15);
    const rows = readJsonLines(out);
    expect(rows.map((r) => r.id).sort((a, b) => (a as number) - (b as number))).to.deep.equal(
      Array.from({ length: 40 }, (_, i) => 4000 + i),
    );
    expect(rows.every((r) => !('grp' in r))).to.equal(true);
  });

  it('is idempotent per batch id', async () => {
    const sink = await started({ format: 'csv' });
    await sink.addBatch(0, eventTable(0, 10));
    const before = listFiles(out).map((f) => [f, read(f)]);
    await sink.addBatch(0, eventTable(0, 10));
    expect(listFiles(out).map((f) => [f, read(f)])).to.deep.equal(before);
  });

  describe('bad options give a SluiceError naming the option', () => {
    it('format', () => {
      expectBadOption(() => new FileSink({ path: out, format: 'xml' }), 'format');
    });
    it('path', () => {
      expectBadOption(() => new FileSink({ path: '  ' }), 'path');
    });
    it('both names of the rows-per-file limit', () => {
      expectBadOption(() => new FileSink({ path: out, maxRowsPerFile: 5, maxRecordsPerFile: 5 }), 'maxRecordsPerFile');
    });
    it('unknown option', () => {
      expectBadOption(() => new FileSink({ path: out, numRows: '5' }), 'numRows');
    });
  });
});
