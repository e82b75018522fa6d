/**
 * The InitProducerId request, versions 3 and 4 (flexible): a producer id and epoch for a transactional id.
 * Given the id and epoch the caller holds, the coordinator bumps that epoch (KIP-360) and refuses the old one
 * from then on; given -1/-1 it hands out an id. v4 only widens the errors a broker may answer.
 */
import { encodedRequest, type KjsRequest, kafkajsProtocolError } from '../../kafkajs-internals.js';
import { INIT_PRODUCER_ID_API_KEY, isFlexible } from '../api-versions.js';
import { RequestWriter } from '../request-writer.js';
import { ResponseReader } from '../response-reader.js';

/** A producer id and the epoch that goes with it; -1/-1 for none. */
export interface ProducerEpoch {
  producerId: number;
  epoch: number;
}

/** An InitProducerId request (`version` 3 or 4) for `transactionalId`, naming the id and epoch held now. */
export function initProducerIdRequest(
  version: number,
  transactionalId: string,
  transactionTimeoutMs: number,
  current: ProducerEpoch,
): KjsRequest<{ errorCode: number } & ProducerEpoch, ProducerEpoch> {
  if (version < 3 || version > 4) throw new RangeError(`InitProducerId v${version} is not spoken (3 and 4 are)`);
  const flexible = isFlexible(INIT_PRODUCER_ID_API_KEY, version);
  const w = new RequestWriter(flexible, 64 + Buffer.byteLength(transactionalId));
  w.string(transactionalId).int32(transactionTimeoutMs).int64(current.producerId).int16(current.epoch);
  const body = w.taggedFields().finish();
  return {
    request: encodedRequest(INIT_PRODUCER_ID_API_KEY, 'InitProducerId', version, body),
    response: {
      decode: async (raw: Buffer) => {
        const r = new ResponseReader(raw, flexible);
        r.skip(4); // throttle time
        const errorCode = r.int16();
        return { errorCode, producerId: r.int64(), epoch: r.int16() };
      },
      parse: async ({ errorCode, producerId, epoch }) => {
        if (errorCode !== 0) throw kafkajsProtocolError(errorCode);
        return { producerId, epoch };
      },
    },
  };
}
