import { Field, Int64, Schema } from 'apache-arrow';
import { expect } from 'chai';
import { JoinState, type RowInfo } from '../../lib/plan/operators/join-state.js';
import { StateSchemaError } from '../../lib/plan/operators/transform-with-state-schema.js';
import type { KeyedState } from '../../lib/plan/stateful-operator.js';

/** A partition's state as a plain map, for reading what an earlier layout left behind. */
function stateOf(rows: [unknown, unknown][]): KeyedState {
  const m = new Map(rows.map(([k, v]) => [JSON.stringify(k), [k, v] as [unknown, unknown]]));
  return {
    get: (k) => m.get(JSON.stringify(k))?.[1],
    has: (k) => m.has(JSON.stringify(k)),
    put: (k, v) => void m.set(JSON.stringify(k), [k, v]),
    remove: (k) => void m.delete(JSON.stringify(k)),
    getTimeout: () => Number.NaN,
    get size() {
      return m.size;
    },
    entries: () => m.values(),
    sortedEntries: () => m.values(),
    keysWithTimeoutAtOrBefore: () => [],
    earliestTimeout: () => Infinity,
  };
}

describe('join state', () => {
  const schema = new Schema([new Field('id', new Int64(), false)]);
  const rowInfo: RowInfo = (_side, batch) => ({
    keyIds: Array.from({ length: batch.numRows }, (_, i) => i),
    deadlines: new Float64Array(batch.numRows).fill(Infinity),
  });
  const keys = { left: ['id'], right: ['id'] };

  it('starts empty on a partition without state', () => {
    const js = JoinState.load(stateOf([]), schema, schema, keys, rowInfo);
    expect(js.sides.left.live + js.sides.right.live).to.equal(0);
  });

  it('refuses join state of the earlier layout (one state row per join key) instead of dropping its rows', () => {
    const old = stateOf([
      [['\u0000sluice:join-rows'], [1, 1]],
      [7, { left: [[7]], right: [[7]] }],
    ]);
    expect(() => JoinState.load(old, schema, schema, keys, rowInfo))
      .to.throw(StateSchemaError)
      .with.property('message')
      .that.matches(/earlier sluice, which buffered rows one state row per join key/);
  });
});
