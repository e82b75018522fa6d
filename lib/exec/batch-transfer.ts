import { Data, type DataType, type Dictionary, Message, RecordBatch, type Schema, Struct, Vector } from 'apache-arrow';

type Buffer = Data['values'];

/**
 * One column's data as it crosses threads: the Arrow buffers themselves (typed arrays, which postMessage
 * rebuilds with their class, offset and length over the transferred memory), its children's and dictionary's.
 * Its type comes from the batch's schema.
 */
interface SentData {
  offset: number;
  length: number;
  nullCount: number;
  /** valueOffsets, values, nullBitmap, typeIds: the order of Arrow's BufferType, which `new Data` takes. */
  buffers: (Buffer | undefined)[];
  variadic: Uint8Array[];
  children: SentData[];
  dictionary?: SentData[];
}

/**
 * A record batch as it crosses threads: its schema as an Arrow IPC schema message and its columns' buffers,
 * without the Arrow IPC body: encoding that body copies every column once more and costs the sending thread
 * about a tenth of a stateless fragment's CPU, while a transferred buffer moves at no cost.
 */
export interface SentBatch {
  schema: Uint8Array;
  numRows: number;
  columns: SentData[];
}

/**
 * How the buffers of the batches a thread sends leave it. `move`: the buffers a batch owns are transferred
 * (unreadable here afterwards), as for rows a task built and hands over; buffers another batch of the same
 * message already moves, and those in `keep` (rows the thread holds on to), are copied instead. `copy`: every
 * buffer is copied, as for rows the sender may read again (a source's retained input, a state store's own
 * columns). Shared memory (SharedArrayBuffer) is neither: the other thread sees the same bytes.
 */
export class BatchSender {
  private readonly owner = new Map<ArrayBufferLike, number>();
  private sent = 0;

  constructor(
    private readonly mode: 'move' | 'copy',
    private readonly keep: ReadonlySet<ArrayBufferLike> = new Set(),
  ) {}

  /** The batch as plain data for postMessage; its buffers to transfer are {@link transferListOf}'s. */
  send(batch: RecordBatch): SentBatch {
    const id = ++this.sent;
    return {
      schema: schemaBytes(batch.schema),
      numRows: batch.numRows,
      columns: batch.data.children.map((c) => this.data(c, id, this.mode)),
    };
  }

  sendAll(batches: readonly RecordBatch[]): SentBatch[] {
    return batches.map((b) => this.send(b));
  }

  /** A dictionary is copied: the batches of a stream share one, which the sender keeps using. */
  private data(d: Data, id: number, mode: 'move' | 'copy'): SentData {
    return {
      offset: d.offset,
      length: d.length,
      nullCount: d.nullCount,
      buffers: [d.valueOffsets, d.values, d.nullBitmap, d.typeIds].map((b) => this.buffer(b, id, mode)),
      variadic: d.variadicBuffers.map((b) => this.buffer(b, id, mode) as Uint8Array),
      children: d.children.map((c) => this.data(c, id, mode)),
      dictionary: d.dictionary?.data.map((c) => this.data(c, id, 'copy')),
    };
  }

  private buffer(b: Buffer | undefined, id: number, mode: 'move' | 'copy'): Buffer | undefined {
    if (!b || b.buffer instanceof SharedArrayBuffer) return b;
    // Small buffers may be views of Node's Buffer pool, which other code shares; copying them costs nothing.
    const movable = mode === 'move' && b.buffer.byteLength > SMALL_BUFFER_BYTES && !this.keep.has(b.buffer);
    const owner = this.owner.get(b.buffer);
    if (movable && (owner === undefined || owner === id)) {
      this.owner.set(b.buffer, id);
      return b;
    }
    return b.slice();
  }
}

/** Node's Buffer pool size: a buffer this small or smaller may be a slab other code allocates from. */
const SMALL_BUFFER_BYTES = 8192;

const schemaMessages = new WeakMap<Schema, Uint8Array>();

function schemaBytes(schema: Schema): Uint8Array {
  let bytes = schemaMessages.get(schema);
  if (!bytes) {
    bytes = Message.encode(Message.from(schema));
    schemaMessages.set(schema, bytes);
  }
  return bytes;
}

/**
 * Schemas received, by their message bytes: batches of one stream share a Schema object on this side too, as
 * operators that cache by schema expect. Bounded, since user functions without a declared schema may make many.
 */
const receivedSchemas = new Map<string, Schema>();
const MAX_RECEIVED_SCHEMAS = 256;

function schemaOf(bytes: Uint8Array): Schema {
  const key = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1');
  let schema = receivedSchemas.get(key);
  if (!schema) {
    schema = Message.decode(bytes).header() as Schema;
    if (receivedSchemas.size >= MAX_RECEIVED_SCHEMAS) receivedSchemas.clear();
    receivedSchemas.set(key, schema);
  }
  return schema;
}

function dataOf(type: DataType, d: SentData): Data {
  const children = d.children.map((c, i) => dataOf(type.children[i].type, c));
  const values = (type as Dictionary).dictionary;
  const dictionary = d.dictionary ? new Vector(d.dictionary.map((c) => dataOf(values, c))) : undefined;
  return new Data(type, d.offset, d.length, d.nullCount, d.buffers as never, children, dictionary, d.variadic);
}

/** The batch a {@link BatchSender} sent: over the received buffers, no copy. */
export function receiveBatch(sent: SentBatch): RecordBatch {
  const schema = schemaOf(sent.schema);
  const columns = sent.columns.map((c, i) => dataOf(schema.fields[i].type, c));
  const type = new Struct(schema.fields);
  return new RecordBatch(schema, new Data(type, 0, sent.numRows, 0, undefined, columns));
}

export function receiveBatches(sent: readonly SentBatch[]): RecordBatch[] {
  return sent.map(receiveBatch);
}

/** The memory behind the columns of `batches`. */
export function buffersOf(batches: readonly RecordBatch[]): Set<ArrayBufferLike> {
  const out = new Set<ArrayBufferLike>();
  const add = (d: Data): void => {
    for (const b of [d.valueOffsets, d.values, d.nullBitmap, d.typeIds, ...d.variadicBuffers]) if (b) out.add(b.buffer);
    d.children.forEach(add);
    d.dictionary?.data.forEach(add);
  };
  for (const b of batches) add(b.data);
  return out;
}

/** The buffers to transfer with a message holding `sent` (entries that are not sent batches are skipped). */
export function transferListOf(sent: readonly unknown[]): ArrayBuffer[] {
  const seen = new Set<ArrayBuffer>();
  const add = (d: SentData): void => {
    for (const b of [...d.buffers, ...d.variadic])
      if (b && !(b.buffer instanceof SharedArrayBuffer)) seen.add(b.buffer);
    d.children.forEach(add);
    d.dictionary?.forEach(add);
  };
  for (const s of sent) if (isSentBatch(s)) s.columns.forEach(add);
  return [...seen];
}

export function isSentBatch(x: unknown): x is SentBatch {
  return typeof x === 'object' && x !== null && 'schema' in x && 'columns' in x;
}
