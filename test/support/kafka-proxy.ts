/**
 * Test support: a Kafka-protocol proxy in front of the test broker. It plays the part of a broker's
 * listener configuration: each broker gets a listener of its own, and the addresses brokers advertise
 * (Metadata, FindCoordinator) are rewritten to the addresses the clients are to use, so a client that
 * bootstraps through the proxy (or through a TLS terminator in front of it) stays there. With a
 * {@link SaslServer} it also authenticates each connection before forwarding anything, as a SASL listener
 * does (see sasl-proxy.ts).
 *
 * The librdkafka mocks that the proxy fronts speak ApiVersions v0-2, Metadata v0-2 (v0-12 for the recent
 * one) and FindCoordinator v0-2 (v0-3); the proxy caps the versions it lets through at the last ones it can
 * rewrite (Metadata v12, FindCoordinator v2) by editing the ApiVersions answer, which is where it also
 * announces the SASL APIs.
 */
import * as net from 'node:net';

export const API_METADATA = 3;
export const API_FIND_COORDINATOR = 10;
export const API_SASL_HANDSHAKE = 17;
export const API_API_VERSIONS = 18;
export const API_SASL_AUTHENTICATE = 36;
const API_PRODUCE = 0;

/** Highest versions whose responses the proxy can rewrite. */
const MAX_REWRITTEN: Record<number, number> = { [API_METADATA]: 12, [API_FIND_COORDINATOR]: 2 };

/** The outcome of one SASL request. */
export interface SaslStep {
  /** The response body (after the response header). */
  body: Buffer;
  /** `authenticated` ends the exchange successfully; `failed` closes the connection once the response is sent. */
  state: 'continue' | 'authenticated' | 'failed';
  /** When an authenticated session ends (epoch ms); requests after it close the connection. */
  expiresAt?: number;
}

/** One connection's SASL exchange, server side. */
export interface SaslSession {
  /** Answers a SaslHandshake or SaslAuthenticate request (its body, after the request header). */
  handle(apiKey: number, apiVersion: number, body: Buffer): Promise<SaslStep>;
}

/** What the proxy needs of a SASL server. */
export interface SaslServer {
  /** The versions of SaslHandshake and SaslAuthenticate it speaks, announced in ApiVersions. */
  versions: Record<number, { min: number; max: number }>;
  /** A new exchange for a new connection. */
  session(): SaslSession;
}

export interface KafkaProxyOptions {
  /** The brokers' `host:port` addresses, as the broker prints them; one listener each. */
  upstream: string[];
  /** Require SASL authentication before forwarding (a SASL_PLAINTEXT listener). */
  sasl?: SaslServer;
  /**
   * Per listener (in the order of `upstream`), the highest versions it announces per API key, as an older
   * broker would (e.g. `{ 1: 4 }` for Fetch v4).
   */
  maxVersions?: Array<Record<number, number> | undefined>;
}

/** A running proxy. */
export interface KafkaProxy {
  /** The proxy's own listeners, `127.0.0.1:port`, in the order of `upstream`. */
  brokers: string[];
  /** The same, comma-separated. */
  bootstrap: string;
  /** Every request forwarded so far: the listener (index of `upstream`) it came in on, its API key and version. */
  requests: Array<{ broker: number; apiKey: number; apiVersion: number }>;
  /** Makes clients reach broker `index` at `host:port` (e.g. a TLS terminator in front of the listener). */
  advertise(index: number, host: string, port: number): void;
  /** Closes the listeners and every connection. */
  close(): Promise<void>;
}

