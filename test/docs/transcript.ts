/**
 * Transcripts in the docs: `$ command` lines, each followed by the output it prints, and the rule by which
 * a quoted output is compared with what the command printed (stdout and stderr, as a terminal shows them).
 *
 * The comparison is exact, line by line, except for what genuinely varies from run to run:
 * - wall-clock times: any date and time from 2025 on (the data's event times are in 2024);
 * - durations and rates: a number followed by `ms`, `s`, `rows/s` or `/s`;
 * - the directory the commands run in, printed as `.`;
 * and what a quoted output leaves out on purpose: a line `...` (or `…`) stands for any number of lines,
 * and `...` within a line for any text. A quoted line indented by exactly one space continues the line
 * above it (a long line wrapped for reading); trailing blank lines do not count.
 */

/** One command of a transcript and the output quoted under it. */
export interface TranscriptStep {
  command: string;
  expected: string[];
}

/** The steps of a transcript block; a command line ending with `\` continues on the next line. */
export function parseTranscript(text: string): TranscriptStep[] {
  const steps: TranscriptStep[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    if (line.startsWith('$ ')) {
      let command = line.slice(2);
      while (command.endsWith('\\') && i + 1 < lines.length) command = `${command}\n${lines[++i]}`;
      steps.push({ command, expected: [] });
    } else if (steps.length === 0) {
      throw new Error(`a transcript starts with a \`$ command\` line, not '${line}'`);
    } else {
      const expected = steps[steps.length - 1].expected;
      if (/^ \S/.test(line) && expected.length > 0) expected[expected.length - 1] += line.slice(1);
      else expected.push(line);
    }
  }
  return steps;
}

const WALL_CLOCK = /\b(?:202[5-9]|20[3-9]\d|2[1-9]\d\d)-\d\d-\d\d[T ]\d\d:\d\d(?::\d\d(?:\.\d+)?)?Z?/g;
const DURATION_OR_RATE = /\b\d[\d,]*(?:\.\d+)?(?:( ?)(ms|s|rows\/s)\b|\/s\b)/g;

/** A line with what varies from run to run replaced (see the module comment). */
export function normaliseLine(line: string, cwd?: string): string {
  let out = line.trimEnd();
  if (cwd) out = out.split(`${cwd}/`).join('').split(cwd).join('.');
  return out
    .replace(WALL_CLOCK, '<time>')
    .replace(DURATION_OR_RATE, (_m, space: string | undefined, unit: string | undefined) =>
      unit === undefined ? 'N/s' : `N${space}${unit}`,
    );
}

function isElision(line: string): boolean {
  return line === '...' || line === '…';
}

/** The expected line as a pattern: `...` within it matches any text. */
function linePattern(expected: string): RegExp {
  const parts = expected.split(/\.\.\.|…/).map((p) => p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
  return new RegExp(`^${parts.join('.*')}$`, 's');
}

function withoutTrailingBlanks(lines: string[]): string[] {
  const out = [...lines];
  while (out.length > 0 && out[out.length - 1] === '') out.pop();
  return out;
}

/**
 * Whether `actual` (what the command printed) matches the quoted `expected` lines under the rule above.
 * `cwd` is the directory the command ran in.
 */
export function outputMatches(expected: string[], actual: string, cwd?: string): boolean {
  const want = withoutTrailingBlanks(expected.map((l) => normaliseLine(l)));
  const got = withoutTrailingBlanks(actual.split('\n').map((l) => normaliseLine(l, cwd)));
  const patterns = want.map((l) => (isElision(l) ? null : linePattern(l)));
  // matched[i][j]: the first i expected lines match the first j actual lines.
  const matched = Array.from({ length: want.length + 1 }, () => new Array<boolean>(got.length + 1).fill(false));
  matched[0][0] = true;
  for (let i = 1; i <= want.length; i++) {
    const p = patterns[i - 1];
    for (let j = 0; j <= got.length; j++) {
      matched[i][j] =
        p === null
          ? matched[i - 1][j] || (j > 0 && matched[i][j - 1])
          : j > 0 && matched[i - 1][j - 1] && p.test(got[j - 1]);
    }
  }
  return matched[want.length][got.length];
}
