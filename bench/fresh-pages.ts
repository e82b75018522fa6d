/**
 * What growing a state store's byte buffers costs on this machine: appending records of q19's size (a top-10
 * state of ~1.5 KB under a short key) to a buffer that grows step by step, as the arena did at each insert,
 * against one sized once for the whole commit, as it is now; and writing the same bytes into pages already
 * touched. Each growth step copies into freshly mapped pages, and the first write to a fresh page costs far more
 * than the copy on some virtual machines (this one included), so the step-by-step case pays for every byte
 * it ever copied.
 *
 *   node dist/bench/fresh-pages.js [records=120000] [runs=3]
 *
 * Prints records/s per case (medians of `runs`, the cases alternated) and the ratio of each to the
 * step-by-step baseline.
 */
import { ValueWriter } from '../lib/state/value-codec.js';
import { median } from './support.js';

const records = Number(process.argv[2] ?? 120_000);
const runs = Number(process.argv[3] ?? 3);
const KEY = new Uint8Array(12).fill(0x41);
const VALUE = new Uint8Array(1_500).fill(0x7f);
/** The arena's growth factor (lib/state/arena-hash-map.ts). */
const GROWTH = 1.5;

function append(w: ValueWriter): void {
  for (let i = 0; i < records; i++) {
    w.raw(KEY);
    w.raw(VALUE);
  }
}

const cases: Record<string, (reused: ValueWriter) => void> = {
  'grown step by step (baseline)': () => append(new ValueWriter(4096, null, false, GROWTH)),
  'reserved once': () => {
    const w = new ValueWriter(4096, null, false, GROWTH);
    w.ensure(records * (KEY.length + VALUE.length));
    append(w);
  },
  'pages already touched': (reused) => {
    reused.reset();
    append(reused);
  },
};

const reused = new ValueWriter(records * (KEY.length + VALUE.length) + 16);
append(reused);
const rates = new Map<string, number[]>(Object.keys(cases).map((name) => [name, []]));
for (let r = 0; r < runs; r++) {
  for (const [name, run] of Object.entries(cases)) {
    const started = performance.now();
    run(reused);
    rates.get(name)!.push(records / ((performance.now() - started) / 1000));
  }
}
const mb = (records * (KEY.length + VALUE.length)) / 2 ** 20;
console.log(
  `${records.toLocaleString('en-US')} records of ${KEY.length + VALUE.length} bytes (${mb.toFixed(0)} MB), medians of ${runs}`,
);
const baseline = median(rates.get('grown step by step (baseline)')!);
for (const [name, xs] of rates) {
  const m = median(xs);
  console.log(
    `${name.padEnd(30)} ${Math.round(m).toLocaleString('en-US').padStart(12)} records/s  ${((m * (KEY.length + VALUE.length)) / 2 ** 20).toFixed(0).padStart(6)} MB/s  ${(m / baseline).toFixed(2)}x`,
  );
}
