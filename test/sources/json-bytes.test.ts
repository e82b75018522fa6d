import type { Data, RecordBatch, Schema } from 'apache-arrow';
import { expect } from 'chai';
import { valuesOf } from '../../lib/arrow/columns.js';
import { schemaFromSpec } from '../../lib/arrow/schema.js';
import { linesOf } from '../../lib/sources/decode/common.js';
import { decodeJsonBytes } from '../../lib/sources/decode/json-bytes.js';
import { collectJsonLines, decodeJsonLines } from '../../lib/sources/decode/json-lines.js';

const schema = schemaFromSpec({
  s: 'string',
  d: 'double',
  i: 'int',
  l: 'long',
  b: 'boolean',
  t: 'timestamp',
  st: { x: 'string', n: { y: 'long', z: 'string' } },
});

/** What the general decoder (JSON.parse per line) makes of the same bytes. */
function general(bytes: Uint8Array, sch: Schema): { batch: RecordBatch; malformed: number } {
  const rows = collectJsonLines(linesOf(bytes), { schema: sch, location: 'test' });
  return { batch: rows.batch(), malformed: rows.numMalformed + rows.rejected.length + (rows.failed ? 1 : 0) };
}

/** Column contents, types, null counts and buffer values of two batches, compared field by field. */
function expectSameBatch(fast: RecordBatch, slow: RecordBatch, what: string): void {
  expect(fast.numRows, `${what}: rows`).to.equal(slow.numRows);
  expect(String(fast.schema.fields.map((f) => f.type)), what).to.equal(String(slow.schema.fields.map((f) => f.type)));
  const walk = (a: Data, b: Data, path: string): void => {
    expect(a.nullCount, `${what}: nulls of ${path}`).to.equal(b.nullCount);
    expect(a.length, `${what}: length of ${path}`).to.equal(b.length);
    const va = valuesOf(a);
    const vb = valuesOf(b);
    expect(va, `${what}: values of ${path}`).to.deep.equal(vb);
    // Null slots hold 0 in both (fixed-width buffers are compared as they are).
    if (a.values && !a.valueOffsets)
      expect(Array.from(a.values as ArrayLike<unknown>), `${what}: buffer of ${path}`).to.deep.equal(
        Array.from(b.values as ArrayLike<unknown>),
      );
    for (const [k, c] of a.children.entries()) walk(c, b.children[k], `${path}.${k}`);
  };
  for (const [k, c] of fast.data.children.entries()) walk(c, slow.data.children[k], fast.schema.fields[k].name);
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
  '/products/12',
  'x'.repeat(100),
  '\u2028',
];
const TIMES = [
  '2024-01-01T00:00:00.024Z',
  '2024-01-01T00:00:59.999Z',
  '2024-01-01T00:01:00.000Z',
  '2023-12-31 23:59:59',
  '2024-02-03T04:05:06+02:00',
  '2024-01-01',
  1700000000123,
  1700000000123.7,
  -5.5,
];
const NUMBERS = [
  '0',
  '-0',
  '1',
  '-17',
  '3.25',
  '1e3',
  '2.5E-3',
  '-0.0',
  '123456789012345',
  '1234567890123456789',
  '9007199254740993',
];

