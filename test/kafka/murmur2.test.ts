import { expect } from 'chai';
import kafkajs from 'kafkajs';
import { murmur2 } from '../../lib/kafka/murmur2.js';

describe('murmur2: the hash of Kafka keys', () => {
  it("gives Java's values (Kafka's own test vectors)", () => {
    const vectors: Array<[string, number]> = [
      ['21', -973932308],
      ['foobar', -790332482],
      ['a-little-bit-long-string', -985981536],
      ['a-little-bit-longer-string', -1486304829],
      ['lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8', -58897971],
      ['abc', 479470107],
    ];
    for (const [key, hash] of vectors) {
      expect(murmur2(key), key).to.equal(hash);
      expect(murmur2(Buffer.from(key)), key).to.equal(hash);
    }
  });

  it("picks the partition kafkajs' default partitioner picks, for keys of every length and byte", () => {
    const partitioner = kafkajs.Partitioners.DefaultPartitioner();
    const partitionMetadata = Array.from({ length: 7 }, (_, partitionId) => ({
      partitionId,
      leader: 1,
      partitionErrorCode: 0,
      replicas: [1],
      isr: [1],
    }));
    let seed = 7;
    const byte = () => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return seed >>> 16;
    };
    const keys: Array<Buffer | string> = [
      Buffer.alloc(0),
      '',
      'ü',
      'käse-€',
      '😀 emoji',
      'x'.repeat(400),
      'é'.repeat(700),
    ];
    for (let n = 0; n < 300; n++) keys.push(Buffer.from(Array.from({ length: n % 37 }, () => byte() & 0xff)));
    for (const key of keys) {
      const expected = partitioner({ topic: 't', partitionMetadata, message: { key, value: null } });
      expect((murmur2(key) & 0x7fffffff) % 7, String(key)).to.equal(expected);
    }
  });
});
