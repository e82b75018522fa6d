import * as fs from 'node:fs';
import * as path from 'node:path';
import { Type } from 'apache-arrow';
import { expect } from 'chai';
import { rowsFromBatch } from '../../lib/arrow/columns.js';
import { schemaFromSpec } from '../../lib/arrow/schema.js';
import { badRecordsFile, parseTimestamp } from '../../lib/sources/decode/common.js';
import { decodeCsv, inferCsvSchema } from '../../lib/sources/decode/csv.js';
import { decodeJsonLines } from '../../lib/sources/decode/json-lines.js';
import { decodeText } from '../../lib/sources/decode/text.js';
import { sluiceErrorOf, useTmpDir } from '../checkpoint/helpers.js';

const schema = schemaFromSpec({
  user: 'string',
  amount: 'double',
  n: 'long',
  ok: 'boolean',
  ts: 'timestamp',
  device: { type: 'string' },
  tags: ['string'],
});
const withCorrupt = schemaFromSpec({ user: 'string', amount: 'double', _corrupt_record: 'string' });

describe('JSON-lines decoder', () => {
  const tmp = useTmpDir();

  it('fills typed columns, nested structs, lists and timestamps from ISO strings or epoch ms', async () => {
    const lines = [
      '{"user":"a","amount":1.5,"n":3,"ok":true,"ts":"2024-01-02T03:04:05.678Z","device":{"type":"mobile","x":1},"tags":["p","q"],"extra":9}',
      '{"user":"ü€","ts":1700000000000,"device":null}',
      '',
      '{"user":42,"ts":"2024-01-02 03:04:05","amount":-2}',
    ];
    const res = await decodeJsonLines(lines, { schema, location: 'test' });
    const [b] = res.batches;
    expect(b.numRows).to.equal(3);
    expect(b.schema.fields.map((f) => f.type.typeId)).to.deep.equal([
      Type.Utf8,
      Type.Float,
      Type.Int,
      Type.Bool,
      Type.Timestamp,
      Type.Struct,
      Type.List,
    ]);
    expect(rowsFromBatch(b)).to.deep.equal([
      {
        user: 'a',
        amount: 1.5,
        n: 3,
        ok: true,
        ts: new Date('2024-01-02T03:04:05.678Z'),
        device: { type: 'mobile' },
        tags: ['p', 'q'],
      },
      { user: 'ü€', amount: null, n: null, ok: null, ts: new Date(1700000000000), device: null, tags: null },
      { user: '42', amount: -2, n: null, ok: null, ts: new Date('2024-01-02T03:04:05Z'), device: null, tags: null },
    ]);
    expect(res.numMalformed).to.equal(0);
  });

  it('reads a Buffer of newline-separated lines, CRLF included', async () => {
    const res = await decodeJsonLines(Buffer.from('{"user":"a","amount":1}\r\n{"user":"b","amount":2}\n'), {
      schema: withCorrupt,
      location: 'test',
    });
    expect(rowsFromBatch(res.batches[0])).to.deep.equal([
      { user: 'a', amount: 1, _corrupt_record: null },
      { user: 'b', amount: 2, _corrupt_record: null },
    ]);
  });

  it('PERMISSIVE keeps malformed lines as nulls plus the raw line in _corrupt_record; a type mismatch keeps the fields that fit', async () => {
    const lines = ['{"user":"a","amount":1}', '{"user": "b", broken', '{"user":"c","amount":"lots"}', '[1,2]'];
    const res = await decodeJsonLines(lines, { schema: withCorrupt, location: 'test' });
    expect(rowsFromBatch(res.batches[0])).to.deep.equal([
      { user: 'a', amount: 1, _corrupt_record: null },
      { user: null, amount: null, _corrupt_record: lines[1] },
      { user: 'c', amount: null, _corrupt_record: lines[2] },
      { user: null, amount: null, _corrupt_record: lines[3] },
    ]);
    expect(res.numMalformed).to.equal(3);
  });

  it('PERMISSIVE without a corrupt-record column gives a row of nulls', async () => {
    const res = await decodeJsonLines(['nope', '{"user":"a"}'], { schema, location: 'test' });
    expect(rowsFromBatch(res.batches[0]).map((r) => r.user)).to.deep.equal([null, 'a']);
    expect(res.numMalformed).to.equal(1);
  });

  it('PERMISSIVE without a corrupt-record column counts the rows whose values became null, from lines and from bytes', async () => {
    const s = schemaFromSpec({ user: 'string', amount: 'double', ts: 'timestamp' });
    const lines = [
      '{"user":"a","amount":1,"ts":"2024-01-01T00:00:00Z"}',
      '{"user":"b","amount":"lots"}',
      '{"user":"c","ts":"yesterday"}',
      '{"user":"d","amount":"x","ts":"y"}',
      '{"user":"e","amount":null}',
    ];
    for (const input of [lines, Buffer.from(`${lines.join('\n')}\n`)]) {
      const res = await decodeJsonLines(input, { schema: s, location: 'test' });
      expect(rowsFromBatch(res.batches[0])).to.deep.equal([
        { user: 'a', amount: 1, ts: new Date('2024-01-01T00:00:00Z') },
        { user: 'b', amount: null, ts: null },
        { user: 'c', amount: null, ts: null },
        { user: 'd', amount: null, ts: null },
        { user: 'e', amount: null, ts: null },
      ]);
      expect(res.numMalformed, Array.isArray(input) ? 'lines' : 'bytes').to.equal(3);
    }
  });

  it('DROPMALFORMED drops and counts syntax errors and type mismatches', async () => {
    const lines = [
      '{"user":"a","amount":1}',
      'not json',
      '{"user":"c","amount":"x"}',
      '{"user":"d","amount":true}',
      '{"user":"e"}',
    ];
    const res = await decodeJsonLines(lines, { schema: withCorrupt, mode: 'DROPMALFORMED', location: 'test' });
    expect(rowsFromBatch(res.batches[0]).map((r) => r.user)).to.deep.equal(['a', 'e']);
    expect(res.numMalformed).to.equal(3);
  });

  it('checks integer and nested types strictly', async () => {
    const s = schemaFromSpec({ i: 'int', d: { t: 'timestamp' }, l: ['double'] });
    const lines = [
      '{"i":1.5}',
      '{"i":3000000000}',
      '{"d":{"t":"yesterday"}}',
      '{"l":[1,"x"]}',
      '{"i":7,"d":{"t":0},"l":[1,null]}',
    ];
    const res = await decodeJsonLines(lines, { schema: s, mode: 'DROPMALFORMED', location: 'test' });
    expect(res.numMalformed).to.equal(4);
    expect(rowsFromBatch(res.batches[0])).to.deep.equal([{ i: 7, d: { t: new Date(0) }, l: [1, null] }]);
  });

  it('FAILFAST names the location, the line number and the reason', async () => {
    const lines = ['{"user":"a"}', '', '{"user":"b","amount":"ten"}'];
    const err = await sluiceErrorOf(() =>
      decodeJsonLines(lines, { schema, mode: 'FAILFAST', location: 'file /data/in/a.json', firstLine: 11 }),
    );
    expect(err.code).to.equal('MALFORMED_RECORD');
    expect(err.message).to.contain('file /data/in/a.json line 13');
    expect(err.message).to.contain('field \'amount\': expected a number, found string "ten"');
  });

  it('FAILFAST on a syntax error quotes the parser and computes a lazy line base only then', async () => {
    let asked = 0;
    const firstLine = async () => {
      asked++;
      return 100;
    };
    await decodeJsonLines(['{"user":"a"}'], { schema, mode: 'FAILFAST', location: 'x', firstLine });
    expect(asked).to.equal(0);
    const err = await sluiceErrorOf(() =>
      decodeJsonLines(['{"user":"a"}', '{oops'], {
        schema,
        mode: 'FAILFAST',
        location: 'socket localhost:9999',
        firstLine,
      }),
    );
    expect(err.message).to.match(/socket localhost:9999 line 101: invalid JSON \(.+\): \{oops/);
    expect(asked).to.equal(1);
  });

  it('badRecordsPath gets {path, line, record, reason} per rejected line, in a file per batch and task that a replay replaces', async () => {
    const target = { dir: path.join(tmp(), 'bad'), task: 'source0-file3-part0' };
    const lines = ['{"user":"a","amount":1}', 'garbage', '{"user":"c","amount":"x"}'];
    const opts = { schema: withCorrupt, location: 'file /in/x.json', firstLine: 5, badRecords: target, batchId: 7 };
    const res = await decodeJsonLines(lines, opts);
    expect(rowsFromBatch(res.batches[0]).map((r) => r.user)).to.deep.equal(['a']);
    expect(res.numMalformed).to.equal(2);
    const file = badRecordsFile(target, 7);
    expect(file).to.equal(path.join(target.dir, '7', 'source0-file3-part0.json'));
    const read = () =>
      fs
        .readFileSync(file, 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as Record<string, unknown>);
    const recs = read();
    expect(recs.map((r) => [r.path, r.line, r.record])).to.deep.equal([
      ['file /in/x.json', 6, 'garbage'],
      ['file /in/x.json', 7, lines[2]],
    ]);
    expect(recs[0].reason).to.match(/^invalid JSON/);
    expect(recs[1].reason).to.equal('field \'amount\': expected a number, found string "x"');
    await decodeJsonLines(lines, opts);
    expect(read()).to.deep.equal(recs);
    expect(fs.readdirSync(path.join(target.dir, '7'))).to.deep.equal(['source0-file3-part0.json']);
  });
});

describe('CSV decoder', () => {
  const s = schemaFromSpec({ id: 'long', name: 'string', score: 'double', ok: 'boolean', at: 'timestamp' });

  it('reads RFC-4180 quotes: separators, doubled quotes and newlines inside quoted fields', async () => {
    const text =
      'id,name,score,ok,at\n1,"Smith, J.",1.5,true,2024-01-01T00:00:00Z\r\n2,"say ""hi""\nthere",,FALSE,0\n3,,-2e3,,\n';
    const res = await decodeCsv(Buffer.from(text), { schema: s, header: true, location: 'test' });
    expect(rowsFromBatch(res.batches[0])).to.deep.equal([
      { id: 1, name: 'Smith, J.', score: 1.5, ok: true, at: new Date('2024-01-01T00:00:00Z') },
      { id: 2, name: 'say "hi"\nthere', score: null, ok: false, at: new Date(0) },
      { id: 3, name: null, score: -2000, ok: null, at: null },
    ]);
  });

  it('matches header names to schema fields by name, and refuses a header without a schema field', async () => {
    const res = await decodeCsv(['score,id,name,at,ok', '2,7,x,,true'], { schema: s, header: true, location: 'test' });
    expect(rowsFromBatch(res.batches[0])).to.deep.equal([{ id: 7, name: 'x', score: 2, ok: true, at: null }]);
    const err = await sluiceErrorOf(() =>
      decodeCsv(['id,name', '1,x'], { schema: s, header: true, location: 'file a.csv' }),
    );
    expect(err.message).to.contain("the CSV header of file a.csv has no column 'score', 'ok', 'at'");
  });

  it('without a header takes columns by position; quoted empty is an empty string, nullValue is null', async () => {
    const t = schemaFromSpec({ a: 'string', b: 'string' });
    const res = await decodeCsv(['"",NA', 'x;y'], { schema: t, nullValue: 'NA', location: 'test', mode: 'PERMISSIVE' });
    expect(rowsFromBatch(res.batches[0])).to.deep.equal([
      { a: '', b: null },
      { a: 'x;y', b: null },
    ]);
    const semi = await decodeCsv(['x;y'], { schema: t, sep: ';', location: 'test' });
    expect(rowsFromBatch(semi.batches[0])).to.deep.equal([{ a: 'x', b: 'y' }]);
  });

  it('treats type mismatches, wrong field counts and bad quoting as malformed in every mode', async () => {
    const t = schemaFromSpec({ id: 'long', v: 'double', _corrupt_record: 'string' });
    const lines = ['1,2.5', 'x,1', '3', '4,5,6', '"5"x,1', '6,"unterminated'];
    const perm = await decodeCsv(lines, { schema: t, location: 'test' });
    expect(rowsFromBatch(perm.batches[0])).to.deep.equal([
      { id: 1, v: 2.5, _corrupt_record: null },
      { id: null, v: 1, _corrupt_record: 'x,1' },
      { id: 3, v: null, _corrupt_record: '3' },
      { id: 4, v: 5, _corrupt_record: '4,5,6' },
      { id: null, v: 1, _corrupt_record: '"5"x,1' },
      { id: 6, v: null, _corrupt_record: '6,"unterminated' },
    ]);
    expect(perm.numMalformed).to.equal(5);
    const noColumn = await decodeCsv(lines, { schema: schemaFromSpec({ id: 'long', v: 'double' }), location: 'test' });
    expect(rowsFromBatch(noColumn.batches[0]).map((r) => r.id)).to.deep.equal([1, null, 3, 4, null, 6]);
    expect(noColumn.numMalformed).to.equal(5);
    const drop = await decodeCsv(lines, { schema: t, mode: 'DROPMALFORMED', location: 'test' });
    expect(drop.numMalformed).to.equal(5);
    expect(rowsFromBatch(drop.batches[0])).to.have.length(1);
    const err = await sluiceErrorOf(() =>
      decodeCsv(['id,v', '1,2', '', '2,oops'], { schema: t, header: true, mode: 'FAILFAST', location: 'file b.csv' }),
    );
    expect(err.message).to.contain('file b.csv line 4');
    expect(err.message).to.contain('field \'v\': expected a number, found "oops"');
  });

  it('counts lines of multi-line records for messages', async () => {
    const t = schemaFromSpec({ a: 'string', n: 'double' });
    const err = await sluiceErrorOf(() =>
      decodeCsv(Buffer.from('"multi\nline",1\nok,2\nbad,z\n'), { schema: t, mode: 'FAILFAST', location: 'f' }),
    );
    expect(err.message).to.contain('f line 4:');
  });

  it('infers names and types from a sample', () => {
    const spec = inferCsvSchema(
      'id,price,flag,when,name\n1,2.5,true,2024-01-01,x\n2,,false,2024-01-02T10:00:00Z,"y"\n',
      { header: true },
    );
    expect(spec.fields.map((f) => [f.name, f.type.typeId])).to.deep.equal([
      ['id', Type.Float],
      ['price', Type.Float],
      ['flag', Type.Bool],
      ['when', Type.Timestamp],
      ['name', Type.Utf8],
    ]);
    expect(inferCsvSchema('1,a\n2,b\n', {}).fields.map((f) => f.name)).to.deep.equal(['_c0', '_c1']);
    const bad = inferCsvSchema('1,"a\n', { corruptColumn: '_corrupt_record' });
    expect(bad.fields.map((f) => f.name)).to.include('_corrupt_record');
  });
});

describe('text decoder', () => {
  it('gives one value per line from bytes: CRLF stripped, empty lines kept, last line without newline counted', () => {
    const res = decodeText(Buffer.from('first\r\n\nü€ line\nlast'));
    expect(rowsFromBatch(res.batches[0])).to.deep.equal([
      { value: 'first' },
      { value: '' },
      { value: 'ü€ line' },
      { value: 'last' },
    ]);
    expect(decodeText(Buffer.alloc(0)).batches[0].numRows).to.equal(0);
  });

  it('gives one value per line from strings', () => {
    expect(rowsFromBatch(decodeText(['a', 'b c']).batches[0])).to.deep.equal([{ value: 'a' }, { value: 'b c' }]);
  });
});

describe('parseTimestamp', () => {
  it('reads ISO-8601 with T or space, fractions and zones, as UTC when no zone is given', () => {
    expect(parseTimestamp('2024-03-04T05:06:07.5Z')).to.equal(Date.UTC(2024, 2, 4, 5, 6, 7, 500));
    expect(parseTimestamp('2024-03-04 05:06:07')).to.equal(Date.UTC(2024, 2, 4, 5, 6, 7));
    expect(parseTimestamp('2024-03-04T05:06:07+02:00')).to.equal(Date.UTC(2024, 2, 4, 3, 6, 7));
    expect(parseTimestamp('2024-03-04')).to.equal(Date.UTC(2024, 2, 4));
    expect(parseTimestamp('2024-13-04')).to.be.NaN;
    expect(parseTimestamp('tomorrow')).to.be.NaN;
  });

  it('agrees with Date.parse on canonical toISOString() output, across minute boundaries and bad digits', () => {
    for (let t = Date.UTC(2023, 11, 31, 23, 58); t < Date.UTC(2024, 0, 1, 0, 3); t += 7_919) {
      const iso = new Date(t).toISOString();
      expect(parseTimestamp(iso), iso).to.equal(t);
    }
    expect(parseTimestamp('2024-03-04T05:06:0x.500Z')).to.be.NaN;
    expect(parseTimestamp('2024-13-04T05:06:07.500Z')).to.be.NaN;
    expect(parseTimestamp('2024-03-04T05:06:61.500Z')).to.be.NaN;
  });
});
