import { type DataType, Field, Int64, type RecordBatch, Schema, TimestampMillisecond, Utf8 } from 'apache-arrow';
import { batchOf } from '../arrow/batch-ops.js';
import { mkData } from '../arrow/columns.js';
import { badOption, DEFAULT_START_TIME, withDefaults } from './common.js';
import { hashString, mix32, Random, type Seed, seedHash } from './random.js';
import { asciiAt, type ByteString, byteString, type Utf8Column, Utf8ColumnBuilder } from './utf8.js';

/**
 * The Nexmark event generator (online auctions: Person, Auction and Bid events), following the rules of
 * the reference generator in the nexmark/nexmark repository (nexmark-flink `NexmarkConfiguration`,
 * `GeneratorConfig`, `NexmarkGenerator` and the Person/Auction/Bid/Price/Strings generators, which
 * derive from Apache Beam's Nexmark suite):
 *
 * - event `n` has id `firstEventId + adjusted(n)`; `id % 50` picks its kind: 0 person, 1–3 auction,
 *   4–49 bid (proportions 1 : 3 : 46, configurable);
 * - event time is `baseTime + floor(floor(adjusted(n) × interEventDelayUs) / 1000)` with
 *   `interEventDelayUs = 10^6 / firstEventRate`, so event time advances at the configured rate;
 *   `adjusted(n)` permutes events within groups of `outOfOrderGroupSize` (1: in order);
 * - person ids and auction ids are dense from 1000, derived from the event id (`lastBase0PersonId`,
 *   `lastBase0AuctionId`); references choose among the `numActivePeople` most recent people and the
 *   `numInFlightAuctions` most recent auctions plus a lead of 10 not-yet-created ids;
 * - hot items: a bid goes to a hot auction with probability 1 − 1/hotAuctionRatio (the first auction of
 *   the last block of 100), by a hot bidder with 1 − 1/hotBiddersRatio (the second person of the last
 *   block of 100); an auction has a hot seller with 1 − 1/hotSellersRatio (the first person of the block);
 * - prices are `round(10^(6u) × 100)`; auctions expire after a random length averaging the time until
 *   `numInFlightAuctions` more auctions exist; `extra` pads events to avgPerson/Auction/BidByteSize;
 *   bids carry a channel and URL (half from 4 hot channels, half from 10 000 numbered ones).
 *
 * Determinism: the reference draws from an unseeded `java.util.Random` (Beam's seeds it with the event
 * id). Here each event's randomness is a PRNG seeded from (seed, event id), so any range of events can be
 * generated on its own, by any thread, and always comes out the same: a source reads (start, end] ranges.
 *
 * Simplifications, all documented: a single generator timeline (`numEventGenerators` = 1; parallel
 * readers split the id range instead), a constant rate (no rate shapes), no extended-bid mode and no side
 * input; the hot channels' URLs derive from the seed instead of a per-JVM random; the bidder id gets
 * FIRST_PERSON_ID once (one version of the reference adds it twice, a bug); random strings draw one
 * 32-bit value per character, so values differ from Java's for the same seed while the distributions
 * (lengths, 1/13 spaces, letters) are the reference's; `extra` has the reference's length distribution
 * but its letters are cut from a per-seed pool of random letters (it is padding; see nextExtra).
 */
export interface NexmarkOptions {
  /** PRNG seed: the same seed and options give the same events. Default 0. */
  seed?: Seed;
  /** Event-time rate, events per second: event time advances 1/rate s per event. Default 10 000. */
  firstEventRate?: number;
  /** Event time of event 0, epoch ms. Default 2024-01-01T00:00:00Z (the reference uses the wall clock). */
  baseTime?: number;
  /** Id of event number 0 (ids are used to derive kinds, person and auction ids). Default 0. */
  firstEventId?: number;
  /** Relative share of person events. Default 1. */
  personProportion?: number;
  /** Relative share of auction events. Default 3. */
  auctionProportion?: number;
  /** Relative share of bid events. Default 46. */
  bidProportion?: number;
  /** Average byte size a person is padded to with `extra`. Default 200. */
  avgPersonByteSize?: number;
  /** Average byte size an auction is padded to with `extra`. Default 500. */
  avgAuctionByteSize?: number;
  /** Average byte size a bid is padded to with `extra`. Default 100. */
  avgBidByteSize?: number;
  /** A bid is for a hot auction with probability 1 − 1/hotAuctionRatio. Default 2. */
  hotAuctionRatio?: number;
  /** An auction has a hot seller with probability 1 − 1/hotSellersRatio. Default 4. */
  hotSellersRatio?: number;
  /** A bid is by a hot bidder with probability 1 − 1/hotBiddersRatio. Default 4. */
  hotBiddersRatio?: number;
  /** Average number of auctions in flight (the window bids and auction lengths refer to). Default 100. */
  numInFlightAuctions?: number;
  /** Number of most recent people considered active for bids and auctions. Default 1 000. */
  numActivePeople?: number;
  /** Events are permuted within groups of this many (1: in event-time order). Default 1. */
  outOfOrderGroupSize?: number;
}

