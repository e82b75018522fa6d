import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const README = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');

/** The shell block under a README heading. */
function shellBlock(heading: string): string {
  const at = README.indexOf(heading);
  expect(at, `README has a '${heading}' section`).to.be.greaterThan(-1);
  const m = /```sh\n([\s\S]*?)```/.exec(README.slice(at));
  expect(m, `a sh block under '${heading}'`).to.not.equal(null);
  return m![1];
}

describe('README commands run as written', function () {
  this.timeout(300_000);

  it('the first two commands are the demo and npm test', () => {
    const first = shellBlock('# sluice')
      .split('\n')
      .filter((l) => l.trim() && !l.startsWith('#'));
    expect(first[0]).to.match(/^npm ci && npm run demo\b/);
    expect(first[1]).to.match(/^npm test\b/);
  });

  it('the demo runs the main job on the sample data', () => {
    const res = spawnSync(process.execPath, [path.join(ROOT, 'scripts/demo.mjs'), '--quiet'], {
      cwd: ROOT,
      encoding: 'utf8',
    });
    expect(res.status, res.stderr).to.equal(0);
    expect(res.stdout).to.match(/Batch: 0/);
    expect(res.stdout).to.match(/depositCurrentBalance/);
  });

  it('the five-minute tour runs (build step skipped: the tests run on the built tree)', () => {
    const script = shellBlock('## Five-minute tour').replace(/^npm ci && npm run build\n/m, '');
    const res = spawnSync('bash', ['-euo', 'pipefail', '-c', `${script}\necho "WORK=$work"`], {
      cwd: ROOT,
      encoding: 'utf8',
      timeout: 240_000,
    });
    expect(res.status, res.stderr).to.equal(0);
    expect(res.stdout).to.match(/clickstream-sessions/);
    const work = /WORK=(.*)/.exec(res.stdout)![1];
    const dir = path.join(work, 'sessions');
    const rows = fs
      .readdirSync(dir)
      .filter((f) => f.endsWith('.jsonl'))
      .flatMap((f) => fs.readFileSync(path.join(dir, f), 'utf8').split('\n').filter(Boolean));
    const ids = rows.map((r) => (JSON.parse(r) as { session_id: string }).session_id);
    expect(ids.length).to.be.greaterThan(100);
    expect(new Set(ids).size, 'no session written twice').to.equal(ids.length);
    expect(res.stdout).to.match(/watermark/);
    fs.rmSync(work, { recursive: true, force: true });
  });
});
