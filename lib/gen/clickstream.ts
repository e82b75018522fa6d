import { activity } from './activity.js';
import { badOption, cents, idOf } from './common.js';
import { mix32, Random, seedHash, WeightedPicker, zipfWeights } from './random.js';
import {
  arrivals,
  resolveSessionEventOptions,
  SESSION_EVENT_DEFAULTS,
  type SessionEventOptions,
} from './session-events.js';

/**
 * Clickstream events in the shape the clickstream-sessions and clickstream-metrics apps read (the Flink sessionisation and metrics jobs):
 * users browse a shop in sessions (bursts of events separated by more than the session gap), look at
 * pages, click, and some sessions end in a purchase with an amount. Events can arrive out of order
 * within a bound, and a fraction of them later than the bound.
 */
export interface ClickstreamEvent {
  /** `user-0042`. */
  user_id: string;
  /** The client's session id, `sess-` and 8 hex digits, unique per session of a run. */
  session_id: string;
  event_type: 'page_view' | 'click' | 'purchase';
  /** Site path: `/`, `/products/17`, `/category/books`, `/cart`, `/checkout` … */
  page_url: string;
  /** ISO-8601 UTC string (`2024-01-01T00:00:01.234Z`), or epoch ms with `timestampFormat: 'epoch-ms'`. */
  timestamp: string | number;
  /** External referrer (`https://www.google.com/`, `(direct)` …) on a session's first page, else the previous page. */
  referrer: string;
  device: { type: 'desktop' | 'mobile' | 'tablet' };
  /** ISO 3166 alpha-2 country code. */
  geo: { country: string };
  /** `amount` (a decimal string, as clickstream-metrics parses it) on purchases only; `{}` otherwise. */
  metadata: { amount?: string };
  /** Only with `markLate`: whether the event arrives later than the out-of-orderness bound. */
  late?: boolean;
}

/** Options of {@link clickstream}. Every option has a default. */
export interface ClickstreamOptions extends SessionEventOptions {
  /** Number of distinct users. Default 1 000. */
  users?: number;
  /** Fraction of sessions that end with a checkout page view and a purchase. Default 0.1. */
  purchaseProbability?: number;
}

/** The defaults of {@link ClickstreamOptions}. */
export const CLICKSTREAM_DEFAULTS = {
  ...SESSION_EVENT_DEFAULTS,
  users: 1_000,
  meanSpacingMs: 100,
  meanSessionEvents: 8,
  meanThinkTimeMs: 30_000,
  sessionGapMs: 30 * 60_000,
  purchaseProbability: 0.1,
} satisfies Required<ClickstreamOptions>;

/** A clickstream event with its arrival classification. */
export interface ClickstreamArrival {
  event: ClickstreamEvent;
  /** Event time, epoch ms (whatever the timestamp format). */
  ts: number;
  /** True when the event arrives more than `maxOutOfOrdernessMs` behind an earlier event (see disorder.ts). */
  late: boolean;
}

const DEVICES = new WeightedPicker<ClickstreamEvent['device']['type']>([
  ['desktop', 50],
  ['mobile', 42],
  ['tablet', 8],
]);
const COUNTRIES = new WeightedPicker<string>([
  ['US', 30],
  ['IN', 10],
  ['GB', 8],
  ['DE', 7],
  ['BR', 6],
  ['FR', 5],
  ['CA', 5],
  ['JP', 4],
  ['AU', 3],
  ['ES', 3],
  ['IT', 3],
  ['MX', 3],
  ['NL', 2],
  ['SE', 2],
  ['PL', 2],
  ['KR', 2],
  ['NG', 2],
  ['ZA', 1],
  ['AR', 1],
  ['SG', 1],
]);
const REFERRERS = new WeightedPicker<string>([
  ['https://www.google.com/', 45],
  ['(direct)', 20],
  ['https://www.facebook.com/', 10],
  ['https://www.bing.com/', 6],
  ['https://t.co/', 5],
  ['https://www.instagram.com/', 5],
  ['https://www.reddit.com/', 4],
  ['https://news.ycombinator.com/', 2],
  ['https://duckduckgo.com/', 3],
]);
const CATEGORIES = ['electronics', 'books', 'clothing', 'home', 'toys', 'sports', 'beauty', 'garden'];
const PRODUCTS = 200;
const PRODUCT_PICKER = new WeightedPicker<number>(zipfWeights(PRODUCTS, 1.1).map((w, i) => [i + 1, w] as const));
const CATEGORY_PICKER = new WeightedPicker<string>(
  zipfWeights(CATEGORIES.length, 0.8).map((w, i) => [CATEGORIES[i], w] as const),
);
type PageKind = 'product' | 'category' | 'home' | 'search' | 'cart' | 'deals' | 'account';
const LANDING = new WeightedPicker<PageKind>([
  ['home', 35],
  ['product', 35],
  ['category', 20],
  ['deals', 5],
  ['search', 5],
]);
const NEXT_PAGE = new WeightedPicker<PageKind>([
  ['product', 45],
  ['category', 20],
  ['home', 8],
  ['search', 10],
  ['cart', 7],
  ['deals', 5],
  ['account', 5],
]);
const CLICK_PROBABILITY = 0.35;