/** The defaults of {@link NexmarkOptions} (the reference's `NexmarkConfiguration` defaults). */
export const NEXMARK_DEFAULTS = {
  seed: 0,
  firstEventRate: 10_000,
  baseTime: DEFAULT_START_TIME,
  firstEventId: 0,
  personProportion: 1,
  auctionProportion: 3,
  bidProportion: 46,
  avgPersonByteSize: 200,
  avgAuctionByteSize: 500,
  avgBidByteSize: 100,
  hotAuctionRatio: 2,
  hotSellersRatio: 4,
  hotBiddersRatio: 4,
  numInFlightAuctions: 100,
  numActivePeople: 1_000,
  outOfOrderGroupSize: 1,
} satisfies Required<NexmarkOptions>;

/** A new person (seller or bidder). `dateTime` is epoch ms. */
export interface Person {
  id: number;
  name: string;
  emailAddress: string;
  creditCard: string;
  city: string;
  state: string;
  dateTime: number;
  extra: string;
}
/** A new auction; `initialBid` and `reserve` are in cents, `dateTime` and `expires` epoch ms. */
export interface Auction {
  id: number;
  itemName: string;
  description: string;
  initialBid: number;
  reserve: number;
  dateTime: number;
  expires: number;
  seller: number;
  category: number;
  extra: string;
}
/** A bid on an auction; `price` in cents, `dateTime` epoch ms. */
export interface Bid {
  auction: number;
  bidder: number;
  price: number;
  channel: string;
  url: string;
  dateTime: number;
  extra: string;
}
/** One Nexmark event, tagged by kind. */
export type NexmarkEvent =
  | { type: 'person'; person: Person }
  | { type: 'auction'; auction: Auction }
  | { type: 'bid'; bid: Bid };

/** Event kinds as stored in {@link NexmarkColumns.kind}. */
export const PERSON = 0;
export const AUCTION = 1;
export const BID = 2;

/** Person columns; int64 values (ids, epoch-ms times) are in BigInt64Arrays ready for Arrow. */
export interface PersonColumns {
  length: number;
  id: BigInt64Array;
  name: Utf8Column;
  emailAddress: Utf8Column;
  creditCard: Utf8Column;
  city: Utf8Column;
  state: Utf8Column;
  dateTime: BigInt64Array;
  extra: Utf8Column;
}
/** Auction columns. */
export interface AuctionColumns {
  length: number;
  id: BigInt64Array;
  itemName: Utf8Column;
  description: Utf8Column;
  initialBid: BigInt64Array;
  reserve: BigInt64Array;
  dateTime: BigInt64Array;
  expires: BigInt64Array;
  seller: BigInt64Array;
  category: BigInt64Array;
  extra: Utf8Column;
}
/** Bid columns. */
export interface BidColumns {
  length: number;
  auction: BigInt64Array;
  bidder: BigInt64Array;
  price: BigInt64Array;
  channel: Utf8Column;
  url: Utf8Column;
  dateTime: BigInt64Array;
  extra: Utf8Column;
}
/**
 * Events `first .. first + count − 1` as columns, one table per kind, each in event order. `kind[i]` is
 * the kind of event `first + i` ({@link PERSON}, {@link AUCTION}, {@link BID}), which restores the interleaving.
 */
export interface NexmarkColumns {
  first: number;
  count: number;
  kind: Uint8Array;
  person: PersonColumns;
  auction: AuctionColumns;
  bid: BidColumns;
}

/**
 * The columns of each kind that a caller of {@link NexmarkGenerator.columns} keeps, by field name; a kind
 * left out keeps none. The other columns are generated all the same (same values, same random draws) into
 * buffers the generator reuses, so they are only valid until its next call.
 */
export type NexmarkColumnSelection = Partial<Record<'person' | 'auction' | 'bid', readonly string[]>>;

const FIRST_PERSON_ID = 1000;
const FIRST_AUCTION_ID = 1000;
const FIRST_CATEGORY_ID = 10;
const NUM_CATEGORIES = 5;
const PERSON_ID_LEAD = 10;
const AUCTION_ID_LEAD = 10;
const HOT_BLOCK = 100;
const HOT_CHANNELS_RATIO = 2;
const CHANNELS_NUMBER = 10_000;
const MIN_STRING_LENGTH = 3;
const SPACE = 32;
const TWO_POW_32 = 4294967296;

const US_STATES = 'AZ,CA,ID,OR,WA,WY'.split(',').map((x) => byteString(x));
const US_CITIES = 'Phoenix,Los Angeles,San Francisco,Boise,Portland,Bend,Redmond,Seattle,Kent,Cheyenne'
  .split(',')
  .map((x) => byteString(x));
const FIRST_NAMES = 'Peter,Paul,Luke,John,Saul,Vicky,Kate,Julie,Sarah,Deiter,Walter'
  .split(',')
  .map((x) => byteString(x));
