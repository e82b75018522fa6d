/**
 * How the client secures its broker connections (TLS, SASL), from Kafka's own option names with Spark's
 * `kafka.` prefix. The result is plain data, so it crosses to worker threads with the other client options;
 * files are read when a connection is made. Light on purpose: it must not import kafkajs.
 */
import { SluiceError } from '../errors.js';
import { parseJaasConfig } from './jaas-config.js';

/** Kafka's `security.protocol`. */
export type KafkaSecurityProtocol = 'PLAINTEXT' | 'SSL' | 'SASL_PLAINTEXT' | 'SASL_SSL';

/** The SASL mechanisms the client speaks. */
export type KafkaSaslMechanism = 'PLAIN' | 'SCRAM-SHA-256' | 'SCRAM-SHA-512' | 'OAUTHBEARER';

/** TLS settings; PEM files. */
export interface KafkaTlsSettings {
  /** CAs that sign the brokers' certificates; the system's trusted CAs when absent. */
  caFile?: string;
  /** The client's certificate chain, for brokers that require client authentication (mutual TLS). */
  certFile?: string;
  /** The client's private key. */
  keyFile?: string;
  /** Decrypts an encrypted private key. */
  keyPassword?: string;
  /** Whether the broker's certificate must name the host connected to (`ssl.endpoint.identification.algorithm=https`). */
  checkHostname: boolean;
}

/** SASL settings. */
export type KafkaSaslSettings =
  | { mechanism: 'PLAIN' | 'SCRAM-SHA-256' | 'SCRAM-SHA-512'; username: string; password: string }
  | {
      mechanism: 'OAUTHBEARER';
      /** A token used as it is. */
      token?: string;
      /** A file holding the token, read again each time a connection (re-)authenticates. */
      tokenFile?: string;
    };

/** How the client secures its connections. */
export interface KafkaSecurity {
  protocol: KafkaSecurityProtocol;
  /** Present for SSL and SASL_SSL. */
  tls?: KafkaTlsSettings;
  /** Present for SASL_PLAINTEXT and SASL_SSL. */
  sasl?: KafkaSaslSettings;
}

/** Option names of the client's security settings, as the source, the sink and `sluice gen` accept them. */
export const KAFKA_SECURITY_OPTION_KEYS = [
  'kafka.security.protocol',
  'kafka.ssl.ca.location',
  'kafka.ssl.truststore.location',
  'kafka.ssl.truststore.type',
  'kafka.ssl.certificate.location',
  'kafka.ssl.key.location',
  'kafka.ssl.key.password',
  'kafka.ssl.keystore.location',
  'kafka.ssl.keystore.type',
  'kafka.ssl.endpoint.identification.algorithm',
  'kafka.sasl.mechanism',
  'kafka.sasl.jaas.config',
  'kafka.sasl.username',
  'kafka.sasl.password',
  'kafka.sasl.oauthbearer.token',
  'kafka.sasl.oauthbearer.token.file',
] as const;

const PROTOCOLS: readonly KafkaSecurityProtocol[] = ['PLAINTEXT', 'SSL', 'SASL_PLAINTEXT', 'SASL_SSL'];
const MECHANISMS: readonly KafkaSaslMechanism[] = ['PLAIN', 'SCRAM-SHA-256', 'SCRAM-SHA-512', 'OAUTHBEARER'];

/** The JAAS login module of each mechanism (shaded copies differ in the package only). */
const LOGIN_MODULES: Record<KafkaSaslMechanism, string> = {
  PLAIN: 'org.apache.kafka.common.security.plain.PlainLoginModule',
  'SCRAM-SHA-256': 'org.apache.kafka.common.security.scram.ScramLoginModule',
  'SCRAM-SHA-512': 'org.apache.kafka.common.security.scram.ScramLoginModule',
  OAUTHBEARER: 'org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule',
};

const simpleName = (className: string): string => className.split('.').pop()!;

function bad(owner: string, message: string, hint: string): SluiceError {
  return new SluiceError('BAD_OPTION', `${message} (${owner})`, hint);
}

/**
 * The security settings from `kafka.security.protocol`, `kafka.ssl.*` and `kafka.sasl.*`; undefined for a
 * plaintext connection. Settings that the protocol would not use are refused rather than ignored: a SASL
 * password given with `SSL` means the protocol is wrong, not that the password is unwanted.
 * @param owner names the caller in messages, e.g. `kafka source`.
 * @throws SluiceError BAD_OPTION naming the option (never a secret's value).
 */
