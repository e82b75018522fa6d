import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { expect } from 'chai';
import { open, type RootDatabase } from 'lmdb';
import { type BranchBudget, FileRead, LmdbFileReader, ManyReads } from '../../lib/state/lmdb-file-reader.js';

/** Key `i`: 1 to 40 bytes, so that branch pages split on keys of many lengths and prefixes of one another. */
function key(i: number): Buffer {
  const len = 1 + ((i * 13) % 40);
  const out = Buffer.alloc(len);
  let x = (i + 1) * 2654435761;
  for (let b = 0; b < len; b++) {
    out[b] = x & 0xff;
    x = Math.floor(x / 256) + b * 131;
  }
  return out;
}

function value(i: number, round: number): Buffer {
  return Buffer.alloc(8 + ((i + round) % 60), (i * 31 + round) & 0xff);
}

/** Reads `k` with the reader as the disk store does: its record, null when absent, 'map' when left to the map. */
function read(reader: LmdbFileReader, k: Buffer): Buffer | null | 'map' {
  const r = reader.get(k);
  if (r === FileRead.UseMap) return 'map';
  return r === FileRead.Absent ? null : Buffer.from(reader.page.subarray(reader.start, reader.end));
}

/** Reads `keys` with one getMany, each as read() reports it. */
function readMany(reader: LmdbFileReader, keys: Buffer[], out = new ManyReads()): (Buffer | null | 'map')[] {
  if (!reader.getMany(keys, out)) return keys.map(() => 'map');
  return keys.map((_, i) =>
    out.status[i] === FileRead.UseMap
      ? 'map'
      : out.status[i] === FileRead.Absent
        ? null
        : Buffer.from(out.bytes.subarray(out.start[i], out.end[i])),
  );
}

describe('LMDB file reader', () => {
  let dir: string;
  let env: RootDatabase;

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-lmdb-reader-'));
    env = open({ path: dir, maxDbs: 4, noSync: true });
  });

  afterEach(async () => {
    await env.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('reads what LMDB reads, key for key, across write transactions that reshape a three-level tree', () => {
    const state = env.openDB<Buffer, Buffer>({ name: 'state', keyEncoding: 'binary', encoding: 'binary' });
    const other = env.openDB<Buffer, Buffer>({ name: 'other', keyEncoding: 'binary', encoding: 'binary' });
    const budget: BranchBudget = { maxBytes: 1 << 30, usedBytes: 0 };
    const reader = new LmdbFileReader(path.join(dir, 'data.mdb'), 'state', () => 0, budget);
    const n = 150_000;
    expect(read(reader, key(1))).to.equal(null);
    expect(readMany(reader, [key(1), key(2)])).to.deep.equal([null, null]);
    for (let round = 0; round < 6; round++) {
      env.transactionSync(() => {
        for (let c = 0; c < 40_000; c++) {
          // Keys scattered over the range, a different stretch of them each round.
          const i = (c * 7919 + round * 104_729) % n;
          if ((c + round) % 5 === 0) state.removeSync(key(i));
          else state.putSync(key(i), value(i, round));
          // Another named database's pages interleave with the state's in the file.
          other.putSync(key(i), value(i, round + 1));
        }
      });
      reader.invalidate();
      let found = 0;
      const expected: (Buffer | null)[] = [];
      const keys: Buffer[] = [];
      for (let i = 0; i < n; i += 3) {
        expected.push(state.getBinary(key(i)) ?? null);
        keys.push(key(i));
        const got = read(reader, key(i));
        expect(got, `key ${i} after round ${round}`).to.deep.equal(expected[expected.length - 1]);
        if (expected[expected.length - 1] !== null) found++;
      }
      expect(found).to.be.above(5_000);
      // All at once, in a scattered order, and a few hundred at a time: whole reads of many leaves and of few.
      const order = keys.map((_, j) => (j * 7_919) % keys.length);
      expect(
        readMany(
          reader,
          order.map((j) => keys[j]),
        ),
      ).to.deep.equal(order.map((j) => expected[j]));
      const out = new ManyReads();
      for (let from = 0; from < keys.length; from += 300 + round * 1000) {
        const part = order.slice(from, from + 300);
        expect(
          readMany(
            reader,
            part.map((j) => keys[j]),
            out,
          ),
        ).to.deep.equal(part.map((j) => expected[j]));
      }
      expect(budget.usedBytes).to.be.above(0).and.equal(reader.sizeBytes);
    }
    // A root and the branch pages under it: three levels.
    expect(budget.usedBytes).to.be.above(4096);
    // Keys never put, before, between and after all of them.
    for (const k of [Buffer.from([0]), Buffer.alloc(41, 0xff), Buffer.from([0x80, 0x80, 0x80])])
      expect(read(reader, k)).to.deep.equal(state.getBinary(k) ?? null);
    reader.close();
    expect(budget.usedBytes).to.equal(0);
  });

  it('leaves reads to the map while the database is small, and records on overflow pages always', () => {
    const state = env.openDB<Buffer, Buffer>({ name: 'state', keyEncoding: 'binary', encoding: 'binary' });
    let mapFrom = Infinity;
    const reader = new LmdbFileReader(path.join(dir, 'data.mdb'), 'state', () => mapFrom, {
      maxBytes: 1 << 20,
      usedBytes: 0,
    });
    env.transactionSync(() => {
      for (let i = 0; i < 1000; i++) state.putSync(key(i), value(i, 0));
      state.putSync(Buffer.from('big'), Buffer.alloc(20_000, 7));
    });
    expect(read(reader, key(5))).to.equal('map');
    expect(readMany(reader, [key(5)])).to.deep.equal(['map']);
    mapFrom = 0;
    reader.invalidate();
    expect(read(reader, key(5))).to.deep.equal(value(5, 0));
    expect(read(reader, Buffer.from('big'))).to.equal('map');
    expect(readMany(reader, [key(5), Buffer.from('big'), Buffer.from('none')])).to.deep.equal([
      value(5, 0),
      'map',
      null,
    ]);
    reader.close();
  });

  it('leaves reads to the map when the file is not an LMDB file it knows', () => {
    const file = path.join(dir, 'not-lmdb');
    fs.writeFileSync(file, Buffer.alloc(16384, 1));
    const reader = new LmdbFileReader(file, 'state', () => 0, { maxBytes: 1 << 20, usedBytes: 0 });
    expect(reader.get(key(1))).to.equal(FileRead.UseMap);
    reader.close();
    const missing = new LmdbFileReader(path.join(dir, 'missing'), 'state', () => 0, { maxBytes: 0, usedBytes: 0 });
    expect(missing.get(key(1))).to.equal(FileRead.UseMap);
  });
});
