import { Writable } from 'node:stream';
import { Table } from 'apache-arrow';
import { expect } from 'chai';
import { batchFromColumns, schemaFromSpec } from '../../lib/arrow/index.js';
import { SluiceError } from '../../lib/errors.js';
import { ConsoleSink, javaDoubleString, showString } from '../../lib/sinks/console-sink.js';
import { sinkContext } from './fixtures.js';

class Capture extends Writable {
  text = '';
  override _write(chunk: Buffer, _enc: BufferEncoding, done: () => void): void {
    this.text += chunk.toString();
    done();
  }
}

function table(spec: Parameters<typeof schemaFromSpec>[0], columns: unknown[][]): Table {
  return new Table([batchFromColumns(schemaFromSpec(spec), columns, columns[0].length)]);
}

describe('console sink', () => {
  it("prints a batch exactly as Spark's console sink does", async () => {
    const out = new Capture();
    const sink = new ConsoleSink({ out });
    await sink.initialize(sinkContext('/tmp'));
    await sink.addBatch(
      0,
      table({ value: 'string', count: 'long' }, [
        ['apache', 'spark'],
        [1, 1],
      ]),
    );
    await sink.addBatch(1, table({ value: 'string', count: 'long' }, [[], []]));
    // From the Structured Streaming programming guide's word count, then an empty batch.
    expect(out.text).to.equal(
      '-------------------------------------------\n' +
        'Batch: 0\n' +
        '-------------------------------------------\n' +
        '+------+-----+\n' +
        '| value|count|\n' +
        '+------+-----+\n' +
        '|apache|    1|\n' +
        '| spark|    1|\n' +
        '+------+-----+\n' +
        '\n' +
        '-------------------------------------------\n' +
        'Batch: 1\n' +
        '-------------------------------------------\n' +
        '+-----+-----+\n' +
        '|value|count|\n' +
        '+-----+-----+\n' +
        '+-----+-----+\n' +
        '\n',
    );
  });

  it('shows the first numRows rows and says so', async () => {
    const t = table({ n: 'int' }, [[1, 2, 3]]);
    expect(showString(t, 2)).to.equal('+---+\n|  n|\n+---+\n|  1|\n|  2|\n+---+\nonly showing top 2 rows\n');
    expect(showString(t, 1)).to.match(/\nonly showing top 1 row\n$/);
    expect(showString(t, 3)).to.not.include('only showing');
    const out = new Capture();
    await new ConsoleSink({ out, numRows: '1' }).addBatch(7, t);
    expect(out.text).to.include('Batch: 7\n').and.include('|  1|\n+---+\nonly showing top 1 row\n\n');
  });

  it('cuts long cells to 20 characters and right-aligns, or shows them whole and left-aligned', async () => {
    const t = table({ s: 'string', n: 'int' }, [
      ['abcdefghijklmnopqrstuvwxy', 'ab'],
      [1, 22],
    ]);
    expect(showString(t)).to.equal(
      '+--------------------+---+\n' +
        '|                   s|  n|\n' +
        '+--------------------+---+\n' +
        '|abcdefghijklmnopq...|  1|\n' +
        '|                  ab| 22|\n' +
        '+--------------------+---+\n',
    );
    const out = new Capture();
    await new ConsoleSink({ out, truncate: 'false' }).addBatch(0, t);
    expect(out.text).to.include(
      '+-------------------------+---+\n' +
        '|s                        |n  |\n' +
        '+-------------------------+---+\n' +
        '|abcdefghijklmnopqrstuvwxy|1  |\n' +
        '|ab                       |22 |\n',
    );
    expect(showString(t, 20, 3)).to.include('|abc|');
  });

  it('formats values as Spark 3.5 does: NULL, Java doubles, lists, structs, UTC timestamps, hex binary', () => {
    const t = table(
      { d: 'double', l: ['string'], s: { x: 'string', y: 'long' }, ts: 'timestamp', b: 'binary', t: 'string' },
      [
        [1, null],
        [['a', null], null],
        [{ x: 'p', y: null }, null],
        [Date.UTC(2024, 4, 1, 10, 30, 0, 500), null],
        [Uint8Array.from([1, 171]), null],
        ['tab\there', '日本'],
      ],
    );
    expect(showString(t)).to.equal(
      '+----+---------+---------+--------------------+-------+---------+\n' +
        '|   d|        l|        s|                  ts|      b|        t|\n' +
        '+----+---------+---------+--------------------+-------+---------+\n' +
        '| 1.0|[a, NULL]|{p, NULL}|2024-05-01 10:30:...|[01 AB]|tab\\there|\n' +
        '|NULL|     NULL|     NULL|                NULL|   NULL|     日本|\n' +
        '+----+---------+---------+--------------------+-------+---------+\n',
    );
    expect(showString(t, 20, 0)).to.include('|2024-05-01 10:30:00.5|');
  });

  it("writes doubles as Java's Double.toString", () => {
    const cases: [number, string][] = [
      [100, '100.0'],
      [1234567, '1234567.0'],
      [12345678, '1.2345678E7'],
      [0.001, '0.001'],
      [1e-4, '1.0E-4'],
      [-0, '-0.0'],
      [1e21, '1.0E21'],
      [-2.5e-7, '-2.5E-7'],
      [NaN, 'NaN'],
      [-Infinity, '-Infinity'],
    ];
    for (const [v, text] of cases) expect(javaDoubleString(v), String(v)).to.equal(text);
  });

  it('refuses bad options with a SluiceError naming the option', () => {
    for (const [options, name] of [
      [{ numRows: '-1' }, 'numRows'],
      [{ numRows: 'ten' }, 'numRows'],
      [{ truncate: 'maybe' }, 'truncate'],
      [{ rows: 5 }, 'rows'],
    ] as const) {
      let err: unknown;
      try {
        new ConsoleSink(options);
      } catch (e) {
        err = e;
      }
      expect(err, name).to.be.instanceOf(SluiceError);
      expect((err as SluiceError).message).to.include(`'${name}'`);
    }
  });
});
