/**
 * The fenced code blocks of a Markdown document, and how each is checked. Every block has a kind; a block
 * whose kind cannot be told is an error, so a new block cannot escape the docs tests.
 */

/** One fenced block. */
export interface CodeBlock {
  /** The document, relative to the repository. */
  file: string;
  /** Line of the opening fence (1-based). */
  line: number;
  /** The fence's info string, e.g. `sh`, `ts`, or empty. */
  info: string;
  /** The lines between the fences. */
  text: string;
  /** The nearest heading above the block, without its `#`s. */
  heading: string;
}

/**
 * How a block is checked:
 * - `script`: a ```sh block, run with bash as it stands;
 * - `transcript`: `$ command` lines, each followed by the output it prints;
 * - `typescript`: a ```ts block, compiled against the built package and run (an app module with `sluice run`);
 * - `json`: an input record of the app whose README it is in, run through the app;
 * - `synopsis`: `sluice ...` usage lines, checked against the commands' and apps' options;
 * - `cluster`: a ```text block of `sluice` commands for a real Kafka cluster (and `#` comments), which cannot
 *   run here: their flags are checked as usage, their URIs by kafka-production.test.ts;
 * - `listing`: `PATH  what it holds` lines, checked against the files they name.
 */
export type BlockKind = 'script' | 'transcript' | 'typescript' | 'json' | 'synopsis' | 'cluster' | 'listing';

/** The fenced blocks of `markdown`, in order. */
export function codeBlocks(file: string, markdown: string): CodeBlock[] {
  const blocks: CodeBlock[] = [];
  const lines = markdown.split('\n');
  let heading = '';
  for (let i = 0; i < lines.length; i++) {
    const open = /^(```|~~~)\s*([\w-]*)/.exec(lines[i]);
    if (!open) {
      const h = /^#+\s+(.*)$/.exec(lines[i]);
      if (h) heading = h[1].trim();
      continue;
    }
    const body: string[] = [];
    let j = i + 1;
    while (j < lines.length && !lines[j].startsWith(open[1])) body.push(lines[j++]);
    if (j === lines.length) throw new Error(`${file}:${i + 1}: code block is not closed`);
    blocks.push({ file, line: i + 1, info: open[2], text: body.join('\n'), heading });
    i = j;
  }
  return blocks;
}

/** Lines joined with the indented lines that continue them (a long command or usage wrapped for reading). */
export function logicalLines(text: string): string[] {
  const out: string[] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    if (/^\s/.test(line) && out.length > 0) out[out.length - 1] += ` ${line.trim()}`;
    else out.push(line.trim());
  }
  return out;
}

/** How `block` is checked; throws when that cannot be told. */
export function blockKind(block: CodeBlock): BlockKind {
  const where = `${block.file}:${block.line}`;
  if (['sh', 'bash', 'shell'].includes(block.info)) return 'script';
  if (['ts', 'typescript'].includes(block.info)) return 'typescript';
  if (block.info === 'json') return 'json';
  if (block.info === 'text') {
    const commands = logicalLines(block.text).filter((l) => !l.startsWith('#'));
    if (commands.length > 0 && commands.every((l) => l.startsWith('sluice '))) return 'cluster';
  }
  if (block.info === '') {
    const lines = logicalLines(block.text);
    if (lines.length > 0 && lines[0].startsWith('$ ')) return 'transcript';
    if (lines.length > 0 && lines.every((l) => l.startsWith('sluice '))) return 'synopsis';
    if (lines.length > 0 && lines.every((l) => /^\S+ {2,}\S/.test(l))) return 'listing';
  }
  throw new Error(
    `${where}: cannot tell how to check this \`\`\`${block.info} block: use \`\`\`sh for commands to run, ` +
      '`$ command` lines followed by their output for a transcript, ```ts for TypeScript, ```json for an ' +
      "app's input record, `sluice ...` lines for usage, ```text for commands that need a Kafka cluster, or " +
      '`PATH  description` lines for a listing',
  );
}
