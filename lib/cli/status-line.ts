/**
 * How `sluice run` reports progress on stderr: on a terminal, one status line rewritten in place
 * (batch, input and processing rate, watermark, state rows of every query); elsewhere (a pipe, a file,
 * CI) one plain log line per batch, which greps and tails well.
 */
import type { QueryProgress } from '../exec/progress.js';
import { END_OF_INPUT_WATERMARK_MS } from '../sources/source.js';
import { formatCount, formatRate } from './text-table.js';

/** Receives what `sluice run` has to say while queries run. */
export interface ProgressReporter {
  /** The queries that will report (the live line lists them before their first batch). */
  expect(outputs: readonly string[]): void;
  /** A batch of query `output` finished. */
  progress(output: string, p: QueryProgress): void;
  /** A message of its own line (started, stopping). */
  log(line: string): void;
  /** Ends the live line, so what follows starts on a fresh line. Idempotent. */
  close(): void;
}

/** The part of a tty.WriteStream the reporter uses; tests pass a fake. */
export interface StatusStream {
  write(chunk: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

/** A stream whose writes the live line must step around (stdout on the same terminal, e.g. the console sink). */
export interface SharedStream {
  // Method syntax: its parameters are checked bivariantly, so process.stdout and other streams fit as they are.
  write(chunk: unknown, ...rest: unknown[]): boolean;
  isTTY?: boolean;
}

/** Options of {@link progressReporter}. */
export interface ProgressReporterOptions {
  /** No batch lines and no live line (messages are still written). */
  quiet?: boolean;
  /** Force the live line on or off; default: on when the stream is a terminal. */
  live?: boolean;
  /** Another stream on the same terminal whose output must not collide with the live line. */
  shared?: SharedStream;
  /** Wall clock for the elapsed time; tests pass a fake. */
  now?: () => number;
  /** Redraw the elapsed time this often (ms); 0 disables the timer. Default 1000. */
  tickMs?: number;
}

const CLEAR_LINE = '\r\x1b[2K';

/**
 * The watermark as progress reports it, `end of input` once every source has reached its end, or null when
 * there is none to show: the query has no event time, or no watermark yet (shown as none, as the UI does).
 */
function watermarkLabel(iso: string | undefined): string | null {
  if (iso === undefined || !(Date.parse(iso) > 0)) return null;
  return Date.parse(iso) >= END_OF_INPUT_WATERMARK_MS ? 'end of input' : iso;
}

/** The watermark label made short for the live line (date and time without the `T` and milliseconds). */
function watermarkText(iso: string | undefined): string | null {
  const label = watermarkLabel(iso);
  return label === null || label === 'end of input'
    ? label
    : label
        .replace('T', ' ')
        .replace(/\.\d+Z$/, 'Z')
        .replace(/Z$/, '');
}

/** The malformed rows of one batch, over its sources. */
export function malformedRowsOf(p: QueryProgress): number {
  return p.sources.reduce((n, s) => n + s.numMalformedRows, 0);
}

function stateRows(p: QueryProgress): number {
  return p.stateOperators.reduce((n, s) => n + s.numRowsTotal, 0);
}

/**
 * Where a batch's time went, in whole milliseconds, for its log line: the driver's phases and, within addBatch,
 * reading, exchange, state commit and sink; phases under 1 ms are left out.
 */
export function durationsText(d: QueryProgress['durationMs']): string {
  const parts: [string, number][] = [
    ['offsets', d.latestOffset + d.getBatch],
    ['plan', d.queryPlanning],
    ['wal', d.walCommit],
    ['read', d.read],
    ['exchange', d.exchange],
    ['state commit', d.stateCommit],
    ['sink', d.sink],
    ['commit', d.commitOffsets],
  ];
  return parts
    .filter(([, ms]) => ms >= 0.5)
    .map(([name, ms]) => `${name} ${Math.round(ms)}`)
    .join(', ');
}

/** The plain log line of one batch (the non-terminal format). */
export function progressLine(output: string, p: QueryProgress): string {
  const wm = watermarkLabel(p.eventTime.watermark);
  const parts = durationsText(p.durationMs);
  return (
    `[${output}] batch ${p.batchId}: ${p.numInputRows} rows in, ${p.sink.numOutputRows} out, ` +
    `${Math.round(p.processedRowsPerSecond)} rows/s, ${Math.round(p.durationMs.triggerExecution)} ms` +
    (parts ? ` (${parts})` : '') +
    (wm !== null ? `, watermark ${wm}` : '') +
    (p.stateOperators.length ? `, state rows ${stateRows(p)}` : '') +
    (malformedRowsOf(p) > 0 ? `, ${malformedRowsOf(p)} malformed` : '')
  );
}

function elapsedText(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  const hh = Math.floor(s / 3600);
  const mm = String(Math.floor((s % 3600) / 60)).padStart(2, '0');
  const ss = String(s % 60).padStart(2, '0');
  return hh > 0 ? `${hh}:${mm}:${ss}` : `${mm}:${ss}`;
}

/** One query's part of the status line; `malformed` is the query's malformed input rows so far. */
export function querySummary(output: string, p: QueryProgress, malformed = 0): string {
  const parts = [
    `${output} #${p.batchId}`,
    `in ${formatRate(p.inputRowsPerSecond)}/s`,
    `proc ${formatRate(p.processedRowsPerSecond)}/s`,
  ];
  if (malformed > 0) parts.push(`${formatCount(malformed)} malformed`);
  const wm = watermarkText(p.eventTime.watermark);
  if (wm !== null) parts.push(`wm ${wm}`);
  if (p.stateOperators.length > 0) parts.push(`state ${formatCount(stateRows(p))}`);
  // The records still to read over every partition of every Kafka source (not the largest partition's share).
  const lag = p.sources.reduce((n, s) => n + (s.metrics?.totalOffsetsBehindLatest ?? 0), 0);
  if (p.sources.some((s) => s.metrics?.totalOffsetsBehindLatest !== undefined))
    parts.push(`Kafka lag ${formatCount(lag)} total`);
  return parts.join(' ');
}

/**
 * The whole status line: elapsed time, then each query's summary (queries without a batch yet say so),
 * cut to `width` columns. `malformed` holds each query's malformed input rows so far.
 */
export function statusLine(
  outputs: readonly string[],
  latest: ReadonlyMap<string, QueryProgress>,
  elapsedMs: number,
  width: number,
  malformed: ReadonlyMap<string, number> = new Map(),
): string {
  const body = outputs
    .map((o) => {
      const p = latest.get(o);
      return p ? querySummary(o, p, malformed.get(o)) : `${o} waiting for the first batch`;
    })
    .join(' │ ');
  const line = `${elapsedText(elapsedMs)} │ ${body}`;
  const max = Math.max(10, width - 1);
  return line.length > max ? `${line.slice(0, max - 1)}…` : line;
}

/** One log line per batch. */
class LogLines implements ProgressReporter {
  constructor(
    private readonly stream: StatusStream,
    private readonly quiet: boolean,
  ) {}
  expect(): void {}
  progress(output: string, p: QueryProgress): void {
    if (!this.quiet) this.stream.write(`${progressLine(output, p)}\n`);
  }
  log(line: string): void {
    this.stream.write(`${line}\n`);
  }
  close(): void {}
}

/** The line rewritten in place. */
class LiveStatus implements ProgressReporter {
  private readonly outputs: string[] = [];
  private readonly latest = new Map<string, QueryProgress>();
  /** Malformed rows per query since the start: a batch's own count would vanish with the next batch. */
  private readonly malformed = new Map<string, number>();
  private readonly started: number;
  private shown = false;
  private closed = false;
  private readonly timer: NodeJS.Timeout | null;
  private readonly restoreShared: (() => void) | null;

  constructor(
    private readonly stream: StatusStream,
    private readonly opts: ProgressReporterOptions,
  ) {
    this.started = (opts.now ?? Date.now)();
    const tick = opts.tickMs ?? 1000;
    this.timer = tick > 0 ? setInterval(() => this.draw(), tick) : null;
    this.timer?.unref();
    this.restoreShared = opts.shared?.isTTY ? this.stepAround(opts.shared) : null;
  }

  /** Clears the live line before each write to the shared stream and redraws it after a complete line. */
  private stepAround(shared: SharedStream): () => void {
    const original = shared.write;
    shared.write = (chunk: unknown, ...rest: unknown[]): boolean => {
      this.clear();
      const ok = original.call(shared, chunk, ...rest);
      const text = typeof chunk === 'string' ? chunk : Buffer.isBuffer(chunk) ? chunk.toString('latin1') : '';
      if (text.endsWith('\n')) this.draw();
      return ok;
    };
    return () => {
      shared.write = original;
    };
  }

  private clear(): void {
    if (this.shown) this.stream.write(CLEAR_LINE);
    this.shown = false;
  }

  private draw(): void {
    if (this.closed || this.outputs.length === 0) return;
    const now = (this.opts.now ?? Date.now)();
    this.stream.write(
      CLEAR_LINE + statusLine(this.outputs, this.latest, now - this.started, this.stream.columns || 80, this.malformed),
    );
    this.shown = true;
  }

  progress(output: string, p: QueryProgress): void {
    if (!this.outputs.includes(output)) this.outputs.push(output);
    this.latest.set(output, p);
    if (malformedRowsOf(p) > 0) this.malformed.set(output, (this.malformed.get(output) ?? 0) + malformedRowsOf(p));
    this.draw();
  }

  expect(outputs: readonly string[]): void {
    for (const o of outputs) if (!this.outputs.includes(o)) this.outputs.push(o);
    this.draw();
  }

  log(line: string): void {
    this.clear();
    this.stream.write(`${line}\n`);
    this.draw();
  }

  close(): void {
    if (this.closed) return;
    if (this.timer) clearInterval(this.timer);
    this.restoreShared?.();
    if (this.shown) this.stream.write('\n');
    this.shown = false;
    this.closed = true;
  }
}

/**
 * The reporter for `stream`: a live status line when it is a terminal (or `options.live`), plain log
 * lines otherwise. Call {@link ProgressReporter.close} when the queries stop.
 */
export function progressReporter(stream: StatusStream, options: ProgressReporterOptions = {}): ProgressReporter {
  const live = !options.quiet && (options.live ?? stream.isTTY === true);
  return live ? new LiveStatus(stream, options) : new LogLines(stream, options.quiet ?? false);
}
