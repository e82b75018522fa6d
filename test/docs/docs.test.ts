/**
 * Every code block and quoted output of README.md and apps/*\/README.md, executed as a reader would: the
 * blocks of one document run in order in one workspace (doc-workspace.ts), each checked by its kind
 * (markdown-blocks.ts, block-checks.ts). A block of a kind that cannot be told fails, so none is skipped.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { expect } from 'chai';
import { runCli } from '../support/cli.js';
import {
  checkClusterCommands,
  checkJsonRecord,
  checkListing,
  checkScript,
  checkSynopsis,
  checkTranscript,
  checkTypeScript,
} from './block-checks.js';
import { type DocWorkspace, emptyWorkspace, ROOT, repositoryCopy } from './doc-workspace.js';
import { blockKind, type CodeBlock, codeBlocks } from './markdown-blocks.js';

/** README.md, then each app's README. */
const DOCS = [
  'README.md',
  ...fs
    .readdirSync(path.join(ROOT, 'apps'))
    .sort()
    .map((app) => `apps/${app}/README.md`)
    .filter((f) => fs.existsSync(path.join(ROOT, f))),
];

/** Time a README.md block may take: it installs and builds a fresh copy of the repository. */
const README_MS = 20 * 60_000;
/** Time an app README block may take. */
const APP_MS = 5 * 60_000;

/** Lines of every `*.jsonl` file in `dir`. */
function jsonLines(dir: string): string[] {
  return fs
    .readdirSync(dir)
    .filter((f) => f.endsWith('.jsonl'))
    .flatMap((f) => fs.readFileSync(path.join(dir, f), 'utf8').split('\n').filter(Boolean));
}

/** Processes still running whose command line mentions `text`. */
function processesMentioning(text: string): string[] {
  return fs
    .readdirSync('/proc')
    .filter((p) => /^\d+$/.test(p) && Number(p) !== process.pid)
    .flatMap((p) => {
      try {
        const cmd = fs.readFileSync(`/proc/${p}/cmdline`, 'utf8').replace(/\0/g, ' ');
        return cmd.includes(text) ? [`${p}: ${cmd}`] : [];
      } catch {
        return []; // ended meanwhile
      }
    });
}

/**
 * The tour's comments promise that the killed run is gone and that, after the restart, every completed
 * session is written exactly once: the same sessions as a run that was never killed, none twice.
 */
async function checkTourClaims(ws: DocWorkspace): Promise<void> {
  const work = fs
    .readdirSync(ws.tmp)
    .map((d) => path.join(ws.tmp, d))
    .find((d) => fs.existsSync(path.join(d, 'clicks')) && fs.existsSync(path.join(d, 'sessions')));
  expect(work, 'the tour wrote sessions under its $work').to.be.a('string');
  expect(processesMentioning(work!), 'processes of the tour still running after it').to.deep.equal([]);
  const ids = jsonLines(path.join(work!, 'sessions')).map((r) => (JSON.parse(r) as { session_id: string }).session_id);
  expect(new Set(ids).size, 'sessions written twice').to.equal(ids.length);
  const clean = fs.mkdtempSync(path.join(ws.tmp, 'clean-'));
  const res = await runCli([
    'run',
    'clickstream-sessions',
    '--source',
    `file:${work}/clicks`,
    '--sink',
    `sessions=file:${clean}/sessions`,
    '--checkpoint',
    `${clean}/ckpt`,
    '--trigger',
    'available-now',
    '-q',
  ]);
  expect(res.code, res.stderr).to.equal(0);
  const expected = jsonLines(path.join(clean, 'sessions')).map(
    (r) => (JSON.parse(r) as { session_id: string }).session_id,
  );
  expect([...ids].sort(), 'the sessions of a run that was never killed').to.deep.equal(expected.sort());
}

/** What some blocks promise beyond running cleanly, by `file#heading`; checked after the block ran. */
const CLAIMS: Record<string, (ws: DocWorkspace) => Promise<void>> = {
  'README.md#Five-minute tour': checkTourClaims,
};

async function check(block: CodeBlock, ws: DocWorkspace, timeoutMs: number): Promise<void> {
  switch (blockKind(block)) {
    case 'script':
      checkScript(block, ws, timeoutMs);
      break;
    case 'transcript':
      checkTranscript(block, ws, timeoutMs);
      break;
    case 'typescript':
      await checkTypeScript(block, ws);
      break;
    case 'json':
      await checkJsonRecord(block, ws);
      break;
    case 'synopsis':
      await checkSynopsis(block);
      break;
    case 'cluster':
      await checkClusterCommands(block);
      break;
    case 'listing':
      await checkListing(block, ws);
      break;
  }
  await CLAIMS[`${block.file}#${block.heading}`]?.(ws);
}

function title(block: CodeBlock): string {
  let kind: string;
  try {
    kind = blockKind(block);
  } catch {
    kind = 'block of unknown kind';
  }
  return `${kind} at line ${block.line} (${block.heading})`;
}

for (const file of DOCS) {
  describe(`${file}: every code block and quoted output does what it says`, () => {
    const blocks = codeBlocks(file, fs.readFileSync(path.join(ROOT, file), 'utf8'));
    const timeoutMs = file === 'README.md' ? README_MS : APP_MS;
    let ws: DocWorkspace | undefined;
    after(() => ws?.remove());

    it('has code blocks', () => expect(blocks).to.not.be.empty);
    for (const block of blocks) {
      it(title(block), async function () {
        this.timeout(timeoutMs + 60_000);
        ws ??= file === 'README.md' ? repositoryCopy() : emptyWorkspace();
        await check(block, ws, timeoutMs);
      });
    }
  });
}
