/**
 * Straightforward reference computations of the Nexmark queries over the generator's events as objects:
 * plain loops and maps, written from the queries' definitions (nexmark/nexmark's Flink SQL), to check
 * what sluice computes. The runs read a bounded source to its end, where the watermark moves past every
 * event time: every window and session is closed and emitted, as in a bounded Flink run.
 */
import type { Auction, Bid, NexmarkEvent, Person } from '../../lib/gen/nexmark.js';

export type Row = Record<string, unknown>;

export function bidsOf(events: NexmarkEvent[]): Bid[] {
  return events.flatMap((e) => (e.type === 'bid' ? [e.bid] : []));
}

function floorTo(t: number, size: number): number {
  return t - (((t % size) + size) % size);
}

/** Rows in a canonical order, so results can be compared whatever order the engine emits them in. */
export function sorted(rows: Row[]): Row[] {
  const keyed = rows.map((r) => ({ key: JSON.stringify(r), r }));
  keyed.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  return keyed.map((k) => k.r);
}

export function q0(events: NexmarkEvent[]): Row[] {
  return bidsOf(events).map((b) => ({
    auction: b.auction,
    bidder: b.bidder,
    price: b.price,
    dateTime: new Date(b.dateTime),
    extra: b.extra,
  }));
}

export function q1(events: NexmarkEvent[]): Row[] {
  return bidsOf(events).map((b) => ({
    auction: b.auction,
    bidder: b.bidder,
    price: 0.908 * b.price,
    dateTime: new Date(b.dateTime),
    extra: b.extra,
  }));
}

export function q2(events: NexmarkEvent[]): Row[] {
  return bidsOf(events)
    .filter((b) => b.auction % 123 === 0)
    .map((b) => ({ auction: b.auction, price: b.price }));
}

/** Bids per auction in windows of 10 s sliding by 2 s; per window the auctions with the most bids. */
export function q5(events: NexmarkEvent[]): Row[] {
  const counts = new Map<number, Map<number, number>>();
  for (const b of bidsOf(events)) {
    for (let start = floorTo(b.dateTime, 2000); start > b.dateTime - 10_000; start -= 2000) {
      let perAuction = counts.get(start);
      if (!perAuction) {
        perAuction = new Map();
        counts.set(start, perAuction);
      }
      perAuction.set(b.auction, (perAuction.get(b.auction) ?? 0) + 1);
    }
  }
  const out: Row[] = [];
  for (const [start, perAuction] of counts) {
    const max = Math.max(...perAuction.values());
    for (const [auction, num] of perAuction) if (num === max) out.push({ auction, num, starttime: new Date(start) });
  }
  return out;
}

/** The bids at the highest price of each 10 s tumbling window. */
export function q7(events: NexmarkEvent[]): Row[] {
  const byWindow = new Map<number, Bid[]>();
  for (const b of bidsOf(events)) {
    const start = floorTo(b.dateTime, 10_000);
    let bids = byWindow.get(start);
    if (!bids) {
      bids = [];
      byWindow.set(start, bids);
    }
    bids.push(b);
  }
  const out: Row[] = [];
  for (const bids of byWindow.values()) {
    const max = Math.max(...bids.map((b) => b.price));
    for (const b of bids) {
      if (b.price === max)
        out.push({
          auction: b.auction,
          bidder: b.bidder,
          price: b.price,
          dateTime: new Date(b.dateTime),
          extra: b.extra,
        });
    }
  }
  return out;
}

/** People who registered and opened an auction in the same 10 s tumbling window. */
export function q8(events: NexmarkEvent[]): Row[] {
  const persons = new Map<string, Person>();
  const sellers = new Set<string>();
  for (const e of events) {
    if (e.type === 'person') persons.set(`${floorTo(e.person.dateTime, 10_000)}/${e.person.id}`, e.person);
    else if (e.type === 'auction')
      sellers.add(`${floorTo(e.auction.dateTime, 10_000)}/${(e.auction as Auction).seller}`);
  }
  const out: Row[] = [];
  for (const [key, p] of persons) {
    const start = floorTo(p.dateTime, 10_000);
    if (sellers.has(key)) out.push({ id: p.id, name: p.name, starttime: new Date(start) });
  }
  return out;
}

