/**
 * The Nexmark source: `nexmark:?events=N&seed=S&rate=R`, the online-auction events of lib/gen/nexmark.ts
 * (Person, Auction and Bid in the proportions 1 : 3 : 46) as a streaming source, for the Nexmark queries
 * of bench/nexmark.
 *
 * - Offsets count events: offset `{ events: n }` means events 0 … n−1 have been admitted. Event `i` is a pure
 *   function of (seed, options, i), so any range is generated on its own, by any thread, and a replayed
 *   batch reads the same rows.
 * - All events are available at once (the reference generator's maximum emit speed); `maxEventsPerTrigger`
 *   bounds a batch. Event time is the Nexmark rule: event `i` happens at `baseTime + i / rate` seconds
 *   (`rate` is the reference's first-event rate; the published Flink figures use 10 000 000).
 * - Read tasks generate their range straight into Arrow columns, in chunks of `eventsPerBatch` events:
 *   typed arrays and utf8 byte buffers, never a JS object per event.
 *
 * Layout, chosen for speed and for Flink users: with one kind (`kinds=bid`, the usual case: most queries
 * read bids only) the rows are that kind's table, with the reference's column names (the `bid`, `person`
 * and `auction` views of the Flink Nexmark DDL) and zero-copy columns from the generator. With several
 * kinds the rows are the reference's `datagen` table: `event_type` (0 person, 1 auction, 2 bid), one
 * struct column per kind (null on rows of other kinds, read as `col('person.id')`) and the event's
 * `dateTime`, in event order. Events of kinds not asked for are still generated (they consume event ids
 * and time, as in Flink, whose views filter one generated stream) but are not put into rows.
 */
import { type Data, Field, Int32, type RecordBatch, Schema, Struct, TimestampMillisecond } from 'apache-arrow';
import { batchOf } from '../arrow/batch-ops.js';
import { mkData } from '../arrow/columns.js';
import { SluiceError } from '../errors.js';
import {
  AUCTION,
  BID,
  NEXMARK_DEFAULTS,
  NEXMARK_SCHEMAS,
  type NexmarkColumnSelection,
  type NexmarkColumns,
  NexmarkGenerator,
  type NexmarkOptions,
  nexmarkRecordBatches,
  PERSON,
} from '../gen/nexmark.js';
import type { Seed } from '../gen/random.js';
import type { Utf8Column } from '../gen/utf8.js';
import { counterOf, splitRange } from './counter-offsets.js';
import type { ReadLimit, ReadResult, ReadTask, SourceOffset, StreamSource } from './source.js';

/** Event kinds by name, in the reference's `event_type` numbering. */
export const NEXMARK_KINDS = { person: PERSON, auction: AUCTION, bid: BID } as const;
export type NexmarkKind = keyof typeof NEXMARK_KINDS;
const KIND_NAMES: readonly NexmarkKind[] = ['person', 'auction', 'bid'];

/** Generator options the source passes through (URI options of the same names). */
export const NEXMARK_GENERATOR_OPTIONS = [
  'personProportion',
  'auctionProportion',
  'bidProportion',
  'avgPersonByteSize',
  'avgAuctionByteSize',
  'avgBidByteSize',
  'hotAuctionRatio',
  'hotSellersRatio',
  'hotBiddersRatio',
  'numInFlightAuctions',
  'numActivePeople',
  'outOfOrderGroupSize',
  'firstEventId',
] as const satisfies readonly (keyof NexmarkOptions)[];

/** Options of {@link NexmarkSource}. */
export interface NexmarkSourceOptions {
  /** Total events; the stream ends after them. Default: endless. */
  events?: number;
  /** Generator seed. Default 0. */
  seed?: Seed;
  /** Event-time rate in events per second (Nexmark's first-event rate). Default 10 000. */
  rate?: number;
  /** Event time of event 0, epoch ms. Default 2024-01-01T00:00:00Z. */
  baseTime?: number;
  /** Which kinds become rows, e.g. `['bid']`. Default all three. */
  kinds?: readonly NexmarkKind[];
  /** At most this many events per batch. Default 1 000 000. */
  maxEventsPerTrigger?: number;
  /** Read tasks per batch, each a contiguous range of events. Default 2. */
  numPartitions?: number;
  /** Events per generated record batch inside a read task. Default 32 768. */
  eventsPerBatch?: number;
  /** The other generator options (proportions, hot ratios, sizes …), see NexmarkOptions. */
  generator?: Pick<NexmarkOptions, (typeof NEXMARK_GENERATOR_OPTIONS)[number]>;
}

