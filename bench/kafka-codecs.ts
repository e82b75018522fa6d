/**
 * Benchmark: Kafka compression codecs. One topic per codec (none, gzip, snappy, lz4, zstd), each holding the
 * same JSON events written by kcat (librdkafka, `-z CODEC`) into the test broker (8 partitions, so that its
 * ~5 MB per partition keeps them all), then:
 *
 * 1. Decoders: every candidate library decompresses the records sections of those record batches (as
 *    librdkafka wrote them: zstd frames without a content size, LZ4 frames of 64 KiB blocks, raw snappy),
 *    timed in CPU seconds (best of `runs`); MB/s of decompressed bytes and records/s. Candidates that are not
 *    in node_modules are looked up in `--candidates DIR` (a folder where they were installed with
 *    `npm install --prefix DIR ...`) and skipped when absent there too. Then sluice's whole decoder
 *    (decompression and records) per codec.
 * 2. End to end: the sluice Kafka source -> no-op sink (bench/apps/kafka-events.ts, threads 0, JSON values
 *    parsed into Arrow), events/s per codec and the ratio to the uncompressed topic, medians of `runs`; also
 *    events per CPU second of this process (the query runs in it), which a machine shared with other work
 *    disturbs much less than the wall clock.
 *
 *   node dist/bench/kafka-codecs.js [events=200000] [runs=3] [--candidates DIR]
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadApp, runApp } from '../lib/app/app-runner.js';
import { COMPRESSION_TYPES, type CompressionType, codecById } from '../lib/kafka/protocol/compression.js';
import { decodeRecordBatches } from '../lib/kafka/protocol/record-batch.js';
import { startBroker } from '../test/support/kafka-broker.js';
import { type StoredBatch, storedBatches } from '../test/support/kafka-stored-batches.js';
import { kafkaBenchEvents, median } from './support.js';

const args = process.argv.slice(2);
const flag = args.indexOf('--candidates');
const CANDIDATES_DIR = flag >= 0 ? path.resolve(args.splice(flag, 2)[1]) : null;
const EVENTS = Number(args[0] ?? 200_000);
const RUNS = Number(args[1] ?? 3);
/** The test broker keeps about 5 MB per partition: enough partitions that no event is dropped. */
const PARTITIONS = 8;
const PER_TRIGGER = 50_000;

type Decompress = (data: Buffer) => Uint8Array | Promise<Uint8Array>;

/** A candidate library: its package and how it decompresses one records section. */
interface Candidate {
  codec: Exclude<CompressionType, 'none'>;
  label: string;
  pkg: string | null;
  load: (lib: unknown) => Decompress | Promise<Decompress>;
}

const CANDIDATES: Candidate[] = [
  { codec: 'gzip', label: 'node:zlib gunzipSync (chosen)', pkg: null, load: () => codecById(1).decompress },
  { codec: 'snappy', label: 'snappy, napi-rs (chosen)', pkg: null, load: () => codecById(2).decompress },
  {
    codec: 'snappy',
    label: 'snappyjs, pure JS',
    pkg: 'snappyjs',
    load: (lib) => (d) => (lib as { uncompress(d: Uint8Array): Uint8Array }).uncompress(d),
  },
  {
    codec: 'lz4',
    label: 'lz4-napi blocks + sluice frame parsing (chosen)',
    pkg: null,
    load: () => codecById(3).decompress,
  },
  {
    codec: 'lz4',
    label: "lz4-napi's own frame decoder",
    pkg: 'lz4-napi',
    load: (lib) => (lib as { decompressFrameSync(d: Buffer): Buffer }).decompressFrameSync,
  },
  {
    codec: 'lz4',
    label: 'lz4js, pure JS',
    pkg: 'lz4js',
    load: (lib) => (d) => (lib as { decompress(d: Uint8Array): Uint8Array }).decompress(d),
  },
  { codec: 'zstd', label: '@mongodb-js/zstd 1.2.2, napi-rs (chosen)', pkg: null, load: () => codecById(4).decompress },
  {
    codec: 'zstd',
    label: '@bokuweb/zstd-wasm, wasm',
    pkg: '@bokuweb/zstd-wasm',
    load: async (lib) => {
      const z = lib as { init(): Promise<void>; decompress(d: Uint8Array): Uint8Array };
      await z.init();
      return (d) => z.decompress(d);
    },
  },
  {
    codec: 'zstd',
    label: 'fzstd, pure JS',
    pkg: 'fzstd',
    load: (lib) => (d) => (lib as { decompress(d: Uint8Array): Uint8Array }).decompress(d),
  },
];

