import * as fs from 'node:fs';
import * as path from 'node:path';
import { type GenArgs, runGen } from './gen-command.js';

/**
 * The sample data sets committed under `data/`, each defined by the `sluice gen` arguments that
 * produce it, so `data/README.md` can list the exact commands and a test can check the committed files
 * are what the generators give today.
 */
export interface Sample {
  /** Folder under the data root. */
  dir: string;
  /** `sluice gen` arguments, without `--to` (the target is `file:<root>/<dir>/`). */
  args: string[];
}

/** The committed samples (a few thousand records each, < 1 MB together). */
export const SAMPLES: readonly Sample[] = [
  {
    dir: 'clickstream',
    args: [
      'clickstream',
      '--count',
      '2000',
      '--seed',
      '3',
      '--users',
      '150',
      '--spacing',
      '3s',
      '--max-out-of-orderness',
      '5m',
      '--late-fraction',
      '0.01',
      '--rows-per-file',
      '500',
    ],
  },
  {
    dir: 'transactions',
    args: [
      'transactions',
      '--count',
      '2000',
      '--seed',
      '0',
      '--customers',
      '50',
      '--spacing',
      '3s',
      '--max-out-of-orderness',
      '10s',
      '--rows-per-file',
      '1000',
    ],
  },
  { dir: 'deposits', args: ['deposits', '--count', '2000', '--seed', '1', '--sessions', '10'] },
  { dir: 'bank', args: ['bank', '--count', '2000', '--seed', '2', '--accounts', '20'] },
];

/** `--flag value` pairs after the dataset name as GenArgs (flags in kebab case, as on the command line). */
export function sampleArgs(sample: Sample, root: string): GenArgs {
  const [datasetName, ...rest] = sample.args;
  const out: Record<string, unknown> = { dataset: datasetName, to: `file:${path.join(root, sample.dir)}/` };
  for (let i = 0; i < rest.length; i += 2) {
    const key = rest[i].replace(/^--/, '').replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
    out[key] = rest[i + 1];
  }
  return out as unknown as GenArgs;
}

/** The shell command that regenerates a sample into `data/` (for the README). */
export function sampleCommand(sample: Sample): string {
  return `sluice gen ${sample.args.join(' ')} --to file:data/${sample.dir}/`;
}

/**
 * Writes every sample under `root`, replacing part files left from an earlier run (so numbering starts
 * at part-0000 again). Returns the files written.
 */
export async function writeSamples(root: string, stderr: NodeJS.WritableStream = process.stderr): Promise<string[]> {
  const files: string[] = [];
  for (const sample of SAMPLES) {
    const dir = path.join(root, sample.dir);
    if (fs.existsSync(dir)) {
      for (const name of fs.readdirSync(dir)) if (/^part-\d+\./.test(name)) fs.rmSync(path.join(dir, name));
    }
    const summary = await runGen(sampleArgs(sample, root), { stderr, signal: new AbortController().signal });
    files.push(...(summary.files ?? []));
  }
  return files;
}
