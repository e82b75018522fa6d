/**
 * Test support: transactional record batches and transaction markers (control batches) as a transaction
 * coordinator writes them, encoded byte for byte, for brokers and record sets that do not make them.
 */

import type { ProduceMessage } from '../../lib/kafka/messages.js';
import { crc32c } from '../../lib/kafka/protocol/crc32c.js';
import { encodeRecordBatch } from '../../lib/kafka/protocol/record-batch.js';

const TRANSACTIONAL = 0x10;
const CONTROL = 0x20;

/** Sets a batch's base offset, attributes and producer, and its CRC again. */
function stamp(batch: Buffer, baseOffset: number, attributes: number, producerId: bigint): Buffer {
  batch.writeBigInt64BE(BigInt(baseOffset), 0);
  batch.writeInt16BE(attributes, 21);
  batch.writeBigInt64BE(producerId, 43);
  batch.writeInt16BE(0, 51);
  batch.writeUInt32BE(crc32c(batch.subarray(21)), 17);
  return batch;
}

/** A batch of `messages` written by transactional producer `producerId`, its first record at `baseOffset`. */
export function transactionalBatch(messages: ProduceMessage[], producerId: bigint, baseOffset = 0): Buffer {
  return stamp(encodeRecordBatch(messages, Date.now()), baseOffset, TRANSACTIONAL, producerId);
}

/** The marker that ends a transaction of `producerId`: COMMIT or ABORT, as a control batch of one record. */
export function transactionMarker(producerId: bigint, commit: boolean, baseOffset = 0): Buffer {
  const key = Buffer.alloc(4);
  key.writeInt16BE(0, 0); // version
  key.writeInt16BE(commit ? 1 : 0, 2);
  const value = Buffer.alloc(6); // version, coordinator epoch
  return stamp(encodeRecordBatch([{ key, value }], Date.now()), baseOffset, TRANSACTIONAL | CONTROL, producerId);
}

/** Record batches as a Fetch response holds them: an int32 size, then the batches. */
export function recordSet(batches: Buffer[]): Buffer {
  const body = Buffer.concat(batches);
  const size = Buffer.alloc(4);
  size.writeInt32BE(body.length, 0);
  return Buffer.concat([size, body]);
}
