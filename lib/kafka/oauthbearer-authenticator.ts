/**
 * SASL/OAUTHBEARER (RFC 7628) for kafkajs. kafkajs' built-in authenticator sends the token and takes
 * any answer as success; a broker that refuses the token answers with an error document and waits for the
 * client to end the exchange (RFC 7628 §3.2.2), so kafkajs carried on as if authenticated and saw its next
 * request's connection closed. This one reads the answer and fails with the broker's reason.
 */
import * as fsp from 'node:fs/promises';
import type { Mechanism } from 'kafkajs';
import kafkajs from 'kafkajs';
import { SluiceError } from '../errors.js';

// kafkajs' typings declare no constructor argument; at run time it takes the message like its other errors.
const KafkaJSSASLAuthenticationError = kafkajs.KafkaJSSASLAuthenticationError as unknown as new (
  message: string,
) => Error;

/** RFC 7628's key-value separator, Control-A. */
const KVSEP = '\x01';

/** A SASL message as kafkajs sends it: the bytes behind their int32 length. */
function saslBytes(text: string) {
  return {
    encode: () => {
      const body = Buffer.from(text, 'utf8');
      const out = Buffer.alloc(4 + body.length);
      out.writeInt32BE(body.length, 0);
      body.copy(out, 4);
      return out;
    },
  };
}

/** The server's SASL answer, as kafkajs hands it over: int32 length, then the bytes. */
const serverBytes = {
  decode: (raw: Buffer) => {
    const n = raw.length >= 4 ? raw.readInt32BE(0) : -1;
    return n > 0 ? raw.subarray(4, 4 + n) : Buffer.alloc(0);
  },
  parse: (data: Buffer) => data,
};

/**
 * Where the bearer token comes from: a token given as an option, or a file that a token refresher
 * rewrites, read again each time a connection authenticates (kafkajs re-authenticates before the session
 * lifetime the broker granted runs out, so a rotated token is picked up before the old one expires).
 */
export function bearerTokenSource(settings: { token?: string; tokenFile?: string }): () => Promise<string> {
  const { token, tokenFile } = settings;
  if (token !== undefined) return async () => token;
  const file = tokenFile!;
  return async () => {
    let text: string;
    try {
      text = await fsp.readFile(file, 'utf8');
    } catch (err) {
      throw new SluiceError(
        'KAFKA_CONFIG',
        `cannot read the OAUTHBEARER token file ${file} (kafka.sasl.oauthbearer.token.file): ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
        'check the path and that the process refreshing the token writes it there',
        { cause: err },
      );
    }
    const value = text.trim();
    if (value === '') {
      throw new SluiceError(
        'KAFKA_CONFIG',
        `the OAUTHBEARER token file ${file} is empty`,
        'check that the process refreshing the token writes it there',
      );
    }
    return value;
  };
}

/** The `status` of an RFC 7628 error document, or the document itself when it is not JSON. */
function refusal(document: Buffer): string {
  const text = document.toString('utf8');
  try {
    const parsed = JSON.parse(text) as { status?: unknown; scope?: unknown };
    if (typeof parsed.status === 'string') {
      return typeof parsed.scope === 'string' ? `${parsed.status} (scope ${parsed.scope})` : parsed.status;
    }
  } catch {
    // Not JSON: the broker's text is the best reason there is.
  }
  return text;
}

/** A kafkajs SASL mechanism that authenticates with the tokens of `token`. */
export function oauthBearerMechanism(token: () => Promise<string>): Mechanism {
  return {
    mechanism: 'oauthbearer',
    authenticationProvider: ({ saslAuthenticate }) => ({
      authenticate: async () => {
        const value = await token();
        let answer: Buffer | undefined;
        try {
          answer =
            (await saslAuthenticate({
              request: saslBytes(`n,,${KVSEP}auth=Bearer ${value}${KVSEP}${KVSEP}`),
              response: serverBytes,
            })) ?? undefined;
        } catch (err) {
          throw new KafkaJSSASLAuthenticationError(`SASL OAUTHBEARER authentication failed: ${(err as Error).message}`);
        }
        if (!answer || answer.length === 0) return;
        // The broker refused the token; ending the exchange lets it close the session cleanly.
        await saslAuthenticate({ request: saslBytes(KVSEP), response: serverBytes }).catch(() => undefined);
        throw new KafkaJSSASLAuthenticationError(
          `SASL OAUTHBEARER authentication failed: the broker refused the token: ${refusal(answer)}`,
        );
      },
    }),
  };
}
