/**
 * The streaming UI (`sluice run … --ui PORT`): a small web page with live charts per query, as Spark's
 * Structured Streaming tab. Everything is served from this process (no external assets): the page and
 * its script from lib/ui/assets.ts, a JSON snapshot at `/api/queries`, and server-sent events at
 * `/api/events` that push each batch's progress as it completes.
 *
 * It binds to 127.0.0.1 by default and has no authentication: progress reports name sources, sinks
 * and operators, so a non-loopback host is the user's explicit choice. On loopback, requests whose
 * Host header names another host are refused, so a web page elsewhere cannot read it by DNS rebinding.
 */
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { StreamingQuery, StreamingQueryListener, StreamingQueryManager } from '../api/streaming-query.js';
import { SluiceError } from '../errors.js';
import type { QueryProgress } from '../exec/progress.js';
import { UI_CSS, UI_HTML, UI_JS } from './assets.js';

/** Options of {@link StreamingUi.start}. */
export interface StreamingUiOptions {
  /** TCP port; 0 picks a free one. */
  port: number;
  /** Interface to bind; default 127.0.0.1. */
  host?: string;
  /** Shown in the page title, e.g. the app name. */
  title?: string;
  /** Batches kept per query for the charts. Default 300. */
  historySize?: number;
  /** How often query status changes are pushed (ms). Default 1000. */
  statusIntervalMs?: number;
}

/** What `/api/queries` returns for one query. */
export interface UiQuery {
  /** The name the UI shows (the app output's name). */
  output: string;
  id: string;
  runId: string;
  name: string | null;
  isActive: boolean;
  status: { message: string; isDataAvailable: boolean; isTriggerActive: boolean };
  exception: string | null;
  startedAt: string;
  /** The last batches' progress, oldest first. */
  progress: QueryProgress[];
}

/** What `/api/queries` returns. */
export interface UiSnapshot {
  title: string;
  startedAt: string;
  queries: UiQuery[];
}

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '::1', '[::1]']);
const HEARTBEAT_MS = 15_000;

const SECURITY_HEADERS = {
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
};

function hostnameOf(hostHeader: string | undefined): string {
  if (!hostHeader) return '';
  if (hostHeader.startsWith('[')) return hostHeader.slice(0, hostHeader.indexOf(']') + 1);
  const colon = hostHeader.lastIndexOf(':');
  return colon < 0 ? hostHeader : hostHeader.slice(0, colon);
}

/** A running UI server over a set of queries. */
export class StreamingUi {
  private readonly history = new Map<string, QueryProgress[]>();
  private readonly started = new Map<string, string>();
  private readonly clients = new Set<http.ServerResponse>();
  private readonly listener: StreamingQueryListener;
  private readonly lastStatus = new Map<string, string>();
  private readonly timers: NodeJS.Timeout[] = [];
  private readonly startedAt = new Date().toISOString();
  private closed = false;

  private constructor(
    private readonly queries: ReadonlyMap<string, StreamingQuery>,
    private readonly streams: StreamingQueryManager,
    private readonly server: http.Server,
    private readonly options: StreamingUiOptions,
  ) {
    for (const [output, q] of queries) {
      this.history.set(output, q.recentProgress.slice(-this.historySize));
      this.started.set(output, this.startedAt);
    }
    this.listener = {
      onQueryProgress: ({ progress }) => this.onProgress(progress),
      onQueryTerminated: ({ runId }) => {
        for (const [o, q] of this.queries) if (q.runId === runId) this.pushStatus(o, q, true);
      },
    };
    streams.addListener(this.listener);
    const statusTimer = setInterval(() => {
      for (const [o, q] of this.queries) this.pushStatus(o, q, false);
    }, options.statusIntervalMs ?? 1000);
    const heartbeat = setInterval(() => {
      for (const c of this.clients) c.write(': keep-alive\n\n');
    }, HEARTBEAT_MS);
    for (const t of [statusTimer, heartbeat]) {
      t.unref();
      this.timers.push(t);
    }
  }

