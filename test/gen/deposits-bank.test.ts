import { expect } from 'chai';
import { bank, bankEntries } from '../../lib/gen/bank.js';
import { depositLine, depositRecords, deposits } from '../../lib/gen/deposits.js';

describe('gen/deposits', () => {
  const lines = [...deposits({ count: 5000, seed: 3, concurrentSessions: 8 })];

  it('writes the deposit-sessions line format, and the same lines for the same seed', () => {
    expect(lines).to.have.length(5000);
    const bad = lines.filter((l) => !/^session-\d{6},\d+(\.\d{1,2})?(,true)?$/.test(l));
    expect(bad).to.deep.equal([]);
    expect([...deposits({ count: 5000, seed: 3, concurrentSessions: 8 })]).to.deep.equal(lines);
    expect([...deposits({ count: 5000, seed: 4, concurrentSessions: 8 })]).to.not.deep.equal(lines);
    expect([...depositRecords({ count: 50, seed: 3, concurrentSessions: 8 })].map(depositLine)).to.deep.equal(
      lines.slice(0, 50),
    );
  });

  it('closes every finished session with one deposit line, never reusing a session id, with the given concurrency', () => {
    const closed = new Set<string>();
    const open = new Set<string>();
    let maxOpen = 0;
    let zeroWins = 0;
    for (const line of lines) {
      const [id, win, deposit] = line.split(',');
      expect(closed.has(id), `${id} used after its deposit`).to.equal(false);
      if (Number(win) === 0) zeroWins++;
      if (deposit === 'true') {
        closed.add(id);
        open.delete(id);
      } else {
        open.add(id);
        maxOpen = Math.max(maxOpen, open.size);
      }
    }
    expect(closed.size).to.be.within(5000 / 6 - 120, 5000 / 6 + 120);
    expect(maxOpen).to.be.within(6, 8);
    expect(zeroWins / lines.length).to.be.closeTo(0.3, 0.03);
  });
});

describe('gen/bank', () => {
  const entries = [...bankEntries({ count: 10_000, seed: 5, accounts: 30 })];

  it('produces integer deposits and withdrawals on accounts, the same for the same seed', () => {
    for (const { operation: op } of entries.slice(0, 2000)) {
      expect(Object.keys(op)).to.deep.equal(['account', 'amount']);
      expect(op.account).to.match(/^acct-\d{4}$/);
      expect(Number.isInteger(op.amount) && op.amount !== 0).to.equal(true);
    }
    expect([...bank({ count: 100, seed: 5, accounts: 30 })]).to.deep.equal(
      entries.slice(0, 100).map((e) => e.operation),
    );
    expect([...bank({ count: 100, seed: 6, accounts: 30 })]).to.not.deep.equal(
      entries.slice(0, 100).map((e) => e.operation),
    );
  });

  it("reports validity and balances by the seed's rule, with some withdrawals beyond the balance", () => {
    const balances = new Map<string, number>();
    let withdrawals = 0;
    let overdrafts = 0;
    for (const e of entries) {
      const balance = balances.get(e.operation.account) ?? 0;
      const valid = balance >= -e.operation.amount;
      expect(e.valid).to.equal(valid);
      const next = valid ? balance + e.operation.amount : balance;
      expect(e.balance).to.equal(next);
      expect(next).to.be.at.least(0);
      balances.set(e.operation.account, next);
      if (e.operation.amount < 0) withdrawals++;
      if (!valid) overdrafts++;
    }
    expect(withdrawals / entries.length).to.be.within(0.3, 0.45);
    expect(overdrafts / withdrawals).to.be.within(0.07, 0.15);
    expect(
      entries.some((e) => e.valid && e.balance === 0 && e.operation.amount < 0),
      'a withdrawal of the whole balance',
    ).to.equal(true);
    expect(balances.size).to.equal(30);
  });
});
