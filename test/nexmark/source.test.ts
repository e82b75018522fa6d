import { expect } from 'chai';
import { Session } from '../../lib/api/session.js';
import { rowsFromBatch } from '../../lib/arrow/columns.js';
import { SluiceError } from '../../lib/errors.js';
import { BatchSender, receiveBatches, transferListOf } from '../../lib/exec/batch-transfer.js';
import { type NexmarkEvent, NexmarkGenerator } from '../../lib/gen/nexmark.js';
import { NexmarkSource, type NexmarkSourceOptions } from '../../lib/sources/nexmark-source.js';
import { runReadTask } from '../../lib/sources/readers.js';
import type { SourceOffset } from '../../lib/sources/source.js';
import { createSource, parseSourceUri } from '../../lib/sources/source-uri.js';

async function read(
  src: NexmarkSource,
  start: SourceOffset | null,
  end: SourceOffset,
): Promise<Record<string, unknown>[]> {
  const rows: Record<string, unknown>[] = [];
  for (const task of await src.planRead(start, end, 0)) {
    for (const b of (await runReadTask(task, { batchId: 0 })).batches) rows.push(...rowsFromBatch(b));
  }
  return rows;
}

/** The generator's events as the rows the source should give: a kind's table, or the datagen layout. */
function expectedRows(events: NexmarkEvent[], kinds: string[]): Record<string, unknown>[] {
  const date = (o: Record<string, unknown>): Record<string, unknown> => {
    const out: Record<string, unknown> = { ...o };
    for (const k of ['dateTime', 'expires']) if (k in out) out[k] = new Date(out[k] as number);
    return out;
  };
  const kept = events.filter((e) => kinds.includes(e.type));
  if (kinds.length === 1)
    return kept.map((e) => date((e as unknown as Record<string, Record<string, unknown>>)[e.type]));
  return kept.map((e) => {
    const body = date((e as unknown as Record<string, Record<string, unknown>>)[e.type]);
    const row: Record<string, unknown> = { event_type: ['person', 'auction', 'bid'].indexOf(e.type) };
    for (const k of kinds) row[k] = k === e.type ? body : null;
    row.dateTime = body.dateTime;
    return row;
  });
}

function source(options: NexmarkSourceOptions): NexmarkSource {
  return new NexmarkSource(options);
}

