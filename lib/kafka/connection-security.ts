/**
 * Turns {@link KafkaSecurity} into kafkajs' `ssl` and `sasl` settings, reading the PEM files and checking
 * them up front: a wrong key password or a JKS file given as PEM is reported naming the option, not as an
 * OpenSSL error on the first connection.
 */
import * as fs from 'node:fs';
import * as tls from 'node:tls';
import type { Mechanism, SASLOptions } from 'kafkajs';
import { SluiceError } from '../errors.js';
import { bearerTokenSource, oauthBearerMechanism } from './oauthbearer-authenticator.js';
import type { KafkaSaslSettings, KafkaSecurity, KafkaTlsSettings } from './security-options.js';

/** kafkajs' connection settings for one cluster. */
export interface KafkajsSecurity {
  ssl?: tls.ConnectionOptions;
  sasl?: SASLOptions | Mechanism;
}

/** Reads a PEM file; `options` names the options that may have given it, for the hint. */
function readPem(file: string, what: string, options: string): Buffer {
  let data: Buffer;
  try {
    data = fs.readFileSync(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new SluiceError(
      'KAFKA_CONFIG',
      `cannot read ${what} ${file}: ${code === 'ENOENT' ? 'no such file' : (code ?? (err as Error).message)}`,
      `give the path of a PEM file in ${options}`,
      { cause: err },
    );
  }
  if (!data.includes('-----BEGIN ')) {
    throw new SluiceError(
      'KAFKA_CONFIG',
      `${what} ${file} is not a PEM file (${options})`,
      'sluice reads PEM (-----BEGIN ...); convert a JKS or PKCS12 store with keytool or openssl first',
    );
  }
  return data;
}

const CA_OPTIONS = 'kafka.ssl.ca.location or kafka.ssl.truststore.location';

function tlsOptions(settings: KafkaTlsSettings): tls.ConnectionOptions {
  const ca = settings.caFile ? readPem(settings.caFile, 'the CA file', CA_OPTIONS) : undefined;
  if (ca && !ca.includes('-----BEGIN CERTIFICATE-----')) {
    throw new SluiceError(
      'KAFKA_CONFIG',
      `the CA file ${settings.caFile} holds no certificate (${CA_OPTIONS})`,
      'give the PEM file of the CA certificate(s) that signed the brokers’ certificates',
    );
  }
  const cert = settings.certFile
    ? readPem(
        settings.certFile,
        'the client certificate',
        'kafka.ssl.certificate.location or kafka.ssl.keystore.location',
      )
    : undefined;
  const key = settings.keyFile
    ? readPem(settings.keyFile, 'the client key', 'kafka.ssl.key.location or kafka.ssl.keystore.location')
    : undefined;
  let secureContext: tls.SecureContext;
  try {
    secureContext = tls.createSecureContext({ ca, cert, key, passphrase: settings.keyPassword });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const [message, hint] =
      code === 'ERR_OSSL_BAD_DECRYPT'
        ? [
            `cannot decrypt the client key ${settings.keyFile}`,
            settings.keyPassword === undefined
              ? 'the key is encrypted: give its password in kafka.ssl.key.password'
              : 'kafka.ssl.key.password is not the password of this key',
          ]
        : code === 'ERR_OSSL_X509_KEY_VALUES_MISMATCH'
          ? [
              `the client key ${settings.keyFile} does not belong to the certificate ${settings.certFile}`,
              'give the key the certificate was issued for',
            ]
          : [
              `cannot use the client certificate and key (${(err as Error).message})`,
              'kafka.ssl.certificate.location and kafka.ssl.key.location must be PEM files',
            ];
    throw new SluiceError('KAFKA_CONFIG', message, hint, { cause: err });
  }
  return {
    secureContext,
    // Kafka's empty ssl.endpoint.identification.algorithm: the chain is still verified, the host name is not.
    ...(settings.checkHostname ? {} : { checkServerIdentity: () => undefined }),
  };
}

function saslOptions(settings: KafkaSaslSettings): SASLOptions | Mechanism {
  switch (settings.mechanism) {
    case 'PLAIN':
      return { mechanism: 'plain', username: settings.username, password: settings.password };
    case 'SCRAM-SHA-256':
      return { mechanism: 'scram-sha-256', username: settings.username, password: settings.password };
    case 'SCRAM-SHA-512':
      return { mechanism: 'scram-sha-512', username: settings.username, password: settings.password };
    case 'OAUTHBEARER':
      return oauthBearerMechanism(bearerTokenSource(settings));
  }
}

/**
 * kafkajs' `ssl` and `sasl` for `security` (nothing for plaintext).
 * @throws SluiceError KAFKA_CONFIG when a file cannot be read or used.
 */
export function kafkajsSecurity(security: KafkaSecurity | undefined): KafkajsSecurity {
  if (!security) return {};
  return {
    ...(security.tls ? { ssl: tlsOptions(security.tls) } : {}),
    ...(security.sasl ? { sasl: saslOptions(security.sasl) } : {}),
  };
}
