/**
 * What an aggregation emits: its output and late-data schemas for an input schema, the output schema kept
 * in each partition's state, and the output and late-data rows themselves.
 */
import {
  Field,
  Int32,
  type RecordBatch,
  Schema,
  Struct,
  Table,
  TimestampMillisecond,
  tableFromIPC,
  tableToIPC,
  Utf8,
} from 'apache-arrow';
import { batchOf, dataFromValues, emptyBatch, takeRows, utf8Data } from '../../arrow/index.js';
import { SluiceError } from '../../errors.js';
import { valueType } from '../aggregates/column-values.js';
import { resultData } from '../aggregates/packed-rows.js';
import { resultField } from '../expression-eval.js';
import type { KeyedState } from '../stateful-operator.js';
import type { AggregateDefinition } from './aggregate-definition.js';

/** Column of a changelog aggregation: +1 for a result that enters, -1 for one that leaves. */
export const CHANGE_COLUMN = 'change';
/** Columns added to rows sent to the late-data output. */
export const LATE_REASON_COLUMN = 'late_reason';
export const LATE_WATERMARK_COLUMN = 'late_watermark';

/**
 * State key of the partition's output schema (Arrow IPC bytes): a batch without input rows may still have
 * to emit (windows closing), and must then know the column types. No group key is a one-element array.
 */
const SCHEMA_KEY = ['\u0000sluice:output-schema'];

const TIMESTAMP = (): TimestampMillisecond => new TimestampMillisecond('UTC');
const windowStruct = (): Struct =>
  new Struct([new Field('start', TIMESTAMP(), true), new Field('end', TIMESTAMP(), true)]);

/** Whether a state key is the one holding the output schema rather than a group's. */
export function isSchemaKey(key: unknown): boolean {
  return Array.isArray(key) && key.length === 1 && key[0] === SCHEMA_KEY[0];
}

function schemaBytes(schema: Schema): Uint8Array {
  return tableToIPC(new Table(emptyBatch(schema)), 'stream');
}

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** The aggregation's schemas for one input schema. */
export interface BoundSchemas {
  output: Schema;
  outputBytes: Uint8Array;
  /** Input fields of the late-data rows (the input's, plus reason and watermark). */
  late: Schema;
}

/** An aggregation's output schemas, bound once per input schema and once per schema read back from state. */
export class AggregateSchemas {
  private readonly bound = new WeakMap<Schema, BoundSchemas>();
  private readonly stored = new Map<string, Schema>();

  constructor(private readonly def: AggregateDefinition) {}

  /** Binds the aggregation to an input schema: output and late-data schemas (throws ANALYSIS errors). */
  bind(schema: Schema): BoundSchemas {
    let b = this.bound.get(schema);
    if (b) return b;
    const fields: Field[] = [];
    for (const g of this.def.groupings) {
      switch (g.kind) {
        case 'key': {
          const f = resultField(g.column, schema);
          fields.push(new Field(f.name, valueType(f.type), true));
          break;
        }
        case 'bucket':
          resultField(g.column, schema);
          fields.push(new Field(g.name, new Int32(), true));
          break;
        default: {
          resultField(g.time, schema);
          if (g.kind === 'session' && g.gap) resultField(g.gap, schema);
          fields.push(new Field(g.name, windowStruct(), true));
        }
      }
    }
    for (const a of this.def.aggregates) {
      const argFields = a.args.map((c) => resultField(c, schema));
      const type = a.fn.resultType(argFields.map((f) => f.type));
      fields.push(new Field(a.alias ?? a.fn.outputName(argFields.map((f) => f.name)), type, true));
    }
    if (this.def.changelog) fields.push(new Field(CHANGE_COLUMN, new Int32(), false));
    const seen = new Set<string>();
    for (const f of fields) {
      if (seen.has(f.name)) {
        throw new SluiceError(
          'ANALYSIS',
          `the aggregation has two output columns named '${f.name}'`,
          "name them apart with .alias('...')",
        );
      }
      seen.add(f.name);
    }
    const output = new Schema(fields);
    const late = new Schema([
      ...schema.fields,
      new Field(LATE_REASON_COLUMN, new Utf8(), false),
      new Field(LATE_WATERMARK_COLUMN, TIMESTAMP(), true),
    ]);
    b = { output, outputBytes: schemaBytes(output), late };
    this.bound.set(schema, b);
    return b;
  }

  /** Keeps the output schema in the partition's state (written only when it changed). */
  store(state: KeyedState, bound: BoundSchemas): void {
    const stored = state.get(SCHEMA_KEY) as Uint8Array | undefined;
    if (!stored || !bytesEqual(stored, bound.outputBytes)) state.put(SCHEMA_KEY, bound.outputBytes);
  }

  /** The output schema stored in the partition's state, for batches without input rows. */
  storedSchema(state: KeyedState): Schema | null {
    const bytes = state.get(SCHEMA_KEY) as Uint8Array | undefined;
    if (!bytes) return null;
    const id = Buffer.from(bytes).toString('base64');
    let s = this.stored.get(id);
    if (!s) {
      s = tableFromIPC(bytes).schema;
      this.stored.set(id, s);
    }
    return s;
  }

  /** State rows that hold the schema rather than a group. */
  internalRows(state: KeyedState): number {
    return state.has(SCHEMA_KEY) ? 1 : 0;
  }
}

/** A window/session value as emitted. */
export interface WindowValue {
  start: number;
  end: number;
}

/** Output rows gathered column by column. */
export class OutputRows {
  readonly columns: unknown[][];
  length = 0;

  constructor(
    private readonly def: AggregateDefinition,
    private readonly schema: Schema,
  ) {
    this.columns = schema.fields.map(() => []);
  }

  /** One row from aggregate buffers: key components in grouping order (window excluded), the window, change sign. */
  push(components: unknown[], window: WindowValue | null, buffers: unknown[], change?: number): void {
    const cols = this.columns;
    let c = 0;
    let k = 0;
    for (const g of this.def.groupings) {
      if (g.kind === 'window' || g.kind === 'session') cols[c++].push(window);
      else cols[c++].push(components[k++]);
    }
    const aggs = this.def.aggregates;
    for (let a = 0; a < aggs.length; a++) cols[c++].push(aggs[a].fn.result(buffers[a]));
    if (this.def.changelog) cols[c].push(change ?? 1);
    this.length++;
  }

  batch(): RecordBatch[] {
    if (this.length === 0) return [];
    const fields = this.schema.fields;
    return [
      batchOf(
        this.schema,
        fields.map((f, i) => resultData(f.type, this.columns[i])),
        this.length,
      ),
    ];
  }
}

/** Rows `idx` of `batch` for the late-data output, with their reasons and the watermark they were judged by. */
export function lateRows(
  batch: RecordBatch,
  schema: Schema,
  idx: number[],
  reasons: string[],
  watermarkMs: number,
): RecordBatch {
  const taken = takeRows(batch, idx);
  const wm = dataFromValues(
    TIMESTAMP(),
    reasons.map(() => (Number.isFinite(watermarkMs) ? watermarkMs : null)),
  );
  const children = [...taken.data.children, utf8Data(reasons), wm];
  return batchOf(schema, children, idx.length);
}
