/**
 * The EndTxn request, versions 1 to 3 (flexible from v3): commits (or aborts) a producer's open transaction,
 * which makes its records visible to read_committed consumers (or hides them for good).
 */
import { encodedRequest, type KjsRequest, kafkajsProtocolError } from '../../kafkajs-internals.js';
import { END_TXN_API_KEY, isFlexible } from '../api-versions.js';
import { RequestWriter } from '../request-writer.js';
import { ResponseReader } from '../response-reader.js';
import type { ProducerEpoch } from './init-producer-id.js';

/** An EndTxn request (`version` 1 to 3) that commits the transaction when `commit`, else aborts it. */
export function endTxnRequest(
  version: number,
  transactionalId: string,
  producer: ProducerEpoch,
  commit: boolean,
): KjsRequest<number, void> {
  if (version < 1 || version > 3) throw new RangeError(`EndTxn v${version} is not spoken (1 to 3 are)`);
  const flexible = isFlexible(END_TXN_API_KEY, version);
  const w = new RequestWriter(flexible, 64 + Buffer.byteLength(transactionalId));
  w.string(transactionalId).int64(producer.producerId).int16(producer.epoch).bool(commit);
  const body = w.taggedFields().finish();
  return {
    request: encodedRequest(END_TXN_API_KEY, 'EndTxn', version, body),
    response: {
      decode: async (raw: Buffer) => {
        const r = new ResponseReader(raw, flexible);
        r.skip(4); // throttle time
        return r.int16();
      },
      parse: async (errorCode) => {
        if (errorCode !== 0) throw kafkajsProtocolError(errorCode);
      },
    },
  };
}
