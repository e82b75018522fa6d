/**
 * Test support: a SASL listener in front of the test broker (librdkafka's mock has no SASL). It speaks
 * Kafka's SaslHandshake v1 and SaslAuthenticate v0-1 to the client (ApiVersions is forwarded to the broker
 * and its answer completed with these) and checks, server side:
 *
 * - PLAIN (RFC 4616): `authzid NUL user NUL password` against its users;
 * - SCRAM-SHA-256 and SCRAM-SHA-512 (RFC 5802, RFC 7677): it keeps only each user's salt, StoredKey and
 *   ServerKey, as a broker does; it checks the GS2 header, the channel-binding echo, that the client's final
 *   nonce carries the combined nonce it issued, and the client proof (H(ClientProof XOR HMAC(StoredKey,
 *   AuthMessage)) = StoredKey), and proves itself with the server signature;
 * - OAUTHBEARER (RFC 7628): the GS2 header and the `auth=Bearer <token>` pair of the client's message, the
 *   token against the tokens it accepts; a refused token gets the RFC's error document, and the exchange
 *   fails once the client answers it with the lone separator.
 *
 * A failure is answered with SASL_AUTHENTICATION_FAILED and the connection closed, as a broker does. After
 * success the connection is forwarded to the broker by the Kafka proxy (kafka-proxy.ts), which also rewrites
 * the advertised broker addresses so clients stay on the proxy. With `sessionLifetimeMs` the session
 * expires (the lifetime is sent in SaslAuthenticate v1, KIP-368): a request after it closes the connection,
 * so clients must re-authenticate in time.
 */
import * as crypto from 'node:crypto';
import {
  API_SASL_AUTHENTICATE,
  API_SASL_HANDSHAKE,
  encode,
  type KafkaProxy,
  type SaslServer,
  type SaslSession,
  type SaslStep,
  startKafkaProxy,
} from './kafka-proxy.js';

export type SaslMechanism = 'PLAIN' | 'SCRAM-SHA-256' | 'SCRAM-SHA-512' | 'OAUTHBEARER';

const UNSUPPORTED_SASL_MECHANISM = 33;
const UNSUPPORTED_VERSION = 35;
const ILLEGAL_SASL_STATE = 34;
const SASL_AUTHENTICATION_FAILED = 58;
const SCRAM_ITERATIONS = 4096;
/** RFC 7628's key-value separator, Control-A. */
const KVSEP = '\x01';

export interface SaslProxyOptions {
  /** The brokers' addresses. */
  upstream: string[];
  /** The mechanisms the listener enables. */
  mechanisms: SaslMechanism[];
  /** Users and their passwords (PLAIN, SCRAM). */
  users?: Record<string, string>;
  /** Bearer tokens accepted (OAUTHBEARER); {@link SaslProxy.acceptTokens} replaces them. */
  tokens?: string[];
  /** Lifetime of an authenticated session; unlimited when absent. */
  sessionLifetimeMs?: number;
}

/** A successful authentication, as the proxy saw it. */
export interface Authentication {
  mechanism: SaslMechanism;
  /** The user, or for OAUTHBEARER the token. */
  principal: string;
  /** Whether it re-authenticated an authenticated connection. */
  reauthentication: boolean;
}

/** A running SASL proxy. */
export interface SaslProxy extends KafkaProxy {
  /** From now on, accept these bearer tokens only. */
  acceptTokens(tokens: string[]): void;
  /** Every successful authentication so far. */
  readonly authentications: Authentication[];
  /** Every refused one: mechanism and the reason sent to the client. */
  readonly failures: Array<{ mechanism: string; reason: string }>;
}

/** What a mechanism's exchange does with one client message. */
type Exchange = (message: Buffer) => { reply: Buffer; done?: { principal: string } } | { error: string };

const hashes = { 'SCRAM-SHA-256': 'sha256', 'SCRAM-SHA-512': 'sha512' } as const;

