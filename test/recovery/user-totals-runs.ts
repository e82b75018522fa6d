import * as fs from 'node:fs';
import * as path from 'node:path';
import { expect } from 'chai';
import { readSinkRows, tempDir, writeParts } from '../stateful/helpers.js';
import { runCli, TEST_APPS } from '../support/cli.js';

/** The user-totals app's two outputs. */
export const OUTPUTS = ['totals', 'minutes'];

/** What a recovery suite over the user-totals app runs against: see {@link userTotalsRuns}. */
export interface UserTotalsRuns {
  /** The suite's temporary directory; its reference run wrote `ref` and `ref-ckpt` there. */
  readonly root: string;
  /** Each output's rows of the uninterrupted run, as sorted JSON lines. */
  readonly reference: Record<string, string[]>;
  /** The CLI arguments of a run writing its outputs below `out`, checkpointing in `ckpt`. */
  args(out: string, ckpt: string, threads: number): string[];
  /** The rows a run wrote to `output` below `out`, as sorted JSON lines. */
  rowsOf(out: string, output: string): string[];
}

/**
 * Registers a suite's hooks for the user-totals app (two stateful queries) over 480 payments in 12 files, two
 * files a batch (six batches), to the end of the input: before the tests, a run that is never killed gives the
 * reference; after them the temporary directory goes.
 */
export function userTotalsRuns(): UserTotalsRuns {
  const app = path.join(TEST_APPS, '..', '..', 'cli', 'apps', 'user-totals.js');
  const runs = {
    root: '',
    reference: {} as Record<string, string[]>,
    args: (out: string, ckpt: string, threads: number): string[] => [
      'run',
      app,
      '--source',
      `payments=file:${path.join(runs.root, 'in')}?maxFilesPerTrigger=2`,
      ...OUTPUTS.flatMap((o) => ['--sink', `${o}=file:${path.join(out, o)}`]),
      '--checkpoint',
      ckpt,
      '--trigger',
      'available-now',
      '--threads',
      String(threads),
      '--quiet',
    ],
    rowsOf: (out: string, output: string): string[] =>
      readSinkRows(path.join(out, output))
        .map((r) => JSON.stringify(r))
        .sort(),
  };
  before(async () => {
    runs.root = tempDir();
    const lines = Array.from({ length: 480 }, (_, i) =>
      JSON.stringify({ ts: new Date(1_700_000_000_000 + i * 1000).toISOString(), user: `u${i % 7}`, amount: i % 11 }),
    );
    writeParts(path.join(runs.root, 'in'), lines, 40, '.jsonl');
    const res = await runCli(runs.args(path.join(runs.root, 'ref'), path.join(runs.root, 'ref-ckpt'), 0));
    expect(res.code, res.stderr).to.equal(0);
    for (const o of OUTPUTS) runs.reference[o] = runs.rowsOf(path.join(runs.root, 'ref'), o);
  });
  after(() => fs.rmSync(runs.root, { recursive: true, force: true }));
  return runs;
}