const LAST_NAMES = 'Shultz,Abrams,Spencer,White,Bartels,Walton,Smith,Jones,Noris'.split(',').map((x) => byteString(x));
const HOT_CHANNELS = ['Google', 'Facebook', 'Baidu', 'Apple'];
const DOT_COM = byteString('.com');
const URL_PREFIX = 'https://www.nexmark.com/';
const URL_SUFFIX = '/item.htm?query=1';

if (new Uint8Array(new Uint16Array([1]).buffer)[0] !== 1) {
  throw new Error(
    'the Nexmark column generator writes int64 values as little-endian words and needs a little-endian CPU',
  );
}

/** A BigInt64Array and an Int32Array alias of it: int64 values are written as two words, no BigInt per value. */
function int64Column(n: number): { values: BigInt64Array; words: Int32Array } {
  const values = new BigInt64Array(n);
  return { values, words: new Int32Array(values.buffer) };
}

/** The first `n` values of an int64 column (a scratch column is longer than one call's values). */
function int64Values(col: { values: BigInt64Array }, n: number): BigInt64Array {
  return col.values.length === n ? col.values : col.values.subarray(0, n);
}

/** Writes non-negative integer `v` (< 2^53) at index `i` of an int64 column's word alias. */
function setI64(words: Int32Array, i: number, v: number): void {
  words[2 * i] = v >>> 0;
  words[2 * i + 1] = Math.floor(v / TWO_POW_32);
}

/** ASCII strings as one byte string and `length + 1` offsets. */
function stringTable(values: string[]): { strings: ByteString; offsets: Int32Array } {
  const offsets = new Int32Array(values.length + 1);
  values.forEach((v, i) => {
    offsets[i + 1] = offsets[i] + v.length;
  });
  return { strings: byteString(values.join('')), offsets };
}

/** Java's Integer.reverse on a non-negative int, then Math.abs. */
function absReverse32(x: number): number {
  let v = x >>> 0;
  let r = 0;
  for (let i = 0; i < 32; i++) {
    r = (r << 1) | (v & 1);
    v >>>= 1;
  }
  return Math.abs(r | 0);
}

/** The Nexmark generator for one configuration (see the module comment for the rules). */
export class NexmarkGenerator {
  /** The resolved configuration. */
  readonly config: Readonly<Required<NexmarkOptions>>;
  private readonly totalProportion: number;
  private readonly interEventDelayUs: number;
  private readonly seedWord: number;
  private readonly scratch = new ScratchColumns();
  /** Letters the `extra` padding is cut from (derived from the seed). */
  readonly letters: ByteString;
  /**
   * Channel names and URLs: entries 0 … 9 999 are the numbered channels, 10 000 … 10 003 the hot ones.
   * Each table is one contiguous byte string with offsets, so copying a random entry stays in cache.
   */
  readonly channelNames: { strings: ByteString; offsets: Int32Array };
  /** The URL of each channel, indexed like {@link channelNames}. */
  readonly channelUrls: { strings: ByteString; offsets: Int32Array };

  constructor(options: NexmarkOptions = {}) {
    const c = withDefaults<NexmarkOptions>(NEXMARK_DEFAULTS, options);
    for (const k of [
      'personProportion',
      'auctionProportion',
      'bidProportion',
      'hotAuctionRatio',
      'hotSellersRatio',
      'hotBiddersRatio',
      'numInFlightAuctions',
      'numActivePeople',
      'outOfOrderGroupSize',
    ] as const) {
      if (!Number.isSafeInteger(c[k]) || c[k] < 1)
        throw badOption(`nexmark ${k} must be a positive integer, got ${c[k]}`);
    }
    for (const k of ['avgPersonByteSize', 'avgAuctionByteSize', 'avgBidByteSize', 'firstEventId'] as const) {
      if (!Number.isSafeInteger(c[k]) || c[k] < 0)
        throw badOption(`nexmark ${k} must be a non-negative integer, got ${c[k]}`);
    }
    if (!(c.firstEventRate > 0) || !Number.isFinite(c.firstEventRate)) {
      throw badOption(`nexmark firstEventRate must be a positive number of events per second, got ${c.firstEventRate}`);
    }
    if (!Number.isFinite(c.baseTime)) throw badOption(`nexmark baseTime must be epoch milliseconds, got ${c.baseTime}`);
    this.config = Object.freeze(c);
    this.totalProportion = c.personProportion + c.auctionProportion + c.bidProportion;
    this.interEventDelayUs = 1_000_000 / c.firstEventRate;
    this.seedWord = seedHash(c.seed);
    this.letters = letterPool(this.seedWord);
    const names: string[] = [];
    const urls: string[] = [];
    const r = new Random(0);
    for (let n = 0; n < CHANNELS_NUMBER; n++) {
      r.reseed(this.seedWord ^ hashString('channel'), n);
      const url = this.baseUrl(r);
      names.push(`channel-${n}`);
      urls.push(r.int(10) > 0 ? `${url}&channel_id=${absReverse32(n)}` : url);
    }
    HOT_CHANNELS.forEach((name, h) => {
      names.push(name);
      urls.push(this.baseUrl(r.reseed(this.seedWord ^ hashString('hot-url'), h)));
    });
    this.channelNames = stringTable(names);
    this.channelUrls = stringTable(urls);
  }

