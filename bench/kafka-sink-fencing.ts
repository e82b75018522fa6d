/**
 * Benchmark: what fencing by producer epoch costs the Kafka sink, against the claim check alone.
 *
 *   node dist/bench/kafka-sink-fencing.js [--batches 200] [--rows 10,1000] [--runs 5] [--rtt 0]
 *
 * Writes `--batches` batches of each size through KafkaSink (prepareBatch, then addBatch, as the engine calls
 * them) to a 4-partition topic of the test broker, once with `fencing=claim` (the baseline) and once with
 * `fencing=epoch` (each batch one transaction: AddPartitionsToTxn, transactional Produce, EndTxn), the two
 * alternating over `--runs` runs, each on a fresh checkpoint. Prints per configuration the medians of ms per
 * batch and events/s, and the ratio of epoch to claim. `--rtt MS` makes the broker answer every request MS
 * later (the mock's round-trip time), to see the two extra round trips on a network.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Table } from 'apache-arrow';
import { batchFromRows } from '../lib/arrow/columns.js';
import { schemaFromSpec } from '../lib/arrow/schema.js';
import { KafkaSink } from '../lib/sinks/kafka-sink.js';
import { startBroker } from '../test/support/kafka-broker.js';
import { median } from './support.js';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : fallback;
}

const batches = Number(arg('batches', '200'));
const sizes = arg('rows', '10,1000').split(',').map(Number);
const runs = Number(arg('runs', '5'));
const rtt = Number(arg('rtt', '0'));

function table(rows: number, batch: number): Table {
  const data = Array.from({ length: rows }, (_, i) => ({
    key: `user${(batch * rows + i) % 997}`,
    value: JSON.stringify({ batch, i, amount: (i * 37) % 1000, note: 'a short payload of some sixty bytes...' }),
  }));
  return new Table([batchFromRows(data, schemaFromSpec({ key: 'string', value: 'string' }))]);
}

const broker = await startBroker({ brokers: 1 });
if (rtt > 0) await broker.command(`rtt 1 ${rtt}`);
const root = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-bench-fencing-'));
let n = 0;

/** ms per batch of `rows` rows with `fencing`. */
async function run(fencing: 'claim' | 'epoch', rows: number): Promise<number> {
  const topic = `out${++n}`;
  await broker.command(`topic ${topic} 4`);
  const sink = new KafkaSink({ bootstrap: broker.bootstrap, topic, fencing });
  await sink.initialize({ queryId: `q${n}`, checkpointDir: path.join(root, `ck${n}`), outputMode: 'append' });
  const tables = Array.from({ length: batches }, (_, b) => table(rows, b));
  const t0 = performance.now();
  for (let b = 0; b < batches; b++) {
    await sink.prepareBatch(b);
    await sink.addBatch(b, tables[b]);
  }
  const ms = (performance.now() - t0) / batches;
  await sink.close();
  return ms;
}

try {
  console.log(`Kafka sink, ${batches} batches per run, ${runs} runs alternating, broker rtt ${rtt} ms`);
  console.log('rows/batch | fencing | ms/batch (median) | events/s | epoch / claim');
  for (const rows of sizes) {
    await run('epoch', rows); // warm-up: connections, JIT
    const ms: Record<'claim' | 'epoch', number[]> = { claim: [], epoch: [] };
    for (let r = 0; r < runs; r++) {
      ms.claim.push(await run('claim', rows));
      ms.epoch.push(await run('epoch', rows));
    }
    const claim = median(ms.claim);
    const epoch = median(ms.epoch);
    const ratios = ms.epoch.map((e, i) => e / ms.claim[i]);
    for (const [name, m] of [
      ['claim', claim],
      ['epoch', epoch],
    ] as const) {
      const ratio = name === 'epoch' ? `${median(ratios).toFixed(2)}x` : '1 (baseline)';
      console.log(
        `${rows} | ${name} | ${m.toFixed(2)} | ${Math.round((rows * 1000) / m).toLocaleString('en-US')} | ${ratio}`,
      );
    }
  }
} finally {
  await broker.stop();
  fs.rmSync(root, { recursive: true, force: true });
}
