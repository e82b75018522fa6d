/**
 * Test support: TLS in front of the test broker, terminated by stunnel (Debian package stunnel4) with
 * certificates made by openssl.
 *
 * The mock broker advertises its own plaintext address in Metadata, and a client goes wherever Metadata
 * says after bootstrapping: stunnel alone in front of it would see the client leave the TLS port for the
 * plaintext one after the first request. A real broker has a TLS listener whose advertised address is the
 * TLS port, so the chain here is client -TLS-> stunnel -> Kafka proxy (kafka-proxy.ts, which advertises
 * stunnel's port for each broker) -> mock broker: one stunnel service per broker, the client untouched.
 * (Rewriting addresses in the client instead would test something no production cluster needs.)
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { type KafkaProxy, startKafkaProxy } from './kafka-proxy.js';
import { type SaslProxy, type SaslProxyOptions, startSaslProxy } from './sasl-proxy.js';

/** Certificates and keys for TLS tests, all PEM files in `dir`. */
export interface TestPki {
  dir: string;
  /** The CA that signed the server and client certificates. */
  caFile: string;
  /** The broker's certificate: subjectAltName DNS:localhost only (not 127.0.0.1). */
  serverCert: string;
  serverKey: string;
  clientCert: string;
  clientKey: string;
  /** The client key, encrypted with {@link keyPassword}. */
  clientKeyEncrypted: string;
  keyPassword: string;
  /** The client's key and certificate in one file (a PEM keystore). */
  clientKeystore: string;
  /** A CA that signed nothing the server uses. */
  otherCaFile: string;
  /** A client certificate and key signed by the other CA. */
  otherClientCert: string;
  otherClientKey: string;
}

function openssl(dir: string, args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
}

/** `openssl req` arguments for a new unencrypted P-256 key, written to the file that follows. */
const NEW_KEY = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout'];

/** A self-signed CA `name` in dir (name.pem, name.key). */
function makeCa(dir: string, name: string): void {
  openssl(dir, [
    'req',
    '-x509',
    ...NEW_KEY,
    `${name}.key`,
    '-out',
    `${name}.pem`,
    '-days',
    '2',
    '-subj',
    `/CN=sluice test ${name}`,
  ]);
}

/** A certificate `name` signed by CA `ca`, with the given extensions. */
function makeCert(dir: string, name: string, ca: string, subject: string, extensions: string): void {
  openssl(dir, ['req', ...NEW_KEY, `${name}.key`, '-out', `${name}.csr`, '-subj', subject]);
  fs.writeFileSync(path.join(dir, `${name}.ext`), extensions);
  openssl(dir, [
    'x509',
    '-req',
    '-in',
    `${name}.csr`,
    '-CA',
    `${ca}.pem`,
    '-CAkey',
    `${ca}.key`,
    '-CAcreateserial',
    '-out',
    `${name}.pem`,
    '-days',
    '2',
    '-extfile',
    `${name}.ext`,
  ]);
}

/** Makes a CA, a server certificate for localhost, client certificates and a second CA in `dir`. */
export function createTestPki(dir: string): TestPki {
  fs.mkdirSync(dir, { recursive: true });
  makeCa(dir, 'ca');
  makeCa(dir, 'other-ca');
  makeCert(dir, 'server', 'ca', '/CN=localhost', 'subjectAltName=DNS:localhost\nextendedKeyUsage=serverAuth\n');
  makeCert(dir, 'client', 'ca', '/CN=sluice-client', 'extendedKeyUsage=clientAuth\n');
  makeCert(dir, 'other-client', 'other-ca', '/CN=stranger', 'extendedKeyUsage=clientAuth\n');
  const keyPassword = 'k3y pass';
  openssl(dir, [
    'pkey',
    '-in',
    'client.key',
    '-aes256',
    '-passout',
    `pass:${keyPassword}`,
    '-out',
    'client-encrypted.key',
  ]);
  const at = (f: string) => path.join(dir, f);
  fs.writeFileSync(
    at('client-keystore.pem'),
    fs.readFileSync(at('client.key')) + fs.readFileSync(at('client.pem'), 'utf8'),
  );
  return {
    dir,
    caFile: at('ca.pem'),
    serverCert: at('server.pem'),
    serverKey: at('server.key'),
    clientCert: at('client.pem'),
    clientKey: at('client.key'),
    clientKeyEncrypted: at('client-encrypted.key'),
    keyPassword,
    clientKeystore: at('client-keystore.pem'),
    otherCaFile: at('other-ca.pem'),
    otherClientCert: at('other-client.pem'),
    otherClientKey: at('other-client.key'),
  };
}