  /** Event number `n` after the out-of-order permutation (the reference's `nextAdjustedEventNumber`). */
  adjustedEventNumber(n: number): number {
    const m = this.config.outOfOrderGroupSize;
    if (m === 1) return n;
    return Math.floor(n / m) * m + ((n * 953) % m);
  }

  /** Event time of the event with (adjusted) event number `n`, epoch ms. */
  timestampForEvent(n: number): number {
    return this.config.baseTime + Math.floor(Math.floor(n * this.interEventDelayUs) / 1000);
  }

  /** Event id of event number `n`. */
  eventId(n: number): number {
    return this.config.firstEventId + this.adjustedEventNumber(n);
  }

  /** Kind ({@link PERSON}, {@link AUCTION}, {@link BID}) of event number `n`. */
  kindOf(n: number): number {
    const rem = this.eventId(n) % this.totalProportion;
    const c = this.config;
    return rem < c.personProportion ? PERSON : rem < c.personProportion + c.auctionProportion ? AUCTION : BID;
  }

  /** The last person id (base 0) that exists at event `eventId`. */
  lastBase0PersonId(eventId: number): number {
    const epoch = Math.floor(eventId / this.totalProportion);
    let offset = eventId % this.totalProportion;
    if (offset >= this.config.personProportion) offset = this.config.personProportion - 1;
    return epoch * this.config.personProportion + offset;
  }

  /** The last auction id (base 0) that exists at event `eventId` (−1 before the first auction). */
  lastBase0AuctionId(eventId: number): number {
    const c = this.config;
    let epoch = Math.floor(eventId / this.totalProportion);
    let offset = eventId % this.totalProportion;
    if (offset < c.personProportion) {
      epoch--;
      offset = c.auctionProportion - 1;
    } else if (offset >= c.personProportion + c.auctionProportion) {
      offset = c.auctionProportion - 1;
    } else {
      offset -= c.personProportion;
    }
    return epoch * c.auctionProportion + offset;
  }

  /** A random person id (base 0) among the active people plus a lead of not-yet-created ones. */
  nextBase0PersonId(eventId: number, rng: Random): number {
    const numPeople = this.lastBase0PersonId(eventId) + 1;
    const active = Math.min(numPeople, this.config.numActivePeople);
    return numPeople - active + rng.int(active + PERSON_ID_LEAD);
  }

  /** A random auction id (base 0) among those likely in flight plus a lead of not-yet-created ones. */
  nextBase0AuctionId(eventId: number, rng: Random): number {
    const maxAuction = this.lastBase0AuctionId(eventId);
    const minAuction = Math.max(maxAuction - this.config.numInFlightAuctions, 0);
    return minAuction + rng.int(maxAuction - minAuction + 1 + AUCTION_ID_LEAD);
  }

  private baseUrl(rng: Random): string {
    const part = (): string => {
      const len = MIN_STRING_LENGTH + rng.int(5 - MIN_STRING_LENGTH);
      let s = '';
      for (let k = 0; k < len; k++) {
        const u = rng.int32();
        s += ((u & 0xffff) * 13) >>> 16 === 0 ? '_' : String.fromCharCode(97 + (((u >>> 16) * 26) >>> 16));
      }
      return s;
    };
    return `${URL_PREFIX}${part()}/${part()}/${part()}${URL_SUFFIX}`;
  }

  /** Reseeds `rng` for the event with id `eventId`: every event's randomness depends on (seed, id) only. */
  seedEvent(rng: Random, eventId: number): void {
    rng.reseed(this.seedWord ^ mix32(Math.floor(eventId / TWO_POW_32)), eventId >>> 0);
  }

  /**
   * Generates events `first .. first + count − 1` straight into columns (the fast path for a columnar engine).
   * With `keep`, only the columns it names get buffers of their own; the rest are written into this
   * generator's scratch buffers, which its next call overwrites (see {@link NexmarkColumnSelection}).
   */
  columns(first: number, count: number, keep?: NexmarkColumnSelection): NexmarkColumns {
    if (!Number.isSafeInteger(first) || first < 0)
      throw badOption(`the first Nexmark event must be a non-negative integer, got ${first}`);
    if (!Number.isSafeInteger(count) || count < 0)
      throw badOption(`the Nexmark event count must be a non-negative integer, got ${count}`);
    const kind = new Uint8Array(count);
    let persons = 0;
    let auctions = 0;
    for (let i = 0; i < count; i++) {
      const k = this.kindOf(first + i);
      kind[i] = k;
      if (k === PERSON) persons++;
      else if (k === AUCTION) auctions++;
    }
    const filler = new ColumnFiller(this, persons, auctions, count - persons - auctions, keep, this.scratch);
    for (let i = 0; i < count; i++) {
      const adjusted = this.adjustedEventNumber(first + i);
      const k = kind[i];
      if (k === BID) filler.bid(adjusted);
      else if (k === AUCTION) filler.auction(adjusted);
      else filler.person(adjusted);
    }
    return { first, count, kind, ...filler.finish() };
  }

