import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Session } from 'sluice';
import { ManualClock, MemoryStream } from 'sluice/testing';
import { type Event, totalsPerKey } from './app.js';

test('running totals per key, and the final total once a key goes quiet', async () => {
  // A manual clock moves only when the test says so: processing-time timeouts fire exactly then.
  const clock = new ManualClock();
  const session = Session.local({ clock });
  const events = new MemoryStream<Event>(session, { key: 'string', amount: 'double' });
  const query = await totalsPerKey(events.toDS(), 60_000)
    .writeStream.format('memory')
    .queryName('totals')
    .outputMode('update')
    .start();
  try {
    events.addData([
      { key: 'alice', amount: 12.5 },
      { key: 'bob', amount: 3 },
      { key: 'alice', amount: 7.25 },
    ]);
    await query.processAllAvailable();
    assert.deepEqual(session.table('totals'), [
      { key: 'alice', total: 19.75, count: 2, final: false },
      { key: 'bob', total: 3, count: 1, final: false },
    ]);

    clock.advance(45_000);
    events.addData([{ key: 'bob', amount: 9.5 }]);
    await query.processAllAvailable();
    clock.advance(30_000); // alice has been quiet for 75 s, bob for 30 s
    events.addData([{ key: 'carol', amount: 40 }]);
    await query.processAllAvailable();

    assert.deepEqual(session.table('totals').slice(2), [
      { key: 'bob', total: 12.5, count: 2, final: false },
      { key: 'carol', total: 40, count: 1, final: false },
      { key: 'alice', total: 19.75, count: 2, final: true },
    ]);
  } finally {
    await query.stop();
  }
});