/** One random line of `schema`'s shape: fields in random order, some missing, null or unknown; random spacing. */
function randomLine(r: () => number): string {
  const pick = <T>(xs: T[]): T => xs[Math.floor(r() * xs.length)];
  const sp = (): string => (r() < 0.2 ? pick([' ', '  ', '\t', ' \t ']) : '');
  const str = (): string => {
    const s = pick(STRINGS);
    // Escape optional characters (\/ and \u escapes) sometimes, as some producers do.
    const json = JSON.stringify(s);
    return r() < 0.2 ? json.replace(/\//g, '\\/').replace(/a/g, '\\u0061') : json;
  };
  const unknown = (): string =>
    pick(['1', '"z"', '[1,{"a":[true,false,null]},"x"]', '{"deep":{"er":[]}}', 'null', '-2.5e+2', '{}', '[]']);
  const members = (entries: [string, () => string][]): string => {
    const parts: string[] = [];
    for (const [k, v] of entries) {
      const roll = r();
      if (roll < 0.1) continue;
      parts.push(`${sp()}"${k}"${sp()}:${sp()}${roll < 0.2 ? 'null' : v()}${sp()}`);
    }
    if (r() < 0.3) parts.push(`"extra${Math.floor(r() * 3)}":${unknown()}`);
    for (let i = parts.length - 1; i > 0; i--) {
      if (r() < 0.3) {
        const j = Math.floor(r() * (i + 1));
        [parts[i], parts[j]] = [parts[j], parts[i]];
      }
    }
    return `{${parts.join(',')}}`;
  };
  const nested = (): string =>
    members([
      ['y', () => pick(['7', '-3', '1e2'])],
      ['z', str],
    ]);
  return (
    sp() +
    members([
      ['s', () => (r() < 0.8 ? str() : pick(['12', '1.50', 'true', '{"a": [1, "b"]}', '[ ]']))],
      ['d', () => pick(NUMBERS)],
      ['i', () => pick(['0', '42', '-2147483648', '2147483647', '5.0'])],
      ['l', () => pick(['0', '-1', '4294967296', '-4294967297', '9007199254740991', '123456789012'])],
      ['b', () => pick(['true', 'false'])],
      ['t', () => JSON.stringify(pick(TIMES))],
      [
        'st',
        () =>
          members([
            ['x', str],
            ['n', nested],
          ]),
      ],
    ]) +
    sp()
  );
}

describe('JSON-lines byte scanner (decodeJsonBytes)', () => {
  it('decodes random lines of every supported type exactly as JSON.parse per line does', () => {
    const r = rng(7);
    for (let round = 0; round < 40; round++) {
      const lines = Array.from({ length: 50 }, () => randomLine(r));
      if (round % 5 === 0) lines.splice(10, 0, '', '   ', '\t');
      const text = lines.join(round % 3 === 0 ? '\r\n' : '\n') + (round % 2 === 0 ? '\n' : '');
      const bytes = Buffer.from(text);
      const fast = decodeJsonBytes(bytes, schema);
      expect(fast, `round ${round} went the general way:\n${text}`).to.not.equal(null);
      const slow = general(bytes, schema);
      expect(slow.malformed).to.equal(0);
      expectSameBatch(fast!, slow.batch, `round ${round}`);
    }
  });

  it('reads decimals to the same double as Number() does, in the 15-digit fast path and beyond it', () => {
    const r = rng(3);
    const doubles = schemaFromSpec({ d: 'double' });
    const texts: string[] = [
      '0.1',
      '-0.0',
      '0.30000000000000004',
      '9.999999999999999',
      '123456789.012345',
      '1.7976931348623157',
      '0.000001',
      '5e-324',
      '-12.50',
    ];
    for (let k = 0; k < 3000; k++) {
      const intDigits = Math.floor(r() * 9);
      const fracDigits = 1 + Math.floor(r() * 12);
      let t = intDigits === 0 ? '0' : String(1 + Math.floor(r() * 9));
      for (let j = 1; j < intDigits; j++) t += Math.floor(r() * 10);
      t += '.';
      for (let j = 0; j < fracDigits; j++) t += Math.floor(r() * 10);
      texts.push(r() < 0.3 ? `-${t}` : t);
    }
    const bytes = Buffer.from(texts.map((t) => `{"d":${t}}`).join('\n'));
    const fast = decodeJsonBytes(bytes, doubles)!;
    expect(
      Array.from(fast.getChild('d')!.data[0].values as Float64Array).map((v) => (Object.is(v, -0) ? '-0' : v)),
    ).to.deep.equal(texts.map((t) => (Object.is(Number(t), -0) ? '-0' : Number(t))));
    expectSameBatch(fast, general(bytes, doubles).batch, 'decimals');
  });

  it('decodes the clickstream events of the seed apps, non-ASCII values and escapes included', () => {
    const clicks = schemaFromSpec({
      user_id: 'string',
      event_type: 'string',
      timestamp: 'timestamp',
      device: { type: 'string' },
      metadata: { amount: 'string' },
    });
    const text = [
      '{"user_id":"user-1","event_type":"purchase","timestamp":"2024-01-01T00:00:00.024Z","device":{"type":"desktop"},"metadata":{"amount":"12.50"}}',
      '{"user_id":"usér-2","event_type":"click","timestamp":"2024-01-01T00:00:00.310Z","device":{"type":"mobile"},"metadata":{}}',
      '{"user_id":"user-3","event_type":"page_view","timestamp":"2024-01-01T00:01:00.000Z","device":{"type":"t\\u00e4b"},"metadata":{"amount":12.5}}',
    ].join('\n');
    const fast = decodeJsonBytes(Buffer.from(text), clicks);
    expect(fast).to.not.equal(null);
    expectSameBatch(fast!, general(Buffer.from(text), clicks).batch, 'clicks');
    expect(valuesOf(fast!.getChild('device')!.data[0].children[0])).to.deep.equal(['desktop', 'mobile', 'täb']);
    expect(valuesOf(fast!.getChild('metadata')!.data[0].children[0])).to.deep.equal(['12.50', null, '12.5']);
  });

  it('leaves every line that JSON.parse rejects to the general decoder', () => {
    const invalid = [
      '{"s":"a",}',
      "{'s':'a'}",
      '{"d":01}',
      '{"d":1.}',
      '{"d":.5}',
      '{"d":+1}',
      '{"d":-}',
      '{"d":1e}',
      '{"s":"a\u0001"}',
      '{"s":"\\x"}',
      '{"s":"\\u12"}',
      '{"s":nul}',
      '{"b":True}',
      '{"s":"a"',
      '{"s":"a"} x',
      '{"d":NaN}',
      '{"d":Infinity}',
      '{"s" "a"}',
      '{"s":"a" "d":1}',
      '{"extra":[1,]}',
      '{"extra":{"a"}}',
      '{"extra":{"a":1,}}',
      '{,}',
      '{"s":"a"}}',
      '\ufeff{"s":"a"}',
      '{"extra":"unterminated}',
      '{"st":{"x":"a"}',
      `{"extra":[${'['.repeat(20000)}]]}`,
    ];
    for (const line of invalid) {
      expect(() => JSON.parse(line), line).to.throw();
      expect(decodeJsonBytes(Buffer.from(`{"s":"ok"}\n${line}\n`), schema), line).to.equal(null);
    }
  });

  it('leaves lines that are not objects or do not fit the schema, repeated keys and invalid UTF-8 to the general decoder', () => {
    const general = [
      '{"d":"1.5"}',
      '{"i":2147483648}',
      '{"i":1.5}',
      '{"l":1.5}',
      '{"l":1e19}',
      '{"b":1}',
      '{"t":"yesterday"}',
      '{"t":true}',
      '{"t":"2024-01-01T00:00:61.000Z"}',
      '{"st":"x"}',
      '[1]',
      '"s"',
      '7',
      '{"st":{"n":[]}}',
      '{"s":"a","s":"b"}',
      '{"s":"a","\\u0073":"b"}',
      '{"st":{"x":"a","x":"b"}}',
    ];
    for (const line of general) expect(decodeJsonBytes(Buffer.from(line), schema), line).to.equal(null);
    expect(decodeJsonBytes(Buffer.from([0x7b, 0x22, 0x73, 0x22, 0x3a, 0x22, 0xff, 0x22, 0x7d]), schema)).to.equal(null);
    expect(decodeJsonBytes(Buffer.from('{"tags":["a"]}'), schemaFromSpec({ tags: ['string'] }))).to.equal(null);
  });

  it('keeps the corrupt-record column null and does not read it from the line', () => {
    const withCorrupt = schemaFromSpec({ s: 'string', _corrupt_record: 'string' });
    const bytes = Buffer.from('{"s":"a","_corrupt_record":"given"}\n{"s":"b"}\n');
    const fast = decodeJsonBytes(bytes, withCorrupt)!;
    expectSameBatch(fast, general(bytes, withCorrupt).batch, 'corrupt column');
    expect(valuesOf(fast.getChild('_corrupt_record')!.data[0])).to.deep.equal([null, null]);
  });

  it('reads a field named like an Object.prototype member only when the line has it, in both decoders', () => {
    const sch = schemaFromSpec(
      Object.fromEntries([
        ['constructor', 'string'],
        ['toString', 'string'],
      ]),
    );
    const bytes = Buffer.from('{"constructor":"c"}\n{}\n');
    const fast = decodeJsonBytes(bytes, sch)!;
    expectSameBatch(fast, general(bytes, sch).batch, 'inherited names');
    expect(valuesOf(fast.getChild('constructor')!.data[0])).to.deep.equal(['c', null]);
    expect(valuesOf(fast.getChild('toString')!.data[0])).to.deep.equal([null, null]);
  });

  it('decodeJsonLines of bytes gives what it gives for the same lines as strings, malformed lines included', async () => {
    const withCorrupt = schemaFromSpec({ s: 'string', d: 'double', _corrupt_record: 'string' });
    for (const text of ['{"s":"a","d":1}\n{"s":"b","d":2.5}\n', '{"s":"a","d":1}\nnot json\n{"s":"c","d":"x"}\n']) {
      const fromBytes = await decodeJsonLines(Buffer.from(text), { schema: withCorrupt, location: 'test' });
      const fromLines = await decodeJsonLines(linesOf(Buffer.from(text)), { schema: withCorrupt, location: 'test' });
      expect(fromBytes.numMalformed).to.equal(fromLines.numMalformed);
      expectSameBatch(fromBytes.batches[0], fromLines.batches[0], text);
    }
  });
});
