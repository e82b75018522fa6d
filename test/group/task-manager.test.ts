/**
 * TaskManager, the tasks of one group member, with tasks that start slowly and fail as a moved task does: a task
 * revoked while it was starting may fail once stopped (its new owner took its checkpoint claim), which must
 * neither end the process as an unhandled rejection nor stop the member from following later assignments.
 */
import { expect } from 'chai';
import { SluiceError } from '../../lib/errors.js';
import { type RunningTask, TaskManager } from '../../lib/group/task-manager.js';

/** The member has not failed within 20 ms (its log in the message otherwise). */
async function expectNotFailed(tasks: TaskManager, lines: string[]): Promise<void> {
  let failed: unknown = null;
  await Promise.race([tasks.failure, new Promise((r) => setTimeout(r, 20))]).catch((err: unknown) => {
    failed = err;
  });
  expect(failed, lines.join('\n')).to.equal(null);
}

describe('TaskManager', () => {
  it('a task revoked while it starts, failing as it stops, is dropped quietly and later assignments still apply', async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    const started: number[] = [];
    const lines: string[] = [];
    let release!: () => void;
    const slowStart = new Promise<void>((r) => {
      release = r;
    });
    const tasks = new TaskManager({
      retryMs: 10,
      log: (m) => lines.push(m),
      start: async (task): Promise<RunningTask> => {
        if (task === 0) await slowStart;
        started.push(task);
        let fail!: (err: Error) => void;
        const terminated = new Promise<void>((_, reject) => {
          fail = reject;
        });
        return {
          terminated,
          // Stopping finds the claim taken over: the task ends with CHECKPOINT_IN_USE, as a moved task does.
          stop: async () => fail(new SluiceError('CHECKPOINT_IN_USE', `task ${task} was taken over`)),
        };
      },
    });
    try {
      await tasks.assign('generation 1', [0]);
      // Revoked while its start is still in progress; the start then completes.
      const revoked = tasks.assign('generation 2', []);
      await new Promise((r) => setTimeout(r, 20));
      release();
      await revoked;
      await new Promise((r) => setTimeout(r, 50));
      await tasks.assign('generation 3', [1]);
      await new Promise((r) => setTimeout(r, 50));
      expect(started).to.deep.equal([0, 1]);
      expect(tasks.running).to.deep.equal([1]);
      await tasks.close();
      await new Promise((r) => setImmediate(r));
      expect(unhandled).to.deep.equal([]);
      await expectNotFailed(tasks, lines);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });

  it('a task revoked while it starts, whose start then fails (its files gone to the new owner), is dropped quietly', async () => {
    const lines: string[] = [];
    let failStart!: () => void;
    const tasks = new TaskManager({
      retryMs: 10,
      log: (m) => lines.push(m),
      start: (task): Promise<RunningTask> =>
        task === 0
          ? new Promise((_, reject) => {
              failStart = () =>
                reject(Object.assign(new Error('ENOENT: no such file or directory'), { code: 'ENOENT' }));
            })
          : Promise.resolve({ terminated: new Promise<void>(() => undefined), stop: async () => undefined }),
    });
    await tasks.assign('generation 1', [0]);
    const revoked = tasks.assign('generation 2', [1]);
    await new Promise((r) => setTimeout(r, 20));
    failStart();
    await revoked;
    await new Promise((r) => setTimeout(r, 20));
    expect(tasks.running).to.deep.equal([1]);
    await expectNotFailed(tasks, lines);
    await tasks.close();
  });

  it('a running task whose Kafka sink was fenced (KAFKA_FENCED) is dropped as taken over; the member goes on', async () => {
    const lines: string[] = [];
    let fence!: () => void;
    const tasks = new TaskManager({
      retryMs: 10,
      log: (m) => lines.push(m),
      start: async (task): Promise<RunningTask> => ({
        terminated: new Promise<void>((_, reject) => {
          if (task === 0) fence = () => reject(new SluiceError('KAFKA_FENCED', 'another process took over'));
        }),
        stop: async () => undefined,
      }),
    });
    await tasks.assign('generation 1', [0, 1]);
    await new Promise((r) => setTimeout(r, 20));
    fence();
    await new Promise((r) => setTimeout(r, 20));
    expect(tasks.running).to.deep.equal([1]);
    expect(lines.join('\n')).to.match(/task 0 was taken over by another member/);
    await expectNotFailed(tasks, lines);
    await tasks.close();
  });
});