/** A free TCP port on 127.0.0.1 (free when asked: stunnel's start is retried if another process takes it). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const c = net.connect({ host: '127.0.0.1', port });
    c.once('connect', () => {
      c.destroy();
      resolve(true);
    });
    c.once('error', () => resolve(false));
  });
}

/** A running stunnel. */
export interface TlsTerminator {
  /** TLS ports on 127.0.0.1, one per target, in order. */
  ports: number[];
  stop(): Promise<void>;
}

export interface TlsTerminatorOptions {
  pki: TestPki;
  /** `host:port` each TLS port forwards to. */
  targets: string[];
  /** Refuse clients without a certificate signed by the PKI's CA (mutual TLS). */
  requireClientCert?: boolean;
}

/** Starts stunnel with one TLS service per target; resolves once every port accepts connections. */
export async function startStunnel(opts: TlsTerminatorOptions): Promise<TlsTerminator> {
  for (let attempt = 1; ; attempt++) {
    const ports = await Promise.all(opts.targets.map(() => freePort()));
    const config = [
      'foreground = yes',
      'pid =',
      'debug = 4',
      ...opts.targets.flatMap((target, i) => [
        `[broker${i}]`,
        `accept = 127.0.0.1:${ports[i]}`,
        `connect = ${target}`,
        `cert = ${opts.pki.serverCert}`,
        `key = ${opts.pki.serverKey}`,
        ...(opts.requireClientCert ? [`CAfile = ${opts.pki.caFile}`, 'requireCert = yes', 'verifyChain = yes'] : []),
      ]),
    ].join('\n');
    const configFile = path.join(opts.pki.dir, `stunnel-${process.pid}-${ports[0]}.conf`);
    fs.writeFileSync(configFile, `${config}\n`);
    const child: ChildProcess = spawn('stunnel', [configFile], { stdio: ['ignore', 'ignore', 'pipe'] });
    let log = '';
    child.stderr!.on('data', (d: Buffer) => {
      log += d.toString();
    });
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    let running = true;
    void exited.then(() => {
      running = false;
    });
    const stop = async () => {
      if (running) child.kill('SIGTERM');
      await exited;
    };
    const deadline = Date.now() + 10_000;
    while (running && Date.now() < deadline) {
      if ((await Promise.all(ports.map(accepts))).every(Boolean)) return { ports, stop };
      await new Promise((r) => setTimeout(r, 50));
    }
    await stop();
    if (attempt >= 3) throw new Error(`stunnel did not start: ${log.trim()}`);
  }
}

/** A TLS listener (optionally SASL_SSL) in front of the test broker. */
export interface TlsBroker {
  /** `localhost:port` of each TLS port: the host name the server certificate names. */
  bootstrap: string;
  /** The same ports, as `127.0.0.1:port` (a name the certificate does not hold). */
  bootstrapByIp: string;
  /** The proxy between stunnel and the broker (a {@link SaslProxy} when `sasl` was given). */
  proxy: KafkaProxy | SaslProxy;
  stop(): Promise<void>;
}

/**
 * Puts TLS (stunnel) and a Kafka proxy that advertises the TLS ports in front of `brokers`; with `sasl`
 * the proxy authenticates too (SASL_SSL).
 */
export async function startTlsBroker(opts: {
  brokers: string[];
  pki: TestPki;
  requireClientCert?: boolean;
  sasl?: Omit<SaslProxyOptions, 'upstream'>;
}): Promise<TlsBroker> {
  const proxy = opts.sasl
    ? await startSaslProxy({ ...opts.sasl, upstream: opts.brokers })
    : await startKafkaProxy({ upstream: opts.brokers });
  const tls = await startStunnel({ pki: opts.pki, targets: proxy.brokers, requireClientCert: opts.requireClientCert });
  for (const [i, port] of tls.ports.entries()) proxy.advertise(i, 'localhost', port);
  return {
    bootstrap: tls.ports.map((p) => `localhost:${p}`).join(','),
    bootstrapByIp: tls.ports.map((p) => `127.0.0.1:${p}`).join(','),
    proxy,
    async stop() {
      await tls.stop();
      await proxy.close();
    },
  };
}
