import { expect } from 'chai';
import { SluiceError } from '../../lib/errors.js';
import {
  AUCTION,
  BID,
  bidAt,
  NEXMARK_DEFAULTS,
  type NexmarkEvent,
  NexmarkGenerator,
  nexmark,
  nexmarkRecordBatches,
  PERSON,
} from '../../lib/gen/nexmark.js';

function kinds(events: NexmarkEvent[]): Record<string, number> {
  const out: Record<string, number> = { person: 0, auction: 0, bid: 0 };
  for (const e of events) out[e.type]++;
  return out;
}

describe('gen/nexmark', () => {
  const N = 20_000;
  const g = new NexmarkGenerator({ seed: 7 });
  const events = [...g.events(0, N)];

  it('produces persons, auctions and bids in the proportions 1 : 3 : 46', () => {
    expect(kinds(events)).to.deep.equal({ person: N / 50, auction: (3 * N) / 50, bid: (46 * N) / 50 });
    const custom = [
      ...nexmark({ count: 1000, personProportion: 2, auctionProportion: 3, bidProportion: 5, firstEventId: 3 }),
    ];
    expect(kinds(custom)).to.deep.equal({ person: 200, auction: 300, bid: 500 });
    const cols = g.columns(0, 5000);
    expect([cols.person.length, cols.auction.length, cols.bid.length]).to.deep.equal([100, 300, 4600]);
    expect(cols.kind.filter((k) => k === PERSON).length).to.equal(100);
  });

  it('is deterministic per seed, and any range can be generated on its own', () => {
    const again = [...new NexmarkGenerator({ seed: 7 }).events(0, 2000)];
    expect(again).to.deep.equal(events.slice(0, 2000));
    const other = [...new NexmarkGenerator({ seed: 8 }).events(0, 2000)];
    expect(other).to.not.deep.equal(events.slice(0, 2000));
    const pieces = [...g.events(0, 733), ...g.events(733, 1267), ...g.events(2000, 1)];
    expect(pieces).to.deep.equal(events.slice(0, 2001));
    expect([...g.events(12_345, 10)]).to.deep.equal(events.slice(12_345, 12_355));
  });

  it('gives the same events through columns and objects', () => {
    const cols = g.columns(100, 3000);
    const fromCols: NexmarkEvent[] = [];
    let bi = 0;
    for (let i = 0; i < cols.count; i++) {
      if (cols.kind[i] === BID) fromCols.push({ type: 'bid', bid: bidAt(cols.bid, bi++) });
    }
    expect(fromCols).to.deep.equal(events.slice(100, 3100).filter((e) => e.type === 'bid'));
  });

  it('keeps the columns a caller names and writes the others into buffers reused by the next call', () => {
    const keep = { bid: ['auction', 'price'] };
    const first = g.columns(0, 3000, keep);
    const second = g.columns(3000, 2000, keep);
    const whole = [g.columns(0, 3000), g.columns(3000, 2000)];
    [first, second].forEach((cols, k) => {
      expect(cols.bid.auction).to.deep.equal(whole[k].bid.auction);
      expect(cols.bid.price).to.deep.equal(whole[k].bid.price);
    });
    // The last call's other columns hold its values, generated in full: every draw was made.
    const last = (c: typeof second) => Array.from({ length: c.bid.length }, (_, i) => bidAt(c.bid, i));
    expect(last(second)).to.deep.equal(last(whole[1]));
    expect(second.person.extra.data).to.deep.equal(whole[1].person.extra.data);
    // The first call's unkept columns now hold the second call's bytes: they share its buffers.
    expect(first.bid.extra.data.buffer).to.equal(second.bid.extra.data.buffer);
    expect(first.bid.auction.buffer).to.not.equal(second.bid.auction.buffer);
  });

  it('advances event time at the configured rate', () => {
    events.forEach((e, n) => {
      const t = e.type === 'bid' ? e.bid.dateTime : e.type === 'auction' ? e.auction.dateTime : e.person.dateTime;
      expect(t).to.equal(NEXMARK_DEFAULTS.baseTime + Math.floor(n / 10)); // 10 000 events/s: 10 per ms
    });
    const slow = new NexmarkGenerator({ firstEventRate: 250, baseTime: 0 });
    expect(slow.timestampForEvent(1000)).to.equal(4000);
    expect([...slow.events(999, 1)][0]).to.satisfy((e: NexmarkEvent) => e.type === 'bid' && e.bid.dateTime === 3996);
  });

  it('numbers people and auctions densely from 1000 and refers to recent ones, with hot items', () => {
    let persons = 0;
    let auctions = 0;
    let hotAuctionBids = 0;
    let hotBidderBids = 0;
    let hotSellers = 0;
    let bids = 0;
    events.forEach((e, n) => {
      const lastPerson = g.lastBase0PersonId(n);
      const lastAuction = g.lastBase0AuctionId(n);
      if (e.type === 'person') {
        expect(e.person.id).to.equal(1000 + persons++);
        expect(e.person.emailAddress).to.match(/^[a-z ]*@[a-z ]*\.com$/);
        expect(e.person.creditCard).to.match(/^\d{4} \d{4} \d{4} \d{4}$/);
      } else if (e.type === 'auction') {
        const a = e.auction;
        expect(a.id).to.equal(1000 + auctions++);
        expect(a.category).to.be.within(10, 14);
        expect(a.reserve).to.be.at.least(a.initialBid);
        expect(a.expires).to.be.above(a.dateTime);
        expect(a.seller - 1000).to.be.at.most(lastPerson + 10);
        if (a.seller - 1000 === Math.floor(lastPerson / 100) * 100) hotSellers++;
      } else {
        const b = e.bid;
        bids++;
        expect(b.auction - 1000).to.be.within(Math.max(0, lastAuction - 100), lastAuction + 10);
        expect(b.bidder - 1000).to.be.within(Math.max(0, lastPerson + 1 - 1000), lastPerson + 10);
        expect(b.price).to.be.within(100, 100_000_000);
        if (b.auction - 1000 === Math.floor(lastAuction / 100) * 100) hotAuctionBids++;
        if (b.bidder - 1000 === Math.floor(lastPerson / 100) * 100 + 1) hotBidderBids++;
      }
    });
    // Hot with probability 1 − 1/ratio, plus the few random picks that land on the hot item.
    expect(hotAuctionBids / bids).to.be.within(0.49, 0.56);
    expect(hotBidderBids / bids).to.be.within(0.74, 0.77);
    expect(hotSellers / auctions).to.be.within(0.7, 0.8);
  });

  it('pads events with extra to the configured average sizes, and bids carry channels and URLs', () => {
    const bidsOnly = events
      .filter((e) => e.type === 'bid')
      .map((e) => (e as { bid: { extra: string; channel: string; url: string } }).bid);
    const meanExtra = bidsOnly.reduce((s, b) => s + b.extra.length, 0) / bidsOnly.length;
    expect(meanExtra).to.be.closeTo(100 - 32, 1);
    const hot =
      bidsOnly.filter((b) => ['Google', 'Facebook', 'Baidu', 'Apple'].includes(b.channel)).length / bidsOnly.length;
    expect(hot).to.be.closeTo(0.5, 0.02);
    for (const b of bidsOnly.slice(0, 500)) {
      expect(b.url).to.match(
        /^https:\/\/www\.nexmark\.com\/[a-z_]+\/[a-z_]+\/[a-z_]+\/item\.htm\?query=1(&channel_id=\d+)?$/,
      );
      if (!['Google', 'Facebook', 'Baidu', 'Apple'].includes(b.channel)) expect(b.channel).to.match(/^channel-\d+$/);
    }
    const sized = [...nexmark({ count: 500, avgBidByteSize: 200 })].filter((e) => e.type === 'bid');
    const mean200 = sized.reduce((s, e) => s + (e as { bid: { extra: string } }).bid.extra.length, 0) / sized.length;
    expect(mean200).to.be.closeTo(200 - 32, 3);
  });

  it('permutes events within out-of-order groups', () => {
    const ooo = new NexmarkGenerator({ outOfOrderGroupSize: 10 });
    const ids = Array.from({ length: 100 }, (_, n) => ooo.eventId(n));
    expect(ids).to.not.deep.equal(ids.slice().sort((a, b) => a - b));
    for (let group = 0; group < 10; group++) {
      expect(ids.slice(group * 10, group * 10 + 10).sort((a, b) => a - b)).to.deep.equal(
        Array.from({ length: 10 }, (_, i) => group * 10 + i),
      );
    }
    const first = [...ooo.events(0, 50)];
    expect(kinds(first)).to.deep.equal({ person: 1, auction: 3, bid: 46 });
  });

  it('wraps columns as Arrow record batches without copying', () => {
    const cols = g.columns(0, 1000);
    const { person, auction, bid } = nexmarkRecordBatches(cols);
    expect([person.numRows, auction.numRows, bid.numRows]).to.deep.equal([20, 60, 920]);
    const objects = events.slice(0, 1000).flatMap((e) => (e.type === 'bid' ? [e.bid] : []));
    for (const i of [0, 1, 500, 919]) {
      expect(Number(bid.getChild('price')!.get(i))).to.equal(objects[i].price);
      expect(bid.getChild('extra')!.get(i)).to.equal(objects[i].extra);
      expect(Number(bid.getChild('dateTime')!.get(i))).to.equal(objects[i].dateTime);
    }
    expect(bid.getChild('price')!.data[0].values).to.equal(cols.bid.price);
    expect(Number(auction.getChild('id')!.get(59))).to.equal(1059);
    expect(cols.kind.filter((k) => k === AUCTION).length).to.equal(60);
  });

  it('rejects invalid configurations with a SluiceError', () => {
    expect(() => new NexmarkGenerator({ bidProportion: 0 })).to.throw(SluiceError, /bidProportion/);
    expect(() => new NexmarkGenerator({ firstEventRate: -5 })).to.throw(SluiceError, /firstEventRate/);
    expect(() => g.columns(-1, 5)).to.throw(SluiceError);
  });
});
