/** Plain-text tables and figures for the command line. */

/** Column alignment: numbers read best right-aligned. */
export type Align = 'left' | 'right';

/** Cells longer than this are cut with an ellipsis, so one large state value does not wreck the table. */
const MAX_CELL = 60;

function cut(s: string, max: number): string {
  const oneLine = s.replace(/\s*\n\s*/g, ' ');
  return oneLine.length > max ? `${oneLine.slice(0, max - 1)}…` : oneLine;
}

/**
 * Renders rows under a header, columns separated by two spaces, each cell cut to `maxCell` characters.
 * `align[i]` defaults to right for columns whose every cell is a number, left otherwise.
 */
export function formatTable(
  headers: string[],
  rows: string[][],
  options: { align?: Align[]; maxCell?: number; indent?: string } = {},
): string {
  const max = options.maxCell ?? MAX_CELL;
  const cells = rows.map((r) => headers.map((_, i) => cut(r[i] ?? '', max)));
  const align = headers.map(
    (_, i) =>
      options.align?.[i] ??
      (cells.length > 0 && cells.every((r) => /^-?[\d.,]+( ?[KMGT]?i?B| ms|%)?$/.test(r[i]) || r[i] === '')
        ? 'right'
        : 'left'),
  );
  const width = headers.map((h, i) => Math.max(h.length, ...cells.map((r) => r[i].length)));
  const line = (r: string[]): string =>
    (options.indent ?? '') +
    r
      .map((c, i) => (align[i] === 'right' ? c.padStart(width[i]) : c.padEnd(width[i])))
      .join('  ')
      .trimEnd();
  return [line(headers), ...cells.map(line)].join('\n');
}

/** `1234567` → `1,234,567`; fractions are rounded. */
export function formatCount(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

/** Bytes in binary units: `512 B`, `1.5 KiB`, `12.0 MiB`. */
export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${v} B` : `${v.toFixed(1)} ${units[u]}`;
}

/** A rate: `950`, `12.3k`, `4.56M` (for a status line where space is short). */
export function formatRate(n: number): string {
  if (!Number.isFinite(n)) return '-';
  if (n < 1000) return n < 10 ? n.toFixed(1).replace(/\.0$/, '') : String(Math.round(n));
  if (n < 1e6) return `${(n / 1e3).toFixed(n < 1e4 ? 2 : 1)}k`;
  return `${(n / 1e6).toFixed(n < 1e7 ? 2 : 1)}M`;
}