  /**
   * Starts serving the UI for `queries` (keyed by the name to show), listening for their progress on
   * `streams`. Throws SluiceError UI_PORT_IN_USE or UI_LISTEN when the port cannot be bound.
   */
  static async start(
    queries: ReadonlyMap<string, StreamingQuery>,
    streams: StreamingQueryManager,
    options: StreamingUiOptions,
  ): Promise<StreamingUi> {
    if (!Number.isInteger(options.port) || options.port < 0 || options.port > 65535) {
      throw new SluiceError(
        'BAD_OPTION',
        `--ui must be a port number from 0 to 65535, got ${options.port}`,
        'e.g. --ui 4040 (or --ui 0 for any free port)',
      );
    }
    const host = options.host ?? '127.0.0.1';
    let ui: StreamingUi | null = null;
    const server = http.createServer((req, res) => ui!.handle(req, res));
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err: NodeJS.ErrnoException) => {
        if (err.code === 'EADDRINUSE') {
          reject(
            new SluiceError(
              'UI_PORT_IN_USE',
              `cannot serve the UI on ${host}:${options.port}: the port is in use`,
              'choose another with --ui PORT, or --ui 0 for any free port',
            ),
          );
        } else {
          reject(
            new SluiceError(
              'UI_LISTEN',
              `cannot serve the UI on ${host}:${options.port}: ${err.message}`,
              'check --ui-host (an address of this machine, e.g. 127.0.0.1)',
            ),
          );
        }
      });
      server.listen(options.port, host, () => resolve());
    });
    ui = new StreamingUi(queries, streams, server, { ...options, host });
    return ui;
  }

  private get historySize(): number {
    return this.options.historySize ?? 300;
  }

  /** The URL the page is served at. */
  get url(): string {
    const a = this.server.address() as AddressInfo;
    const host = a.family === 'IPv6' ? `[${a.address}]` : a.address;
    return `http://${host}:${a.port}/`;
  }

  /** The data `/api/queries` serves. */
  snapshot(): UiSnapshot {
    return {
      title: this.options.title ?? 'sluice',
      startedAt: this.startedAt,
      queries: [...this.queries].map(([output, q]) => this.describe(output, q)),
    };
  }

  private describe(output: string, q: StreamingQuery): UiQuery {
    return {
      output,
      id: q.id,
      runId: q.runId,
      name: q.name,
      isActive: q.isActive,
      status: { ...q.status },
      exception: q.exception?.message ?? null,
      startedAt: this.started.get(output)!,
      progress: this.history.get(output) ?? [],
    };
  }

  private onProgress(p: QueryProgress): void {
    for (const [output, q] of this.queries) {
      if (q.runId !== p.runId) continue;
      const h = this.history.get(output)!;
      h.push(p);
      if (h.length > this.historySize) h.splice(0, h.length - this.historySize);
      this.broadcast('progress', { output, progress: p });
    }
  }

  private pushStatus(output: string, q: StreamingQuery, force: boolean): void {
    const d = this.describe(output, q);
    const status = JSON.stringify({ output, isActive: d.isActive, status: d.status, exception: d.exception });
    if (!force && this.lastStatus.get(output) === status) return;
    this.lastStatus.set(output, status);
    this.broadcast('status', JSON.parse(status));
  }

  private broadcast(event: string, data: unknown): void {
    const msg = `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
    for (const c of this.clients) c.write(msg);
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const host = this.options.host ?? '127.0.0.1';
    if (LOOPBACK.has(host) && !LOOPBACK.has(hostnameOf(req.headers.host))) {
      res
        .writeHead(421, { 'content-type': 'text/plain' })
        .end('misdirected request: this UI answers only to localhost\n');
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain' }).end('method not allowed\n');
      return;
    }
    const url = new URL(req.url ?? '/', 'http://localhost');
    switch (url.pathname) {
      case '/':
        this.send(res, 'text/html; charset=utf-8', UI_HTML);
        break;
      case '/ui.js':
        this.send(res, 'text/javascript; charset=utf-8', UI_JS);
        break;
      case '/ui.css':
        this.send(res, 'text/css; charset=utf-8', UI_CSS);
        break;
      case '/api/queries':
        this.send(res, 'application/json', JSON.stringify(this.snapshot()));
        break;
      case '/api/events':
        this.subscribe(req, res);
        break;
      default:
        res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
    }
  }

  private send(res: http.ServerResponse, type: string, body: string): void {
    res.writeHead(200, { 'content-type': type, 'cache-control': 'no-store', ...SECURITY_HEADERS }).end(body);
  }

  private subscribe(req: http.IncomingMessage, res: http.ServerResponse): void {
    res.writeHead(200, {
      'content-type': 'text/event-stream',
      'cache-control': 'no-store',
      connection: 'keep-alive',
      ...SECURITY_HEADERS,
    });
    res.write('retry: 2000\n\n');
    this.clients.add(res);
    req.on('close', () => this.clients.delete(res));
  }

  /** Stops serving: ends the event streams and closes the server. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.streams.removeListener(this.listener);
    for (const t of this.timers) clearInterval(t);
    for (const c of this.clients) c.end();
    this.clients.clear();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