/** Bids per bidder session (a new session after more than 10 s without bids). */
export function q11(events: NexmarkEvent[]): Row[] {
  const byBidder = new Map<number, number[]>();
  for (const b of bidsOf(events)) {
    let times = byBidder.get(b.bidder);
    if (!times) {
      times = [];
      byBidder.set(b.bidder, times);
    }
    times.push(b.dateTime);
  }
  const out: Row[] = [];
  for (const [bidder, times] of byBidder) {
    times.sort((a, b) => a - b);
    let start = times[0];
    let last = times[0];
    let n = 0;
    const close = (): void => {
      out.push({ bidder, bid_count: n, starttime: new Date(start), endtime: new Date(last + 10_000) });
    };
    for (const t of times) {
      if (t > last + 10_000) {
        close();
        start = t;
        n = 0;
      }
      last = t;
      n++;
    }
    close();
  }
  return out;
}

/**
 * Bids per bidder in 10 s processing-time windows, given each bid's processing time (its batch's time);
 * every window is emitted, the last ones when the input ends.
 */
export function q12(bidsWithTime: { bid: Bid; processingTime: number }[]): Row[] {
  const counts = new Map<string, Row>();
  for (const { bid, processingTime } of bidsWithTime) {
    const start = floorTo(processingTime, 10_000);
    const key = `${start}/${bid.bidder}`;
    const row = counts.get(key) ?? {
      bidder: bid.bidder,
      bid_count: 0,
      starttime: new Date(start),
      endtime: new Date(start + 10_000),
    };
    row.bid_count = (row.bid_count as number) + 1;
    counts.set(key, row);
  }
  return [...counts.values()];
}

/** Every bid with the side input's value of key `auction % 10000` (the side input's value is `side-<key>`). */
export function q13(events: NexmarkEvent[]): Row[] {
  return bidsOf(events).map((b) => ({
    auction: b.auction,
    bidder: b.bidder,
    price: b.price,
    dateTime: new Date(b.dateTime),
    value: `side-${b.auction % 10_000}`,
  }));
}

function personsOf(events: NexmarkEvent[]): Person[] {
  return events.flatMap((e) => (e.type === 'person' ? [e.person] : []));
}

function auctionsOf(events: NexmarkEvent[]): Auction[] {
  return events.flatMap((e) => (e.type === 'auction' ? [e.auction] : []));
}

/** Sellers in Oregon, Idaho or California and their auctions of category 10, all pairs (a join without time bound). */
export function q3(events: NexmarkEvent[]): Row[] {
  const sellers = new Map<number, Person[]>();
  for (const p of personsOf(events)) {
    if (p.state !== 'OR' && p.state !== 'ID' && p.state !== 'CA') continue;
    sellers.set(p.id, [...(sellers.get(p.id) ?? []), p]);
  }
  const out: Row[] = [];
  for (const a of auctionsOf(events)) {
    if (a.category !== 10) continue;
    for (const p of sellers.get(a.seller) ?? []) out.push({ name: p.name, city: p.city, state: p.state, id: a.id });
  }
  return out;
}

/** Bids with their category-10 auction's columns, for bids made during the auction's lifetime. */
export function q20(events: NexmarkEvent[]): Row[] {
  const auctions = new Map<number, Auction>();
  for (const a of auctionsOf(events)) if (a.category === 10) auctions.set(a.id, a);
  const out: Row[] = [];
  for (const b of bidsOf(events)) {
    const a = auctions.get(b.auction);
    if (!a || b.dateTime < a.dateTime || b.dateTime > a.expires) continue;
    out.push({
      auction: b.auction,
      bidder: b.bidder,
      price: b.price,
      channel: b.channel,
      url: b.url,
      dateTime: new Date(b.dateTime),
      extra: b.extra,
      itemName: a.itemName,
      description: a.description,
      initialBid: a.initialBid,
      reserve: a.reserve,
      auctionDateTime: new Date(a.dateTime),
      expires: new Date(a.expires),
      seller: a.seller,
      category: a.category,
      auctionExtra: a.extra,
    });
  }
  return out;
}

/** `yyyy-MM-dd` and `HH:mm` of an event time, in UTC. */
function dayOf(t: number): string {
  return new Date(t).toISOString().slice(0, 10);
}
function minuteOf(t: number): string {
  return new Date(t).toISOString().slice(11, 16);
}

/** Every bid with its day and minute, the folders of the partitioned log. */
export function q10(events: NexmarkEvent[]): Row[] {
  return bidsOf(events).map((b) => ({
    auction: b.auction,
    bidder: b.bidder,
    price: b.price,
    dateTime: new Date(b.dateTime),
    extra: b.extra,
    dt: dayOf(b.dateTime),
    hm: minuteOf(b.dateTime),
  }));
}

