import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { expect } from 'chai';
import { listApps } from '../../lib/app/app-runner.js';
import { packageRoot } from '../../lib/util/package-root.js';
import { readProgressLog, runCli } from '../support/cli.js';

const ROOT = packageRoot();

/** Lines of the sample data set in data/<name>. */
function sampleLines(name: string): number {
  const dir = path.join(ROOT, 'data', name);
  return fs
    .readdirSync(dir)
    .reduce((n, f) => n + fs.readFileSync(path.join(dir, f), 'utf8').split('\n').filter(Boolean).length, 0);
}

describe('built-in apps on their default input, from any directory', function () {
  this.timeout(120_000);
  let elsewhere: string;
  beforeEach(() => {
    elsewhere = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-elsewhere-'));
  });
  afterEach(() => fs.rmSync(elsewhere, { recursive: true, force: true }));

  it('every default file input is sample data shipped in the package', async () => {
    const defaults = (await listApps()).flatMap((a) => Object.values(a.def.inputs).map((i) => i.default));
    const files = defaults.filter((d) => d.startsWith('file:'));
    expect(files).to.have.length.at.least(4);
    for (const uri of files) expect(fs.existsSync(uri.slice('file:'.length)), uri).to.equal(true);
  });

  for (const [app, sample] of [
    ['bank-account', 'bank'],
    ['active-session-totals', 'transactions'],
    ['clickstream-sessions', 'clickstream'],
    ['clickstream-metrics', 'clickstream'],
  ]) {
    it(`${app} reads all of data/${sample} when run in another directory`, async () => {
      const apps = await listApps();
      const def = apps.find((a) => a.def.name === app)!.def;
      const sinks = Object.keys(def.outputs).flatMap((o) => ['--sink', `${o}=noop:`]);
      const res = await runCli(
        ['run', app, ...sinks, '--trigger', 'available-now', '--checkpoint', 'ckpt', '--progress-log', 'p.jsonl', '-q'],
        { cwd: elsewhere, timeoutMs: 110_000 },
      );
      expect(res.code, res.stderr).to.equal(0);
      const byOutput = new Map<string, number>();
      for (const p of readProgressLog(path.join(elsewhere, 'p.jsonl')))
        byOutput.set(p.output, (byOutput.get(p.output) ?? 0) + p.numInputRows);
      expect(byOutput.size).to.be.greaterThan(0);
      for (const [output, rows] of byOutput) expect(rows, output).to.equal(sampleLines(sample));
    });
  }
});