/** Offset of the Nexmark source: events [0, events) have been admitted. */
export interface NexmarkOffset {
  events: number;
}

/** Spec of a `nexmark` read task: events [from, to) of the generator configured by `options`. */
export interface NexmarkReadSpec {
  from: number;
  to: number;
  options: NexmarkOptions;
  kinds: number[];
  eventsPerBatch: number;
  /** The columns the query reads (see NexmarkSource.pruneColumns), in schema order; unset: all of them. */
  columns?: string[];
}

const DEFAULT_MAX_EVENTS_PER_TRIGGER = 1_000_000;
const DEFAULT_EVENTS_PER_BATCH = 32_768;

const TIMESTAMP = (): TimestampMillisecond => new TimestampMillisecond('UTC');

/** The struct column of one kind in the several-kinds layout: the kind's table as a nullable struct. */
function kindStructField(kind: NexmarkKind): Field {
  return new Field(kind, new Struct(NEXMARK_SCHEMAS[kind].fields), true);
}

/** Schema of the rows for a set of kinds (see the module comment). */
export function nexmarkSchema(kinds: readonly NexmarkKind[]): Schema {
  if (kinds.length === 1) return NEXMARK_SCHEMAS[kinds[0]];
  return new Schema([
    new Field('event_type', new Int32(), false),
    ...KIND_NAMES.filter((k) => kinds.includes(k)).map(kindStructField),
    new Field('dateTime', TIMESTAMP(), false),
  ]);
}

/** Parses `kinds` as given in a URI: comma-separated names, or `all`. */
export function parseNexmarkKinds(text: string): NexmarkKind[] {
  const names = text
    .split(',')
    .map((s) => s.trim().toLowerCase())
    .filter((s) => s !== '');
  if (names.length === 1 && names[0] === 'all') return [...KIND_NAMES];
  for (const n of names) {
    if (!(KIND_NAMES as readonly string[]).includes(n)) {
      throw new SluiceError(
        'BAD_OPTION',
        `option kinds of the nexmark source: unknown event kind '${n}'`,
        'use person, auction and bid separated by commas (e.g. kinds=bid), or all',
      );
    }
  }
  if (names.length === 0)
    throw new SluiceError(
      'BAD_OPTION',
      'option kinds of the nexmark source is empty',
      'e.g. kinds=bid or kinds=person,auction',
    );
  return KIND_NAMES.filter((k) => names.includes(k));
}

function positiveInteger(name: string, v: number | undefined, fallback: number): number {
  if (v === undefined) return fallback;
  if (!Number.isSafeInteger(v) || v <= 0)
    throw new SluiceError('BAD_OPTION', `option ${name} of the nexmark source must be a positive integer, found ${v}`);
  return v;
}

/** The Nexmark source (see the module comment). */
export class NexmarkSource implements StreamSource {
  readonly description: string;
  private readonly total: number;
  private readonly kinds: NexmarkKind[];
  private readonly generatorOptions: NexmarkOptions;
  private readonly maxEventsPerTrigger: number;
  private readonly numPartitions: number;
  private readonly eventsPerBatch: number;
  private outSchema: Schema;
  private readColumns: string[] | undefined;

  constructor(options: NexmarkSourceOptions = {}) {
    this.total = options.events === undefined ? Infinity : options.events;
    if (this.total !== Infinity && (!Number.isSafeInteger(this.total) || this.total < 0)) {
      throw new SluiceError(
        'BAD_OPTION',
        `option events of the nexmark source must be a non-negative integer, found ${options.events}`,
      );
    }
    this.kinds = options.kinds ? KIND_NAMES.filter((k) => options.kinds!.includes(k)) : [...KIND_NAMES];
    if (this.kinds.length === 0)
      throw new SluiceError('BAD_OPTION', 'option kinds of the nexmark source is empty', 'e.g. kinds=bid');
    this.maxEventsPerTrigger = positiveInteger(
      'maxEventsPerTrigger',
      options.maxEventsPerTrigger,
      DEFAULT_MAX_EVENTS_PER_TRIGGER,
    );
    this.numPartitions = positiveInteger('numPartitions', options.numPartitions, 2);
    this.eventsPerBatch = positiveInteger('eventsPerBatch', options.eventsPerBatch, DEFAULT_EVENTS_PER_BATCH);
    this.generatorOptions = {
      ...options.generator,
      seed: options.seed ?? NEXMARK_DEFAULTS.seed,
      firstEventRate: options.rate ?? NEXMARK_DEFAULTS.firstEventRate,
      baseTime: options.baseTime ?? NEXMARK_DEFAULTS.baseTime,
    };
    // Validates every generator option now, so a bad one fails the query at start, not in a read task.
    new NexmarkGenerator(this.generatorOptions);
    this.outSchema = nexmarkSchema(this.kinds);
    const g = this.generatorOptions;
    this.description =
      `NexmarkSource[events=${this.total === Infinity ? 'endless' : this.total}, seed=${String(g.seed)}, ` +
      `rate=${g.firstEventRate}, kinds=${this.kinds.join(',')}]`;
  }