const here = createRequire(import.meta.url);
const there = CANDIDATES_DIR ? createRequire(path.join(CANDIDATES_DIR, 'node_modules', 'index.js')) : null;

/** The package from the repository's node_modules, else from --candidates DIR; null when in neither. */
function loadPackage(pkg: string): unknown {
  for (const req of [here, there]) {
    try {
      if (req) return req(pkg);
    } catch {
      // not installed there
    }
  }
  return null;
}

const fmt = (x: number): string => Math.round(x).toLocaleString('en').padStart(12);

/** CPU seconds (all threads) of `fn`, best of RUNS. */
async function cpuBest(fn: () => Promise<void>): Promise<number> {
  let best = Infinity;
  for (let r = 0; r < Math.max(RUNS, 5); r++) {
    const start = process.cpuUsage();
    await fn();
    const u = process.cpuUsage(start);
    best = Math.min(best, (u.user + u.system) / 1e6);
  }
  return best;
}

async function decoders(batches: Map<CompressionType, StoredBatch[]>): Promise<void> {
  console.log('\n1. Decompressing the records sections of the batches kcat wrote (per CPU second, best run):');
  console.log(`  ${'codec'.padEnd(7)} ${'library'.padEnd(48)} ${'MB/s'.padStart(12)} ${'records/s'.padStart(12)}`);
  for (const c of CANDIDATES) {
    const lib = c.pkg ? loadPackage(c.pkg) : undefined;
    if (lib === null) {
      console.log(`  ${c.codec.padEnd(7)} ${c.label.padEnd(48)}  not installed (see --candidates)`);
      continue;
    }
    const decompress = await c.load(lib);
    const sections = (batches.get(c.codec) ?? []).filter((b) => b.compression === COMPRESSION_TYPES.indexOf(c.codec));
    const reference = await Promise.all(sections.map((b) => codecById(b.compression).decompress(b.bytes.subarray(61))));
    let bytes = 0;
    let records = 0;
    const cpu = await cpuBest(async () => {
      bytes = 0;
      records = 0;
      for (const [i, b] of sections.entries()) {
        const out = await decompress(b.bytes.subarray(61));
        if (out.length !== reference[i].length)
          throw new Error(`${c.label} decoded ${out.length} bytes, not ${reference[i].length}`);
        bytes += out.length;
        records += b.records;
      }
    });
    console.log(`  ${c.codec.padEnd(7)} ${c.label.padEnd(48)} ${fmt(bytes / 1e6 / cpu)} ${fmt(records / cpu)}`);
  }
  console.log("\n   sluice's whole decoder (decompression and records, views of the decompressed bytes):");
  for (const codec of COMPRESSION_TYPES) {
    const set = batches.get(codec)!;
    let records = 0;
    const cpu = await cpuBest(async () => {
      records = 0;
      for (const b of set) {
        const size = Buffer.alloc(4);
        size.writeInt32BE(b.bytes.length);
        records += (await decodeRecordBatches(Buffer.concat([size, b.bytes])))!.records.length;
      }
    });
    const stored = set.reduce((a, b) => a + b.bytes.length, 0);
    console.log(
      `  ${codec.padEnd(7)} ${fmt(records / cpu)} records/s   ${set.length} batches, ${(stored / 1e6).toFixed(1)} MB on the topic`,
    );
  }
}

