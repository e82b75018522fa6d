/**
 * Test support: the record batches of a partition as the broker stores them (their compression and record
 * counts), fetched over a plain socket, independent of the client under test.
 */
import * as net from 'node:net';
import { fetchRequest } from '../../lib/kafka/protocol/fetch/v16.js';

/** One stored record batch. */
export interface StoredBatch {
  baseOffset: number;
  /** The compression id of its attributes: 0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd. */
  compression: number;
  records: number;
  /** The whole batch as the broker sent it. */
  bytes: Buffer;
}

/** Sends one request (header v1) and resolves to the response body after its correlation id. */
function roundTrip(address: string, apiKey: number, apiVersion: number, body: Buffer): Promise<Buffer> {
  const [host, port] = [
    address.slice(0, address.lastIndexOf(':')),
    Number(address.slice(address.lastIndexOf(':') + 1)),
  ];
  const clientId = Buffer.from('stored-batches');
  const header = Buffer.alloc(10 + clientId.length);
  header.writeInt16BE(apiKey, 0);
  header.writeInt16BE(apiVersion, 2);
  header.writeInt32BE(1, 4);
  header.writeInt16BE(clientId.length, 8);
  clientId.copy(header, 10);
  const size = Buffer.alloc(4);
  size.writeInt32BE(header.length + body.length);
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, host, () => socket.write(Buffer.concat([size, header, body])));
    let got = Buffer.alloc(0);
    socket.on('data', (d: Buffer) => {
      got = Buffer.concat([got, d]);
      if (got.length >= 4 && got.length >= 4 + got.readInt32BE(0)) {
        socket.destroy();
        resolve(got.subarray(8, 4 + got.readInt32BE(0)));
      }
    });
    socket.on('error', reject);
  });
}

/**
 * Every record batch of `topic`-`partition`, from offset 0 to the end, read from the broker at `address`
 * (the partition's leader: in a one-broker test cluster, its bootstrap address).
 */
export async function storedBatches(address: string, topic: string, partition: number): Promise<StoredBatch[]> {
  const out: StoredBatch[] = [];
  for (let offset = 0; ; ) {
    const { request, response } = fetchRequest(topic, partition, offset, {
      version: 4,
      isolationLevel: 0,
      maxWaitMs: 0,
      maxBytes: 64 << 20,
    });
    const encoded = (await request.encode()) as { buffer: Buffer };
    const decoded = await response.decode(await roundTrip(address, request.apiKey, request.apiVersion, encoded.buffer));
    const p = decoded.responses[0].partitions[0];
    if (p.errorCode !== 0) throw new Error(`fetch of ${topic}-${partition} failed with error code ${p.errorCode}`);
    const set = p.recordSet;
    let start = 4;
    while (start + 61 <= set.length) {
      const end = start + 12 + set.readInt32BE(start + 8);
      if (end > set.length) break;
      const baseOffset = Number(set.readBigInt64BE(start));
      out.push({
        baseOffset,
        compression: set.readInt16BE(start + 21) & 0x07,
        records: set.readInt32BE(start + 57),
        bytes: set.subarray(start, end),
      });
      offset = baseOffset + set.readInt32BE(start + 23) + 1;
      start = end;
    }
    if (offset >= p.highWatermark) return out;
    if (start === 4)
      throw new Error(`fetch of ${topic}-${partition} at ${offset} returned no batch below ${p.highWatermark}`);
  }
}
