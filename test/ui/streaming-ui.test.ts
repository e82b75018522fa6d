import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { RunningCli } from '../cli/running-cli.js';
import { type Browser, launchBrowser, type Page } from './browser.js';

/** The page's globals inside functions run by page.evaluate (the tests compile without the DOM library). */
interface PageElement {
  textContent: string;
  dataset: Record<string, string>;
  querySelector(selector: string): PageElement;
  querySelectorAll(selector: string): ArrayLike<PageElement> & Iterable<PageElement>;
}
declare const document: Pick<PageElement, 'querySelector' | 'querySelectorAll'> & {
  getElementById(id: string): PageElement;
};
declare const performance: { getEntriesByType(type: string): Array<{ name: string }> };
declare const location: { origin: string };

const TICKER = fileURLToPath(new URL('../cli/apps/ticker.js', import.meta.url));
/** Where the screenshot is kept for a person to look at (.test-work/ is ignored by git). */
const ARTIFACTS = fileURLToPath(new URL('../../../.test-work/ui/', import.meta.url));

interface ChartState {
  metric: string;
  points: number;
  latest: string;
  polylines: number;
}
interface QueryState {
  output: string;
  badge: string;
  charts: ChartState[];
  newestBatch: number;
  tableRows: number;
  /** Where the newest batch's time went, as its row in the table says. */
  phases: string;
}

/** What the page shows, read from its DOM. */
function pageState(page: Page): Promise<{ conn: string; queries: QueryState[] }> {
  return page.evaluate(() => ({
    conn: document.getElementById('conn').textContent,
    queries: [...document.querySelectorAll('section.query')].map((s) => ({
      output: s.dataset.output,
      badge: s.querySelector('.badge').textContent,
      charts: [...s.querySelectorAll('.chart')].map((c) => ({
        metric: c.dataset.metric,
        points: Number(c.dataset.points ?? 0),
        latest: c.querySelector('.latest').textContent,
        polylines: c.querySelectorAll('svg polyline').length,
      })),
      newestBatch: Number(s.querySelector('tbody tr')?.dataset.batch ?? -1),
      tableRows: s.querySelectorAll('tbody tr').length,
      phases: s.querySelector('tbody tr td.phases')?.textContent ?? '',
    })),
  }));
}

describe('streaming UI in a real browser', function () {
  this.timeout(120_000);
  let root: string;
  let run: RunningCli;
  let browser: Browser;

  before(async () => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-'));
    run = new RunningCli([
      'run',
      TICKER,
      '--source',
      'rate:?rowsPerSecond=300',
      '--trigger',
      '250ms',
      '--checkpoint',
      path.join(root, 'ckpt'),
      '--ui',
      '0',
      '--quiet',
    ]);
    browser = await launchBrowser();
  });

  after(async () => {
    await browser?.close();
    await run.dispose();
    fs.rmSync(root, { recursive: true, force: true });
  });

  it('loads the page, updates the charts while the query runs, and takes a screenshot', async () => {
    const url = (await run.waitForStderr(/sluice: UI at (http:\/\/127\.0\.0\.1:\d+\/)/))[1];
    const page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
    await page.goto(url);
    await page.waitForFunction(
      () =>
        document.querySelectorAll('section.query').length === 2 &&
        [...document.querySelectorAll('.chart[data-metric="inputRate"]')].every((c) => Number(c.dataset.points) >= 2),
    );

    const first = await pageState(page);
    expect(first.queries.map((q) => q.output)).to.deep.equal(['buckets', 'seconds']);
    for (const q of first.queries) {
      expect(q.badge).to.equal('active');
      expect(q.charts.map((c) => c.metric)).to.deep.equal([
        'inputRate',
        'processRate',
        'batchDuration',
        'watermarkDelay',
        'stateRows',
      ]);
      for (const c of q.charts.filter((x) =>
        ['inputRate', 'processRate', 'batchDuration', 'stateRows'].includes(x.metric),
      )) {
        expect(c.polylines, `${q.output} ${c.metric}`).to.be.at.least(1);
        expect(c.latest).to.match(/^[\d.,kM]+ (rows\/s|ms|rows)$/);
      }
      expect(q.tableRows).to.be.at.least(1);
      // Each batch's durationMs, as its phases in milliseconds: the commit log is always written; the offset
      // log's write overlaps the batch's read, so `wal` shows only when reading did not hide it.
      expect(q.phases).to.match(/^([a-z ]+ [\d.,k]+ · )*[a-z ]+ [\d.,k]+$/);
      expect(q.phases).to.match(/\bcommit [\d.]+$/);
    }
    // Only the windowed query has a watermark; the other says the chart does not apply.
    const wm = (q: QueryState): ChartState => q.charts.find((c) => c.metric === 'watermarkDelay')!;
    expect(wm(first.queries[0]).points).to.equal(0);
    await page.waitForFunction(
      () =>
        Number(
          document.querySelector('section[data-output="seconds"] .chart[data-metric="watermarkDelay"]').dataset.points,
        ) >= 1,
    );

    // Without reloading, new batches arrive over the event stream and are drawn.
    const before = first.queries.map((q) => q.charts[0].points);
    await page.waitForFunction(() => document.getElementById('conn').textContent === 'live');
    await new Promise((r) => setTimeout(r, 1500));
    const later = await pageState(page);
    later.queries.forEach((q, i) => {
      expect(q.charts[0].points, q.output).to.be.greaterThan(before[i]);
      expect(q.newestBatch, q.output).to.be.greaterThan(first.queries[i].newestBatch);
    });

    // Everything the page loaded came from the sluice process itself.
    const resources = await page.evaluate(() => ({
      origin: location.origin,
      urls: performance.getEntriesByType('resource').map((e) => e.name),
    }));
    for (const u of resources.urls) expect(u.startsWith(resources.origin), u).to.equal(true);

    fs.mkdirSync(ARTIFACTS, { recursive: true });
    const shot = path.join(ARTIFACTS, 'streaming-ui.png');
    fs.rmSync(shot, { force: true });
    await page.screenshot({ path: shot, fullPage: true });
    const png = fs.readFileSync(shot);
    expect(png.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]))).to.equal(true);
    expect(png.readUInt32BE(16), 'width').to.equal(1280);
    expect(png.readUInt32BE(20), 'height of the whole page').to.be.greaterThan(1000);

    // When the run stops, the page says it lost the connection instead of showing stale figures as live.
    run.kill('SIGINT');
    expect((await run.exited).code, run.stderr).to.equal(0);
    await page.waitForFunction(() => document.getElementById('conn').textContent !== 'live');
  });
});
