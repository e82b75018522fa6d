/**
 * sluice's windows against an independent oracle: DuckDB computes the same sessions and window metrics with
 * SQL over the same generated events. The late set is derived from the watermark rule alone (per batch,
 * max event time of the earlier batches minus the bound), not from the engine.
 */

import * as fs from 'node:fs';
import { expect } from 'chai';
import { windowMetrics } from '../../apps/clickstream-metrics/index.js';
import { CLICKSTREAM_SCHEMA } from '../../apps/clickstream-metrics/schema.js';
import { sessionize } from '../../apps/clickstream-sessions/index.js';
import type { Dataset } from '../../lib/api/dataset.js';
import { window } from '../../lib/api/functions.js';
import { type ClickstreamArrival, clickstreamArrivals } from '../../lib/gen/clickstream.js';
import {
  CLICKSTREAM_ORACLE_COLUMNS,
  clickstreamOracleRows,
  clickstreamSessionsSql,
  type Oracle,
  openOracle,
} from './duckdb.js';
import { Harness, tmpDir } from './support.js';

const MIN = 60_000;
type Event = Record<string, unknown>;

function batchesOf<T>(items: T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

const ms = (v: unknown): number => (v as Date).getTime();

describe('windows against DuckDB', function () {
  this.timeout(240_000);
  let oracle: Oracle;
  let dir: string;
  before(async () => {
    oracle = await openOracle();
    dir = tmpDir();
  });
  after(() => {
    oracle.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('clickstream sessions equal SQL sessionisation; events beyond the bound go to the late output exactly once', async () => {
    const GAP = 30 * MIN;
    const BOUND = 5 * MIN;
    const LATENESS = 5 * MIN;
    const arrivals = [
      ...clickstreamArrivals({
        count: 4000,
        seed: 11,
        users: 120,
        meanSpacingMs: 1500,
        maxOutOfOrdernessMs: BOUND,
        lateFraction: 0.02,
        lateByMinMs: 20 * MIN,
        lateByMaxMs: 90 * MIN,
      }),
    ];
    const batches = batchesOf(arrivals, 250);
    // The watermark rule, independently: a batch's watermark is the largest event time of the batches before
    // it minus the bound; a session-window row at or before watermark - allowed lateness is late.
    const expectedLate = new Set<ClickstreamArrival>();
    let maxBefore = -Infinity;
    for (const b of batches) {
      const wm = maxBefore - BOUND;
      for (const a of b) if (a.ts <= wm - LATENESS) expectedLate.add(a);
      for (const a of b) maxBefore = Math.max(maxBefore, a.ts);
    }
    // Every event the rule drops arrived beyond the bound; the events beyond the bound it keeps are those that
    // came in the first batch (no watermark yet) or at the very end of the stream with a smaller delay.
    const beyondBound = arrivals.filter((a) => a.late);
    for (const a of expectedLate) expect(a.late).to.equal(true);
    for (const a of beyondBound) {
      if (!expectedLate.has(a))
        expect(batches[0].includes(a) || batches[batches.length - 1].includes(a)).to.equal(true);
    }
    expect(expectedLate.size).to.be.above(30);
    const finalWatermark = maxBefore - BOUND;

    const h = await Harness.start<Event>({
      schema: CLICKSTREAM_SCHEMA,
      mode: 'append',
      late: true,
      statePartitions: 3,
      build: (ds) =>
        sessionize(ds as Dataset, { gap: GAP, 'max-out-of-orderness': BOUND, 'allowed-lateness': LATENESS }),
    });
    const out: Event[] = [];
    for (const b of batches) out.push(...(await h.step(b.map((a) => a.event as unknown as Event))));
    const late = h.lateRows();
    await h.stop();

    const lateKeys = late.map((r) => `${r.user_id} ${ms(r.timestamp)} ${r.page_url}`).sort();
    expect(lateKeys).to.deep.equal(
      [...expectedLate].map((a) => `${a.event.user_id} ${a.ts} ${a.event.page_url}`).sort(),
    );
    for (const r of late) expect(r.late_reason).to.match(/^behind the watermark/);

    await oracle.load(
      'clicks',
      clickstreamOracleRows(arrivals.filter((a) => !expectedLate.has(a))),
      CLICKSTREAM_ORACLE_COLUMNS,
      dir,
    );
    const expected = await oracle.query(clickstreamSessionsSql('clicks', GAP + LATENESS, finalWatermark));
    const normalise = (r: Event): Event => ({
      session_id: `${r.user_id}-${r.start_ms}`,
      user_id: r.user_id,
      start_ms: r.start_ms,
      end_ms: r.end_ms,
      duration_seconds: Math.round(Number(r.end_ms) - Number(r.start_ms)) / 1000,
      event_count: r.event_count,
      page_view_count: r.page_view_count,
      click_count: r.click_count,
      purchase_count: r.purchase_count,
      pages_visited: r.pages_visited,
      entry_page: r.entry_page,
      exit_page: r.exit_page,
      referrer: r.referrer,
      device_type: r.device_type,
      country: r.country,
      conversion: Number(r.purchase_count) > 0,
      revenue: r.revenue,
      purchases_without_amount: r.purchases_without_amount,
    });
    const actual = out.map((r) => normalise({ ...r, start_ms: ms(r.start_time), end_ms: ms(r.end_time) }));
    for (const r of out) expect(r.session_id).to.equal(`${r.user_id}-${ms(r.start_time)}`);
    for (const r of out) expect(r.duration_seconds).to.equal(Math.round(ms(r.end_time) - ms(r.start_time)) / 1000);
    const byId = (a: Event, b: Event): number => String(a.session_id).localeCompare(String(b.session_id));
    expect(expected.length).to.be.above(200);
    expect(actual.sort(byId)).to.deep.equal(expected.map(normalise).sort(byId));
  });

  it('1-minute, 5-minute sliding and 1-hour metrics equal SQL window aggregates', async () => {
    const BOUND = 5 * MIN;
    const arrivals = [
      ...clickstreamArrivals({ count: 6000, seed: 5, users: 300, meanSpacingMs: 900, maxOutOfOrdernessMs: BOUND }),
    ];
    const finalWatermark = Math.max(...arrivals.map((a) => a.ts)) - BOUND;
    await oracle.load('events', clickstreamOracleRows(arrivals), CLICKSTREAM_ORACLE_COLUMNS, dir);
    const opts = { 'max-out-of-orderness': BOUND, 'allowed-lateness': 0, 'unique-users': 'exact' as const };
    for (const [size, slide] of [
      [1, 1],
      [5, 1],
      [60, 60],
    ]) {
      const h = await Harness.start<Event>({
        schema: CLICKSTREAM_SCHEMA,
        mode: 'append',
        late: true,
        statePartitions: 3,
        build: (ds) => windowMetrics(ds as Dataset, window('timestamp', size * MIN, slide * MIN), opts),
      });
      const out: Event[] = [];
      for (const b of batchesOf(arrivals, 400)) out.push(...(await h.step(b.map((a) => a.event as unknown as Event))));
      expect(h.lateRows()).to.deep.equal([]);
      await h.stop();
      const expected = await oracle.query(`
        WITH w AS (
          SELECT *, (ms // ${slide * MIN} - k) * ${slide * MIN} AS ws
          FROM events, (SELECT unnest(range(0, ${Math.ceil(size / slide)})) AS k)
        ),
        ww AS (SELECT * FROM w WHERE ws + ${size * MIN} > ms),
        tops AS (
          SELECT ws, list({'value': page_url, 'count': n} ORDER BY n DESC, page_url)[1:10] AS top_pages
          FROM (SELECT ws, page_url, COUNT(*) AS n FROM ww WHERE event_type = 'page_view' GROUP BY ALL) GROUP BY ws),
        devices AS (SELECT ws, list([device, n::VARCHAR] ORDER BY device) AS d FROM (SELECT ws, device, COUNT(*) AS n FROM ww GROUP BY ALL) GROUP BY ws),
        countries AS (SELECT ws, list([country, n::VARCHAR] ORDER BY country) AS c FROM (SELECT ws, country, COUNT(*) AS n FROM ww GROUP BY ALL) GROUP BY ws)
        SELECT m.*, coalesce(tops.top_pages, []) AS top_pages, devices.d AS devices, countries.c AS countries FROM (
          SELECT ws, COUNT(*) AS total_events, COUNT(DISTINCT user_id) AS unique_users,
            COUNT(*) FILTER (WHERE event_type = 'page_view') AS page_views,
            COUNT(*) FILTER (WHERE event_type = 'click') AS clicks,
            COUNT(*) FILTER (WHERE event_type = 'purchase') AS purchases,
            round(coalesce(SUM(TRY_CAST(amount AS DOUBLE)) FILTER (WHERE event_type = 'purchase'), 0), 2) AS revenue
          FROM ww GROUP BY ws) m
        LEFT JOIN tops USING (ws) JOIN devices USING (ws) JOIN countries USING (ws)
        WHERE ws + ${size * MIN} <= ${finalWatermark}
        ORDER BY ws`);
      const pairs = (l: unknown): Record<string, number> =>
        Object.fromEntries((l as string[][]).map(([k, n]) => [k, Number(n)]));
      const want = expected.map((r) => ({
        window_start: r.ws,
        window_end: Number(r.ws) + size * MIN,
        total_events: r.total_events,
        unique_users: r.unique_users,
        page_views: r.page_views,
        clicks: r.clicks,
        purchases: r.purchases,
        revenue: r.revenue,
        top_pages: r.top_pages,
        device_breakdown: pairs(r.devices),
        country_breakdown: pairs(r.countries),
      }));
      const got = out
        .map((r) => ({ ...r, window_start: ms(r.window_start), window_end: ms(r.window_end) }))
        .sort((a, b) => a.window_start - b.window_start);
      expect(got.length, `${size}m windows`).to.equal(want.length);
      expect(got, `${size}m windows`).to.deep.equal(want);
    }
  });
});
