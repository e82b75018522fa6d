import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { type BankEntry, bankEntries } from '../../lib/gen/bank.js';
import { type DepositRecord, depositLine, depositRecords } from '../../lib/gen/deposits.js';

export function tempDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-'));
}

/** Writes `lines` as numbered part files of `perFile` lines, with increasing mtimes so the file source reads them in order. */
export function writeParts(dir: string, lines: string[], perFile: number, ext: string): number {
  fs.mkdirSync(dir, { recursive: true });
  let files = 0;
  for (let at = 0; at < lines.length; at += perFile, files++) {
    const file = path.join(dir, `part-${String(files).padStart(4, '0')}${ext}`);
    fs.writeFileSync(file, `${lines.slice(at, at + perFile).join('\n')}\n`);
    const t = new Date(1_700_000_000_000 + files * 1000);
    fs.utimesSync(file, t, t);
  }
  return files;
}

/** Rows of every JSON-lines data file under a file sink's directory, in batch order (file names sort by batch). */
export function readSinkRows(dir: string): Record<string, unknown>[] {
  if (!fs.existsSync(dir)) return [];
  const files = (fs.readdirSync(dir, { recursive: true }) as string[])
    .filter((rel) => rel.endsWith('.jsonl') && !rel.split(path.sep).some((s) => s.startsWith('.') || s.startsWith('_')))
    .sort();
  return files.flatMap((rel) =>
    fs
      .readFileSync(path.join(dir, rel), 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Record<string, unknown>),
  );
}

/** Bank operations from the seeded generator, with the outcome each must have. */
export function bankData(count: number, accounts: number, seed = 7): BankEntry[] {
  return [...bankEntries({ count, accounts, seed })];
}

/** Per account: the movements it must produce, in order, and its final balance (the sequential fold). */
export function expectedBank(entries: BankEntry[]): {
  movements: Map<string, string[]>;
  balances: Map<string, number>;
} {
  const movements = new Map<string, string[]>();
  const balances = new Map<string, number>();
  for (const e of entries) {
    const a = e.operation.account;
    const m = e.valid
      ? { account: a, amount: e.operation.amount, error: null }
      : { account: a, amount: 0, error: 'insufficient funds' };
    if (!movements.has(a)) movements.set(a, []);
    movements.get(a)!.push(JSON.stringify(m));
    balances.set(a, e.balance);
  }
  return { movements, balances };
}

/** Output movements grouped per account, in output order, as JSON strings. */
export function movementsByAccount(rows: Record<string, unknown>[]): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const r of rows) {
    const a = String(r.account);
    if (!out.has(a)) out.set(a, []);
    out.get(a)!.push(JSON.stringify({ account: r.account, amount: r.amount, error: r.error }));
  }
  return out;
}

/** The last balance each account's snapshot rows show. */
export function lastBalances(rows: Record<string, unknown>[]): Map<string, number> {
  const out = new Map<string, number>();
  for (const r of rows) out.set(String(r.account), Number(r.balance));
  return out;
}

/** Deposit-game lines from the seeded generator, and the records behind them. */
export function depositData(count: number, seed = 5): { records: DepositRecord[]; lines: string[] } {
  const records = [...depositRecords({ count, seed, concurrentSessions: 15 })];
  return { records, lines: records.map(depositLine) };
}

/** Per session: the balance its deposit line closes it with, or (still open) its running balance. */
export function expectedSessions(records: DepositRecord[]): {
  deposited: Map<string, number>;
  open: Map<string, number>;
} {
  const open = new Map<string, number>();
  const deposited = new Map<string, number>();
  for (const r of records) {
    const b = Math.round(((open.get(r.sessionId) ?? 0) + r.winAmount) * 1e6) / 1e6;
    if (r.deposit) {
      deposited.set(r.sessionId, b);
      open.delete(r.sessionId);
    } else {
      open.set(r.sessionId, b);
    }
  }
  return { deposited, open };
}
