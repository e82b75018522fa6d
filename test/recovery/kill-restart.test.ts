import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { expect } from 'chai';
import { crashThenRestart, runCli, TEST_APPS } from '../support/cli.js';

const FILES = 12;
const ROWS = 40;

function writeInput(dir: string): void {
  fs.mkdirSync(dir, { recursive: true });
  let id = 0;
  for (let f = 0; f < FILES; f++) {
    const lines: string[] = [];
    for (let r = 0; r < ROWS; r++, id++) lines.push(JSON.stringify({ id, user: `u${id % 5}`, amount: (id % 9) - 2 }));
    const file = path.join(dir, `part-${String(f).padStart(3, '0')}.json`);
    fs.writeFileSync(file, `${lines.join('\n')}\n`);
    const t = new Date(1_700_000_000_000 + f * 1000);
    fs.utimesSync(file, t, t);
  }
}

/** Every output row of a JSON-lines sink directory, sorted, duplicates kept. */
function readOutput(dir: string): string[] {
  const rows: string[] = [];
  const walk = (d: string): void => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      if (e.name.startsWith('_') || e.name.startsWith('.')) continue;
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (/\.jsonl?$/.test(e.name)) rows.push(...fs.readFileSync(p, 'utf8').split('\n').filter(Boolean));
    }
  };
  if (fs.existsSync(dir)) walk(dir);
  return rows.sort();
}

describe('recovery: SIGKILL at many points, restart, same output', function () {
  this.timeout(240_000);
  let root: string;
  let input: string;
  let reference: string[];
  const app = path.join(TEST_APPS, 'enrich.js');
  const args = (out: string, ckpt: string, threads = 0): string[] => [
    'run',
    app,
    '--source',
    `file:${input}?maxFilesPerTrigger=2`,
    '--sink',
    `file:${out}`,
    '--checkpoint',
    ckpt,
    '--trigger',
    'available-now',
    '--threads',
    String(threads),
    '--quiet',
  ];

  before(async () => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-recovery-'));
    input = path.join(root, 'in');
    writeInput(input);
    const res = await runCli(args(path.join(root, 'ref'), path.join(root, 'ref-ckpt')));
    expect(res.code, res.stderr).to.equal(0);
    reference = readOutput(path.join(root, 'ref'));
  });
  after(() => fs.rmSync(root, { recursive: true, force: true }));

  it('the uninterrupted run writes every kept row once', () => {
    const expected =
      FILES * ROWS - Array.from({ length: FILES * ROWS }, (_, i) => (i % 9) - 2).filter((a) => a <= 0).length;
    expect(reference).to.have.length(expected);
    expect(new Set(reference).size).to.equal(expected);
  });

  const points = ['before-offsets', 'after-offsets', 'in-sink', 'after-sink', 'after-commit'];
  for (const point of points) {
    for (const batch of [0, 3]) {
      it(`killed at ${point} of batch ${batch}: restart gives the reference output`, async () => {
        const out = path.join(root, `out-${point}-${batch}`);
        const ckpt = path.join(root, `ckpt-${point}-${batch}`);
        await crashThenRestart(args(out, ckpt), `${point}:${batch}`);
        expect(readOutput(out)).to.deep.equal(reference);
      });
    }
  }

  it('survives repeated kills at random moments, with 2 worker threads', async () => {
    const out = path.join(root, 'out-random');
    const ckpt = path.join(root, 'ckpt-random');
    for (let i = 0; i < 4; i++) {
      const p = runCli(args(out, ckpt, 2), { timeoutMs: 150 + i * 120 });
      await p;
    }
    const res = await runCli(args(out, ckpt, 2));
    expect(res.code, res.stderr).to.equal(0);
    expect(readOutput(out)).to.deep.equal(reference);
  });
});