export function kafkaSecurityOptions(owner: string, options: Record<string, unknown>): KafkaSecurity | undefined {
  const get = (key: (typeof KAFKA_SECURITY_OPTION_KEYS)[number]): string | undefined => {
    const v = options[key];
    return v === undefined || v === null ? undefined : String(v);
  };
  const path = (key: (typeof KAFKA_SECURITY_OPTION_KEYS)[number]): string | undefined => {
    const v = get(key)?.trim();
    if (v === '') throw bad(owner, `${key} is empty`, 'give the path of a PEM file');
    return v;
  };
  const given = (prefix: string) =>
    KAFKA_SECURITY_OPTION_KEYS.filter((k) => k.startsWith(prefix) && get(k) !== undefined);

  const rawProtocol = get('kafka.security.protocol')?.trim().toUpperCase() ?? 'PLAINTEXT';
  if (!(PROTOCOLS as readonly string[]).includes(rawProtocol)) {
    throw bad(
      owner,
      `kafka.security.protocol must be one of ${PROTOCOLS.join(', ')}, found '${get('kafka.security.protocol')}'`,
      'managed clusters (Confluent Cloud, MSK, Aiven, Redpanda Cloud) take SASL_SSL or SSL',
    );
  }
  const protocol = rawProtocol as KafkaSecurityProtocol;
  const usesTls = protocol === 'SSL' || protocol === 'SASL_SSL';
  const usesSasl = protocol === 'SASL_PLAINTEXT' || protocol === 'SASL_SSL';
  const layers = [
    { prefix: 'kafka.ssl.', used: usesTls, name: 'TLS', fix: usesSasl ? 'SASL_SSL' : 'SSL' },
    { prefix: 'kafka.sasl.', used: usesSasl, name: 'SASL', fix: usesTls ? 'SASL_SSL' : 'SASL_PLAINTEXT' },
  ];
  for (const { prefix, used, name, fix } of layers) {
    const unused = used ? [] : given(prefix);
    if (unused.length > 0) {
      throw bad(
        owner,
        `${unused[0]} is set but kafka.security.protocol is ${protocol}, which does not use ${name}`,
        `set kafka.security.protocol=${fix}`,
      );
    }
  }
  if (!usesTls && !usesSasl) return undefined;
  return {
    protocol,
    ...(usesTls ? { tls: tlsSettings(owner, get, path) } : {}),
    ...(usesSasl ? { sasl: saslSettings(owner, get) } : {}),
  };
}

type Getter = (key: (typeof KAFKA_SECURITY_OPTION_KEYS)[number]) => string | undefined;

function pemOnly(owner: string, get: Getter, key: 'kafka.ssl.truststore.type' | 'kafka.ssl.keystore.type'): void {
  const type = get(key)?.trim().toUpperCase();
  if (type === undefined || type === 'PEM') return;
  const store = key === 'kafka.ssl.truststore.type' ? 'truststore' : 'keystore';
  throw bad(
    owner,
    `${key} is ${type}, but sluice reads PEM files only`,
    store === 'truststore'
      ? 'export the CA certificates: keytool -exportcert -rfc -keystore truststore.jks -alias <ca> > ca.pem, then give kafka.ssl.ca.location=ca.pem'
      : 'convert it: keytool -importkeystore -srckeystore keystore.jks -destkeystore ks.p12 -deststoretype PKCS12, then openssl pkcs12 -in ks.p12 -out keystore.pem, and give kafka.ssl.keystore.location=keystore.pem',
  );
}

function tlsSettings(owner: string, get: Getter, path: Getter): KafkaTlsSettings {
  pemOnly(owner, get, 'kafka.ssl.truststore.type');
  pemOnly(owner, get, 'kafka.ssl.keystore.type');
  const ca = path('kafka.ssl.ca.location');
  const truststore = path('kafka.ssl.truststore.location');
  if (ca !== undefined && truststore !== undefined) {
    throw bad(
      owner,
      'kafka.ssl.ca.location and kafka.ssl.truststore.location are both set',
      'give the CA file once (both name a PEM file of trusted CAs)',
    );
  }
  const keystore = path('kafka.ssl.keystore.location');
  let certFile = path('kafka.ssl.certificate.location');
  let keyFile = path('kafka.ssl.key.location');
  if (keystore !== undefined) {
    if (certFile !== undefined || keyFile !== undefined) {
      throw bad(
        owner,
        'kafka.ssl.keystore.location is set with kafka.ssl.certificate.location or kafka.ssl.key.location',
        'give either a PEM keystore (certificate chain and key in one file) or the certificate and key files',
      );
    }
    certFile = keystore;
    keyFile = keystore;
  }
  if ((certFile === undefined) !== (keyFile === undefined)) {
    throw bad(
      owner,
      certFile === undefined
        ? 'kafka.ssl.key.location is set without kafka.ssl.certificate.location'
        : 'kafka.ssl.certificate.location is set without kafka.ssl.key.location',
      'a client certificate needs both the certificate and its private key',
    );
  }
  const keyPassword = get('kafka.ssl.key.password');
  if (keyPassword !== undefined && keyFile === undefined) {
    throw bad(owner, 'kafka.ssl.key.password is set without a private key', 'set kafka.ssl.key.location too');
  }
  const algorithm = get('kafka.ssl.endpoint.identification.algorithm')?.trim().toLowerCase() ?? 'https';
  if (algorithm !== 'https' && algorithm !== '') {
    throw bad(
      owner,
      `kafka.ssl.endpoint.identification.algorithm must be https or empty, found '${algorithm}'`,
      'https checks that the broker certificate names the host; empty turns the check off',
    );
  }
  return {
    caFile: ca ?? truststore,
    certFile,
    keyFile,
    keyPassword,
    checkHostname: algorithm === 'https',
  };
}

