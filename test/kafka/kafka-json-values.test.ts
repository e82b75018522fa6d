import type { Data, RecordBatch } from 'apache-arrow';
import { expect } from 'chai';
import { valuesOf } from '../../lib/arrow/columns.js';
import { schemaFromSpec, type TypeSpec } from '../../lib/arrow/schema.js';
import type { KafkaMessage } from '../../lib/kafka/messages.js';
import { RecordColumns } from '../../lib/kafka/record-columns.js';
import type { ParseMode } from '../../lib/sources/decode/common.js';
import { decodeJsonRecords } from '../../lib/sources/decode/json-bytes.js';
import { decodeRecords, type KafkaReadSpec } from '../../lib/sources/kafka/kafka-read-task.js';
import type { ReadResult } from '../../lib/sources/source.js';

const VALUE_SCHEMA: Record<string, TypeSpec> = {
  s: 'string',
  d: 'double',
  i: 'int',
  l: 'long',
  b: 'boolean',
  t: 'timestamp',
  st: { x: 'string', n: { y: 'long', z: 'string' } },
};
const KAFKA_COLUMNS: Record<string, TypeSpec> = {
  key: 'string',
  topic: 'string',
  partition: 'int',
  offset: 'long',
  timestamp: 'timestamp',
};

function specOf(mode: ParseMode, corrupt: boolean, value: Record<string, TypeSpec> = VALUE_SCHEMA): KafkaReadSpec {
  // The Kafka `timestamp` column takes the name; the value's own timestamp field is `t`.
  const valueFields = { ...value, ...(corrupt ? { _corrupt_record: 'string' as TypeSpec } : {}) };
  return {
    bootstrap: 'unused:9092',
    client: {},
    topic: 'events',
    partition: 3,
    fromOffset: 0,
    untilOffset: 0,
    failOnDataLoss: true,
    valueFormat: 'json',
    schema: { ...valueFields, ...KAFKA_COLUMNS },
    valueFields: Object.keys(valueFields),
    mode,
    columnNameOfCorruptRecord: '_corrupt_record',
  };
}

/**
 * Records whose values are views into one buffer, as the fetch decoder gives them, with bytes between them
 * that would extend a value read past its end (quotes, digits, braces).
 */
function messagesOf(values: (string | Buffer | null)[], gap = '"1}"}\n{'): KafkaMessage[] {
  const parts: Buffer[] = [];
  const spans: [number, number][] = [];
  let at = 0;
  for (const v of values) {
    const g = Buffer.from(gap);
    parts.push(g);
    at += g.length;
    const bytes = v === null ? Buffer.alloc(0) : Buffer.isBuffer(v) ? v : Buffer.from(v);
    parts.push(bytes);
    spans.push([at, at + bytes.length]);
    at += bytes.length;
  }
  parts.push(Buffer.from(gap));
  const whole = Buffer.concat(parts);
  return values.map((v, i) => ({
    offset: 100 + i,
    timestamp: 1_700_000_000_000 + i,
    key: i % 3 === 0 ? null : Buffer.from(`k${i}`),
    value: v === null ? null : whole.subarray(spans[i][0], spans[i][1]),
  }));
}

/** Decodes with the byte scanner when it can and with the general decoder only; a FAILFAST error becomes its message. */
function both(messages: KafkaMessage[], spec: KafkaReadSpec): { fast: ReadResult | string; slow: ReadResult | string } {
  const run = (fast: boolean): ReadResult | string => {
    try {
      return decodeRecords(RecordColumns.of(messages), spec, fast);
    } catch (err) {
      return (err as Error).message;
    }
  };
  return { fast: run(true), slow: run(false) };
}

/** Column contents, types, null counts and fixed-width buffers of two batches, field by field. */
function expectSameBatch(fast: RecordBatch, slow: RecordBatch, what: string): void {
  expect(fast.numRows, `${what}: rows`).to.equal(slow.numRows);
  expect(String(fast.schema.fields.map((f) => `${f.name}:${f.type}`)), what).to.equal(
    String(slow.schema.fields.map((f) => `${f.name}:${f.type}`)),
  );
  const walk = (a: Data, b: Data, path: string): void => {
    expect(a.nullCount, `${what}: nulls of ${path}`).to.equal(b.nullCount);
    expect(a.length, `${what}: length of ${path}`).to.equal(b.length);
    expect(valuesOf(a), `${what}: values of ${path}`).to.deep.equal(valuesOf(b));
    if (a.values && !a.valueOffsets)
      expect(Array.from(a.values as ArrayLike<unknown>), `${what}: buffer of ${path}`).to.deep.equal(
        Array.from(b.values as ArrayLike<unknown>),
      );
    for (const [k, c] of a.children.entries()) walk(c, b.children[k], `${path}.${k}`);
  };
  for (const [k, c] of fast.data.children.entries()) walk(c, slow.data.children[k], fast.schema.fields[k].name);
}

