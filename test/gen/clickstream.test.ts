import { expect } from 'chai';
import { SluiceError } from '../../lib/errors.js';
import { type ClickstreamArrival, clickstream, clickstreamArrivals } from '../../lib/gen/clickstream.js';
import { disorder } from '../../lib/gen/disorder.js';
import { transactionArrivals, transactions } from '../../lib/gen/transactions.js';

/**
 * Checks the disorder contract over an arrival sequence; returns the number of late events. A late event
 * less than bound + lateByMin behind is allowed only at the end of the stream, when no event ever reached
 * its release time (at most ts + bound + lateByMax).
 */
function checkDisorder(
  arrivals: { ts: number; late: boolean }[],
  bound: number,
  lateByMin: number,
  lateByMax: number,
): number {
  let max = -Infinity;
  let late = 0;
  const problems: string[] = [];
  const streamMax = Math.max(...arrivals.map((a) => a.ts));
  arrivals.forEach((a, i) => {
    const d = max - a.ts;
    if (a.late) {
      late++;
      if (!(d > bound)) problems.push(`late event ${i} is only ${d} ms behind`);
      if (!(d >= bound + lateByMin) && streamMax >= a.ts + bound + lateByMax)
        problems.push(`late event ${i} is ${d} ms behind, less than bound + lateBy`);
    } else if (bound > 0 ? !(d < bound) : !(d <= 0)) {
      problems.push(`on-time event ${i} is ${d} ms behind (bound ${bound})`);
    }
    if (a.ts > max) max = a.ts;
  });
  expect(problems.slice(0, 5)).to.deep.equal([]);
  return late;
}

/** Sessions found by a gap-based session window over event time: user → list of [first ts, session ids seen]. */
function sessionise(events: { user: string; session: string; ts: number }[], gapMs: number): Map<string, string> {
  const byUser = new Map<string, { session: string; ts: number }[]>();
  for (const e of events) {
    const list = byUser.get(e.user) ?? [];
    list.push(e);
    byUser.set(e.user, list);
  }
  const windowOf = new Map<string, string>();
  for (const [user, list] of byUser) {
    list.sort((a, b) => a.ts - b.ts);
    let window = `${user}@${list[0].ts}`;
    list.forEach((e, i) => {
      if (i > 0 && e.ts - list[i - 1].ts >= gapMs) window = `${user}@${e.ts}`;
      const prev = windowOf.get(e.session);
      if (prev !== undefined && prev !== window)
        throw new Error(`session ${e.session} spans windows ${prev} and ${window}`);
      windowOf.set(e.session, window);
    });
  }
  return windowOf;
}

describe('gen/clickstream', () => {
  const options = {
    count: 20_000,
    seed: 5,
    users: 500,
    meanSpacingMs: 200,
    maxOutOfOrdernessMs: 300_000,
    lateFraction: 0.02,
  };
  const arrivals: ClickstreamArrival[] = [...clickstreamArrivals(options)];

  it('is deterministic per seed', () => {
    const a = JSON.stringify([...clickstream({ ...options, count: 3000 })]);
    expect(JSON.stringify([...clickstream({ ...options, count: 3000 })])).to.equal(a);
    expect(JSON.stringify([...clickstream({ ...options, count: 3000, seed: 6 })])).to.not.equal(a);
    expect(JSON.stringify([...clickstream({ ...options, count: 3000, seed: '5' })])).to.not.equal(a);
  });

  it('produces events in the schema the clickstream apps read', () => {
    expect(arrivals).to.have.length(options.count);
    const types = new Map<string, number>();
    const bad: unknown[] = [];
    for (const { event: e, ts } of arrivals) {
      types.set(e.event_type, (types.get(e.event_type) ?? 0) + 1);
      const keys = Object.keys(e).join(',');
      if (keys !== 'user_id,session_id,event_type,page_url,timestamp,referrer,device,geo,metadata') bad.push(keys);
      if (Date.parse(e.timestamp as string) !== ts || !String(e.timestamp).endsWith('Z')) bad.push(e.timestamp);
      if (!/^user-\d{4}$/.test(e.user_id) || !/^sess-[0-9a-f]{8}$/.test(e.session_id) || !e.page_url.startsWith('/'))
        bad.push(e);
      if (!['desktop', 'mobile', 'tablet'].includes(e.device.type) || !/^[A-Z]{2}$/.test(e.geo.country)) bad.push(e);
      if (e.event_type === 'purchase') {
        if (e.page_url !== '/checkout' || !/^\d+\.\d\d$/.test(e.metadata.amount ?? '')) bad.push(e);
      } else if (Object.keys(e.metadata).length !== 0) {
        bad.push(e);
      }
    }
    expect(bad.slice(0, 3)).to.deep.equal([]);
    expect([...types.keys()].sort()).to.deep.equal(['click', 'page_view', 'purchase']);
    expect(types.get('page_view')! / options.count).to.be.within(0.55, 0.8);
    expect(types.get('purchase')! / options.count).to.be.within(0.005, 0.03);
  });

  it('keeps a user on one device and in one country', () => {
    const attrs = new Map<string, string>();
    for (const { event: e } of arrivals) {
      const a = `${e.device.type}/${e.geo.country}`;
      expect(attrs.get(e.user_id) ?? a).to.equal(a);
      attrs.set(e.user_id, a);
    }
    expect(attrs.size).to.be.within(400, 500);
  });

  it('has sessions that a 30-minute event-time session window finds exactly', () => {
    const windows = sessionise(
      arrivals.map((a) => ({ user: a.event.user_id, session: a.event.session_id, ts: a.ts })),
      30 * 60_000,
    );
    const perWindow = new Map<string, number>();
    for (const w of windows.values()) perWindow.set(w, (perWindow.get(w) ?? 0) + 1);
    expect(
      [...perWindow.values()].every((n) => n === 1),
      'two session ids in one window',
    ).to.equal(true);
    expect(windows.size).to.be.above(options.count / 12);
    const perUser = new Map<string, Set<string>>();
    for (const { event: e } of arrivals)
      perUser.set(e.user_id, (perUser.get(e.user_id) ?? new Set()).add(e.session_id));
    expect(Math.max(...[...perUser.values()].map((s) => s.size))).to.be.at.least(3);
  });

  it('keeps on-time events within the out-of-orderness bound and late ones beyond it', () => {
    const late = checkDisorder(arrivals, options.maxOutOfOrdernessMs, 60_000, 600_000);
    expect(late / options.count).to.be.closeTo(options.lateFraction, 0.005);
    const inversions = arrivals.filter((a, i) => i > 0 && a.ts < arrivals[i - 1].ts).length;
    expect(inversions).to.be.above(1000);
    const heavy = [
      ...clickstreamArrivals({
        count: 5000,
        seed: 9,
        users: 200,
        maxOutOfOrdernessMs: 10_000,
        lateFraction: 0.3,
        lateByMinMs: 1,
        lateByMaxMs: 5,
      }),
    ];
    expect(checkDisorder(heavy, 10_000, 1, 5)).to.be.within(1300, 1700);
    const inOrder = [...clickstreamArrivals({ count: 3000, seed: 9, lateFraction: 0.05 })];
    checkDisorder(inOrder, 0, 60_000, 600_000);
  });

  it('marks late events and writes epoch-ms timestamps when asked', () => {
    const marked = [...clickstreamArrivals({ ...options, count: 5000, markLate: true, timestampFormat: 'epoch-ms' })];
    for (const a of marked) {
      expect(a.event.late).to.equal(a.late);
      expect(a.event.timestamp).to.equal(a.ts);
    }
    expect(marked.some((a) => a.late)).to.equal(true);
  });

  it('rejects bad options with a SluiceError naming them', () => {
    expect(() => [...clickstream({ users: 0 })]).to.throw(SluiceError, /users/);
    expect(() => [...clickstream({ lateFraction: 2 })]).to.throw(SluiceError, /lateFraction/);
    expect(() => [...clickstream({ timestampFormat: 'unix' as never })]).to.throw(SluiceError, /iso, epoch-ms/);
    expect(() => [...clickstream({ maxOutOfOrdernessMs: -1 })]).to.throw(SluiceError, /maxOutOfOrdernessMs/);
  });
});

