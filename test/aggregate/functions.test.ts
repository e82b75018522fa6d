import { expect } from 'chai';
import {
  approx_count_distinct,
  avg,
  col,
  collect_list,
  collect_set,
  count,
  count_by,
  count_distinct,
  count_if,
  first,
  last,
  max,
  max_by,
  min,
  min_by,
  struct,
  sum,
  top_k,
  when,
} from '../../lib/api/functions.js';
import { SluiceError } from '../../lib/errors.js';
import { at, Harness, iso } from '../windows/support.js';

type Row = { k: string; v: number | null; s: string | null; n: number | null; ts: number; amt: string | null };
const schema = { k: 'string', v: 'double', s: 'string', n: 'long', ts: 'timestamp', amt: 'string' } as const;

function row(
  k: string,
  v: number | null,
  s: string | null,
  n: number | null,
  time: string,
  amt: string | null = null,
): Row {
  return { k, v, s, n, ts: at(time), amt };
}

const ROWS: Row[] = [
  row('a', 1, 'x', 10, '00:00:03', '1.50'),
  row('a', null, 'y', 20, '00:00:01', 'n/a'),
  row('a', 4, null, null, '00:00:02', null),
  row('a', 2, 'x', 30, '00:00:04', ' 2.25 '),
  row('b', 7, 'z', 5, '00:00:09', '10'),
];

/** Runs one complete-mode aggregation over the rows, given as one batch or split into several. */
async function aggregate(
  build: Parameters<typeof Harness.start<Row>>[0]['build'],
  batches: Row[][],
  statePartitions = 2,
): Promise<Record<string, unknown>[]> {
  const h = await Harness.start<Row>({ schema, mode: 'complete', statePartitions, build });
  let out: Record<string, unknown>[] = [];
  for (const b of batches) out = await h.step(b);
  await h.stop();
  return [...out].sort((x, y) => String(x.k).localeCompare(String(y.k)));
}