/** A user's SCRAM credential, as a broker stores it (RFC 5802 §3): never the password. */
interface ScramCredential {
  salt: Buffer;
  storedKey: Buffer;
  serverKey: Buffer;
}

function hmac(hash: string, key: Buffer, text: string): Buffer {
  return crypto.createHmac(hash, key).update(text, 'utf8').digest();
}

function scramCredential(hash: 'sha256' | 'sha512', password: string): ScramCredential {
  const salt = crypto.randomBytes(16);
  const salted = crypto.pbkdf2Sync(password, salt, SCRAM_ITERATIONS, hash === 'sha256' ? 32 : 64, hash);
  const clientKey = hmac(hash, salted, 'Client Key');
  return {
    salt,
    storedKey: crypto.createHash(hash).update(clientKey).digest(),
    serverKey: hmac(hash, salted, 'Server Key'),
  };
}

/** `a=1,b=2` attributes of a SCRAM message, in order. */
function attributes(text: string): Array<[string, string]> {
  return text.split(',').map((part) => [part.slice(0, 1), part.slice(2)] as [string, string]);
}

/** RFC 5802's saslname: `=2C` and `=3D` stand for `,` and `=`; any other `=` is invalid. */
function saslName(text: string): string | null {
  if (/=(?!2C|3D)/.test(text)) return null;
  return text.replace(/=2C/g, ',').replace(/=3D/g, '=');
}

function plainExchange(users: Record<string, string>): Exchange {
  return (message) => {
    const [authzid, user, password, ...extra] = message.toString('utf8').split('\0');
    if (extra.length > 0 || user === undefined || password === undefined) return { error: 'malformed PLAIN message' };
    if (authzid !== '' && authzid !== user) {
      return { error: 'Authentication failed: Client requested an authorization id that is different from username' };
    }
    if (users[user] === undefined || users[user] !== password) {
      return { error: 'Authentication failed: Invalid username or password' };
    }
    return { reply: Buffer.alloc(0), done: { principal: user } };
  };
}

function scramExchange(
  mechanism: 'SCRAM-SHA-256' | 'SCRAM-SHA-512',
  credentials: Map<string, ScramCredential>,
): Exchange {
  const hash = hashes[mechanism];
  const invalid = `Authentication failed during authentication due to invalid credentials with SASL mechanism ${mechanism}`;
  let first: { bare: string; gs2: string; user: string; nonce: string; serverFirst: string } | null = null;
  return (message) => {
    const text = message.toString('utf8');
    if (!first) {
      // client-first-message = gs2-header client-first-message-bare; no channel binding over this proxy.
      const m = /^(n|y),(?:a=([^,]*))?,(.*)$/.exec(text);
      if (!m) return { error: 'malformed SCRAM client-first-message (channel binding is not supported)' };
      const bare = m[3];
      const attrs = attributes(bare);
      if (attrs[0]?.[0] !== 'n' || attrs[1]?.[0] !== 'r' || attrs[1][1] === '') {
        return { error: 'malformed SCRAM client-first-message: expected n=<user>,r=<nonce>' };
      }
      const user = saslName(attrs[0][1]);
      if (user === null) return { error: 'invalid SCRAM username encoding' };
      if (m[2] !== undefined && m[2] !== '' && saslName(m[2]) !== user) {
        return { error: 'Authentication failed: authorization id differs from username' };
      }
      // An unknown user gets a made-up salt and fails at the proof, so users cannot be probed.
      const credential = credentials.get(user) ?? scramCredential(hash, crypto.randomBytes(16).toString('hex'));
      const nonce = attrs[1][1] + crypto.randomBytes(18).toString('base64');
      const serverFirst = `r=${nonce},s=${credential.salt.toString('base64')},i=${SCRAM_ITERATIONS}`;
      first = { bare, gs2: text.slice(0, text.length - bare.length), user, nonce, serverFirst };
      return { reply: Buffer.from(serverFirst, 'utf8') };
    }
    // client-final-message = c=<base64 gs2 header>,r=<nonce>[,extensions],p=<proof>
    const proofAt = text.lastIndexOf(',p=');
    if (proofAt < 0) return { error: 'malformed SCRAM client-final-message: no proof' };
    const withoutProof = text.slice(0, proofAt);
    const attrs = attributes(withoutProof);
    if (attrs[0]?.[0] !== 'c' || Buffer.from(attrs[0][1], 'base64').toString('utf8') !== first.gs2) {
      return { error: 'SCRAM channel binding does not match the GS2 header' };
    }
    // Kafka's broker accepts a final nonce that ends with the one it issued, because librdkafka sends the client
    // nonce in front of it once more; the fixture does the same so that kcat can check the sink's output.
    if (attrs[1]?.[0] !== 'r' || !attrs[1][1].endsWith(first.nonce)) {
      return { error: 'SCRAM nonce does not match the one the server issued' };
    }
    const credential = credentials.get(first.user);
    const authMessage = `${first.bare},${first.serverFirst},${withoutProof}`;
    const proof = Buffer.from(text.slice(proofAt + 3), 'base64');
    if (!credential || proof.length !== credential.storedKey.length) return { error: invalid };
    const signature = hmac(hash, credential.storedKey, authMessage);
    const clientKey = Buffer.from(proof.map((b, i) => b ^ signature[i]));
    const stored = crypto.createHash(hash).update(clientKey).digest();
    if (!crypto.timingSafeEqual(stored, credential.storedKey)) return { error: invalid };
    const serverSignature = hmac(hash, credential.serverKey, authMessage).toString('base64');
    return { reply: Buffer.from(`v=${serverSignature}`, 'utf8'), done: { principal: first.user } };
  };
}