  /**
   * Events `first .. first + count − 1` as objects, in event order. They are read from {@link columns}
   * in chunks, so both paths give identical events.
   */
  *events(first = 0, count = Infinity, chunk = 4096): Generator<NexmarkEvent> {
    for (let start = first; start - first < count; start += chunk) {
      const n = Math.min(chunk, count - (start - first));
      const cols = this.columns(start, n);
      let pi = 0;
      let ai = 0;
      let bi = 0;
      for (let i = 0; i < n; i++) {
        const k = cols.kind[i];
        if (k === BID) yield { type: 'bid', bid: bidAt(cols.bid, bi++) };
        else if (k === AUCTION) yield { type: 'auction', auction: auctionAt(cols.auction, ai++) };
        else yield { type: 'person', person: personAt(cols.person, pi++) };
      }
    }
  }
}

/** Appends a random string of 3 … maxLength−1 characters (letters, 1 in 13 a space), trimmed of spaces. */
function nextString(rng: Random, b: Utf8ColumnBuilder, maxLength: number): void {
  const len = MIN_STRING_LENGTH + rng.int(maxLength - MIN_STRING_LENGTH);
  const buf = b.reserve(len);
  const start = b.pos;
  let p = start;
  for (let k = 0; k < len; k++) {
    const u = rng.int32();
    buf[p++] = ((u & 0xffff) * 13) >>> 16 === 0 ? SPACE : 97 + (((u >>> 16) * 26) >>> 16);
  }
  let s = start;
  while (s < p && buf[s] === SPACE) s++;
  let e = p;
  while (e > s && buf[e - 1] === SPACE) e--;
  if (s > start) buf.copyWithin(start, s, e);
  b.pos = start + (e - s);
}

/** Size of the per-generator pool of random letters that `extra` values are cut from. */
const LETTER_POOL_BYTES = 1 << 16;

/** Random lowercase letters for the `extra` padding of one generator, derived from its seed. */
function letterPool(seedWord: number): ByteString {
  const rng = new Random(0).reseed(seedWord ^ hashString('letters'));
  const pool = new Uint8Array(LETTER_POOL_BYTES);
  for (let i = 0; i < pool.length; i++) pool[i] = 97 + ((rng.uint16() * 26) >>> 16);
  return byteString(pool);
}

/**
 * Appends padding so that `currentSize` plus its length averages `averageSize` (the reference's
 * nextExtra for the length). The letters are a slice of the generator's letter pool at a random offset
 * rather than fresh random letters: `extra` is padding no query reads, and one copy is several times
 * cheaper than drawing every letter.
 */
function nextExtra(
  rng: Random,
  b: Utf8ColumnBuilder,
  currentSize: number,
  averageSize: number,
  pool: ByteString,
): void {
  if (currentSize > averageSize) return;
  const desired = averageSize - currentSize;
  const delta = Math.round(desired * 0.2);
  let size = desired - delta + (delta === 0 ? 0 : rng.int(2 * delta));
  while (size > 0) {
    const n = Math.min(size, LETTER_POOL_BYTES);
    const off = rng.int(LETTER_POOL_BYTES - n + 1);
    b.putRange(pool, off, off + n);
    size -= n;
  }
}

const LN_10_POW_6 = 6 * Math.LN10;

/** A price in cents: 10^(6u) × 100, i.e. 1 $ … 1 000 000 $, log-uniform (exp is twice as fast as pow in V8). */
function nextPrice(rng: Random): number {
  return Math.round(Math.exp(rng.float() * LN_10_POW_6) * 100);
}

/** An int64 column being filled: the values and their 32-bit word alias. */
interface Int64Column {
  values: BigInt64Array;
  words: Int32Array;
}

/**
 * The buffers of the columns a caller does not keep, by kind and field, reused by every call of one
 * generator. They die as soon as the caller has picked its columns, and a JVM generator's strings for them
 * would live in a young generation that is reused the same way; writing into pages already touched is many
 * times cheaper than into fresh ones.
 */
class ScratchColumns {
  private readonly utf8 = new Map<string, Utf8ColumnBuilder>();
  private readonly int64 = new Map<string, Int64Column>();

  utf8Column(name: string, values: number, bytesPerValue: number): Utf8ColumnBuilder {
    let b = this.utf8.get(name);
    if (b) return b.restart(values, bytesPerValue);
    b = new Utf8ColumnBuilder(values, bytesPerValue);
    this.utf8.set(name, b);
    return b;
  }

  int64Column(name: string, values: number): Int64Column {
    let c = this.int64.get(name);
    if (!c || c.values.length < values) {
      c = int64Column(values);
      this.int64.set(name, c);
    }
    return c;
  }
}

