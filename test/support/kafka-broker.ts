/**
 * Test support: a Kafka-protocol broker (librdkafka's mock cluster, test/support/kafka/mockbroker.c,
 * built by scripts/test-setup.mjs) and the kcat CLI as an independent second client.
 */
import { type ChildProcessWithoutNullStreams, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

/** dist/test/support/ → the repository root (the binary is not copied into dist/). */
const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
/** The mock broker binary, built by scripts/test-setup.mjs. */
export const MOCK_BROKER_BINARY = path.join(repoRoot, 'test/support/kafka/mockbroker');
/** The same program linked against librdkafka 2.15.1 (built from source by scripts/test-setup.mjs). */
export const RECENT_MOCK_BROKER_BINARY = path.join(repoRoot, 'test/support/kafka/mockbroker-recent');

/** A running mock broker. */
export interface TestBroker {
  /** `host:port,host:port` as printed by the broker. */
  bootstrap: string;
  /** The same, split: what KafkaClient.connect and kafkajs take. */
  brokers: string[];
  /**
   * Sends one fault-injection command (`down 1`, `up 1`, `topic t 4`, `error <apiKey> <err> <count>`,
   * `broker-error <id> <apiKey> <err> <count>`, `clear <apiKey>`, `leader <topic> <p> <id>`, `rtt <id> <ms>`,
   * `apiversion <apiKey> <min> <max>`, and on the recent broker `leader-answer <topic> <p> <id> <epoch>`)
   * and resolves when the broker answered `ok`; rejects with the broker's `error ...` line otherwise.
   */
  command(cmd: string): Promise<void>;
  /** Stops the broker (SIGTERM) and waits for it to exit; resolves to its exit code. */
  stop(): Promise<number | null>;
  /** The broker's process id (benchmarks read its CPU time). */
  pid: number;
}

export interface StartBrokerOptions {
  /** Number of brokers in the cluster (ids 1..n). Default 1. */
  brokers?: number;
  /** Topics to create, name → partition count. */
  topics?: Record<string, number>;
  /**
   * Run librdkafka 2.15.1's mock (Metadata v12 with leader epochs and topic ids, Fetch v16, Produce v10, leader
   * epochs checked, a leader move bumps the epoch) instead of Debian's 2.0.2 (Metadata v2, Fetch v11, Produce v7).
   */
  recent?: boolean;
}

/** Starts a mock cluster and waits for its bootstrap address. */
export async function startBroker(opts: StartBrokerOptions = {}): Promise<TestBroker> {
  const binary = opts.recent ? RECENT_MOCK_BROKER_BINARY : MOCK_BROKER_BINARY;
  if (!fs.existsSync(binary)) {
    throw new Error(`${binary} is missing: run \`node scripts/test-setup.mjs\` (npm test does it in pretest)`);
  }
  const args = [String(opts.brokers ?? 1), ...Object.entries(opts.topics ?? {}).map(([t, n]) => `${t}:${n}`)];
  const child: ChildProcessWithoutNullStreams = spawn(binary, args, { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  let exitError: Error | null = null;
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  // Writing to a broker that already exited fails with EPIPE; the command is rejected via exitError instead.
  child.stdin.on('error', () => undefined);

  // Lines after the bootstrap line are command replies, answered strictly in order.
  const waiting: Array<{ resolve: (line: string) => void; reject: (e: Error) => void }> = [];
  const lines = createInterface({ input: child.stdout });
  const bootstrap = await new Promise<string>((resolve, reject) => {
    let first = true;
    lines.on('line', (line) => {
      if (first) {
        first = false;
        resolve(line.trim());
        return;
      }
      waiting.shift()?.resolve(line);
    });
    void exited.then((code) => {
      const err = new Error(`mockbroker exited (code ${code}): ${stderr.trim()}`);
      exitError = err;
      if (first) reject(err);
      for (const w of waiting.splice(0)) w.reject(err);
    });
  });

  let chain = Promise.resolve();
  const command = (cmd: string): Promise<void> => {
    const run = chain.then(
      () =>
        new Promise<void>((resolve, reject) => {
          if (exitError) {
            reject(exitError);
            return;
          }
          waiting.push({
            resolve: (line) => (line === 'ok' ? resolve() : reject(new Error(`mockbroker: ${cmd}: ${line}`))),
            reject,
          });
          child.stdin.write(`${cmd}\n`);
        }),
    );
    chain = run.catch(() => undefined);
    return run;
  };

  const stop = async (): Promise<number | null> => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    return exited;
  };

  return { bootstrap, brokers: bootstrap.split(','), command, stop, pid: child.pid! };
}

/**
 * Produces `lines` (one message per line, no key) with kcat and waits for delivery.
 * `partition` pins them to one partition; otherwise kcat's partitioner spreads them.
 */
export function produceWithKcat(bootstrap: string, topic: string, lines: string[], partition?: number): void {
  const args = ['-b', bootstrap, '-P', '-t', topic, '-X', 'linger.ms=5'];
  if (partition !== undefined) args.push('-p', String(partition));
  const r = spawnSync('kcat', args, { input: lines.map((l) => `${l}\n`).join(''), encoding: 'utf8', timeout: 30_000 });
  if (r.status !== 0) throw new Error(`kcat produce failed (status ${r.status}): ${r.stderr || r.error?.message}`);
}

/** One record as kcat printed it. */
export interface KcatRecord {
  partition: number;
  offset: number;
  key: string;
  /** Headers as kcat prints them: `name=value` pairs separated by commas, empty when there are none. */
  headers: string;
  value: string;
}

/**
 * Reads a whole topic from the beginning to its current end with kcat (`-e` exits at end of every
 * partition), in librdkafka's default isolation (read_committed) unless `isolation` says otherwise. Keys,
 * header values and values must not contain the separators (tab, newline).
 */
export function consumeWithKcat(
  bootstrap: string,
  topic: string,
  isolation: 'read_committed' | 'read_uncommitted' = 'read_committed',
): KcatRecord[] {
  const r = spawnSync(
    'kcat',
    [
      ...['-b', bootstrap, '-C', '-t', topic, '-o', 'beginning', '-e', '-q', '-X', `isolation.level=${isolation}`],
      ...['-f', '%p\t%o\t%k\t%h\t%s\n'],
    ],
    { encoding: 'utf8', timeout: 30_000, maxBuffer: 1 << 30 },
  );
  if (r.status !== 0) throw new Error(`kcat consume failed (status ${r.status}): ${r.stderr || r.error?.message}`);
  return r.stdout
    .split('\n')
    .filter((l) => l.length > 0)
    .map((l) => {
      const [p, o, k, h, ...v] = l.split('\t');
      return { partition: Number(p), offset: Number(o), key: k, headers: h, value: v.join('\t') };
    });
}
