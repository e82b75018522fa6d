#!/usr/bin/env node
// `npm run demo`: the deposit-sessions job (mapGroupsWithState with deposit-driven session
// closing) over the sample lines in data/deposits, printed to the console Spark-style. Each run uses a
// fresh checkpoint so the demo always shows output; pass --checkpoint DIR to see a restart continue.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const extra = process.argv.slice(2);
const checkpoint = extra.includes('--checkpoint')
  ? []
  : ['--checkpoint', fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-demo-'))];
// The sluice command itself (a launcher that starts Node as users get it), not `node main.js`.
const sluice = path.join(root, 'dist/lib/cli/main.js');
const args = [
  'run',
  'deposit-sessions',
  '--source',
  `file:${path.join(root, 'data/deposits')}?maxFilesPerTrigger=1`,
  '--sink',
  'console:?numRows=15',
  '--trigger',
  'available-now',
  ...checkpoint,
  ...extra,
];
const res = spawnSync(sluice, args, { stdio: 'inherit' });
process.exit(res.status ?? 1);