  async initialize(): Promise<void> {}

  schema(): Schema {
    return this.outSchema;
  }

  /**
   * With one kind, read tasks hand on only the columns the query reads. Every column is still generated,
   * as Nexmark's reference generator does, so per-core figures stay comparable with other engines'; the
   * several-kinds layout keeps its columns.
   */
  pruneColumns(columns: readonly string[]): void {
    if (this.kinds.length !== 1) return;
    this.readColumns = [...columns];
    this.outSchema = prunedSchema(this.kinds[0], this.readColumns);
  }

  async latestOffset(start: SourceOffset | null, limit: ReadLimit): Promise<SourceOffset | null> {
    const from = start === null ? 0 : eventsOf(start);
    // An unlimited read (Trigger.Once) takes the rest of a finite stream in one batch, as Spark does.
    const cap =
      limit.maxRows === Infinity && this.total !== Infinity
        ? Infinity
        : Math.min(this.maxEventsPerTrigger, limit.maxRows ?? Infinity);
    const end = Math.min(this.total, from + cap);
    if (end <= from) return start;
    return { events: end } satisfies NexmarkOffset;
  }

  async planRead(start: SourceOffset | null, end: SourceOffset, _batchId?: number): Promise<ReadTask[]> {
    const from = start === null ? 0 : eventsOf(start);
    const to = eventsOf(end);
    const kinds = this.kinds.map((k) => NEXMARK_KINDS[k]);
    return splitRange(from, to, this.numPartitions).map((r) => {
      const spec: NexmarkReadSpec = {
        ...r,
        options: this.generatorOptions,
        kinds,
        eventsPerBatch: this.eventsPerBatch,
        ...(this.readColumns ? { columns: this.readColumns } : {}),
      };
      return { reader: 'nexmark', spec };
    });
  }

  rowCount(start: SourceOffset | null, end: SourceOffset): number {
    return eventsOf(end) - (start === null ? 0 : eventsOf(start));
  }

  reachedEnd(offset: SourceOffset): boolean {
    return eventsOf(offset) >= this.total;
  }

  async prepareForTriggerAvailableNow(): Promise<void> {
    if (this.total === Infinity) {
      throw new SluiceError(
        'BAD_OPTION',
        'an endless nexmark source has no end for trigger availableNow',
        'give the number of events, e.g. nexmark:?events=1000000, or use a processingTime trigger',
      );
    }
  }

  async commit(): Promise<void> {}

  async stop(): Promise<void> {}
}

function eventsOf(offset: SourceOffset): number {
  return counterOf(offset, 'events', 'nexmark');
}

/** Generators by configuration, kept per thread: their channel caches stay warm across tasks. */
const generators = new Map<string, NexmarkGenerator>();

function generatorFor(options: NexmarkOptions): NexmarkGenerator {
  const id = JSON.stringify(options);
  let g = generators.get(id);
  if (!g) {
    if (generators.size >= 8) generators.clear();
    g = new NexmarkGenerator(options);
    generators.set(id, g);
  }
  return g;
}

/** Runs one `nexmark` read task: generates events [from, to) into record batches. */
export async function readNexmarkTask(specArg: unknown): Promise<ReadResult> {
  const spec = specArg as NexmarkReadSpec;
  const g = generatorFor(spec.options);
  const kinds = KIND_NAMES.filter((k) => spec.kinds.includes(NEXMARK_KINDS[k]));
  const schema = nexmarkSchema(kinds);
  const pruned = spec.columns && kinds.length === 1 ? prunedSchema(kinds[0], spec.columns) : null;
  const keep: NexmarkColumnSelection = {};
  for (const k of kinds)
    keep[k] = pruned ? pruned.fields.map((f) => f.name) : NEXMARK_SCHEMAS[k].fields.map((f) => f.name);
  const batches: RecordBatch[] = [];
  for (let s = spec.from; s < spec.to; s += spec.eventsPerBatch) {
    const cols = g.columns(s, Math.min(spec.eventsPerBatch, spec.to - s), keep);
    let batch = kinds.length === 1 ? nexmarkRecordBatches(cols)[kinds[0]] : interleavedBatch(schema, kinds, cols);
    if (pruned) {
      const whole = batch;
      batch = batchOf(
        pruned,
        pruned.fields.map((f) => whole.getChild(f.name)!.data[0]),
        whole.numRows,
      );
    }
    if (batch.numRows > 0) batches.push(batch);
  }
  return { batches, numMalformed: 0 };
}

