import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { expect } from 'chai';
import type { Dataset } from '../../lib/api/dataset.js';
import { col, count, sum } from '../../lib/api/functions.js';
import { Session } from '../../lib/api/session.js';
import { schemaFromSpec } from '../../lib/arrow/schema.js';
import { analyze } from '../../lib/plan/analyzer.js';
import { pruneColumns } from '../../lib/plan/column-pruning.js';
import type { OutputMode } from '../../lib/sinks/output-mode.js';
import { MemoryStream } from '../../lib/testing/memory-stream.js';

const EVENT = { user: 'string', country: 'string', url: 'string', amount: 'double', ts: 'timestamp' } as const;

/** Column pruning: what each source builds and each exchange moves, and the explain text that shows it. */
describe('column pruning', () => {
  let session: Session;
  let root: string;
  beforeEach(() => {
    session = Session.local({ threads: 0 });
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-pruning-'));
  });
  afterEach(async () => {
    await session.stop();
    fs.rmSync(root, { recursive: true, force: true });
  });

  /** The pruning of `ds`'s plan, analysed against the event schema as a query start would. */
  function pruningOf(ds: Dataset<unknown>, outputMode: OutputMode = 'update', lateOutput = false) {
    const analysis = analyze(ds.plan, { outputMode });
    analysis.check([schemaFromSpec({ ...EVENT })]);
    const p = pruneColumns(ds.plan, (id) => analysis.schemaOf(id), { lateOutput });
    const [source] = analysis.sources;
    return { source: p.sources.get(source.id) ?? 'all', exchanges: [...p.exchanges.values()] };
  }

  it('an aggregation reads its keys and arguments only, through a filter and a withColumn', () => {
    const events = new MemoryStream(session, { ...EVENT }).toDS();
    const q = events
      .where(col('country').eq('fr'))
      .withColumn('cents', col('amount').multiply(100))
      .groupBy('user')
      .agg(count('*').alias('n'), sum('cents').alias('cents'));
    expect(pruningOf(q)).to.deep.equal({ source: ['user', 'country', 'amount'], exchanges: [['user', 'cents']] });
  });

  it('a window reads its event-time column; count(*) alone still reads one column for its rows', () => {
    const events = new MemoryStream(session, { ...EVENT }).toDS();
    const windowed = events.withWatermark('ts', '1 minute').groupBy('country').count();
    expect(pruningOf(windowed).source).to.deep.equal(['country', 'ts']);
    const total = events.groupBy().agg(count('*').alias('n'));
    expect(pruningOf(total)).to.deep.equal({ source: ['user'], exchanges: [['user']] });
  });

  it('keeps every column where a row function, the sink or a late-data output sees whole rows', () => {
    const events = new MemoryStream(session, { ...EVENT }).toDS();
    expect(pruningOf(events.where(col('amount').gt(1))).source).to.equal('all');
    const mapped = events
      .filter((r) => (r as { amount: number }).amount > 1)
      .groupBy('user')
      .count();
    expect(pruningOf(mapped)).to.deep.equal({ source: 'all', exchanges: [['user']] });
    const late = events.withWatermark('ts', '1 minute').groupBy('user', 'ts').count();
    expect(pruningOf(late, 'append', true)).to.deep.equal({ source: 'all', exchanges: [] });
    const selected = events.select('url', 'user');
    expect(pruningOf(selected).source).to.deep.equal(['user', 'url']);
  });

  it("explain() shows the source's ReadSchema and the columns the exchange moves", async () => {
    const input = new MemoryStream(session, { ...EVENT });
    const query = await input
      .toDS()
      .groupBy('user')
      .agg(sum('amount').alias('amount'))
      .writeStream.format('memory')
      .queryName('totals')
      .outputMode('update')
      .option('checkpointLocation', path.join(root, 'ckpt'))
      .start();
    input.addData([{ user: 'ann', country: 'fr', url: '/', amount: 2, ts: new Date(0) }]);
    await query.processAllAvailable();
    const lines = query.explain().split('\n');
    expect(lines[0]).to.match(/^aggregate#\d+ \[user, amount\]$/);
    expect(lines[1]).to.match(/^\+- exchange into \d+ state partitions \[user, amount\]$/);
    // A memory stream has no pruneColumns: it builds every column, and the exchange drops the others.
    expect(lines[2]).to.match(/^ {3}\+- source#\d+ .* ReadSchema: \[user, country, url, amount, ts\]$/);
    expect(session.table('totals')).to.deep.equal([{ user: 'ann', amount: 2 }]);
    await query.stop();
  });
});
