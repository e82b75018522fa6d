import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { UI_CSS, UI_HTML, UI_JS } from '../../lib/ui/assets.js';
import type { UiSnapshot } from '../../lib/ui/ui-server.js';
import { RunningCli } from '../cli/running-cli.js';

const TICKER = fileURLToPath(new URL('../cli/apps/ticker.js', import.meta.url));

interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

function request(url: string, options: { method?: string; headers?: Record<string, string> } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: options.method ?? 'GET', headers: options.headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => {
        body += d;
      });
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** Reads the event stream until `count` events of type `type` arrived. */
function events(url: string, type: string, count: number, timeoutMs = 20_000): Promise<unknown[]> {
  return new Promise((resolve, reject) => {
    const got: unknown[] = [];
    const req = http.get(url, (res) => {
      expect(res.headers['content-type']).to.equal('text/event-stream');
      let buf = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => {
        buf += d;
        for (let end = buf.indexOf('\n\n'); end >= 0; end = buf.indexOf('\n\n')) {
          const block = buf.slice(0, end);
          buf = buf.slice(end + 2);
          const ev = /^event: (.+)$/m.exec(block)?.[1];
          const data = /^data: (.+)$/m.exec(block)?.[1];
          if (ev === type && data) got.push(JSON.parse(data));
          if (got.length === count) {
            clearTimeout(timer);
            req.destroy();
            resolve(got);
          }
        }
      });
    });
    const timer = setTimeout(() => {
      req.destroy();
      reject(new Error(`only ${got.length} ${type} events in ${timeoutMs} ms`));
    }, timeoutMs);
    req.on('error', (err) => {
      if (got.length < count) reject(err);
    });
  });
}

describe('streaming UI server', function () {
  this.timeout(60_000);
  let root: string;
  let run: RunningCli;
  let url: string;

  before(async () => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-'));
    run = new RunningCli([
      'run',
      TICKER,
      '--source',
      'rate:?rowsPerSecond=300',
      '--trigger',
      '200ms',
      '--checkpoint',
      path.join(root, 'ckpt'),
      '--ui',
      '0',
      '--quiet',
    ]);
    url = (await run.waitForStderr(/sluice: UI at (http:\/\/127\.0\.0\.1:\d+\/)/))[1];
  });

  after(async () => {
    await run.dispose();
    fs.rmSync(root, { recursive: true, force: true });
  });

  it('serves the page, its script and style with a strict content security policy', async () => {
    const page = await request(url);
    expect(page.status).to.equal(200);
    expect(page.headers['content-type']).to.equal('text/html; charset=utf-8');
    expect(page.headers['content-security-policy']).to.contain("default-src 'none'").and.contain("script-src 'self'");
    expect(page.body).to.contain('<script src="/ui.js"></script>');
    const js = await request(`${url}ui.js`);
    expect(js.headers['content-type']).to.equal('text/javascript; charset=utf-8');
    expect(js.body).to.equal(UI_JS);
    expect((await request(`${url}ui.css`)).body).to.equal(UI_CSS);
  });

  it('refers to nothing outside the process (no CDN, no fonts)', () => {
    for (const text of [UI_HTML, UI_CSS, UI_JS]) {
      const urls = text.match(/(https?:)?\/\/[a-z0-9.-]+\.[a-z]{2,}[^\s'"]*/gi) ?? [];
      // The SVG namespace is a name, not something fetched.
      expect(urls.filter((u) => u !== 'http://www.w3.org/2000/svg')).to.deep.equal([]);
      expect(text).to.not.match(/@import|url\(/);
    }
  });

  it('gives each query with its recent progress as JSON', async () => {
    await run.waitForStderr(/sluice: UI at/);
    let snap: UiSnapshot;
    const deadline = Date.now() + 20_000;
    do {
      snap = JSON.parse((await request(`${url}api/queries`)).body) as UiSnapshot;
      if (snap.queries.every((q) => q.progress.length >= 2)) break;
      await new Promise((r) => setTimeout(r, 200));
    } while (Date.now() < deadline);
    expect(snap.title).to.equal('ticker');
    expect(snap.queries.map((q) => q.output)).to.deep.equal(['buckets', 'seconds']);
    for (const q of snap.queries) {
      expect(q.isActive).to.equal(true);
      expect(q.name).to.equal(`ticker.${q.output}`);
      expect(q.progress.length).to.be.at.least(2);
      const ids = q.progress.map((p) => p.batchId);
      expect(ids).to.deep.equal([...ids].sort((a, b) => a - b));
      expect(q.progress.every((p) => p.id === q.id && p.runId === q.runId)).to.equal(true);
    }
  });

  it('pushes each batch as a server-sent event', async () => {
    const got = (await events(`${url}api/events`, 'progress', 4)) as Array<{
      output: string;
      progress: { batchId: number };
    }>;
    expect(got.map((e) => e.output)).to.include.members(['buckets', 'seconds']);
    const buckets = got.filter((e) => e.output === 'buckets').map((e) => e.progress.batchId);
    for (let i = 1; i < buckets.length; i++) expect(buckets[i]).to.equal(buckets[i - 1] + 1);
  });

  it('answers only to localhost, only GET, only its own paths', async () => {
    expect((await request(url, { headers: { host: 'attacker.example:80' } })).status).to.equal(421);
    expect((await request(url, { headers: { host: `localhost:${new URL(url).port}` } })).status).to.equal(200);
    expect((await request(`${url}api/queries`, { method: 'POST' })).status).to.equal(405);
    expect((await request(`${url}etc/passwd`)).status).to.equal(404);
  });

  it('goes away when the run stops, which still exits 0', async () => {
    run.kill('SIGINT');
    expect((await run.exited).code, run.stderr).to.equal(0);
    const err = await request(url).then(
      () => null,
      (e: NodeJS.ErrnoException) => e,
    );
    expect(err?.code).to.equal('ECONNREFUSED');
  });
});
