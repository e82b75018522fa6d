import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { expect } from 'chai';
import type { SluiceError } from '../../lib/errors.js';
import { SpillFile } from '../../lib/state/spill-file.js';
import { REPLAY_CHUNK, replayStateVersion, StateFileWriter } from '../../lib/state/state-file-format.js';
import { encode, FieldDictionary } from '../../lib/state/value-codec.js';

describe('spill file and streamed snapshots', () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-spill-'));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('gives back what was appended, in memory while it fits its buffer and through its file beyond, and removes the file', () => {
    for (const total of [1000, 5_000_000]) {
      const file = path.join(dir, `spill-${total}`);
      const spill = new SpillFile(file);
      const expected = Buffer.alloc(total);
      for (let i = 0; i < total; i++) expected[i] = (i * 31 + (i >>> 9)) & 0xff;
      // Appends of uneven sizes, one larger than the buffer.
      let at = 0;
      for (const n of [7, 1 << 21, 13]) {
        const end = Math.min(total, at + n);
        spill.write(expected.subarray(at, end));
        at = end;
      }
      spill.write(expected.subarray(at));
      spill.float64(1.5);
      expect(spill.length).to.equal(total + 8);
      expect(fs.existsSync(file)).to.equal(total > 1 << 20);
      for (let attempt = 0; attempt < 2; attempt++) {
        // Each chunk is copied before the next is asked for, as they share one buffer.
        const copies: Buffer[] = [];
        for (const chunk of spill.chunks()) copies.push(Buffer.from(chunk));
        const back = Buffer.concat(copies);
        expect(back.subarray(0, total).equals(expected)).to.equal(true);
        expect(back.readDoubleLE(total)).to.equal(1.5);
      }
      spill.remove();
      expect(fs.existsSync(file)).to.equal(false);
    }
  });

  it('stops on a full disk with the one-line DISK_FULL error naming its file', function () {
    const at = path.join(dir, 'small');
    fs.mkdirSync(at);
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=2m', 'tmpfs', at], { stdio: 'pipe' });
    } catch (err) {
      console.log(`      skipped: mounting a tmpfs is not permitted here (${String(err).split('\n')[0]})`);
      this.skip();
    }
    try {
      const file = path.join(at, 'records');
      const spill = new SpillFile(file);
      let failure: unknown;
      try {
        for (let i = 0; i < 8; i++) spill.write(Buffer.alloc(1 << 20, i));
      } catch (err) {
        failure = err;
      }
      expect((failure as SluiceError).code).to.equal('DISK_FULL');
      expect((failure as Error).message).to.include(file);
      spill.remove();
      expect(fs.readdirSync(at)).to.deep.equal([]);
    } finally {
      execFileSync('umount', ['-l', at], { stdio: 'ignore' });
    }
  });

  it('writes a snapshot larger than its buffers that replays to the same entries in load chunks, leaving no temporary file', async () => {
    const dict = new FieldDictionary();
    const n = 300_000;
    const key = (i: number) => Buffer.from(encode(`key-${i}`));
    const value = (i: number) => Buffer.from(encode({ i, text: `value of ${i}` }));
    const timeout = (i: number) => (i % 3 === 0 ? -1 : i * 10);
    await new StateFileWriter().writeSnapshotOf(dir, 4, dict.names, n, (visit) => {
      for (let i = 0; i < n; i++) visit(key(i), value(i), timeout(i));
    });
    expect(fs.readdirSync(dir)).to.deep.equal(['4.snapshot']);
    expect(fs.statSync(path.join(dir, '4.snapshot')).size).to.be.above(1 << 22);
    let seen = 0;
    await replayStateVersion(
      dir,
      0,
      4,
      {
        dict,
        put: () => expect.fail('a snapshot loads whole'),
        remove: () => expect.fail('a snapshot removes nothing'),
        load: (keys, values, timeouts, total) => {
          expect(total).to.equal(n);
          expect(keys.length).to.equal(Math.min(REPLAY_CHUNK, n - seen));
          for (let j = 0; j < keys.length; j++) {
            const i = seen + j;
            expect(Buffer.from(keys[j]).equals(key(i)), `key ${i}`).to.equal(true);
            expect(Buffer.from(values[j]).equals(value(i)), `value ${i}`).to.equal(true);
            expect(timeouts[j], `timeout ${i}`).to.equal(timeout(i));
          }
          seen += keys.length;
        },
      },
      (entries) => entries(),
    );
    expect(seen).to.equal(n);
  });

  it('removes its temporary files when the entries do not match their count', async () => {
    const writer = new StateFileWriter();
    let failure: unknown;
    try {
      await writer.writeSnapshotOf(dir, 2, [], 3, (visit) => {
        for (let i = 0; i < 200_000; i++) visit(encode(i), encode({ i }), i);
      });
    } catch (err) {
      failure = err;
    }
    expect(String(failure)).to.match(/more entries than the 3 counted/);
    const writer2 = new StateFileWriter();
    try {
      await writer2.writeSnapshotOf(dir, 3, [], 400_000, (visit) => {
        for (let i = 0; i < 200_000; i++) visit(encode(i), encode({ i }), i);
      });
    } catch (err) {
      failure = err;
    }
    expect(String(failure)).to.match(/200000 entries where 400000 were counted/);
    expect(fs.readdirSync(dir)).to.deep.equal([]);
  });
});