/** One kind's schema narrowed to `columns`, one object per column list (operators bind per schema object). */
const prunedSchemas = new Map<string, Schema>();

function prunedSchema(kind: NexmarkKind, columns: readonly string[]): Schema {
  const id = `${kind}:${columns.join(',')}`;
  let s = prunedSchemas.get(id);
  if (!s) {
    s = NEXMARK_SCHEMAS[kind].select([...columns]);
    prunedSchemas.set(id, s);
  }
  return s;
}

/**
 * The several-kinds layout of one chunk: every event of the chosen kinds in event order, each kind's
 * fields in its struct column. Columns are scattered from the per-kind tables by row position; a utf8
 * column keeps the generator's byte buffer and only gets new offsets (zero-length values on other rows).
 */
function interleavedBatch(schema: Schema, kinds: readonly NexmarkKind[], cols: NexmarkColumns): RecordBatch {
  const wanted = new Uint8Array(KIND_NAMES.length);
  for (const k of kinds) wanted[NEXMARK_KINDS[k]] = 1;
  let n = 0;
  for (let i = 0; i < cols.count; i++) n += wanted[cols.kind[i]];
  const rowKind = new Uint8Array(n);
  for (let i = 0, r = 0; i < cols.count; i++) if (wanted[cols.kind[i]]) rowKind[r++] = cols.kind[i];
  const eventType = new Int32Array(n);
  for (let r = 0; r < n; r++) eventType[r] = rowKind[r];
  const time = new BigInt64Array(n);
  const timeWords = new Int32Array(time.buffer);
  const children: Data[] = [mkData({ type: schema.fields[0].type, length: n, nullCount: 0, data: eventType })];
  kinds.forEach((kind, f) => {
    const code = NEXMARK_KINDS[kind];
    const table = cols[kind] as unknown as Record<string, BigInt64Array | Utf8Column> & { length: number };
    const valid = new Uint8Array((n + 7) >> 3);
    const at = new Int32Array(table.length);
    for (let r = 0, j = 0; r < n; r++)
      if (rowKind[r] === code) {
        valid[r >> 3] |= 1 << (r & 7);
        at[j++] = r;
      }
    const structType = schema.fields[1 + f].type as Struct;
    const fields = structType.children.map((field) => {
      const c = table[field.name];
      return c instanceof BigInt64Array ? scatterInt64(field, c, at, n) : scatterUtf8(field, c, rowKind, code, n);
    });
    scatterWords(table.dateTime as BigInt64Array, at, timeWords);
    children.push(
      mkData({ type: structType, length: n, nullCount: n - table.length, nullBitmap: valid, children: fields }),
    );
  });
  children.push(mkData({ type: schema.fields[schema.fields.length - 1].type, length: n, nullCount: 0, data: time }));
  return batchOf(schema, children, n);
}

/** Copies int64 value j of `src` to row at[j] of `outWords` (an Int32 view: no BigInt per value). */
function scatterWords(src: BigInt64Array, at: Int32Array, outWords: Int32Array): void {
  const sw = new Int32Array(src.buffer, src.byteOffset, src.length * 2);
  for (let j = 0; j < at.length; j++) {
    const r = at[j];
    outWords[2 * r] = sw[2 * j];
    outWords[2 * r + 1] = sw[2 * j + 1];
  }
}

function scatterInt64(field: Field, src: BigInt64Array, at: Int32Array, n: number): Data {
  const out = new BigInt64Array(n);
  scatterWords(src, at, new Int32Array(out.buffer));
  return mkData({ type: field.type, length: n, nullCount: 0, data: out });
}

function scatterUtf8(field: Field, src: Utf8Column, rowKind: Uint8Array, code: number, n: number): Data {
  const offsets = new Int32Array(n + 1);
  const so = src.offsets;
  for (let r = 0, j = 0; r < n; r++) offsets[r + 1] = rowKind[r] === code ? so[++j] : offsets[r];
  return mkData({ type: field.type, length: n, nullCount: 0, valueOffsets: offsets, data: src.data });
}
