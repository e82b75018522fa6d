import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { count, session_window } from '../../lib/api/functions.js';
import { Session } from '../../lib/api/session.js';
import { NexmarkGenerator } from '../../lib/gen/nexmark.js';
import { MemoryStream } from '../../lib/testing/index.js';
import * as reference from '../nexmark/reference.js';
import { crashThenRestart, readProgressLog, runCli } from '../support/cli.js';

const Q11 = fileURLToPath(new URL('../../bench/nexmark/q11.js', import.meta.url));
const EVENTS = 20_000;
const SEED = 3;
const RATE = 2000;
const BATCH = 5000;

/** Every output row of a JSON-lines sink directory, sorted, duplicates kept. */
function readOutput(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return fs
    .readdirSync(dir)
    .filter((f) => f.endsWith('.jsonl'))
    .flatMap((f) => fs.readFileSync(path.join(dir, f), 'utf8').split('\n').filter(Boolean))
    .sort();
}

/** The reference sessions of q11 over the same events, as the file sink writes them. */
function expectedSessions(): string[] {
  const events = [...new NexmarkGenerator({ seed: SEED, firstEventRate: RATE }).events(0, EVENTS)];
  return reference
    .q11(events)
    .map((r) =>
      JSON.stringify({
        bidder: r.bidder,
        bid_count: r.bid_count,
        starttime: (r.starttime as Date).toISOString(),
        endtime: (r.endtime as Date).toISOString(),
      }),
    )
    .sort();
}

describe('end of input: a bounded source closes every window once it is read to its end', function () {
  this.timeout(240_000);
  let root: string;
  let expected: string[];
  const args = (out: string, ckpt: string): string[] => [
    'run',
    Q11,
    '--source',
    `nexmark:?events=${EVENTS}&seed=${SEED}&rate=${RATE}&kinds=bid&maxEventsPerTrigger=${BATCH}`,
    '--sink',
    `file:${out}`,
    '--checkpoint',
    ckpt,
    '--trigger',
    'available-now',
    '--quiet',
  ];

  before(() => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-eoi-'));
    expected = expectedSessions();
  });
  after(() => fs.rmSync(root, { recursive: true, force: true }));

  it('emits every session, the open ones in one last batch, and a restart adds nothing', async () => {
    const out = path.join(root, 'ref');
    const ckpt = path.join(root, 'ref-ckpt');
    const res = await runCli(args(out, ckpt));
    expect(res.code, res.stderr).to.equal(0);
    // With 10 s of event time and a 10 s gap, most sessions are still open when the last event is read.
    expect(expected.length).to.be.greaterThan(100);
    expect(readOutput(out)).to.deep.equal(expected);
    const inspect = await runCli(['checkpoint', ckpt]);
    expect(inspect.stdout).to.match(/watermark\s+end of input/);
    expect(inspect.stdout).to.match(/batch 4 committed/);

    const again = await runCli(args(out, ckpt));
    expect(again.code, again.stderr).to.equal(0);
    expect(readOutput(out)).to.deep.equal(expected);
  });

  // Batch 3 reads the last events and commits the end-of-input watermark; batch 4 (no data) emits.
  const kills = [
    ['after-commit', 3],
    ['before-offsets', 4],
    ['after-offsets', 4],
    ['in-sink', 4],
    ['after-sink', 4],
  ] as const;
  for (const [point, batch] of kills) {
    it(`killed at ${point} of batch ${batch}: the restart emits the remaining sessions exactly once`, async () => {
      const out = path.join(root, `out-${point}-${batch}`);
      const ckpt = path.join(root, `ckpt-${point}-${batch}`);
      await crashThenRestart(args(out, ckpt), `${point}:${batch}`);
      expect(readOutput(out)).to.deep.equal(expected);
    });
  }

  // With at most EVICTIONS keys closed per state partition and batch, the sessions left open at the end of the
  // input close over the no-data batches from batch 4 on, each emitting what it removes from state.
  const EVICTIONS = 40;
  const capped = (out: string, ckpt: string, store: string): string[] => [
    ...args(out, ckpt),
    '--state-store',
    store,
    '--state-local-dir',
    path.join(root, 'local'),
    '--state-max-evictions-per-batch',
    String(EVICTIONS),
  ];
  for (const store of ['memory', 'disk']) {
    it(`${store} store: closes them over several batches when a batch may close only a few, with the same rows`, async () => {
      const out = path.join(root, `capped-${store}`);
      const ckpt = path.join(root, `capped-${store}-ckpt`);
      const progressLog = path.join(root, `capped-${store}.jsonl`);
      const res = await runCli([...capped(out, ckpt, store), '--progress-log', progressLog]);
      expect(res.code, res.stderr).to.equal(0);
      expect(readOutput(out)).to.deep.equal(expected);
      const closing = readProgressLog(progressLog).filter((p) => p.batchId >= 4 && p.numInputRows === 0);
      // 4 state partitions: the open sessions need several batches at EVICTIONS keys per partition and batch.
      expect(closing.length).to.be.greaterThan(2);
      for (const p of closing) {
        const rows = p.stateOperators[0].numRowsRemoved ?? 0;
        expect(rows).to.be.at.most(4 * EVICTIONS);
      }
      const again = await runCli(capped(out, ckpt, store));
      expect(again.code, again.stderr).to.equal(0);
      expect(readOutput(out)).to.deep.equal(expected);
    });
  }

  for (const [point, batch] of [
    ['after-commit', 5],
    ['in-sink', 6],
    ['after-sink', 6],
  ] as const) {
    it(`disk store, killed at ${point} of batch ${batch} while closing a few per batch: each session once`, async () => {
      const out = path.join(root, `capped-out-${point}-${batch}`);
      const ckpt = path.join(root, `capped-ckpt-${point}-${batch}`);
      await crashThenRestart(capped(out, ckpt, 'disk'), `${point}:${batch}`);
      expect(readOutput(out)).to.deep.equal(expected);
    });
  }

  it('keeps windows open over a source that can grow (a memory stream), as Spark does', async () => {
    const session = Session.local();
    const input = new MemoryStream<{ user: string; time: number }>(session, { user: 'string', time: 'timestamp' });
    const query = await input
      .toDS()
      .withWatermark('time', '1 second')
      .groupBy(session_window('time', '10 seconds'), 'user')
      .agg(count('*').alias('n'))
      .writeStream.format('memory')
      .queryName('sessions')
      .outputMode('append')
      .start();
    input.addData([
      { user: 'a', time: 0 },
      { user: 'a', time: 5000 },
    ]);
    await query.processAllAvailable();
    await query.stop();
    expect(session.table('sessions')).to.deep.equal([]);
    expect(query.lastProgress?.eventTime.watermark).to.equal(new Date(4000).toISOString());
  });
});