function oauthBearerExchange(tokens: () => Set<string>): Exchange {
  let refused: string | null = null;
  return (message) => {
    const text = message.toString('utf8');
    if (refused !== null) {
      // RFC 7628 §3.2.3: after an error document the client sends a lone %x01 and the exchange fails.
      return { error: text === KVSEP ? refused : 'expected %x01 after the error document' };
    }
    // client-resp = gs2-header kvsep *kvpair kvsep; gs2-header = "n," ["a=" saslname] ","; kvpair = key "=" value kvsep
    const gs2 = /^n,(?:a=[^,]*)?,/.exec(text);
    const kv = gs2 ? text.slice(gs2[0].length) : '';
    if (!gs2 || !kv.startsWith(KVSEP) || !kv.endsWith(KVSEP + KVSEP)) {
      return { error: 'malformed OAUTHBEARER client response' };
    }
    const entries = kv.slice(1, -2).split(KVSEP);
    if (entries.some((p) => !/^[A-Za-z]+=[\x21-\x7e \t\r\n]*$/.test(p))) {
      return { error: 'malformed OAUTHBEARER key-value pair' };
    }
    const pairs = new Map(entries.map((p) => [p.slice(0, p.indexOf('=')), p.slice(p.indexOf('=') + 1)]));
    const auth = /^bearer ([\w\-.~+/]+=*)$/i.exec(pairs.get('auth') ?? '');
    if (!auth) return { error: 'OAUTHBEARER client response has no auth=Bearer <token>' };
    if (!tokens().has(auth[1])) {
      refused = 'Authentication failed: invalid_token';
      return { reply: Buffer.from(JSON.stringify({ status: 'invalid_token' }), 'utf8') };
    }
    return { reply: Buffer.alloc(0), done: { principal: auth[1] } };
  };
}

