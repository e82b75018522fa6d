import { expect } from 'chai';
import { SluiceError } from '../../lib/errors.js';
import { parseJaasConfig } from '../../lib/kafka/jaas-config.js';
import { kafkaSecurityOptions } from '../../lib/kafka/security-options.js';
import { KafkaSink } from '../../lib/sinks/kafka-sink.js';
import { createSource } from '../../lib/sources/source-uri.js';

/** The SluiceError `fn` throws. */
function failure(fn: () => unknown): SluiceError {
  try {
    fn();
  } catch (err) {
    expect(err).to.be.instanceOf(SluiceError);
    return err as SluiceError;
  }
  throw new Error('expected a SluiceError');
}

describe('Kafka security options', () => {
  const parse = (options: Record<string, string>) => kafkaSecurityOptions('kafka source', options);

  it('is plaintext without options, and for PLAINTEXT', () => {
    expect(parse({})).to.equal(undefined);
    expect(parse({ 'kafka.security.protocol': 'plaintext' })).to.equal(undefined);
  });

  it('reads TLS settings: CA or truststore, client certificate, key password, hostname check', () => {
    expect(parse({ 'kafka.security.protocol': 'SSL', 'kafka.ssl.ca.location': '/ca.pem' })).to.deep.equal({
      protocol: 'SSL',
      tls: { caFile: '/ca.pem', certFile: undefined, keyFile: undefined, keyPassword: undefined, checkHostname: true },
    });
    expect(
      parse({
        'kafka.security.protocol': 'ssl',
        'kafka.ssl.truststore.location': '/ca.pem',
        'kafka.ssl.truststore.type': 'PEM',
        'kafka.ssl.certificate.location': '/c.pem',
        'kafka.ssl.key.location': '/c.key',
        'kafka.ssl.key.password': 'pw',
        'kafka.ssl.endpoint.identification.algorithm': '',
      })?.tls,
    ).to.deep.equal({
      caFile: '/ca.pem',
      certFile: '/c.pem',
      keyFile: '/c.key',
      keyPassword: 'pw',
      checkHostname: false,
    });
    // A PEM keystore holds the certificate chain and the key in one file.
    expect(parse({ 'kafka.security.protocol': 'SSL', 'kafka.ssl.keystore.location': '/ks.pem' })?.tls).to.include({
      certFile: '/ks.pem',
      keyFile: '/ks.pem',
    });
  });

  it('takes credentials from a JAAS config as Spark users write it, or from username and password', () => {
    const jaas =
      'org.apache.kafka.common.security.plain.PlainLoginModule required username="key1" password="se;cr\\"et";';
    expect(
      parse({ 'kafka.security.protocol': 'SASL_SSL', 'kafka.sasl.mechanism': 'PLAIN', 'kafka.sasl.jaas.config': jaas }),
    ).to.deep.equal({
      protocol: 'SASL_SSL',
      tls: { caFile: undefined, certFile: undefined, keyFile: undefined, keyPassword: undefined, checkHostname: true },
      sasl: { mechanism: 'PLAIN', username: 'key1', password: 'se;cr"et' },
    });
    expect(
      parse({
        'kafka.security.protocol': 'SASL_PLAINTEXT',
        'kafka.sasl.mechanism': 'scram-sha-512',
        'kafka.sasl.username': 'alice',
        'kafka.sasl.password': 'pw',
      }),
    ).to.deep.equal({
      protocol: 'SASL_PLAINTEXT',
      sasl: { mechanism: 'SCRAM-SHA-512', username: 'alice', password: 'pw' },
    });
    // Databricks' shaded class names end the same way.
    expect(
      parse({
        'kafka.security.protocol': 'SASL_PLAINTEXT',
        'kafka.sasl.mechanism': 'SCRAM-SHA-256',
        'kafka.sasl.jaas.config':
          "kafkashaded.org.apache.kafka.common.security.scram.ScramLoginModule required username='u' password=p;",
      })?.sasl,
    ).to.deep.equal({ mechanism: 'SCRAM-SHA-256', username: 'u', password: 'p' });
  });

  it('takes an OAUTHBEARER token or a token file', () => {
    const base = { 'kafka.security.protocol': 'SASL_SSL', 'kafka.sasl.mechanism': 'OAUTHBEARER' };
    expect(parse({ ...base, 'kafka.sasl.oauthbearer.token': ' eyJ.x.y ' })?.sasl).to.deep.equal({
      mechanism: 'OAUTHBEARER',
      token: 'eyJ.x.y',
    });
    expect(parse({ ...base, 'kafka.sasl.oauthbearer.token.file': '/run/token' })?.sasl).to.deep.equal({
      mechanism: 'OAUTHBEARER',
      tokenFile: '/run/token',
    });
  });

  it('refuses settings the protocol would not use, and what it cannot do, naming the fix', () => {
    const cases: Array<[Record<string, string>, RegExp, RegExp]> = [
      [{ 'kafka.security.protocol': 'TLS' }, /must be one of PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL/, /SASL_SSL/],
      [{ 'kafka.ssl.ca.location': '/ca.pem' }, /kafka.ssl.ca.location is set but .* PLAINTEXT/, /protocol=SSL/],
      [
        { 'kafka.security.protocol': 'SSL', 'kafka.sasl.mechanism': 'PLAIN' },
        /kafka.sasl.mechanism is set but .* SSL/,
        /protocol=SASL_SSL/,
      ],
      [{ 'kafka.security.protocol': 'SASL_SSL' }, /kafka.sasl.mechanism is not set/, /GSSAPI/],
      [
        { 'kafka.security.protocol': 'SASL_SSL', 'kafka.sasl.mechanism': 'AWS_MSK_IAM' },
        /AWS_MSK_IAM is not supported/,
        /SCRAM-SHA-512/,
      ],
      [
        { 'kafka.security.protocol': 'SASL_SSL', 'kafka.sasl.mechanism': 'PLAIN', 'kafka.sasl.username': 'u' },
        /PLAIN needs a username and a password: kafka.sasl.password is not set/,
        /jaas.config/,
      ],
      [
        {
          'kafka.security.protocol': 'SASL_SSL',
          'kafka.sasl.mechanism': 'SCRAM-SHA-512',
          'kafka.sasl.jaas.config':
            'org.apache.kafka.common.security.plain.PlainLoginModule required username="u" password="p";',
        },
        /PlainLoginModule, which does not go with kafka.sasl.mechanism=SCRAM-SHA-512/,
        /ScramLoginModule/,
      ],
      [
        {
          'kafka.security.protocol': 'SSL',
          'kafka.ssl.truststore.location': '/t.jks',
          'kafka.ssl.truststore.type': 'JKS',
        },
        /truststore.type is JKS, but sluice reads PEM files only/,
        /keytool -exportcert/,
      ],
      [
        { 'kafka.security.protocol': 'SSL', 'kafka.ssl.certificate.location': '/c.pem' },
        /certificate.location is set without kafka.ssl.key.location/,
        /both/,
      ],
      [
        { 'kafka.security.protocol': 'SSL', 'kafka.ssl.endpoint.identification.algorithm': 'none' },
        /must be https or empty/,
        /empty turns the check off/,
      ],
      [
        { 'kafka.security.protocol': 'SASL_SSL', 'kafka.sasl.mechanism': 'OAUTHBEARER' },
        /OAUTHBEARER needs a token/,
        /token.file/,
      ],
    ];
    for (const [options, message, hint] of cases) {
      const e = failure(() => parse(options));
      expect(e.code).to.equal('BAD_OPTION');
      expect(e.message).to.match(message);
      expect(e.message).to.match(/\(kafka source\)$/);
      expect(e.hint).to.match(hint);
    }
  });

  it('never repeats a secret in its messages', () => {
    const e = failure(() =>
      parse({
        'kafka.security.protocol': 'SASL_SSL',
        'kafka.sasl.mechanism': 'PLAIN',
        'kafka.sasl.jaas.config': 'PlainLoginModule required username="u" password="hunter2"',
      }),
    );
    expect(e.message).to.equal('kafka.sasl.jaas.config is malformed: it must end with ;');
    expect(`${e.message} ${e.hint}`).to.not.include('hunter2');
  });

  it('parses JAAS entries: bare and quoted values, escapes, one module only', () => {
    expect(parseJaasConfig('a.b.C optional x=1 y = "two words" z=\'q\';')).to.deep.equal({
      loginModule: 'a.b.C',
      controlFlag: 'optional',
      options: { x: '1', y: 'two words', z: 'q' },
    });
    expect(() => parseJaasConfig('a.B required;  c.D required;')).to.throw(/only one login module/);
    expect(() => parseJaasConfig('a.B maybe;')).to.throw(/required, requisite, sufficient, optional/);
    expect(() => parseJaasConfig('a.B required password="open;')).to.throw(/quoted value is not closed/);
  });

  it('the source, the sink and their URIs accept the options', () => {
    const source = createSource('kafka', {
      bootstrap: 'b:9093',
      subscribe: 't',
      'kafka.security.protocol': 'SASL_SSL',
      'KAFKA.SASL.MECHANISM': 'PLAIN',
      'kafka.sasl.username': 'u',
      'kafka.sasl.password': 'p',
    });
    expect(source.description).to.equal('KafkaSource[b:9093/t]');
    expect(
      () =>
        new KafkaSink({
          bootstrap: 'b:9093',
          topic: 't',
          'kafka.security.protocol': 'SSL',
          'kafka.ssl.ca.location': '/ca.pem',
        }),
    ).to.not.throw();
    const e = failure(() => new KafkaSink({ bootstrap: 'b:9093', topic: 't', 'kafka.sasl.mechanism': 'PLAIN' }));
    expect(e.message).to.match(
      /^kafka.sasl.mechanism is set but kafka.security.protocol is PLAINTEXT, .* \(kafka sink\)$/,
    );
  });
});
