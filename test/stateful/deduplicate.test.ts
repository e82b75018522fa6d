import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { expect } from 'chai';
import { Session } from '../../lib/api/session.js';
import type { SluiceError } from '../../lib/errors.js';
import type { QueryProgress } from '../../lib/exec/progress.js';
import { ManualClock, MemoryStream } from '../../lib/testing/index.js';

type Event = { id: string; user: string; ts: Date };
const SCHEMA = { id: 'string', user: 'string', ts: 'timestamp' } as const;
const DELAY_MS = 10_000;

/** Batches of events with repeated ids: resent a little later (retries), much later, and some late events. */
function eventBatches(): Event[][] {
  const out: Event[][] = [];
  for (let b = 0; b < 6; b++) {
    const rows: Event[] = [];
    for (let i = 0; i < 12; i++) {
      const n = b * 12 + i;
      const id = `e${(n * 7) % 23}`;
      const ts = b * 8_000 + ((i * 3_001) % 9_000) - (i % 5 === 0 ? 15_000 : 0);
      rows.push({ id, user: `u${n % 3}`, ts: new Date(Math.max(0, ts)) });
    }
    out.push(rows);
  }
  return out;
}

interface Reference {
  rows: Event[];
  dropped: number[];
  late: number[];
}

/**
 * Spark's semantics as a plain loop: the batch watermark trails the largest event time of earlier batches by
 * the delay; keys expire at event time (the event-time column in the key) or event time plus the delay (within
 * the watermark), checked when each batch starts (sluice runs a no-data batch when the watermark moves).
 */
function reference(
  batches: Event[][],
  keyOf: (e: Event) => string,
  expiry: ((e: Event) => number) | null,
  within: boolean,
): Reference {
  const state = new Map<string, number>();
  let wm = 0;
  let maxEt = -Infinity;
  const out: Reference = { rows: [], dropped: [], late: [] };
  for (const batch of batches) {
    for (const [k, exp] of state) if (expiry && (within ? exp < wm : exp <= wm)) state.delete(k);
    let dropped = 0;
    let late = 0;
    for (const e of batch) {
      if (expiry && e.ts.getTime() <= wm) {
        late++;
        continue;
      }
      if (state.has(keyOf(e))) {
        dropped++;
        continue;
      }
      state.set(keyOf(e), expiry ? expiry(e) : 0);
      out.rows.push(e);
    }
    out.dropped.push(dropped);
    out.late.push(late);
    for (const e of batch) maxEt = Math.max(maxEt, e.ts.getTime());
    if (expiry) wm = Math.max(wm, maxEt - DELAY_MS);
  }
  return out;
}

/** Rows in a fixed order: a stateful operator's output comes partition by partition. */
function sorted(rows: Event[]): Event[] {
  const text = (e: Event) => `${e.id}|${e.user}|${e.ts.getTime()}`;
  return [...rows].sort((a, b) => (text(a) < text(b) ? -1 : text(a) > text(b) ? 1 : 0));
}

/** Progress of the batches that read data (no-data batches aside). */
function dataBatches(progress: QueryProgress[]): QueryProgress[] {
  return progress.filter((p) => p.numInputRows > 0);
}