function expectSame(r: { fast: ReadResult | string; slow: ReadResult | string }, what: string): void {
  if (typeof r.slow === 'string' || typeof r.fast === 'string') {
    expect(r.fast, what).to.equal(r.slow);
    return;
  }
  expect(r.fast.numMalformed, `${what}: numMalformed`).to.equal(r.slow.numMalformed);
  expect(r.fast.batches.length, what).to.equal(1);
  expectSameBatch(r.fast.batches[0], r.slow.batches[0], what);
}

/** A deterministic pseudo-random source (LCG), so a failure reproduces. */
function rng(seed: number): () => number {
  let x = seed >>> 0;
  return () => {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    return x / 4294967296;
  };
}

const STRINGS = [
  '',
  'a',
  'hello world',
  'ü€ ✓ 😀',
  'with "quotes"',
  'back\\slash',
  'tab\tnew\nline',
  '/p/12',
  'x'.repeat(100),
  '\u2028',
  '日本語',
];
const TIMES = [
  '2024-01-01T00:00:00.024Z',
  '2024-01-01T00:00:59.999Z',
  '2024-01-01T00:01:00.000Z',
  '2023-12-31 23:59:59',
  '2024-02-03T04:05:06+02:00',
  1700000000123,
];
const NUMBERS = ['0', '-0', '1', '-17', '3.25', '1e3', '2.5E-3', '123456789012345', '1234567890123456789'];