/** Bids priced between 1 M and 50 M euros, with the part of the day and the number of 'c' in extra. */
export function q14(events: NexmarkEvent[]): Row[] {
  return bidsOf(events)
    .filter((b) => 0.908 * b.price > 1_000_000 && 0.908 * b.price < 50_000_000)
    .map((b) => {
      const h = new Date(b.dateTime).getUTCHours();
      return {
        auction: b.auction,
        bidder: b.bidder,
        price: 0.908 * b.price,
        bidTimeType: h >= 8 && h <= 18 ? 'dayTime' : h <= 6 || h >= 20 ? 'nightTime' : 'otherTime',
        dateTime: new Date(b.dateTime),
        extra: b.extra,
        c_counts: b.extra.split('c').length - 1,
      };
    });
}

/** Counts of bids, bidders and auctions in total and per price rank, as q15 and q16 report them. */
function rankStatistics(bids: Bid[]): Row {
  const rank = (p: number): number => (p < 10_000 ? 1 : p < 1_000_000 ? 2 : 3);
  const row: Row = {};
  const tiers = [
    (_: Bid) => true,
    (b: Bid) => rank(b.price) === 1,
    (b: Bid) => rank(b.price) === 2,
    (b: Bid) => rank(b.price) === 3,
  ];
  const names = ['total', 'rank1', 'rank2', 'rank3'];
  tiers.forEach((inTier, i) => {
    const mine = bids.filter(inTier);
    row[`${names[i]}_bids`] = mine.length;
    row[`${names[i]}_bidders`] = new Set(mine.map((b) => b.bidder)).size;
    row[`${names[i]}_auctions`] = new Set(mine.map((b) => b.auction)).size;
  });
  return row;
}

function groupBids(bids: Bid[], keyOf: (b: Bid) => string): Map<string, Bid[]> {
  const groups = new Map<string, Bid[]>();
  for (const b of bids) {
    const k = keyOf(b);
    const g = groups.get(k);
    if (g) g.push(b);
    else groups.set(k, [b]);
  }
  return groups;
}

/** Per day: bids, distinct bidders and distinct auctions, in total and per price rank. */
export function q15(events: NexmarkEvent[]): Row[] {
  return [...groupBids(bidsOf(events), (b) => dayOf(b.dateTime))].map(([day, bids]) => ({
    day,
    ...rankStatistics(bids),
  }));
}

/** q15 per channel and day, with the latest minute of the day. */
export function q16(events: NexmarkEvent[]): Row[] {
  return [...groupBids(bidsOf(events), (b) => `${b.channel}/${dayOf(b.dateTime)}`).values()].map((bids) => ({
    channel: bids[0].channel,
    day: dayOf(bids[0].dateTime),
    minute: bids
      .map((b) => minuteOf(b.dateTime))
      .sort()
      .at(-1),
    ...rankStatistics(bids),
  }));
}

/** Per auction and day: bids per price rank and the lowest, highest, average (truncated) and total price. */
export function q17(events: NexmarkEvent[]): Row[] {
  return [...groupBids(bidsOf(events), (b) => `${b.auction}/${dayOf(b.dateTime)}`).values()].map((bids) => {
    const prices = bids.map((b) => b.price);
    const sum = prices.reduce((a, p) => a + p, 0);
    return {
      auction: bids[0].auction,
      day: dayOf(bids[0].dateTime),
      total_bids: bids.length,
      rank1_bids: prices.filter((p) => p < 10_000).length,
      rank2_bids: prices.filter((p) => p >= 10_000 && p < 1_000_000).length,
      rank3_bids: prices.filter((p) => p >= 1_000_000).length,
      min_price: Math.min(...prices),
      max_price: Math.max(...prices),
      avg_price: Math.trunc(sum / bids.length),
      sum_price: sum,
    };
  });
}

/** Orders rows by the values of `fields` in turn, ascending (strings by code unit). */
function byFields(fields: (keyof Bid)[]): (a: Bid, b: Bid) => number {
  return (a, b) => {
    for (const f of fields) {
      if (a[f] < b[f]) return -1;
      if (a[f] > b[f]) return 1;
    }
    return 0;
  };
}

/** Each bidder's latest bid on each auction; bids at the same time: the smaller by price, channel, url, extra. */
export function q18(events: NexmarkEvent[]): Row[] {
  const tie = byFields(['price', 'channel', 'url', 'dateTime', 'extra']);
  return [...groupBids(bidsOf(events), (b) => `${b.bidder}/${b.auction}`).values()].map((bids) => {
    const last = bids.reduce((best, b) =>
      b.dateTime > best.dateTime || (b.dateTime === best.dateTime && tie(b, best) < 0) ? b : best,
    );
    return {
      auction: last.auction,
      bidder: last.bidder,
      price: last.price,
      channel: last.channel,
      url: last.url,
      dateTime: new Date(last.dateTime),
      extra: last.extra,
    };
  });
}

