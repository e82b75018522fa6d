import * as fs from 'node:fs';
import { expect } from 'chai';
import type { Dataset } from '../../lib/api/dataset.js';
import {
  approx_count_distinct,
  avg,
  collect_list,
  collect_set,
  count,
  count_by,
  count_distinct,
  first,
  last,
  max,
  max_by,
  min,
  min_by,
  session_window,
  sum,
  top_k,
  window,
} from '../../lib/api/functions.js';
import { Session } from '../../lib/api/session.js';
import type { OutputMode } from '../../lib/sinks/output-mode.js';
import { MemoryStream } from '../../lib/testing/index.js';
import { at, Harness, tmpDir } from './support.js';

type Ev = { user: string; device: string; page: string; ts: number; amount: number | null };
const schema = { user: 'string', device: 'string', page: 'string', ts: 'timestamp', amount: 'double' } as const;

/** Batches of events from a few users, out of order within a bound, some amounts null (a fixed LCG, so failures reproduce). */
function batches(numBatches: number, perBatch: number): Ev[][] {
  let x = 12345;
  const r = (): number => {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    return x / 4294967296;
  };
  let clock = at('00:00:00');
  const out: Ev[][] = [];
  for (let b = 0; b < numBatches; b++) {
    const rows: Ev[] = [];
    for (let i = 0; i < perBatch; i++) {
      clock += Math.floor(r() * 5_000);
      rows.push({
        user: `u${Math.floor(r() * 6)}`,
        device: ['mobile', 'desktop'][Math.floor(r() * 2)],
        page: `/p/${Math.floor(r() * 9)}`,
        ts: clock - Math.floor(r() * 30_000),
        amount: r() < 0.2 ? null : Math.round(r() * 1000) / 100,
      });
    }
    out.push(rows);
  }
  return out;
}

/** Every aggregate, so that each kind of buffer is kept across batches and read back after restarts. */
const aggregates = () => [
  count('*').alias('n'),
  sum('amount').alias('total'),
  avg('amount').alias('mean'),
  min('ts').alias('first_ts'),
  max('page').alias('max_page'),
  first('page').alias('first_page'),
  last('amount', true).alias('last_amount'),
  collect_list('page').alias('pages'),
  collect_list('page', { orderBy: 'ts' }).alias('pages_by_time'),
  collect_set('page').alias('page_set'),
  collect_set('page', { orderBy: 'ts' }).alias('pages_first_seen'),
  count_distinct('device').alias('devices'),
  approx_count_distinct('page').alias('approx_pages'),
  max_by('page', 'ts').alias('exit_page'),
  min_by('device', 'ts').alias('entry_device'),
  top_k('page', 3).alias('top_pages'),
  count_by('device').alias('by_device'),
];

const queries: { name: string; mode: OutputMode; build: (ds: Dataset<Ev>) => Dataset<Record<string, unknown>> }[] = [
  {
    name: 'session windows per user as a changelog, update mode',
    mode: 'update',
    build: (ds) =>
      ds
        .withWatermark('ts', '2 minutes')
        .groupBy('user', session_window('ts', '1 minute'))
        .allowedLateness('1 minute')
        .changelog()
        .agg(...aggregates()),
  },
  {
    name: 'session windows per user and device, append mode',
    mode: 'append',
    build: (ds) =>
      ds
        .withWatermark('ts', '2 minutes')
        .groupBy('user', 'device', session_window('ts', '90 seconds'))
        .agg(...aggregates()),
  },
  {
    name: 'sliding windows per user, update mode',
    mode: 'update',
    build: (ds) =>
      ds
        .withWatermark('ts', '2 minutes')
        .groupBy('user', window('ts', '3 minutes', '1 minute'))
        .allowedLateness('1 minute')
        .agg(...aggregates()),
  },
  {
    name: 'tumbling windows over all users, append mode',
    mode: 'append',
    build: (ds) =>
      ds
        .withWatermark('ts', '2 minutes')
        .groupBy(window('ts', '2 minutes'))
        .agg(...aggregates()),
  },
  {
    name: 'no window, complete mode',
    mode: 'complete',
    build: (ds) => ds.groupBy('device').agg(...aggregates()),
  },
];

/** Output of each batch, by batch id, with Dates as ISO text (deep-equal friendly). */
function normalise(outputs: Map<number, Record<string, unknown>[]>): [number, string][] {
  return [...outputs].sort((a, b) => a[0] - b[0]).map(([id, rows]) => [id, JSON.stringify(rows)]);
}

describe('windows: state kept in memory between batches equals state read back after a restart', () => {
  const dirs: string[] = [];
  after(() => {
    for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
  });
  const data = batches(10, 40);

  for (const q of queries) {
    it(`${q.name}: restarting after every batch gives the same output in every batch`, async () => {
      const straight = await Harness.start<Ev>({ schema, mode: q.mode, build: q.build, statePartitions: 3 });
      for (const rows of data) await straight.step(rows);
      await straight.stop();

      const ckpt = tmpDir();
      dirs.push(ckpt);
      const restarted = new Map<number, Record<string, unknown>[]>();
      for (let b = 0; b < data.length; b++) {
        const session = Session.local({ statePartitions: 3 });
        const input = new MemoryStream<Ev>(session, schema);
        // The batches before this one are already committed in the checkpoint: the query resumes after them.
        for (let k = 0; k < b; k++) input.addData(data[k]);
        const h = await Harness.start<Ev>({ schema, mode: q.mode, build: q.build, checkpoint: ckpt, session, input });
        await h.step(data[b]);
        await h.stop();
        for (const [id, rows] of h.outputs) restarted.set(id, rows);
      }
      expect(straight.outputs.size).to.be.greaterThan(data.length - 1);
      expect(normalise(restarted)).to.deep.equal(normalise(straight.outputs));
    });
  }
});
