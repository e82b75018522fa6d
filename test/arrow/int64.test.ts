import { Int64, TimestampMillisecond, TimestampSecond, Uint64 } from 'apache-arrow';
import { expect } from 'chai';
import { batchOf, int64ToNumbers, mkData, schemaFromSpec, valuesOf } from '../../lib/arrow/index.js';
import type { BatchContext } from '../../lib/exec/batch-context.js';
import { runFragment } from '../../lib/exec/task-runner.js';
import type { PlanNode } from '../../lib/plan/logical-plan.js';

/** int64 values where a two-word read could go wrong: signs, the 32-bit boundary, beyond 2^53 (rounding). */
const EDGES = [
  0n,
  1n,
  -1n,
  2n ** 31n,
  -(2n ** 31n),
  2n ** 32n - 1n,
  2n ** 32n,
  -(2n ** 32n),
  -(2n ** 32n) - 1n,
  2n ** 53n - 1n,
  -(2n ** 53n - 1n),
  2n ** 53n + 1n,
  2n ** 54n + 3n,
  -(2n ** 55n) - 5n,
  2n ** 63n - 1n,
  -(2n ** 63n),
  1_700_000_000_123n,
  -62_135_596_800_000n,
];

describe('int64 columns as numbers', () => {
  it('int64ToNumbers gives Number(v) × scale for signed and unsigned values, exact or correctly rounded', () => {
    const signed = BigInt64Array.from(EDGES);
    expect(Array.from(int64ToNumbers(signed))).to.deep.equal(EDGES.map((v) => Number(v)));
    expect(Array.from(int64ToNumbers(signed, 1000))).to.deep.equal(EDGES.map((v) => Number(v) * 1000));
    const unsignedValues = [0n, 2n ** 32n + 7n, 2n ** 63n, 2n ** 64n - 1n, 2n ** 53n + 1n];
    expect(Array.from(int64ToNumbers(BigUint64Array.from(unsignedValues)))).to.deep.equal(
      unsignedValues.map((v) => Number(v)),
    );
    const view = new BigInt64Array(signed.buffer, 8 * 3, 4);
    expect(Array.from(int64ToNumbers(view, 1, 2))).to.deep.equal(EDGES.slice(3, 5).map((v) => Number(v)));
  });

  it('valuesOf reads longs and timestamps with nulls, slices and units', () => {
    const n = EDGES.length;
    const valid = new Uint8Array((n + 7) >> 3);
    for (let i = 0; i < n; i++) if (i % 3 !== 1) valid[i >> 3] |= 1 << (i & 7);
    const nulls = EDGES.filter((_, i) => i % 3 === 1).length;
    const expected = (f: (v: bigint) => unknown) => EDGES.map((v, i) => (i % 3 === 1 ? null : f(v)));
    const longs = mkData({
      type: new Int64(),
      length: n,
      nullCount: nulls,
      nullBitmap: valid,
      data: BigInt64Array.from(EDGES),
    });
    expect(valuesOf(longs)).to.deep.equal(expected((v) => Number(v)));
    expect(valuesOf(longs.slice(2, 3))).to.deep.equal(expected((v) => Number(v)).slice(2, 5));
    const unsigned = mkData({
      type: new Uint64(),
      length: 2,
      nullCount: 0,
      data: BigUint64Array.from([2n ** 64n - 1n, 5n]),
    });
    expect(valuesOf(unsigned)).to.deep.equal([Number(2n ** 64n - 1n), 5]);
    const times = EDGES.filter((v) => v > -(2n ** 40n) && v < 2n ** 40n);
    const ms = mkData({
      type: new TimestampMillisecond('UTC'),
      length: times.length,
      nullCount: 0,
      data: BigInt64Array.from(times),
    });
    expect(valuesOf(ms)).to.deep.equal(times.map((v) => new Date(Number(v))));
    const secs = mkData({
      type: new TimestampSecond('UTC'),
      length: 2,
      nullCount: 0,
      data: BigInt64Array.from([1_700_000_000n, -5n]),
    });
    expect(valuesOf(secs)).to.deep.equal([new Date(1_700_000_000_000), new Date(-5000)]);
  });

  it('the watermark statistics of a fragment read int64 event times exactly, skipping nulls', async () => {
    const schema = schemaFromSpec({ ts: 'timestamp', n: 'long' });
    const values = [1_700_000_000_123n, 1_700_000_999_999n, -5n, 2n ** 40n + 1n, 7n];
    const valid = new Uint8Array([0b11101]);
    const ts = mkData({
      type: schema.fields[0].type,
      length: 5,
      nullCount: 1,
      nullBitmap: valid,
      data: BigInt64Array.from(values),
    });
    const nums = mkData({ type: schema.fields[1].type, length: 5, nullCount: 0, data: BigInt64Array.from(values) });
    const batch = batchOf(schema, [ts, nums], 5);
    const plan = (column: string): Map<number, PlanNode> =>
      new Map([
        [
          2,
          {
            kind: 'watermark',
            id: 2,
            input: {
              kind: 'source',
              id: 1,
              description: 's',
              create: () => {
                throw new Error('unused');
              },
            },
            column,
            delayMs: 0,
          } as PlanNode,
        ],
      ]);
    const ctx = {
      batchId: 0,
      batchTimestampMs: 0,
      watermarkMs: 0,
      checkpointDir: '',
      numStatePartitions: 1,
      outputMode: 'append',
      eventTimeColumns: {},
      minStateVersionToKeep: 0,
    } as BatchContext;
    const kept = [values[0], values[2], values[3], values[4]].map((v) => Number(v));
    const withNull = await runFragment(plan('ts'), { chain: [2] }, [batch], ctx);
    expect(withNull.metrics.eventTime[2]).to.deep.equal({
      max: Math.max(...kept),
      min: Math.min(...kept),
      sum: kept.reduce((a, b) => a + b, 0),
      count: 4,
    });
    const all = values.map((v) => Number(v));
    const noNull = await runFragment(plan('n'), { chain: [2] }, [batch], ctx);
    expect(noNull.metrics.eventTime[2]).to.deep.equal({
      max: Math.max(...all),
      min: Math.min(...all),
      sum: all.reduce((a, b) => a + b, 0),
      count: 5,
    });
  });
});
