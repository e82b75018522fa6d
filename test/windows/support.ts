import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Dataset } from '../../lib/api/dataset.js';
import { Session } from '../../lib/api/session.js';
import type { StreamingQuery } from '../../lib/api/streaming-query.js';
import type { SchemaSpec } from '../../lib/arrow/schema.js';
import type { QueryProgress } from '../../lib/exec/progress.js';
import type { OutputMode } from '../../lib/sinks/output-mode.js';
import { MemoryStream } from '../../lib/testing/index.js';

/** Epoch ms of a time on 2024-01-01 UTC, e.g. at('00:01:30') or at('00:01:30.500'). */
export function at(time: string): number {
  return Date.parse(`2024-01-01T${time}Z`);
}

/** ISO text of a Date or epoch ms (output rows hold Dates). */
export function iso(v: unknown): string {
  return new Date(v instanceof Date ? v.getTime() : Number(v)).toISOString();
}

export function tmpDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-'));
}

/** A query over a memory stream, driven batch by batch from a test. */
export class Harness<T extends Record<string, unknown>> {
  readonly outputs = new Map<number, Record<string, unknown>[]>();
  readonly progress: QueryProgress[] = [];
  private seen = 0;
  private lateSeen = 0;
  query!: StreamingQuery;

  private constructor(
    readonly session: Session,
    readonly input: MemoryStream<T>,
    private readonly name: string,
  ) {}

  /**
   * Starts `build(input)` in `mode`, writing every batch's rows to this harness and late rows to a memory
   * table (when `late`). `checkpoint` lets a second harness continue the first one's query.
   */
  static async start<T extends Record<string, unknown>>(opts: {
    schema: SchemaSpec;
    build: (ds: Dataset<T>) => Dataset;
    mode: OutputMode;
    late?: boolean;
    checkpoint?: string;
    statePartitions?: number;
    input?: MemoryStream<T>;
    session?: Session;
  }): Promise<Harness<T>> {
    const session = opts.session ?? Session.local({ statePartitions: opts.statePartitions ?? 2 });
    const input = opts.input ?? new MemoryStream<T>(session, opts.schema);
    const name = `q${Math.random().toString(36).slice(2, 8)}`;
    const h = new Harness<T>(session, input, name);
    let w = opts
      .build(input.toDS())
      .writeStream.foreachBatch((rows, batchId) => {
        h.outputs.set(batchId, rows);
      })
      .outputMode(opts.mode)
      .queryName(name);
    if (opts.checkpoint) w = w.option('checkpointLocation', opts.checkpoint);
    if (opts.late) w = w.lateData('memory');
    session.streams.addListener({
      onQueryProgress: ({ progress }) => {
        if (progress.name === name) h.progress.push(progress);
      },
    });
    h.query = await w.start();
    return h;
  }

  /** Adds one batch of rows (if any), runs everything due, and returns the rows written since the last call. */
  async step(rows?: T[]): Promise<Record<string, unknown>[]> {
    if (rows) this.input.addData(rows);
    await this.query.processAllAvailable();
    return this.newOutput();
  }

  /** Rows written since the last call, in batch order. */
  newOutput(): Record<string, unknown>[] {
    const ids = [...this.outputs.keys()].sort((a, b) => a - b).filter((id) => id >= this.seen);
    const out = ids.flatMap((id) => this.outputs.get(id)!);
    if (ids.length) this.seen = ids[ids.length - 1] + 1;
    return out;
  }

  /** All late rows so far. */
  lateRows(): Record<string, unknown>[] {
    try {
      return this.session.table(`${this.name}_late`);
    } catch {
      return [];
    }
  }

  /** Late rows since the last call. */
  newLate(): Record<string, unknown>[] {
    const all = this.lateRows();
    const out = all.slice(this.lateSeen);
    this.lateSeen = all.length;
    return out;
  }

  async stop(): Promise<void> {
    await this.query.stop();
  }
}
