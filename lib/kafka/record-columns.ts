import type { KafkaMessage } from './messages.js';

/** A record's headers as {@link KafkaMessage} holds them. */
type Headers = NonNullable<KafkaMessage['headers']>;

/**
 * Records read from Kafka held as columns: offsets and timestamps in typed arrays, keys and values as spans of
 * the buffers they were decoded from (a fetch response, or a decompressed records section), headers only for
 * the records that have any. The source turns them into Arrow columns without an object or a Buffer view per
 * record, which is what decoding into {@link KafkaMessage}s cost per event; {@link message} makes one on demand.
 */
export class RecordColumns {
  length = 0;
  offsets: Float64Array;
  timestamps: Float64Array;
  /** The buffers keys and values point into; `chunkOf[i]` indexes the one of record i. */
  readonly chunks: Uint8Array[] = [];
  chunkOf: Int32Array;
  /** Start and end of each key and value in its chunk; a start of -1 is null. */
  keyStarts: Int32Array;
  keyEnds: Int32Array;
  valueStarts: Int32Array;
  valueEnds: Int32Array;
  /** Headers by record index, allocated when a record first has some. */
  headers: Array<Headers | undefined> | null = null;

  constructor(capacity = 0) {
    this.offsets = new Float64Array(capacity);
    this.timestamps = new Float64Array(capacity);
    this.chunkOf = new Int32Array(capacity);
    this.keyStarts = new Int32Array(capacity);
    this.keyEnds = new Int32Array(capacity);
    this.valueStarts = new Int32Array(capacity);
    this.valueEnds = new Int32Array(capacity);
  }

  /** Columns of `messages`, each key and value a chunk of its own. */
  static of(messages: readonly KafkaMessage[]): RecordColumns {
    const out = new RecordColumns(messages.length);
    for (const m of messages) out.pushMessage(m);
    return out;
  }

  /** Adds `chunk` as the buffer of the records pushed next, and returns its index. */
  addChunk(chunk: Uint8Array): number {
    this.chunks.push(chunk);
    return this.chunks.length - 1;
  }

  /** Appends one record whose key and value are [keyStart, keyEnd) and [valueStart, valueEnd) of `chunk`. */
  push(
    offset: number,
    timestamp: number,
    chunk: number,
    keyStart: number,
    keyEnd: number,
    valueStart: number,
    valueEnd: number,
  ): void {
    const i = this.length;
    if (i === this.offsets.length) this.grow(i + 1);
    this.offsets[i] = offset;
    this.timestamps[i] = timestamp;
    this.chunkOf[i] = chunk;
    this.keyStarts[i] = keyStart;
    this.keyEnds[i] = keyEnd;
    this.valueStarts[i] = valueStart;
    this.valueEnds[i] = valueEnd;
    this.length = i + 1;
  }

  /** Gives the record pushed last `headers`. */
  setLastHeaders(headers: Headers): void {
    this.headers ??= [];
    this.headers[this.length - 1] = headers;
  }

  /** Appends `m`, its key and value copied into one chunk of their own. */
  pushMessage(m: KafkaMessage): void {
    const keyLen = m.key === null ? 0 : m.key.length;
    const both = new Uint8Array(keyLen + (m.value === null ? 0 : m.value.length));
    if (m.key !== null) both.set(m.key);
    if (m.value !== null) both.set(m.value, keyLen);
    this.push(
      m.offset,
      m.timestamp,
      this.addChunk(both),
      m.key === null ? -1 : 0,
      m.key === null ? -1 : keyLen,
      m.value === null ? -1 : keyLen,
      m.value === null ? -1 : both.length,
    );
    if (m.headers) this.setLastHeaders(m.headers);
  }