/** Fills the columns of one {@link NexmarkGenerator.columns} call, one method per event kind. */
class ColumnFiller {
  private readonly rng = new Random(0);
  private readonly c: Readonly<Required<NexmarkOptions>>;
  private readonly pool: ByteString;
  private readonly numEventsForAuctions: number;
  private pi = 0;
  private ai = 0;
  private bi = 0;
  private readonly pId;
  private readonly pName;
  private readonly pEmail;
  private readonly pCard;
  private readonly pCity;
  private readonly pState;
  private readonly pTime;
  private readonly pExtra;
  private readonly aId;
  private readonly aName;
  private readonly aDesc;
  private readonly aInitial;
  private readonly aReserve;
  private readonly aTime;
  private readonly aExpires;
  private readonly aSeller;
  private readonly aCategory;
  private readonly aExtra;
  private readonly bAuction;
  private readonly bBidder;
  private readonly bPrice;
  private readonly bChannel;
  private readonly bUrl;
  private readonly bTime;
  private readonly bExtra;

  constructor(
    private readonly g: NexmarkGenerator,
    persons: number,
    auctions: number,
    bids: number,
    keep: NexmarkColumnSelection | undefined,
    scratch: ScratchColumns,
  ) {
    const c = g.config;
    this.c = c;
    this.pool = g.letters;
    this.numEventsForAuctions = Math.floor(
      (c.numInFlightAuctions * (c.personProportion + c.auctionProportion + c.bidProportion)) / c.auctionProportion,
    );
    const kept = (kind: keyof NexmarkColumnSelection, field: string): boolean =>
      keep === undefined || keep[kind]?.includes(field) === true;
    const utf8 = (kind: keyof NexmarkColumnSelection, field: string, n: number, bytesPerValue: number) =>
      kept(kind, field)
        ? new Utf8ColumnBuilder(n, bytesPerValue)
        : scratch.utf8Column(`${kind}.${field}`, n, bytesPerValue);
    const int64 = (kind: keyof NexmarkColumnSelection, field: string, n: number) =>
      kept(kind, field) ? int64Column(n) : scratch.int64Column(`${kind}.${field}`, n);
    this.pId = int64('person', 'id', persons);
    this.pName = utf8('person', 'name', persons, 12);
    this.pEmail = utf8('person', 'emailAddress', persons, 12);
    this.pCard = utf8('person', 'creditCard', persons, 19);
    this.pCity = utf8('person', 'city', persons, 9);
    this.pState = utf8('person', 'state', persons, 2);
    this.pTime = int64('person', 'dateTime', persons);
    this.pExtra = utf8('person', 'extra', persons, Math.max(0, c.avgPersonByteSize - 60));
    this.aId = int64('auction', 'id', auctions);
    this.aName = utf8('auction', 'itemName', auctions, 11);
    this.aDesc = utf8('auction', 'description', auctions, 51);
    this.aInitial = int64('auction', 'initialBid', auctions);
    this.aReserve = int64('auction', 'reserve', auctions);
    this.aTime = int64('auction', 'dateTime', auctions);
    this.aExpires = int64('auction', 'expires', auctions);
    this.aSeller = int64('auction', 'seller', auctions);
    this.aCategory = int64('auction', 'category', auctions);
    this.aExtra = utf8('auction', 'extra', auctions, Math.max(0, c.avgAuctionByteSize - 100));
    this.bAuction = int64('bid', 'auction', bids);
    this.bBidder = int64('bid', 'bidder', bids);
    this.bPrice = int64('bid', 'price', bids);
    this.bChannel = utf8('bid', 'channel', bids, 10);
    this.bUrl = utf8('bid', 'url', bids, 70);
    this.bTime = int64('bid', 'dateTime', bids);
    this.bExtra = utf8('bid', 'extra', bids, Math.max(0, c.avgBidByteSize - 32));
  }

  bid(adjusted: number): void {
    const { g, c, rng } = this;
    const eventId = c.firstEventId + adjusted;
    g.seedEvent(rng, eventId);
    const i = this.bi++;
    let auction: number;
    if (rng.int(c.hotAuctionRatio) > 0) auction = Math.floor(g.lastBase0AuctionId(eventId) / HOT_BLOCK) * HOT_BLOCK;
    else auction = g.nextBase0AuctionId(eventId, rng);
    let bidder: number;
    if (rng.int(c.hotBiddersRatio) > 0) bidder = Math.floor(g.lastBase0PersonId(eventId) / HOT_BLOCK) * HOT_BLOCK + 1;
    else bidder = g.nextBase0PersonId(eventId, rng);
    setI64(this.bAuction.words, i, auction + FIRST_AUCTION_ID);
    setI64(this.bBidder.words, i, bidder + FIRST_PERSON_ID);
    setI64(this.bPrice.words, i, nextPrice(rng));
    const channel =
      rng.int(HOT_CHANNELS_RATIO) > 0 ? CHANNELS_NUMBER + rng.int(HOT_CHANNELS.length) : rng.int(CHANNELS_NUMBER);
    const names = g.channelNames;
    const urls = g.channelUrls;
    this.bChannel.putRange(names.strings, names.offsets[channel], names.offsets[channel + 1]);
    this.bUrl.putRange(urls.strings, urls.offsets[channel], urls.offsets[channel + 1]);
    this.bChannel.end();
    this.bUrl.end();
    setI64(this.bTime.words, i, g.timestampForEvent(adjusted));
    nextExtra(rng, this.bExtra, 32, c.avgBidByteSize, this.pool);
    this.bExtra.end();
  }