/** Reads Kafka's big-endian primitives from a buffer, front to back. */
class Reader {
  constructor(
    readonly buf: Buffer,
    public pos = 0,
  ) {}
  int16(): number {
    const v = this.buf.readInt16BE(this.pos);
    this.pos += 2;
    return v;
  }
  int32(): number {
    const v = this.buf.readInt32BE(this.pos);
    this.pos += 4;
    return v;
  }
  /** An unsigned varint (flexible versions' lengths). */
  uvarint(): number {
    let v = 0;
    let mul = 1;
    let b: number;
    do {
      b = this.buf[this.pos++];
      v += (b & 0x7f) * mul;
      mul *= 128;
    } while (b & 0x80);
    return v;
  }
  /** A compact string (unsigned-varint length + 1; 0 for null). */
  compactString(): string | null {
    const n = this.uvarint() - 1;
    if (n < 0) return null;
    const s = this.buf.toString('utf8', this.pos, this.pos + n);
    this.pos += n;
    return s;
  }
  /** A string with an int16 length; null for length -1. */
  string(): string | null {
    const n = this.int16();
    if (n < 0) return null;
    const s = this.buf.toString('utf8', this.pos, this.pos + n);
    this.pos += n;
    return s;
  }
  /** Bytes with an int32 length. */
  bytes(): Buffer {
    const n = this.int32();
    const b = this.buf.subarray(this.pos, this.pos + Math.max(n, 0));
    this.pos += Math.max(n, 0);
    return b;
  }
  rest(): Buffer {
    return this.buf.subarray(this.pos);
  }
}

/** Kafka primitives, encoded. */
export const encode = {
  int16(v: number): Buffer {
    const b = Buffer.alloc(2);
    b.writeInt16BE(v);
    return b;
  },
  int32(v: number): Buffer {
    const b = Buffer.alloc(4);
    b.writeInt32BE(v);
    return b;
  },
  int64(v: number): Buffer {
    const b = Buffer.alloc(8);
    b.writeBigInt64BE(BigInt(v));
    return b;
  },
  string(s: string | null): Buffer {
    if (s === null) return encode.int16(-1);
    const body = Buffer.from(s, 'utf8');
    return Buffer.concat([encode.int16(body.length), body]);
  },
  bytes(b: Buffer): Buffer {
    return Buffer.concat([encode.int32(b.length), b]);
  },
  uvarint(v: number): Buffer {
    const out: number[] = [];
    while (v >= 128) {
      out.push((v % 128) | 128);
      v = Math.floor(v / 128);
    }
    out.push(v);
    return Buffer.from(out);
  },
  compactString(s: string | null): Buffer {
    if (s === null) return encode.uvarint(0);
    const body = Buffer.from(s, 'utf8');
    return Buffer.concat([encode.uvarint(body.length + 1), body]);
  },
};

/** Reads a request's header fields (v1/v2 headers start the same way). */
export function requestHeader(frame: Buffer): { apiKey: number; apiVersion: number; correlationId: number } {
  return { apiKey: frame.readInt16BE(0), apiVersion: frame.readInt16BE(2), correlationId: frame.readInt32BE(4) };
}

/** The body of a non-flexible request (after api key, version, correlation id and client id). */
export function requestBody(frame: Buffer): Buffer {
  const r = new Reader(frame, 8);
  r.string();
  return r.rest();
}

/** Splits a byte stream into Kafka frames (int32 size, then the payload). */
function frames(onFrame: (frame: Buffer) => void): (chunk: Buffer) => void {
  let pending: Buffer = Buffer.alloc(0);
  return (chunk) => {
    pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
    while (pending.length >= 4) {
      const size = pending.readInt32BE(0);
      if (pending.length < 4 + size) break;
      onFrame(pending.subarray(4, 4 + size));
      pending = pending.subarray(4 + size);
    }
  };
}

/** `host:port`, split. */
function hostPort(address: string): { host: string; port: number } {
  const i = address.lastIndexOf(':');
  return { host: address.slice(0, i), port: Number(address.slice(i + 1)) };
}

