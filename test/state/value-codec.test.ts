import { expect } from 'chai';
import { SluiceError } from '../../lib/errors.js';
import {
  compareBytes,
  decode,
  decodeKeyString,
  encode,
  encodeKey,
  encodeKeyString,
  FieldDictionary,
  ValueReader,
  ValueWriter,
} from '../../lib/state/value-codec.js';

function roundTrip(value: unknown): unknown {
  return decode(encode(value));
}

describe('state value codec', () => {
  it('round-trips primitives and their edge values', () => {
    const values: unknown[] = [
      null,
      undefined,
      true,
      false,
      0,
      1,
      127,
      128,
      255,
      256,
      -1,
      -128,
      2 ** 31 - 1,
      -(2 ** 31),
      2 ** 31,
      -(2 ** 31) - 1,
      2 ** 53,
      -(2 ** 53),
      1.5,
      -0.1,
      Number.MIN_VALUE,
      Number.MAX_VALUE,
      Infinity,
      -Infinity,
      Number.EPSILON,
      '',
      'a',
      'k123456',
      'x'.repeat(63),
      'x'.repeat(64),
      'y'.repeat(100_000),
      'héllo',
      '日本語テキスト',
      '😀 emoji',
      'é'.repeat(40),
      '\u0000nul',
      0n,
      1n,
      -1n,
      255n,
      256n,
      -(2n ** 63n),
      2n ** 64n,
      -(2n ** 200n) + 7n,
    ];
    for (const v of values) expect(roundTrip(v), String(v)).to.equal(v);
  });

  it('keeps -0 and NaN as values', () => {
    expect(Object.is(roundTrip(-0), -0)).to.equal(true);
    expect(Number.isNaN(roundTrip(NaN))).to.equal(true);
  });

  it('round-trips dates, bytes, arrays, objects, maps and sets', () => {
    const date = new Date(1_700_000_000_123);
    expect(roundTrip(date)).to.be.instanceOf(Date).and.to.deep.equal(date);
    expect(Number.isNaN((roundTrip(new Date(NaN)) as Date).getTime())).to.equal(true);
    const bytes = new Uint8Array([0, 1, 254, 255]);
    expect(roundTrip(bytes)).to.deep.equal(bytes);
    expect(roundTrip(Buffer.from('abc'))).to.deep.equal(new Uint8Array([97, 98, 99]));
    const nested = {
      sum: 12.5,
      count: 3,
      name: 'acc-1',
      tags: ['a', 'b'],
      inner: { deep: [1, [2, [3, null]]], flag: false },
      none: undefined,
      when: new Date(5),
      big: 10n ** 20n,
      raw: new Uint8Array(100).fill(7),
      'field with spaces': 1,
      '': 'empty name',
      ['x'.repeat(200)]: 'long name',
    };
    expect(roundTrip(nested)).to.deep.equal(nested);
    expect(Object.keys(roundTrip({ b: 1, a: 2 }) as object)).to.deep.equal(['b', 'a']);
    const map = new Map<unknown, unknown>([
      ['a', 1],
      [2, { x: [1] }],
      [null, new Set([1, 'two'])],
    ]);
    expect(roundTrip(map)).to.deep.equal(map);
    expect(roundTrip(new Set(['x', 3, 4n]))).to.deep.equal(new Set(['x', 3, 4n]));
    expect(roundTrip([])).to.deep.equal([]);
    expect(roundTrip({})).to.deep.equal({});
    expect(roundTrip(Object.create(null))).to.deep.equal({});
  });

  it('turns array holes into undefined', () => {
    // biome-ignore lint/suspicious/noSparseArray: the hole is what this test is about
    const holey = [1, , 3];
    expect(roundTrip(holey)).to.deep.equal([1, undefined, 3]);
  });

  it('keeps an own "__proto__" field as a field, not a prototype', () => {
    const v = JSON.parse('{"__proto__": {"polluted": true}, "a": 1}');
    const back = roundTrip(v) as Record<string, unknown>;
    expect(Object.getPrototypeOf(back)).to.equal(Object.prototype);
    expect(Object.keys(back)).to.deep.equal(['__proto__', 'a']);
    expect((back as { polluted?: boolean }).polluted).to.equal(undefined);
  });

  it('is compact: short strings and small ints fold into the tag', () => {
    expect(encode('k123456').length).to.equal(8);
    expect(encode(5).length).to.equal(1);
    expect(encode(1000).length).to.equal(3);
    expect(encode(1.5).length).to.equal(9);
    // canonical: tag, count, inline marker, name length, "sum", float
    expect(encode({ sum: 1.5 }).length).to.equal(16);
  });

  it('writes field names as dictionary ids when given a dictionary', () => {
    const dict = new FieldDictionary();
    const w = new ValueWriter(16, dict);
    w.write({ sum: 3 });
    expect(w.pos).to.equal(4);
    const start = w.pos;
    w.write({ sum: 2.5, count: 7 });
    expect(dict.names).to.deep.equal(['sum', 'count']);
    const r = new ValueReader(w.buf, dict.names, 0, w.pos);
    expect(r.read()).to.deep.equal({ sum: 3 });
    expect(r.pos).to.equal(start);
    expect(r.read()).to.deep.equal({ sum: 2.5, count: 7 });
    expect(() => decode(w.bytes())).to.throw(RangeError, /unknown field name/);
  });

  it('writes names inline once the dictionary is full, so data-dependent names cannot grow it', () => {
    const dict = new FieldDictionary();
    const w = new ValueWriter(16, dict);
    const wide: Record<string, number> = {};
    for (let i = 0; i < FieldDictionary.MAX_NAMES + 50; i++) wide[`user${i}`] = i;
    w.write(wide);
    expect(dict.names.length).to.equal(FieldDictionary.MAX_NAMES);
    expect(new ValueReader(w.buf, dict.names, 0, w.pos).read()).to.deep.equal(wide);
  });

  it('adopts a file dictionary only when ids agree', () => {
    const dict = new FieldDictionary();
    dict.idOf('a');
    expect(dict.adopt(['a', 'b'])).to.equal(true);
    expect(dict.names).to.deep.equal(['a', 'b']);
    expect(dict.adopt(['a'])).to.equal(true);
    expect(dict.adopt(['b', 'a'])).to.equal(false);
    expect(dict.idOf('c')).to.equal(2);
  });

  it('skips values exactly', () => {
    const values: unknown[] = [
      { a: [1, 'x', { b: new Map([[1, 2n]]) }] },
      'é'.repeat(70),
      new Set([1]),
      new Date(3),
      -5,
      1e300,
    ];
    const w = new ValueWriter();
    const ends: number[] = [];
    for (const v of values) {
      w.write(v);
      ends.push(w.pos);
    }
    const r = new ValueReader(w.buf, [], 0, w.pos);
    for (const end of ends) {
      r.skip();
      expect(r.pos).to.equal(end);
    }
  });

  it('rejects every truncation and trailing bytes with a RangeError', () => {
    const bytes = encode({ s: 'hello', n: [1, 2.5, 300, -7n], d: new Date(1), b: new Uint8Array([1, 2]) });
    for (let len = 0; len < bytes.length; len++) {
      expect(() => decode(bytes.subarray(0, len)), `prefix ${len}`).to.throw(RangeError);
    }
    const longer = new Uint8Array(bytes.length + 1);
    longer.set(bytes);
    expect(() => decode(longer)).to.throw(RangeError, /trailing/);
    expect(() => decode(new Uint8Array([0x3f]))).to.throw(RangeError, /unknown tag/);
  });

  it('rejects values that cannot be restored, with a SluiceError', () => {
    class Account {
      balance = 1;
    }
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    for (const bad of [new Account(), () => 1, Symbol('s'), new Float64Array(2), cyclic, [new WeakMap()]]) {
      let caught: unknown;
      try {
        encode(bad);
      } catch (err) {
        caught = err;
      }
      expect(caught, String(bad)).to.be.instanceOf(SluiceError);
      expect((caught as SluiceError).code).to.equal('STATE_VALUE_UNSUPPORTED');
      expect((caught as SluiceError).hint).to.be.a('string');
    }
  });

  it('encodes keys canonically: -0 as 0 and every NaN alike', () => {
    expect(encodeKey(-0)).to.deep.equal(encodeKey(0));
    const weirdNaN = new Float64Array(new Uint32Array([1, 0x7ff80000]).buffer)[0];
    expect(encodeKey(weirdNaN)).to.deep.equal(encodeKey(NaN));
    expect(encodeKey(['a', 1])).to.deep.equal(encode(['a', 1]));
  });

  it('orders latin1 key strings exactly as their bytes', () => {
    const keys: unknown[] = ['b', 'a', 'aa', 'é', 'z'.repeat(70), 1, 200, -3, 2.5, ['a', 1], ['a', 0], null, true, 5n];
    const byBytes = [...keys].sort((x, y) => compareBytes(encodeKey(x), encodeKey(y)));
    const byString = [...keys].sort((x, y) => {
      const a = encodeKeyString(x);
      const b = encodeKeyString(y);
      return a < b ? -1 : a > b ? 1 : 0;
    });
    expect(byString).to.deep.equal(byBytes);
    for (const k of keys) expect(decodeKeyString(encodeKeyString(k))).to.deep.equal(k);
  });
});
