import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { expect } from 'chai';
import { crashThenRestart, runCli, TEST_APPS } from '../support/cli.js';

const FILES = 8;
const T0 = Date.UTC(2024, 0, 1);

/**
 * Impression and click files, one of each per batch; the last pair lies far ahead so the watermark passes
 * everything. Returns how many joined pairs and unmatched impressions a join of everything has.
 */
function writeInput(root: string): { pairs: number; unmatched: number } {
  const all: { imps: { ad: number; t: number }[]; clicks: { ad: number; t: number }[] } = { imps: [], clicks: [] };
  for (const side of ['impressions', 'clicks']) fs.mkdirSync(path.join(root, side), { recursive: true });
  let n = 0;
  for (let f = 0; f <= FILES; f++) {
    const imps: string[] = [];
    const clicks: string[] = [];
    for (let k = 0; k < 20; k++, n++) {
      const t = f === FILES ? 100_000 : f * 15 + ((n * 7) % 9);
      const dt = ((n * 13) % 41) - 5;
      const click = { ad: ((n * 7) % 13) + 3, t: t + dt };
      all.imps.push({ ad: n % 6, t });
      all.clicks.push(click);
      imps.push(JSON.stringify({ ad: n % 6, shown: new Date(T0 + t * 1000).toISOString(), page: `p${n}` }));
      clicks.push(
        JSON.stringify({ adId: click.ad, clicked: new Date(T0 + click.t * 1000).toISOString(), button: `b${n}` }),
      );
    }
    const name = `part-${String(f).padStart(3, '0')}.json`;
    fs.writeFileSync(path.join(root, 'impressions', name), `${imps.join('\n')}\n`);
    fs.writeFileSync(path.join(root, 'clicks', name), `${clicks.join('\n')}\n`);
    const t = new Date(1_700_000_000_000 + f * 1000);
    for (const side of ['impressions', 'clicks']) fs.utimesSync(path.join(root, side, name), t, t);
  }
  let pairs = 0;
  let unmatched = 0;
  for (const i of all.imps) {
    const m = all.clicks.filter((c) => c.ad === i.ad && c.t >= i.t && c.t <= i.t + 30).length;
    pairs += m;
    // The last file's impressions stay buffered: no later row moves the watermark past their range.
    if (m === 0 && i.t < 100_000) unmatched++;
  }
  return { pairs, unmatched };
}

function readOutput(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return fs
    .readdirSync(dir)
    .filter((f) => f.endsWith('.jsonl') || f.endsWith('.json'))
    .flatMap((f) => fs.readFileSync(path.join(dir, f), 'utf8').split('\n').filter(Boolean))
    .sort();
}

describe('recovery: a stream-stream join killed with SIGKILL restarts to the same output, each row once', function () {
  this.timeout(300_000);
  let root: string;
  let reference: string[];
  let expected: { pairs: number; unmatched: number };
  const app = path.join(TEST_APPS, 'ad-clicks.js');
  const args = (out: string, ckpt: string, threads = 0, stateStore = 'memory'): string[] => [
    'run',
    app,
    '--source',
    `impressions=file:${path.join(root, 'impressions')}?maxFilesPerTrigger=1`,
    '--source',
    `clicks=file:${path.join(root, 'clicks')}?maxFilesPerTrigger=1`,
    '--sink',
    `file:${out}`,
    '--checkpoint',
    ckpt,
    '--trigger',
    'available-now',
    '--threads',
    String(threads),
    '--state-store',
    stateStore,
    '--state-local-dir',
    path.join(root, 'state-local'),
    '--quiet',
  ];

  before(async () => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-join-recovery-'));
    expected = writeInput(root);
    const res = await runCli(args(path.join(root, 'ref'), path.join(root, 'ref-ckpt')));
    expect(res.code, res.stderr).to.equal(0);
    reference = readOutput(path.join(root, 'ref'));
  });
  after(() => fs.rmSync(root, { recursive: true, force: true }));

  it('the uninterrupted run has joined pairs and unmatched impressions, each once', () => {
    const rows = reference.map((r) => JSON.parse(r));
    expect(expected.pairs).to.be.greaterThan(20);
    expect(expected.unmatched).to.be.greaterThan(5);
    expect(rows.filter((r) => typeof r.button === 'string').length).to.equal(expected.pairs);
    expect(rows.filter((r) => typeof r.button !== 'string').length).to.equal(expected.unmatched);
    expect(new Set(reference).size).to.equal(reference.length);
  });

  // The reference is the memory store's: the disk store's runs must give the same rows.
  for (const stateStore of ['memory', 'disk']) {
    for (const point of ['after-offsets', 'in-sink', 'after-sink', 'after-commit']) {
      it(`killed at ${point} of batch 3 (${stateStore} state store): restart gives the reference output`, async () => {
        const out = path.join(root, `out-${point}-${stateStore}`);
        const ckpt = path.join(root, `ckpt-${point}-${stateStore}`);
        await crashThenRestart(args(out, ckpt, 0, stateStore), `${point}:3`);
        expect(readOutput(out)).to.deep.equal(reference);
      });
    }

    it(`survives repeated kills at random moments, with 2 worker threads (${stateStore} state store)`, async () => {
      const out = path.join(root, `out-random-${stateStore}`);
      const ckpt = path.join(root, `ckpt-random-${stateStore}`);
      for (let i = 0; i < 4; i++) await runCli(args(out, ckpt, 2, stateStore), { timeoutMs: 300 + i * 200 });
      const res = await runCli(args(out, ckpt, 2, stateStore));
      expect(res.code, res.stderr).to.equal(0);
      expect(readOutput(out)).to.deep.equal(reference);
    });
  }

  it('sluice checkpoint --state shows both sides of a key', async () => {
    const res = await runCli([
      'checkpoint',
      path.join(root, 'ref-ckpt'),
      '--state',
      'symmetricHashJoin',
      '--limit',
      '3',
    ]);
    expect(res.code, res.stderr).to.equal(0);
    expect(res.stdout).to.match(/left/);
    expect(res.stdout).to.match(/right/);
  });
});
