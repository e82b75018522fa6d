import { expect } from 'chai';
import { crc32c } from '../../lib/kafka/protocol/crc32c.js';

/** The record batch checksum: RFC 3720's test vectors, and a bit-at-a-time reference on every length up to 100. */
describe('crc32c', () => {
  it("gives RFC 3720's check values", () => {
    expect(crc32c(Buffer.from('123456789'))).to.equal(0xe3069283);
    expect(crc32c(new Uint8Array(32))).to.equal(0x8a9136aa);
    expect(crc32c(new Uint8Array(32).fill(0xff))).to.equal(0x62a8ab43);
    expect(crc32c(Uint8Array.from({ length: 32 }, (_, i) => i))).to.equal(0x46dd794e);
    expect(crc32c(new Uint8Array(0))).to.equal(0);
  });

  it('matches the bit-at-a-time definition at every length and offset', () => {
    const bitwise = (b: Uint8Array): number => {
      let c = 0xffffffff;
      for (const x of b) {
        c ^= x;
        for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
      }
      return (c ^ 0xffffffff) >>> 0;
    };
    const bytes = Uint8Array.from({ length: 120 }, (_, i) => (i * 181 + 7) & 0xff);
    for (let start = 0; start < 9; start++)
      for (let len = 0; len <= 100; len++) {
        const view = bytes.subarray(start, start + len);
        expect(crc32c(view), `offset ${start} length ${len}`).to.equal(bitwise(view));
      }
  });
});
