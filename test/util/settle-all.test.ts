import { expect } from 'chai';
import { settleAll } from '../../lib/util/settle-all.js';

describe('settleAll', () => {
  it('when one promise fails early, settles only after the others have, then throws the first failure', async () => {
    const order: string[] = [];
    const slow = new Promise<void>((resolve) =>
      setTimeout(() => {
        order.push('slow write done');
        resolve();
      }, 50),
    );
    const failing = Promise.reject(new Error('commit failed'));
    const later = new Promise<void>((_, reject) => setTimeout(() => reject(new Error('later failure')), 10));
    try {
      await settleAll([slow, failing, later]);
      expect.fail('settleAll resolved');
    } catch (err) {
      order.push((err as Error).message);
    }
    expect(order).to.deep.equal(['slow write done', 'commit failed']);
  });

  it('resolves when every promise does, skipping absent ones', async () => {
    await settleAll([Promise.resolve(1), null, undefined, new Promise((r) => setTimeout(r, 5))]);
  });
});
