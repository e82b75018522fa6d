import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import type { SinkManifest } from '../../lib/sinks/file-commit-protocol.js';
import { FileSink } from '../../lib/sinks/file-sink.js';
import { ParquetSink } from '../../lib/sinks/parquet-sink.js';
import {
  CRASH_BATCH,
  CRASH_ROWS,
  CRASH_STEPS,
  crashSinkOptions,
  eventTable,
  removeDir,
  sinkContext,
  tempDir,
} from './fixtures.js';
import { duckdb, listFiles, parquetGlob, readJsonLines, visibleDataFiles } from './helpers.js';

const CHILD = path.join(path.dirname(fileURLToPath(import.meta.url)), 'crash-child.js');

type Kind = 'parquet' | 'file';

function runChild(
  kind: Kind,
  dir: string,
  crashAt: number,
): Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CHILD, kind, dir, String(crashAt)], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    child.on('error', reject);
    child.on('exit', (code, signal) => resolve({ code, signal, stderr }));
  });
}

async function visibleIds(kind: Kind, out: string): Promise<number[]> {
  if (kind === 'parquet') {
    if (visibleDataFiles(out, '.parquet').length === 0) return [];
    return (await duckdb(`SELECT id FROM ${parquetGlob(out)} ORDER BY id`)).map((r) => Number(r.id));
  }
  return readJsonLines(out)
    .map((r) => r.id as number)
    .sort((a, b) => a - b);
}

function idsOfBatches(batches: number[]): number[] {
  return batches.flatMap((b) => Array.from({ length: CRASH_ROWS }, (_, i) => b * 1000 + i));
}

function readManifest(out: string, batchId: number): SinkManifest | null {
  const file = path.join(out, '_sluice_log', String(batchId));
  if (!fs.existsSync(file)) return null;
  return JSON.parse(fs.readFileSync(file, 'utf8').split('\n')[1]) as SinkManifest;
}

const EARLIER = idsOfBatches([0, 1, 2]);
const ALL = idsOfBatches([0, 1, 2, 3]);

// Every step for Parquet; for the file sink, which shares the protocol, the steps where the state on
// disk changes kind: first file staged, all staged, committed, half published, done.
const CRASH_POINTS: Record<Kind, number[]> = {
  parquet: Array.from({ length: CRASH_STEPS }, (_, i) => i),
  file: [0, 3, 4, 6, 9],
};

for (const kind of ['parquet', 'file'] as const) {
  describe(`${kind} sink: SIGKILL at every step of a batch, restart, replay`, function () {
    this.timeout(120_000);
    const ext = kind === 'parquet' ? '.parquet' : '.jsonl';
    let dir: string;
    beforeEach(() => {
      dir = tempDir();
    });
    afterEach(() => removeDir(dir));

    for (const crashAt of CRASH_POINTS[kind]) {
      it(`crash at step ${crashAt} of batch ${CRASH_BATCH}: never a row twice, each row once after the replay`, async () => {
        const { signal, stderr } = await runChild(kind, dir, crashAt);
        expect(signal, stderr).to.equal('SIGKILL');
        const out = crashSinkOptions(dir).path;
        const manifest = readManifest(out, CRASH_BATCH);

        // Right after the crash, before any restart: earlier batches are whole, nothing is doubled, and
        // a visible file of the crashed batch is always one its committed manifest lists.
        const crashed = await visibleIds(kind, out);
        expect(new Set(crashed).size).to.equal(crashed.length);
        expect(crashed.filter((id) => id < CRASH_BATCH * 1000)).to.deep.equal(EARLIER);
        const visibleOfBatch = visibleDataFiles(out, ext).filter((f) => f.includes(`part-0000000${CRASH_BATCH}-`));
        expect(visibleOfBatch).to.satisfy((files: string[]) =>
          files.every((f) => manifest?.files.some((m) => m.path === f)),
        );

        // Restart: initialize cleans up first, so batch 3 is visible whole (committed) or not at all.
        const sink = kind === 'parquet' ? new ParquetSink(crashSinkOptions(dir)) : new FileSink(crashSinkOptions(dir));
        await sink.initialize(sinkContext(dir));
        expect(await visibleIds(kind, out)).to.deep.equal(manifest ? ALL : EARLIER);
        expect(listFiles(out).filter((f) => path.basename(f).startsWith('.'))).to.deep.equal([]);

        // The driver replays batch 3 with the same data: each row is then listed exactly once.
        await sink.addBatch(CRASH_BATCH, eventTable(CRASH_BATCH, CRASH_ROWS));
        expect(await visibleIds(kind, out)).to.deep.equal(ALL);
        expect(visibleDataFiles(out, ext)).to.have.length(16);
      });
    }

    it('a batch that completed before the crash is not written again by its replay', async () => {
      const { code, stderr } = await runChild(kind, dir, CRASH_STEPS);
      expect(code, stderr).to.equal(0);
      const out = crashSinkOptions(dir).path;
      const before = listFiles(out).map((f) => [f, fs.statSync(path.join(out, f)).mtimeMs]);
      const sink = kind === 'parquet' ? new ParquetSink(crashSinkOptions(dir)) : new FileSink(crashSinkOptions(dir));
      await sink.initialize(sinkContext(dir));
      await sink.addBatch(CRASH_BATCH, eventTable(CRASH_BATCH, CRASH_ROWS));
      expect(listFiles(out).map((f) => [f, fs.statSync(path.join(out, f)).mtimeMs])).to.deep.equal(before);
      expect(await visibleIds(kind, out)).to.deep.equal(ALL);
    });
  });
}