function pageUrl(kind: PageKind, rng: Random): string {
  switch (kind) {
    case 'product':
      return `/products/${PRODUCT_PICKER.pick(rng)}`;
    case 'category':
      return `/category/${CATEGORY_PICKER.pick(rng)}`;
    case 'home':
      return '/';
    case 'search':
      return '/search';
    case 'cart':
      return '/cart';
    case 'deals':
      return '/deals';
    case 'account':
      return '/account';
  }
}

interface SessionPage {
  /** Current page and the referrer it was reached from. */
  page: string;
  pageReferrer: string;
  buyer: boolean;
}

function resolve(options: ClickstreamOptions): Required<ClickstreamOptions> {
  const o = resolveSessionEventOptions<ClickstreamOptions>(CLICKSTREAM_DEFAULTS, options);
  if (!Number.isSafeInteger(o.users) || o.users < 1)
    throw badOption(`users must be a positive integer, got ${o.users}`);
  return o;
}

/** Events with their event time and late flag, in arrival order. */
export function* clickstreamArrivals(options: ClickstreamOptions = {}): Generator<ClickstreamArrival> {
  const o = resolve(options);
  const root = new Random(o.seed);
  const contentRng = root.fork('content');
  const userRng = new Random(0);
  const userSeed = seedHash(o.seed);
  const sessionSalt = mix32(userSeed ^ 0x5e55);
  const deviceOf = new Uint8Array(o.users);
  const countryOf = new Uint16Array(o.users);
  const deviceNames = ['desktop', 'mobile', 'tablet'] as const;
  const countryIndex = new Map<string, number>();
  const countryNames: string[] = [];
  const userIds: string[] = [];
  for (let u = 0; u < o.users; u++) {
    userIds.push(idOf('user', u, o.users));
    userRng.reseed(userSeed, u);
    deviceOf[u] = deviceNames.indexOf(DEVICES.pick(userRng));
    const c = COUNTRIES.pick(userRng);
    if (!countryIndex.has(c)) {
      countryIndex.set(c, countryNames.length);
      countryNames.push(c);
    }
    countryOf[u] = countryIndex.get(c)!;
  }

  const acts = activity<SessionPage>(o, () => ({ page: '', pageReferrer: '', buyer: false }));

  function* inTimeOrder(): Generator<{ record: ClickstreamEvent; ts: number }> {
    for (const a of acts) {
      const s = a.state;
      let type: ClickstreamEvent['event_type'];
      let referrer: string;
      const metadata: ClickstreamEvent['metadata'] = {};
      if (a.index === 0) {
        s.buyer = contentRng.chance(o.purchaseProbability);
        s.pageReferrer = REFERRERS.pick(contentRng);
        s.page = pageUrl(LANDING.pick(contentRng), contentRng);
        type = 'page_view';
        referrer = s.pageReferrer;
      } else if (s.buyer && a.remaining === 1) {
        s.pageReferrer = s.page;
        s.page = '/checkout';
        type = 'page_view';
        referrer = s.pageReferrer;
      } else if (s.buyer && a.remaining === 0 && s.page === '/checkout') {
        type = 'purchase';
        referrer = s.pageReferrer;
        metadata.amount = Math.max(0.99, cents(contentRng.logNormal(Math.log(40), 0.9))).toFixed(2);
      } else if (contentRng.chance(CLICK_PROBABILITY)) {
        type = 'click';
        referrer = s.pageReferrer;
      } else {
        s.pageReferrer = s.page;
        s.page = pageUrl(NEXT_PAGE.pick(contentRng), contentRng);
        type = 'page_view';
        referrer = s.pageReferrer;
      }
      const event: ClickstreamEvent = {
        user_id: userIds[a.user],
        session_id: `sess-${mix32(sessionSalt ^ a.session)
          .toString(16)
          .padStart(8, '0')}`,
        event_type: type,
        page_url: s.page,
        timestamp: '',
        referrer,
        device: { type: deviceNames[deviceOf[a.user]] },
        geo: { country: countryNames[countryOf[a.user]] },
        metadata,
      };
      yield { record: event, ts: a.ts };
    }
  }

  for (const arr of arrivals(inTimeOrder(), o)) yield { event: arr.item.record, ts: arr.ts, late: arr.late };
}

/** Clickstream events in arrival order (see {@link ClickstreamOptions}). */
export function* clickstream(options: ClickstreamOptions = {}): Generator<ClickstreamEvent> {
  for (const a of clickstreamArrivals(options)) yield a.event;
}