  auction(adjusted: number): void {
    const { g, c, rng } = this;
    const eventId = c.firstEventId + adjusted;
    g.seedEvent(rng, eventId);
    const i = this.ai++;
    const ts = g.timestampForEvent(adjusted);
    let seller: number;
    if (rng.int(c.hotSellersRatio) > 0) seller = Math.floor(g.lastBase0PersonId(eventId) / HOT_BLOCK) * HOT_BLOCK;
    else seller = g.nextBase0PersonId(eventId, rng);
    const category = FIRST_CATEGORY_ID + rng.int(NUM_CATEGORIES);
    const initialBid = nextPrice(rng);
    const horizon = g.timestampForEvent(adjusted + this.numEventsForAuctions) - ts;
    const expires = ts + 1 + rng.int(Math.max(horizon * 2, 1));
    nextString(rng, this.aName, 20);
    const nameLength = this.aName.currentLength();
    this.aName.end();
    nextString(rng, this.aDesc, 100);
    const descLength = this.aDesc.currentLength();
    this.aDesc.end();
    const reserve = initialBid + nextPrice(rng);
    nextExtra(rng, this.aExtra, 8 + nameLength + descLength + 40, c.avgAuctionByteSize, this.pool);
    this.aExtra.end();
    setI64(this.aId.words, i, g.lastBase0AuctionId(eventId) + FIRST_AUCTION_ID);
    setI64(this.aInitial.words, i, initialBid);
    setI64(this.aReserve.words, i, reserve);
    setI64(this.aTime.words, i, ts);
    setI64(this.aExpires.words, i, expires);
    setI64(this.aSeller.words, i, seller + FIRST_PERSON_ID);
    setI64(this.aCategory.words, i, category);
  }

  person(adjusted: number): void {
    const { g, c, rng } = this;
    const eventId = c.firstEventId + adjusted;
    g.seedEvent(rng, eventId);
    const i = this.pi++;
    setI64(this.pId.words, i, g.lastBase0PersonId(eventId) + FIRST_PERSON_ID);
    const name = this.pName;
    name.put(FIRST_NAMES[rng.int(FIRST_NAMES.length)]);
    name.putByte(SPACE);
    name.put(LAST_NAMES[rng.int(LAST_NAMES.length)]);
    let size = 8 + name.currentLength();
    name.end();
    const email = this.pEmail;
    nextString(rng, email, 7);
    email.putByte(64);
    nextString(rng, email, 5);
    email.put(DOT_COM);
    size += email.currentLength();
    email.end();
    const card = this.pCard.reserve(19);
    let p = this.pCard.pos;
    for (let grp = 0; grp < 4; grp++) {
      if (grp > 0) card[p++] = SPACE;
      const v = rng.int(10000);
      card[p++] = 48 + Math.floor(v / 1000);
      card[p++] = 48 + (Math.floor(v / 100) % 10);
      card[p++] = 48 + (Math.floor(v / 10) % 10);
      card[p++] = 48 + (v % 10);
    }
    this.pCard.pos = p;
    this.pCard.end();
    const city = US_CITIES[rng.int(US_CITIES.length)];
    this.pCity.put(city);
    this.pCity.end();
    const state = US_STATES[rng.int(US_STATES.length)];
    this.pState.put(state);
    this.pState.end();
    nextExtra(rng, this.pExtra, size + 19 + city.bytes.length + state.bytes.length, c.avgPersonByteSize, this.pool);
    this.pExtra.end();
    setI64(this.pTime.words, i, g.timestampForEvent(adjusted));
  }

  finish(): { person: PersonColumns; auction: AuctionColumns; bid: BidColumns } {
    return {
      person: {
        length: this.pi,
        id: int64Values(this.pId, this.pi),
        name: this.pName.finish(),
        emailAddress: this.pEmail.finish(),
        creditCard: this.pCard.finish(),
        city: this.pCity.finish(),
        state: this.pState.finish(),
        dateTime: int64Values(this.pTime, this.pi),
        extra: this.pExtra.finish(),
      },
      auction: {
        length: this.ai,
        id: int64Values(this.aId, this.ai),
        itemName: this.aName.finish(),
        description: this.aDesc.finish(),
        initialBid: int64Values(this.aInitial, this.ai),
        reserve: int64Values(this.aReserve, this.ai),
        dateTime: int64Values(this.aTime, this.ai),
        expires: int64Values(this.aExpires, this.ai),
        seller: int64Values(this.aSeller, this.ai),
        category: int64Values(this.aCategory, this.ai),
        extra: this.aExtra.finish(),
      },
      bid: {
        length: this.bi,
        auction: int64Values(this.bAuction, this.bi),
        bidder: int64Values(this.bBidder, this.bi),
        price: int64Values(this.bPrice, this.bi),
        channel: this.bChannel.finish(),
        url: this.bUrl.finish(),
        dateTime: int64Values(this.bTime, this.bi),
        extra: this.bExtra.finish(),
      },
    };
  }
}

