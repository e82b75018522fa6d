import { expect } from 'chai';
import { assignTasks, type MemberTasks } from '../../lib/group/sticky-task-assignor.js';

const member = (memberId: string, owned: number[] = [], generation = 1): MemberTasks => ({
  memberId,
  owned,
  generation,
});

/** Every task 0..n-1 exactly once across the members. */
function expectComplete(assignment: Map<string, number[]>, n: number): void {
  const all = [...assignment.values()].flat().sort((a, b) => a - b);
  expect(all).to.deep.equal(Array.from({ length: n }, (_, i) => i));
}

describe('sticky task assignment', () => {
  it('spreads tasks evenly over new members', () => {
    const a = assignTasks(8, [member('b'), member('a'), member('c')]);
    expectComplete(a, 8);
    expect([...a.values()].map((t) => t.length).sort()).to.deep.equal([2, 3, 3]);
  });

  it('moves only what a newcomer needs for its share', () => {
    const before = assignTasks(8, [member('a'), member('b')]);
    const a = assignTasks(8, [member('a', before.get('a')), member('b', before.get('b')), member('c')]);
    expectComplete(a, 8);
    const moved = [...a.get('c')!];
    expect(moved.length).to.be.oneOf([2, 3]);
    // a and b keep only tasks they had: nothing moves between them.
    for (const id of ['a', 'b']) expect(a.get(id)!.every((t) => before.get(id)!.includes(t))).to.equal(true);
  });

  it("gives a departed member's tasks to the others and keeps theirs", () => {
    const a = assignTasks(6, [member('a', [0, 1]), member('c', [4, 5])]);
    expectComplete(a, 6);
    expect(a.get('a')!.slice(0, 2)).to.deep.equal([0, 1]);
    expect(a.get('c')!.filter((t) => t >= 4)).to.deep.equal([4, 5]);
    expect(a.get('a')!.length + a.get('c')!.length).to.equal(6);
  });

  it('settles a task two members claim in favour of the newer generation', () => {
    // The zombie was paused through a rebalance and still says it owns 0 and 1.
    const a = assignTasks(4, [member('zombie', [0, 1], 3), member('other', [0, 1, 2, 3], 5)]);
    expectComplete(a, 4);
    expect(a.get('other')!.length).to.equal(2);
    expect(a.get('other')!.every((t) => [0, 1, 2, 3].includes(t))).to.equal(true);
  });

  it('is the same whatever order the members come in, and ignores tasks that no longer exist', () => {
    const ms = [member('x', [7, 1]), member('y', [0]), member('z', [2, 3])];
    const one = assignTasks(4, ms);
    const two = assignTasks(4, [...ms].reverse());
    expect([...one].sort()).to.deep.equal([...two].sort());
    expectComplete(one, 4);
  });
});