/** An ApiVersions response body with the SASL APIs announced and the rewritten APIs capped. */
function patchApiVersions(
  version: number,
  body: Buffer,
  sasl: SaslServer | undefined,
  maxVersions: Record<number, number> | undefined,
): Buffer {
  const r = new Reader(body);
  const errorCode = r.int16();
  // An error answer (an unsupported version) carries the broker's own ApiVersions range only: left as is.
  if (errorCode !== 0 || version > 2) return body;
  const n = r.int32();
  const entries = new Map<number, { min: number; max: number }>();
  for (let i = 0; i < n; i++) {
    const key = r.int16();
    entries.set(key, { min: r.int16(), max: r.int16() });
  }
  const tail = r.rest();
  for (const [key, max] of [...Object.entries(MAX_REWRITTEN), ...Object.entries(maxVersions ?? {})]) {
    const e = entries.get(Number(key));
    if (e) e.max = Math.min(e.max, max);
  }
  entries.delete(API_SASL_HANDSHAKE);
  entries.delete(API_SASL_AUTHENTICATE);
  for (const [key, range] of Object.entries(sasl?.versions ?? {})) entries.set(Number(key), range);
  const parts = [encode.int16(0), encode.int32(entries.size)];
  for (const [key, { min, max }] of entries) parts.push(encode.int16(key), encode.int16(min), encode.int16(max));
  parts.push(tail);
  return Buffer.concat(parts);
}

type Advertised = (host: string, port: number) => { host: string; port: number };

/**
 * A Metadata response body (v0-12) with every broker's address replaced by its advertised one. From v9 the
 * answer is flexible: its header ends with tagged fields, strings and arrays are compact, brokers carry tags.
 */
function rewriteMetadata(version: number, body: Buffer, advertised: Advertised): Buffer {
  const flexible = version >= 9;
  const r = new Reader(body);
  const parts: Buffer[] = [];
  const tags = () => {
    const start = r.pos;
    for (let n = r.uvarint(), i = 0; i < n; i++) {
      r.uvarint();
      r.pos += r.uvarint();
    }
    parts.push(body.subarray(start, r.pos));
  };
  if (flexible) tags();
  if (version >= 3) parts.push(encode.int32(r.int32()));
  const n = flexible ? r.uvarint() - 1 : r.int32();
  parts.push(flexible ? encode.uvarint(n + 1) : encode.int32(n));
  const string = flexible ? () => r.compactString() : () => r.string();
  const encodeString = flexible ? encode.compactString : encode.string;
  for (let i = 0; i < n; i++) {
    const nodeId = r.int32();
    const at = advertised(string()!, r.int32());
    parts.push(encode.int32(nodeId), encodeString(at.host), encode.int32(at.port));
    if (version >= 1) parts.push(encodeString(string()));
    if (flexible) tags();
  }
  parts.push(r.rest());
  return Buffer.concat(parts);
}

/** A FindCoordinator response body (v0-2) with the coordinator's address replaced by its advertised one. */
function rewriteFindCoordinator(version: number, body: Buffer, advertised: Advertised): Buffer {
  const r = new Reader(body);
  const parts: Buffer[] = [];
  if (version >= 1) parts.push(encode.int32(r.int32()));
  parts.push(encode.int16(r.int16()));
  if (version >= 1) parts.push(encode.string(r.string()));
  parts.push(encode.int32(r.int32()));
  const at = advertised(r.string()!, r.int32());
  parts.push(encode.string(at.host), encode.int32(at.port), r.rest());
  return Buffer.concat(parts);
}

/** Whether a request gets a response: all do except Produce with acks=0. */
function expectsResponse(apiKey: number, apiVersion: number, frame: Buffer): boolean {
  if (apiKey !== API_PRODUCE) return true;
  const r = new Reader(requestBody(frame));
  if (apiVersion >= 9) {
    // Flexible (header v2): the header's tagged fields, then a compact transactional id.
    for (let n = r.uvarint(), i = 0; i < n; i++) {
      r.uvarint();
      r.pos += r.uvarint();
    }
    r.compactString();
  } else if (apiVersion >= 3) {
    r.string();
  }
  return r.int16() !== 0;
}