/** Row `i` of person columns as an object. */
export function personAt(p: PersonColumns, i: number): Person {
  return {
    id: Number(p.id[i]),
    name: asciiAt(p.name, i),
    emailAddress: asciiAt(p.emailAddress, i),
    creditCard: asciiAt(p.creditCard, i),
    city: asciiAt(p.city, i),
    state: asciiAt(p.state, i),
    dateTime: Number(p.dateTime[i]),
    extra: asciiAt(p.extra, i),
  };
}

/** Row `i` of auction columns as an object. */
export function auctionAt(a: AuctionColumns, i: number): Auction {
  return {
    id: Number(a.id[i]),
    itemName: asciiAt(a.itemName, i),
    description: asciiAt(a.description, i),
    initialBid: Number(a.initialBid[i]),
    reserve: Number(a.reserve[i]),
    dateTime: Number(a.dateTime[i]),
    expires: Number(a.expires[i]),
    seller: Number(a.seller[i]),
    category: Number(a.category[i]),
    extra: asciiAt(a.extra, i),
  };
}

/** Row `i` of bid columns as an object. */
export function bidAt(b: BidColumns, i: number): Bid {
  return {
    auction: Number(b.auction[i]),
    bidder: Number(b.bidder[i]),
    price: Number(b.price[i]),
    channel: asciiAt(b.channel, i),
    url: asciiAt(b.url, i),
    dateTime: Number(b.dateTime[i]),
    extra: asciiAt(b.extra, i),
  };
}

/** Nexmark events as objects (see {@link NexmarkOptions}): `count` events from event number `first`. */
export function nexmark(options: NexmarkOptions & { count?: number; first?: number } = {}): Generator<NexmarkEvent> {
  const { count, first, ...rest } = options;
  return new NexmarkGenerator(rest).events(first ?? 0, count ?? Infinity);
}

const I64 = (): DataType => new Int64();
const TS = (): DataType => new TimestampMillisecond('UTC');
const STR = (): DataType => new Utf8();

/** Arrow schemas of the three Nexmark tables (the reference's field names; times are timestamp[ms, UTC]). */
export const NEXMARK_SCHEMAS = {
  person: new Schema(
    [
      ['id', I64],
      ['name', STR],
      ['emailAddress', STR],
      ['creditCard', STR],
      ['city', STR],
      ['state', STR],
      ['dateTime', TS],
      ['extra', STR],
    ].map(([n, t]) => new Field(n as string, (t as () => DataType)(), false)),
  ),
  auction: new Schema(
    [
      ['id', I64],
      ['itemName', STR],
      ['description', STR],
      ['initialBid', I64],
      ['reserve', I64],
      ['dateTime', TS],
      ['expires', TS],
      ['seller', I64],
      ['category', I64],
      ['extra', STR],
    ].map(([n, t]) => new Field(n as string, (t as () => DataType)(), false)),
  ),
  bid: new Schema(
    [
      ['auction', I64],
      ['bidder', I64],
      ['price', I64],
      ['channel', STR],
      ['url', STR],
      ['dateTime', TS],
      ['extra', STR],
    ].map(([n, t]) => new Field(n as string, (t as () => DataType)(), false)),
  ),
};

function columnData(type: DataType, col: BigInt64Array | Utf8Column, length: number) {
  if (col instanceof BigInt64Array) return mkData({ type, length, nullCount: 0, data: col });
  return mkData({ type, length, nullCount: 0, valueOffsets: col.offsets, data: col.data });
}

function tableBatch(schema: Schema, cols: object, length: number): RecordBatch {
  const byName = cols as Record<string, BigInt64Array | Utf8Column>;
  return batchOf(
    schema,
    schema.fields.map((f) => columnData(f.type, byName[f.name], length)),
    length,
  );
}

/** Nexmark columns as three Arrow record batches (zero-copy views of the typed arrays). */
export function nexmarkRecordBatches(cols: NexmarkColumns): {
  person: RecordBatch;
  auction: RecordBatch;
  bid: RecordBatch;
} {
  return {
    person: tableBatch(NEXMARK_SCHEMAS.person, cols.person, cols.person.length),
    auction: tableBatch(NEXMARK_SCHEMAS.auction, cols.auction, cols.auction.length),
    bid: tableBatch(NEXMARK_SCHEMAS.bid, cols.bid, cols.bid.length),
  };
}
