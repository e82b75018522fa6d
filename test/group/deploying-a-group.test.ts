/**
 * docs/deploying-a-group.md needs a cluster, so it is not run: each of its member commands (the shell loop,
 * the systemd unit, the Kubernetes manifest's args) must use only flags of `sluice run`, the same ones in each,
 * with the URIs sluice accepts.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { parseSinkUri } from '../../lib/sinks/sink-factory.js';
import { parseSourceUri } from '../../lib/sources/source-uri.js';
import { runCli } from '../support/cli.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const DOC = fs.readFileSync(path.join(ROOT, 'docs/deploying-a-group.md'), 'utf8');

/** The words after `sluice` of each member command on the page. */
function commands(): string[][] {
  const shell = /sluice run[^&]*/.exec(DOC)![0].replace(/\\\n\s*/g, ' ');
  const unit = /ExecStart=\/usr\/bin\/sluice (.*)/.exec(DOC)![1];
  const args = /args: \[([^\]]*)\]/
    .exec(DOC)![1]
    .split(',')
    .map((a) => a.trim());
  return [shell.split(/\s+/).filter(Boolean).slice(1), unit.split(/\s+/), args];
}

describe('docs/deploying-a-group.md', function () {
  this.timeout(60_000);

  it('runs the same member command in the shell loop, the systemd unit and the Kubernetes manifest', () => {
    const [shell, unit, k8s] = commands();
    expect(unit).to.deep.equal(shell);
    // The manifest's checkpoint is the pod's mount of the shared volume.
    expect(k8s.map((w) => w.replace('/checkpoints/bank', '/mnt/shared/bank'))).to.deep.equal(shell);
  });

  it('uses only flags of sluice run, with URIs sluice accepts', async () => {
    const help = await runCli(['run', 'bank-account', '--help']);
    expect(help.code, help.stderr).to.equal(0);
    const words = commands()[0];
    expect(words.slice(0, 2)).to.deep.equal(['run', 'bank-account']);
    for (let i = 2; i < words.length; i++) {
      if (!words[i].startsWith('--')) continue;
      expect(help.stdout, words[i]).to.contain(words[i]);
      const value = words[i + 1];
      if (words[i] === '--source') expect(parseSourceUri(value).format).to.equal('kafka');
      if (words[i] === '--sink') expect(parseSinkUri(value.replace(/^\w+=/, '')).format).to.equal('kafka');
    }
    expect(words).to.include('--group');
  });
});