function saslSettings(owner: string, get: Getter): KafkaSaslSettings {
  const raw = get('kafka.sasl.mechanism')?.trim().toUpperCase();
  if (raw === undefined) {
    throw bad(
      owner,
      'kafka.security.protocol uses SASL but kafka.sasl.mechanism is not set',
      `set kafka.sasl.mechanism to ${MECHANISMS.join(', ')} (Kafka's default, GSSAPI/Kerberos, is not supported)`,
    );
  }
  if (!(MECHANISMS as readonly string[]).includes(raw)) {
    throw bad(
      owner,
      `kafka.sasl.mechanism ${raw} is not supported`,
      `use one of ${MECHANISMS.join(', ')}${raw === 'AWS_MSK_IAM' ? ' (MSK also offers SCRAM-SHA-512)' : ''}`,
    );
  }
  const mechanism = raw as KafkaSaslMechanism;
  const jaasText = get('kafka.sasl.jaas.config');
  const jaas = jaasText === undefined ? undefined : parseJaasConfig(jaasText);
  const module = LOGIN_MODULES[mechanism];
  if (jaas && simpleName(jaas.loginModule) !== simpleName(module)) {
    throw bad(
      owner,
      `kafka.sasl.jaas.config names ${jaas.loginModule}, which does not go with kafka.sasl.mechanism=${mechanism}`,
      `use ${module}`,
    );
  }

  if (mechanism === 'OAUTHBEARER') {
    const token = get('kafka.sasl.oauthbearer.token');
    const tokenFile = get('kafka.sasl.oauthbearer.token.file')?.trim();
    for (const key of ['kafka.sasl.username', 'kafka.sasl.password'] as const) {
      if (get(key) !== undefined) {
        throw bad(
          owner,
          `${key} does not apply to OAUTHBEARER`,
          'give the token with kafka.sasl.oauthbearer.token or kafka.sasl.oauthbearer.token.file',
        );
      }
    }
    if ((token === undefined) === (tokenFile === undefined)) {
      throw bad(
        owner,
        token === undefined
          ? 'OAUTHBEARER needs a token'
          : 'kafka.sasl.oauthbearer.token and kafka.sasl.oauthbearer.token.file are both set',
        'give kafka.sasl.oauthbearer.token=<token>, or kafka.sasl.oauthbearer.token.file=<file> that a token refresher rewrites',
      );
    }
    if (token !== undefined && token.trim() === '') {
      throw bad(owner, 'kafka.sasl.oauthbearer.token is empty', 'give the bearer token');
    }
    if (tokenFile === '') throw bad(owner, 'kafka.sasl.oauthbearer.token.file is empty', 'give the path of the file');
    return token !== undefined ? { mechanism, token: token.trim() } : { mechanism, tokenFile };
  }

  for (const key of ['kafka.sasl.oauthbearer.token', 'kafka.sasl.oauthbearer.token.file'] as const) {
    if (get(key) !== undefined) {
      throw bad(owner, `${key} applies to OAUTHBEARER only`, `kafka.sasl.mechanism is ${mechanism}`);
    }
  }
  const username = get('kafka.sasl.username');
  const password = get('kafka.sasl.password');
  if (jaas && (username !== undefined || password !== undefined)) {
    throw bad(
      owner,
      'the credentials are given twice: in kafka.sasl.jaas.config and in kafka.sasl.username/password',
      'keep one of them',
    );
  }
  const user = jaas ? jaas.options.username : username;
  const pass = jaas ? jaas.options.password : password;
  if (user === undefined || pass === undefined) {
    const missing = user === undefined ? 'username' : 'password';
    throw bad(
      owner,
      `${mechanism} needs a username and a password: ${jaas ? `kafka.sasl.jaas.config has no ${missing}` : `kafka.sasl.${missing} is not set`}`,
      `set kafka.sasl.username and kafka.sasl.password, or kafka.sasl.jaas.config=${module} required username="..." password="...";`,
    );
  }
  return { mechanism, username: user, password: pass };
}