describe('gen/disorder', () => {
  it('passes an in-order stream through unchanged without disorder or late events', () => {
    const input = [1, 2, 2, 5, 9, 9, 12];
    expect(
      [...disorder(input, (x) => x, { seed: 1, maxOutOfOrdernessMs: 0, lateFraction: 0 })].map((a) => a.item),
    ).to.deep.equal(input);
  });

  it('delivers every input exactly once', () => {
    const input = Array.from({ length: 5000 }, (_, i) => i * 3);
    const out = [
      ...disorder(input, (x) => x, {
        seed: 2,
        maxOutOfOrdernessMs: 100,
        lateFraction: 0.1,
        lateByMinMs: 10,
        lateByMaxMs: 50,
      }),
    ];
    expect(out.map((a) => a.item).sort((a, b) => a - b)).to.deep.equal(input);
    checkDisorder(out, 100, 10, 50);
  });

  it('classifies late events at the end of the stream by their actual delay', () => {
    // Late candidates near the end cannot be released by a later event; each ends up late (> bound) or on time.
    for (let seed = 0; seed < 20; seed++) {
      const input = Array.from({ length: 300 }, (_, i) => i * 10);
      const out = [
        ...disorder(input, (x) => x, {
          seed,
          maxOutOfOrdernessMs: 50,
          lateFraction: 0.5,
          lateByMinMs: 1,
          lateByMaxMs: 5000,
        }),
      ];
      expect(out).to.have.length(300);
      checkDisorder(out, 50, 1, 5000);
    }
  });

  it('rejects event times that go backwards', () => {
    expect(() => [...disorder([5, 4], (x) => x, { seed: 1, maxOutOfOrdernessMs: 0, lateFraction: 0 })]).to.throw(
      RangeError,
    );
    expect(() => [
      ...disorder([1], (x) => x, { seed: 1, maxOutOfOrdernessMs: 0, lateFraction: 0, lateByMinMs: 0 }),
    ]).to.throw(SluiceError);
  });
});

describe('gen/transactions', () => {
  it('produces customer transactions in sessions separated by more than the gap', () => {
    const arr = [
      ...transactionArrivals({ count: 5000, seed: 4, customers: 100, maxOutOfOrdernessMs: 5000, lateFraction: 0.01 }),
    ];
    expect(arr).to.have.length(5000);
    for (const { transaction: t, ts } of arr.slice(0, 500)) {
      expect(Object.keys(t)).to.deep.equal(['customer_id', 'amount', 'timestamp']);
      expect(t.customer_id).to.match(/^cust-\d{4}$/);
      expect(t.amount).to.be.above(0);
      expect(Math.round(t.amount * 100) / 100).to.equal(t.amount);
      expect(Date.parse(t.timestamp as string)).to.equal(ts);
    }
    const windows = sessionise(
      arr.map((a) => ({ user: a.transaction.customer_id, session: String(a.session), ts: a.ts })),
      5 * 60_000,
    );
    expect(new Set(windows.values()).size).to.equal(windows.size);
    checkDisorder(arr, 5000, 60_000, 600_000);
    expect(JSON.stringify([...transactions({ count: 100, seed: 4 })])).to.equal(
      JSON.stringify([...transactions({ count: 100, seed: 4 })]),
    );
  });
});