describe('aggregate functions', () => {
  it('count, sum and avg skip nulls; sums of longs are longs; strings are parsed as numbers', async () => {
    const out = await aggregate(
      (ds) =>
        ds
          .groupBy('k')
          .agg(
            count('*').alias('rows'),
            count('v').alias('vs'),
            sum('v').alias('sv'),
            avg('v').alias('av'),
            sum('n').alias('sn'),
            sum('amt').alias('revenue'),
            avg(col('amt')).alias('avg_amt'),
          ),
      [ROWS],
    );
    expect(out).to.deep.equal([
      { k: 'a', rows: 4, vs: 3, sv: 7, av: 7 / 3, sn: 60, revenue: 3.75, avg_amt: 1.875 },
      { k: 'b', rows: 1, vs: 1, sv: 7, av: 7, sn: 5, revenue: 10, avg_amt: 10 },
    ]);
  });

  it('generated names follow Spark', async () => {
    const out = await aggregate((ds) => ds.groupBy('k').agg(count('*'), sum('v'), max_by('s', 'ts')), [ROWS]);
    expect(Object.keys(out[0])).to.deep.equal(['k', 'count(1)', 'sum(v)', 'max_by(s, ts)']);
  });

  it('min and max over numbers, strings and timestamps', async () => {
    const out = await aggregate(
      (ds) =>
        ds
          .groupBy('k')
          .agg(
            min('v').alias('minv'),
            max('v').alias('maxv'),
            min('s').alias('mins'),
            max('s').alias('maxs'),
            min('ts').alias('first_ts'),
            max('ts').alias('last_ts'),
          ),
      [ROWS],
    );
    expect(out[0]).to.include({ minv: 1, maxv: 4, mins: 'x', maxs: 'y' });
    expect(iso(out[0].first_ts)).to.equal('2024-01-01T00:00:01.000Z');
    expect(iso(out[0].last_ts)).to.equal('2024-01-01T00:00:04.000Z');
  });

  it('first and last follow arrival order across batches; ignoreNulls skips nulls', async () => {
    const out = await aggregate(
      (ds) =>
        ds
          .groupBy('k')
          .agg(first('s').alias('f'), last('s').alias('l'), first('v').alias('fv'), last('s', true).alias('lnn')),
      [[ROWS[2]], [ROWS[0], ROWS[1]], [ROWS[3], ROWS[4]]],
    );
    expect(out[0]).to.include({ f: null, l: 'x', fv: 4, lnn: 'x' });
  });

  it('collect_list in arrival order or by a column; collect_set sorted or by first occurrence', async () => {
    const out = await aggregate(
      (ds) =>
        ds
          .groupBy('k')
          .agg(
            collect_list('s').alias('list'),
            collect_list('s', { orderBy: 'ts' }).alias('by_time'),
            collect_set('s').alias('set'),
            collect_set('s', { orderBy: 'ts' }).alias('set_by_time'),
          ),
      [
        [ROWS[0], ROWS[1]],
        [ROWS[2], ROWS[3]],
      ],
    );
    expect(out[0]).to.deep.include({
      list: ['x', 'y', 'x'],
      by_time: ['y', 'x', 'x'],
      set: ['x', 'y'],
      set_by_time: ['y', 'x'],
    });
  });

  it('max_by and min_by; ties on the ordering go to the smaller value whatever the arrival order', async () => {
    const tie = [row('t', 1, 'm', 1, '00:00:05'), row('t', 1, 'c', 1, '00:00:05'), row('t', 1, 'q', 1, '00:00:01')];
    for (const batches of [[tie], [[tie[1]], [tie[0], tie[2]]], [[tie[2], tie[0], tie[1]]]]) {
      const out = await aggregate(
        (ds) =>
          ds
            .groupBy('k')
            .agg(
              max_by('s', 'ts').alias('latest'),
              min_by('s', 'ts').alias('earliest'),
              max_by('s', 'v').alias('tie_max'),
              min_by('s', 'v').alias('tie_min'),
            ),
        batches,
      );
      expect(out).to.deep.equal([{ k: 't', latest: 'c', earliest: 'q', tie_max: 'c', tie_min: 'c' }]);
    }
  });

  it('max_by keeps a whole row as a struct; ties go to the smaller struct, field by field', async () => {
    const tie = [
      row('t', 2, 'm', 1, '00:00:05'),
      row('t', 1, 'z', 1, '00:00:05'),
      row('t', 1, 'c', 1, '00:00:05'),
      row('t', 9, 'q', 1, '00:00:01'),
    ];
    for (const batches of [[tie], [[tie[1]], [tie[0], tie[3]], [tie[2]]], [[tie[3], tie[2], tie[0], tie[1]]]]) {
      const out = await aggregate(
        (ds) =>
          ds
            .groupBy('k')
            .agg(max_by(struct('v', 's', 'ts'), 'ts').alias('latest'), min_by(struct('s', 'v'), 'ts').alias('first')),
        batches,
      );
      expect(out).to.deep.equal([
        { k: 't', latest: { v: 1, s: 'c', ts: new Date(at('00:00:05')) }, first: { s: 'q', v: 9 } },
      ]);
    }
  });

  it('max_by and min_by with k: the values of the k rows with the largest (smallest) order, in order', async () => {
    const rows = [5, 1, 9, 3, 9, 7, 2].map((n, i) => row(i < 6 ? 'a' : 'b', i, `s${i}`, n, '00:00:00'));
    for (const batches of [[rows], [rows.slice(0, 2), rows.slice(2, 5), rows.slice(5)], [[...rows].reverse()]]) {
      const out = await aggregate(
        (ds) =>
          ds
            .groupBy('k')
            .agg(
              max_by('s', 'n', 3).alias('top'),
              min_by(struct('s', 'n'), 'n', 2).alias('bottom'),
              max_by('s', 'n', 10).alias('all'),
            ),
        batches,
      );
      expect(out).to.deep.equal([
        {
          k: 'a',
          top: ['s2', 's4', 's5'],
          bottom: [
            { s: 's1', n: 1 },
            { s: 's3', n: 3 },
          ],
          all: ['s2', 's4', 's5', 's0', 's3', 's1'],
        },
        { k: 'b', top: ['s6'], bottom: [{ s: 's6', n: 2 }], all: ['s6'] },
      ]);
    }
    expect(() => max_by('s', 'n', 0)).to.throw(/from 1 to 100000, got 0/);
  });

  it('count_distinct is exact; count_by gives a value → count map; top_k the most frequent values, ties by value', async () => {
    const pages = ['/a', '/b', '/a', '/c', '/b', '/d', '/a', null].map((p, i) => ({
      ...row('p', i, p, i, '00:00:00'),
      s: p,
    }));
    const out = await aggregate(
      (ds) =>
        ds
          .groupBy('k')
          .agg(count_distinct('s').alias('distinct'), count_by('s').alias('by'), top_k('s', 3).alias('top')),
      [pages.slice(0, 3), pages.slice(3)],
      3,
    );
    expect(out).to.deep.equal([
      {
        k: 'p',
        distinct: 4,
        by: { '/a': 3, '/b': 2, '/c': 1, '/d': 1 },
        top: [
          { value: '/a', count: 3 },
          { value: '/b', count: 2 },
          { value: '/c', count: 1 },
        ],
      },
    ]);
  });

  it('count_if counts the rows whose condition is true, as count(when(cond, 1)) does; null and false are not counted', async () => {
    const conditions = [col('v').gt(1), col('s').eq('x'), col('n').ge(20).and(col('v').isNull())];
    const out = await aggregate(
      (ds) =>
        ds
          .groupBy('k')
          .agg(
            ...conditions.map((c, i) => count_if(c).alias(`if${i}`)),
            ...conditions.map((c, i) => count(when(c, 1)).alias(`when${i}`)),
            count_if(col('v').gt(0)),
          ),
      [ROWS.slice(0, 2), ROWS.slice(2)],
      3,
    );
    expect(out).to.deep.equal([
      { k: 'a', if0: 2, if1: 2, if2: 1, when0: 2, when1: 2, when2: 1, 'count_if((v > 0))': 3 },
      { k: 'b', if0: 1, if1: 0, if2: 0, when0: 1, when1: 0, when2: 0, 'count_if((v > 0))': 1 },
    ]);
    const err = await aggregate((ds) => ds.groupBy('k').agg(count_if('v')), [ROWS]).catch((e: unknown) => e);
    expect(err).to.be.instanceOf(SluiceError);
    expect((err as SluiceError).message).to.match(/count_if: needs a boolean condition/);
  });

  it('aggregates expressions, e.g. the revenue of purchases only', async () => {
    const out = await aggregate(
      (ds) =>
        ds
          .groupBy('k')
          .agg(sum(when(col('s').eq('x'), col('amt'))).alias('x_revenue'), approx_count_distinct('s').alias('approx')),
      [ROWS],
    );
    expect(out).to.deep.equal([
      { k: 'a', x_revenue: 3.75, approx: 2 },
      { k: 'b', x_revenue: null, approx: 1 },
    ]);
  });

  it('gives the same results however the rows are split into batches and partitions', async () => {
    const rows: Row[] = Array.from({ length: 400 }, (_, i) =>
      row(
        `k${i % 7}`,
        i % 5 === 0 ? null : i,
        `s${(i * 7919) % 13}`,
        i,
        `00:${String(i % 60).padStart(2, '0')}:00`,
        String(i / 4),
      ),
    );
    const build: Parameters<typeof aggregate>[0] = (ds) =>
      ds
        .groupBy('k')
        .agg(
          count('*').alias('c'),
          sum('v').alias('s'),
          avg('amt').alias('a'),
          min('s').alias('mn'),
          max('ts').alias('mx'),
          collect_set('s').alias('set'),
          count_distinct('s').alias('cd'),
          approx_count_distinct('s').alias('acd'),
          max_by('s', 'n').alias('mb'),
          top_k('s', 3).alias('top'),
          count_by('s').alias('cb'),
          collect_list('n', { orderBy: 'n' }).alias('ns'),
        );
    const one = await aggregate(build, [rows], 1);
    const many = await aggregate(
      build,
      [rows.slice(0, 50), rows.slice(50, 51), rows.slice(51, 300), rows.slice(300)],
      4,
    );
    expect(many).to.deep.equal(one);
    expect(one).to.have.length(7);
  });
});
