import * as fs from 'node:fs';
import * as path from 'node:path';
import { clickstream } from '../lib/gen/clickstream.js';

/** Median of numbers. */
export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Writes `count` clickstream events as JSON lines into `files` files under `dir` (reused when present). */
export function clickstreamFiles(dir: string, count: number, files: number): string[] {
  const marker = path.join(dir, `.complete-${count}-${files}`);
  const names = Array.from({ length: files }, (_, i) => path.join(dir, `part-${String(i).padStart(4, '0')}.json`));
  if (fs.existsSync(marker)) return names;
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  const per = Math.ceil(count / files);
  const gen = clickstream({ count, seed: 42, users: 10_000 });
  for (let f = 0; f < files; f++) {
    const lines: string[] = [];
    for (let i = 0; i < per; i++) {
      const n = gen.next();
      if (n.done) break;
      lines.push(JSON.stringify(n.value));
    }
    fs.writeFileSync(names[f], `${lines.join('\n')}\n`);
    const t = new Date(1_700_000_000_000 + f * 1000);
    fs.utimesSync(names[f], t, t);
  }
  fs.writeFileSync(marker, '');
  return names;
}

/** The process's resident anonymous memory (RssAnon: RSS without mapped files), in bytes; 0 where unknown. */
export function rssAnonBytes(): number {
  return statusBytes('RssAnon');
}

/**
 * A size from this process's /proc/self/status in bytes (0 where unknown): `RssAnon`, `RssFile` (mapped files'
 * resident pages) or `VmHWM` (peak resident set).
 */
export function statusBytes(name: 'RssAnon' | 'RssFile' | 'VmHWM'): number {
  try {
    const m = new RegExp(`${name}:\\s+(\\d+) kB`).exec(fs.readFileSync('/proc/self/status', 'latin1'));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

/** CPU seconds of this process (all threads) since `since`. */
export function cpuSeconds(since: NodeJS.CpuUsage): number {
  const u = process.cpuUsage(since);
  return (u.user + u.system) / 1e6;
}

/** Events and amount of one user. */
export interface Totals {
  events: number;
  amount: number;
}

/**
 * Deterministic JSON events of ~130 bytes (bench/apps/kafka-aggregate.ts's BENCH_EVENT_SCHEMA) of `users`
 * users, their keys, and the totals they add up to.
 */
export function kafkaBenchEvents(
  n: number,
  users: number,
): { lines: string[]; keys: string[]; totals: Map<string, Totals> } {
  let seed = 42;
  const rnd = () => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed / 2147483648;
  };
  const types = ['page_view', 'click', 'purchase'];
  const lines: string[] = [];
  const keys: string[] = [];
  const totals = new Map<string, Totals>();
  let ts = 1_700_000_000_000;
  for (let i = 0; i < n; i++) {
    const user = `u${Math.floor(rnd() * users)}`;
    ts += Math.floor(rnd() * 200);
    const amount = Math.round(rnd() * 10000) / 100;
    lines.push(
      JSON.stringify({
        user_id: user,
        event_type: types[Math.floor(rnd() * 3)],
        page_url: `/p/${Math.floor(rnd() * 500)}`,
        ts,
        amount,
      }),
    );
    keys.push(user);
    const t = totals.get(user) ?? { events: 0, amount: 0 };
    t.events++;
    t.amount += amount;
    totals.set(user, t);
  }
  return { lines, keys, totals };
}