/** Starts a SASL listener per broker of `upstream`. */
export async function startSaslProxy(opts: SaslProxyOptions): Promise<SaslProxy> {
  const users = opts.users ?? {};
  let tokens = new Set(opts.tokens ?? []);
  const scram = {
    'SCRAM-SHA-256': new Map(Object.entries(users).map(([u, p]) => [u, scramCredential('sha256', p)])),
    'SCRAM-SHA-512': new Map(Object.entries(users).map(([u, p]) => [u, scramCredential('sha512', p)])),
  };
  const authentications: Authentication[] = [];
  const failures: Array<{ mechanism: string; reason: string }> = [];

  const newExchange = (mechanism: SaslMechanism): Exchange =>
    mechanism === 'PLAIN'
      ? plainExchange(users)
      : mechanism === 'OAUTHBEARER'
        ? oauthBearerExchange(() => tokens)
        : scramExchange(mechanism, scram[mechanism]);

  const server: SaslServer = {
    // SaslHandshake v0 (SASL tokens in raw frames) is announced, as brokers before Kafka 4.0 do and librdkafka
    // requires before it uses v1, but refused: clients choose v1 when it is there.
    versions: { [API_SASL_HANDSHAKE]: { min: 0, max: 1 }, [API_SASL_AUTHENTICATE]: { min: 0, max: 1 } },
    session(): SaslSession {
      let mechanism: SaslMechanism | null = null;
      let exchange: Exchange | null = null;
      let authenticatedBefore = false;
      return {
        async handle(apiKey, apiVersion, body): Promise<SaslStep> {
          if (apiKey === API_SASL_HANDSHAKE) {
            if (apiVersion !== 1) {
              failures.push({ mechanism: '?', reason: `SaslHandshake v${apiVersion}` });
              return { body: Buffer.concat([encode.int16(UNSUPPORTED_VERSION), encode.int32(0)]), state: 'failed' };
            }
            const wanted = body.subarray(2, 2 + body.readInt16BE(0)).toString('utf8');
            const enabled = [encode.int32(opts.mechanisms.length), ...opts.mechanisms.map((m) => encode.string(m))];
            const ok = (opts.mechanisms as string[]).includes(wanted);
            // Re-authentication must keep the mechanism (KIP-368).
            if (!ok || (authenticatedBefore && wanted !== mechanism)) {
              failures.push({ mechanism: wanted, reason: 'mechanism not enabled' });
              return { body: Buffer.concat([encode.int16(UNSUPPORTED_SASL_MECHANISM), ...enabled]), state: 'failed' };
            }
            mechanism = wanted as SaslMechanism;
            exchange = newExchange(mechanism);
            return { body: Buffer.concat([encode.int16(0), ...enabled]), state: 'continue' };
          }
          const respond = (error: number, message: string | null, bytes: Buffer, lifetimeMs = 0) =>
            Buffer.concat([
              encode.int16(error),
              encode.string(message),
              encode.bytes(bytes),
              ...(apiVersion >= 1 ? [encode.int64(lifetimeMs)] : []),
            ]);
          if (!exchange || !mechanism) {
            return {
              body: respond(ILLEGAL_SASL_STATE, 'SaslAuthenticate before SaslHandshake', Buffer.alloc(0)),
              state: 'failed',
            };
          }
          const len = body.readInt32BE(0);
          const result = exchange(body.subarray(4, 4 + len));
          if ('error' in result) {
            failures.push({ mechanism, reason: result.error });
            exchange = null;
            return { body: respond(SASL_AUTHENTICATION_FAILED, result.error, Buffer.alloc(0)), state: 'failed' };
          }
          if (!result.done) return { body: respond(0, null, result.reply), state: 'continue' };
          authentications.push({ mechanism, principal: result.done.principal, reauthentication: authenticatedBefore });
          authenticatedBefore = true;
          exchange = null;
          // SaslAuthenticate v0 cannot tell the client a lifetime, so its sessions never expire.
          const lifetime = apiVersion >= 1 ? (opts.sessionLifetimeMs ?? 0) : 0;
          return {
            body: respond(0, null, result.reply, lifetime),
            state: 'authenticated',
            expiresAt: lifetime > 0 ? Date.now() + lifetime : undefined,
          };
        },
      };
    },
  };

  const proxy = await startKafkaProxy({ upstream: opts.upstream, sasl: server });
  return {
    ...proxy,
    acceptTokens(list) {
      tokens = new Set(list);
    },
    authentications,
    failures,
  };
}