  /**
   * Appends the records of `from` whose offsets are in [fromOffset, untilOffset) (records are in offset order).
   * When this holds nothing yet and takes every record of `from`, it takes `from`'s columns instead of copying.
   */
  appendRange(from: RecordColumns, fromOffset: number, untilOffset: number): void {
    let a = 0;
    while (a < from.length && from.offsets[a] < fromOffset) a++;
    let b = a;
    while (b < from.length && from.offsets[b] < untilOffset) b++;
    if (a === b) return;
    if (this.length === 0 && this.chunks.length === 0 && a === 0 && b === from.length) {
      this.length = from.length;
      this.offsets = from.offsets;
      this.timestamps = from.timestamps;
      this.chunks.push(...from.chunks);
      this.chunkOf = from.chunkOf;
      this.keyStarts = from.keyStarts;
      this.keyEnds = from.keyEnds;
      this.valueStarts = from.valueStarts;
      this.valueEnds = from.valueEnds;
      this.headers = from.headers;
      return;
    }
    const n = b - a;
    const at = this.length;
    if (at + n > this.offsets.length) this.grow(at + n);
    const base = this.chunks.length;
    this.chunks.push(...from.chunks);
    this.offsets.set(from.offsets.subarray(a, b), at);
    this.timestamps.set(from.timestamps.subarray(a, b), at);
    for (let i = 0; i < n; i++) this.chunkOf[at + i] = from.chunkOf[a + i] + base;
    this.keyStarts.set(from.keyStarts.subarray(a, b), at);
    this.keyEnds.set(from.keyEnds.subarray(a, b), at);
    this.valueStarts.set(from.valueStarts.subarray(a, b), at);
    this.valueEnds.set(from.valueEnds.subarray(a, b), at);
    if (from.headers) {
      for (let i = a; i < b; i++) {
        const h = from.headers[i];
        if (h === undefined) continue;
        this.headers ??= [];
        this.headers[at + i - a] = h;
      }
    }
    this.length = at + n;
  }

  /** The records whose `keep(i)` is true, in order (a new set of columns over the same chunks). */
  filter(keep: (i: number) => boolean): RecordColumns {
    const out = new RecordColumns(this.length);
    out.chunks.push(...this.chunks);
    for (let i = 0; i < this.length; i++) {
      if (!keep(i)) continue;
      out.push(
        this.offsets[i],
        this.timestamps[i],
        this.chunkOf[i],
        this.keyStarts[i],
        this.keyEnds[i],
        this.valueStarts[i],
        this.valueEnds[i],
      );
      const h = this.headers?.[i];
      if (h !== undefined) out.setLastHeaders(h);
    }
    return out;
  }

  /** Record i's key as a view of its chunk, or null. */
  key(i: number): Buffer | null {
    return this.view(i, this.keyStarts[i], this.keyEnds[i]);
  }

  /** Record i's value as a view of its chunk, or null. */
  value(i: number): Buffer | null {
    return this.view(i, this.valueStarts[i], this.valueEnds[i]);
  }

  /** Record i as a message; its key and value are views of its chunk. */
  message(i: number): KafkaMessage {
    const m: KafkaMessage = {
      offset: this.offsets[i],
      timestamp: this.timestamps[i],
      key: this.key(i),
      value: this.value(i),
    };
    const h = this.headers?.[i];
    if (h !== undefined) m.headers = h;
    return m;
  }

  /** Every record as a message. */
  toMessages(): KafkaMessage[] {
    const out = new Array<KafkaMessage>(this.length);
    for (let i = 0; i < this.length; i++) out[i] = this.message(i);
    return out;
  }

  private view(i: number, start: number, end: number): Buffer | null {
    if (start < 0) return null;
    const c = this.chunks[this.chunkOf[i]];
    return Buffer.from(c.buffer, c.byteOffset + start, end - start);
  }

  private grow(min: number): void {
    const cap = Math.max(min, this.offsets.length * 2, 16);
    const f64 = (a: Float64Array): Float64Array => {
      const g = new Float64Array(cap);
      g.set(a.subarray(0, this.length));
      return g;
    };
    const i32 = (a: Int32Array): Int32Array => {
      const g = new Int32Array(cap);
      g.set(a.subarray(0, this.length));
      return g;
    };
    this.offsets = f64(this.offsets);
    this.timestamps = f64(this.timestamps);
    this.chunkOf = i32(this.chunkOf);
    this.keyStarts = i32(this.keyStarts);
    this.keyEnds = i32(this.keyEnds);
    this.valueStarts = i32(this.valueStarts);
    this.valueEnds = i32(this.valueEnds);
  }
}
