/**
 * KafkaClient throughput against the librdkafka mock broker (test/support/kafka/mockbroker).
 *
 *   node dist/bench/kafka-client.js [messages=200000] [partitions=8] [runs=3]
 *
 * Produce: KafkaClient.produce of ~150-byte JSON events keyed by user (kafkajs partitioner, acks=all,
 * 1000 per request). Fetch: KafkaClient.fetchRange of every partition's whole range, all partitions
 * concurrently, once on what KafkaClient wrote (~125-record sets per partition) and once on what kcat
 * wrote (large sets): the mock returns one record set per partition per fetch, so set size matters.
 * Prints the median of `runs` runs in events/s, and per second of this process's CPU time (the broker's
 * CPU is not counted), which moves less when other processes compete for the cores.
 */
import { KafkaClient } from '../lib/kafka/client.js';
import type { ProduceMessage } from '../lib/kafka/messages.js';
import { produceWithKcat, startBroker } from '../test/support/kafka-broker.js';

const total = Number(process.argv[2] ?? 200_000);
const partitions = Number(process.argv[3] ?? 8);
const runs = Number(process.argv[4] ?? 3);

function events(n: number): string[] {
  let seed = 42;
  const rnd = (): number => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed / 2147483648;
  };
  const types = ['page_view', 'click', 'purchase'];
  let ts = 1_700_000_000_000;
  return Array.from({ length: n }, () => {
    const u = Math.floor(rnd() * 10_000);
    ts += Math.floor(rnd() * 200);
    return JSON.stringify({
      user_id: `u${u}`,
      session_id: `s${u}_${Math.floor(ts / 3_600_000)}`,
      event_type: types[Math.floor(rnd() * 3)],
      page_url: `https://shop.example.com/p/${Math.floor(rnd() * 500)}`,
      ts,
      amount: Math.round(rnd() * 10000) / 100,
    });
  });
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

async function timed(fn: () => Promise<number>): Promise<{ ms: number; cpu: number; n: number }> {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const n = await fn();
  const ms = performance.now() - t0;
  const c = process.cpuUsage(c0);
  return { ms, cpu: (c.user + c.system) / 1000 / ms, n };
}

async function readAll(client: KafkaClient, topic: string): Promise<{ count: number; bytes: number }> {
  const offsets = await client.fetchOffsets(topic);
  const parts = await Promise.all(offsets.map((o) => client.fetchRange(topic, o.partition, o.low, o.high)));
  let bytes = 0;
  for (const p of parts) for (const m of p) bytes += m.value?.length ?? 0;
  return { count: parts.reduce((s, p) => s + p.length, 0), bytes };
}

function report(label: string, rs: Array<{ ms: number; cpu: number; n: number }>, avgBytes: number): void {
  const rates = rs.map((r) => r.n / (r.ms / 1000));
  const rate = median(rates);
  console.log(
    `${label.padEnd(44)} ${Math.round(rate).toLocaleString('en').padStart(9)} events/s  ` +
      `${((rate * avgBytes) / 1e6).toFixed(1).padStart(5)} MB/s  cpu ${Math.round(median(rs.map((r) => r.cpu)) * 100)}%  ` +
      `${Math.round(median(rs.map((r) => r.n / (r.ms / 1000) / r.cpu))).toLocaleString('en')} events per client CPU-second  ` +
      `(runs: ${rates.map((x) => `${Math.round(x / 1000)}k`).join(', ')})`,
  );
}

async function main(): Promise<void> {
  const lines = events(total);
  const avgBytes = lines.reduce((s, l) => s + l.length, 0) / total;
  const messages: ProduceMessage[] = lines.map((l) => ({ key: l.slice(12, l.indexOf('"', 13)), value: l }));
  console.log(`${total} events of ${avgBytes.toFixed(0)} B over ${partitions} partitions, median of ${runs} runs`);

  const topicsFor = (r: number) => ({ [`kjs${r}`]: partitions, [`kcat${r}`]: partitions });
  const broker = await startBroker({
    topics: Object.assign({}, ...Array.from({ length: runs }, (_, r) => topicsFor(r))),
  });
  const client = await KafkaClient.connect(broker.bootstrap);
  try {
    type Run = Awaited<ReturnType<typeof timed>>;
    const produce: Run[] = [];
    const fetchKjs: Run[] = [];
    const fetchKcat: Run[] = [];
    for (let r = 0; r < runs; r++) {
      produce.push(
        await timed(async () => {
          await client.produce(`kjs${r}`, messages);
          return total;
        }),
      );
      // Pinned partitions: kcat's sticky partitioner for unkeyed records fills some partitions past the
      // mock's 5 MiB limit, which then drops their oldest records.
      for (let p = 0; p < partitions; p++) {
        produceWithKcat(
          broker.bootstrap,
          `kcat${r}`,
          lines.filter((_, i) => i % partitions === p),
          p,
        );
      }
      for (const [topic, into] of [
        [`kjs${r}`, fetchKjs],
        [`kcat${r}`, fetchKcat],
      ] as const) {
        into.push(
          await timed(async () => {
            const { count } = await readAll(client, topic);
            if (count !== total) throw new Error(`read ${count} of ${total} events from ${topic}`);
            return count;
          }),
        );
      }
    }
    report('produce (KafkaClient.produce, acks=all)', produce, avgBytes);
    report('fetchRange, data written by KafkaClient', fetchKjs, avgBytes);
    report('fetchRange, data written by kcat', fetchKcat, avgBytes);
  } finally {
    await client.close();
    await broker.stop();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