describe('nexmark source', () => {
  const events = [...new NexmarkGenerator({ seed: 5, firstEventRate: 1000 }).events(0, 3000)];

  it('gives one kind as its own table, the generator events of (start, end] in order', async () => {
    const src = source({ events: 3000, seed: 5, rate: 1000, kinds: ['bid'], numPartitions: 3, eventsPerBatch: 257 });
    expect(src.schema().fields.map((f) => f.name)).to.deep.equal([
      'auction',
      'bidder',
      'price',
      'channel',
      'url',
      'dateTime',
      'extra',
    ]);
    expect(await read(src, { events: 1000 }, { events: 2500 })).to.deep.equal(
      expectedRows(events.slice(1000, 2500), ['bid']),
    );
    const persons = source({ events: 3000, seed: 5, rate: 1000, kinds: ['person'] });
    expect(await read(persons, null, { events: 3000 })).to.deep.equal(expectedRows(events, ['person']));
  });

  it('builds only the columns a query reads, with the values of the whole rows', async () => {
    const pick = (rows: Record<string, unknown>[], names: string[]) =>
      rows.map((r) => Object.fromEntries(names.map((n) => [n, r[n]])));
    const whole = expectedRows(events.slice(1000, 2500), ['bid']);
    for (const names of [
      ['auction', 'price', 'dateTime'],
      ['bidder', 'url'],
      ['channel', 'extra'],
    ]) {
      const src = source({ events: 3000, seed: 5, rate: 1000, kinds: ['bid'], numPartitions: 3, eventsPerBatch: 257 });
      src.pruneColumns(names);
      expect(src.schema().fields.map((f) => f.name)).to.deep.equal(names);
      expect(await read(src, { events: 1000 }, { events: 2500 })).to.deep.equal(pick(whole, names));
    }
    const session = Session.local({ threads: 0 });
    const q = await session.readStream
      .format('nexmark')
      .options({ events: 2000, seed: 5, rate: 1000, kinds: 'bid' })
      .load()
      .select('auction', 'price')
      .writeStream.format('memory')
      .queryName('prices')
      .trigger({ availableNow: true })
      .start();
    await q.awaitTermination();
    expect(q.explain()).to.match(/ReadSchema: .*auction.*price/);
    expect(q.explain()).to.not.match(/ReadSchema: .*extra/);
    expect(session.table('prices')).to.deep.equal(
      pick(expectedRows(events.slice(0, 2000), ['bid']), ['auction', 'price']),
    );
    await session.stop();
  });

  it('gives several kinds as the datagen table: event_type, one struct per kind (null on other kinds), dateTime', async () => {
    const src = source({
      events: 3000,
      seed: 5,
      rate: 1000,
      kinds: ['auction', 'person'],
      numPartitions: 2,
      eventsPerBatch: 100,
    });
    expect(src.schema().fields.map((f) => f.name)).to.deep.equal(['event_type', 'person', 'auction', 'dateTime']);
    expect(await read(src, { events: 17 }, { events: 2999 })).to.deep.equal(
      expectedRows(events.slice(17, 2999), ['person', 'auction']),
    );
    const all = source({ events: 3000, seed: 5, rate: 1000, eventsPerBatch: 999 });
    expect(await read(all, null, { events: 3000 })).to.deep.equal(expectedRows(events, ['person', 'auction', 'bid']));
  });

  it('keeps its rows when its buffers move to another thread', async () => {
    const src = source({ events: 500, seed: 5, rate: 1000, numPartitions: 1 });
    const [task] = await src.planRead(null, { events: 500 }, 0);
    const { batches } = await runReadTask(task, { batchId: 0 });
    const sent = new BatchSender('move').sendAll(batches);
    const moved = structuredClone(sent, { transfer: transferListOf(sent) });
    expect(receiveBatches(moved).flatMap(rowsFromBatch)).to.deep.equal(
      expectedRows(events.slice(0, 500), ['person', 'auction', 'bid']),
    );
  });

  it('admits at most maxEventsPerTrigger events per batch, stops at events, and reads everything for Trigger.Once', async () => {
    const src = source({ events: 2500, maxEventsPerTrigger: 1000 });
    expect(await src.latestOffset(null, {})).to.deep.equal({ events: 1000 });
    expect(await src.latestOffset({ events: 2000 }, {})).to.deep.equal({ events: 2500 });
    expect(await src.latestOffset({ events: 2500 }, {})).to.deep.equal({ events: 2500 });
    expect(await src.latestOffset({ events: 100 }, { maxRows: 50 })).to.deep.equal({ events: 150 });
    expect(await src.latestOffset(null, { maxRows: Infinity })).to.deep.equal({ events: 2500 });
    expect(src.rowCount({ events: 100 }, { events: 150 })).to.equal(50);
    const endless = source({ maxEventsPerTrigger: 10 });
    expect(await endless.latestOffset({ events: 5 }, { maxRows: Infinity })).to.deep.equal({ events: 15 });
    await endless.prepareForTriggerAvailableNow().then(
      () => expect.fail('an endless source cannot end'),
      (err: unknown) => {
        expect(err).to.be.instanceOf(SluiceError);
        expect((err as SluiceError).message).to.match(/endless nexmark source/);
      },
    );
  });

  it('reads its options from a URI and refuses wrong ones with a clear message', () => {
    const make = (uri: string) => {
      const u = parseSourceUri(uri);
      return createSource(u.format, u.options);
    };
    const src = make(
      'nexmark:?events=100&seed=abc&rate=50&kinds=bid,person&hotAuctionRatio=3&baseTime=2024-05-01T00:00:00Z',
    );
    expect(src.description).to.equal('NexmarkSource[events=100, seed=abc, rate=50, kinds=person,bid]');
    expect(src.schema().fields.map((f) => f.name)).to.deep.equal(['event_type', 'person', 'bid', 'dateTime']);
    expect(() => make('nexmark:?events=10&kinds=bids')).to.throw(SluiceError, /unknown event kind 'bids'/);
    expect(() => make('nexmark:?events=-1')).to.throw(
      SluiceError,
      /events of the nexmark source must be a non-negative integer/,
    );
    expect(() => make('nexmark:?event=10')).to.throw(SluiceError, /unknown option 'event' for the nexmark source/);
    expect(() => make('nexmark:?rate=0')).to.throw(SluiceError, /rate of the nexmark source must be a positive number/);
    expect(() => make('nexmark:/data?events=1')).to.throw(SluiceError, /nexmark takes no path/);
    expect(() => make('nexmark:?hotAuctionRatio=0')).to.throw(
      SluiceError,
      /hotAuctionRatio must be a positive integer/,
    );
  });

  it('runs in a query: every event once, in batches of maxEventsPerTrigger, with event counts as offsets', async () => {
    const session = Session.local({ threads: 0 });
    const q = await session.readStream
      .format('nexmark')
      .options({ events: 2000, seed: 5, rate: 1000, kinds: 'bid', maxEventsPerTrigger: 700 })
      .load()
      .writeStream.format('memory')
      .queryName('bids')
      .trigger({ availableNow: true })
      .start();
    await q.awaitTermination();
    expect(session.table('bids')).to.deep.equal(expectedRows(events.slice(0, 2000), ['bid']));
    expect(q.recentProgress.map((p) => p.sources[0].endOffset)).to.deep.equal([
      { events: 700 },
      { events: 1400 },
      { events: 2000 },
    ]);
  });
});
