import * as fs from 'node:fs';
import { expect } from 'chai';
import { activeTotals } from '../../apps/active-session-totals/index.js';
import type { Dataset } from '../../lib/api/dataset.js';
import { transactionArrivals } from '../../lib/gen/transactions.js';
import { type Oracle, openOracle } from './duckdb.js';
import { Harness, tmpDir } from './support.js';

type Tx = Record<string, unknown>;

describe('active-session-totals: three chained stateful operators against DuckDB', function () {
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

  it('after every batch, the total and count equal the sessions still open under the watermark', async () => {
    const GAP = 5 * 60_000;
    const BOUND = 10_000;
    const LATENESS = 60_000;
    const arrivals = [
      ...transactionArrivals({ count: 3000, seed: 4, customers: 60, meanSpacingMs: 1000, maxOutOfOrdernessMs: BOUND }),
    ];
    await oracle.load(
      'tx',
      arrivals.map((a, seq) => ({
        seq,
        customer_id: a.transaction.customer_id,
        amount: a.transaction.amount,
        ms: a.ts,
      })),
      { seq: 'BIGINT', customer_id: 'VARCHAR', amount: 'DOUBLE', ms: 'BIGINT' },
      dir,
    );
    const h = await Harness.start<Tx>({
      schema: { customer_id: 'string', amount: 'double', timestamp: 'timestamp' },
      mode: 'update',
      statePartitions: 3,
      build: (ds) =>
        activeTotals(ds as Dataset, {
          gap: GAP,
          'max-out-of-orderness': BOUND,
          'allowed-lateness': LATENESS,
          buckets: 4,
        }),
    });
    let maxTs = -Infinity;
    let last: Tx | undefined;
    let checked = 0;
    for (let n = 0; n < arrivals.length; n += 250) {
      const batch = arrivals.slice(n, n + 250);
      const out = await h.step(batch.map((a) => a.transaction as unknown as Tx));
      for (const a of batch) maxTs = Math.max(maxTs, a.ts);
      if (out.length > 0) last = out[out.length - 1];
      const watermark = maxTs - BOUND;
      const [want] = await oracle.query(`
        WITH m AS (SELECT *, CASE WHEN ms - LAG(ms) OVER (PARTITION BY customer_id ORDER BY ms) <= ${GAP} THEN 0 ELSE 1 END AS st
                   FROM tx WHERE seq < ${n + batch.length}),
        s AS (SELECT *, SUM(st) OVER (PARTITION BY customer_id ORDER BY ms, st DESC ROWS UNBOUNDED PRECEDING) AS sn FROM m),
        g AS (SELECT customer_id, sn, MAX(ms) + ${GAP} AS end_ms, SUM(round(amount * 100)::BIGINT) AS cents FROM s GROUP BY ALL)
        SELECT coalesce(SUM(cents), 0)::BIGINT AS cents, COUNT(*) AS sessions FROM g WHERE end_ms + ${LATENESS} > ${watermark}`);
      expect(
        { total: last?.total, active_sessions: last?.active_sessions },
        `after ${n + batch.length} transactions`,
      ).to.deep.equal({ total: Number(want.cents) / 100, active_sessions: want.sessions });
      checked++;
    }
    await h.stop();
    expect(checked).to.equal(12);
    expect(h.progress.some((p) => p.stateOperators.length === 3)).to.equal(true);
  });
});
