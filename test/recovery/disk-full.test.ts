import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { expect } from 'chai';
import { isTempFileName } from '../../lib/checkpoint/atomic-file.js';
import type { BankEntry } from '../../lib/gen/bank.js';
import {
  bankData,
  expectedBank,
  lastBalances,
  movementsByAccount,
  readSinkRows,
  tempDir,
  writeParts,
} from '../stateful/helpers.js';
import { type CliResult, readProgressLog, runCli } from '../support/cli.js';

const FILES = 12;

/** Temporary and pending files anywhere under `dir`: a write cut short must not leave any behind. */
function leftovers(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return (fs.readdirSync(dir, { recursive: true }) as string[]).filter((rel) => {
    const name = path.basename(rel);
    return isTempFileName(name) || name.endsWith('.pending');
  });
}

/** The run stopped with the one documented DISK_FULL line: exit 1, no stack trace. */
function expectDiskFull(res: CliResult, code: 'ENOSPC' | 'EDQUOT'): void {
  expect(res.code, res.stderr).to.equal(1);
  const lines = res.stderr.split('\n').filter(Boolean);
  expect(lines, res.stderr).to.have.length(1);
  expect(lines[0]).to.match(/^sluice: error: cannot write .+: no space left on the device \(/);
  expect(lines[0]).to.include(`(${code} on `);
  expect(lines[0]).to.include('free some space and run again');
}

describe('recovery: a full disk under every writer ends in DISK_FULL and resumes exactly once', function () {
  this.timeout(300_000);
  let root: string;
  let input: string;
  let entries: BankEntry[];

  before(() => {
    root = tempDir();
    input = path.join(root, 'in');
    entries = bankData(3000, 120);
    writeParts(
      input,
      entries.map((e) => JSON.stringify(e.operation)),
      3000 / FILES,
      '.jsonl',
    );
    // A line that does not parse, read with the last file: badRecordsPath sets it aside.
    const bad = path.join(input, 'part-9999.jsonl');
    fs.writeFileSync(bad, '{"account": "a1", "amount":\n');
    const t = new Date(1_700_000_000_000 + FILES * 1000);
    fs.utimesSync(bad, t, t);
  });
  after(() => fs.rmSync(root, { recursive: true, force: true }));

  /** `sluice run bank-account` over the input, into `dir`: a checkpoint, both outputs, rejected lines, progress. */
  function args(dir: string, threads: number): string[] {
    return [
      'run',
      'bank-account',
      '--source',
      `file:${input}?maxFilesPerTrigger=1&mode=DROPMALFORMED&badRecordsPath=${path.join(dir, 'bad')}`,
      '--sink',
      `movements=file:${path.join(dir, 'out', 'movements')}`,
      '--sink',
      `accounts=file:${path.join(dir, 'out', 'accounts')}`,
      '--checkpoint',
      path.join(dir, 'ckpt'),
      '--progress-log',
      path.join(dir, 'progress.jsonl'),
      '--trigger',
      'available-now',
      '--threads',
      String(threads),
      '--quiet',
    ];
  }

  /** Every operation's movement once, in order per account, and the final balances: the sequential fold. */
  function expectExactlyOnce(dir: string): void {
    const expected = expectedBank(entries);
    const movements = readSinkRows(path.join(dir, 'out', 'movements'));
    expect(movements, 'one movement per operation').to.have.length(entries.length);
    expect(movementsByAccount(movements)).to.deep.equal(expected.movements);
    expect(lastBalances(readSinkRows(path.join(dir, 'out', 'accounts')))).to.deep.equal(expected.balances);
    const rejected = (fs.readdirSync(path.join(dir, 'bad'), { recursive: true }) as string[]).filter((f) =>
      f.endsWith('.json'),
    );
    expect(rejected, 'the malformed line set aside once').to.have.length(1);
    // Readable line by line: a progress line cut short was taken back.
    expect(readProgressLog(path.join(dir, 'progress.jsonl')).length).to.be.greaterThan(0);
  }

  // Each writer, by a part of the paths it writes and which of its writes fails.
  const writers: { name: string; at: string; nth: number; threads?: number }[] = [
    { name: 'checkpoint metadata', at: '/ckpt/movements/metadata', nth: 1 },
    { name: 'offset log', at: '/ckpt/movements/offsets/', nth: 3 },
    { name: 'commit log', at: '/ckpt/accounts/commits/', nth: 5 },
    { name: "file source's file log", at: '/ckpt/accounts/sources/0/files/', nth: 1 },
    { name: 'state delta', at: '/ckpt/movements/state/', nth: 6 },
    { name: 'state delta on a worker thread', at: '/ckpt/accounts/state/', nth: 2, threads: 2 },
    { name: 'state snapshot', at: '.snapshot', nth: 1 },
    { name: 'sink data file', at: '/out/movements/.part-', nth: 7 },
    { name: 'sink manifest', at: '/out/accounts/_sluice_log/', nth: 3 },
    { name: 'badRecordsPath', at: '/bad/', nth: 1 },
    { name: 'progress log', at: 'progress.jsonl', nth: 5 },
  ];
  writers.forEach((w, i) => {
    const code = i % 2 === 0 ? 'ENOSPC' : 'EDQUOT';
    it(`${w.name}: ${code} stops the run in one line, a restart completes it exactly once`, async () => {
      const dir = path.join(root, `fault-${i}`);
      fs.mkdirSync(dir);
      const failed = await runCli(args(dir, w.threads ?? 0), {
        env: { SLUICE_WRITE_FAULT: `${code}:${w.at}:${w.nth}` },
      });
      expectDiskFull(failed, code);
      expect(leftovers(dir)).to.deep.equal([]);
      const res = await runCli(args(dir, w.threads ?? 0));
      expect(res.code, res.stderr).to.equal(0);
      expectExactlyOnce(dir);
    });
  });

  describe('a real full file system (tmpfs)', () => {
    /** Mounts a 2 MB tmpfs at `at`; false when mounting is not permitted here. */
    function mountTmpfs(at: string): boolean {
      fs.mkdirSync(at, { recursive: true });
      try {
        execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=2m', 'tmpfs', at], { stdio: 'pipe' });
        return true;
      } catch (err) {
        console.log(`      skipped: mounting a tmpfs is not permitted here (${String(err).split('\n')[0]})`);
        return false;
      }
    }

    /** Fills the file system of `dir` until `free` bytes are left; returns the filler to delete. */
    function fill(dir: string, free: number): string {
      const filler = path.join(dir, 'filler');
      const { bavail, bsize } = fs.statfsSync(dir);
      fs.writeFileSync(filler, Buffer.alloc(Math.max(0, bavail * bsize - free)));
      return filler;
    }

    for (const under of ['ckpt', 'out'] as const) {
      it(`a full tmpfs under --${under === 'ckpt' ? 'checkpoint' : 'sink'}: DISK_FULL, no temporary files; space freed, the restart is exactly once`, async function () {
        const dir = path.join(root, `tmpfs-${under}`);
        const mountPoint = path.join(dir, under);
        if (!mountTmpfs(mountPoint)) this.skip();
        try {
          const filler = fill(mountPoint, 64 * 1024);
          const failed = await runCli(args(dir, 0));
          expectDiskFull(failed, 'ENOSPC');
          expect(leftovers(dir)).to.deep.equal([]);
          fs.rmSync(filler);
          const res = await runCli(args(dir, 0));
          expect(res.code, res.stderr).to.equal(0);
          expectExactlyOnce(dir);
        } finally {
          execFileSync('umount', ['-l', mountPoint], { stdio: 'ignore' });
        }
      });
    }
  });
});
