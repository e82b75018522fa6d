import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { stateDir } from '../../lib/checkpoint/paths.js';
import type { QueryCheckpointSummary, StateContents } from '../../lib/cli/checkpoint-inspector.js';
import { readLastProgress } from '../../lib/cli/checkpoint-inspector.js';
import { type CliResult, readProgressLog, runCli } from '../support/cli.js';

const APP = fileURLToPath(new URL('./apps/user-totals.js', import.meta.url));

const PAYMENTS = [
  { ts: '2024-05-01T10:00:05Z', user: 'ann', amount: 10 },
  { ts: '2024-05-01T10:00:15Z', user: 'bob', amount: 2.5 },
  { ts: '2024-05-01T10:01:20Z', user: 'ann', amount: 1 },
  { ts: '2024-05-01T10:02:30Z', user: 'cy', amount: 7 },
];

/** Every file below `dir` with its size and modification time, to show that inspecting changes nothing. */
function tree(dir: string): string[] {
  return fs
    .readdirSync(dir, { recursive: true, withFileTypes: true })
    .map((e) => {
      const p = path.join(e.parentPath, e.name);
      const st = fs.statSync(p);
      return `${path.relative(dir, p)} ${e.isFile() ? st.size : 'dir'} ${st.mtimeMs}`;
    })
    .sort();
}

function expectOneLineError(res: CliResult, code: number, pattern: RegExp): void {
  expect(res.code, res.stderr).to.equal(code);
  expect(res.stderr).to.match(pattern);
  expect(res.stderr).to.not.match(/^\s+at /m);
}

