/** The shape every Kafka compression codec has (the registry is compression.ts). */

/** One codec: its Kafka id and name, and how the records section of a batch is compressed and read. */
export interface CompressionCodec {
  /** The id in a record batch's attributes. */
  readonly id: number;
  /** Its `compression.type` name. */
  readonly name: 'gzip' | 'snappy' | 'lz4' | 'zstd';
  compress(data: Buffer): Promise<Buffer>;
  decompress(data: Buffer): Promise<Buffer>;
}
