import { expect } from 'chai';
import { blockKind, codeBlocks } from './markdown-blocks.js';
import { normaliseLine, outputMatches, parseTranscript } from './transcript.js';

describe('docs transcripts', () => {
  it('splits commands (continued with \\) from the output quoted under them, joining wrapped output lines', () => {
    const steps = parseTranscript(
      '$ sluice gen x \\\n    --to file:a/\nwrote\n$ cat a/*\n{"a":1,\n "b":2}\n  indented',
    );
    expect(steps).to.deep.equal([
      { command: 'sluice gen x \\\n    --to file:a/', expected: ['wrote'] },
      { command: 'cat a/*', expected: ['{"a":1,"b":2}', '  indented'] },
    ]);
  });

  it('compares exactly, except wall-clock times, durations, rates and the working directory', () => {
    expect(normaliseLine('batch 0: 6 rows in, 26 rows/s, 228 ms, in 0.67 s (7,487/s)')).to.equal(
      'batch 0: 6 rows in, N rows/s, N ms, in N s (N/s)',
    );
    expect(normaliseLine('|2026-12-05 09:58:...| 2024-01-01T03:24:19.038Z')).to.equal(
      '|<time>:...| 2024-01-01T03:24:19.038Z',
    );
    expect(normaliseLine('query sessions  (/tmp/x/ckpt/sessions) in /tmp/x', '/tmp/x')).to.equal(
      'query sessions  (ckpt/sessions) in .',
    );
    expect(outputMatches(['state rows 415'], 'state rows 419\n')).to.equal(false);
    expect(outputMatches(['a', 'b'], 'a\nb\nc\n')).to.equal(false);
    expect(outputMatches(['a', 'b'], 'a\nb\n\n')).to.equal(true);
  });

  it('lets `...` stand for lines left out, and for text within a line', () => {
    expect(outputMatches(['...', 'Batch: 5', 'x ... z'], 'Batch: 4\nBatch: 5\nx y z\n')).to.equal(true);
    expect(outputMatches(['first', '...'], 'first\n')).to.equal(true);
    expect(outputMatches(['...', 'Batch: 5'], 'Batch: 5\nBatch: 6\n')).to.equal(false);
    expect(outputMatches(['total 7037...'], 'total 6981, 500\n')).to.equal(false);
  });

  it('tells the kind of every block, and refuses a block it cannot check', () => {
    const md = [
      '# t',
      '```sh\nls\n```',
      '```\n$ ls\n```',
      '```\nsluice apps\n```',
      '```\nlib/   code\ndata/  samples\n```',
      '```ts\nlet a = 1;\n```',
      '```json\n{}\n```',
      '```\nsome text\n```',
    ].join('\n');
    const blocks = codeBlocks('x.md', md);
    expect(blocks.slice(0, 6).map(blockKind)).to.deep.equal([
      'script',
      'transcript',
      'synopsis',
      'listing',
      'typescript',
      'json',
    ]);
    expect(() => blockKind(blocks[6])).to.throw(/x\.md:21: cannot tell how to check/);
  });
});