describe('sluice checkpoint', function () {
  this.timeout(60_000);
  let root: string;
  let ckpt: string;
  let progressLog: string;

  before(async () => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-'));
    fs.mkdirSync(path.join(root, 'in'));
    fs.writeFileSync(path.join(root, 'in', 'p0.jsonl'), `${PAYMENTS.map((p) => JSON.stringify(p)).join('\n')}\n`);
    ckpt = path.join(root, 'ckpt');
    progressLog = path.join(root, 'progress.jsonl');
    const res = await runCli([
      'run',
      APP,
      '--source',
      `file:${path.join(root, 'in')}`,
      '--trigger',
      'available-now',
      '--checkpoint',
      ckpt,
      '--progress-log',
      progressLog,
      '--quiet',
    ]);
    expect(res.code, res.stderr).to.equal(0);
  });

  after(() => fs.rmSync(root, { recursive: true, force: true }));

  async function json<T>(args: string[]): Promise<T> {
    const res = await runCli(['checkpoint', ...args, '--json']);
    expect(res.code, res.stderr).to.equal(0);
    return JSON.parse(res.stdout);
  }

  function progressOf(output: string) {
    return readProgressLog(progressLog).filter((p) => p.output === output);
  }

  it('lists each query of an app checkpoint with its id, batches, watermark, offsets and state', async () => {
    const res = await runCli(['checkpoint', ckpt]);
    expect(res.code, res.stderr).to.equal(0);
    const [totals] = progressOf('totals');
    const minutes = progressOf('minutes');
    expect(res.stdout).to.contain(`checkpoint ${ckpt}: 2 queries`);
    expect(res.stdout).to.match(/query minutes[\s\S]*query totals/);
    expect(res.stdout).to.contain(totals.id);
    expect(res.stdout).to.contain(minutes[0].id);
    expect(res.stdout).to.contain(`batch ${minutes[minutes.length - 1].batchId} committed at`);
    // The watermark after 10:02:30 with a 10 second delay.
    expect(res.stdout).to.contain('watermark      2024-05-01T10:02:20.000Z');
    expect(res.stdout).to.contain('{"files":1}');
    expect(res.stdout).to.match(/state \(version \d+\)\n\s+operator\s+partitions\s+rows/);
  });

  it('names sources and operators as progress does without a progress log, and takes --state by the name printed', async () => {
    const res = await runCli(['checkpoint', ckpt]);
    expect(res.code, res.stderr).to.equal(0);
    const [totals] = progressOf('totals');
    const operator = totals.stateOperators[0].operatorName;
    expect(operator).to.match(/^mapGroupsWithState#\d+$/);
    expect(res.stdout).to.contain(`    0  ${totals.sources[0].description}  `);
    expect(res.stdout).to.match(new RegExp(`^\\s+${operator}\\s+4\\s+3\\s`, 'm'));
    const state = await runCli(['checkpoint', ckpt, '--state', operator]);
    expect(state.code, state.stderr).to.equal(0);
    expect(state.stdout).to.contain(`state of ${operator} in query totals`);
    expect(state.stdout).to.match(/^\s+\d+\s+ann\s+2\s+11\s*$/m);
  });

  it('reads a checkpoint written before names were recorded, naming them from a progress log if given', async () => {
    const old = path.join(root, 'old-ckpt');
    fs.cpSync(ckpt, old, { recursive: true });
    for (const q of ['totals', 'minutes'])
      for (const f of fs.readdirSync(path.join(old, q, 'offsets'))) {
        const file = path.join(old, q, 'offsets', f);
        const [version, body] = fs.readFileSync(file, 'utf8').split('\n');
        const entry = JSON.parse(body);
        delete entry.operators;
        for (const src of entry.sources) delete src.description;
        fs.writeFileSync(file, `${version}\n${JSON.stringify(entry)}\n`);
      }
    const [totals] = progressOf('totals');
    const operator = totals.stateOperators[0].operatorName;
    const bare = await json<QueryCheckpointSummary>([path.join(old, 'totals')]);
    expect(bare.sources[0].description).to.equal(null);
    expect(bare.stateOperators[0].name).to.equal(null);
    const named = await json<QueryCheckpointSummary>([path.join(old, 'totals'), '--progress-log', progressLog]);
    expect(named.sources[0].description).to.equal(totals.sources[0].description);
    expect(named.stateOperators[0].name).to.equal(operator);
  });

  it('gives the same figures as the progress reports, as JSON', async () => {
    const out = await json<{ queries: QueryCheckpointSummary[] }>([ckpt, '--progress-log', progressLog]);
    const byName = Object.fromEntries(out.queries.map((q) => [q.name, q]));
    expect(Object.keys(byName).sort()).to.deep.equal(['minutes', 'totals']);
    for (const name of ['totals', 'minutes']) {
      const q: QueryCheckpointSummary = byName[name];
      const runs = progressOf(name);
      const last = runs[runs.length - 1];
      expect(q.queryId).to.equal(last.id);
      expect(q.lastCommittedBatch).to.equal(last.batchId);
      expect(q.lastPlannedBatch).to.equal(last.batchId);
      expect(q.pendingBatch).to.equal(null);
      expect(q.conf).to.deep.equal({ numStatePartitions: 4 });
      expect(q.lastProgress!.batchId).to.equal(last.batchId);
      expect(q.stateOperators).to.have.length(1);
      const op = q.stateOperators[0];
      expect(op.name).to.equal(last.stateOperators[0].operatorName);
      expect(op.partitions).to.equal(4);
      // Progress counts the user's rows only, as the checkpoint does; the engine's own rows are told apart.
      expect(op.numRows).to.equal(last.stateOperators[0].numRowsTotal);
      expect(op.diskBytes).to.be.greaterThan(0);
      expect(op.memoryBytes).to.be.greaterThan(0);
      expect(q.sources).to.have.length(1);
      expect(q.sources[0].end).to.deep.equal({ files: 1 });
      expect(q.sources[0].description).to.contain('FileSource');
      expect(q.problems).to.deep.equal([]);
    }
    expect(byName.totals.stateOperators[0].numRows).to.equal(3);
    expect(byName.totals.watermarkMs).to.equal(null);
    // Windows 10:00 and 10:01 are closed by the watermark 10:02:20; 10:02 stays open.
    expect(byName.minutes.stateOperators[0].numRows).to.equal(1);
    expect(byName.minutes.watermarkMs).to.equal(Date.parse('2024-05-01T10:02:20Z'));
  });

  it('shows one query when given its directory', async () => {
    const out = await json<QueryCheckpointSummary>([path.join(ckpt, 'totals')]);
    expect(out.name).to.equal('.');
    expect(out.stateOperators[0].numRows).to.equal(3);
    const text = await runCli(['checkpoint', path.join(ckpt, 'totals')]);
    expect(text.stdout).to.not.contain('2 queries');
    expect(text.stdout).to.contain(`query ${path.join(ckpt, 'totals')}`);
  });

  it('prints the state rows of an operator as a table, values spread into columns', async () => {
    const q = await json<QueryCheckpointSummary>([path.join(ckpt, 'totals')]);
    const res = await runCli(['checkpoint', ckpt, '--state', q.stateOperators[0].id]);
    expect(res.code, res.stderr).to.equal(0);
    const lines = res.stdout.trim().split('\n');
    expect(lines[0]).to.match(/^state of mapGroupsWithState#\d+ in query totals, version 1: 3 rows$/);
    expect(lines[1].split(/\s+/).filter(Boolean)).to.deep.equal(['partition', 'key', 'count', 'total']);
    const rows = lines.slice(2).map((l) => l.trim().split(/\s+/));
    expect(rows.map((r) => r.slice(1))).to.deep.equal([
      ['ann', '2', '11'],
      ['bob', '1', '2.5'],
      ['cy', '1', '7'],
    ]);
  });

  it('finds an operator by name, filters by key, limits rows, and prints JSON', async () => {
    const byName = await runCli([
      'checkpoint',
      ckpt,
      '--state',
      'mapGroupsWithState',
      '--progress-log',
      progressLog,
      '--key',
      'ann',
    ]);
    expect(byName.code, byName.stderr).to.equal(0);
    expect(byName.stdout).to.match(/state of mapGroupsWithState#\d+ in query totals, version 1: 1 row\n/);
    const limited = await runCli([
      'checkpoint',
      ckpt,
      '--query',
      'totals',
      '--state',
      'mapGroupsWithState',
      '--progress-log',
      progressLog,
      '--limit',
      '1',
    ]);
    expect(limited.stdout).to.contain('3 rows, showing the first 1 (--limit)');
    const contents = await json<StateContents>([
      ckpt,
      '--query',
      'minutes',
      '--state',
      'windowAggregate',
      '--progress-log',
      progressLog,
    ]);
    expect(contents.matched).to.equal(1);
    expect(contents.internalRows).to.be.greaterThan(0);
    // The open window's key is its start, and its timeout is its end: when the watermark passes it, it is emitted.
    expect(contents.rows[0].key).to.equal(Date.parse('2024-05-01T10:02:00Z'));
    expect(contents.rows[0].timeoutMs).to.equal(Date.parse('2024-05-01T10:03:00Z'));
  });

  it('reads without writing anything, even temporary files a crash left behind', async () => {
    const stale = path.join(ckpt, 'totals', 'commits', '.0.123-abc.tmp');
    fs.writeFileSync(stale, 'partial');
    const before = tree(ckpt);
    await runCli(['checkpoint', ckpt]);
    await runCli([
      'checkpoint',
      ckpt,
      '--query',
      'totals',
      '--state',
      'mapGroupsWithState',
      '--progress-log',
      progressLog,
    ]);
    expect(tree(ckpt)).to.deep.equal(before);
    fs.rmSync(stale);
  });

  describe('damaged checkpoints', () => {
    let copy: string;
    beforeEach(() => {
      copy = path.join(root, `copy-${Math.random().toString(36).slice(2)}`);
      fs.cpSync(ckpt, copy, { recursive: true });
    });
    afterEach(() => fs.rmSync(copy, { recursive: true, force: true }));

    it('says that a batch was planned but not committed', async () => {
      const commits = path.join(copy, 'totals', 'commits');
      fs.rmSync(path.join(commits, '0'));
      const res = await runCli(['checkpoint', path.join(copy, 'totals')]);
      expect(res.code, res.stderr).to.equal(0);
      expect(res.stdout).to.contain('no batch committed yet');
      expect(res.stdout).to.contain('batch 0 planned, not committed: it runs again with the same offsets on restart');
    });

    it('names a corrupt commit file, shows what it can, and exits 1', async () => {
      const file = path.join(copy, 'minutes', 'commits', '1');
      fs.writeFileSync(file, 'v1\n{"batchId":1,"nextWatermarkMs":');
      const res = await runCli(['checkpoint', copy]);
      expect(res.code).to.equal(1);
      expect(res.stdout).to.contain(`problem: checkpoint file ${file} is corrupt`);
      expect(res.stdout).to.contain('query totals');
      const out = JSON.parse((await runCli(['checkpoint', copy, '--json'])).stdout);
      const minutes = out.queries.find((q: QueryCheckpointSummary) => q.name === 'minutes');
      expect(minutes.queryId).to.be.a('string');
      expect(minutes.problems).to.have.length(1);
    });

    it('names a missing or corrupt state file', async () => {
      const q = JSON.parse((await runCli(['checkpoint', path.join(copy, 'totals'), '--json'])).stdout);
      const partDir = stateDir(path.join(copy, 'totals'), q.stateOperators[0].id, 0);
      const delta = path.join(partDir, '1.delta');
      fs.writeFileSync(delta, Buffer.from('v1\nnot a state file'));
      const res = await runCli(['checkpoint', path.join(copy, 'totals')]);
      expect(res.code).to.equal(1);
      expect(res.stdout).to.contain(`problem: checkpoint file ${delta} is corrupt`);
      const state = await runCli(['checkpoint', path.join(copy, 'totals'), '--state', q.stateOperators[0].id]);
      expectOneLineError(
        state,
        1,
        new RegExp(`sluice: error: checkpoint file ${delta.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} is corrupt`),
      );
    });

    it('reports a missing metadata file', async () => {
      fs.rmSync(path.join(copy, 'totals', 'metadata'));
      const res = await runCli(['checkpoint', path.join(copy, 'totals')]);
      expect(res.code).to.equal(1);
      expect(res.stdout).to.contain('unknown (no readable metadata)');
      expect(res.stdout).to.contain('has no metadata file');
    });
  });

  describe('errors', () => {
    it('a missing directory', async () => {
      expectOneLineError(
        await runCli(['checkpoint', path.join(root, 'nope')]),
        1,
        /^sluice: error: checkpoint directory .*nope does not exist \(give the directory/,
      );
    });

    it('a directory that is not a checkpoint, and a file', async () => {
      expectOneLineError(await runCli(['checkpoint', path.join(root, 'in')]), 1, /is not a checkpoint directory/);
      expectOneLineError(
        await runCli(['checkpoint', path.join(root, 'in', 'p0.jsonl')]),
        1,
        /is a file, not a checkpoint directory/,
      );
    });

    it('an unknown operator or query, a bad limit, an unknown flag, no directory', async () => {
      expectOneLineError(
        await runCli(['checkpoint', ckpt, '--state', '99']),
        1,
        /no query in .* has a stateful operator '99' \(the operators are minutes: windowAggregate#\d+; totals: mapGroupsWithState#\d+\)/,
      );
      expectOneLineError(
        await runCli(['checkpoint', path.join(ckpt, 'totals'), '--state', '99']),
        1,
        /query \. has no stateful operator '99' \(its operators are: \d+ \(mapGroupsWithState#\d+\)\)/,
      );
      expectOneLineError(
        await runCli(['checkpoint', ckpt, '--query', 'nope']),
        1,
        /holds no query 'nope' \(its queries are: minutes, totals\)/,
      );
      expectOneLineError(
        await runCli(['checkpoint', ckpt, '--state', '1', '--limit', '-1']),
        2,
        /--limit must be a whole number/,
      );
      expectOneLineError(await runCli(['checkpoint', ckpt, '--jsn']), 2, /Unknown argument: jsn/);
      expectOneLineError(await runCli(['checkpoint']), 2, /Not enough non-option arguments/);
    });

    it('a progress log that does not exist', async () => {
      expectOneLineError(
        await runCli(['checkpoint', ckpt, '--progress-log', path.join(root, 'none.jsonl')]),
        1,
        /progress log .*none\.jsonl does not exist/,
      );
    });
  });
});

describe('readLastProgress', () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-'));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('finds the last line of a query across read chunks, skipping a torn last line and other queries', async () => {
    const file = path.join(dir, 'p.jsonl');
    const pad = 'x'.repeat(3000);
    const lines: string[] = [];
    for (let b = 0; b < 100; b++) lines.push(JSON.stringify({ id: b % 3 === 0 ? 'a' : 'b', batchId: b, pad }));
    fs.writeFileSync(file, `${lines.join('\n')}\n{"id":"a","batchId":1000,"pa`);
    expect((await readLastProgress(file, 'a'))!.batchId).to.equal(99);
    expect((await readLastProgress(file, 'b'))!.batchId).to.equal(98);
    expect(await readLastProgress(file, 'c')).to.equal(null);
    fs.writeFileSync(file, JSON.stringify({ id: 'a', batchId: 7 }));
    expect((await readLastProgress(file, 'a'))!.batchId).to.equal(7);
  });
});
