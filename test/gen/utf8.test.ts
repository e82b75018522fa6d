import { expect } from 'chai';
import { byteString, Utf8ColumnBuilder, utf8At } from '../../lib/gen/utf8.js';

describe('generated utf8 columns', () => {
  it('copies every range of a byte string exactly, whatever its length and alignment', () => {
    const letters = 'abcdefghijklmnopqrstuvwxyz0123456789 ./_:ABCDEFGHIJKLMNOPQRSTUVWXYZ~!';
    const s = byteString(letters);
    const b = new Utf8ColumnBuilder(4, 1);
    const expected: string[] = [];
    for (let start = 0; start < 12; start++) {
      for (let end = start; end <= letters.length; end++) {
        // A byte first, so that values start at every offset relative to 8-byte words.
        b.putByte(0x2d);
        b.putRange(s, start, end);
        b.end();
        expected.push(`-${letters.slice(start, end)}`);
      }
    }
    const col = b.finish();
    expect(Array.from({ length: expected.length }, (_, i) => utf8At(col, i))).to.deep.equal(expected);
  });

  it('refuses bytes beyond ASCII, which a copy by 8-byte words could change', () => {
    expect(() => byteString(new Uint8Array([0x61, 0xf0, 0x7f]))).to.throw(RangeError, /beyond ASCII at 1/);
    expect(() => byteString('café')).to.throw(RangeError, /beyond ASCII/);
    expect(byteString('cafe').bytes).to.deep.equal(new Uint8Array([0x63, 0x61, 0x66, 0x65]));
  });
});