async function main(): Promise<void> {
  console.log(
    `kafka-codecs: ${EVENTS.toLocaleString('en')} events per codec, ${PARTITIONS} partitions, ${RUNS} runs; load average: ${os
      .loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}`,
  );
  const broker = await startBroker({
    brokers: 1,
    topics: Object.fromEntries(COMPRESSION_TYPES.map((c) => [c, PARTITIONS])),
  });
  try {
    const { lines } = kafkaBenchEvents(EVENTS, 10_000);
    const avg = lines.reduce((a, l) => a + l.length, 0) / lines.length;
    const batches = new Map<CompressionType, StoredBatch[]>();
    for (const codec of COMPRESSION_TYPES) {
      const all: StoredBatch[] = [];
      for (let p = 0; p < PARTITIONS; p++) {
        const part = lines.filter((_, i) => i % PARTITIONS === p);
        const r = spawnSync(
          'kcat',
          [
            ...['-b', broker.bootstrap, '-P', '-t', codec, '-p', String(p), '-z', codec],
            ...['-X', 'linger.ms=50', '-X', 'batch.num.messages=1000'],
          ],
          { input: part.map((l) => `${l}\n`).join(''), encoding: 'utf8', maxBuffer: 1 << 30, timeout: 300_000 },
        );
        if (r.status !== 0) throw new Error(`kcat -z ${codec} failed: ${r.stderr}`);
        all.push(...(await storedBatches(broker.bootstrap, codec, p)));
      }
      batches.set(codec, all);
    }
    console.log(`input: JSON events of ${avg.toFixed(0)} bytes, written by kcat in batches of up to 1000 records`);
    await decoders(batches);

    const app = await loadApp(fileURLToPath(new URL('./apps/kafka-events.js', import.meta.url)));
    const results = new Map<CompressionType, number[]>();
    const perCpu = new Map<CompressionType, number[]>();
    for (let r = 0; r < RUNS; r++) {
      for (const codec of COMPRESSION_TYPES) {
        const ckpt = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-bench-codecs-'));
        const t0 = performance.now();
        const cpu0 = process.cpuUsage();
        let rows = 0;
        const { queries } = await runApp(app, {
          sources: [
            `kafka://${broker.bootstrap}/${codec}?startingOffsets=earliest&maxOffsetsPerTrigger=${PER_TRIGGER}`,
          ],
          sinks: ['noop:'],
          checkpoint: ckpt,
          trigger: { availableNow: true },
          threads: 0,
          onProgress: (_o, p) => {
            rows += p.numInputRows;
          },
        });
        await Promise.all([...queries.values()].map((q) => q.awaitTermination()));
        const ms = performance.now() - t0;
        const cpu = process.cpuUsage(cpu0);
        perCpu.set(codec, [...(perCpu.get(codec) ?? []), EVENTS / ((cpu.user + cpu.system) / 1e6)]);
        fs.rmSync(ckpt, { recursive: true, force: true });
        if (rows !== EVENTS) throw new Error(`${codec}: the query read ${rows} rows, not ${EVENTS}`);
        results.set(codec, [...(results.get(codec) ?? []), EVENTS / (ms / 1000)]);
      }
    }
    console.log('\n2. Kafka source -> JSON -> no-op sink, threads 0 (events/s, median):');
    for (const [label, table] of [
      ['events/s (wall clock)', results],
      ['events per CPU second', perCpu],
    ] as const) {
      console.log(`  ${label}:`);
      const none = median(table.get('none')!);
      for (const [codec, xs] of table) {
        console.log(
          `  ${codec.padEnd(7)} ${fmt(median(xs))}   ratio to none ${(median(xs) / none).toFixed(2)}   runs: ${xs.map((x) => Math.round(x)).join(', ')}`,
        );
      }
    }
    console.log(
      `\nload average after: ${os
        .loadavg()
        .map((l) => l.toFixed(2))
        .join(' ')}`,
    );
  } finally {
    await broker.stop();
  }
}

await main();
