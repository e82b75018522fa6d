/**
 * Failures of TLS and SASL, told apart from a broker being away: no retry makes a wrong password or an
 * untrusted certificate right, so they end the call at once with one line naming the problem and the option
 * that fixes it, instead of being retried for half a minute and reported as an unreachable cluster.
 */
import { SluiceError } from '../errors.js';
import type { KafkaSecurity } from './security-options.js';

/** Fields of the errors kafkajs and Node's TLS raise. */
interface FailureFields extends Error {
  code?: unknown;
  /** OpenSSL's short reason, e.g. `tlsv1 alert unknown ca`. */
  reason?: unknown;
  /** kafkajs' name of a broker error code, e.g. `UNSUPPORTED_SASL_MECHANISM`. */
  type?: unknown;
  /** The API a broker does not support (kafkajs' KafkaJSServerDoesNotSupportApiKey). */
  apiKey?: unknown;
  broker?: unknown;
  cause?: unknown;
  originalError?: unknown;
}

/** The certificate chain does not lead to a trusted CA. */
const UNTRUSTED = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_SIGNATURE_FAILURE',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
]);
/** Kafka's SaslHandshake API: a broker without it has no SASL on that listener. */
const API_SASL_HANDSHAKE = 17;
const EXPIRED = new Set(['CERT_HAS_EXPIRED', 'CERT_NOT_YET_VALID']);
/** The broker's alerts about the client's certificate. */
const CLIENT_CERT_REFUSED = new Set([
  'ERR_SSL_TLSV1_ALERT_UNKNOWN_CA',
  'ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE',
  'ERR_SSL_SSLV3_ALERT_CERTIFICATE_EXPIRED',
  'ERR_SSL_SSLV3_ALERT_CERTIFICATE_UNKNOWN',
  'ERR_SSL_SSLV3_ALERT_UNSUPPORTED_CERTIFICATE',
]);

/** `err` and the errors it wraps (kafkajs keeps them in `cause` or `originalError`). */
function* chain(err: unknown): Generator<FailureFields> {
  const seen = new Set<unknown>();
  let e = err;
  while (e instanceof Error && !seen.has(e)) {
    seen.add(e);
    yield e as FailureFields;
    const f = e as FailureFields;
    e = f.cause ?? f.originalError;
  }
}

/**
 * Why TLS failed, on one line: OpenSSL's short reason (kafkajs keeps only the message of Node's error, where
 * OpenSSL's text reads `...:SSL routines:<function>:<reason>:<file>:<line>:...`), else the message itself.
 */
function reason(e: FailureFields): string {
  if (typeof e.reason === 'string' && e.reason !== '') return e.reason;
  const openssl = /SSL routines:[^:]*:([^:]+):/.exec(e.message);
  if (openssl) return openssl[1];
  return e.message
    .replace(/^Connection error: /, '')
    .replace(/\s+/g, ' ')
    .trim();
}