/** One random value: fields in random order, some missing, null or unknown, escapes, spacing and newlines around it. */
function randomValue(r: () => number): string {
  const pick = <T>(xs: T[]): T => xs[Math.floor(r() * xs.length)];
  const sp = (): string => (r() < 0.2 ? pick([' ', '\t', ' \t ']) : '');
  const str = (): string => {
    const json = JSON.stringify(pick(STRINGS));
    return r() < 0.2 ? json.replace(/\//g, '\\/').replace(/a/g, '\\u0061') : json;
  };
  const members = (entries: [string, () => string][]): string => {
    const parts: string[] = [];
    for (const [k, v] of entries) {
      const roll = r();
      if (roll < 0.1) continue;
      parts.push(`${sp()}"${k}"${sp()}:${sp()}${roll < 0.2 ? 'null' : v()}${sp()}`);
    }
    if (r() < 0.3)
      parts.push(
        `"extra${Math.floor(r() * 3)}":${pick(['1', '"z"', '[1,{"a":[true,null]},"x"]', '{"deep":{}}', 'null'])}`,
      );
    for (let i = parts.length - 1; i > 0; i--) {
      if (r() < 0.3) {
        const j = Math.floor(r() * (i + 1));
        [parts[i], parts[j]] = [parts[j], parts[i]];
      }
    }
    return `{${parts.join(',')}}`;
  };
  const around = (): string => (r() < 0.15 ? pick([' ', '\n', '\r\n', '\t\n ']) : '');
  return (
    around() +
    members([
      ['s', () => (r() < 0.85 ? str() : pick(['12', '1.50', 'true', '{"a": [1, "b"]}']))],
      ['d', () => pick(NUMBERS)],
      ['i', () => pick(['0', '42', '-2147483648', '2147483647'])],
      ['l', () => pick(['0', '-1', '4294967296', '9007199254740991'])],
      ['b', () => pick(['true', 'false'])],
      ['t', () => JSON.stringify(pick(TIMES))],
      [
        'st',
        () =>
          members([
            ['x', str],
            [
              'n',
              () =>
                members([
                  ['y', () => pick(['7', '-3'])],
                  ['z', str],
                ]),
            ],
          ]),
      ],
    ]) +
    around()
  );
}

describe('Kafka JSON values: byte scanner against the general decoder', () => {
  it('decodes random values, tombstones included, in place and exactly as the general decoder does', () => {
    const r = rng(11);
    for (let round = 0; round < 30; round++) {
      const values = Array.from({ length: 40 }, () => (r() < 0.05 ? null : randomValue(r)));
      const messages = messagesOf(values);
      const spec = specOf((['PERMISSIVE', 'DROPMALFORMED', 'FAILFAST'] as const)[round % 3], round % 2 === 0);
      expect(
        decodeJsonRecords(
          messages.map((m) => m.value),
          schemaFromSpec(VALUE_SCHEMA),
        ),
        `round ${round} went the general way:\n${values.join('\n')}`,
      ).to.not.equal(null);
      const r2 = both(messages, spec);
      expectSame(r2, `round ${round}`);
      expect((r2.fast as ReadResult).numMalformed).to.equal(0);
    }
  });

  it('decodes unicode, escapes, nulls, missing fields and values in several buffers the same way', () => {
    const values = [
      '{"s":"usér ✓ 😀","st":{"x":"t\\u00e4b","n":{"z":"\\"q\\" \\\\ \\n"}}}',
      '{}',
      '{"s":null,"d":null,"st":null}',
      '{"st":{}}',
      '{"s":"\\ud83d\\ude00","l":-4294967297}',
      '\n {"b":true}\r\n',
      '{"constructor":1,"s":"x"}',
    ];
    const first = messagesOf(values.slice(0, 4), '');
    const second = messagesOf([null, ...values.slice(4)], '{"s":"');
    const messages = [...first, ...second];
    expect(
      decodeJsonRecords(
        messages.map((m) => m.value),
        schemaFromSpec(VALUE_SCHEMA),
      ),
    ).to.not.equal(null);
    const r = both(messages, specOf('PERMISSIVE', true));
    expectSame(r, 'unicode and escapes');
    const batch = (r.fast as ReadResult).batches[0];
    expect(valuesOf(batch.getChild('s')!.data[0])).to.deep.equal([
      'usér ✓ 😀',
      null,
      null,
      null,
      null,
      '😀',
      null,
      'x',
    ]);
    expect(valuesOf(batch.getChild('_corrupt_record')!.data[0]).every((v) => v === null)).to.equal(true);
    expect(valuesOf(batch.getChild('offset')!.data[0]).map(Number)).to.deep.equal([
      100, 101, 102, 103, 100, 101, 102, 103,
    ]);
  });

  it('leaves bad and unusual values to the general decoder, which applies every mode the same way', () => {
    const bad: (string | Buffer)[] = [
      '',
      '   ',
      '\n',
      'not json',
      '{"s":"a"',
      '{"s":"a"} x',
      '{"s":"a"}{"s":"b"}',
      '{"s":"a"}\n{"s":"b"}',
      '[1]',
      '"s"',
      '7',
      '{"d":"1.5"}',
      '{"i":2147483648}',
      '{"b":1}',
      '{"s":"a\u0001"}',
      '\ufeff{"s":"a"}',
      '{"s":"x',
      '{"d":1',
      '{"st":{"x":"y"}',
    ];
    // Valid for JSON.parse of the value's text, but not read by the scanner.
    const valid: (string | Buffer)[] = [
      '{"s":"a","s":"b"}',
      '{\n"s":"a"}',
      Buffer.from([0x7b, 0x22, 0x73, 0x22, 0x3a, 0x22, 0xff, 0x22, 0x7d]),
    ];
    for (const v of [...bad, ...valid]) {
      const malformed = bad.includes(v);
      const values = ['{"s":"ok","d":1}', v, '{"s":"after"}'];
      // The gap after each value completes a truncated one: reading past a value's end must not make it valid.
      const messages = messagesOf(values, '"}}');
      const what = JSON.stringify(String(v));
      expect(
        decodeJsonRecords(
          messages.map((m) => m.value),
          schemaFromSpec(VALUE_SCHEMA),
        ),
        what,
      ).to.equal(null);
      for (const mode of ['PERMISSIVE', 'DROPMALFORMED', 'FAILFAST'] as const) {
        for (const corrupt of [true, false]) {
          const r = both(messages, specOf(mode, corrupt));
          expectSame(r, `${what} ${mode} corrupt column ${corrupt}`);
          if (malformed && mode === 'FAILFAST')
            expect(r.fast, what).to.be.a('string').that.contains('malformed record in Kafka events-3 at offset 101');
          else expect((r.fast as ReadResult).numMalformed, what).to.equal(malformed ? 1 : 0);
        }
      }
    }
  });

  it('leaves schemas the scanner does not read to the general decoder', () => {
    const value = { tags: ['string'] as TypeSpec, s: 'string' as TypeSpec };
    const messages = messagesOf(['{"tags":["a","b"],"s":"x"}', '{"s":"y"}']);
    expect(
      decodeJsonRecords(
        messages.map((m) => m.value),
        schemaFromSpec(value),
      ),
    ).to.equal(null);
    expectSame(both(messages, specOf('PERMISSIVE', false, value)), 'list field');
  });
});
