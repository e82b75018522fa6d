/**
 * Hand-written single loops for Nexmark q0 and q5, the floor the engine is measured against in the cost
 * model (BENCHMARKS.md): the same generator and the same columns, then the query's work with plain typed
 * arrays and Maps in one thread, no engine, no checkpoint, no state store.
 *
 *   node dist/bench/nexmark/loop.js [--query q5] [--events 10000000] [--runs 3]
 *
 * q0: generate every event into columns and read the bid columns once. q5: additionally count bids per
 * (10 s window sliding by 2 s, auction), advance the watermark (largest event time − 4 s) after every
 * million events as the engine's batches do, and emit the top auctions of each window the watermark closes;
 * at the end of the input every window still open is emitted, as the engine's end-of-input watermark does.
 */
import { NexmarkGenerator } from '../../lib/gen/nexmark.js';
import { cpuSeconds, median } from '../support.js';

const TWO_POW_32 = 4294967296;
const CHUNK = 32_768;
const BATCH = 1_000_000;

function argOf(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : fallback;
}

/** Runs `events` events through the loop of `query`; returns a checksum so the work cannot be skipped. */
function loop(query: string, events: number): number {
  const g = new NexmarkGenerator({ seed: 0, firstEventRate: Math.max(1, Math.round(events / 10)) });
  const counts = new Map<number, Map<number, number>>();
  let maxTs = -Infinity;
  let check = 0;
  for (let b = 0; b < events; b += BATCH) {
    for (let s = b; s < Math.min(events, b + BATCH); s += CHUNK) {
      const cols = g.columns(s, Math.min(CHUNK, events - s));
      const bid = cols.bid;
      const auction = new Int32Array(bid.auction.buffer, bid.auction.byteOffset, bid.length * 2);
      const time = new Int32Array(bid.dateTime.buffer, bid.dateTime.byteOffset, bid.length * 2);
      if (query === 'q0') {
        const price = new Int32Array(bid.price.buffer, bid.price.byteOffset, bid.length * 2);
        for (let i = 0; i < bid.length; i++)
          check = (check + auction[2 * i] + price[2 * i] + bid.extra.offsets[i + 1]) | 0;
        continue;
      }
      for (let i = 0; i < bid.length; i++) {
        const t = time[2 * i + 1] * TWO_POW_32 + (time[2 * i] >>> 0);
        if (t > maxTs) maxTs = t;
        const a = auction[2 * i];
        for (let start = t - (t % 2000); start > t - 10_000; start -= 2000) {
          let m = counts.get(start);
          if (!m) {
            m = new Map();
            counts.set(start, m);
          }
          m.set(a, (m.get(a) ?? 0) + 1);
        }
      }
    }
    const watermark = b + BATCH >= events ? Infinity : maxTs - 4000;
    for (const [start, m] of counts) {
      if (start + 10_000 > watermark) continue;
      let max = 0;
      for (const n of m.values()) if (n > max) max = n;
      for (const [a, n] of m) if (n === max) check = (check + a) | 0;
      counts.delete(start);
    }
  }
  return check;
}

const query = argOf('query', 'q5');
const events = Number(argOf('events', '10000000'));
const runs = Number(argOf('runs', '3'));
const perCore: number[] = [];
for (let r = 1; r <= runs; r++) {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const check = loop(query, events);
  const cpu = cpuSeconds(c0);
  perCore.push(events / cpu);
  console.log(
    `${query} loop run ${r}: ${Math.round(events / cpu).toLocaleString('en-US')} events per CPU-second (${((performance.now() - t0) / 1000).toFixed(2)} s wall, ${cpu.toFixed(2)} s CPU, check ${check})`,
  );
}
console.log(
  `${query} hand-written loop, ${events.toLocaleString('en-US')} events: median ${Math.round(median(perCore)).toLocaleString('en-US')} events per CPU-second`,
);