function tlsFailure(code: string, e: FailureFields, at: string, security?: KafkaSecurity): SluiceError | null {
  const why = reason(e);
  const caFile = security?.tls?.caFile;
  if (UNTRUSTED.has(code)) {
    return new SluiceError(
      'KAFKA_TLS',
      `the certificate of the Kafka broker at ${at} is not signed by a trusted CA (${why})`,
      caFile
        ? `the CA file ${caFile} does not hold the CA that signed it: give that CA's PEM file in kafka.ssl.ca.location`
        : 'give the PEM file of the CA that signed it in kafka.ssl.ca.location',
      { cause: e },
    );
  }
  if (EXPIRED.has(code)) {
    return new SluiceError(
      'KAFKA_TLS',
      `the certificate of the Kafka broker at ${at} is not valid now (${why})`,
      "the broker's certificate must be renewed, or this machine's clock is wrong",
      { cause: e },
    );
  }
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') {
    return new SluiceError(
      'KAFKA_TLS',
      `the certificate of the Kafka broker at ${at} does not name that host (${why})`,
      'connect with a host name the certificate names, or set kafka.ssl.endpoint.identification.algorithm= (empty) to skip the host name check',
      { cause: e },
    );
  }
  if (code === 'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED') {
    return new SluiceError(
      'KAFKA_TLS',
      `the Kafka broker at ${at} requires a client certificate (mutual TLS)`,
      'give the client certificate and key in kafka.ssl.certificate.location and kafka.ssl.key.location',
      { cause: e },
    );
  }
  if (CLIENT_CERT_REFUSED.has(code)) {
    return new SluiceError(
      'KAFKA_TLS',
      `the Kafka broker at ${at} refused the client certificate (${why})`,
      security?.tls?.certFile
        ? `${security.tls.certFile} must be signed by a CA the broker trusts, and be valid now`
        : 'the broker requires a client certificate: give it in kafka.ssl.certificate.location and kafka.ssl.key.location',
      { cause: e },
    );
  }
  if (code === 'ERR_SSL_WRONG_VERSION_NUMBER' || code === 'ERR_SSL_PACKET_LENGTH_TOO_LONG') {
    return new SluiceError(
      'KAFKA_TLS',
      `the Kafka broker at ${at} does not speak TLS on that port (${why})`,
      'check the port; a plaintext listener takes kafka.security.protocol=PLAINTEXT or SASL_PLAINTEXT',
      { cause: e },
    );
  }
  if (code.startsWith('ERR_SSL_') || code.startsWith('ERR_TLS_')) {
    return new SluiceError('KAFKA_TLS', `TLS with the Kafka broker at ${at} failed: ${why}`, undefined, {
      cause: e,
    });
  }
  return null;
}

function authFailure(e: FailureFields, at: string, security?: KafkaSecurity): SluiceError {
  const mechanism = security?.sasl?.mechanism ?? 'SASL';
  const unsupported =
    e.type === 'UNSUPPORTED_SASL_MECHANISM' || /mechanism is not supported by the server/.test(e.message);
  if (unsupported) {
    return new SluiceError(
      'KAFKA_AUTH',
      `Kafka authentication failed at ${at}: the cluster does not enable SASL ${mechanism}`,
      'set kafka.sasl.mechanism to a mechanism the cluster enables (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or OAUTHBEARER)',
      { cause: e },
    );
  }
  const why = e.message.replace(/^SASL .*? authentication failed: /, '');
  const hint =
    mechanism === 'OAUTHBEARER'
      ? 'check the token (kafka.sasl.oauthbearer.token, or the file of kafka.sasl.oauthbearer.token.file): it may have expired or be meant for another cluster'
      : `check the username and password (kafka.sasl.jaas.config, or kafka.sasl.username and kafka.sasl.password)${mechanism.startsWith('SCRAM') ? `, and that the user has ${mechanism} credentials on the cluster` : ''}`;
  return new SluiceError('KAFKA_AUTH', `Kafka authentication failed with SASL ${mechanism} at ${at}: ${why}`, hint, {
    cause: e,
  });
}

/**
 * The SluiceError that `err` amounts to when it is a TLS or SASL failure (or wraps a SluiceError, such as an
 * unreadable token file); null for anything else, which the caller handles as before (retry or report).
 * @param bootstrap where the client connects, named when the failure does not say which broker it was.
 */
export function securityFailure(err: unknown, bootstrap: string[], security?: KafkaSecurity): SluiceError | null {
  for (const e of chain(err)) {
    if (e instanceof SluiceError) return e;
    const at = typeof e.broker === 'string' ? e.broker : bootstrap.join(',');
    if (e.name === 'KafkaJSSASLAuthenticationError' || e.type === 'UNSUPPORTED_SASL_MECHANISM') {
      return authFailure(e, at, security);
    }
    if (e.name === 'KafkaJSServerDoesNotSupportApiKey' && e.apiKey === API_SASL_HANDSHAKE) {
      return new SluiceError(
        'KAFKA_AUTH',
        `the Kafka broker at ${at} does not offer SASL on that port`,
        'check the port of the SASL listener, or use kafka.security.protocol=PLAINTEXT (or SSL) for a listener without SASL',
        { cause: e },
      );
    }
    if (typeof e.code === 'string') {
      const failure = tlsFailure(e.code, e, at, security);
      if (failure) return failure;
    }
  }
  return null;
}
