import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { expect } from 'chai';
import { newProject, sluiceSpecifier } from '../../lib/cli/new-command.js';
import { packageRoot } from '../../lib/util/package-root.js';
import { runCli } from '../support/cli.js';

describe('sluice new', () => {
  let work: string;
  beforeEach(() => {
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-new-'));
  });
  afterEach(() => fs.rmSync(work, { recursive: true, force: true }));

  const write = (file: string, text: string): void => {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, text);
  };

  it('writes the project: app, test, sample data, tsconfig, README, .gitignore, package.json named after the directory', async () => {
    const res = await runCli(['new', 'My Streams'], { cwd: work });
    expect(res.code, res.stderr).to.equal(0);
    const dir = path.join(work, 'My Streams');
    const files = fs.readdirSync(dir, { recursive: true, encoding: 'utf8' }).sort();
    expect(files).to.include.members([
      '.gitignore',
      'README.md',
      'package.json',
      'tsconfig.json',
      'src/app.ts',
      'src/app.test.ts',
      'data/events-0.jsonl',
    ]);
    const manifest = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8'));
    expect(manifest.name).to.equal('my-streams');
    expect(Object.keys(manifest.devDependencies)).to.include('typescript');
    // Run from this checkout, the project depends on the checkout itself.
    expect(manifest.dependencies).to.deep.equal({ sluice: `file:${path.relative(dir, packageRoot())}` });
    expect(fs.readFileSync(path.join(dir, 'README.md'), 'utf8')).to.match(/^# my-streams\n/);
    expect(res.stdout).to.include('cd My Streams\n');
    expect(res.stdout).to.include('npm install && npm run build && npm test\n');
  });

  it('refuses a directory that is not empty with one line and exit code 2, writing nothing', async () => {
    write(path.join(work, 'taken', 'notes.txt'), 'mine');
    const res = await runCli(['new', 'taken'], { cwd: work });
    expect(res.code).to.equal(2);
    expect(res.stderr).to.equal(
      'sluice: error: taken is not empty (1 entry) (give a new or empty directory, e.g. sluice new my-app)\n',
    );
    expect(fs.readdirSync(path.join(work, 'taken'))).to.deep.equal(['notes.txt']);
  });

  it('refuses a file in place of the directory (exit 2), and a missing directory argument (exit 2)', async () => {
    write(path.join(work, 'file'), '');
    const onFile = await runCli(['new', 'file'], { cwd: work });
    expect(onFile.code).to.equal(2);
    expect(onFile.stderr).to.match(/^sluice: error: file exists and is not a directory/);
    const none = await runCli(['new'], { cwd: work });
    expect(none.code).to.equal(2);
  });

  it('takes an empty existing directory', () => {
    fs.mkdirSync(path.join(work, 'empty'));
    const project = newProject(path.join(work, 'empty'), { sluice: '^0.1.0' });
    expect(project.name).to.equal('empty');
    expect(fs.existsSync(path.join(work, 'empty', 'src', 'app.ts'))).to.equal(true);
  });

  it('depends on sluice as the project that installed it declared it, with a tarball path made relative to the new project', () => {
    const host = path.join(work, 'host');
    const root = path.join(host, 'node_modules', 'sluice');
    write(path.join(root, 'package.json'), JSON.stringify({ name: 'sluice', version: '3.1.4' }));
    write(path.join(host, 'package.json'), JSON.stringify({ dependencies: { sluice: 'file:../tarballs/sluice.tgz' } }));
    expect(sluiceSpecifier(path.join(host, 'apps', 'one'), root)).to.equal('file:../../../tarballs/sluice.tgz');

    write(path.join(host, 'package.json'), JSON.stringify({ devDependencies: { sluice: '^3.1.0' } }));
    expect(sluiceSpecifier(path.join(host, 'one'), root), 'a registry range as declared').to.equal('^3.1.0');

    write(path.join(host, 'package.json'), JSON.stringify({ dependencies: {} }));
    expect(sluiceSpecifier(path.join(host, 'one'), root), 'a global install: its own version').to.equal('^3.1.4');
  });

  it('takes --sluice as given, a path from the current directory', async () => {
    const res = await runCli(['new', 'apps/two', '--sluice', './dl/sluice-9.0.0.tgz'], { cwd: work });
    expect(res.code, res.stderr).to.equal(0);
    const manifest = JSON.parse(fs.readFileSync(path.join(work, 'apps', 'two', 'package.json'), 'utf8'));
    expect(manifest.dependencies.sluice).to.equal('file:../../dl/sluice-9.0.0.tgz');
    expect(newProject(path.join(work, 'three'), { sluice: '~9.0.0' }).sluice).to.equal('~9.0.0');
  });
});
