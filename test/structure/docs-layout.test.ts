import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';

/** The repository root: this file runs as dist/test/structure/docs-layout.test.js. */
const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

/** The folder names listed in README's Layout block (`lib/x/  what it holds`). */
function layoutFolders(): string[] {
  const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const at = readme.indexOf('## Layout\n');
  expect(at, 'README has a Layout section').to.be.greaterThan(-1);
  const block = /```\n([\s\S]*?)```/.exec(readme.slice(at));
  expect(block, 'a block under Layout').to.not.equal(null);
  return (block?.[1] ?? '')
    .split('\n')
    .map((line) => /^(\S+\/)\s/.exec(line)?.[1])
    .filter((f): f is string => f !== undefined);
}

describe('the layout the docs describe', () => {
  it('README Layout lists every folder of lib/, and only folders that exist', () => {
    const listed = layoutFolders();
    const libFolders = fs
      .readdirSync(path.join(ROOT, 'lib'), { withFileTypes: true })
      .filter((e) => e.isDirectory())
      .map((e) => `lib/${e.name}/`);
    expect(listed.filter((f) => f.startsWith('lib/')).sort()).to.deep.equal(libFolders.sort());
    for (const f of listed) expect(fs.existsSync(path.join(ROOT, f)), `${f} exists`).to.equal(true);
  });

  it('docs/architecture.md names only files that exist', () => {
    const doc = fs.readFileSync(path.join(ROOT, 'docs/architecture.md'), 'utf8');
    const named = [...doc.matchAll(/`((?:lib|test)\/[\w./-]+)`/g)].map((m) => m[1]);
    expect(named.length).to.be.greaterThan(20);
    const missing = named.filter((p) => !fs.existsSync(path.join(ROOT, p)));
    expect(missing, 'paths in docs/architecture.md that are not in the repo').to.deep.equal([]);
  });
});
