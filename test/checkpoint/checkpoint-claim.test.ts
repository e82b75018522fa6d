import { type ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { expect } from 'chai';
import { Session } from '../../lib/api/session.js';
import { Checkpoint } from '../../lib/checkpoint/checkpoint.js';
import { CLAIM_FILE, type ClaimRecord } from '../../lib/checkpoint/checkpoint-claim.js';
import type { StreamSink } from '../../lib/sinks/sink.js';
import { MemoryStream } from '../../lib/testing/index.js';
import { readSinkRows } from '../stateful/helpers.js';
import { CLI, enrichEvents, enrichReference, runCli, TEST_APPS } from '../support/cli.js';
import { sluiceErrorOf, useTmpDir } from './helpers.js';

const CONF = { numStatePartitions: 4 };

function readClaim(dir: string): ClaimRecord {
  return JSON.parse(fs.readFileSync(path.join(dir, CLAIM_FILE), 'utf8')) as ClaimRecord;
}

function writeClaim(dir: string, claim: ClaimRecord): void {
  fs.writeFileSync(path.join(dir, CLAIM_FILE), JSON.stringify(claim));
}

/** A claim of a process on another machine, whose heartbeat is `ageMs` old. */
function otherHostClaim(ageMs: number): ClaimRecord {
  const at = Date.now() - ageMs;
  return { pid: 4242, host: 'other-host.example', startedAtMs: at - 1000, heartbeatAtMs: at, nonce: 'feedface' };
}

describe('checkpoint/checkpoint-claim: one process per checkpoint', () => {
  const tmp = useTmpDir();
  const dir = () => path.join(tmp(), 'ckpt');

  it('refuses a second open while the first holds the checkpoint, and allows it once closed', async () => {
    const first = await Checkpoint.open(dir(), CONF);
    const claim = readClaim(dir());
    expect(claim.pid).to.equal(process.pid);
    expect(claim.host).to.equal(os.hostname());
    const err = await sluiceErrorOf(() => Checkpoint.open(dir(), CONF));
    expect(err.code).to.equal('CHECKPOINT_IN_USE');
    expect(err.message).to.equal(
      `checkpoint ${dir()} is in use by process ${process.pid} on ${os.hostname()} since ${new Date(claim.startedAtMs).toISOString()}`,
    );
    await first.close();
    expect(fs.existsSync(path.join(dir(), CLAIM_FILE))).to.equal(false);
    await (await Checkpoint.open(dir(), CONF)).close();
  });

  it('takes over the claim of a process on this host that is gone', async () => {
    fs.mkdirSync(dir());
    // A pid that no process has: a child that has exited.
    const child = spawn(process.execPath, ['-e', '0']);
    await new Promise((resolve) => child.on('close', resolve));
    const now = Date.now();
    writeClaim(dir(), { pid: child.pid!, host: os.hostname(), startedAtMs: now, heartbeatAtMs: now, nonce: 'dead' });
    const cp = await Checkpoint.open(dir(), CONF);
    expect(readClaim(dir()).pid).to.equal(process.pid);
    await cp.close();
  });

  it('takes over a claim whose pid now belongs to another process', async () => {
    fs.mkdirSync(dir());
    const now = Date.now();
    writeClaim(dir(), {
      pid: process.pid,
      host: os.hostname(),
      startedAtMs: now,
      heartbeatAtMs: now,
      nonce: 'reused',
      processStart: '1',
    });
    const cp = await Checkpoint.open(dir(), CONF);
    expect(readClaim(dir()).nonce).to.not.equal('reused');
    await cp.close();
  });

  it('on another host, refuses a fresh heartbeat and takes over one older than the timeout', async () => {
    fs.mkdirSync(dir());
    writeClaim(dir(), otherHostClaim(5_000));
    const err = await sluiceErrorOf(() => Checkpoint.open(dir(), CONF));
    expect(err.message).to.include('is in use by process 4242 on other-host.example since');
    writeClaim(dir(), otherHostClaim(61_000));
    const cp = await Checkpoint.open(dir(), CONF);
    expect(readClaim(dir()).nonce).to.not.equal('feedface');
    expect(fs.readdirSync(dir()).filter((n) => n.startsWith(`${CLAIM_FILE}.`))).to.deep.equal([]);
    await cp.close();
  });

  it('refreshes its heartbeat while it runs', async () => {
    const cp = await Checkpoint.open(dir(), CONF, { claim: { heartbeatMs: 50 } });
    const before = readClaim(dir());
    await new Promise((resolve) => setTimeout(resolve, 300));
    const after = readClaim(dir());
    expect(after.nonce).to.equal(before.nonce);
    expect(after.heartbeatAtMs).to.be.greaterThan(before.heartbeatAtMs);
    await cp.close();
  });

  it('cannot plan or commit once another process took its claim over', async () => {
    const cp = await Checkpoint.open(dir(), CONF);
    writeClaim(dir(), otherHostClaim(0));
    const err = await sluiceErrorOf(() =>
      cp.commitBatch(0, { batchId: 0, nextWatermarkMs: 0, committedAtMs: Date.now() }),
    );
    expect(err.code).to.equal('CHECKPOINT_IN_USE');
    expect(err.message).to.include('is no longer this process').and.include('other-host.example');
    expect(fs.existsSync(path.join(dir(), 'commits', '0'))).to.equal(false);
    await cp.close();
    expect(readClaim(dir()).nonce, 'the new owner keeps its claim').to.equal('feedface');
  });

  describe('a run whose checkpoint is taken over while it works reports the takeover, not what failed after it', () => {
    /** A failure as the successor's clean-up of this process's temporary files causes it. */
    const vanished = () =>
      Object.assign(new Error("ENOENT: no such file or directory, rename '.initial-offsets.tmp'"), { code: 'ENOENT' });

    it('while it opens', async () => {
      const session = Session.local({ threads: 0 });
      const input = new MemoryStream<{ id: number }>(session, { id: 'long' });
      const sink: StreamSink = {
        description: 'TakenOverSink',
        initialize: async () => {
          writeClaim(dir(), otherHostClaim(0));
          throw vanished();
        },
        addBatch: async () => undefined,
        close: async () => undefined,
      };
      const err = await sluiceErrorOf(() =>
        input.toDS().writeStream.sink(sink).option('checkpointLocation', dir()).start(),
      );
      await session.stop();
      expect(err.code).to.equal('CHECKPOINT_IN_USE');
      expect(err.message).to.include('is no longer this process').and.include('other-host.example');
      expect(readClaim(dir()).nonce, 'the new owner keeps its claim').to.equal('feedface');
    });

    it('in a batch', async () => {
      const session = Session.local({ threads: 0 });
      const input = new MemoryStream<{ id: number }>(session, { id: 'long' });
      const q = await input
        .toDS()
        .writeStream.foreachBatch((_, batchId) => {
          if (batchId === 1) {
            writeClaim(dir(), otherHostClaim(0));
            throw vanished();
          }
        })
        .option('checkpointLocation', dir())
        .start();
      input.addData([{ id: 1 }]);
      await q.processAllAvailable();
      input.addData([{ id: 2 }]);
      const err = await sluiceErrorOf(() => q.awaitTermination());
      await session.stop();
      expect(err.code).to.equal('CHECKPOINT_IN_USE');
      expect(fs.readdirSync(path.join(dir(), 'commits'))).to.deep.equal(['0']);
    });
  });

  describe('two processes', function () {
    this.timeout(120_000);
    const children: ChildProcess[] = [];
    afterEach(() => {
      for (const c of children.splice(0)) c.kill('SIGKILL');
    });

    /** Waits until `check` holds, polling. */
    async function until(check: () => boolean, what: string, ms = 60_000): Promise<void> {
      const end = Date.now() + ms;
      while (!check()) {
        if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }

    function args(input: string, out: string, ckpt: string, trigger: string): string[] {
      return [
        'run',
        path.join(TEST_APPS, 'enrich.js'),
        '--source',
        `file:${input}`,
        '--sink',
        `file:${out}`,
        '--checkpoint',
        ckpt,
        '--trigger',
        trigger,
        '--quiet',
      ];
    }

    function spawnCli(argv: string[]): { child: ChildProcess; stderr: () => string } {
      const child = spawn(process.execPath, [CLI, ...argv], { stdio: ['ignore', 'ignore', 'pipe'] });
      let err = '';
      child.stderr!.on('data', (d) => {
        err += d;
      });
      children.push(child);
      return { child, stderr: () => err };
    }

    it('the second is refused naming the first; after a SIGKILL of the first, the next takes over: output exactly once', async () => {
      const input = path.join(tmp(), 'in');
      const out = path.join(tmp(), 'out');
      const ckpt = path.join(tmp(), 'ckpt');
      fs.mkdirSync(input);
      const events = enrichEvents(300);
      fs.writeFileSync(path.join(input, 'a.json'), `${events.map((e) => JSON.stringify(e)).join('\n')}\n`);
      const first = spawnCli(args(input, out, ckpt, '200ms'));
      await until(() => fs.existsSync(path.join(ckpt, 'out', 'commits', '0')), "the first run's batch 0");

      const second = await runCli(args(input, path.join(tmp(), 'out2'), ckpt, 'available-now'));
      expect(second.code, second.stderr).to.equal(1);
      const lines = second.stderr.split('\n').filter(Boolean);
      expect(lines).to.have.length(1);
      const claim = readClaim(path.join(ckpt, 'out'));
      expect(lines[0]).to.match(
        new RegExp(
          `^sluice: error: checkpoint ${ckpt}/out is in use by process ${first.child.pid} on ${os.hostname()} since ${new Date(claim.startedAtMs).toISOString().replace(/\./g, '\\.')} \\(`,
        ),
      );
      expect(fs.existsSync(path.join(tmp(), 'out2')), 'the refused run wrote nothing').to.equal(false);

      first.child.kill('SIGKILL');
      await new Promise((resolve) => first.child.on('close', resolve));
      expect(readClaim(path.join(ckpt, 'out')).pid, 'the claim survives the SIGKILL').to.equal(first.child.pid);
      fs.writeFileSync(
        path.join(input, 'b.json'),
        `${enrichEvents(600)
          .slice(300)
          .map((e) => JSON.stringify(e))
          .join('\n')}\n`,
      );
      const third = await runCli(args(input, out, ckpt, 'available-now'));
      expect(third.code, third.stderr).to.equal(0);
      const rows = readSinkRows(out).sort((a, b) => Number(a.id) - Number(b.id));
      expect(rows).to.deep.equal(enrichReference(enrichEvents(600)));
      expect(fs.existsSync(path.join(ckpt, 'out', CLAIM_FILE)), 'released at the end').to.equal(false);
    });

    it('a run whose claim was taken over stops without committing another batch', async () => {
      const input = path.join(tmp(), 'in');
      const out = path.join(tmp(), 'out');
      const ckpt = path.join(tmp(), 'ckpt');
      fs.mkdirSync(input);
      fs.writeFileSync(path.join(input, 'a.json'), `${JSON.stringify(enrichEvents(1)[0])}\n`);
      const run = spawnCli(args(input, out, ckpt, '200ms'));
      const commits = path.join(ckpt, 'out', 'commits');
      await until(() => fs.existsSync(path.join(commits, '0')), 'batch 0');
      writeClaim(path.join(ckpt, 'out'), otherHostClaim(0));
      const committed = fs.readdirSync(commits).length;
      fs.writeFileSync(path.join(input, 'b.json'), `${JSON.stringify(enrichEvents(2)[1])}\n`);
      const code = await new Promise((resolve) => run.child.on('close', resolve));
      expect(code, run.stderr()).to.equal(1);
      expect(run.stderr()).to.match(
        /sluice: error: checkpoint .* is no longer this process's: it was taken over by process 4242 on other-host\.example/,
      );
      expect(fs.readdirSync(commits)).to.have.length(committed);
    });
  });
});