/** Starts one listener per upstream broker. */
export async function startKafkaProxy(opts: KafkaProxyOptions): Promise<KafkaProxy> {
  const sockets = new Set<net.Socket>();
  const upstream = opts.upstream.map(hostPort);
  const advertisedAt: Array<{ host: string; port: number }> = [];
  const advertised: Advertised = (host, port) => {
    const i = upstream.findIndex((u) => u.port === port && u.host === host);
    return i < 0 ? { host, port } : advertisedAt[i];
  };

  const requests: KafkaProxy['requests'] = [];
  const serve = (target: { host: string; port: number }, index: number) => (client: net.Socket) => {
    const server = net.connect(target);
    sockets.add(client);
    sockets.add(server);
    const closeBoth = () => {
      client.destroy();
      server.destroy();
    };
    for (const s of [client, server]) {
      s.on('error', closeBoth);
      s.on('close', () => {
        sockets.delete(s);
        closeBoth();
      });
    }
    const session = opts.sasl?.session();
    let authenticated = !opts.sasl;
    let expiresAt = Number.POSITIVE_INFINITY;
    // Responses go back in request order, whether answered here or by the broker (Kafka's guarantee).
    const slots: Array<{ correlationId: number; apiKey: number; apiVersion: number; data?: Buffer; last?: boolean }> =
      [];
    const flush = () => {
      while (slots.length > 0 && slots[0].data) {
        const slot = slots.shift()!;
        client.write(Buffer.concat([encode.int32(slot.data!.length), slot.data!]));
        if (slot.last) client.end();
      }
    };
    let chain = Promise.resolve();
    client.on(
      'data',
      frames((frame) => {
        chain = chain
          .then(async () => {
            const { apiKey, apiVersion, correlationId } = requestHeader(frame);
            if (session && (apiKey === API_SASL_HANDSHAKE || apiKey === API_SASL_AUTHENTICATE)) {
              const slot = { correlationId, apiKey, apiVersion } as (typeof slots)[number];
              slots.push(slot);
              const step = await session.handle(apiKey, apiVersion, requestBody(frame));
              if (step.state === 'authenticated') {
                authenticated = true;
                expiresAt = step.expiresAt ?? Number.POSITIVE_INFINITY;
              }
              slot.data = Buffer.concat([encode.int32(correlationId), step.body]);
              slot.last = step.state === 'failed';
              flush();
              return;
            }
            // A SASL listener closes connections that send other requests before authenticating, or after
            // their session expired without re-authentication (KIP-368).
            if ((!authenticated && apiKey !== API_API_VERSIONS) || Date.now() > expiresAt) {
              closeBoth();
              return;
            }
            requests.push({ broker: index, apiKey, apiVersion });
            if (expectsResponse(apiKey, apiVersion, frame)) slots.push({ correlationId, apiKey, apiVersion });
            server.write(Buffer.concat([encode.int32(frame.length), frame]));
          })
          .catch(closeBoth);
      }),
    );
    server.on(
      'data',
      frames((frame) => {
        const correlationId = frame.readInt32BE(0);
        const slot = slots.find((s) => s.correlationId === correlationId && !s.data);
        if (!slot) {
          closeBoth();
          return;
        }
        const header = frame.subarray(0, 4);
        const body = frame.subarray(4);
        const rewritten =
          slot.apiKey === API_API_VERSIONS
            ? patchApiVersions(slot.apiVersion, body, opts.sasl, opts.maxVersions?.[index])
            : slot.apiKey === API_METADATA
              ? rewriteMetadata(slot.apiVersion, body, advertised)
              : slot.apiKey === API_FIND_COORDINATOR
                ? rewriteFindCoordinator(slot.apiVersion, body, advertised)
                : body;
        slot.data = Buffer.concat([header, rewritten]);
        flush();
      }),
    );
  };

  const servers = await Promise.all(
    upstream.map(
      (target, index) =>
        new Promise<net.Server>((resolve, reject) => {
          const server = net.createServer(serve(target, index));
          server.once('error', reject);
          server.listen(0, '127.0.0.1', () => resolve(server));
        }),
    ),
  );
  const brokers = servers.map((s) => `127.0.0.1:${(s.address() as net.AddressInfo).port}`);
  for (const b of brokers) advertisedAt.push(hostPort(b));
  return {
    brokers,
    bootstrap: brokers.join(','),
    requests,
    advertise(index, host, port) {
      advertisedAt[index] = { host, port };
    },
    async close() {
      for (const s of sockets) s.destroy();
      await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
    },
  };
}
