/**
 * Benchmark: the Kafka sink's partitioner, murmur2 of each record's key (lib/kafka/murmur2.ts), against kafkajs'
 * default partitioner (the same hash on 64-bit longs) as the baseline, over bank-account's keys.
 *
 *   node dist/bench/kafka-partitioner.js [keys=1000000] [runs=5]
 *
 * Prints keys per second of each, medians of the runs taken in turn, and their ratio.
 */
import kafkajs from 'kafkajs';
import { idOf } from '../lib/gen/common.js';
import { murmur2 } from '../lib/kafka/murmur2.js';
import { median } from './support.js';

const KEYS = Number(process.argv[2] ?? 1_000_000);
const RUNS = Number(process.argv[3] ?? 5);
const PARTITIONS = 8;
const keys = Array.from({ length: KEYS }, (_, i) => Buffer.from(idOf('acct', (i * 7919) % 10_000, 10_000)));
const partitionMetadata = Array.from({ length: PARTITIONS }, (_, partitionId) => ({
  partitionId,
  leader: 1,
  partitionErrorCode: 0,
  replicas: [1],
  isr: [1],
}));
const kafkajsPartitioner = kafkajs.Partitioners.DefaultPartitioner();

/** Keys per second of `partition` over every key; the sum of the partitions keeps the work from being dropped. */
function timed(partition: (key: Buffer) => number): { perSecond: number; sum: number } {
  const t0 = process.hrtime.bigint();
  let sum = 0;
  for (const key of keys) sum += partition(key);
  return { perSecond: KEYS / (Number(process.hrtime.bigint() - t0) / 1e9), sum };
}

const ours: number[] = [];
const theirs: number[] = [];
for (let r = 0; r < RUNS; r++) {
  const a = timed((key) => kafkajsPartitioner({ topic: 't', partitionMetadata, message: { key, value: null } }));
  const b = timed((key) => (murmur2(key) & 0x7fffffff) % PARTITIONS);
  if (a.sum !== b.sum) throw new Error(`the partitioners disagree: ${a.sum} against ${b.sum}`);
  theirs.push(a.perSecond);
  ours.push(b.perSecond);
  console.log(`run ${r + 1}: kafkajs ${Math.round(a.perSecond)} keys/s, sluice ${Math.round(b.perSecond)} keys/s`);
}
console.log(
  `median: kafkajs ${Math.round(median(theirs))} keys/s, sluice ${Math.round(median(ours))} keys/s, ratio ${(median(ours) / median(theirs)).toFixed(1)}x`,
);
