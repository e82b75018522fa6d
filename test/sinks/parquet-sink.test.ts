import * as fs from 'node:fs';
import * as path from 'node:path';
import { Table } from 'apache-arrow';
import { expect } from 'chai';
import { batchFromColumns, rowsFromBatch, schemaFromSpec } from '../../lib/arrow/index.js';
import { SluiceError } from '../../lib/errors.js';
import { ParquetSink, type ParquetSinkOptions } from '../../lib/sinks/parquet-sink.js';
import { dictionaryTable, eventTable, removeDir, sinkContext, tempDir } from './fixtures.js';
import { duckdb, duckdbTypes, listFiles, parquetGlob, visibleDataFiles } from './helpers.js';

function sqlString(s: string): string {
  return `'${s.replace(/'/g, "''")}'`;
}

function expectBadOption(make: () => unknown, option: string): SluiceError {
  let err: unknown;
  try {
    make();
  } catch (e) {
    err = e;
  }
  expect(err).to.be.instanceOf(SluiceError);
  expect((err as SluiceError).code).to.equal('BAD_OPTION');
  expect((err as SluiceError).message).to.include(`'${option}'`);
  return err as SluiceError;
}

describe('parquet sink', function () {
  this.timeout(30_000);
  let dir: string;
  let out: string;
  beforeEach(() => {
    dir = tempDir();
    out = path.join(dir, 'out');
  });
  afterEach(() => removeDir(dir));

  const started = async (options: ParquetSinkOptions = {}) => {
    const sink = new ParquetSink({ path: out, ...options });
    await sink.initialize(sinkContext(dir));
    return sink;
  };

  it('keeps column types: timestamps, lists and structs read back by DuckDB as such, values equal', async () => {
    const sink = await started();
    const input = eventTable(0, 50);
    await sink.addBatch(0, input);
    expect(await duckdbTypes(`SELECT * FROM ${parquetGlob(out)}`)).to.deep.equal({
      id: 'BIGINT',
      user: 'VARCHAR',
      grp: 'VARCHAR',
      ts: 'TIMESTAMP WITH TIME ZONE',
      amount: 'DOUBLE',
      pages: 'VARCHAR[]',
      device: 'STRUCT("type" VARCHAR, "n" INTEGER)',
    });
    const back = await duckdb(`SELECT * FROM ${parquetGlob(out)} ORDER BY id`);
    const expected = rowsFromBatch(input.batches[0]);
    expect(back.map((r) => ({ ...r, id: Number(r.id) }))).to.deep.equal(expected);
  });

  it('writes dictionary-encoded strings, also when the batches of a table have different dictionaries', async () => {
    const sink = await started();
    await sink.addBatch(0, dictionaryTable());
    expect(await duckdb(`SELECT event, n FROM ${parquetGlob(out)}`)).to.deep.equal([
      { event: 'view', n: 0 },
      { event: 'click', n: 1 },
      { event: 'view', n: 2 },
      { event: 'buy', n: 0 },
      { event: 'click', n: 1 },
    ]);
  });

  it('partitions into hive-style folders without the partition columns in the files', async () => {
    const sink = await started({ partitionBy: 'grp' });
    await sink.addBatch(0, eventTable(0, 60, 3));
    expect(visibleDataFiles(out, '.parquet')).to.deep.equal([
      'grp=g0/part-00000000-00000.parquet',
      'grp=g1/part-00000000-00001.parquet',
      'grp=g2/part-00000000-00002.parquet',
    ]);
    const one = path.join(out, 'grp=g1/part-00000000-00001.parquet');
    expect(
      Object.keys(await duckdbTypes(`SELECT * FROM read_parquet(${sqlString(one)}, hive_partitioning = false)`)),
    ).to.not.include('grp');
    expect(
      await duckdb(
        `SELECT grp, count(*)::INT AS n, min(id)::INT AS first FROM ${parquetGlob(out)} GROUP BY grp ORDER BY grp`,
      ),
    ).to.deep.equal([
      { grp: 'g0', n: 20, first: 0 },
      { grp: 'g1', n: 20, first: 1 },
      { grp: 'g2', n: 20, first: 2 },
    ]);
  });

  it('escapes partition values as Spark does and writes null as the hive default partition', async () => {
    const schema = schemaFromSpec({ place: 'string', at: 'timestamp', v: 'long' });
    const values = ['a/b:c', null, '', 'plain'];
    const at = [Date.UTC(2024, 0, 2, 3, 4, 5), Date.UTC(2024, 0, 2, 3, 4, 5, 250), null, 0];
    const sink = await started({ partitionBy: ['place', 'at'] });
    await sink.addBatch(0, new Table([batchFromColumns(schema, [values, at, [1, 2, 3, 4]], 4)]));
    expect(visibleDataFiles(out, '.parquet').map((f) => path.dirname(f))).to.deep.equal([
      'place=__HIVE_DEFAULT_PARTITION__/at=2024-01-02 03%3A04%3A05.25',
      'place=__HIVE_DEFAULT_PARTITION__/at=__HIVE_DEFAULT_PARTITION__',
      'place=a%2Fb%3Ac/at=2024-01-02 03%3A04%3A05',
      'place=plain/at=1970-01-01 00%3A00%3A00',
    ]);
    const back = await duckdb(`SELECT place, v FROM ${parquetGlob(out)} ORDER BY v`);
    expect(back).to.deep.equal([
      { place: 'a/b:c', v: 1n },
      { place: null, v: 2n },
      { place: null, v: 3n },
      { place: 'plain', v: 4n },
    ]);
  });

  it('rolls to a new file every maxRowsPerFile rows', async () => {
    const sink = await started({ maxRowsPerFile: '40' });
    await sink.addBatch(5, eventTable(5, 100));
    const counts = await duckdb(
      `SELECT parse_filename(filename) AS f, count(*)::INT AS n FROM read_parquet(${sqlString(path.join(out, '*.parquet'))}, filename = true) GROUP BY f ORDER BY f`,
    );
    expect(counts).to.deep.equal([
      { f: 'part-00000005-00000.parquet', n: 40 },
      { f: 'part-00000005-00001.parquet', n: 40 },
      { f: 'part-00000005-00002.parquet', n: 20 },
    ]);
    expect((await duckdb(`SELECT list(id ORDER BY id) AS ids FROM ${parquetGlob(out)}`))[0].ids).to.deep.equal(
      Array.from({ length: 100 }, (_, i) => BigInt(5000 + i)),
    );
  });

  for (const [option, codec] of [
    [undefined, 'SNAPPY'],
    ['zstd', 'ZSTD'],
    ['none', 'UNCOMPRESSED'],
    ['gzip', 'GZIP'],
  ] as const) {
    it(`compresses with ${codec} when compression is ${option ?? 'not given'}`, async () => {
      const sink = await started(option ? { compression: option } : {});
      await sink.addBatch(0, eventTable(0, 20));
      const file = path.join(out, 'part-00000000-00000.parquet');
      const codecs = await duckdb(`SELECT DISTINCT compression FROM parquet_metadata(${sqlString(file)})`);
      expect(codecs).to.deep.equal([{ compression: codec }]);
    });
  }

  it('dictionary-encodes strings but not timestamps and doubles', async () => {
    const sink = await started();
    await sink.addBatch(0, eventTable(0, 50));
    const file = path.join(out, 'part-00000000-00000.parquet');
    const rows = await duckdb(
      `SELECT path_in_schema AS col, dictionary_page_offset IS NOT NULL AS dict FROM parquet_metadata(${sqlString(file)}) WHERE path_in_schema IN ('user', 'ts', 'amount') ORDER BY col`,
    );
    expect(rows).to.deep.equal([
      { col: 'amount', dict: false },
      { col: 'ts', dict: false },
      { col: 'user', dict: true },
    ]);
  });

  it('writes no file for an empty batch but commits it', async () => {
    const sink = await started();
    await sink.addBatch(0, eventTable(0, 0));
    expect(listFiles(out)).to.deep.equal(['_sluice_log/0']);
  });

  it('is idempotent per batch id: a replayed batch leaves the same files', async () => {
    const sink = await started({ partitionBy: 'grp' });
    await sink.addBatch(0, eventTable(0, 30));
    await sink.addBatch(1, eventTable(1, 30));
    const before = listFiles(out);
    await sink.addBatch(1, eventTable(1, 30));
    expect(listFiles(out)).to.deep.equal(before);
    expect(
      (await duckdb(`SELECT count(*)::INT AS n, count(DISTINCT id)::INT AS d FROM ${parquetGlob(out)}`))[0],
    ).to.deep.equal({ n: 60, d: 60 });
  });

  describe('bad options give a SluiceError naming the option', () => {
    it('missing path', () => {
      expectBadOption(() => new ParquetSink({}), 'path');
    });
    it('unknown option', () => {
      const err = expectBadOption(() => new ParquetSink({ path: out, compresion: 'zstd' }), 'compresion');
      expect(err.hint).to.include('compression');
    });
    it('unknown codec', () => {
      expectBadOption(() => new ParquetSink({ path: out, compression: 'lzo' }), 'compression');
    });
    it('maxRowsPerFile not a count', () => {
      expectBadOption(() => new ParquetSink({ path: out, maxRowsPerFile: 'many' }), 'maxRowsPerFile');
      expectBadOption(() => new ParquetSink({ path: out, maxRecordsPerFile: -1 }), 'maxRecordsPerFile');
    });
    it('partitionBy with a repeated, missing, nested or every column', async () => {
      expectBadOption(() => new ParquetSink({ path: out, partitionBy: 'grp,grp' }), 'partitionBy');
      for (const partitionBy of ['nope', 'pages', 'id,user,grp,ts,amount,pages,device']) {
        const sink = await started({ partitionBy });
        let err: unknown;
        try {
          await sink.addBatch(0, eventTable(0, 3));
        } catch (e) {
          err = e;
        }
        expect(err, partitionBy).to.be.instanceOf(SluiceError);
        expect((err as SluiceError).message).to.include("'partitionBy'");
      }
      expect(fs.existsSync(path.join(out, '_sluice_log', '0'))).to.equal(false);
    });
    it('complete output mode', async () => {
      const sink = new ParquetSink({ path: out });
      let err: unknown;
      try {
        await sink.initialize({ ...sinkContext(dir), outputMode: 'complete' });
      } catch (e) {
        err = e;
      }
      expect((err as SluiceError).code).to.equal('UNSUPPORTED_OUTPUT_MODE');
    });
  });
});