/** Each auction's 10 highest bids, highest first; bids at the same price by bidder, then the other fields. */
export function q19(events: NexmarkEvent[]): Row[] {
  const tie = byFields(['bidder', 'price', 'channel', 'url', 'dateTime', 'extra']);
  return [...groupBids(bidsOf(events), (b) => String(b.auction)).values()].map((bids) => ({
    auction: bids[0].auction,
    top_bids: [...bids]
      .sort((a, b) => b.price - a.price || tie(a, b))
      .slice(0, 10)
      .map((b) => ({
        bidder: b.bidder,
        price: b.price,
        channel: b.channel,
        url: b.url,
        dateTime: new Date(b.dateTime),
        extra: b.extra,
      })),
  }));
}

/** Bids of the four named channels with their number, and bids whose URL has a channel_id, with its value. */
export function q21(events: NexmarkEvent[]): Row[] {
  const named: Record<string, string> = { apple: '0', google: '1', facebook: '2', baidu: '3' };
  return bidsOf(events).flatMap((b) => {
    const fromUrl = /(&|^)channel_id=([^&]*)/.exec(b.url)?.[2] ?? null;
    const id = named[b.channel.toLowerCase()] ?? fromUrl;
    return id === null
      ? []
      : [{ auction: b.auction, bidder: b.bidder, price: b.price, channel: b.channel, channel_id: id }];
  });
}

/** Every bid with the first three directories of its URL (parts 3 to 5 of the URL split at '/', from 0). */
export function q22(events: NexmarkEvent[]): Row[] {
  return bidsOf(events).map((b) => {
    const parts = b.url.split('/');
    return {
      auction: b.auction,
      bidder: b.bidder,
      price: b.price,
      channel: b.channel,
      dir1: parts[3] ?? '',
      dir2: parts[4] ?? '',
      dir3: parts[5] ?? '',
    };
  });
}

/** The last row of each key in an update-mode output: what a table updated by every emitted row holds. */
export function latest(rows: Row[], keys: string[]): Row[] {
  const byKey = new Map<string, Row>();
  for (const r of rows) byKey.set(JSON.stringify(keys.map((k) => r[k])), r);
  return [...byKey.values()];
}

/** Equal-priced bids in the order q9 prefers them: by time, then bidder, then extra. */
function earlier(a: Bid, b: Bid): number {
  if (a.dateTime !== b.dateTime) return a.dateTime - b.dateTime;
  if (a.bidder !== b.bidder) return a.bidder - b.bidder;
  return a.extra < b.extra ? -1 : a.extra > b.extra ? 1 : 0;
}

/** Each auction with its highest bid made during its lifetime, the earliest of equal bids (Flink's q9). */
export function q9(events: NexmarkEvent[]): Row[] {
  const auctions = new Map<number, Auction>();
  for (const a of auctionsOf(events)) auctions.set(a.id, a);
  const winners = new Map<number, Bid>();
  for (const b of bidsOf(events)) {
    const a = auctions.get(b.auction);
    if (!a || b.dateTime < a.dateTime || b.dateTime > a.expires) continue;
    const w = winners.get(a.id);
    if (!w || b.price > w.price || (b.price === w.price && earlier(b, w) < 0)) winners.set(a.id, b);
  }
  return [...winners].map(([id, b]) => {
    const a = auctions.get(id) as Auction;
    return {
      id: a.id,
      itemName: a.itemName,
      description: a.description,
      initialBid: a.initialBid,
      reserve: a.reserve,
      dateTime: new Date(a.dateTime),
      expires: new Date(a.expires),
      seller: a.seller,
      category: a.category,
      extra: a.extra,
      auction: b.auction,
      bidder: b.bidder,
      price: b.price,
      bid_dateTime: new Date(b.dateTime),
      bid_extra: b.extra,
    };
  });
}

/** The average winning price of each category's auctions (Flink's q4). */
export function q4(events: NexmarkEvent[]): Row[] {
  const byCategory = new Map<number, number[]>();
  for (const w of q9(events)) {
    const prices = byCategory.get(w.category as number) ?? [];
    prices.push(w.price as number);
    byCategory.set(w.category as number, prices);
  }
  return [...byCategory].map(([category, prices]) => ({
    category,
    avg_price: prices.reduce((s, p) => s + p, 0) / prices.length,
  }));
}
