/**
 * The streaming UI (`sluice run … --ui PORT`): a small web page with live charts per query, as Spark's
 * Structured Streaming tab. Everything is served from this process (no external assets): the page and
 * its script from lib/ui/assets.ts, a JSON snapshot at `/api/queries`, and server-sent events at
 * `/api/events` that push each batch's progress as it completes. A group member's queries come and go
 * with its tasks: the UI asks for the queries anew each time, and tells the page when the set changed.
 *
 * It binds to 127.0.0.1 by default and has no authentication: progress reports name sources, sinks
 * and operators, so a non-loopback host is the user's explicit choice. On loopback, requests whose
 * Host header names another host are refused, so a web page elsewhere cannot read it by DNS rebinding.
 */
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { StreamingQuery } from '../api/streaming-query.js';
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

/** A query the UI shows, and the task it runs for when this process is a group member. */
export interface ShownQuery {
  query: StreamingQuery;
  /** The group task (input partition) the query belongs to; absent outside a group. */
  task?: number;
}

/** What `/api/queries` returns for one query. */
export interface UiQuery {
  /** The name the UI shows (the app output's name, and its task in a group). */
  output: string;
  /** The group task the query runs for, or null outside a group. */
  task: number | null;
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
  private readonly lastStatus = new Map<string, string>();
  private readonly timers: NodeJS.Timeout[] = [];
  private readonly startedAt = new Date().toISOString();
  /** The names shown at the last look, to tell the page when queries came or went. */
  private shownNames = '';
  private closed = false;

  private constructor(
    private readonly queries: () => ReadonlyMap<string, ShownQuery>,
    private readonly server: http.Server,
    private readonly options: StreamingUiOptions,
  ) {
    this.current();
    const statusTimer = setInterval(() => {
      const before = this.shownNames;
      const shown = this.current();
      if (this.shownNames !== before) this.broadcast('queries', { outputs: [...shown.keys()] });
      for (const [o, s] of shown) this.pushStatus(o, s);
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
   * Starts serving the UI for the queries `queries()` gives at each look (keyed by the name to show); the run
   * hands it each batch's progress with {@link progress}. Throws SluiceError UI_PORT_IN_USE or UI_LISTEN when
   * the port cannot be bound.
   */
  static async start(
    queries: () => ReadonlyMap<string, ShownQuery>,
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
    ui = new StreamingUi(queries, server, { ...options, host });
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
      queries: [...this.current()].map(([output, s]) => this.describe(output, s)),
    };
  }

  /**
   * The queries shown now. A query seen for the first time starts its history with the batches it ran before
   * (a task's query may have started before the UI did); the history of a query no longer shown is dropped.
   */
  private current(): ReadonlyMap<string, ShownQuery> {
    const shown = this.queries();
    for (const [output, { query }] of shown) {
      if (this.history.has(output)) continue;
      this.history.set(output, query.recentProgress.slice(-this.historySize));
      this.started.set(output, new Date().toISOString());
    }
    for (const output of [...this.history.keys()]) {
      if (shown.has(output)) continue;
      this.history.delete(output);
      this.started.delete(output);
      this.lastStatus.delete(output);
    }
    this.shownNames = [...shown.keys()].join('\n');
    return shown;
  }

  private describe(output: string, { query: q, task }: ShownQuery): UiQuery {
    return {
      output,
      task: task ?? null,
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

  /** Records a batch of the query shown as `output` and pushes it to the pages. */
  progress(output: string, p: QueryProgress): void {
    if (this.closed) return;
    const h = this.history.get(output);
    if (h === undefined) {
      // A query the UI has not looked at yet: its history starts from its recentProgress, which holds this batch.
      this.current();
    } else if (h.at(-1)?.runId !== p.runId || h.at(-1)!.batchId < p.batchId) {
      h.push(p);
      if (h.length > this.historySize) h.splice(0, h.length - this.historySize);
    }
    this.broadcast('progress', { output, progress: p });
  }

  private pushStatus(output: string, shown: ShownQuery): void {
    const d = this.describe(output, shown);
    const status = JSON.stringify({ output, isActive: d.isActive, status: d.status, exception: d.exception });
    if (this.lastStatus.get(output) === status) return;
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
    for (const t of this.timers) clearInterval(t);
    for (const c of this.clients) c.end();
    this.clients.clear();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
