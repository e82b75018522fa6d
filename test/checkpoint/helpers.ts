import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { expect } from 'chai';
import { SluiceError } from '../../lib/errors.js';

/** A fresh temporary directory per test, removed after it. */
export function useTmpDir(): () => string {
  let dir = '';
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-'));
  });
  afterEach(() => {
    fs.rmSync(dir, { recursive: true, force: true });
  });
  return () => dir;
}

/** Runs `fn` and returns the SluiceError it rejects with (fails the test otherwise). */
export async function sluiceErrorOf(fn: () => Promise<unknown>): Promise<SluiceError> {
  try {
    await fn();
  } catch (err) {
    expect(err).to.be.instanceOf(SluiceError);
    return err as SluiceError;
  }
  expect.fail('expected a SluiceError');
}

/** The batch ids in a query checkpoint's `offsets` or `commits` directory, ascending; none when it is missing. */
export function loggedBatches(queryCheckpoint: string, log: 'offsets' | 'commits'): number[] {
  const dir = path.join(queryCheckpoint, log);
  if (!fs.existsSync(dir)) return [];
  return fs
    .readdirSync(dir)
    .filter((n) => /^\d+$/.test(n))
    .map(Number)
    .sort((a, b) => a - b);
}
