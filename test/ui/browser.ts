/**
 * A real headless browser for the UI tests: Debian's chromium driven over the DevTools protocol on a
 * pipe (--remote-debugging-pipe: NUL-separated JSON on file descriptors 3 and 4), so it needs no
 * WebSocket client and no download. The API is the subset of playwright-core's that the tests use
 * (launch, newPage, goto, evaluate, waitForFunction, screenshot, close), so moving to playwright-core is
 * a change of this file only:
 * `chromium.launch({ executablePath: CHROMIUM, args: LAUNCH_ARGS })` and `browser.newPage({ viewport })`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Readable, Writable } from 'node:stream';

/** The page's global, inside functions passed to evaluate (the tests compile without the DOM library). */
declare const document: { readyState: string };

/** The browser binary: $SLUICE_CHROMIUM, else Debian's chromium. */
export const CHROMIUM = process.env.SLUICE_CHROMIUM ?? '/usr/bin/chromium';

/** Flags for a quiet, sandbox-free headless run on a CI machine (no GPU, no network of its own). */
export const LAUNCH_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
  '--no-first-run', '--no-default-browser-check', '--disable-dev-shm-usage', '--hide-scrollbars', '--mute-audio',
];

interface Pending { resolve: (v: any) => void; reject: (e: Error) => void; method: string }

/** One DevTools protocol connection over the browser's pipe. */
class Connection {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private buffer = '';
  private closedError: Error | null = null;

  constructor(private readonly out: Writable, input: Readable) {
    input.setEncoding('utf8');
    input.on('data', (chunk: string) => {
      this.buffer += chunk;
      let end: number;
      while ((end = this.buffer.indexOf('\0')) >= 0) {
        const msg = JSON.parse(this.buffer.slice(0, end)) as { id?: number; result?: unknown; error?: { message: string } };
        this.buffer = this.buffer.slice(end + 1);
        if (msg.id === undefined) continue;
        const p = this.pending.get(msg.id);
        if (!p) continue;
        this.pending.delete(msg.id);
        if (msg.error) p.reject(new Error(`${p.method}: ${msg.error.message}`));
        else p.resolve(msg.result);
      }
    });
    input.on('close', () => this.fail(new Error('the browser closed its DevTools pipe')));
  }

  fail(err: Error): void {
    this.closedError = err;
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
  }

  send<T = any>(method: string, params: Record<string, unknown> = {}, sessionId?: string): Promise<T> {
    if (this.closedError) return Promise.reject(this.closedError);
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve, reject, method });
      this.out.write(JSON.stringify({ id, method, params, ...(sessionId ? { sessionId } : {}) }) + '\0');
    });
  }
}

/** A browser tab. */
export class Page {
  /** @internal */
  constructor(private readonly conn: Connection, private readonly sessionId: string) {}

  private send<T = any>(method: string, params: Record<string, unknown> = {}): Promise<T> {
    return this.conn.send<T>(method, params, this.sessionId);
  }

  /** Opens `url` and waits until the page has loaded. */
  async goto(url: string, options: { timeout?: number } = {}): Promise<void> {
    const res = await this.send<{ errorText?: string }>('Page.navigate', { url });
    if (res.errorText) throw new Error(`cannot open ${url}: ${res.errorText}`);
    await this.waitForFunction(() => document.readyState === 'complete', { timeout: options.timeout });
  }

  /** Runs `fn` in the page and returns its (JSON-serialisable) result; a promise is awaited. */
  async evaluate<T>(fn: () => T | Promise<T>): Promise<T> {
    const res = await this.send<{ result: { value?: T }; exceptionDetails?: { text: string; exception?: { description?: string } } }>('Runtime.evaluate', {
      expression: `(${fn.toString()})()`, awaitPromise: true, returnByValue: true,
    });
    if (res.exceptionDetails) throw new Error(`evaluate failed: ${res.exceptionDetails.exception?.description ?? res.exceptionDetails.text}`);
    return res.result.value as T;
  }

  /** Polls `fn` in the page until it returns a truthy value; throws after `timeout` ms (default 15 s). */
  async waitForFunction(fn: () => unknown, options: { timeout?: number; polling?: number } = {}): Promise<void> {
    const deadline = Date.now() + (options.timeout ?? 15_000);
    for (;;) {
      if (await this.evaluate(fn)) return;
      if (Date.now() > deadline) throw new Error(`waitForFunction timed out: ${fn.toString()}`);
      await new Promise((r) => setTimeout(r, options.polling ?? 100));
    }
  }

  /** Saves a PNG of the page (the whole page with `fullPage`). */
  async screenshot(options: { path: string; fullPage?: boolean }): Promise<void> {
    const res = await this.send<{ data: string }>('Page.captureScreenshot', { format: 'png', captureBeyondViewport: options.fullPage ?? false });
    fs.writeFileSync(options.path, Buffer.from(res.data, 'base64'));
  }
}

/** A running headless chromium with its own fresh profile. */
export class Browser {
  private constructor(private readonly child: ChildProcess, private readonly conn: Connection, private readonly profile: string) {}

  /** Starts chromium. Throws with a hint when it is not installed. */
  static async launch(options: { executablePath?: string; args?: string[] } = {}): Promise<Browser> {
    const exe = options.executablePath ?? CHROMIUM;
    if (!fs.existsSync(exe)) throw new Error(`${exe} not found: install it (Debian: apt-get install -y chromium) or set SLUICE_CHROMIUM`);
    const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-chromium-'));
    const child = spawn(exe, [...(options.args ?? LAUNCH_ARGS), `--user-data-dir=${profile}`, '--remote-debugging-pipe', 'about:blank'],
      { stdio: ['ignore', 'ignore', 'pipe', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (d) => { stderr = (stderr + d).slice(-4000); });
    const conn = new Connection(child.stdio[3] as Writable, child.stdio[4] as Readable);
    child.on('exit', (code, signal) => conn.fail(new Error(`chromium exited (${signal ?? code}): ${stderr.trim().split('\n').slice(-3).join(' | ')}`)));
    const browser = new Browser(child, conn, profile);
    try {
      await conn.send('Browser.getVersion');
    } catch (err) {
      await browser.close();
      throw err;
    }
    return browser;
  }

  /** Opens a new tab with the given viewport size. */
  async newPage(options: { viewport?: { width: number; height: number } } = {}): Promise<Page> {
    const { targetId } = await this.conn.send<{ targetId: string }>('Target.createTarget', { url: 'about:blank' });
    const { sessionId } = await this.conn.send<{ sessionId: string }>('Target.attachToTarget', { targetId, flatten: true });
    const vp = options.viewport ?? { width: 1280, height: 800 };
    await this.conn.send('Emulation.setDeviceMetricsOverride', { width: vp.width, height: vp.height, deviceScaleFactor: 1, mobile: false }, sessionId);
    await this.conn.send('Page.enable', {}, sessionId);
    await this.conn.send('Runtime.enable', {}, sessionId);
    return new Page(this.conn, sessionId);
  }

  /** Closes the browser and removes its profile. */
  async close(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      const exited = new Promise((r) => this.child.once('exit', r));
      await this.conn.send('Browser.close').catch(() => undefined);
      const timer = setTimeout(() => this.child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    }
    fs.rmSync(this.profile, { recursive: true, force: true });
  }
}
