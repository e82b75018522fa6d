import { expect } from 'chai';
import { GroupStateTimeout } from '../../lib/api/group-state.js';
import { SluiceError } from '../../lib/errors.js';
import { GroupStateImpl, type GroupStateInit } from '../../lib/plan/operators/group-state.js';

function stateOf<S>(over: Partial<Omit<GroupStateInit<S>, 'stored' | 'load'>> & { stored?: S }): GroupStateImpl<S> {
  const stored = over.stored;
  let loads = 0;
  const gs = new GroupStateImpl<S>({
    timeoutKind: over.timeoutKind ?? 'NoTimeout',
    load: () => {
      loads++;
      return stored;
    },
    stored: 'stored' in over,
    hasTimedOut: over.hasTimedOut ?? false,
    processingTimeMs: over.processingTimeMs ?? 1_000,
    watermarkMs: over.watermarkMs,
  });
  Object.defineProperty(gs, 'loads', { get: () => loads });
  return gs;
}

function throwsGroupState(f: () => unknown, message: RegExp): void {
  let err: unknown;
  try {
    f();
  } catch (e) {
    err = e;
  }
  expect(err, 'expected an error').to.be.instanceOf(SluiceError);
  expect((err as SluiceError).code).to.equal('GROUP_STATE');
  expect((err as SluiceError).hint).to.be.a('string').and.not.empty;
  expect(`${(err as SluiceError).message} / ${(err as SluiceError).hint}`).to.match(message);
}

describe('GroupState', () => {
  it('exposes the timeout kinds by Spark name', () => {
    expect(GroupStateTimeout.NoTimeout).to.equal('NoTimeout');
    expect(GroupStateTimeout.ProcessingTimeTimeout).to.equal('ProcessingTimeTimeout');
    expect(GroupStateTimeout.EventTimeTimeout).to.equal('EventTimeTimeout');
  });

  it('exists / get / getOption on a key without state', () => {
    const gs = stateOf<{ n: number }>({});
    expect(gs.exists).to.equal(false);
    expect(gs.getOption()).to.equal(undefined);
    throwsGroupState(() => gs.get(), /this key has no state/);
  });

  it('reads stored state lazily, once', () => {
    const gs = stateOf<{ n: number }>({ stored: { n: 3 } });
    expect((gs as unknown as { loads: number }).loads).to.equal(0);
    expect(gs.exists).to.equal(true);
    expect(gs.get()).to.deep.equal({ n: 3 });
    expect(gs.getOption()).to.deep.equal({ n: 3 });
    expect((gs as unknown as { loads: number }).loads).to.equal(1);
    expect(gs.updated).to.equal(false);
  });

  it('treats a stored timeout-only entry (value undefined) as no state', () => {
    const gs = stateOf<{ n: number }>({ stored: undefined });
    expect(gs.exists).to.equal(false);
    expect(gs.getOption()).to.equal(undefined);
  });

  it('update sets the value; null and undefined are rejected', () => {
    const gs = stateOf<{ n: number }>({});
    gs.update({ n: 1 });
    expect(gs.exists).to.equal(true);
    expect(gs.get()).to.deep.equal({ n: 1 });
    expect(gs.updated).to.equal(true);
    throwsGroupState(() => gs.update(null as never), /null is not a valid state value/);
    throwsGroupState(() => gs.update(undefined as never), /undefined is not a valid state value/);
    expect(gs.get()).to.deep.equal({ n: 1 });
  });

  it('remove drops the value; get after remove names the removal', () => {
    const gs = stateOf<{ n: number }>({ stored: { n: 5 } });
    gs.remove();
    expect(gs.exists).to.equal(false);
    expect(gs.removed).to.equal(true);
    expect(gs.value).to.equal(undefined);
    throwsGroupState(() => gs.get(), /removed in this call/);
  });

  it('remove then update in one call keeps the new value', () => {
    const gs = stateOf<{ n: number }>({ stored: { n: 5 } });
    gs.remove();
    gs.update({ n: 9 });
    expect(gs.exists).to.equal(true);
    expect(gs.removed).to.equal(false);
    expect(gs.updated).to.equal(true);
    expect(gs.value).to.deep.equal({ n: 9 });
  });

  it('setTimeoutDuration: processing time plus the duration, ProcessingTimeTimeout only, positive only', () => {
    const gs = stateOf({ timeoutKind: 'ProcessingTimeTimeout', processingTimeMs: 50_000 });
    expect(gs.timeoutMs).to.equal(-1);
    gs.setTimeoutDuration('10 seconds');
    expect(gs.timeoutMs).to.equal(60_000);
    gs.setTimeoutDuration(250);
    expect(gs.timeoutMs).to.equal(50_250);
    throwsGroupState(() => gs.setTimeoutDuration(0), /must be positive/);
    throwsGroupState(
      () => stateOf({ timeoutKind: 'NoTimeout' }).setTimeoutDuration('1s'),
      /needs timeout 'ProcessingTimeTimeout'.*'NoTimeout'/,
    );
    throwsGroupState(
      () => stateOf({ timeoutKind: 'EventTimeTimeout', watermarkMs: 0 }).setTimeoutDuration('1s'),
      /setTimeoutTimestamp/,
    );
    expect(() => gs.setTimeoutDuration('soon')).to.throw(SluiceError, /duration/);
  });

  it('setTimeoutTimestamp: EventTimeTimeout only, not behind the watermark, Date and extra duration accepted', () => {
    const gs = stateOf({ timeoutKind: 'EventTimeTimeout', watermarkMs: 10_000 });
    gs.setTimeoutTimestamp(10_000);
    expect(gs.timeoutMs).to.equal(10_000);
    gs.setTimeoutTimestamp(new Date(20_000), '5s');
    expect(gs.timeoutMs).to.equal(25_000);
    throwsGroupState(() => gs.setTimeoutTimestamp(9_999), /earlier than the current watermark 10000/);
    throwsGroupState(() => gs.setTimeoutTimestamp(Number.NaN), /positive time/);
    expect(gs.timeoutMs).to.equal(25_000);
    throwsGroupState(
      () => stateOf({ timeoutKind: 'ProcessingTimeTimeout' }).setTimeoutTimestamp(1),
      /needs timeout 'EventTimeTimeout'.*setTimeoutDuration/s,
    );
  });

  it('hasTimedOut and the batch times', () => {
    const timedOut = stateOf({ hasTimedOut: true, processingTimeMs: 7, watermarkMs: 3 });
    expect(timedOut.hasTimedOut).to.equal(true);
    expect(timedOut.getCurrentProcessingTimeMs()).to.equal(7);
    expect(timedOut.getCurrentWatermarkMs()).to.equal(3);
    const plain = stateOf({});
    expect(plain.hasTimedOut).to.equal(false);
    throwsGroupState(() => plain.getCurrentWatermarkMs(), /no watermark/);
  });
});
