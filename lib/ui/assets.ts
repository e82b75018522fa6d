/**
 * The streaming UI's page, style sheet and script, served by ui-server.ts. They live in strings so the
 * compiled package carries them without a build step or a copy of static files, and the page needs
 * nothing from outside this process: no CDN, no fonts, no chart library. The script is plain ES2020
 * for the browser (it is not compiled by tsc; the browser test in test/ui runs it).
 */

/** The page: a shell that ui.js fills in. */
export const UI_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>sluice · Structured Streaming</title>
<link rel="stylesheet" href="/ui.css">
</head>
<body>
<header>
  <h1><span class="logo">sluice</span> <span id="title">Structured Streaming</span></h1>
  <span id="conn" class="conn">connecting…</span>
</header>
<section id="tasks" class="tasks" hidden>
  <h2>Tasks of this group member</h2>
  <table class="batches"><thead><tr><th>Task</th><th>Query</th><th>Status</th><th>Last batch</th><th>Input rows (last batch)</th><th>State rows</th></tr></thead><tbody></tbody></table>
</section>
<main id="queries"><p class="empty">Loading…</p></main>
<footer>Charts show the last batches of each query, newest on the right. Rates are rows per second; the watermark delay is how far the watermark trails the batch's processing time.</footer>
<script src="/ui.js"></script>
</body>
</html>
`;

/** The style sheet. */
export const UI_CSS = `
:root { --fg: #1d2330; --muted: #667085; --line: #e4e7ec; --bg: #f7f8fa; --card: #fff; --accent: #2f6fde; --ok: #1a7f37; --bad: #c4320a; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg); background: var(--bg); }
header { display: flex; align-items: center; justify-content: space-between; padding: 10px 20px; background: #1d2330; color: #fff; }
header h1 { margin: 0; font-size: 17px; font-weight: 600; }
.logo { color: #7fb0ff; font-weight: 700; letter-spacing: .5px; }
.conn { font-size: 12px; padding: 2px 8px; border-radius: 10px; background: #394152; }
.conn.live { background: var(--ok); }
.conn.down { background: var(--bad); }
main { padding: 16px 20px; display: grid; gap: 18px; }
.empty { color: var(--muted); }
.query { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 14px 16px; }
.qhead { display: flex; align-items: center; gap: 10px; }
.qhead h2 { margin: 0; font-size: 16px; }
.badge { font-size: 12px; padding: 1px 8px; border-radius: 10px; background: var(--line); }
.badge.active { background: #dcf3e3; color: var(--ok); }
.badge.failed { background: #fde4dc; color: var(--bad); }
.facts { display: grid; grid-template-columns: repeat(auto-fill, minmax(210px, 1fr)); gap: 2px 18px; margin: 10px 0 12px; }
.facts div { display: flex; gap: 6px; min-width: 0; }
.facts dt { color: var(--muted); white-space: nowrap; }
.facts dd { margin: 0; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.error { color: var(--bad); margin: 6px 0; white-space: pre-wrap; }
.charts { display: grid; grid-template-columns: repeat(auto-fill, minmax(300px, 1fr)); gap: 12px; }
.chart { margin: 0; border: 1px solid var(--line); border-radius: 6px; padding: 6px 8px 4px; }
.chart figcaption { display: flex; justify-content: space-between; font-size: 13px; color: var(--muted); }
.chart figcaption b { color: var(--fg); font-weight: 600; }
.chart svg { display: block; width: 100%; height: auto; }
.chart .grid { stroke: var(--line); stroke-width: 1; }
.chart .axis { fill: var(--muted); font-size: 10px; }
.chart .series { fill: none; stroke: var(--accent); stroke-width: 1.6; stroke-linejoin: round; }
.chart .area { fill: var(--accent); fill-opacity: .08; stroke: none; }
.chart .dot { fill: var(--accent); }
.chart .nodata { fill: var(--muted); font-size: 12px; }
h3 { font-size: 14px; margin: 14px 0 6px; }
table.batches { border-collapse: collapse; width: 100%; font-size: 13px; font-variant-numeric: tabular-nums; }
table.batches th, table.batches td { padding: 3px 8px; border-bottom: 1px solid var(--line); text-align: right; white-space: nowrap; }
table.batches th:nth-child(2), table.batches td:nth-child(2), table.batches th:nth-child(7), table.batches td.phases { text-align: left; }
table.batches td.phases { white-space: normal; color: var(--muted); }
table.batches th { color: var(--muted); font-weight: 500; }
footer { color: var(--muted); font-size: 12px; padding: 0 20px 20px; }
.tasks { margin: 16px 20px 0; background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 14px 16px; }
.tasks h2 { margin: 0 0 8px; font-size: 16px; }
.tasks table.batches th:nth-child(3), .tasks table.batches td:nth-child(3) { text-align: left; }
`;

/** The script: loads /api/queries, follows /api/events, draws the charts and the batch table. */
// biome-ignore lint/complexity/noUselessStringRaw: a backslash in the script must reach the browser as written
export const UI_JS = String.raw`(() => {
  'use strict';
  const SVG = 'http://www.w3.org/2000/svg';
  const W = 320, H = 130, ML = 46, MR = 10, MT = 8, MB = 20;
  const TABLE_ROWS = 20;
  const queries = new Map();
  const dirty = new Set();
  let flushTimer = null;

  const sumState = (p) => p.stateOperators.reduce((n, s) => n + s.numRowsTotal, 0);
  const METRICS = [
    { key: 'inputRate', title: 'Input rate', unit: 'rows/s', value: (p) => p.inputRowsPerSecond },
    { key: 'processRate', title: 'Process rate', unit: 'rows/s', value: (p) => p.processedRowsPerSecond },
    { key: 'batchDuration', title: 'Batch duration', unit: 'ms', value: (p) => p.durationMs.triggerExecution },
    { key: 'watermarkDelay', title: 'Watermark delay', unit: 's', value: (p) => {
      const wm = Date.parse(p.eventTime.watermark);
      return wm > 0 ? Math.max(0, (Date.parse(p.timestamp) - wm) / 1000) : null;
    } },
    { key: 'stateRows', title: 'State rows', unit: 'rows', value: (p) => (p.stateOperators.length ? sumState(p) : null) },
  ];

  // Where a batch's time went: the driver's phases, and within addBatch reading, exchange, state commit and sink.
  const PHASES = [
    ['offsets', (d) => d.latestOffset + d.getBatch], ['plan', (d) => d.queryPlanning], ['wal', (d) => d.walCommit],
    ['read', (d) => d.read], ['exchange', (d) => d.exchange], ['state commit', (d) => d.stateCommit],
    ['sink', (d) => d.sink], ['commit', (d) => d.commitOffsets],
  ];
  function phasesText(d) {
    const parts = PHASES.map(([name, f]) => [name, f(d)]).filter(([, ms]) => ms >= 0.5);
    return parts.length ? parts.map(([name, ms]) => name + ' ' + num(ms)).join(' · ') : '-';
  }

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function svg(tag, attrs, text) {
    const e = document.createElementNS(SVG, tag);
    for (const k in attrs) e.setAttribute(k, String(attrs[k]));
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function num(v) {
    if (v === null || v === undefined || !isFinite(v)) return '-';
    const a = Math.abs(v);
    if (a >= 1e9) return (v / 1e9).toFixed(1) + 'G';
    if (a >= 1e6) return (v / 1e6).toFixed(a >= 1e7 ? 1 : 2) + 'M';
    if (a >= 1e4) return (v / 1e3).toFixed(1) + 'k';
    if (a >= 100 || Number.isInteger(v)) return Math.round(v).toLocaleString('en-US');
    return v.toFixed(a >= 10 ? 1 : 2);
  }
  function clock(ms) {
    const d = new Date(ms);
    return [d.getHours(), d.getMinutes(), d.getSeconds()].map((x) => String(x).padStart(2, '0')).join(':');
  }
  function niceMax(v) {
    if (!(v > 0)) return 1;
    const p = Math.pow(10, Math.floor(Math.log10(v)));
    for (const m of [1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10]) if (m * p >= v) return m * p;
    return 10 * p;
  }

  function drawChart(fig, metric, progress) {
    const pts = [];
    for (const p of progress) {
      const v = metric.value(p);
      pts.push({ t: Date.parse(p.timestamp), v: v === null || !isFinite(v) ? null : v });
    }
    const values = pts.filter((p) => p.v !== null);
    fig.dataset.points = String(values.length);
    const latest = values.length ? values[values.length - 1].v : null;
    fig.querySelector('.latest').textContent = latest === null ? '-' : num(latest) + ' ' + metric.unit;
    const s = svg('svg', { viewBox: '0 0 ' + W + ' ' + H, role: 'img', 'aria-label': metric.title });
    const x0 = ML, x1 = W - MR, y0 = H - MB, y1 = MT;
    if (values.length === 0) {
      s.appendChild(svg('text', { x: W / 2, y: H / 2, 'text-anchor': 'middle', class: 'nodata' }, progress.length ? 'not applicable' : 'waiting for the first batch'));
      fig.querySelector('svg').replaceWith(s);
      return;
    }
    const tMin = pts[0].t, tMax = pts[pts.length - 1].t;
    const vMax = niceMax(Math.max(...values.map((p) => p.v)));
    const x = (t) => (tMax === tMin ? (x0 + x1) / 2 : x0 + ((t - tMin) / (tMax - tMin)) * (x1 - x0));
    const y = (v) => y0 - (v / vMax) * (y0 - y1);
    for (const f of [0, 0.5, 1]) {
      const yy = y(vMax * f);
      s.appendChild(svg('line', { x1: x0, x2: x1, y1: yy, y2: yy, class: 'grid' }));
      s.appendChild(svg('text', { x: x0 - 4, y: yy + 3, 'text-anchor': 'end', class: 'axis' }, num(vMax * f)));
    }
    s.appendChild(svg('text', { x: x0, y: H - 5, 'text-anchor': 'start', class: 'axis' }, clock(tMin)));
    if (tMax !== tMin) s.appendChild(svg('text', { x: x1, y: H - 5, 'text-anchor': 'end', class: 'axis' }, clock(tMax)));
    // A batch without a value (no watermark yet) breaks the line instead of dropping to zero.
    let seg = [];
    const segments = [];
    for (const p of pts) {
      if (p.v === null) { if (seg.length) segments.push(seg); seg = []; } else seg.push(p);
    }
    if (seg.length) segments.push(seg);
    for (const sg of segments) {
      const line = sg.map((p) => x(p.t).toFixed(1) + ',' + y(p.v).toFixed(1)).join(' ');
      if (sg.length > 1) {
        s.appendChild(svg('polygon', { points: x(sg[0].t).toFixed(1) + ',' + y0 + ' ' + line + ' ' + x(sg[sg.length - 1].t).toFixed(1) + ',' + y0, class: 'area' }));
      }
      s.appendChild(svg('polyline', { points: line, class: 'series' }));
    }
    const last = values[values.length - 1];
    s.appendChild(svg('circle', { cx: x(last.t), cy: y(last.v), r: 2.5, class: 'dot' }));
    fig.querySelector('svg').replaceWith(s);
  }

  function fact(dl, name, value) {
    const d = el('div');
    d.appendChild(el('dt', '', name));
    const dd = el('dd', '', value);
    dd.title = value;
    d.appendChild(dd);
    dl.appendChild(d);
  }

  function section(q) {
    const sec = el('section', 'query');
    sec.dataset.output = q.output;
    const head = el('div', 'qhead');
    head.appendChild(el('h2', '', q.output));
    head.appendChild(el('span', 'badge'));
    sec.appendChild(head);
    sec.appendChild(el('dl', 'facts'));
    sec.appendChild(el('div', 'error'));
    const charts = el('div', 'charts');
    for (const m of METRICS) {
      const fig = el('figure', 'chart');
      fig.dataset.metric = m.key;
      const cap = el('figcaption');
      cap.appendChild(el('span', '', m.title));
      cap.appendChild(el('b', 'latest', '-'));
      fig.appendChild(cap);
      fig.appendChild(svg('svg', {}));
      charts.appendChild(fig);
    }
    sec.appendChild(charts);
    sec.appendChild(el('h3', '', 'Recent batches'));
    const table = el('table', 'batches');
    const tr = el('tr');
    for (const h of ['Batch', 'Time', 'Input rows', 'Input rows/s', 'Process rows/s', 'Duration (ms)', 'Where it went (ms)', 'Output rows', 'Watermark', 'State rows']) tr.appendChild(el('th', '', h));
    const thead = el('thead');
    thead.appendChild(tr);
    table.appendChild(thead);
    table.appendChild(el('tbody'));
    sec.appendChild(table);
    return sec;
  }

  function render(q) {
    const sec = q.section;
    const badge = sec.querySelector('.badge');
    badge.textContent = q.isActive ? 'active' : q.exception ? 'failed' : 'stopped';
    badge.className = 'badge ' + (q.isActive ? 'active' : q.exception ? 'failed' : 'stopped');
    const dl = sec.querySelector('.facts');
    dl.textContent = '';
    const ps = q.progress;
    const last = ps[ps.length - 1];
    const avg = (f) => (ps.length ? ps.reduce((a, p) => a + f(p), 0) / ps.length : null);
    fact(dl, 'Status', q.status.message);
    fact(dl, 'Name', q.name || '-');
    fact(dl, 'Id', q.id);
    fact(dl, 'Run id', q.runId);
    fact(dl, 'Started', new Date(q.startedAt).toLocaleString());
    fact(dl, 'Latest batch', last ? String(last.batchId) : '-');
    fact(dl, 'Avg input', num(avg((p) => p.inputRowsPerSecond)) + ' rows/s');
    fact(dl, 'Avg process', num(avg((p) => p.processedRowsPerSecond)) + ' rows/s');
    if (last) {
      for (const s of last.sources) fact(dl, 'Source', s.description);
      fact(dl, 'Sink', last.sink.description);
    }
    sec.querySelector('.error').textContent = q.exception ? 'Error: ' + q.exception : '';
    for (const m of METRICS) drawChart(sec.querySelector('.chart[data-metric="' + m.key + '"]'), m, ps);
    const tbody = sec.querySelector('tbody');
    tbody.textContent = '';
    for (const p of ps.slice(-TABLE_ROWS).reverse()) {
      const row = el('tr');
      row.dataset.batch = String(p.batchId);
      const wm = Date.parse(p.eventTime.watermark);
      const cells = [String(p.batchId), new Date(p.timestamp).toLocaleTimeString(), num(p.numInputRows), num(p.inputRowsPerSecond),
        num(p.processedRowsPerSecond), num(p.durationMs.triggerExecution), phasesText(p.durationMs), num(p.sink.numOutputRows),
        wm > 0 ? new Date(wm).toISOString().replace('T', ' ').replace('.000Z', 'Z') : '-', p.stateOperators.length ? num(sumState(p)) : '-'];
      for (const c of cells) row.appendChild(el('td', '', c));
      row.children[6].className = 'phases';
      row.children[6].title = JSON.stringify(p.durationMs, (k, v) => (typeof v === 'number' ? Math.round(v * 10) / 10 : v), 1);
      tbody.appendChild(row);
    }
  }

  // A group member's tasks, one row per task and output: what each task did last and the state it holds.
  function renderTasks() {
    const rows = [...queries.values()].filter((q) => q.task !== null).sort((a, b) => a.task - b.task || (a.output < b.output ? -1 : 1));
    const box = document.getElementById('tasks');
    box.hidden = rows.length === 0;
    const tbody = box.querySelector('tbody');
    tbody.textContent = '';
    for (const q of rows) {
      const last = q.progress[q.progress.length - 1];
      const row = el('tr');
      row.dataset.task = String(q.task);
      const cells = [String(q.task), q.output, q.isActive ? 'active' : q.exception ? 'failed' : 'stopped', last ? String(last.batchId) : '-',
        last ? num(last.numInputRows) : '-', last && last.stateOperators.length ? num(sumState(last)) : '-'];
      for (const c of cells) row.appendChild(el('td', '', c));
      tbody.appendChild(row);
    }
  }

  function flush() {
    flushTimer = null;
    for (const q of dirty) render(q);
    dirty.clear();
    renderTasks();
  }
  function markDirty(q) {
    dirty.add(q);
    if (flushTimer === null) flushTimer = setTimeout(flush, 100);
  }

  function load(snapshot) {
    document.getElementById('title').textContent = snapshot.title;
    document.title = snapshot.title + ' · sluice';
    const main = document.getElementById('queries');
    if (queries.size === 0) main.textContent = '';
    if (snapshot.queries.length === 0 && !main.querySelector('.empty')) main.appendChild(el('p', 'empty', 'No queries.'));
    // A group member's queries go with the tasks it gave up.
    const present = new Set(snapshot.queries.map((d) => d.output));
    for (const [output, q] of queries) {
      if (present.has(output)) continue;
      q.section.remove();
      queries.delete(output);
      dirty.delete(q);
    }
    for (const data of snapshot.queries) {
      let q = queries.get(data.output);
      if (!q) {
        q = { section: section(data) };
        queries.set(data.output, q);
        main.appendChild(q.section);
      }
      Object.assign(q, data);
      markDirty(q);
    }
    if (snapshot.queries.length > 0) main.querySelector('.empty')?.remove();
    if (dirty.size === 0) renderTasks();
  }

  let history = 300;
  function onProgress(msg) {
    const q = queries.get(msg.output);
    // A query that started after the last snapshot (a task this member took): the snapshot has its batches.
    if (!q) return void refresh().catch(() => undefined);
    if (q.progress.length && q.progress[q.progress.length - 1].batchId >= msg.progress.batchId && q.progress[q.progress.length - 1].runId === msg.progress.runId) return;
    q.progress.push(msg.progress);
    if (q.progress.length > history) q.progress.splice(0, q.progress.length - history);
    markDirty(q);
  }
  function onStatus(msg) {
    const q = queries.get(msg.output);
    if (!q) return;
    q.isActive = msg.isActive;
    q.status = msg.status;
    q.exception = msg.exception;
    markDirty(q);
  }

  const conn = document.getElementById('conn');
  function setConn(text, cls) {
    conn.textContent = text;
    conn.className = 'conn ' + cls;
  }
  let loaded = false;
  const early = [];
  async function refresh() {
    const res = await fetch('/api/queries', { cache: 'no-store' });
    const snap = await res.json();
    history = Math.max(history, ...snap.queries.map((q) => q.progress.length));
    load(snap);
    loaded = true;
    for (const f of early.splice(0)) f();
  }
  // Events that arrive before the first snapshot are applied after it (duplicates are skipped).
  const whenLoaded = (f) => (loaded ? f() : early.push(f));
  function follow() {
    const es = new EventSource('/api/events');
    let hadError = false;
    es.addEventListener('open', () => {
      setConn('live', 'live');
      // After a reconnect, batches sent while disconnected are only in the snapshot.
      if (hadError) refresh().catch(() => undefined);
    });
    es.addEventListener('error', () => { hadError = true; setConn('reconnecting…', 'down'); });
    es.addEventListener('progress', (e) => { const m = JSON.parse(e.data); whenLoaded(() => onProgress(m)); });
    es.addEventListener('status', (e) => { const m = JSON.parse(e.data); whenLoaded(() => onStatus(m)); });
    es.addEventListener('queries', () => whenLoaded(() => refresh().catch(() => undefined)));
  }
  follow();
  refresh().catch((err) => {
    setConn('cannot load: ' + err.message, 'down');
    setTimeout(() => location.reload(), 3000);
  });
})();
`;
