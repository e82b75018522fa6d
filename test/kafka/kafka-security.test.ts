import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { expect } from 'chai';
import { KafkaClient } from '../../lib/kafka/client.js';
import { kafkaSecurityOptions } from '../../lib/kafka/security-options.js';
import { type CliResult, enrichEvents, enrichReference, runCli, TEST_APPS } from '../support/cli.js';
import { consumeWithKcat, produceWithKcat, startBroker, type TestBroker } from '../support/kafka-broker.js';
import { type SaslProxy, startSaslProxy } from '../support/sasl-proxy.js';
import { createTestPki, startTlsBroker, type TestPki, type TlsBroker } from '../support/tls-terminator.js';

const EVENTS = 200;
const run = promisify(execFile);

interface Enriched {
  id: number;
  user: string;
  amount: number;
  tag: string;
}

/**
 * Kafka over TLS (stunnel in front of the test broker) and SASL (the SASL listener fixture), as users run
 * it: `sluice run` and `sluice gen` with Spark's option names in the URIs, output checked on the broker, and
 * kcat as a second client through the same TLS and SASL listeners.
 */
describe('Kafka over TLS and SASL', function () {
  this.timeout(300_000);
  let broker: TestBroker;
  let pki: TestPki;
  let root: string;
  let expected: number[];
  let n = 0;
  const app = path.join(TEST_APPS, 'enrich.js');

  before(async () => {
    broker = await startBroker({ topics: { events: 3 } });
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-kafka-security-'));
    pki = createTestPki(path.join(root, 'pki'));
    const events = enrichEvents(EVENTS);
    produceWithKcat(
      broker.bootstrap,
      'events',
      events.map((e) => JSON.stringify(e)),
    );
    expected = enrichReference(events).map((e) => e.id);
  });
  after(async () => {
    await broker?.stop();
    fs.rmSync(root, { recursive: true, force: true });
  });

  /** `key=value&...` of a URI query, values encoded. */
  const query = (options: Record<string, string>): string =>
    Object.entries(options)
      .map(([k, v]) => `${k}=${encodeURIComponent(v)}`)
      .join('&');

  async function outputTopic(): Promise<string> {
    const t = `out${++n}`;
    await broker.command(`topic ${t} 2`);
    return t;
  }

  /** Runs the enrich app from `events` to a new topic, both through `bootstrap` with `options`. */
  async function enrich(bootstrap: string, options: Record<string, string>, threads = 0): Promise<[CliResult, string]> {
    const out = await outputTopic();
    const res = await runCli([
      'run',
      app,
      '--source',
      `kafka://${bootstrap}/events?startingOffsets=earliest&${query(options)}`,
      '--sink',
      `kafka://${bootstrap}/${out}?${query(options)}`,
      '--checkpoint',
      path.join(root, `ck${n}`),
      '--trigger',
      'available-now',
      '--threads',
      String(threads),
      '--quiet',
    ]);
    return [res, out];
  }

  /** The ids of a topic's records, read by kcat from the broker itself. */
  const ids = (topic: string): number[] =>
    consumeWithKcat(broker.bootstrap, topic)
      .map((r) => (JSON.parse(r.value) as Enriched).id)
      .sort((a, b) => a - b);

  /** A user error as the CLI prints it: one line, exit 1, no stack trace. */
  function oneLineError(res: CliResult, pattern: RegExp): void {
    expect(res.code, res.stderr).to.equal(1);
    const lines = res.stderr.trim().split('\n');
    expect(lines, res.stderr).to.have.length(1);
    expect(lines[0]).to.match(/^sluice: /);
    expect(lines[0]).to.match(pattern);
    expect(res.stderr).to.not.match(/\n\s+at /);
  }

  describe('TLS through stunnel', () => {
    let tls: TlsBroker;
    before(async () => {
      tls = await startTlsBroker({ brokers: broker.brokers, pki });
    });
    after(async () => {
      await tls?.stop();
    });
    const ssl = (more: Record<string, string> = {}) => ({
      'kafka.security.protocol': 'SSL',
      'kafka.ssl.ca.location': pki.caFile,
      ...more,
    });

    it('a query reads and writes through TLS (read tasks in worker threads too); kcat reads the output over TLS', async () => {
      const [res, out] = await enrich(tls.bootstrap, ssl(), 2);
      expect(res.code, res.stderr).to.equal(0);
      expect(ids(out)).to.deep.equal(expected);
      const { stdout } = await run(
        'kcat',
        [
          '-b',
          tls.bootstrap,
          '-X',
          'security.protocol=SSL',
          '-X',
          `ssl.ca.location=${pki.caFile}`,
          '-C',
          '-t',
          out,
          '-o',
          'beginning',
          '-e',
          '-q',
        ],
        { timeout: 30_000 },
      );
      const read = stdout
        .trim()
        .split('\n')
        .map((l) => (JSON.parse(l) as Enriched).id)
        .sort((a, b) => a - b);
      expect(read).to.deep.equal(expected);
    });

    it('sluice gen writes through TLS', async () => {
      await broker.command('topic gen-tls 2');
      const res = await runCli([
        'gen',
        'bank',
        '--count',
        '40',
        '--to',
        `kafka://${tls.bootstrap}/gen-tls?${query(ssl())}`,
      ]);
      expect(res.code, res.stderr).to.equal(0);
      expect(consumeWithKcat(broker.bootstrap, 'gen-tls')).to.have.length(40);
    });

    it('a CA that did not sign the broker certificate: one line naming the certificate problem, at once', async () => {
      const started = Date.now();
      const [res] = await enrich(tls.bootstrap, ssl({ 'kafka.ssl.ca.location': pki.otherCaFile }));
      oneLineError(
        res,
        /the certificate of the Kafka broker at localhost:\d+ is not signed by a trusted CA \(unable to verify the first certificate\) \(the CA file .*other-ca\.pem does not hold the CA that signed it/,
      );
      expect(Date.now() - started, 'not retried as if the broker were down').to.be.below(20_000);
    });

    it('host name check: on by default (the certificate names localhost, not 127.0.0.1), off with an empty algorithm', async () => {
      const [refused] = await enrich(tls.bootstrapByIp, ssl());
      oneLineError(
        refused,
        /the certificate of the Kafka broker at 127\.0\.0\.1:\d+ does not name that host .*kafka\.ssl\.endpoint\.identification\.algorithm= \(empty\)/,
      );
      const [res, out] = await enrich(tls.bootstrapByIp, ssl({ 'kafka.ssl.endpoint.identification.algorithm': '' }));
      expect(res.code, res.stderr).to.equal(0);
      expect(ids(out)).to.deep.equal(expected);
    });

    it('a TLS option without a TLS protocol is a usage error, before connecting', async () => {
      const [res] = await enrich(tls.bootstrap, { 'kafka.ssl.ca.location': pki.caFile });
      expect(res.code, res.stderr).to.equal(2);
      expect(res.stderr).to.match(/kafka\.ssl\.ca\.location is set but kafka\.security\.protocol is PLAINTEXT/);
    });
  });

  describe('mutual TLS (stunnel requires a client certificate)', () => {
    let tls: TlsBroker;
    before(async () => {
      tls = await startTlsBroker({ brokers: broker.brokers, pki, requireClientCert: true });
    });
    after(async () => {
      await tls?.stop();
    });
    const ssl = (more: Record<string, string>) => ({
      'kafka.security.protocol': 'SSL',
      'kafka.ssl.ca.location': pki.caFile,
      ...more,
    });

    it('without a client certificate: one line saying the broker requires one', async () => {
      const [res] = await enrich(tls.bootstrap, ssl({}));
      oneLineError(res, /the Kafka broker at localhost:\d+ requires a client certificate \(mutual TLS\)/);
    });

    it('with the client certificate and key (plain, or encrypted with kafka.ssl.key.password): reads and writes', async () => {
      const [res, out] = await enrich(
        tls.bootstrap,
        ssl({ 'kafka.ssl.certificate.location': pki.clientCert, 'kafka.ssl.key.location': pki.clientKey }),
      );
      expect(res.code, res.stderr).to.equal(0);
      expect(ids(out)).to.deep.equal(expected);
      const [encrypted, out2] = await enrich(
        tls.bootstrap,
        ssl({
          'kafka.ssl.certificate.location': pki.clientCert,
          'kafka.ssl.key.location': pki.clientKeyEncrypted,
          'kafka.ssl.key.password': pki.keyPassword,
        }),
      );
      expect(encrypted.code, encrypted.stderr).to.equal(0);
      expect(ids(out2)).to.deep.equal(expected);
    });

    it('a client certificate from another CA is refused; a wrong key password is named', async () => {
      const [refused] = await enrich(
        tls.bootstrap,
        ssl({ 'kafka.ssl.certificate.location': pki.otherClientCert, 'kafka.ssl.key.location': pki.otherClientKey }),
      );
      oneLineError(
        refused,
        /the Kafka broker at localhost:\d+ refused the client certificate \(tlsv1 alert unknown ca\)/,
      );
      const [badPassword] = await enrich(
        tls.bootstrap,
        ssl({
          'kafka.ssl.certificate.location': pki.clientCert,
          'kafka.ssl.key.location': pki.clientKeyEncrypted,
          'kafka.ssl.key.password': 'not it',
        }),
      );
      oneLineError(
        badPassword,
        /cannot decrypt the client key .*client-encrypted\.key \(kafka\.ssl\.key\.password is not/,
      );
    });
  });

  describe('SASL through the SASL listener fixture', () => {
    const users = { alice: 'w0nder land', 'key;1': 's3cr"t' };
    let proxy: SaslProxy;
    let tls: TlsBroker;
    before(async () => {
      const mechanisms = ['PLAIN', 'SCRAM-SHA-256', 'SCRAM-SHA-512', 'OAUTHBEARER'] as const;
      proxy = await startSaslProxy({ upstream: broker.brokers, mechanisms: [...mechanisms], users, tokens: ['tok-1'] });
      tls = await startTlsBroker({ brokers: broker.brokers, pki, sasl: { mechanisms: [...mechanisms], users } });
    });
    after(async () => {
      await proxy?.close();
      await tls?.stop();
    });

    const cases: Array<{ name: string; tls: boolean; options: Record<string, string>; principal: string }> = [
      {
        name: 'PLAIN over SASL_SSL with a JAAS config (Confluent Cloud style)',
        tls: true,
        options: {
          'kafka.security.protocol': 'SASL_SSL',
          'kafka.sasl.mechanism': 'PLAIN',
          'kafka.sasl.jaas.config':
            'org.apache.kafka.common.security.plain.PlainLoginModule required username="key;1" password="s3cr\\"t";',
        },
        principal: 'key;1',
      },
      {
        name: 'SCRAM-SHA-256 over SASL_PLAINTEXT with kafka.sasl.username/password',
        tls: false,
        options: {
          'kafka.security.protocol': 'SASL_PLAINTEXT',
          'kafka.sasl.mechanism': 'SCRAM-SHA-256',
          'kafka.sasl.username': 'alice',
          'kafka.sasl.password': 'w0nder land',
        },
        principal: 'alice',
      },
      {
        name: 'SCRAM-SHA-512 over SASL_SSL with a JAAS config (MSK style)',
        tls: true,
        options: {
          'kafka.security.protocol': 'SASL_SSL',
          'kafka.sasl.mechanism': 'SCRAM-SHA-512',
          'kafka.sasl.jaas.config':
            'org.apache.kafka.common.security.scram.ScramLoginModule required username="alice" password="w0nder land";',
        },
        principal: 'alice',
      },
      {
        name: 'OAUTHBEARER over SASL_PLAINTEXT with a token',
        tls: false,
        options: {
          'kafka.security.protocol': 'SASL_PLAINTEXT',
          'kafka.sasl.mechanism': 'OAUTHBEARER',
          'kafka.sasl.oauthbearer.token': 'tok-1',
        },
        principal: 'tok-1',
      },
    ];

    for (const c of cases) {
      it(`${c.name}: a query reads and writes, and a wrong secret fails with one line`, async () => {
        const listener = c.tls ? (tls.proxy as SaslProxy) : proxy;
        const options = c.tls ? { ...c.options, 'kafka.ssl.ca.location': pki.caFile } : c.options;
        const bootstrap = c.tls ? tls.bootstrap : proxy.bootstrap;
        const before = listener.authentications.length;
        const [res, out] = await enrich(bootstrap, options);
        expect(res.code, res.stderr).to.equal(0);
        expect(ids(out)).to.deep.equal(expected);
        const mechanism = c.options['kafka.sasl.mechanism'];
        const seen = listener.authentications.slice(before);
        expect(seen.length).to.be.greaterThan(0);
        expect(seen.every((a) => a.mechanism === mechanism && a.principal === c.principal)).to.equal(true);

        const wrong = Object.fromEntries(
          Object.entries(options).map(([k, v]) => [
            k,
            k === 'kafka.sasl.password' || k === 'kafka.sasl.oauthbearer.token'
              ? 'wrong'
              : k === 'kafka.sasl.jaas.config'
                ? v.replace(/password="(?:[^"\\]|\\.)*"/, 'password="wrong"')
                : v,
          ]),
        );
        const [failed] = await enrich(bootstrap, wrong);
        oneLineError(
          failed,
          new RegExp(
            `Kafka authentication failed with SASL ${mechanism} at \\S+: .* \\(check the ${mechanism === 'OAUTHBEARER' ? 'token' : 'username and password'}`,
          ),
        );
        expect(failed.stderr).to.not.include('wrong');
      });
    }

    it('sluice gen writes through SASL SCRAM-SHA-512, and kcat reads it back through the listener', async () => {
      await broker.command('topic gen-sasl 2');
      const options = {
        'kafka.security.protocol': 'SASL_PLAINTEXT',
        'kafka.sasl.mechanism': 'SCRAM-SHA-512',
        'kafka.sasl.username': 'alice',
        'kafka.sasl.password': 'w0nder land',
      };
      const res = await runCli([
        'gen',
        'bank',
        '--count',
        '30',
        '--to',
        `kafka://${proxy.bootstrap}/gen-sasl?${query(options)}`,
      ]);
      expect(res.code, res.stderr).to.equal(0);
      const { stdout } = await run(
        'kcat',
        [
          '-b',
          proxy.bootstrap,
          '-X',
          'security.protocol=SASL_PLAINTEXT',
          '-X',
          'sasl.mechanism=SCRAM-SHA-512',
          '-X',
          'sasl.username=alice',
          '-X',
          'sasl.password=w0nder land',
          '-C',
          '-t',
          'gen-sasl',
          '-o',
          'beginning',
          '-e',
          '-q',
        ],
        { timeout: 30_000 },
      );
      expect(stdout.trim().split('\n')).to.have.length(30);
    });

    it('a mechanism the cluster does not enable, and SASL against a listener without SASL, are named', async () => {
      const only = await startSaslProxy({ upstream: broker.brokers, mechanisms: ['PLAIN'], users });
      try {
        const [res] = await enrich(only.bootstrap, {
          'kafka.security.protocol': 'SASL_PLAINTEXT',
          'kafka.sasl.mechanism': 'SCRAM-SHA-256',
          'kafka.sasl.username': 'alice',
          'kafka.sasl.password': 'w0nder land',
        });
        oneLineError(res, /the cluster does not enable SASL SCRAM-SHA-256/);
      } finally {
        await only.close();
      }
      const [plain] = await enrich(broker.bootstrap, {
        'kafka.security.protocol': 'SASL_PLAINTEXT',
        'kafka.sasl.mechanism': 'PLAIN',
        'kafka.sasl.username': 'alice',
        'kafka.sasl.password': 'w0nder land',
      });
      oneLineError(plain, /the Kafka broker at \S+ does not offer SASL on that port/);
    });
  });

  describe('OAUTHBEARER token file', () => {
    it('is read again when the session expires: a rotated token is used for re-authentication', async () => {
      // The broker grants 12 s sessions; kafkajs re-authenticates 10 s before the end, so after 2 s.
      const proxy = await startSaslProxy({
        upstream: broker.brokers,
        mechanisms: ['OAUTHBEARER'],
        tokens: ['first'],
        sessionLifetimeMs: 12_000,
      });
      const tokenFile = path.join(root, 'token');
      fs.writeFileSync(tokenFile, 'first\n');
      const security = kafkaSecurityOptions('test', {
        'kafka.security.protocol': 'SASL_PLAINTEXT',
        'kafka.sasl.mechanism': 'OAUTHBEARER',
        'kafka.sasl.oauthbearer.token.file': tokenFile,
      });
      const client = await KafkaClient.connect(proxy.bootstrap, { security, retry: { retries: 2 } });
      try {
        await broker.command('topic rotated 1');
        await client.produce('rotated', [{ value: 'a' }]);
        // The token refresher rotates the file; the broker stops accepting the old token.
        fs.writeFileSync(tokenFile, 'second\n');
        proxy.acceptTokens(['second']);
        await new Promise((r) => setTimeout(r, 2500));
        await client.produce('rotated', [{ value: 'b' }]);
        const read = await client.fetchRange('rotated', 0, 0, 2);
        expect(read.map((m) => m.value?.toString())).to.deep.equal(['a', 'b']);
        const reauth = proxy.authentications.filter((a) => a.reauthentication);
        expect(reauth.length).to.be.greaterThan(0);
        expect(reauth.every((a) => a.principal === 'second')).to.equal(true);

        // Without a rotation the re-authentication fails, with the token named as the problem.
        proxy.acceptTokens(['third']);
        await new Promise((r) => setTimeout(r, 2500));
        let failure: Error | null = null;
        await client.produce('rotated', [{ value: 'c' }]).catch((e: Error) => {
          failure = e;
        });
        expect(String(failure)).to.match(/Kafka authentication failed with SASL OAUTHBEARER .*invalid_token/);
      } finally {
        await client.close();
        await proxy.close();
      }
    });
  });
});