describe('dropDuplicates and dropDuplicatesWithinWatermark', function () {
  this.timeout(60_000);
  let dirs: string[] = [];
  const tmp = () => {
    const d = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-dedup-'));
    dirs.push(d);
    return d;
  };
  afterEach(() => {
    for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
    dirs = [];
  });

  type Build = (s: MemoryStream<Event>) => ReturnType<MemoryStream<Event>['toDS']>;

  async function run(build: Build, threads = 0): Promise<{ rows: Event[]; progress: QueryProgress[] }> {
    const session = Session.local({ threads, clock: new ManualClock(), statePartitions: 3 });
    const input = new MemoryStream<Event>(session, SCHEMA);
    const progress: QueryProgress[] = [];
    const q = await build(input)
      .writeStream.format('memory')
      .queryName('out')
      .option('checkpointLocation', tmp())
      .start();
    session.streams.addListener({ onQueryProgress: (e) => progress.push(e.progress) });
    for (const b of eventBatches()) {
      input.addData(b);
      await q.processAllAvailable();
    }
    await session.stop();
    return { rows: sorted(session.table('out') as Event[]), progress };
  }

  it('dropDuplicates(cols) without a watermark keeps the first row of every key forever', async () => {
    const { rows, progress } = await run((s) => s.toDS().dropDuplicates('id'));
    const ref = reference(eventBatches(), (e) => e.id, null, false);
    expect(rows).to.deep.equal(sorted(ref.rows));
    const ops = dataBatches(progress).map((p) => p.stateOperators[0]);
    expect(ops.map((o) => o.customMetrics?.numDroppedDuplicateRows)).to.deep.equal(ref.dropped);
    expect(ops[ops.length - 1].numRowsTotal).to.equal(
      new Set(
        eventBatches()
          .flat()
          .map((e) => e.id),
      ).size,
    );
    expect(ops[0].operatorName).to.match(/^dedupe#/);
  });

  it('dropDuplicates() with no columns compares whole rows', async () => {
    const { rows } = await run((s) => s.toDS().dropDuplicates());
    const ref = reference(eventBatches(), (e) => `${e.id}|${e.user}|${e.ts.getTime()}`, null, false);
    expect(rows).to.deep.equal(sorted(ref.rows));
  });

  it('with the event-time column among the columns, the watermark drops late rows and evicts keys', async () => {
    const { rows, progress } = await run((s) => s.toDS().withWatermark('ts', DELAY_MS).dropDuplicates(['id', 'ts']));
    const ref = reference(
      eventBatches(),
      (e) => `${e.id}|${e.ts.getTime()}`,
      (e) => e.ts.getTime(),
      false,
    );
    expect(rows).to.deep.equal(sorted(ref.rows));
    const ops = dataBatches(progress).map((p) => p.stateOperators[0]);
    expect(ops.map((o) => o.numRowsDroppedByWatermark)).to.deep.equal(ref.late);
    expect(ops.map((o) => o.customMetrics?.numDroppedDuplicateRows)).to.deep.equal(ref.dropped);
    expect(Math.min(...progress.map((p) => p.stateOperators[0].numRowsRemoved))).to.equal(0);
    expect(progress.reduce((a, p) => a + p.stateOperators[0].numRowsRemoved, 0)).to.be.greaterThan(0);
  });

  it('dropDuplicatesWithinWatermark forgets a key once the watermark passes its event time plus the delay', async () => {
    const { rows, progress } = await run((s) =>
      s.toDS().withWatermark('ts', DELAY_MS).dropDuplicatesWithinWatermark('id'),
    );
    const ref = reference(
      eventBatches(),
      (e) => e.id,
      (e) => e.ts.getTime() + DELAY_MS,
      true,
    );
    expect(rows).to.deep.equal(sorted(ref.rows));
    expect(new Set(rows.map((r) => r.id)).size, 'some id passed twice, after expiring').to.be.lessThan(rows.length);
    const ops = dataBatches(progress).map((p) => p.stateOperators[0]);
    expect(ops.map((o) => o.customMetrics?.numDroppedDuplicateRows)).to.deep.equal(ref.dropped);
  });

  it('gives the same output at threads 2 as at threads 0', async () => {
    const build: Build = (s) => s.toDS().withWatermark('ts', DELAY_MS).dropDuplicatesWithinWatermark('id', 'user');
    const pooled = await run(build, 2);
    expect(pooled.rows).to.deep.equal((await run(build, 0)).rows);
    expect(pooled.rows.length).to.be.greaterThan(10);
  });

  it('refuses what Spark refuses: within the watermark without one, complete mode, and unknown columns', async () => {
    const session = Session.local({ clock: new ManualClock() });
    const input = new MemoryStream<Event>(session, SCHEMA);
    const fails = async (ds: ReturnType<MemoryStream<Event>['toDS']>, mode = 'append'): Promise<SluiceError> => {
      try {
        await ds.writeStream
          .format('noop')
          .outputMode(mode as 'append')
          .start();
      } catch (err) {
        return err as SluiceError;
      }
      throw new Error('the query started');
    };
    expect((await fails(input.toDS().dropDuplicatesWithinWatermark('id'))).message).to.match(
      /dropDuplicatesWithinWatermark is not supported on streaming Datasets without a watermark/,
    );
    expect((await fails(input.toDS().dropDuplicates('id'), 'complete')).message).to.match(
      /complete output mode is not supported by dedupe#/,
    );
    expect((await fails(input.toDS().dropDuplicates('nope'))).message).to.match(
      /dropDuplicates column 'nope' does not exist/,
    );
    await session.stop();
  });
});
